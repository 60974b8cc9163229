#!/bin/sh
# validated looks a live event up in the store only while such lookups
# find something: after 256 misses in a row only 1 live event in 32 is
# looked up, and one hit turns the lookup on for every live event again.
# Safe because the lookup only ever spares a signature check; whether an
# event is stored is decided by purgatoryd inside its write transaction.
# The attack-like case: events already stored are delivered again (new
# inbox rows, live frames) once the lookup is off and validated's seen
# cache no longer knows them (a restart). Nothing is stored twice, each
# re-delivery is a duplicate in purgatoryd, the first sampled lookup finds
# one and turns the lookup back on.
. tests/lib/lib.sh
pipeline_node alpha
PT=purgatory_tool
vstat() { stage_stat "$CONF" validated "$1"; }
pstat() { fedctl -c "$CONF" stats purgatoryd | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }

bg purgatoryd -c "$CONF"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"
$PT gen -k "$D/signing.key" -s "$SRV" -n 100 --tag old > "$T_TMP/old.jsonl"
$PT submit -c "$CONF" "$T_TMP/old.jsonl" 2>/dev/null
check "100 events stored" wait_for '[ "$(stat_of events)" = 100 ] && [ "$(stat_of inbox)" = 0 ]' 1200

# a new validated: an empty seen cache
stop $VAL
bg validated -c "$CONF"; VAL=$LAST_PID
check "validated again" wait_for "[ -S $D/run/validated.sock ] && fedctl -c '$CONF' stats validated >/dev/null 2>&1"
$PT gen -k "$D/signing.key" -s "$SRV" -n 300 --tag new > "$T_TMP/new.jsonl"
$PT submit -c "$CONF" "$T_TMP/new.jsonl" 2>/dev/null
check "300 new events stored" wait_for '[ "$(stat_of events)" = 400 ] && [ "$(stat_of inbox)" = 0 ]' 1200
check "after 256 misses live lookups are left out" sh -c "[ \"\$(fedctl -c '$CONF' stats validated | grep -o '\"store_lookups_skipped\":[0-9]*' | cut -d: -f2)\" -gt 0 ]"
D0=$(pstat duplicates); D0=${D0:-0}

# the stored 100 again, as live frames
$PT submit -c "$CONF" "$T_TMP/old.jsonl" 2>/dev/null
check "the re-delivered events leave the inbox" wait_for '[ "$(stat_of inbox)" = 0 ] && [ "$(stat_of purgatory)" = 0 ]' 1200
check_eq "nothing stored twice: events" 400 "$(stat_of events)"
check_eq "nothing stored twice: stream" 400 "$(stat_of stream)"
check_eq "nothing stored twice: outbox" 400 "$(stat_of outbox)"
check_eq "no rejects" 0 "$(stat_of rejects)"
D1=$(pstat duplicates)
check_eq "purgatoryd counted each re-delivery as a duplicate" 100 "$(( ${D1:-0} - D0 ))"
KS=$(vstat known_stored)
diag "validated: store_lookups_skipped=$(vstat store_lookups_skipped) known_stored=${KS:-0}"
check "a sampled lookup found a stored event and turned lookups on again" [ "${KS:-0}" -gt 50 ]
S=$($PT check -c "$CONF")
check_eq "events/stream/outbox agree" "consistent=1 topo=1" "$(echo "$S" | grep -o 'consistent=. topo=.')"
stop $VAL; stop $PURG
finish
