#!/bin/sh
# Issue 13 item 8: a peer cannot poison the vector clock. L (a real served
# behind tests/tools/syncd_badpeer.py liar) claims in every clock it sends a
# huge position for honest H's node ID. B syncs with both (longpoll = 0, so
# only its own skip decision decides whether it pulls H again). Events made
# on H after B stored L's lie still arrive.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PH=$(free_port); PL=$(free_port); PLX=$(free_port); PB=$(free_port)
H=$(node_config h "$PH")
L=$(node_config l "$PLX")
served_fill -c "$H" -N 10 >/dev/null
served_fill -c "$L" -N 3 >/dev/null
node_start h served
node_start l served
check "H and L up" wait_for "http_up http://127.0.0.1:$PH/healthz && http_up http://127.0.0.1:$PLX/healthz"
HID=$(curl -s "http://127.0.0.1:$PH/_fed/v1/identity" | jq -r .node_id)
LIAR_CLOCK="$HID=1000000000000000" bg python3 tests/tools/syncd_badpeer.py "$PL" liar "http://127.0.0.1:$PLX"
check "the liar answers with the lie" wait_for \
	"curl -s http://127.0.0.1:$PL/_fed/v1/identity | jq -e '.vclock[\"$HID\"] == 1000000000000000'"
B=$(node_config b "$PB" "
[syncd]
interval = 300ms
backoff_max = 1s
longpoll = 0
[peer l]
endpoint = http://127.0.0.1:$PL
[peer h]
endpoint = http://127.0.0.1:$PH")
peer() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
node_start b syncd
check "B caught up with the liar and stored its clock (with the lie)" wait_for \
	"fedctl -c $B peers l --json | jq -e '.[0].cursor == 4 and .[0].clock[\"$HID\"] == 1000000000000000'" 200
check "B pulled H's first 11 events" wait_for "[ \"\$(peer h cursor)\" = 11 ]" 200
# Let a few rounds pass with the lie in place, then H makes more events.
skipped() { fedctl -c "$B" stats syncd | grep -o '"pulls_skipped":[0-9]*' | cut -d: -f2; }
S0=$(skipped)
check "rounds with nothing new are still skipped" wait_for "[ \$(skipped) -gt $S0 ]" 200
served_fill -c "$H" -N 7 >/dev/null
check "events made on H after the lie arrive (cursor 11 -> 19)" wait_for "[ \"\$(peer h cursor)\" = 19 ]" 200
served_fill -c "$H" -N 2 >/dev/null
check "and again (cursor -> 22)" wait_for "[ \"\$(peer h cursor)\" = 22 ]" 200
check_eq "h is healthy" ok "$(peer h health)"
finish
