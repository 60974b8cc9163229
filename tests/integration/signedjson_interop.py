#!/usr/bin/python3
# signedjson_interop.py: our PDU code against Synapse's own libraries
# (Debian's python3-signedjson, -canonicaljson, -nacl), both directions:
# Python signs v10/v11 events that fp_pdu must verify and name, and fp_pdu
# signs events that Python must verify, hash and name the same way.
import base64
import copy
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok as tap  # noqa: E402
taplib.debian_python("canonicaljson", "signedjson.key", "signedjson.sign")
import canonicaljson  # noqa: E402
import signedjson.key  # noqa: E402
import signedjson.sign  # noqa: E402


# --- an independent implementation of the spec's redaction rules -----------
# room v10 = the v9 algorithm; room v11 per its spec page (MSC2176, 3821,
# 3989, 2174). Written from the spec text, not from pdu.c.

TOP_V10 = {"event_id", "type", "room_id", "sender", "state_key", "content",
           "hashes", "signatures", "depth", "prev_events", "prev_state",
           "auth_events", "origin", "origin_server_ts", "membership"}
TOP_V11 = TOP_V10 - {"origin", "membership", "prev_state"}


def redact(ev, rv):
    out = {k: copy.deepcopy(v) for k, v in ev.items() if k in (TOP_V11 if rv == 11 else TOP_V10)}
    if "content" not in ev:
        return out
    c, t, keep = ev["content"], ev.get("type"), set()
    nc = {}
    if t == "m.room.member":
        keep = {"membership", "join_authorised_via_users_server"}
        tpi = c.get("third_party_invite")
        if rv == 11 and isinstance(tpi, dict):
            nc["third_party_invite"] = {k: copy.deepcopy(v) for k, v in tpi.items() if k == "signed"}
    elif t == "m.room.create":
        keep = set(c) if rv == 11 else {"creator"}
    elif t == "m.room.join_rules":
        keep = {"join_rule", "allow"}
    elif t == "m.room.power_levels":
        keep = {"ban", "events", "events_default", "kick", "redact", "state_default",
                "users", "users_default"} | ({"invite"} if rv == 11 else set())
    elif t == "m.room.history_visibility":
        keep = {"history_visibility"}
    elif t == "m.room.redaction" and rv == 11:
        keep = {"redacts"}
    for k in keep:
        if k in c:
            nc[k] = copy.deepcopy(c[k])
    out["content"] = nc
    return out


def b64(b):
    return base64.b64encode(b).decode().rstrip("=")


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def content_hash(ev):
    e = {k: v for k, v in ev.items() if k not in ("unsigned", "signatures", "hashes")}
    return hashlib.sha256(canonicaljson.encode_canonical_json(e)).digest()


def event_id(ev, rv):
    r = redact(ev, rv)
    r.pop("signatures", None)
    r.pop("unsigned", None)
    return "$" + b64url(hashlib.sha256(canonicaljson.encode_canonical_json(r)).digest())


# --- events --------------------------------------------------------------

TEXTS = ["hello", "h\u00e9llo w\u00f6rld", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
         "emoji \U0001F600\U0001F680 and \U00010348", "quote \" backslash \\ slash /",
         "ctl \n\t\r\b\f \u0001\u001f\u007f", "\u2028\u2029 separators", "\u0000nul inside",
         "\ufeffbom", "", "a" * 700]


def make_event(rng, i, rv, server):
    kinds = ["m.room.message", "m.room.member", "m.room.create", "m.room.power_levels",
             "m.room.join_rules", "m.room.history_visibility", "m.room.redaction",
             "m.room.aliases", "org.example.custom"]
    t = kinds[i % len(kinds)]
    ev = {
        "type": t,
        "room_id": "!room%d:%s" % (rng.randrange(5), server),
        "sender": "@user%d:%s" % (rng.randrange(50), server),
        "origin_server_ts": 1700000000000 + rng.randrange(10 ** 9),
        "depth": rng.randrange(1, 2 ** 53 - 1) if i % 17 == 0 else rng.randrange(1, 10000),
        "prev_events": ["$" + b64url(rng.randbytes(32)) for _ in range(rng.randrange(1, 4))],
        "auth_events": ["$" + b64url(rng.randbytes(32)) for _ in range(rng.randrange(0, 5))],
        "unsigned": {"age": rng.randrange(1000), "note": rng.choice(TEXTS)},
    }
    if rv == 10 or i % 3 == 0:
        ev["origin"] = server
    text = rng.choice(TEXTS)
    if t == "m.room.message":
        ev["content"] = {"msgtype": "m.text", "body": text, "n": -rng.randrange(2 ** 53 - 1),
                         "nested": {"z": [1, {"b": True, "a": None}], "a": False}}
    elif t == "m.room.member":
        ev["state_key"] = ev["sender"]
        m = rng.choice(["join", "invite", "leave", "ban"])
        ev["content"] = {"membership": m, "displayname": text, "avatar_url": "mxc://x/y"}
        ev["membership"] = m
        if i % 2:
            ev["content"]["join_authorised_via_users_server"] = "@admin:" + server
        if i % 4 == 1:
            ev["content"]["third_party_invite"] = {
                "display_name": text,
                "signed": {"mxid": ev["sender"], "token": "tok%d" % i,
                           "signatures": {"magic.forest": {"ed25519:3": b64(rng.randbytes(64))}}}}
        elif i % 4 == 3:
            ev["content"]["third_party_invite"] = "not an object"
    elif t == "m.room.create":
        ev["state_key"] = ""
        ev["content"] = {"creator": ev["sender"], "room_version": str(rv), "m.federate": True,
                         "predecessor": {"room_id": "!old:x", "event_id": "$old"}, "x": text}
    elif t == "m.room.power_levels":
        ev["state_key"] = ""
        ev["content"] = {"ban": 50, "kick": 50, "redact": 50, "invite": 0, "events_default": 0,
                         "state_default": 50, "users_default": 0,
                         "events": {"m.room.name": 50, "m.room.power_levels": 100},
                         "users": {ev["sender"]: 100}, "notifications": {"room": 50}}
    elif t == "m.room.join_rules":
        ev["state_key"] = ""
        ev["content"] = {"join_rule": "restricted", "other": text,
                         "allow": [{"type": "m.room_membership", "room_id": "!other:x"}]}
    elif t == "m.room.history_visibility":
        ev["state_key"] = ""
        ev["content"] = {"history_visibility": "shared", "extra": text}
    elif t == "m.room.redaction":
        target = "$" + b64url(rng.randbytes(32))
        ev["content"] = {"redacts": target, "reason": text}
        ev["redacts"] = target
    elif t == "m.room.aliases":
        ev["state_key"] = server
        ev["content"] = {"aliases": ["#a:" + server]}
    else:
        ev["state_key"] = text
        ev["content"] = {"body": text, "list": [text, 1, [2, {"k": text}]]}
    if i % 11 == 0:
        ev["prev_state"] = []
    return ev


def python_sign(ev, rv, server, sk):
    ev = copy.deepcopy(ev)
    ev["hashes"] = {"sha256": b64(content_hash(ev))}
    r = redact(ev, rv)
    signedjson.sign.sign_json(r, server, sk)
    ev["signatures"] = r["signatures"]
    return ev


def run(args, lines):
    tool = os.path.join(os.environ.get("FP_BUILD", "build"), "tools", "fp_pdu")
    p = subprocess.run([tool] + args, input="".join(l + "\n" for l in lines).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode().split("\n")
    if out and out[-1] == "":
        out.pop()
    if p.returncode != 0 or len(out) != len(lines):
        tap(False, "fp_pdu %s ran (rc %d, %d lines for %d): %s"
            % (args[0], p.returncode, len(out), len(lines), p.stderr.decode()[:300]))
        return out + [""] * (len(lines) - len(out))
    return out


def main():
    tool = os.path.join(os.environ.get("FP_BUILD", "build"), "tools", "fp_pdu")
    if not tap(os.access(tool, os.X_OK), "fp_pdu is built at " + tool):
        return
    rng = random.Random(20240611)
    server = "py.example.org"

    # (1) Python signs, we verify and name
    sk = signedjson.key.generate_signing_key("py1")
    pk64 = signedjson.key.encode_verify_key_base64(signedjson.key.get_verify_key(sk))
    key_id = "ed25519:py1"
    for rv in (10, 11):
        evs = [python_sign(make_event(rng, i, rv, server), rv, server, sk) for i in range(100)]
        lines = [json.dumps(e, ensure_ascii=(i % 2 == 0)) for i, e in enumerate(evs)]
        ids = run(["id", str(rv)], lines)
        ver = run(["verify", str(rv), server, key_id, pk64], lines)
        for i, e in enumerate(evs):
            want = event_id(e, rv)
            tap(ids[i] == want, "v%d py->c event %d (%s) id %s" % (rv, i, e["type"], ids[i]))
            tap(ver[i] == "ok " + want, "v%d py->c event %d (%s) verifies: %s" % (rv, i, e["type"], ver[i]))
        # tampering must be caught, by the right check
        t1 = copy.deepcopy(evs[0])
        t1["content"]["body"] = "changed"
        t2 = copy.deepcopy(evs[0])
        t2["hashes"]["sha256"] = b64(content_hash(dict(t2, sender="@evil:x")))
        t2["sender"] = "@evil:x"
        t3 = copy.deepcopy(evs[0])
        del t3["signatures"]
        t4 = copy.deepcopy(evs[0])
        t4["unsigned"] = {"age": 99999}
        out = run(["verify", str(rv), server, key_id, pk64], [json.dumps(t) for t in (t1, t2, t3, t4)])
        tap(out[0] == "bad content hash mismatch", "v%d tampered content detected: %s" % (rv, out[0]))
        tap(out[1] == "bad signature does not verify", "v%d tampered sender detected: %s" % (rv, out[1]))
        tap(out[2] == "bad no such signature", "v%d missing signature detected: %s" % (rv, out[2]))
        tap(out[3].startswith("ok "), "v%d unsigned is outside hashes and signatures: %s" % (rv, out[3]))
        other = signedjson.key.encode_verify_key_base64(
            signedjson.key.get_verify_key(signedjson.key.generate_signing_key("x")))
        out = run(["verify", str(rv), server, key_id, other], [lines[1]])
        tap(out[0] == "bad signature does not verify", "v%d wrong key refused: %s" % (rv, out[0]))

    # (2) we sign, Python verifies. The key file is written by signedjson.
    with tempfile.TemporaryDirectory() as d:
        csk = signedjson.key.generate_signing_key("c_1")
        keyfile = os.path.join(d, "signing.key")
        with open(keyfile, "w") as f:
            signedjson.key.write_signing_keys(f, [csk])
        vk = signedjson.key.get_verify_key(csk)
        for rv in (10, 11):
            raw = [make_event(rng, i + 7, rv, "c.example.org") for i in range(100)]
            lines = [json.dumps(e, ensure_ascii=(i % 3 == 0)) for i, e in enumerate(raw)]
            signed = run(["sign", str(rv), "c.example.org", keyfile], lines)
            ids = run(["id", str(rv)], signed)
            for i, s in enumerate(signed):
                try:
                    pdu = json.loads(s)
                except ValueError:
                    tap(False, "v%d c->py event %d parses: %r" % (rv, i, s[:200]))
                    continue
                ok = True
                why = []
                if canonicaljson.encode_canonical_json(pdu) != s.encode():
                    ok = False
                    why.append("output is not canonicaljson's encoding")
                if pdu.get("unsigned") != raw[i].get("unsigned"):
                    ok = False
                    why.append("unsigned changed")
                if not isinstance(pdu, dict):
                    tap(False, "v%d c->py event %d is an object: %r" % (rv, i, s[:200]))
                    continue
                if (pdu.get("hashes") or {}).get("sha256") != b64(content_hash(raw[i])):
                    ok = False
                    why.append("content hash differs")
                try:
                    signedjson.sign.verify_signed_json(redact(pdu, rv), "c.example.org", vk)
                except Exception as e:  # SignatureVerifyException, or worse
                    ok = False
                    why.append("signature: %s" % e)
                if ids[i] != event_id(pdu, rv):
                    ok = False
                    why.append("event id %s != %s" % (ids[i], event_id(pdu, rv)))
                tap(ok, "v%d c->py event %d (%s) %s" % (rv, i, raw[i]["type"], "; ".join(why) or "verifies"))
            # the same event signed under the other room version must not
            # verify under this one when origin is present (v11 redacts it)
            if rv == 10:
                e = json.loads(signed[0])
                if "origin" in e:
                    try:
                        signedjson.sign.verify_signed_json(redact(e, 11), "c.example.org", vk)
                        tap(False, "v10 signature is not valid under v11 redaction")
                    except signedjson.sign.SignatureVerifyException:
                        tap(True, "v10 signature is not valid under v11 redaction")


main()
sys.exit(taplib.done())
