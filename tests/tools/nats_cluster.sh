# tests/tools/nats_cluster.sh: a NATS cluster with JetStream on loopback
# (sourced after tests/lib/lib.sh). Each server has its own client,
# cluster-route and monitoring port (free_port), its own store directory
# under $T_TMP/nats-N, and runs under bg (stopped with the test).
#   nats_cluster_start N   start servers 1..N, wait for a JetStream meta
#                          leader; sets NATS_URLS (every client URL,
#                          comma-separated) and NATS_URL_<i>
#   nats_server_stop I     kill -9 server I (its store stays)
#   nats_server_start I    start server I again (same ports, same store)
#   nats_js_ready I        server I sees a JetStream meta leader
#   nats_routes_up I       server I has a route to each other server
# nats_cluster_start returns once every server has both: a meta leader
# elected by two of three servers is not yet a cluster a 3-replica stream
# can be placed on.
NATS_N=0
nats_routes_up() {
	eval "_m=\$NATS_MON_$1"
	_r=$(curl -s -m 2 "http://127.0.0.1:$_m/routez" | jq '[.routes[]?.remote_id] | unique | length' 2>/dev/null)
	[ "${_r:-0}" -ge $((NATS_N - 1)) ] 2>/dev/null
}
nats_js_ready() {
	eval "_m=\$NATS_MON_$1"
	curl -s -m 2 "http://127.0.0.1:$_m/jsz" | jq -e '.meta_cluster.leader // empty' >/dev/null 2>&1
}
nats_server_start() {
	_i=$1
	eval "_p=\$NATS_PORT_$_i _c=\$NATS_ROUTE_$_i _m=\$NATS_MON_$_i"
	_routes=""
	_j=1
	while [ $_j -le "$NATS_N" ]; do
		eval "_rc=\$NATS_ROUTE_$_j"
		_routes="$_routes nats-route://127.0.0.1:$_rc"
		_j=$((_j + 1))
	done
	mkdir -p "$T_TMP/nats-$_i"
	cat >"$T_TMP/nats-$_i.conf" <<NC
server_name: n$_i
listen: 127.0.0.1:$_p
http: 127.0.0.1:$_m
jetstream { store_dir: "$T_TMP/nats-$_i" }
cluster {
  name: fpfleet
  listen: 127.0.0.1:$_c
  routes: [$(echo $_routes | sed 's/ /, /g')]
}
NC
	bg nats-server -c "$T_TMP/nats-$_i.conf" 2>>"$T_TMP/nats-$_i.log"
	eval "NATS_PID_$_i=\$LAST_PID"
}
nats_server_stop() {
	eval "_pid=\$NATS_PID_$1"
	kill -9 "$_pid" 2>/dev/null
	wait "$_pid" 2>/dev/null
	return 0
}
nats_cluster_start() {
	NATS_N=$1
	NATS_URLS=""
	_i=1
	while [ $_i -le "$NATS_N" ]; do
		eval "NATS_PORT_$_i=$(free_port) NATS_ROUTE_$_i=$(free_port) NATS_MON_$_i=$(free_port)"
		eval "NATS_URL_$_i=nats://127.0.0.1:\$NATS_PORT_$_i"
		eval "NATS_URLS=\${NATS_URLS:+\$NATS_URLS,}\$NATS_URL_$_i"
		_i=$((_i + 1))
	done
	_i=1
	while [ $_i -le "$NATS_N" ]; do nats_server_start $_i; _i=$((_i + 1)); done
	_i=1
	while [ $_i -le "$NATS_N" ]; do
		wait_for "nats_js_ready $_i" 300 || { diag "nats server $_i: no JetStream meta leader"; return 1; }
		wait_for "nats_routes_up $_i" 300 || { diag "nats server $_i: routes to the others not up"; return 1; }
		_i=$((_i + 1))
	done
}
