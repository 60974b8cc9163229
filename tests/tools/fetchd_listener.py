#!/usr/bin/env python3
"""fetchd_listener.py PORT LOG [ADDR]: a loopback listener that counts accepts
(on ADDR, default 127.0.0.1; "::1" for IPv6).
PORT 0: an ephemeral port, written to LOG.port once listening (no race
with another test grabbing a port between free_port and bind).
Each accepted connection appends one line "accept N FROM" to LOG, the first
bytes it sent (up to 4 KiB, escaped, within 1 s) as "data N ..." and is
closed. It answers nothing: what counts is whether anyone connected at all.
Ends on SIGTERM."""
import os
import signal
import socket
import sys

port, log = int(sys.argv[1]), sys.argv[2]
host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(128)
open(log, "a").close()
with open(log + ".port.tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(log + ".port.tmp", log + ".port")
n = 0
while True:
    c, a = s.accept()
    n += 1
    c.settimeout(1.0)
    data = b""
    try:
        while len(data) < 4096:
            b = c.recv(4096)
            if not b:
                break
            data += b
            if b"\r\n\r\n" in data:
                break
    except OSError:
        pass
    with open(log, "a") as f:
        f.write("accept %d %s:%d\n" % (n, a[0], a[1]))
        f.write("data %d %r\n" % (n, data[:4096]))
    c.close()
