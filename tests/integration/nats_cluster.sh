#!/bin/sh
# nats_cluster.sh: the test harness's three-server NATS cluster with
# JetStream (tests/tools/nats_cluster.sh) comes up on loopback, elects a
# JetStream meta leader, survives one server killed, and takes it back.
. tests/lib/lib.sh
. tests/tools/nats_cluster.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
check "three servers up with a JetStream meta leader" nats_cluster_start 3
check_eq "three client URLs" 3 "$(echo "$NATS_URLS" | tr ',' '\n' | grep -c '^nats://127.0.0.1:')"
check_eq "each route is up (server 1 sees 2 routes)" 2 \
	"$(curl -s "http://127.0.0.1:$NATS_MON_1/routez" | jq '.num_routes')"
nats_server_stop 3
check "server 3 killed: servers 1 and 2 still have a meta leader" \
	wait_for "nats_js_ready 1 && nats_js_ready 2" 300
nats_server_start 3
check "server 3 back with a meta leader" wait_for "nats_js_ready 3" 300
finish
