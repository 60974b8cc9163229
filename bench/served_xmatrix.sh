#!/bin/sh
# bench/served_xmatrix.sh: what X-Matrix verification costs served (issue
# 15). wrk (1 thread, 8 connections) asks a stored event with a signed
# request (origin r1, whose key is in LMDB: `fedctl keys import`, so no
# fetch) while [served] matrix_auth = xmatrix, then the same request with
# matrix_auth = open (SIGHUP in between, same process), alternating twice.
# served is single-threaded, so 1e6/rate is its µs per request; the
# difference is what verification adds, printed next to one raw ed25519
# verify and one whole xmatrix_parse + xmatrix_verify (bench/
# served_xmatrix_verify.c). Goal: the added cost is about one verify.
# SERVED_XMATRIX_SECONDS sets each wrk run (default 4).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
DUR=${SERVED_XMATRIX_SECONDS:-4}
P=$(free_port); PR=$(free_port)
R=$(node_config r1 "$PR")
A=$(node_config a "$P" "[served]
matrix_auth = xmatrix")
fedctl -c "$R" keys doc >"$T_TMP/r1.json" && fedctl -c "$A" keys import "$T_TMP/r1.json" >/dev/null || exit 1
served_fill -c "$A" -N 200 -o "$T_TMP/ids" >/dev/null || exit 1
bg sh -c "exec served -c '$A' 2>>'$T_TMP/served.log'"
SPID=$LAST_PID
wait_for "http_up http://127.0.0.1:$P/healthz" || exit 1
ID=$(sed -n 100p "$T_TMP/ids" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
PQ=/_matrix/federation/v1/event/$ID
H=$(fp_xmatrix sign "$T_TMP/r1/signing.key" "r1.test:$PR" "a.test:$P" GET "$PQ")
URL="http://127.0.0.1:$P$PQ"
c=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $H" "$URL")
[ "$c" = 200 ] || { echo "signed request not accepted ($c)"; cat "$T_TMP/served.log"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 401 ] || { echo "unsigned request not refused"; exit 1; }
rate() { wrk -t1 -c8 -d"${DUR}s" -H "Authorization: $H" "$URL" 2>/dev/null | sed -n 's/^Requests\/sec: *//p'; }
mode() {
	sed -i "s/^matrix_auth = .*/matrix_auth = $1/" "$A"
	kill -HUP "$SPID"
	wait_for "grep -c 'configuration reloaded:' '$T_TMP/served.log' | grep -qx $2" || exit 1
}
wrk -t1 -c8 -d2s -H "Authorization: $H" "$URL" >/dev/null 2>&1   # warm-up
X1=$(rate); mode open 1; O1=$(rate); mode xmatrix 2; X2=$(rate); mode open 3; O2=$(rate)
set -- $(served_xmatrix_verify 20000)
RAW=$1 FULL=$2
python3 - "$X1" "$X2" "$O1" "$O2" "$RAW" "$FULL" <<'PY'
import sys
x1, x2, o1, o2, raw, full = map(float, sys.argv[1:])
x, o = (x1 + x2) / 2, (o1 + o2) / 2
ux, uo = 1e6 / x, 1e6 / o
print("%-44s %12s %10s" % ("served GET /_matrix/federation/v1/event", "req/s", "µs/req"))
print("%-44s %12.0f %10.1f" % ("matrix_auth = open", o, uo))
print("%-44s %12.0f %10.1f" % ("matrix_auth = xmatrix (key cached in LMDB)", x, ux))
print("%-44s %12s %10.1f" % ("added by verification", "", ux - uo))
print("%-44s %12s %10.1f" % ("one raw ed25519 verify", "", raw))
print("%-44s %12s %10.1f" % ("xmatrix_parse + xmatrix_verify", "", full))
print("ratio added / raw verify: %.2f (goal: about 1); runs x %.0f %.0f, open %.0f %.0f" % ((ux - uo) / raw, x1, x2, o1, o2))
PY
