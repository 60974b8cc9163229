#!/bin/sh
# Every program checks the whole configuration against the typed parameter
# table at load (issue 13, item 9): a typo such as `check_signatures = yse`
# no longer loads and turns signatures off; it is exit 100 with file, line,
# key and what is accepted. A bad configuration on SIGHUP is refused and the
# running one kept; a key that cannot change live says so.
. tests/lib/lib.sh
CONF=$(node_config alpha "$(free_port)")
BAD=$T_TMP/bad.conf
{ cat "$CONF"; printf '\n[validated]\ncheck_signatures = yse\n'; } > "$BAD"
line=$(grep -n 'check_signatures' "$BAD" | cut -d: -f1)
for p in fetchd validated syncd purgatoryd feedpump served; do
	$p -c "$BAD" -n >"$T_TMP/out" 2>&1; rc=$?
	check_eq "$p -n refuses check_signatures = yse (exit 100)" 100 "$rc"
	check "  ... naming $BAD:$line, the key and what is accepted" grep -q "$BAD:$line:.*\[validated\] check_signatures = 'yse' is not yes or no" "$T_TMP/out"
	timeout 20 $p -c "$BAD" >"$T_TMP/out" 2>&1; rc=$?
	check_eq "$p refuses to start on it (exit 100)" 100 "$rc"
done
fedctl -c "$BAD" status >"$T_TMP/out" 2>&1; rc=$?
check_eq "fedctl refuses it (exit 100)" 100 "$rc"
printf '{}\n' | validated --jsonl -c "$BAD" >"$T_TMP/out" 2>&1; rc=$?
check_eq "validated --jsonl refuses it (exit 100)" 100 "$rc"
for kv in "fetchd checks = event_id,sigantures" "syncd batch = 0" "purgatoryd batch_max = -5" \
          "served events_limit = 1e3" "node map_size = 4Q" "feed sink = kafka" "syncd interval = 5 parsecs"; do
	set -- $kv; sec=$1; shift
	{ cat "$CONF"; printf '\n[%s]\n%s\n' "$sec" "$*"; } > "$BAD"
	syncd -c "$BAD" -n >"$T_TMP/out" 2>&1; rc=$?
	check_eq "[$sec] $* refused (exit 100)" 100 "$rc"
	check "  ... with what is accepted" grep -q "is not " "$T_TMP/out"
done
fedctl -c "$CONF" config > "$T_TMP/cfg.txt"
check "fedctl config shows type and range" grep -q '^batch_max .*# integer 1\.\.1000000:' "$T_TMP/cfg.txt"
check "fedctl config shows enum values" grep -q '^sink .*# enum nop|file|stdout|nats:' "$T_TMP/cfg.txt"

# SIGHUP: a bad file is refused, the running configuration stays
LOG=$T_TMP/val.log
bg validated -c "$CONF" 2>"$LOG"; VAL=$LAST_PID
check "validated up" wait_for "[ -S $T_TMP/alpha/run/validated.sock ]"
cp "$CONF" "$CONF.good"
printf '\n[validated]\ncheck_signatures = yse\n' >> "$CONF"
kill -HUP $VAL
check "a bad file on SIGHUP is refused, the running configuration kept" wait_for "grep -q 'reload: .*check_signatures.*keeping the running configuration' $LOG"
check "validated still runs" kill -0 $VAL
cp "$CONF.good" "$CONF"
sed -i "s|^run_dir = .*|run_dir = $T_TMP/elsewhere|" "$CONF"
kill -HUP $VAL
check "a restart-only key says so and keeps its value" wait_for "grep -q 'run_dir changed.*next restart' $LOG"
check "validated still runs and answers on its socket" sh -c "kill -0 $VAL && fedctl -c '$CONF.good' stats validated >/dev/null"
stop $VAL
finish
