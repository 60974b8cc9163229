#!/bin/sh
# feedpump -> NATS JetStream, crash safety of the fast path (a ring of
# batches in flight, write-backs committed with one sync: store/outbox.h),
# against a real nats-server -js:
#  - kill -9 at random moments while events arrive: afterwards the stream
#    holds every event exactly once, in outbox order, and every outbox row
#    says published with the stream sequence its event has in the stream;
#  - a write-back undone (what an OS crash can do to the last relaxed
#    commit: the data file put back to its state before that write-back):
#    the rows are unpublished again, feedpump re-publishes them, the stream
#    drops them as duplicates (same sequences), nothing lost, nothing twice;
#  - the bound of that argument: the same undo redone after the stream's
#    duplicate window has passed does duplicate (so nats_dup_window must
#    cover the time a node takes to come back).
. tests/lib/lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
command -v mdb_dump >/dev/null || { skip "mdb_dump not installed"; finish; exit 0; }
NP=$(free_port)
URL=nats://127.0.0.1:$NP
conf=$(node_config alpha "$(free_port)" "sink = nats
nats_url = $URL
nats_subject = fp.crash.events
nats_stream = FPCRASH
nats_timeout = 2s
[feedpump]
backoff_min = 50ms
backoff_max = 500ms")
D=$T_TMP/alpha
bg nats-server -js -a 127.0.0.1 -p "$NP" -sd "$T_TMP/nats" 2>>"$T_TMP/nats.log"
wait_for "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\",$NP))'" 100

tail_to() { fedctl -c "$1" feed tail --source "nats:$2" >"$3"; }
# outbox rows as "event_id control_version" lines (mdb_dump -p: the JSON
# values are printable; the binary keys are on their own lines)
outbox_rows() {
	mdb_dump -p -s outbox "$1" | sed -n 's/^ *\({"attempts".*\)$/\1/p' | sed 's/\\\\/\\/g' |
		jq -r '"\(.event_id) \(.control_version)"'
}
# every row published with the sequence its event has in the stream
rows_match_stream() { # state_dir tail_file
	outbox_rows "$1" | sort >"$T_TMP/rows.sorted"
	jq -r '"\(.event_id) \(.control_version)"' "$2" | sort >"$T_TMP/stream.sorted"
	cmp -s "$T_TMP/rows.sorted" "$T_TMP/stream.sorted"
}

# 1. kill -9 at random moments, batch 16 (a ring of 256 rows: many batches
# in flight and write-backs in progress when the kill lands)
N=3000
bg feed_fill "$D/state" $N --batch 20 --delay-ms 8 --run-dir "$D/run"
FILL=$LAST_PID
i=0
while [ $i -lt 12 ]; do
	feedpump -c "$conf" --batch 16 2>>"$T_TMP/fp.log" &
	P=$!
	sleep "$(awk -v s="$$$i" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 0.4 }')"
	kill -9 $P 2>/dev/null; wait $P 2>/dev/null
	i=$((i + 1))
done
wait $FILL
check "kill -9 run: the last feedpump drains the rest" feedpump -c "$conf" --once 2>>"$T_TMP/fp.log"
tail_to "$conf" fp.crash.events "$T_TMP/t1"
check_eq "the stream holds every event" $N "$(wc -l <"$T_TMP/t1" | tr -d ' ')"
check_eq "no event twice in the stream" $N "$(jq -r .event_id "$T_TMP/t1" | sort -u | wc -l | tr -d ' ')"
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "$e_%07d\n", i }' >"$T_TMP/expect"
check "stream order = outbox order" sh -c "jq -r .event_id '$T_TMP/t1' | cmp -s - '$T_TMP/expect'"
check "control version = stream sequence" sh -c "jq -r .control_version '$T_TMP/t1' | awk '\$1 != NR { exit 1 }'"
check "every outbox row published, with its event's stream sequence" rows_match_stream "$D/state" "$T_TMP/t1"
kills=$(grep -c 'holding the drain lease' "$T_TMP/fp.log")
check "feedpump really ran: $kills of 13 runs held the drain lease" test "$kills" -ge 7

# 2. a write-back undone: the data file as it was before it
M=400
feed_fill "$D/state" $M --prefix undo --batch 100 >/dev/null 2>&1
cp "$D/state/data.mdb" "$T_TMP/before.mdb"
check "publish $M more" feedpump -c "$conf" --once 2>>"$T_TMP/undo1.log"
tail_to "$conf" fp.crash.events "$T_TMP/t2"
check_eq "the stream holds $((N + M))" $((N + M)) "$(wc -l <"$T_TMP/t2" | tr -d ' ')"
cp "$T_TMP/before.mdb" "$D/state/data.mdb"
check_eq "write-back undone: $M rows unpublished again" $M "$(fedctl -c "$conf" --json feed status | jq .pending)"
check "feedpump re-publishes them" feedpump -c "$conf" --once 2>>"$T_TMP/undo2.log"
check "the re-publishes were acked as duplicates" grep -q 'duplicate publish ack' "$T_TMP/undo2.log"
tail_to "$conf" fp.crash.events "$T_TMP/t3"
check_eq "still exactly once: $((N + M)) messages" $((N + M)) "$(wc -l <"$T_TMP/t3" | tr -d ' ')"
check_eq "no event twice" $((N + M)) "$(jq -r .event_id "$T_TMP/t3" | sort -u | wc -l | tr -d ' ')"
check "re-published rows got their original sequences" rows_match_stream "$D/state" "$T_TMP/t3"
check_eq "nothing pending" 0 "$(fedctl -c "$conf" --json feed status | jq .pending)"

# 3. the bound: the same undo, re-published after the duplicate window
conf2=$(node_config beta "$(free_port)" "sink = nats
nats_url = $URL
nats_subject = fp.crash.window
nats_stream = FPWINDOW
nats_dup_window = 1s
nats_timeout = 2s")
B=$T_TMP/beta
feed_fill "$B/state" 20 --prefix win >/dev/null 2>&1
cp "$B/state/data.mdb" "$T_TMP/beta.mdb"
feedpump -c "$conf2" --once 2>>"$T_TMP/win.log"
# the server forgets IDs on its own schedule: redo the undo until it has
n=20 tries=0
while [ "$n" -le 20 ] && [ $tries -lt 30 ]; do
	cp "$T_TMP/beta.mdb" "$B/state/data.mdb"
	sleep 1
	feedpump -c "$conf2" --once 2>>"$T_TMP/win.log"
	tail_to "$conf2" fp.crash.window "$T_TMP/w"
	n=$(wc -l <"$T_TMP/w" | tr -d ' ')
	tries=$((tries + 1))
done
check "undo re-published after the 1 s duplicate window: duplicated ($n messages for 20 events; the window is the bound)" \
	test "$n" -gt 20
finish
