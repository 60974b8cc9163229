#!/bin/sh
# purgatoryd prunes the rejects table by age ([purgatoryd] rejects_keep):
# garbage sent in two waves is rejected (recorded in rejects); the first
# wave goes once it is older than rejects_keep while the younger second
# wave stays; then the second goes too. The table no longer only grows.
. tests/lib/lib.sh
pipeline_node alpha "tick = 200ms
rejects_keep = 4s"
PT=purgatory_tool
garbage() { i=0; while [ $i -lt "$1" ]; do echo "{\"not an event\": $i, \"wave\": \"$2\"}"; i=$((i + 1)); done; }
bg validated -c "$CONF"; VAL=$LAST_PID
bg purgatoryd -c "$CONF" -v 2>"$T_TMP/purgatoryd.log"; PURG=$LAST_PID
check "up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"
garbage 30 a | $PT submit -c "$CONF" - 2>/dev/null
check "wave a: 30 rejects recorded" wait_for '[ "$(stat_of rejects)" = 30 ] && [ "$(stat_of inbox)" = 0 ]' 300
sleep 2
garbage 20 b | $PT submit -c "$CONF" - 2>/dev/null
check "wave a pruned once older than rejects_keep, wave b kept" wait_for '[ "$(stat_of rejects)" = 20 ]' 300
check "wave b pruned in its turn" wait_for '[ "$(stat_of rejects)" = 0 ]' 300
check_eq "nothing else touched: inbox empty" 0 "$(stat_of inbox)"
check "purgatoryd counted them" sh -c "fedctl -c $CONF stats purgatoryd | grep -q '\"rejects_pruned\":50'"
stop $PURG; stop $VAL
finish
