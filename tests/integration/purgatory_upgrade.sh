#!/bin/sh
# purgatoryd on a node upgraded with held events in the old row format (a
# JSON object with the PDU embedded, before the binary record): they are
# still held after the start, listed and shown by fedctl, paced, retried
# and dropped over FT_PURG_CTL, and released the moment their missing
# parent arrives. Real processes (validated + purgatoryd), real LMDB.
. tests/lib/lib.sh
pipeline_node alpha
PT=purgatory_tool

bg purgatoryd -c "$CONF"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "purgatoryd and validated are up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"
$PT gen -k "$D/signing.key" -s "$SRV" -n 3 --tag up --ids "$T_TMP/up.ids" > "$T_TMP/up.jsonl"
$PT gen -k "$D/signing.key" -s "$SRV" -n 3 --tag dr --ids "$T_TMP/dr.ids" > "$T_TMP/dr.jsonl"
sed -n 1p "$T_TMP/up.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
sed -n 1p "$T_TMP/dr.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "both create events stored" wait_for '[ "$(stat_of events)" = 2 ]'
stop $PURG

# the rows an older purgatoryd left: children whose parents never came
CHILD=$(sed -n 3p "$T_TMP/up.ids"); PARENT=$(sed -n 2p "$T_TMP/up.ids")
DCHILD=$(sed -n 3p "$T_TMP/dr.ids"); DPARENT=$(sed -n 2p "$T_TMP/dr.ids")
check_eq "an old JSON row written" "$CHILD" "$(sed -n 3p "$T_TMP/up.jsonl" | $PT hold-json -c "$CONF" --missing "$PARENT" -)"
check_eq "a second one" "$DCHILD" "$(sed -n 3p "$T_TMP/dr.jsonl" | $PT hold-json -c "$CONF" --missing "$DPARENT" -)"
check_eq "two held, two missing_index rows" "2 2" "$(stat_of purgatory) $(stat_of missing_index)"

bg purgatoryd -c "$CONF"; PURG=$LAST_PID
check "purgatoryd starts on them" wait_for "[ -S $D/run/purgatoryd.sock ]"
check "it counts them held" sh -c "fedctl -c '$CONF' stats purgatoryd | grep -q '\"held_events\":2'"
check_eq "still held after the start" 2 "$(stat_of purgatory)"
check "fedctl purgatory ls lists the old row" sh -c "fedctl -c '$CONF' purgatory ls | grep -q -- '$CHILD'"
check "fedctl purgatory show names its parent as absent" \
	sh -c "fedctl -c '$CONF' purgatory show '$CHILD' | grep -- '$PARENT' | grep -q absent"
check "fedctl --json purgatory show prints the record as JSON" \
	sh -c "fedctl -c '$CONF' --json purgatory show '$CHILD' | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"missing\"]==[\"$PARENT\"] and r[\"pdu\"][\"room_id\"]'"
check "retry of its room goes over FT_PURG_CTL" \
	sh -c "fedctl -c '$CONF' purgatory retry \"\$(sed -n 1p '$T_TMP/up.jsonl' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"room_id\"])')\" | grep -q 'fetch started'"
check "drop of an old row goes over FT_PURG_CTL" fedctl -c "$CONF" purgatory drop "$DCHILD"
check_eq "the dropped row and its missing_index row are gone" "1 1" "$(stat_of purgatory) $(stat_of missing_index)"

sed -n 2p "$T_TMP/up.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "the parent arrives: the old row's event is released" \
	wait_for '[ "$(stat_of events)" = 4 ] && [ "$(stat_of purgatory)" = 0 ]'
check_eq "missing_index is empty" 0 "$(stat_of missing_index)"
check_eq "stream order: the child after its parent" "$PARENT $CHILD" \
	"$($PT stream -c "$CONF" | awk '{print $2}' | tail -2 | tr '\n' ' ' | sed 's/ $//')"
check_eq "consistent and topological" "consistent=1 topo=1" "$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
stop $PURG; stop $VAL
finish
