#!/bin/sh
# feed_nats_lateack.sh: an ack whose reply number belongs to no span in
# flight must settle nothing. The NATS sink numbers its messages' reply
# subjects <inbox>.<n>; a batch waiting for the publisher thread has no
# numbers yet. Before the fix it matched numbers 0..batch-1 (its base was
# still 0), so a late ack of the first, long released batch (or any client
# on the NATS server that sends one there) marked an event of a batch not
# yet sent as published, with another event's stream sequence: a row
# written back as published that the stream may never have got.
# Attack, against real processes: a client that can subscribe to _INBOX.>
# learns feedpump's inbox from a real ack, then floods <inbox>.0 (the first
# batch's number, released long ago) with a forged ack (seq 999999) while
# feedpump drains 6000 events in batches of 16. No outbox row may carry
# 999999, and every row must carry the sequence its event has in the stream.
. tests/lib/lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
command -v mdb_dump >/dev/null || { skip "mdb_dump not installed"; finish; exit 0; }
NP=$(free_port)
conf=$(node_config alpha "$(free_port)" "sink = nats
nats_url = nats://127.0.0.1:$NP
nats_subject = fp.late.events
nats_stream = FPLATE
nats_timeout = 5s")
D=$T_TMP/alpha
bg nats-server -js -a 127.0.0.1 -p "$NP" -sd "$T_TMP/nats" 2>>"$T_TMP/nats.log"
wait_for "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\",$NP))'" 100
outbox_rows() {
	mdb_dump -p -s outbox "$1" | sed -n 's/^ *\({"attempts".*\)$/\1/p' | sed 's/\\\\/\\/g' |
		jq -r '"\(.event_id) \(.control_version)"'
}
N=20000
feed_fill "$D/state" $N --batch 500 >/dev/null 2>&1
check_eq "$N events in the outbox" "$N" "$(fedctl -c "$conf" --json feed status | jq .pending)"
# the forger: learn the inbox from the first real ack, then flood <inbox>.0
cat >"$T_TMP/forger.py" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(4096)
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.> 1\r\nPING\r\n')
buf = b""
while b"PONG" not in buf:
    buf += s.recv(65536)
open(sys.argv[2] + ".ready", "w").close()
inbox = None
while inbox is None:
    buf = buf[-65536:] + s.recv(65536)
    for line in buf.split(b"\r\n"):
        if line.startswith(b"MSG _INBOX."):
            subj = line.split()[1]
            n = int(subj.rsplit(b".", 1)[1])
            if n >= 64:                    # the first batches are long released
                inbox = subj.rsplit(b".", 1)[0]
                break
s.sendall(b"UNSUB 1\r\n")
ack = b'{"stream":"FPLATE","seq":999999}'
pub = b"PUB " + inbox + b".0 %d\r\n" % len(ack) + ack + b"\r\n"
open(sys.argv[2], "w").write(inbox.decode())
try:
    while True:
        s.sendall(pub * 50)
except OSError:
    pass
PY
bg python3 "$T_TMP/forger.py" "$NP" "$T_TMP/forged"
FORGER=$LAST_PID
check "the forger is subscribed" wait_for "[ -e '$T_TMP/forged.ready' ]" 100
check "feedpump drains all of it while forged acks arrive" feedpump -c "$conf" --once --batch 16 2>"$T_TMP/fp.log"
check "the forger learned the inbox and flooded during the drain" test -s "$T_TMP/forged"
stop $FORGER
outbox_rows "$D/state" >"$T_TMP/rows"
check_eq "every row published" "$N" "$(awk '$2 > 0' "$T_TMP/rows" | wc -l | tr -d ' ')"
check_eq "no row carries the forged sequence" 0 "$(awk '$2 == 999999' "$T_TMP/rows" | wc -l | tr -d ' ')"
fedctl -c "$conf" feed tail --source nats:fp.late.events | jq -r '"\(.event_id) \(.control_version)"' | sort >"$T_TMP/stream"
sort "$T_TMP/rows" >"$T_TMP/rows.s"
check_eq "the stream holds each event once" "$N" "$(wc -l <"$T_TMP/stream" | tr -d ' ')"
check "every row carries its event's own stream sequence" cmp -s "$T_TMP/rows.s" "$T_TMP/stream"
finish
