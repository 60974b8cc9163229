#!/bin/sh
# Issue 13, served's side of items 3, 4 and 5: what outsiders' misses on
# /_matrix/federation/v1/event/{id} can make served do.
# 3: an ID naming a server (v1/v2 form "$x:host:port...") that the
#    configuration does not name is never recovered: a listening loopback
#    port named only inside such IDs sees no connection, while a hash-form
#    ID is recovered from the configured upstream (which does get asked).
# 5: one client address has at most recover_per_client recoveries queued or
#    in flight: 150 misses queue 5 (recover_per_client = 5; fetchd stopped
#    so that they stay queued).
# 4: claims rows expire and are swept: after SIGHUP raises the per-client
#    cap, 300 misses write 300 claims; after claim_ttl the table empties.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PB=$(free_port); PU=$(free_port); PL=$(free_port)
bg python3 tests/tools/served_listener.py "$PU" "$T_TMP/up.count" 404
bg python3 tests/tools/served_listener.py "$PL" "$T_TMP/bogus.count" 404
B=$(node_config b "$PB" "$FED_COMMON
[served]
matrix_auth = open
upstreams = up.test:$PU
recover_per_client = 5
claim_ttl = 3s
[server up.test:$PU]
endpoint = http://127.0.0.1:$PU")
node_start b fetchd served
U=http://127.0.0.1:$PB
check "served up" wait_for "http_up $U/healthz"
stat() { fedctl -c "$B" stats served | sed "s/^served //" | jq -r ".counters.$1 // 0"; }
claims() { curl -s "$U/metrics" | sed -n 's/^fedpipe_lmdb_entries{db="claims"} //p'; }
# misses SRC ID...: one request per ID from source address SRC; prints the codes
misses() { _src=$1; shift; python3 -c '
import sys, urllib.parse
for i in sys.argv[2:]:
    print("url = \"%s/_matrix/federation/v1/event/%s\"\noutput = /dev/null" % (sys.argv[1], urllib.parse.quote(i, safe="")))' "$U" "$@" >"$T_TMP/k"; curl -s --interface "$_src" -K "$T_TMP/k" -w '%{http_code}\n'; }

# Item 3.
set -- "\$x:127.0.0.1:$PL/internal?cmd=" "\$x:127.0.0.1:$PL" "\$y:localhost:$PL" "\$z:127.0.0.1:$PL/" \
	"\$w:[::1]:$PL" "\$v:127.0.0.1:$PL#a" "\$u:up.test:$PU:$PL" "\$t:127.0.0.1:$PL?x=1"
check_eq "misses naming an unconfigured server: 404 at once" "404 404 404 404 404 404 404 404" "$(misses 127.0.0.3 "$@" | tr '\n' ' ' | sed 's/ $//')"
check_eq "... and none of them is recovered" 8 "$(stat recover_refused_id)"
check_eq "a hash-form ID is recovered (404 at once)" 404 "$(misses 127.0.0.3 '$hashformeventidthatnobodyhas00000000000000')"
check "... from the configured upstream, which is asked" wait_for "[ \$(cat $T_TMP/up.count) -ge 1 ]" 150
check "every recovery served started has ended (fetchd tried all its candidates)" \
	wait_for "[ \$(stat recover_queued) -ge 1 ] && [ \$(stat recover_queued) -eq \$((\$(stat recover_ok) + \$(stat recover_failed))) ]" 300
check_eq "the port named only inside IDs saw no connection" 0 "$(cat "$T_TMP/bogus.count")"

# Item 5. Without fetchd, queued recoveries stay queued.
node_stop b fetchd
Q0=$(stat recover_queued)
i=0; set --; while [ $i -lt 150 ]; do set -- "$@" "\$client2miss$i"; i=$((i + 1)); done
check_eq "150 misses from one address: all 404" 150 "$(misses 127.0.0.2 "$@" | grep -c '^404$')"
check_eq "at most recover_per_client (5) of them queued" 5 "$(($(stat recover_queued) - Q0))"
check_eq "the rest refused by the per-client cap" 145 "$(stat recover_client_capped)"
check_eq "another address still gets its recovery queued" 404 "$(misses 127.0.0.4 '$anotherclientsmiss')"
check_eq "... counted" 7 "$(($(stat recover_queued) - Q0 + 1))"

# Item 4 (and a reload): raise the per-client cap, then 300 misses.
sed -i 's/^recover_per_client = 5$/recover_per_client = 1000/' "$B"
kill -HUP "$PID_b_served"
check "reload applied" wait_for "grep -q 'configuration reloaded' '$T_TMP/b/served.log'" 50
i=0; set --; while [ $i -lt 300 ]; do set -- "$@" "\$claimfill$i"; i=$((i + 1)); done
check_eq "300 misses" 300 "$(misses 127.0.0.5 "$@" | grep -c '^404$')"
N=$(claims)
diag "claims right after: $N"
check "they wrote claims" test "${N:-0}" -ge 250
check "after the TTL the expired claims are swept" wait_for "[ \"\$(claims)\" -le 5 ]" 200
check "sweeps counted" test "$(stat claims_swept)" -ge 250
check "served still healthy" http_up "$U/healthz"
finish
