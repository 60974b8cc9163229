"""validated_interop.py: both directions against Debian's python3-signedjson.
Events python signs (v10 and v11, awkward JSON) verify in the real
`validated --jsonl` with the event ID python computes; events `fedctl sign`
makes verify in signedjson with the ID fedctl printed."""
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from validated_pdu import *  # noqa: E402
from signedjson.key import decode_verify_key_bytes  # noqa: E402

FP_BIN = os.environ.get("FP_BIN", "bin")
VAL = os.path.join(FP_BIN, "validated")
FEDCTL = os.path.join(FP_BIN, "fedctl")
tmp = tempfile.mkdtemp(prefix="fp-vinterop.")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402


SRV = "py.test:8448"
sk = new_key("k1")
keys = os.path.join(tmp, "keys.json")
json.dump([key_doc(SRV, sk)], open(keys, "w"))

AWKWARD = [
    {"body": "h\u00e9llo \u2603 \U0001F600 \"q\" \\ \n\t\u0001", "msgtype": "m.text"},
    {"n": 9007199254740991, "neg": -9007199254740991, "zero": 0, "nested": {"b": [1, {"a": None}], "a": True}},
    {"\u00e9": 1, "e": 2, "\U0001F600": 3, "\u20ac": 4, "Z": 5, "": 6},
    {"x" * 100: "y" * 300, "list": list(range(50))},
]


def events(rv):
    out = []
    for i, c in enumerate(AWKWARD):
        ev = sample_event(SRV, i, rv, pad=0)
        ev["content"] = c
        out.append(ev)
    mem = sample_event(SRV, 10, rv, pad=0, etype="m.room.member")
    mem.update(state_key="@user10:" + SRV,
               content={"membership": "join", "displayname": "D\u00fcrer", "avatar_url": "mxc://x/y"})
    out.append(mem)
    pl = sample_event(SRV, 11, rv, pad=0, etype="m.room.power_levels")
    pl.update(state_key="", content={"users": {"@a:" + SRV: 100}, "ban": 50, "invite": 0, "extra": "drop"})
    out.append(pl)
    cr = sample_event(SRV, 12, rv, pad=0, etype="m.room.create")
    cr.update(state_key="", prev_events=[], auth_events=[],
              content={"room_version": str(rv), "creator": "@a:" + SRV, "m.federate": True})
    out.append(cr)
    return out


for rv in (10, 11):
    evs = [sign_event(e, SRV, sk, rv) for e in events(rv)]
    ids = [event_id(e, rv) for e in evs]
    data = b"".join(dumps(e).encode() + b"\n" for e in evs)
    r = subprocess.run([VAL, "--jsonl", "--keys", keys, "--room-version", str(rv)], input=data,
                       capture_output=True)
    ok(r.returncode == 0, "v%d: validated --jsonl ran" % rv)
    verdicts = [json.loads(l) for l in r.stdout.decode().splitlines()]
    ok(len(verdicts) == len(evs), "v%d: %d verdicts" % (rv, len(verdicts)))
    for e, i, v in zip(evs, ids, verdicts):
        ok(v["verdict"] == "accept" and not v["redacted"] and v["event_id"] == i,
           "v%d %s: accepted with python's event ID %s (got %s %s %s)" %
           (rv, e["type"], i, v["verdict"], v["event_id"], v.get("message")))
    # two workers give the same verdicts in the same order
    r2 = subprocess.run([VAL, "--jsonl", "--keys", keys, "--room-version", str(rv), "--workers", "2"],
                        input=data * 3, capture_output=True)
    ok(r2.stdout == r.stdout * 3, "v%d: --workers 2 on a tripled stream: same verdicts, same order" % rv)
    # the v11 create event announces its room version even when the default differs
    other = 11 if rv == 10 else 10
    r3 = subprocess.run([VAL, "--jsonl", "--keys", keys, "--room-version", str(other)],
                        input=dumps(evs[-1]).encode() + b"\n", capture_output=True)
    v = json.loads(r3.stdout)
    ok(v["verdict"] == "accept" and v["event_id"] == ids[-1],
       "v%d create event validated under its own content.room_version" % rv)

# the other direction: fedctl sign -> signedjson verifies
conf = os.path.join(tmp, "fedpipe.conf")
open(conf, "w").write("[node]\nserver_name = fc.test:8448\nstate_dir = %s/state\nrun_dir = %s\n"
                      "signing_key = %s/signing.key\n" % (tmp, tmp, tmp))
r = subprocess.run([FEDCTL, "-c", conf, "keygen"], capture_output=True)
ok(r.returncode == 0, "fedctl keygen")
key_id, pk_b64 = r.stdout.decode().split()
vk = decode_verify_key_bytes(key_id, base64.b64decode(pk_b64 + "=" * (-len(pk_b64) % 4)))
r = subprocess.run([FEDCTL, "-c", conf, "keygen"], capture_output=True)
ok(r.returncode != 0, "fedctl keygen refuses to overwrite")
for rv in (10, 11):
    evs = events(rv)
    for e in evs:
        e["sender"] = e["sender"].split(":")[0] + ":fc.test:8448"
    data = b"".join(dumps(e).encode() + b"\n" for e in evs)
    r = subprocess.run([FEDCTL, "-c", conf, "sign", "--room-version", str(rv)], input=data, capture_output=True)
    pdus = r.stdout.decode().splitlines()
    eids = r.stderr.decode().split()
    ok(r.returncode == 0 and len(pdus) == len(evs) == len(eids), "v%d: fedctl sign signed %d events" % (rv, len(pdus)))
    for line, eid in zip(pdus, eids):
        ev = json.loads(line)
        ok(encode_canonical_json(ev).decode() == line, "v%d %s: fedctl prints canonical JSON" % (rv, ev["type"]))
        ok(verify_event(ev, "fc.test:8448", vk, rv), "v%d %s: signedjson verifies hash + signature" % (rv, ev["type"]))
        ok(event_id(ev, rv) == eid, "v%d %s: python computes fedctl's event ID" % (rv, ev["type"]))
    # and validated accepts them with the node's own key (no --keys)
    r = subprocess.run([VAL, "--jsonl", "-c", conf, "--room-version", str(rv)], input=r.stdout, capture_output=True)
    vs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    ok(len(vs) == len(eids) and all(v["verdict"] == "accept" and v["event_id"] == e for v, e in zip(vs, eids)),
       "v%d: validated accepts fedctl-signed events with the node's own key" % rv)
    r = subprocess.run([FEDCTL, "-c", conf, "--json", "sign", "--room-version", str(rv)],
                       input=dumps(evs[0]).encode(), capture_output=True)
    j = json.loads(r.stdout)
    ok(j["event_id"] == eids[0] and encode_canonical_json(j["pdu"]).decode() == pdus[0],
       "v%d: fedctl --json sign prints {event_id, pdu}" % rv)

sys.exit(taplib.done())
