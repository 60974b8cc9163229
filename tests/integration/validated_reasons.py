"""validated_reasons.py: one failing case per reason code, each run through
the real `validated --jsonl` binary (files named on the command line, bytes
exactly as written), plus the accepted-redacted case and the toggles."""
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from validated_pdu import *  # noqa: E402

BIN = os.path.join(os.environ.get("FP_BIN", "bin"), "validated")
tmp = tempfile.mkdtemp(prefix="fp-vreasons.")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402


SRV = "alpha.test:8448"
sk = new_key("a1")
other = new_key("a1")          # same key ID, different key: "wrong key"
keys = os.path.join(tmp, "keys.json")
json.dump([key_doc(SRV, sk)], open(keys, "w"))
expired_keys = os.path.join(tmp, "expired.json")
json.dump([key_doc(SRV, sk, valid_until_ts=1600000000000)], open(expired_keys, "w"))


def run(cases, *extra):
    """cases: list of bytes; returns verdict dicts in order."""
    files = []
    for i, b in enumerate(cases):
        p = os.path.join(tmp, "case%d.json" % i)
        open(p, "wb").write(b)
        files.append(p)
    r = subprocess.run([BIN, "--jsonl", "--keys", keys] + list(extra) + files,
                       capture_output=True)
    if r.returncode != 0:
        print("# validated exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    out = [json.loads(l) for l in r.stdout.decode().splitlines()]
    return out, r.returncode


def good(n=0, rv=10, **over):
    ev = sample_event(SRV, n, rv)
    ev.update(over)
    return sign_event(ev, SRV, sk, rv)


def enc(ev):
    return dumps(ev).encode()


base = good(1)
cases = []  # (name, bytes, expected verdict, expected reason, extra check)

cases.append(("valid event accepted", enc(base), "accept", None))
t = json.loads(dumps(base)); t["content"]["body"] = "tampered"
cases.append(("tampered content: accepted redacted", enc(t), "accept", None))
t = json.loads(dumps(base)); t["depth"] = 999
cases.append(("tampered non-content field -> bad_signature", enc(t), "reject", "bad_signature"))
cases.append(("wrong key -> bad_signature", enc(sign_event(sample_event(SRV, 2), SRV, other, 10)),
              "reject", "bad_signature"))
t = json.loads(dumps(base)); t["signatures"] = {"other.test": t["signatures"][SRV]}
cases.append(("missing origin signature -> missing_signature", enc(t), "reject", "missing_signature"))
t = json.loads(dumps(base)); t["signatures"] = {SRV: {"ed25519:zz": t["signatures"][SRV]["ed25519:a1"]}}
cases.append(("unknown key ID -> unknown_key", enc(t), "reject", "unknown_key"))
t = json.loads(dumps(base)); t["signatures"][SRV]["curve:a1"] = "AAAA"
cases.append(("unknown algorithm skipped, valid one kept", enc(t), "accept", None))
raw = enc(base)
cases.append(("duplicate keys -> not_canonical", raw[:-1] + b',"depth":5}', "reject", "not_canonical"))
cases.append(("float -> not_canonical", raw.replace(b'"depth":2', b'"depth":2.5'), "reject", "not_canonical"))
cases.append(("out-of-range integer -> not_canonical",
              raw.replace(b'"depth":2', b'"depth":9007199254740992'), "reject", "not_canonical"))
cases.append(("invalid UTF-8 -> bad_utf8", raw.replace(b"message 1", b"message \xff\xfe"), "reject", "bad_utf8"))
cases.append(("10,000-deep nesting -> too_deep",
              raw.replace(b'"msgtype":"m.text"', b'"deep":' + b"[" * 10000 + b"]" * 10000 + b',"msgtype":"m.text"'),
              "reject", "too_deep"))
# 65537 canonical bytes: pad the body to hit the limit exactly plus one
ev = sample_event(SRV, 3); ev["content"]["body"] = ""
probe = sign_event(ev, SRV, sk, 10)
ev["content"]["body"] = "x" * (65537 - len(encode_canonical_json(probe)))
big = sign_event(ev, SRV, sk, 10)
ok(len(encode_canonical_json(big)) == 65537, "65537-byte canonical event built")
cases.append(("65537-byte event -> too_large", enc(big), "reject", "too_large"))
ev["content"]["body"] = ev["content"]["body"][:-1]
fits = sign_event(ev, SRV, sk, 10)
pretty = json.dumps(fits, indent=4).encode()
cases.append(("65536-byte canonical event with whitespace (raw larger) accepted", pretty, "accept", None))
cases.append(("not JSON -> bad_json", b"{nope", "reject", "bad_json"))
cases.append(("trailing garbage -> bad_json", raw + b" x", "reject", "bad_json"))
cases.append(("array at the top -> bad_json", b"[1,2]", "reject", "bad_json"))
t = json.loads(dumps(base)); del t["room_id"]
cases.append(("missing room_id -> missing_field", enc(t), "reject", "missing_field"))
t = json.loads(dumps(base)); del t["hashes"]
cases.append(("missing hashes -> missing_field", enc(t), "reject", "missing_field"))
t = json.loads(dumps(base)); t["depth"] = "2"
cases.append(("string depth -> bad_type", enc(t), "reject", "bad_type"))
t = json.loads(dumps(base)); t["content"] = "x"
cases.append(("string content -> bad_type", enc(t), "reject", "bad_type"))
t = json.loads(dumps(base)); t["state_key"] = 5
cases.append(("integer state_key -> bad_type", enc(t), "reject", "bad_type"))
t = json.loads(dumps(base)); t["signatures"] = {SRV: "x"}
cases.append(("signatures not object of objects -> bad_type", enc(t), "reject", "bad_type"))
cases.append(("sender without server -> bad_id", enc(good(4, sender="@nobody")), "reject", "bad_id"))
cases.append(("room_id bad sigil -> bad_id", enc(good(4, room_id="#r:" + SRV)), "reject", "bad_id"))
cases.append(("bad server port -> bad_id", enc(good(4, sender="@a:host:99999")), "reject", "bad_id"))
cases.append(("prev_events not event IDs -> bad_id", enc(good(4, prev_events=["$short"])), "reject", "bad_id"))
cases.append(("IPv6 server name passes the grammar (then: no key)",
              enc(sign_event(dict(sample_event(SRV, 5), sender="@a:[::1]:8448"), "[::1]:8448", sk, 10)),
              "reject", "unknown_key"))
cases.append(("256-byte type -> field_too_long", enc(good(6, type="t" * 256)), "reject", "field_too_long"))
cases.append(("256-byte state_key -> field_too_long", enc(good(6, state_key="s" * 256)), "reject", "field_too_long"))
pe = base["prev_events"] * 21
cases.append(("21 prev_events -> too_many_prev", enc(good(7, prev_events=pe)), "reject", "too_many_prev"))
cases.append(("11 auth_events -> too_many_auth", enc(good(7, auth_events=base["prev_events"] * 11)),
              "reject", "too_many_auth"))
t = json.loads(dumps(base)); t["hashes"]["sha256"] = "not base64!"
cases.append(("hash not base64 -> bad_hash_format", enc(t), "reject", "bad_hash_format"))
t = json.loads(dumps(base)); t["event_id"] = "$" + "A" * 43
cases.append(("carried event_id mismatch -> bad_event_id", enc(t), "reject", "bad_event_id"))
t = json.loads(dumps(base)); t["event_id"] = event_id(base, 10)
cases.append(("carried event_id matching accepted", enc(t), "accept", None))
cases.append(("create event of room v9 -> bad_room_version",
              enc(good(8, type="m.room.create", state_key="", content={"room_version": "9"})),
              "reject", "bad_room_version"))
t = json.loads(dumps(base))
t["hashes"]["sha256"] = base64.urlsafe_b64encode(base64.b64decode(t["hashes"]["sha256"] + "=")).decode()
t.pop("signatures")
t["signatures"] = sign_json(redact(t, 10), SRV, sk)["signatures"]
sig = t["signatures"][SRV]["ed25519:a1"]
t["signatures"][SRV]["ed25519:a1"] = base64.urlsafe_b64encode(base64.b64decode(sig + "==")).decode()
cases.append(("padded URL-safe base64 hash and signature accepted", enc(t), "accept", None))

out, rc = run([c[1] for c in cases])
ok(rc == 0, "validated --jsonl exits 0 even with rejects")
ok(len(out) == len(cases), "one verdict line per file (%d of %d)" % (len(out), len(cases)))
for (name, _, verdict, reason), got in zip(cases, out):
    good_v = got.get("verdict") == verdict and got.get("reason") == reason
    ok(good_v, "%s (got %s %s: %s)" % (name, got.get("verdict"), got.get("reason"), got.get("message")))
red = out[1]
ok(red.get("redacted") is True and red.get("event_id") == event_id(base, 10),
   "tampered content keeps the event ID and is flagged redacted")
ok(out[0].get("event_id") == event_id(base, 10) and out[0]["redacted"] is False,
   "accepted event has python's event ID")

# expired key: valid_until_ts before origin_server_ts
p = os.path.join(tmp, "exp.json"); open(p, "wb").write(enc(base))
r = subprocess.run([BIN, "--jsonl", "--keys", expired_keys, p], capture_output=True)
v = json.loads(r.stdout.decode().splitlines()[0])
ok(v["reason"] == "expired_key", "expired key -> expired_key (got %s)" % v["reason"])

# toggles
t = json.loads(dumps(base)); t["depth"] = 999
p = os.path.join(tmp, "tog.json"); open(p, "wb").write(enc(t))
r = subprocess.run([BIN, "--jsonl", "--keys", keys, "--no-signatures", p], capture_output=True)
ok(json.loads(r.stdout)["verdict"] == "accept", "--no-signatures skips the signature check")
t = json.loads(dumps(base)); t["content"]["body"] = "tampered"
open(p, "wb").write(enc(t))
r = subprocess.run([BIN, "--jsonl", "--keys", keys, "--no-hashes", p], capture_output=True)
v = json.loads(r.stdout)
ok(v["verdict"] == "accept" and v["redacted"] is False, "--no-hashes skips the content hash")
conf = os.path.join(tmp, "off.conf")
open(conf, "w").write("[node]\nstate_dir = %s/none\nsigning_key = %s/none.key\n[validated]\ncheck_hashes = no\n" % (tmp, tmp))
r = subprocess.run([BIN, "--jsonl", "-c", conf, "--keys", keys, p], capture_output=True)
v = json.loads(r.stdout)
ok(v["verdict"] == "accept" and v["redacted"] is False, "[validated] check_hashes = no skips it too")
t = json.loads(dumps(base)); t["event_id"] = "$" + "A" * 43
open(p, "wb").write(enc(t))
r = subprocess.run([BIN, "--jsonl", "--keys", keys, "--no-event-id", p], capture_output=True)
ok(json.loads(r.stdout)["verdict"] == "accept", "--no-event-id skips the carried event_id check")

# raw cap (configurable) and stdin lines
r = subprocess.run([BIN, "--jsonl", "--keys", keys, "--raw-max", "1k"], input=enc(base) + b"\n\n" + enc(base) + b"\n",
                   capture_output=True)
lines = r.stdout.decode().splitlines()
ok(len(lines) == 2 and all(json.loads(l)["reason"] == "too_large" for l in lines),
   "--raw-max caps raw input; blank stdin lines skipped")
r = subprocess.run([BIN, "--jsonl", "--bogus"], capture_output=True)
ok(r.returncode == 100, "usage error exits 100 (got %d)" % r.returncode)
r = subprocess.run([BIN, "--jsonl", os.path.join(tmp, "does-not-exist")], capture_output=True)
ok(r.returncode == 111, "unreadable file exits 111 (got %d)" % r.returncode)
r = subprocess.run([BIN, "--jsonl", "--keys", os.path.join(tmp, "nokeys")], capture_output=True)
ok(r.returncode == 100, "missing --keys file exits 100 (got %d)" % r.returncode)

sys.exit(taplib.done())
