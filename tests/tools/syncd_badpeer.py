#!/usr/bin/env python3
"""syncd_badpeer.py: a misbehaving federation peer for syncd tests.
usage: syncd_badpeer.py PORT MODE [UPSTREAM_URL] [LOG]
MODE: garbage | truncated | big | ctype | slowloris | events_garbage |
      events_truncated | listen (accept, log, close: to prove no contact) |
      liar (proxy everything from UPSTREAM_URL, adding to every "vclock"
      the entries of env LIAR_CLOCK, "NODE=POS,...": lies about others) |
      redirect (302 to UPSTREAM_URL + the same path)
In listen mode every header line is logged too (to see an Authorization).
events_* modes proxy identity and the key document from UPSTREAM_URL (a
real served) so syncd gets past the handshake, then break the events answer.
Every request line is appended to LOG."""
import json, os, socket, sys, threading, time, urllib.request

port, mode = int(sys.argv[1]), sys.argv[2]
upstream = sys.argv[3] if len(sys.argv) > 3 else ""
logf = sys.argv[4] if len(sys.argv) > 4 else "/dev/null"
lies = dict((kv.split("=")[0], int(kv.split("=")[1])) for kv in os.environ.get("LIAR_CLOCK", "").split(",") if "=" in kv)

def reply(c, body, ctype="application/json", status="200 OK"):
    c.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

def handle(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d: return
            data += d
        line = data.split(b"\r\n")[0].decode()
        with open(logf, "a") as f: f.write(line + "\n")
        path = line.split(" ")[1]
        if mode == "listen":
            with open(logf, "a") as f:
                for h in data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
                    f.write("  " + h.decode(errors="replace") + "\n")
            return
        if mode == "redirect":
            c.sendall(f"HTTP/1.1 302 Found\r\nLocation: {upstream}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            return
        if mode == "liar":
            with urllib.request.urlopen(upstream + path, timeout=30) as r:
                body = r.read()
            j = json.loads(body)
            if isinstance(j, dict) and isinstance(j.get("vclock"), dict):
                j["vclock"].update(lies)
                body = json.dumps(j, separators=(",", ":")).encode()
            reply(c, body)
            return
        if mode.startswith("events_") and not path.startswith("/_fed/v1/events"):
            with urllib.request.urlopen(upstream + path, timeout=5) as r:
                reply(c, r.read())
            return
        if mode in ("garbage", "events_garbage"):
            reply(c, b"\x00\xff<html>not json at all</html>\x01")
        elif mode in ("truncated", "events_truncated"):
            reply(c, b'{"events":[{"type":"m.room.message","content":{"body":"cut' if mode.startswith("events") else b'{"node_id":"01ABC","schema_version":1,"server_na')
        elif mode == "big":
            reply(c, b'{"pad":"' + b"x" * (10 << 20) + b'"}')
        elif mode == "ctype":
            reply(c, b'{"node_id":"01ABC","schema_version":1,"server_name":"x.test","vclock":{},"verify_keys":{}}', "text/html")
        elif mode == "slowloris":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(120):
                c.sendall(b" ")
                time.sleep(2)
    except Exception:
        pass
    finally:
        try: c.close()
        except Exception: pass

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
