"""validated_sock.py: test helper speaking fedpipe frames on Unix sockets.
  listen SOCK OUT      act as purgatoryd: append each frame received as a JSON
                       line {"type","id","meta","body_len"} to OUT (runs until killed)
  send SOCK            send stdin's bytes (frames) to SOCK, then wait up to 2 s
                       for the peer to close; prints "closed" or "open"
"""
import json, os, socket, struct, sys, threading, time

HDR = struct.Struct("!IBBHQ")


def read_exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            return None
        b += x
    return b


def serve(c, out):
    while True:
        h = read_exact(c, 16)
        if h is None:
            return
        ln, magic, typ, flags, rid = HDR.unpack(h)
        p = read_exact(c, ln) if ln else b""
        if p is None:
            return
        rec = {"type": typ, "id": rid, "flags": flags}
        if b"\n" in p:
            m, body = p.split(b"\n", 1)
            try:
                rec["meta"] = json.loads(m)
            except ValueError:
                rec["meta"] = None
            rec["body_len"] = len(body)
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "listen":
        out = sys.argv[3]
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(8)
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, out), daemon=True).start()
    elif cmd == "send":
        data = sys.stdin.buffer.read()
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        c.sendall(data)
        c.settimeout(2)
        deadline = time.time() + 2
        state = "open"
        try:
            while time.time() < deadline:
                x = c.recv(65536)
                if not x:
                    state = "closed"
                    break
        except socket.timeout:
            pass
        except ConnectionResetError:
            state = "closed"
        print(state)


main()
