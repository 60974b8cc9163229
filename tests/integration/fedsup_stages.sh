# fedsup_stages.sh: the one stage table reaches the scripts. `fedctl stages`
# lists every stage in start order (one per line; --json with socket and
# unit) without needing a configuration; fedsup with no --stages runs what
# fedctl lists, in that order; a fedsup that finds no fedctl refuses with
# exit 100 and says why.
. tests/lib/lib.sh
check_eq "fedctl stages: the seven stages in start order" "validated purgatoryd fetchd feedpump served fleetd syncd" \
	"$(fedctl stages | tr '\n' ' ' | sed 's/ $//')"
check "fedctl stages --json: name, socket, unit, flow of each" sh -c "fedctl stages --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [s[\"name\"] for s in d] == \"validated purgatoryd fetchd feedpump served fleetd syncd\".split()
assert all(s[\"socket\"] == s[\"name\"] + \".sock\" and s[\"unit\"] == \"fedpipe-\" + s[\"name\"] + \".service\" for s in d)
assert sorted(s[\"flow\"] for s in d) == list(range(7)) and [s[\"start\"] for s in d] == list(range(7))'"
check "fedctl stages needs no configuration" sh -c "fedctl -c $T_TMP/no-such.conf stages >/dev/null"
fedctl stages extra >/dev/null 2>&1
check_eq "fedctl stages with an argument is a usage error" 100 $?

P=$(free_port)
CONF=$(node_config st "$P")
# A bin directory whose fedctl lists one stage: fedsup runs exactly that.
B=$T_TMP/bin
mkdir -p "$B"
for s in validated purgatoryd fetchd feedpump served syncd; do ln -s "$FP_BIN/$s" "$B/$s"; done
cat >"$B/fedctl" <<SH
#!/bin/sh
[ "\$1" = stages ] && { echo validated; exit 0; }
exec "$FP_BIN/fedctl" "\$@"
SH
chmod +x "$B/fedctl"
bg "$FP_ROOT/scripts/fedsup" -c "$CONF" --bin "$B" 2>"$T_TMP/sup.log"
SPID=$LAST_PID
check "fedsup runs the stages fedctl lists" wait_for "grep -q 'all stages started' $T_TMP/sup.log" 200
check "and only those" grep -q "supervising validated for" "$T_TMP/sup.log"
stop "$SPID"

# No fedctl in --bin, beside fedsup or on PATH: refuse, saying so.
mkdir -p "$T_TMP/alone" "$T_TMP/nobin"
cp "$FP_ROOT/scripts/fedsup" "$T_TMP/alone/fedsup"
ln -s "$FP_BIN/validated" "$T_TMP/nobin/validated"
PATH=/usr/bin:/bin sh "$T_TMP/alone/fedsup" -c "$CONF" --bin "$T_TMP/nobin" >"$T_TMP/alone.log" 2>&1
check_eq "fedsup without fedctl exits 100" 100 $?
check "and says fedctl was not found" grep -q "fedctl not found" "$T_TMP/alone.log"
finish
