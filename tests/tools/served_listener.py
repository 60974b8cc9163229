#!/usr/bin/env python3
"""served_listener.py PORT COUNTFILE [hang|404]: a TCP listener on 127.0.0.1
that counts the connections it accepts (the count is rewritten to COUNTFILE
after each). hang: hold every connection, never answer (a recovery then stays
in flight); 404: answer every request with a Matrix 404 and close."""
import socket, sys, threading

port, countfile = int(sys.argv[1]), sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "hang"
n = 0
held = []
lock = threading.Lock()
open(countfile, "w").write("0\n")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(128)


def answer(c):
    try:
        c.settimeout(5)
        c.recv(65536)
        body = b'{"errcode":"M_NOT_FOUND","error":"no"}'
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass
    c.close()


while True:
    c, _ = ls.accept()
    with lock:
        n += 1
        open(countfile, "w").write("%d\n" % n)
    if mode == "404":
        threading.Thread(target=answer, args=(c,), daemon=True).start()
    else:
        held.append(c)
