"""validated_signedjson.py: the baseline: python3-signedjson (the path
Synapse uses) checking the content hash (hashlib + canonicaljson) and the
signature (verify_signed_json on the redacted event) of every event in
DIR/events.jsonl. Prints "signedjson RATE" (events/s)."""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
from validated_pdu import content_hash, redact, b64  # noqa: E402
from signedjson.key import decode_verify_key_bytes  # noqa: E402
from signedjson.sign import verify_signed_json  # noqa: E402
import base64  # noqa: E402

d = sys.argv[1]
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
doc = json.load(open(os.path.join(d, "keys.json")))[0]
server = doc["server_name"]
(kid, kv), = doc["verify_keys"].items()
vk = decode_verify_key_bytes(kid, base64.b64decode(kv["key"] + "=" * (-len(kv["key"]) % 4)))
lines = open(os.path.join(d, "events.jsonl"), "rb").read().splitlines()
n = 0
t0 = time.monotonic()
while True:
    for line in lines:
        ev = json.loads(line)
        if b64(content_hash(ev)) != ev["hashes"]["sha256"]:
            raise SystemExit("hash mismatch")
        verify_signed_json(redact(ev, 10), server, vk)
        n += 1
    t = time.monotonic() - t0
    if t >= secs:
        break
print("signedjson %.0f" % (n / t))
