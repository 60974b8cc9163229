#!/bin/sh
# reload_stages: SIGHUP purgatoryd, feedpump and validated with changed
# values, once each and then repeatedly under load. Every change takes
# effect: validated's check_signatures turns signature checking on (events
# with forged signatures accepted before, rejected after); purgatoryd's ACL
# holds a server's events and releases them when lifted; feedpump's batch
# size changes how it publishes. Nothing is lost, nobody crashes (run it
# under `make asan TESTS=reload_stages`: nothing is read after free).
. tests/lib/lib.sh
CONF=$(node_config alpha "$(free_port)" "
[validated]
rescan_every = 300ms
rescan_age = 1s
check_signatures = no
[purgatoryd]
debounce = 100ms
tick = 200ms
[feedpump]
batch = 1000
interval = 200ms
[acl]
deny =
[feed]
sink = file")
D=$T_TMP/alpha
SRV=$(sed -n 's/^server_name = //p' "$CONF")
PT=purgatory_tool
stat_of() { $PT check -c "$CONF" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
counter() { fedctl -c "$CONF" --json stats "$1" 2>/dev/null | jq -r ".$1.counters.$2 // 0"; }
set_conf() { sed -i "s|^$1 *=.*|$1 = $2|" "$CONF"; }
# events of a fresh room whose signatures are forged (valid base64, wrong bytes)
forged() {
	$PT gen -k "$D/signing.key" -s "$SRV" -n "$1" --rooms 1 --tag "$2" |
	python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    for srv in e["signatures"].values():
        for k in srv: srv[k] = "A" * 86
    print(json.dumps(e, separators=(",", ":")))'
}
bg validated -c "$CONF" -v 2>"$T_TMP/validated.log"; VAL=$LAST_PID
bg purgatoryd -c "$CONF" -v 2>"$T_TMP/purgatoryd.log"; PURG=$LAST_PID
bg feedpump -c "$CONF" -v 2>"$T_TMP/feedpump.log"; FEED=$LAST_PID
check "up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ] && [ -S $D/run/feedpump.sock ]"

# validated: check_signatures no -> yes
forged 5 a | $PT submit -c "$CONF" - 2>/dev/null
check "signatures off: 5 forged events stored" wait_for '[ "$(stat_of events)" = 5 ] && [ "$(stat_of inbox)" = 0 ]' 300
set_conf check_signatures yes
kill -HUP $VAL
check "validated reloaded with signatures on" wait_for "grep -q 'reload: checks:.*signatures' $T_TMP/validated.log" 100
forged 5 b | $PT submit -c "$CONF" - 2>/dev/null
check "signatures on: 5 forged events rejected, none stored" wait_for '[ "$(stat_of rejects)" = 5 ] && [ "$(stat_of inbox)" = 0 ]' 300
check_eq "... still 5 events" 5 "$(stat_of events)"

# purgatoryd: an ACL that denies our server holds; lifting it releases
set_conf deny "$SRV"
kill -HUP $PURG
check "purgatoryd reloaded" wait_for "grep -q 'reload: batch_max' $T_TMP/purgatoryd.log" 100
$PT gen -k "$D/signing.key" -s "$SRV" -n 10 --rooms 1 --tag c | $PT submit -c "$CONF" - 2>/dev/null
check "ACL deny: 10 events held" wait_for '[ "$(stat_of purgatory)" = 10 ] && [ "$(stat_of inbox)" = 0 ]' 300
check_eq "... none stored" 5 "$(stat_of events)"
set_conf deny ""
kill -HUP $PURG
check "ACL lifted: the 10 held events released" wait_for '[ "$(stat_of events)" = 15 ] && [ "$(stat_of purgatory)" = 0 ]' 300

# feedpump: batch 1000 -> 1
check "feedpump published the 15" wait_for '[ "$(counter feedpump published)" = 15 ]' 300
B0=$(counter feedpump batches)
set_conf batch 1
kill -HUP $FEED
check "feedpump reloaded: batch 1000 -> 1" wait_for "grep -q 'reload: batch 1000 -> 1' $T_TMP/feedpump.log" 100
$PT gen -k "$D/signing.key" -s "$SRV" -n 20 --rooms 1 --tag d | $PT submit -c "$CONF" - 2>/dev/null
check "20 more published" wait_for '[ "$(counter feedpump published)" = 35 ]' 300
B1=$(counter feedpump batches)
check "batch 1: one write-back per event ($B0 -> $B1 batches)" test $((B1 - B0)) -ge 20

# repeatedly, under load, with values flipping
$PT gen -k "$D/signing.key" -s "$SRV" -n 100 --rooms 3 --tag e --shuffle 3 >"$T_TMP/e.jsonl"
split -l 30 "$T_TMP/e.jsonl" "$T_TMP/e."
( for f in "$T_TMP"/e.??; do $PT submit -c "$CONF" "$f" 2>/dev/null; sleep 0.2; done; touch "$T_TMP/fed" ) &
FEEDER=$!
T_PIDS="$T_PIDS $FEEDER"
n=0
while [ ! -f "$T_TMP/fed" ] && [ $n -lt 200 ]; do
	if [ $((n % 2)) -eq 0 ]; then set_conf batch 7; set_conf tick 300ms; set_conf rescan_every 500ms
	else set_conf batch 1; set_conf tick 200ms; set_conf rescan_every 300ms; fi
	kill -HUP $VAL $PURG $FEED
	n=$((n + 1))
	sleep 0.2
done
wait $FEEDER
diag "SIGHUPs under load: $n to each stage"
check "several reloads under load" test $n -ge 5
check "all 335 events stored" wait_for '[ "$(stat_of events)" = 335 ] && [ "$(stat_of inbox)" = 0 ] && [ "$(stat_of purgatory)" = 0 ]' 600
check "all 335 published" wait_for '[ "$(counter feedpump published)" = 335 ]' 600
check_eq "events/stream/outbox consistent, parents first" "consistent=1 topo=1" "$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
check "every stage still running" sh -c "kill -0 $VAL && kill -0 $PURG && kill -0 $FEED"
check "no sanitizer report" sh -c "! grep -l 'Sanitizer\|runtime error' $T_TMP/*.log"
stop $FEED; stop $PURG; stop $VAL
check "no sanitizer report at exit" sh -c "! grep -l 'Sanitizer\|runtime error' $T_TMP/*.log"
finish
