#!/bin/sh
# fleet_claims.sh: served's recovery claims across a fleet. Two fleet nodes
# (served + fetchd each, [fleet] on a real three-server NATS cluster) get
# the same miss at once, many times each: one recovery request reaches the
# upstream (counted in the upstream's log), the other node counts a claim
# dedup; the claim lives in the KV bucket <name>_claims (3 replicas). With
# every NATS server down, a miss is still recovered (fail-open: the LMDB
# claim), and the fallback is logged once.
. tests/lib/lib.sh
. tests/tools/nats_cluster.sh
. tests/tools/federation_lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
check "three NATS servers with a JetStream meta leader" nats_cluster_start 3
PU=$(free_port); P1=$(free_port); P2=$(free_port)
U=$(node_config u "$PU" "$FED_COMMON$FED_OPEN")
mk() {
	node_config "$1" "$2" "$FED_COMMON$FED_OPEN
max_connections_per_ip = 1000
recover_per_client = 1024
upstreams = u.test:$PU
[server u.test:$PU]
endpoint = http://127.0.0.1:$PU
[fleet]
nats_url = $NATS_URLS
name = fpclaims
member = $1
replicas = 3
claims_ttl = 30s"
}
N1=$(mk n1 "$P1"); N2=$(mk n2 "$P2")
served_fill -c "$U" -N 0 -o "$T_TMP/x.ids" >/dev/null
served_fill -c "$U" -N 0 -o "$T_TMP/z.ids" >/dev/null
X=$(cat "$T_TMP/x.ids"); Z=$(cat "$T_TMP/z.ids")
node_start u served
node_start n1 fetchd served
node_start n2 fetchd served
check "served up on u, n1, n2" wait_for "http_up http://127.0.0.1:$PU/healthz && http_up http://127.0.0.1:$P1/healthz && http_up http://127.0.0.1:$P2/healthz"
check "n1 and n2 made the claims bucket at start" wait_for "grep -q 'fleet claims: bucket' '$T_TMP/n1/served.log' && grep -q 'fleet claims: bucket' '$T_TMP/n2/served.log'" 300
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
proxied_on_u() { grep -c "proxied request GET /_matrix/federation/v1/event/$(enc "$1")" "$T_TMP/u/served.log"; }
stat() { fedctl -c "$1" stats served | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }

# the same miss on both nodes at once, 100 times each
: >"$T_TMP/urls"
i=0
while [ $i -lt 100 ]; do
	for p in $P1 $P2; do echo "url = \"http://127.0.0.1:$p/_matrix/federation/v1/event/$(enc "$X")\""; echo "output = /dev/null"; done
	i=$((i + 1))
done >"$T_TMP/urls"
curl -s --parallel --parallel-immediate --parallel-max 100 -K "$T_TMP/urls" -w '%{http_code}\n' >"$T_TMP/codes" 2>/dev/null
check_eq "200 requests answered 404 at once" 200 "$(grep -c '^404$' "$T_TMP/codes")"
check "the upstream got the recovery request" wait_for '[ "$(proxied_on_u "$X")" -ge 1 ]' 200
check "the other node deduplicated by the fleet claim" wait_for '[ $(( $(stat "$N1" recover_dedup_claim) + $(stat "$N2" recover_dedup_claim) )) -ge 1 ]' 200
check_eq "exactly one recovery request reached the upstream" 1 "$(proxied_on_u "$X")"
check_eq "one node sent, the other did not" 1 "$(( $(stat "$N1" recover_sent) + $(stat "$N2" recover_sent) ))"
check "the claim bucket fpclaims_claims holds the claim, 3 replicas" sh -c "curl -s 'http://127.0.0.1:$NATS_MON_1/jsz?streams=true&config=true' | jq -e '[.account_details[]?.stream_detail[]? | select(.name == \"KV_fpclaims_claims\")][0] | .state.messages >= 1 and .config.num_replicas == 3 and .config.max_age == 30000000000' >/dev/null"
check "no fallback to LMDB while NATS is up" sh -c "! grep -q 'fail-open' '$T_TMP/n1/served.log' '$T_TMP/n2/served.log'"

# every NATS server down: a miss is still recovered (LMDB claim), logged once
nats_server_stop 1; nats_server_stop 2; nats_server_stop 3
URLZ="http://127.0.0.1:$P1/_matrix/federation/v1/event/$(enc "$Z")"
check_eq "NATS down: a miss still answers 404 at once" 404 "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$URLZ")"
check "NATS down: the upstream still gets the recovery" wait_for '[ "$(proxied_on_u "$Z")" -ge 1 ]' 300
curl -s -o /dev/null "http://127.0.0.1:$P1/_matrix/federation/v1/event/%24another000000000000000000000000000000000000"
check "... a second miss is claimed too" wait_for '[ "$(stat "$N1" recover_sent)" -ge 3 ] || grep -q "another" "$T_TMP/u/served.log"' 300
check_eq "the fallback is logged once" 1 "$(grep -c 'claiming in LMDB meanwhile (fail-open)' "$T_TMP/n1/served.log")"
check "n1 still healthy" http_up "http://127.0.0.1:$P1/healthz"
finish
