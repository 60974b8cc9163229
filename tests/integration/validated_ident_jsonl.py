"""validated_ident.py: issue 13 item 7 through the real `validated --jsonl`,
with PDUs built and signed by Debian's python3-signedjson/canonicaljson.
Identifiers holding NUL or another control character are rejected with
bad_id_char (a C-string copy of "!r:srv\\u0000!x:evil" reads as the valid
"!r:srv"); base64 (hash, signature, key) written with JSON escapes is the
same value to signedjson, and to validated too."""
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from validated_pdu import *  # noqa: E402

BIN = os.path.join(os.environ.get("FP_BIN", "bin"), "validated")
tmp = tempfile.mkdtemp(prefix="fp-vident.")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok, skip  # noqa: E402


SRV = "alpha.test:8448"
sk = new_key("a1")
keys = os.path.join(tmp, "keys.json")
json.dump([key_doc(SRV, sk)], open(keys, "w"))


def run(cases, keyfile=keys):
    files = []
    for i, b in enumerate(cases):
        p = os.path.join(tmp, "case%d.json" % i)
        open(p, "wb").write(b)
        files.append(p)
    r = subprocess.run([BIN, "--jsonl", "--keys", keyfile] + files, capture_output=True)
    if r.returncode != 0:
        print("# validated exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    return [json.loads(l) for l in r.stdout.decode().splitlines()], r


def good(n=0, **over):
    ev = sample_event(SRV, n, 10, pad=10)
    ev.update(over)
    return sign_event(ev, SRV, sk, 10)


def enc(ev):
    return dumps(ev).encode()


def esc(s):
    """The same string with every character escaped ('/' as \\/)."""
    return "".join("\\/" if c == "/" else "\\u%04x" % ord(c) for c in s)


base = good(1)
cases = [
    ("good event", enc(base), "accept", None),
    ("room_id '!r:srv\\u0000!x:evil'", enc(good(2, room_id="!r:%s\x00!x:evil.example" % SRV)), "reject", "bad_id_char"),
    ("room_id '!a\\u0000:srv'", enc(good(2, room_id="!a\x00:%s" % SRV)), "reject", "bad_id_char"),
    ("room_id with a newline", enc(good(2, room_id="!a:%s\n<0>x" % SRV)), "reject", "bad_id_char"),
    ("room_id with DEL", enc(good(2, room_id="!a\x7f:%s" % SRV)), "reject", "bad_id_char"),
    ("sender '@u:srv\\u0000@admin:victim'", enc(good(3, sender="@u:%s\x00@admin:victim.example" % SRV)),
     "reject", "bad_id_char"),
    ("sender with ESC", enc(good(3, sender="@u\x1b:%s" % SRV)), "reject", "bad_id_char"),
    ("type 'm.room.create\\u0000'", enc(good(4, type="m.room.create\x00", state_key="")), "reject", "bad_id_char"),
    ("state_key with NUL", enc(good(4, type="m.room.topic", state_key="a\x00b")), "reject", "bad_id_char"),
    ("member state_key with CR", enc(good(4, type="m.room.member", state_key="@b:%s\r" % SRV,
                                          content={"membership": "join"})), "reject", "bad_id_char"),
    ("member state_key not a user ID", enc(good(4, type="m.room.member", state_key="b",
                                                content={"membership": "join"})), "reject", "bad_id"),
    ("non-member state_key with TAB accepted", enc(good(4, type="m.room.topic", state_key="a\tb")), "accept", None),
    ("origin with NUL", enc(good(5, origin=SRV + "\x00evil")), "reject", "bad_id_char"),
    ("prev_events entry with NUL", enc(good(5, prev_events=[base["prev_events"][0] + "\x00"])), "reject", "bad_id_char"),
    ("auth_events entry with a newline", enc(good(5, auth_events=["\n" + base["auth_events"][0][1:]])),
     "reject", "bad_id_char"),
]
t = json.loads(dumps(base))
t["event_id"] = event_id(base, 10) + "\x00junk"
cases.append(("carried event_id = right ID + \\u0000junk", enc(t), "reject", "bad_id_char"))

# base64 with JSON escapes: same value (signedjson agrees), accepted
h = base["hashes"]["sha256"]
sig = base["signatures"][SRV]["ed25519:a1"]
raw = dumps(base)
esc_both = raw.replace('"%s"' % h, '"%s"' % esc(h)).replace('"%s"' % sig, '"%s"' % esc(sig))
ok(esc_both != raw and json.loads(esc_both) == base, "escaped hash and signature: python reads the same event")
vk = get_verify_key(sk)
ok(verify_event(json.loads(esc_both), SRV, vk, 10), "signedjson verifies the escaped form (it unescapes first)")
cases.append(("hash and signature written as \\u00XX and \\/ escapes", esc_both.encode(), "accept", None))
esc_slash = raw.replace('"%s"' % sig, '"%s"' % sig.replace("/", "\\/"))
cases.append(("signature with only \\/ escapes", esc_slash.encode(), "accept", None))
t = json.loads(dumps(base))
t["signatures"][SRV]["ed25519:a1\x00x"] = t["signatures"][SRV].pop("ed25519:a1")
cases.append(("signature under key ID 'ed25519:a1\\u0000x'", enc(t), "reject", "unknown_key"))

out, r = run([c[1] for c in cases])
ok(r.returncode == 0 and len(out) == len(cases), "one verdict per file (%d of %d)" % (len(out), len(cases)))
for (name, _, verdict, reason), got in zip(cases, out):
    ok(got.get("verdict") == verdict and got.get("reason") == reason,
       "%s -> %s %s (got %s %s: %s)" % (name, verdict, reason or "", got.get("verdict"), got.get("reason"),
                                         got.get("message")))
eid = event_id(base, 10)
for i, (name, _, verdict, _) in enumerate(cases):
    if "escapes" in name:
        ok(out[i].get("event_id") == eid and out[i].get("redacted") is False,
           "%s: python's event ID, not redacted" % name)
ok(all(o.get("event_id") is None for o, c in zip(out, cases) if c[3] == "bad_id_char"),
   "a bad_id_char verdict names no event ID (tier 1 stops before hashing)")

# A key document (from /_matrix/key/v2/server: not required to be canonical)
# with its "key" written with escapes: the same key.
doc = key_doc(SRV, sk)
kid = "ed25519:a1"
kv = doc["verify_keys"][kid]["key"]
text = json.dumps([doc], separators=(",", ":")).replace('"%s"' % kv, '"%s"' % esc(kv))
ok(json.loads(text) == [doc], "escaped key document: python reads the same document")
ekeys = os.path.join(tmp, "ekeys.json")
open(ekeys, "w").write(text)
out2, r2 = run([enc(base)], ekeys)
ok(r2.returncode == 0 and out2 and out2[0].get("verdict") == "accept",
   "key document with an escaped \"key\": the event verifies (%s)" %
   r2.stderr.decode(errors="replace").strip()[:120])

import shutil; shutil.rmtree(tmp, ignore_errors=True)
sys.exit(taplib.done())
