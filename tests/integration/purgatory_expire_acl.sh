#!/bin/sh
# purgatoryd: a missing event that never arrives expires (with its reason and
# missing list) after a shortened max_hold; `fedctl expired requeue` brings it
# back; an event from a denied server stays held, and is released after the
# ACL changes and SIGHUP. Real validated + purgatoryd, real LMDB.
. tests/lib/lib.sh
PORT=$(free_port)
mk_conf() { # $1 = acl deny list
node_config alpha "$PORT" "
[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
max_hold = 2s
[acl]
deny = $1"
}
CONF=$(mk_conf "")
D=$T_TMP/alpha
SRV=$(sed -n 's/^server_name = //p' "$CONF")
PT=purgatory_tool
F="fedctl -c $CONF"
stat_of() { $PT check -c "$CONF" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

bg purgatoryd -c "$CONF"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "purgatoryd and validated are up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"

# expiry: event 3 of a chain whose event 2 never arrives
$PT gen -k "$D/signing.key" -s "$SRV" -n 3 --tag ex --ids "$T_TMP/ex.ids" > "$T_TMP/ex.jsonl"
sed -n '1p;3p' "$T_TMP/ex.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
X=$(sed -n 3p "$T_TMP/ex.ids"); P=$(sed -n 2p "$T_TMP/ex.ids")
check "the orphan is held" wait_for '[ "$(stat_of purgatory)" = 1 ]'
check "after max_hold it expires" wait_for '[ "$(stat_of expired)" = 1 ] && [ "$(stat_of purgatory)" = 0 ]'
check_eq "its missing_index rows are gone" 0 "$(stat_of missing_index)"
check "fedctl expired ls shows it with its reason" sh -c "$F expired ls | grep -- '$X' | grep -q missing_events"
check "fedctl expired show lists the missing parent" sh -c "$F expired show '$X' | grep -q -- '$P'"
check "--json listing parses" sh -c "$F --json expired ls | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0][\"event_id\"]==\"$X\" and d[0][\"missing\"]==1'"
check "requeue puts it back" $F expired requeue "$X"
check "requeued: it leaves expired and is held again" wait_for '[ "$(stat_of expired)" = 0 ] && [ "$(stat_of purgatory)" = 1 ]'
sed -n 2p "$T_TMP/ex.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "the parent arrives: both stored" wait_for '[ "$(stat_of events)" = 3 ] && [ "$(stat_of purgatory)" = 0 ]'
check "requeue of an unknown ID fails clearly" sh -c "! $F expired requeue '\$nope' 2>&1 | grep -q xx; $F expired requeue '\$nope' 2>&1 | grep -q 'not in expired'"

# many at once: requeue --all
$PT gen -k "$D/signing.key" -s "$SRV" -n 12 --tag many > "$T_TMP/many.jsonl"
sed -n '1p;3,12p' "$T_TMP/many.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "10 orphans expire" wait_for '[ "$(stat_of expired)" = 10 ]'
check "expired requeue --all" sh -c "$F expired requeue --all 2>/dev/null | grep -q 'requeued 10'"
sed -n 2p "$T_TMP/many.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "requeued events are released once the gap is filled" wait_for '[ "$(stat_of events)" = 15 ] && [ "$(stat_of expired)" = 0 ]'

# operator drop
$PT gen -k "$D/signing.key" -s "$SRV" -n 3 --tag dr --ids "$T_TMP/dr.ids" > "$T_TMP/dr.jsonl"
sed -n '3p' "$T_TMP/dr.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "held" wait_for '[ "$(stat_of purgatory)" = 1 ]'
check "fedctl purgatory drop" $F purgatory drop "$(sed -n 3p "$T_TMP/dr.ids")"
check_eq "dropped from purgatory and missing_index" "0 0" "$(stat_of purgatory) $(stat_of missing_index)"

# ACL: a denied server's events stay held, whatever arrives
stop $PURG
mk_conf "$SRV" >/dev/null
sed -i 's/^max_hold = 2s/max_hold = 30m/' "$CONF"
bg purgatoryd -c "$CONF"; PURG=$LAST_PID
wait_for "[ -S $D/run/purgatoryd.sock ]"
$PT gen -k "$D/signing.key" -s "$SRV" -n 5 --tag acl > "$T_TMP/acl.jsonl"
$PT submit -c "$CONF" "$T_TMP/acl.jsonl" 2>/dev/null
check "events of a denied server are held, even with all deps present" \
	wait_for '[ "$(stat_of purgatory)" = 5 ] && [ "$(stat_of inbox)" = 0 ]'
sleep 1
check_eq "none stored" 15 "$(stat_of events)"
check "ls says they wait for the ACL" sh -c "$F purgatory ls | grep -q 'waits: ACL'"
mk_conf "" >/dev/null
sed -i 's/^max_hold = 2s/max_hold = 30m/' "$CONF"
kill -HUP $PURG
check "after the ACL change and SIGHUP they are released" wait_for '[ "$(stat_of events)" = 20 ] && [ "$(stat_of purgatory)" = 0 ]'
check_eq "consistent and topological" "consistent=1 topo=1" "$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
stop $PURG; stop $VAL
finish
