#!/bin/sh
# served's answers on the wire (issue 19: served writes an answer at once,
# batches its epoll changes, reuses the read txn of GET /event/{id}): a
# 4 MB answer to a client that does not read yet (the socket takes only a
# part; the rest must follow), pipelined requests on one connection, a
# keep-alive connection after a big answer, HTTP/1.0 and Connection: close,
# Date and a Content-Length that matches the body, and an event stored
# after served answered (the reused read txn must see it: a fresh snapshot
# per request, never a stale 404).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = open
events_max_bytes = 8M")
served_fill -c "$A" -N 120 -s 40000 -o "$T_TMP/ids" >/dev/null || { not_ok "served_fill"; finish; exit 1; }
node_start a served
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
E5=$(sed -n 5p "$T_TMP/ids")
EP="/_matrix/federation/v1/event/$(enc "$E5")"
cat >"$T_TMP/wire.py" <<'PY'
import json, socket, sys, time
port, mode, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def conn(rcvbuf=None):
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port)); s.settimeout(20)
    return s
def read_answer(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d: raise SystemExit("closed before the headers")
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    h = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(h["content-length"])
    while len(buf) < n:
        d = s.recv(1 << 20)
        if not d: raise SystemExit("closed after %d of %d body bytes" % (len(buf), n))
        buf += d
    return lines[0], h, buf[:n], buf[n:]
req = lambda p, extra="": ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (p, extra)).encode()
if mode == "slow":          # a big answer to a reader that waits first
    s = conn(4096)
    s.sendall(req(path)); time.sleep(1.5)
    st, h, body, rest = read_answer(s, b"")
    ev = json.loads(body)["events"]
    s.sendall(req("/healthz"))                    # the connection is still good
    st2, h2, body2, rest = read_answer(s, rest)
    print(st.split()[1], len(ev), "date" in h, st2.split()[1], json.loads(body2)["ok"])
elif mode == "pipe":        # two requests in one segment, then one more
    s = conn()
    s.sendall(req(path) + req(path))
    out = []
    rest = b""
    for _ in range(2):
        st, h, body, rest = read_answer(s, rest)
        out.append(json.loads(body)["pdus"][0]["depth"])
    s.sendall(req(path, "Connection: close\r\n"))
    st, h, body, rest = read_answer(s, rest)
    out.append(json.loads(body)["pdus"][0]["depth"])
    out.append(h.get("connection"))
    out.append(s.recv(10) == b"")                 # closed after it
    print(*out)
elif mode == "http10":
    s = conn()
    s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    head, body = data.split(b"\r\n\r\n", 1)
    print(head.split(b"\r\n")[0].decode(), json.loads(body)["pdus"][0]["depth"])
PY
check_eq "4 MB answer to a reader that waits: whole, then the connection serves again" "200 100 True 200 True" \
	"$(python3 "$T_TMP/wire.py" "$P" slow "/_fed/v1/events?since=0&limit=100" 2>&1)"
check_eq "pipelined requests, then Connection: close" "5 5 5 close True" "$(python3 "$T_TMP/wire.py" "$P" pipe "$EP" 2>&1)"
check_eq "HTTP/1.0: answered, then closed" "HTTP/1.0 200 OK 5" "$(python3 "$T_TMP/wire.py" "$P" http10 "$EP" 2>&1)"
curl -s -D "$T_TMP/h" -o "$T_TMP/b" "$U$EP"
check_eq "Content-Length is the body's length" "$(wc -c <"$T_TMP/b" | tr -d ' ')" "$(sed -n 's/^Content-Length: \([0-9]*\).*/\1/p' "$T_TMP/h")"
check "Date header (RFC 1123)" grep -Eq '^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT' "$T_TMP/h"
check_eq "event answer: origin and the stored PDU" "a.test:$P $E5" "$(jq -r '.origin' "$T_TMP/b") $(jq -c '.pdus[0]' "$T_TMP/b" | fp_pdu id 10)"
# A snapshot per request: an event stored after served answered is found.
served_fill -c "$A" -N 3 -s 300 -o "$T_TMP/new" >/dev/null || not_ok "served_fill (more)"
N1=$(sed -n 3p "$T_TMP/new")
check_eq "an event stored after the last answer: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/_matrix/federation/v1/event/$(enc "$N1")")"
check_eq "a miss: 404 M_NOT_FOUND" M_NOT_FOUND "$(curl -s "$U/_matrix/federation/v1/event/%24nope" | jq -r .errcode)"
check "hits and misses counted" sh -c "curl -s $U/metrics | grep -Eq '^fedpipe_http_event_lookups_total[{]result=.hit.[}] [1-9]' && curl -s $U/metrics | grep -Eq '^fedpipe_http_event_lookups_total[{]result=.miss.[}] [1-9]'"
finish
