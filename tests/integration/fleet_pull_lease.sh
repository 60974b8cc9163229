#!/bin/sh
# fleet_pull_lease.sh: in a fleet, no request to a peer outlives this
# node's lease on it. A slow peer (its answers held 40 s by the logging
# proxy) is being pulled by f1 when f1's fleetd dies (kill -9, so
# its lease is never renewed nor released): syncd cuts the request when the
# lease runs out (lease_ttl 3 s), logs why, and counts no peer failure;
# another node taking the peer over then pulls alone. (Before: a plain
# pull ran to syncd's own timeout, 60 s here, overlapping the new holder.)
# Also: with the lease held and renewed, a request longer than the lease's
# remaining time is cut and reported as the lease's bound, not the peer's.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
NP=$(free_port); NM=$(free_port)
bg nats-server -js -a 127.0.0.1 -p "$NP" -m "$NM" -sd "$T_TMP/nats" 2>>"$T_TMP/nats.log"
check "a NATS server with JetStream" wait_for "curl -s -m 2 http://127.0.0.1:$NM/jsz | grep -q config" 300

PP=$(free_port)
P=$(node_config p1 "$PP")
served_fill -c "$P" -N 20 >/dev/null
node_start p1 served
check "peer up" wait_for "http_up http://127.0.0.1:$PP/healthz" 200
PX=$(free_port)
LOG=$T_TMP/requests.log
: >"$LOG"
bg python3 tests/tools/fleet_proxy.py "$LOG" "$PX:$PP:f1:p1" >/dev/null 2>"$T_TMP/proxy.log"
check "proxy up" wait_for "http_up http://127.0.0.1:$PX/healthz" 100

F=$(node_config f1 "$(free_port)" "$FED_COMMON
[syncd]
interval = 300ms
backoff_max = 1s
longpoll = 0
timeout = 60s
low_speed_time = 60s
[fleet]
nats_url = nats://127.0.0.1:$NP
name = t18pl
member = f1
lease_ttl = 3s
replicas = 1
[peer p1]
endpoint = http://127.0.0.1:$PX")
node_start f1 fleetd validated purgatoryd syncd
check "f1 holds p1's lease and pulls it (21 events)" wait_for \
	"purgatory_tool check -c '$F' | grep -q 'events=21 '" 600

# 1. Lease held and renewed, a peer slower than the lease's remaining time:
#    the request is cut at that bound and reported so.
echo 6 >"$LOG.delay"
check "a slow request starts" wait_for "[ -e '$LOG.delaying' ]" 300
check "cut within the lease, reported as the lease's bound" \
	wait_for "grep -q 'no answer within this node.s fleet lease' '$T_TMP/f1/syncd.log'" 300
check "the proxy saw f1 go away mid-request (gone)" wait_for "grep -q ' f1 p1 gone /' '$LOG'" 300

# 2. fleetd dies: the lease is not renewed; the request in flight ends with it.
echo 40 >"$LOG.delay"
rm -f "$LOG.delaying"
: >"$LOG"
check "another slow request starts" wait_for "[ -e '$LOG.delaying' ]" 300
NFAIL=$(grep -c 'no answer within' "$T_TMP/f1/syncd.log")
kill -9 "$PID_f1_fleetd"
check "syncd ends it when the lease runs out (well before the peer's 40 s)" \
	wait_for "grep -q ' f1 p1 gone /' '$LOG'" 250
check "... and says why" grep -q "request cut at the end of this node's fleet lease" "$T_TMP/f1/syncd.log"
check_eq "no peer failure counted for it" "$NFAIL" "$(grep -c 'no answer within' "$T_TMP/f1/syncd.log")"
: >"$LOG"
sleep 2
check_eq "no lease: f1 sends p1 no request" 0 "$(grep -c ' f1 p1 ' "$LOG")"
check "syncd counts the skips (fleet_not_holder)" sh -c "fedctl -c '$F' stats syncd | grep -q '\"fleet_not_holder\":[1-9]'"
finish
