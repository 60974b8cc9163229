#!/bin/sh
# Issue 13 item 4 (served): outsiders' misses fill a tiny map with claims
# (1 MB, no room to grow); the claim writes fail (MAP_FULL), are aborted and
# reported, recovery dedup fails open, and served keeps answering: hits,
# misses and /_fed/v1/events, with its log not flooded.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = open
upstreams = up.test:1
recover_per_client = 100000
recover_queue = 100000")
sed -i 's/^\[node\]$/[node]\nmap_size = 1M\nmap_size_max = 1M/' "$A"
served_fill -c "$A" -N 20 -o "$T_TMP/ids" >/dev/null
bg sh -c "exec served -c '$A' 2>>'$T_TMP/served.log'"
SP=$LAST_PID
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
E9=$(sed -n 9p "$T_TMP/ids")
PAD=$(head -c 200 /dev/zero | tr '\0' a)
i=0; while [ $i -lt 5000 ]; do echo "url = \"$U/_matrix/federation/v1/event/%24$PAD$i\""; echo "output = /dev/null"; i=$((i + 1)); done >"$T_TMP/k"
curl -s -K "$T_TMP/k" -w '%{http_code}\n' >"$T_TMP/codes"
check_eq "5,000 misses all answered 404" 5000 "$(grep -c '^404$' "$T_TMP/codes")"
ST=$(fedctl -c "$A" stats served | sed 's/^served //')
diag "queued $(echo "$ST" | jq .counters.recover_queued), claim errors $(echo "$ST" | jq .counters.recover_claim_errors)"
check "the map filled: claim writes failed (and failed open)" test "$(echo "$ST" | jq .counters.recover_claim_errors)" -ge 1
check_eq "reads still answered: a stored event" 200 "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$U/_matrix/federation/v1/event/$(enc "$E9")")"
check "reads still answered: /_fed/v1/events" test "$(curl -s -m 5 "$U/_fed/v1/events?since=0" | jq '.events|length')" -ge 20
check_eq "a miss still answered at once" 404 "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$U/_matrix/federation/v1/event/%24another")"
check "served still running" kill -0 $SP
SZ=$(wc -c <"$T_TMP/served.log")
diag "served log: $SZ bytes"
check "log not flooded (< 8 KB)" test "$SZ" -lt 8192
finish
