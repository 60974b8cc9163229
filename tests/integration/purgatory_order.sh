#!/bin/sh
# purgatoryd: a child delivered before its parent is held, then both are
# released in order; a 1,000-event chain delivered in reverse ends fully
# stored with the stream in topological order; held events survive a restart.
# Real processes (validated + purgatoryd), real LMDB.
. tests/lib/lib.sh
pipeline_node alpha
PT="purgatory_tool"

bg purgatoryd -c "$CONF"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "purgatoryd and validated are up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"

# 1. child before parent
$PT gen -k "$D/signing.key" -s "$SRV" -n 3 --tag pc --ids "$T_TMP/pc.ids" > "$T_TMP/pc.jsonl"
sed -n 1p "$T_TMP/pc.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "the create event is stored at once" wait_for '[ "$(stat_of events)" = 1 ]'
sed -n 3p "$T_TMP/pc.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "the child is held" wait_for '[ "$(stat_of purgatory)" = 1 ]'
CHILD=$(sed -n 3p "$T_TMP/pc.ids"); PARENT=$(sed -n 2p "$T_TMP/pc.ids")
check "fedctl purgatory ls lists the child" sh -c "fedctl -c '$CONF' purgatory ls | grep -q -- '$CHILD'"
check "fedctl purgatory show names the missing parent as absent" \
	sh -c "fedctl -c '$CONF' purgatory show '$CHILD' | grep -- '$PARENT' | grep -q absent"
check_eq "nothing else stored while the parent is missing" 1 "$(stat_of events)"
sed -n 2p "$T_TMP/pc.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "parent arrives: both stored" wait_for '[ "$(stat_of events)" = 3 ] && [ "$(stat_of purgatory)" = 0 ]'
check_eq "stream order is create, parent, child" "$(cat "$T_TMP/pc.ids" | tr '\n' ' ')" \
	"$($PT stream -c "$CONF" | awk '{print $2}' | tr '\n' ' ')"
check_eq "missing_index is empty again" 0 "$(stat_of missing_index)"
check_eq "inbox is empty" 0 "$(stat_of inbox)"

# 2. a 1,000-event chain in reverse order
$PT gen -k "$D/signing.key" -s "$SRV" -n 1000 --tag rev > "$T_TMP/rev.jsonl"
tac "$T_TMP/rev.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "1,000-event reversed chain fully stored" wait_for '[ "$(stat_of events)" = 1003 ] && [ "$(stat_of purgatory)" = 0 ]' 600
check_eq "events/stream/outbox consistent and in topological order" "consistent=1 topo=1" \
	"$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
check_eq "outbox has one row per event" 1003 "$(stat_of outbox)"

# 3. duplicates are no-ops
sed -n 1,20p "$T_TMP/rev.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "re-delivered events leave the inbox" wait_for '[ "$(stat_of inbox)" = 0 ]'
check_eq "re-delivered events are not stored twice" 1003 "$(stat_of stream)"

# 4. held events survive a restart
$PT gen -k "$D/signing.key" -s "$SRV" -n 50 --tag rs > "$T_TMP/rs.jsonl"
tac "$T_TMP/rs.jsonl" | sed -n 1,49p | $PT submit -c "$CONF" - 2>/dev/null
check "49 events held" wait_for '[ "$(stat_of purgatory)" = 49 ]'
stop $PURG
bg purgatoryd -c "$CONF"; PURG=$LAST_PID
wait_for "[ -S $D/run/purgatoryd.sock ]"
check_eq "still held after a restart" 49 "$(stat_of purgatory)"
sed -n 1p "$T_TMP/rs.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "the create arrives after the restart: all 50 released" wait_for '[ "$(stat_of events)" = 1053 ] && [ "$(stat_of purgatory)" = 0 ]'
check_eq "still consistent and topological" "consistent=1 topo=1" "$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
check "purgatoryd counted what it did" sh -c "fedctl -c '$CONF' stats purgatoryd | grep -q '\"released\"'"
stop $PURG; stop $VAL
finish
