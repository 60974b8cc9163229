#!/bin/sh
# kill -9 of syncd in the middle of pulls, repeatedly, with the whole
# pipeline running on B: afterwards every event A made is stored on B
# exactly once (none lost: the cursor only moves in the txn that puts the
# batch in the inbox; none duplicated: purgatoryd is idempotent and the
# stream holds each event once), parents before children.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA")
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[syncd]
interval = 200ms
batch = 20
longpoll = 500ms
[peer a]
endpoint = http://127.0.0.1:$PA")
N=${FP_CRASH_EVENTS:-30000}
for r in 1 2 3 4 5; do served_fill -c "$A" -N $((N / 5)) -s 300 -o "$T_TMP/a.ids" >/dev/null; done
TOTAL=$(wc -l <"$T_TMP/a.ids" | tr -d ' ')
node_start a served
node_start b validated purgatoryd served
check "up" wait_for "http_up http://127.0.0.1:$PA/healthz && http_up http://127.0.0.1:$PB/healthz"
kills=0 mid=0 c=0
cursor() { fedctl -c "$B" peers --json | jq -r '.[0].cursor // 0'; }
for i in 1 2 3 4 5 6 7 8 9 10; do
	bg syncd -c "$B" 2>>"$T_TMP/b/syncd.log"; PID_b_syncd=$LAST_PID
	# Kill as soon as this run has moved the cursor: mid-pull by construction,
	# whatever the machine's speed (batches of 20 events).
	prev=$c
	wait_for "[ \$(cursor) -gt $prev ]" 100
	kill -KILL "$PID_b_syncd" 2>/dev/null && kills=$((kills + 1))
	wait "$PID_b_syncd" 2>/dev/null
	c=$(fedctl -c "$B" peers --json | jq -r '.[0].cursor')
	[ "$c" -gt 0 ] && [ "$c" -lt "$TOTAL" ] && mid=$((mid + 1))
	diag "kill $i: cursor $c of $TOTAL"
done
check "syncd was killed mid-pull ($mid of $kills kills left the cursor between 0 and the end)" [ "$mid" -ge 2 ]
node_start b syncd
check "B catches up" wait_for \
	"[ \"\$(fed_check http://127.0.0.1:$PB $T_TMP/a.ids | cut -d' ' -f1,2)\" = 'count=$TOTAL missing=0' ]" 600
check_eq "every event exactly once, parents first" "count=$TOTAL missing=0 dup=0 order=ok" \
	"$(fed_check "http://127.0.0.1:$PB" "$T_TMP/a.ids")"
check "the inbox drains" wait_for "[ \"\$(curl -s http://127.0.0.1:$PB/metrics | sed -n 's/^fedpipe_lmdb_entries{db=\"inbox\"} //p')\" = 0 ]" 100
check_eq "nothing rejected" 0 "$(curl -s http://127.0.0.1:$PB/metrics | sed -n 's/^fedpipe_lmdb_entries{db="rejects"} //p')"
finish
