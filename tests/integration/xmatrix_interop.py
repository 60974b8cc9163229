#!/usr/bin/python3
# xmatrix_interop.py: X-Matrix request signatures against Synapse's own
# signing library (Debian's python3-signedjson), both ways. Python signs
# {method, uri, origin, destination, content?} with signedjson.sign_json and
# fp_xmatrix must verify the header built from it; fp_xmatrix signs and
# signedjson.verify_signed_json must accept the object rebuilt from our
# header. Requests cover GET without a body, PUT and POST with bodies holding
# non-ASCII text, escapes and nested objects, and a percent-encoded query.
# Then tampering on either side is refused by the other.
import base64
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok as tap  # noqa: E402
taplib.debian_python("signedjson.key", "signedjson.sign")
import signedjson.key  # noqa: E402
import signedjson.sign  # noqa: E402


build = os.environ.get("FP_BUILD", "build")
tool = os.path.join(build, "tools", "fp_xmatrix")
tmp = tempfile.mkdtemp(prefix="fp-xmatrix-")

key = signedjson.key.generate_signing_key("py1")
keyfile = os.path.join(tmp, "py.key")
with open(keyfile, "w") as f:
    signedjson.key.write_signing_keys(f, [key])
vk = signedjson.key.get_verify_key(key)
pk_b64 = signedjson.key.encode_verify_key_base64(vk)
key_id = "ed25519:py1"

REQS = [
    ("GET", "/_matrix/federation/v1/event/%24abc%3Aexample.org", None),
    ("GET", "/_matrix/federation/v1/state_ids/%21room%3Ax?event_id=%24e%2Fq", None),
    ("PUT", "/_matrix/federation/v1/send/1700000000/", {"origin": "py.test", "pdus": [], "edus": [
        {"edu_type": "m.typing", "content": {"room_id": "!r:x", "user_id": "@u:py.test", "typing": True}}]}),
    ("POST", "/_matrix/federation/v1/get_missing_events/%21r%3Ax", {
        "earliest_events": ["$a"], "latest_events": ["$b"], "limit": 10,
        "note": "caf\u00e9 \u2603 \"quoted\" back\\slash \u0001"}),
]


def header(origin, dest, key_id, sig):
    return 'X-Matrix origin="%s",destination="%s",key="%s",sig="%s"' % (origin, dest, key_id, sig)


def run(args):
    p = subprocess.run([tool] + args, capture_output=True, text=True)
    return p.returncode, p.stdout.strip()


for method, uri, content in REQS:
    obj = {"method": method, "uri": uri, "origin": "py.test", "destination": "fp.test"}
    bodyfile = []
    if content is not None:
        obj["content"] = content
        path = os.path.join(tmp, "body.json")
        with open(path, "w") as f:
            json.dump(content, f, indent=2)         # not canonical on the wire
        bodyfile = [path]
    signed = signedjson.sign.sign_json(dict(obj), "py.test", key)
    sig = signed["signatures"]["py.test"][key_id]
    h = header("py.test", "fp.test", key_id, sig)
    rc, out = run(["verify", pk_b64, "fp.test", method, uri, h] + bodyfile)
    tap(rc == 0, "%s %s: signedjson's signature verified by fedpipe (%s)" % (method, uri, out))
    rc, out = run(["verify", pk_b64, "fp.test", method, uri + "x", h] + bodyfile)
    tap(rc == 1, "%s: another uri refused by fedpipe (%s)" % (method, out))
    if content is not None:
        alt = os.path.join(tmp, "alt.json")
        c2 = dict(content)
        c2["extra"] = 1
        with open(alt, "w") as f:
            json.dump(c2, f)
        rc, out = run(["verify", pk_b64, "fp.test", method, uri, h, alt])
        tap(rc == 1, "%s: another body refused by fedpipe (%s)" % (method, out))
    rc, out = run(["verify", pk_b64, "other.test", method, uri, h] + bodyfile)
    tap(rc == 1, "%s: a header for another destination refused (%s)" % (method, out))

    # the other way: fedpipe signs, signedjson verifies
    rc, out = run(["sign", keyfile, "py.test", "fp.test", method, uri] + bodyfile)
    tap(rc == 0 and out.startswith('X-Matrix origin="py.test",destination="fp.test",key="ed25519:py1",sig="'),
        "%s: fedpipe's header has every value quoted, destination included" % method)
    rc2, parsed = run(["parse", out])
    o, d, k, s = parsed.split("\n")
    ours = dict(obj)
    ours["signatures"] = {o: {k: s}}
    try:
        signedjson.sign.verify_signed_json(ours, o, vk)
        good = True
    except Exception as e:  # SignatureVerifyException
        good = False
    tap(good, "%s: fedpipe's signature verified by signedjson" % method)
    ours["method"] = "DELETE"
    try:
        signedjson.sign.verify_signed_json(ours, o, vk)
        bad_ok = True
    except Exception:
        bad_ok = False
    tap(not bad_ok, "%s: signedjson refuses it for another method" % method)
    # Synapse's header form (destination last, unquoted origin) parses too
    syn = 'X-Matrix origin=py.test,key="%s",sig="%s",destination="fp.test"' % (key_id, sig)
    rc, out = run(["verify", pk_b64, "fp.test", method, uri, syn] + bodyfile)
    tap(rc == 0, "%s: Synapse's header layout verified (%s)" % (method, out))

sys.exit(taplib.done())
