#!/bin/sh
# purgatoryd: kill -9 at random moments while 5,000 events (20 rooms, shuffled,
# so many are held and released) flow in. Afterwards every event is stored
# exactly once and appears exactly once in the outbox, in topological order.
# Nothing is lost because the inbox row leaves only in the deciding txn and
# validated's rescan re-sends verdicts that died with purgatoryd.
. tests/lib/lib.sh
pipeline_node alpha
PT=purgatory_tool
rnd() { od -An -N1 -tu1 /dev/urandom | tr -d ' '; }

$PT gen -k "$D/signing.key" -s "$SRV" -n 250 --rooms 20 --tag k --shuffle 7 > "$T_TMP/all.jsonl"
check_eq "5,000 signed events generated" 5000 "$(wc -l < "$T_TMP/all.jsonl" | tr -d ' ')"
split -l 250 "$T_TMP/all.jsonl" "$T_TMP/part."

bg validated -c "$CONF"; VAL=$LAST_PID
bg purgatoryd -c "$CONF"; PURG=$LAST_PID
check "up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"

( for p in "$T_TMP"/part.*; do $PT submit -c "$CONF" "$p" 2>/dev/null; sleep 0.2; done; touch "$T_TMP/fed" ) &
FEEDER=$!
T_PIDS="$T_PIDS $FEEDER"
kills=0
while [ $kills -lt 8 ]; do
	sleep "0.$(( $(rnd) % 6 + 1 ))"
	kill -9 $PURG 2>/dev/null; wait $PURG 2>/dev/null
	kills=$((kills + 1))
	bg purgatoryd -c "$CONF"; PURG=$LAST_PID
	wait_for "[ -S $D/run/purgatoryd.sock ]" 50
done
diag "killed purgatoryd $kills times (-9) while events flowed"
wait $FEEDER
check "all 5,000 events stored" wait_for '[ "$(stat_of events)" = 5000 ] && [ "$(stat_of inbox)" = 0 ] && [ "$(stat_of purgatory)" = 0 ]' 1200
S=$($PT check -c "$CONF")
diag "$S"
check_eq "stream has each event exactly once" 5000 "$(stat_of stream)"
check_eq "outbox has each event exactly once" 5000 "$(stat_of outbox)"
check_eq "distinct event IDs in the stream" 5000 "$($PT stream -c "$CONF" | awk '{print $2}' | sort -u | wc -l | tr -d ' ')"
check_eq "events/stream/outbox agree; parents before children" "consistent=1 topo=1" "$(echo "$S" | grep -o 'consistent=. topo=.')"
check_eq "no rejects" 0 "$(stat_of rejects)"
check_eq "missing_index empty" 0 "$(stat_of missing_index)"
stop $PURG; stop $VAL
finish
