#!/usr/bin/env python3
"""A stand-in fetchd for purgatoryd tests: listens on <run_dir>/fetchd.sock,
answers FT_FETCH_REQ (ops event, missing_events) from a JSON-lines file of
PDUs with their IDs (gen --ids), and logs every request as a JSON line.
Rooms whose ID contains "noback" answer missing_events with nothing, so the
single-event path is exercised.
usage: purgatory_stub_fetchd.py SOCK PDUS.jsonl IDS REQLOG [SERVER]"""
import json, os, socket, struct, sys

sock_path, pdus_f, ids_f, log_f = sys.argv[1:5]
server = sys.argv[5] if len(sys.argv) > 5 else "beta.test"
pdus = [l.rstrip("\n") for l in open(pdus_f)]
ids = [l.strip() for l in open(ids_f)]
by_id = dict(zip(ids, pdus))
HDR = struct.Struct("!IBBHQ")

def read_exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            return None
        b += x
    return b

def reply(c, rid, meta, body):
    p = json.dumps(meta, separators=(",", ":")).encode() + b"\n" + body
    c.sendall(HDR.pack(len(p), 0xFD, 4, 2, rid) + p)

try:
    os.unlink(sock_path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sock_path)
s.listen(4)
log = open(log_f, "a")
while True:
    c, _ = s.accept()
    while True:
        h = read_exact(c, HDR.size)
        if not h:
            break
        ln, magic, typ, flags, rid = HDR.unpack(h)
        p = read_exact(c, ln) if ln else b""
        if p is None:
            break
        if typ != 3:
            continue
        req = json.loads(p)
        log.write(json.dumps(req) + "\n"); log.flush()
        if req["op"] == "event":
            pdu = by_id.get(req.get("event_id"))
            if pdu is None:
                reply(c, rid, {"ok": False, "error": "not_found", "tried": [server]}, b"")
            else:
                reply(c, rid, {"ok": True, "server": server},
                      ('{"origin":"%s","origin_server_ts":0,"pdus":[%s]}' % (server, pdu)).encode())
        elif req["op"] == "missing_events":
            out = []
            if "noback" not in req.get("room_id", ""):
                earliest = set(req.get("earliest", []))
                seen, todo = set(), list(req.get("events", []))
                while todo and len(out) < req.get("limit", 10):
                    eid = todo.pop(0)
                    ev = json.loads(by_id[eid]) if eid in by_id else None
                    if ev is None:
                        continue
                    for pe in ev["prev_events"]:
                        if pe in earliest or pe in seen or pe not in by_id:
                            continue
                        seen.add(pe)
                        out.append(by_id[pe])
                        todo.append(pe)
            reply(c, rid, {"ok": True, "server": server},
                  ('{"events":[%s]}' % ",".join(reversed(out))).encode())
        else:
            reply(c, rid, {"ok": False, "error": "bad_request"}, b"")
    c.close()
