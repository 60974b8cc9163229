#!/bin/sh
# fleet_stream_late.sh: a feedpump that starts while its NATS cluster cannot
# answer for the fleet stream yet (two of three servers down: no JetStream
# quorum) keeps trying, logs why, and publishes once they are back; it does
# not exit as if its configuration were wrong. (CI once started a fleet before
# the cluster's routes were all up: one node's feedpump exited on "insufficient
# resources" and its events never reached the fleet feed.) fleetd's KV buckets
# likewise.
. tests/lib/lib.sh
. tests/tools/nats_cluster.sh
. tests/tools/federation_lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
check "three NATS servers with a JetStream meta leader" nats_cluster_start 3
nats_server_stop 2
nats_server_stop 3

PA=$(free_port)
A=$(node_config a "$PA" "nats_timeout = 1s
[feedpump]
backoff_min = 50ms
backoff_max = 500ms
interval = 300ms
[fleet]
nats_url = $NATS_URLS
name = fplate
member = a
replicas = 3")
served_fill -c "$A" -N 29 -o "$T_TMP/ids" --jsonl >"$T_TMP/ev.jsonl" 2>/dev/null
check_eq "a stores 30" 30 "$(fleet_fill "$T_TMP/a/state" "$T_TMP/ev.jsonl")"
node_start a feedpump fleetd
check "feedpump says why the stream is not there yet and retries" \
	wait_for "grep -q 'retrying in' '$T_TMP/a/feedpump.log'" 300
check "feedpump is still running while it retries" kill -0 "$PID_a_feedpump"
check "fleetd too retries its KV bucket" wait_for "grep -q 'KV bucket fplate_leases.*retrying in' '$T_TMP/a/fleetd.log'" 300
check "fleetd is still running while it retries" kill -0 "$PID_a_fleetd"
nats_server_start 2
nats_server_start 3
check "servers 2 and 3 back" wait_for "nats_js_ready 1 && nats_js_ready 2 && nats_js_ready 3" 300
stream_msgs() {
	curl -s "http://127.0.0.1:$NATS_MON_1/jsz?streams=true" |
		jq '[.account_details[]?.stream_detail[]? | select(.name == "fplate") | .state.messages] | max // 0'
}
check "the stream is made and gets all 30 events" wait_for '[ "$(stream_msgs)" -ge 30 ]' 600 ||
	diag "$(grep -v '<7>' "$T_TMP/a/feedpump.log" | tail -15)"
check "the log says the stream became ready" grep -q "stream fplate ready after" "$T_TMP/a/feedpump.log"
check "fleetd's buckets are made once the quorum is back" wait_for "grep -q 'KV bucket fplate_peers ready\\|fleet fplate at' '$T_TMP/a/fleetd.log'" 600
check_eq "a's outbox drained" 0 "$(fedctl -c "$A" --json feed status | jq .pending)"
finish
