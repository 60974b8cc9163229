#!/bin/sh
# bench/served_dos.sh: served's ordinary request rate while one client
# address runs the issue-13 item-2 attack (500 slow-header connections, a
# byte every 2 s, plus 50 half-sent 1 MB bodies, half without the key) from
# 127.0.0.2, as a ratio to the same wrk run without it (goal >= 0.8). wrk
# (8 connections, from 127.0.0.1) asks for a stored event with the bearer
# key. A second row has the attacker also reopen at once every connection
# served closes (a connection flood: thousands of connects a second, the
# attacker's own CPU competing on the same machine).
# SERVED_DOS_SECONDS sets each wrk run (default 5).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
DUR=${SERVED_DOS_SECONDS:-5}
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = open")
sed -i 's/^\[node\]$/[node]\nshared_key = k3y/' "$A"
served_fill -c "$A" -N 200 -o "$T_TMP/ids" >/dev/null || exit 1
bg sh -c "exec served -c '$A' 2>>'$T_TMP/served.log'"
wait_for "http_up http://127.0.0.1:$P/healthz" || exit 1
ID=$(sed -n 100p "$T_TMP/ids" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
URL="http://127.0.0.1:$P/_matrix/federation/v1/event/$ID"
rate() { wrk -t1 -c8 -d"${DUR}s" -H 'Authorization: Bearer k3y' "$URL" 2>/dev/null | sed -n 's/^Requests\/sec: *//p'; }
wrk -t1 -c8 -d2s -H "Authorization: Bearer k3y" "$URL" >/dev/null 2>&1   # warm-up
BASE=$(rate)
ATK="python3 $FP_ROOT/tests/tools/served_attack.py --port $P --src 127.0.0.2 --duration $((DUR + 4))"
under() {   # under [--reconnect]: the wrk rate during the attack
	$ATK --half 25 >"$T_TMP/h1.json" &
	_h1=$!
	$ATK --half 25 --half-key k3y >"$T_TMP/h2.json" &
	_h2=$!
	$ATK --slow 500 "$@" >"$T_TMP/slow.json" &
	_s1=$!
	sleep 2
	rate
	wait $_h1 $_h2 $_s1
}
UNDER=$(under)
REF1=$(sed -n 's/.*"closed_fast": \([0-9]*\).*/\1/p' "$T_TMP/slow.json")
sleep 1
FLOOD=$(under --reconnect)
REF=$(sed -n 's/.*"closed_fast": \([0-9]*\).*/\1/p' "$T_TMP/slow.json")
awk -v b="$BASE" -v u="$UNDER" -v f="$FLOOD" -v r1="$REF1" -v r="$REF" -v l="$(wc -c <"$T_TMP/served.log")" 'BEGIN {
	printf "%-60s %12s %8s\n", "measure", "rate", "ratio";
	printf "%-60s %10.0f/s %8s\n", "served /event/{id} (wrk, 8 conns, bearer key) req", b, "";
	printf "%-60s %10.0f/s %7.2fx\n", "... during the item-2 attack from another address", u, (b > 0 ? u / b : 0);
	printf "%-60s %10.0f/s %7.2fx\n", "... same, the attacker reopening every closed connection", f, (b > 0 ? f / b : 0);
	printf "# attacker connections refused at once: %d, then %d with reopening; served log: %d bytes\n", r1, r, l;
}'
