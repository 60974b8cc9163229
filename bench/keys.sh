#!/bin/sh
# bench/keys.sh: what key lookups cost the network (issue 15). Real
# validated + fetchd; each origin's key server is tests/tools/
# served_keyserver.py (python3-signedjson), which counts the requests it
# gets. Events are fedpeer-made PDUs signed by the origin, put in the inbox
# and sent to validated at once (purgatory_tool submit).
# 1. A known server: one event first (its key fetched once), then N more:
#    key requests during the N (goal 0: a cached key costs no network).
# 2. An unknown server whose key server answers after 0.5 s: N events at
#    once: key requests (goal 1), validated's key_fetches (goal 1) and
#    fetchd's upstream requests (goal 1): N waiting events, one fetch.
# Counts are printed, never asserted; the time to validate is shown.
# KEYS_BENCH_N sets N (default 1000).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
N=${KEYS_BENCH_N:-1000}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
K1=$(free_port); K2=$(free_port); P=$(free_port)
mkdir -p "$T_TMP/o"
for s in s1 s2; do
	printf '[node]\nsigning_key = %s/o/%s.key\n' "$T_TMP" "$s" >"$T_TMP/o/$s.conf"
	fedctl -c "$T_TMP/o/$s.conf" keygen >/dev/null 2>&1 || { echo "keygen failed"; exit 1; }
	fedpeer --make-events $((N + 1)) -k "$T_TMP/o/$s.key" -s "$s.test" --room "!r:$s.test" \
		-o "$T_TMP/o/$s.all" --ids "$T_TMP/o/$s.ids" || { echo "fedpeer failed"; exit 1; }
done
head -1 "$T_TMP/o/s1.all" >"$T_TMP/o/s1.first"
tail -n +2 "$T_TMP/o/s1.all" >"$T_TMP/o/s1.rest"
head -n "$N" "$T_TMP/o/s2.all" >"$T_TMP/o/s2.n"
A=$(node_config a "$P" "[validated]
key_fetch_retry = 30s
[server s1.test]
endpoint = http://127.0.0.1:$K1
[server s2.test]
endpoint = http://127.0.0.1:$K2")
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/o/s1.key" s1.test "$K1" "$T_TMP/hits1"
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/o/s2.key" s2.test "$K2" "$T_TMP/hits2" 0.5
node_start a fetchd validated
wait_for "[ -s $T_TMP/hits1 ] && [ -s $T_TMP/hits2 ]" 100 || { echo "key servers not up"; exit 1; }
stat() { fedctl -c "$A" --json stats "$1" | jq -r ".$1.counters.$2 // 0"; }
verdicts() { echo $(($(stat validated accepted) + $(stat validated rejected))); }
ms() { date +%s%3N; }
submit() { purgatory_tool submit -c "$A" "$1" 2>/dev/null; }

submit "$T_TMP/o/s1.first"
wait_for "[ \$(verdicts) -ge 1 ]" 300 || { echo "the first event of s1.test got no verdict"; exit 1; }
H1=$(cat "$T_TMP/hits1"); KF1=$(stat validated key_fetches)
t0=$(ms)
submit "$T_TMP/o/s1.rest"
wait_for "[ \$(verdicts) -ge $((N + 1)) ]" 600 || echo "# only $(verdicts) verdicts of $((N + 1))"
t1=$(ms)
HK=$(( $(cat "$T_TMP/hits1") - H1 )); KFK=$(( $(stat validated key_fetches) - KF1 ))
ACC1=$(stat validated accepted)

U0=$(stat fetchd upstream_requests); KF0=$(stat validated key_fetches)
t2=$(ms)
submit "$T_TMP/o/s2.n"
wait_for "[ \$(verdicts) -ge $((2 * N + 1)) ]" 600 || echo "# only $(verdicts) verdicts of $((2 * N + 1))"
t3=$(ms)
HU=$(cat "$T_TMP/hits2"); KFU=$(( $(stat validated key_fetches) - KF0 )); UU=$(( $(stat fetchd upstream_requests) - U0 ))
ACC2=$(( $(stat validated accepted) - ACC1 ))

echo "key lookups: validated + fetchd, each origin's key server counting its requests"
printf '  %-52s %8s %8s %8s %8s %9s\n' "" events accepted "key req" fetches "ms"
printf '  %-52s %8s %8s %8s %8s %9s\n' "known server (key cached after its first event)" "$N" "$((ACC1 - 1))" "$HK" "$KFK" "$((t1 - t0))"
printf '  %-52s %8s %8s %8s %8s %9s\n' "unknown server, all at once (key server: 0.5 s)" "$N" "$ACC2" "$HU" "$KFU" "$((t3 - t2))"
echo "  key req: requests at the origin's key server; fetches: validated's key_fetches; ms: until the last verdict (polled every 0.1 s)"
echo "  (fetchd upstream requests during the unknown-server run: $UU)."
echo "  goals: known 0 key requests; unknown 1 key request, 1 fetch, whatever N."
