#!/bin/sh
# bench/served_dos.sh: served's ordinary request rate while one client
# address runs the issue-13 item-2 attack (500 slow-header connections,
# reopened as they are closed, plus 50 half-sent 1 MB bodies, half without
# the key) from 127.0.0.2, as a ratio to the same wrk run without it
# (goal >= 0.8). wrk (8 connections, from 127.0.0.1) asks for a stored
# event with the bearer key. SERVED_DOS_SECONDS sets each wrk run (default 5).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
DUR=${SERVED_DOS_SECONDS:-5}
P=$(free_port)
A=$(node_config a "$P")
sed -i 's/^\[node\]$/[node]\nshared_key = k3y/' "$A"
served_fill -c "$A" -N 200 -o "$T_TMP/ids" >/dev/null || exit 1
bg sh -c "exec served -c '$A' 2>>'$T_TMP/served.log'"
wait_for "http_up http://127.0.0.1:$P/healthz" || exit 1
ID=$(sed -n 100p "$T_TMP/ids" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
URL="http://127.0.0.1:$P/_matrix/federation/v1/event/$ID"
rate() { wrk -t1 -c8 -d"${DUR}s" -H 'Authorization: Bearer k3y' "$URL" 2>/dev/null | sed -n 's/^Requests\/sec: *//p'; }
BASE=$(rate)
ATK="python3 $FP_ROOT/tests/tools/served_attack.py --port $P --src 127.0.0.2 --duration $((DUR + 4))"
$ATK --half 25 >"$T_TMP/h1.json" &
H1=$!
$ATK --half 25 --half-key k3y >"$T_TMP/h2.json" &
H2=$!
$ATK --slow 500 --reconnect >"$T_TMP/slow.json" &
S1=$!
sleep 2
UNDER=$(rate)
wait $H1 $H2 $S1
REF=$(sed -n 's/.*"closed_fast": \([0-9]*\).*/\1/p' "$T_TMP/slow.json")
awk -v b="$BASE" -v u="$UNDER" -v r="$REF" -v l="$(wc -c <"$T_TMP/served.log")" 'BEGIN {
	printf "%-60s %12s %8s\n", "measure", "rate", "ratio";
	printf "%-60s %10.0f/s %8s\n", "served /event/{id} (wrk, 8 conns, bearer key) req", b, "";
	printf "%-60s %10.0f/s %7.2fx\n", "... during the item-2 attack from another address", u, (b > 0 ? u / b : 0);
	printf "# attacker connections refused at once: %d; served log: %d bytes\n", r, l;
}'
