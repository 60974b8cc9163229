#!/bin/sh
# Cache-warm recovery through one upstream (a miss answers 404 at once and
# is fetched in the background, so the retry finds it), with real nodes:
# C (here: curl, an unproxied client) asks B for an event only A has: B
# answers 404 at once, recovers it from A through its fetchd with
# X-Fed-Proxied: 1 (A logs exactly one proxied request), validated and
# purgatoryd store it, and the retry gets it. A proxied miss is never
# re-proxied (A has upstreams too and does not use them). 1,000
# simultaneous misses for one event make one upstream request; a failed
# recovery is not retried within the claim TTL.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA" "$FED_COMMON$FED_OPEN
[served]
upstreams = b.test:$PB
[server b.test:$PB]
endpoint = http://127.0.0.1:$PB")
# 1,000 parallel requests come from one address here: B lets that many in
# (the per-address cap of issue 13 is tested in served_dos.sh).
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[served]
max_connections_per_ip = 1000
recover_per_client = 1024
upstreams = a.test:$PA
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
served_fill -c "$A" -N 0 -o "$T_TMP/x.ids" >/dev/null
served_fill -c "$A" -N 0 -o "$T_TMP/y.ids" >/dev/null
X=$(cat "$T_TMP/x.ids"); Y=$(cat "$T_TMP/y.ids")
node_start a served fetchd
node_start b validated purgatoryd fetchd served
check "both served up" wait_for "http_up http://127.0.0.1:$PA/healthz && http_up http://127.0.0.1:$PB/healthz"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
URLX="http://127.0.0.1:$PB/_matrix/federation/v1/event/$(enc "$X")"
URLY="http://127.0.0.1:$PB/_matrix/federation/v1/event/$(enc "$Y")"
proxied_on_a() { grep -c "proxied request GET /_matrix/federation/v1/event/$(enc "$1")" "$T_TMP/a/served.log"; }

check_eq "C's first request for X: 404 at once" 404 "$(code -m 2 "$URLX")"
check "B recovers X from A; C's retry gets it" wait_for "[ \"\$(code '$URLX')\" = 200 ]" 200
check_eq "the PDU B serves is A's event X" "$X" \
	"$(curl -s "$URLX" | jq -c '.pdus[0]' | fp_pdu id 10)"
check_eq "A saw exactly one proxied request for X" 1 "$(proxied_on_a "$X")"
check "B logged the recovery" grep -q "recovered $X from a.test:$PA" "$T_TMP/b/served.log"

# One hop: an event nobody has. B proxies to A; A misses and does NOT
# forward (although A has B as an upstream).
Z='$nobodyhasthisevent000000000000000000000000000'
URLZ="http://127.0.0.1:$PB/_matrix/federation/v1/event/$(enc "$Z")"
check_eq "unknown event: 404" 404 "$(code "$URLZ")"
check "B's recovery of it fails with not_found" wait_for "grep -q 'recovery of $Z failed' '$T_TMP/b/served.log'" 200
check_eq "A got one proxied request for it" 1 "$(proxied_on_a "$Z")"
check "A did not re-proxy it (one hop)" grep -q "proxied miss for $Z: not recovering" "$T_TMP/a/served.log"
check "A queued no recovery at all" sh -c "fedctl -c '$A' stats served | grep -q '\"recover_queued\":0'"
check_eq "asked again within the claim TTL: 404, no new upstream request" 404 "$(code "$URLZ")"
sleep 1
check_eq "still one proxied request for it on A" 1 "$(proxied_on_a "$Z")"
check "B counted the claim dedup" sh -c "fedctl -c '$B' stats served | grep -q '\"recover_dedup_claim\":[1-9]'"

# Proxied requests that miss on B are not recovered either.
check_eq "a proxied request to B for Y: 404" 404 "$(code -H 'X-Fed-Proxied: 1' "$URLY")"
sleep 1
check_eq "... and B did not ask A for Y" 0 "$(proxied_on_a "$Y")"

# 1,000 simultaneous misses for Y -> one upstream request.
i=0; : >"$T_TMP/urls"
while [ $i -lt 1000 ]; do echo "url = \"$URLY\""; echo "output = /dev/null"; i=$((i + 1)); done >"$T_TMP/urls"
curl -s --parallel --parallel-immediate --parallel-max 250 -K "$T_TMP/urls" -w '%{http_code}\n' >"$T_TMP/codes" 2>/dev/null
check_eq "1,000 requests answered" 1000 "$(wc -l <"$T_TMP/codes" | tr -d ' ')"
check "misses answered 404 at once (none failed)" sh -c "! grep -qv -e '^404\$' -e '^200\$' '$T_TMP/codes'"
check "Y recovered" wait_for "[ \"\$(code '$URLY')\" = 200 ]" 200
check_eq "A saw exactly one proxied request for Y" 1 "$(proxied_on_a "$Y")"
check "served still healthy" http_up "http://127.0.0.1:$PB/healthz"
finish
