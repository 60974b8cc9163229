#!/bin/sh
# fleet_kill.sh: issue 18's combined scenario as one test. A real
# three-server NATS JetStream cluster (the fleet stream and buckets with 3
# replicas), three fedpipe nodes sharing one server name and signing key,
# each under the normal supervisor (scripts/fedsup: validated, purgatoryd,
# fetchd, feedpump with the fleet feed and apply, served, fleetd, syncd), and
# six peers: real served nodes whose rooms keep growing during the whole run
# (real signed events from served_fill). Each node reaches each peer through
# its own port of a logging proxy (tests/tools/fleet_proxy.py).
#   - settled: every peer has a holder, shares balance (6 peers / 3 = 2),
#     each peer is pulled by exactly one node, its holder;
#   - kill -9 a whole node (fedsup, its supervisors and every stage) while
#     it is behind: its validated stopped (SIGSTOP) while it pulls a burst
#     of its peers' events, so they are still in its inbox when it dies. Its
#     peers are pulled again by the others (bounded wait; the measured
#     takeover times are printed), and they must pull what the dead node
#     never got onto the fleet feed;
#   - kill -9 the NATS server leading the fleet stream mid-run, bring it
#     back: the feed keeps growing meanwhile;
#   - at the end (writers stopped, every peer's fleet cursor at its head,
#     every live outbox drained): the fleet stream holds each event of every
#     peer exactly once (the stream's count = the distinct Nats-Msg-Id = the
#     set of every event the peers offered, and each body's event_id is its
#     Nats-Msg-Id), and every live node serves every event
#     (/_matrix/federation/v1/event/{id}, and once in /_fed/v1/events);
#   - over the whole run no two nodes' requests to one peer were ever in
#     flight at the same moment (the proxy's request log).
# The test's own self-check (it must be able to fail): FLEETKILL_BREAK=nats_url
# leaves [fleet] nats_url out of node f3's config (f3 pulls every peer);
# FLEETKILL_BREAK=apply turns [fleet] apply off on every node.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
. tests/tools/nats_cluster.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
NODES="f1 f2 f3" PEERS="p1 p2 p3 p4 p5 p6"
STAGES="validated purgatoryd fetchd feedpump served fleetd syncd"
TTL_MS=3000 INTERVAL_MS=500
BREAK=${FLEETKILL_BREAK:-}
T_START=$(date +%s%N)
phase() { diag "[$(( ($(date +%s%N) - T_START) / 1000000 )) ms] $*"; }
# wait_s "condition" SECONDS: a bounded poll bounded by the clock (each try
# of these conditions can take seconds on a loaded machine).
wait_s() {
	_end=$(( $(date +%s) + $2 ))
	while ! eval "$1" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.2
	done
}
stage_pid() { cat "$T_TMP/$1/run/fedsup/$2.pid" 2>/dev/null; }   # stage_pid NODE STAGE
tree() { for _c in $(ps -o pid= --ppid "$1"); do echo "$_c"; tree "$_c"; done; }   # every descendant
[ -n "$BREAK" ] && diag "FLEETKILL_BREAK=$BREAK: a deliberately broken fleet; checks are expected to fail"

phase "start"
# Every port this test needs from one python start (free_port starts one
# per port: 40 of them cost minutes on a loaded machine).
python3 -c 'import socket
ss = [socket.socket() for _ in range(48)]
for s in ss: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in ss))' >"$T_TMP/ports"
free_port() {
	_k=$(($(cat "$T_TMP/ports.n" 2>/dev/null || echo 0) + 1))
	echo "$_k" >"$T_TMP/ports.n"
	sed -n "${_k}p" "$T_TMP/ports"
}
check "three NATS servers with a JetStream meta leader" nats_cluster_start 3

# The peers: served nodes, each with a first room (create + 8 events).
for p in $PEERS; do
	eval "PORT_$p=$(free_port)"
	eval "C=\$(node_config $p \$PORT_$p)"
	served_fill -c "$C" -N 8 -o "$T_TMP/$p.ids" >/dev/null
	node_start "$p" served
done
check "six peers up" wait_for "(for p in $PEERS; do eval \"http_up http://127.0.0.1:\\\$PORT_\$p/healthz\" || exit 1; done)" 300

# The proxy: one port per (node, peer); the request log attributes each pull.
MAP=""
for n in $NODES; do for p in $PEERS; do
	pp=$(free_port); eval "PX_${n}_$p=$pp up=\$PORT_$p"
	MAP="$MAP $pp:$up:$n:$p"
done; done
LOG=$T_TMP/requests.log
: >"$LOG"
bg python3 tests/tools/fleet_proxy.py "$LOG" $MAP >/dev/null 2>"$T_TMP/proxy.log"
check "proxy up" wait_for "http_up http://127.0.0.1:$PX_f1_p1/healthz" 100

phase "peers and proxy up"
# The fleet: one server name, one signing key, each node its own LMDB.
FPORT=$(free_port)
for n in $NODES; do
	mkdir -p "$T_TMP/$n"
	[ "$n" = f1 ] || cp "$T_TMP/f1/signing.key" "$T_TMP/$n/signing.key"
	peers=""
	for p in $PEERS; do peers="$peers
[peer $p]
endpoint = http://127.0.0.1:$(eval echo \$PX_${n}_$p)
[server $p.test:$(eval echo \$PORT_$p)]
endpoint = http://127.0.0.1:$(eval echo \$PORT_$p)"; done
	url="nats_url = $NATS_URLS"
	[ "$BREAK" = nats_url ] && [ "$n" = f3 ] && url=""
	apply=true
	[ "$BREAK" = apply ] && apply=false
	eval "HTTP_$n=$(free_port)"
	C=$(node_config "$n" "$(eval echo \$HTTP_$n)" "nats_timeout = 2s
nats_ack_wait = 3s
$FED_COMMON$FED_OPEN
[feedpump]
interval = 300ms
backoff_min = 50ms
backoff_max = 500ms
[syncd]
interval = ${INTERVAL_MS}ms
backoff_max = 1s
longpoll = 1s
[fleet]
$url
name = fk
member = $n
lease_ttl = ${TTL_MS}ms
replicas = 3
apply = $apply
$peers")
	sed -i "s/^server_name = .*/server_name = fleet.test:$FPORT/" "$C"
	eval "CONF_$n=$C"
done
check "the nodes share one signing key" sh -c "cmp -s '$T_TMP/f1/signing.key' '$T_TMP/f2/signing.key' && cmp -s '$T_TMP/f1/signing.key' '$T_TMP/f3/signing.key'"
# Each node under the normal supervisor (scripts/fedsup: every stage of
# `fedctl stages`, restarted when it dies), the three at once: their
# fleetds race for every lease.
SUP=${FP_ROOT:-$(pwd)}/scripts/fedsup
for n in $NODES; do
	eval "bg \"\$SUP\" -c \"\$CONF_$n\" --bin \"\$FP_BIN\" --logdir \"\$T_TMP/$n\"" 2>"$T_TMP/$n/fedsup.log"
	eval "SUP_$n=\$LAST_PID"
done
for n in $NODES; do
	check "node $n: fedsup started every stage" wait_s "grep -q 'all stages started' '$T_TMP/$n/fedsup.log'" 90
done
LIVE="$NODES"
fleet() { for _n in $LIVE; do [ "$BREAK" = nats_url ] && [ "$_n" = f3 ] && continue; eval "fedctl -c \$CONF_$_n fleet --json" 2>/dev/null; return; done; }
stream_msgs() {   # the fleet stream's message count, from any live server
	for _m in $NATS_MON_1 $NATS_MON_2 $NATS_MON_3; do
		_c=$(curl -s -m 2 "http://127.0.0.1:$_m/jsz?streams=true" |
			jq '[.account_details[]?.stream_detail[]? | select(.name == "fk") | .state.messages] | max // empty' 2>/dev/null)
		[ -n "$_c" ] && { echo "$_c"; return; }
	done
	echo 0
}
heads() {   # every peer's stream head (events offered so far), "p1=9 p2=9 ..."
	for _p in $PEERS; do printf '%s=%s ' "$_p" "$(wc -l <"$T_TMP/$_p.ids" | tr -d ' ')"; done
}

phase "fleet nodes up"
# Events keep arriving: a new room (create + 2) on one peer after another,
# until $T_TMP/stop-writer exists.
bg sh -c "while [ ! -f '$T_TMP/stop-writer' ]; do for p in $PEERS; do
	served_fill -c '$T_TMP/'\$p'/fedpipe.conf' -N 2 -o '$T_TMP/'\$p'.ids' >/dev/null 2>>'$T_TMP/writer.log'
	sleep 0.15; done; done"
WRITER=$LAST_PID

check "every peer has a holder and its cursor in KV" \
	wait_s "[ \"\$(fleet | jq '[.peers[] | select(.holder != \"\" and .fleet_cursor >= 9)] | length')\" = 6 ]" 60
check "balanced: three members, two peers each" \
	wait_s "fleet | jq -e '(.members | length) == 3 and ([.peers[] | select(.holder != \"\")] | length) == 6 and ([.peers[].holder] | group_by(.) | map(length) | max) == 2'" 60

since_pulls() {   # since_pulls NS PEER: nodes that requested PEER's events since NS
	awk -v s="$1" -v p="$2" '$1 > s && $4 == p && $6 ~ /events/ {print $3}' "$LOG" | sort -u | tr '\n' ' '
}
enough() { for _p in $PEERS; do [ "$(awk -v s="$1" -v p="$_p" '$1 > s && $4 == p && $6 ~ /events/' "$LOG" | wc -l)" -ge 3 ] || return 1; done; }
sleep 1   # a release in progress lets its last long-poll end
T0=$(date +%s%N)
check "settled: each peer pulled again" wait_s "enough $T0" 30
HOLDERS=$(fleet | jq -r '.peers[] | "\(.peer)=\(.holder)"' | tr '\n' ' ')
diag "holders: $HOLDERS"
for p in $PEERS; do
	h=$(echo "$HOLDERS" | tr ' ' '\n' | sed -n "s/^$p=//p")
	check_eq "settled: peer $p pulled by exactly one node, its holder" "$h " "$(since_pulls "$T0" "$p")"
done
check "the fleet feed fills while events keep arriving" wait_s '[ "$(stream_msgs)" -ge 60 ]' 30

phase "settled"
# kill -9 a whole node while it is behind: its validated stopped (SIGSTOP,
# as a node with a validation backlog is), it pulls a burst of new events of
# the peers it holds; once its fleetd has put the cursor past them into KV,
# every one of its stage processes is killed. Those events never reached
# the fleet feed from it: the new holders must get them.
VICTIM=$(echo "$HOLDERS" | tr ' ' '\n' | sed -n 's/^p1=//p')
[ -n "$VICTIM" ] || VICTIM=f1
LOST=$(fleet | jq -r --arg v "$VICTIM" '.peers[] | select(.holder == $v) | .peer' | tr '\n' ' ')
kill -STOP "$(stage_pid "$VICTIM" validated)"
TB=""
for p in $LOST; do
	served_fill -c "$T_TMP/$p/fedpipe.conf" -N 5 -o "$T_TMP/$p.ids" >/dev/null
	TB="$TB $p=$(wc -l <"$T_TMP/$p.ids" | tr -d ' ')"
done
pulled_new() {   # the victim's syncd committed cursors past the burst (its heartbeat says)
	_j=$(fleet) || return 1
	for _ph in $TB; do
		echo "$_j" | jq -e --arg v "$VICTIM" --arg p "${_ph%=*}" --argjson h "${_ph#*=}" \
			'.members[] | select(.member == $v) | .cursors[$p] >= $h' >/dev/null || return 1
	done
}
check "the victim pulled the burst (its own cursors past it) with its validated stopped" wait_s pulled_new 30
KVC=$(fleet | jq -r '[.peers[] | "\(.peer)=\(.fleet_cursor)"] | join(" ")')
eval "VSUP=\$SUP_$VICTIM"
VSTAGES=$(for s in $STAGES; do stage_pid "$VICTIM" "$s"; done | tr '\n' ' ')
PIDS="$VSUP $(tree "$VSUP" | tr '\n' ' ')"
kill -9 $PIDS
TK=$(date +%s%N)
diag "killed node $VICTIM: kill -9 of its fedsup, supervisors and stages ($(echo $PIDS | wc -w) processes; it held: $LOST)"
wait "$VSUP" 2>/dev/null
check "node $VICTIM: every stage process is gone ($(echo $VSTAGES | wc -w) of them)" \
	wait_s "(for p in $VSTAGES; do ! kill -0 \$p 2>/dev/null || exit 1; done)" 10
diag "the dead node's LMDB: $(eval "purgatory_tool check -c \$CONF_$VICTIM" 2>&1 | cut -d' ' -f1-5); the burst ends at:$TB; the fleet's KV cursors at the kill: $KVC"
LIVE=$(for n in $NODES; do [ "$n" = "$VICTIM" ] || echo "$n"; done | tr '\n' ' ')
taken() {   # taken PEER: a live node has pulled PEER's events since the kill
	awk -v s="$TK" -v p="$1" -v v="$VICTIM" '$1 > s && $4 == p && $3 != v && $6 ~ /events/' "$LOG" | grep -q .
}
for p in $LOST; do
	check "peer $p pulled again by a live node after $VICTIM died (bounded wait 30 s; lease_ttl ${TTL_MS} ms + interval ${INTERVAL_MS} ms)" \
		wait_s "taken $p" 30
	ms=$(awk -v s="$TK" -v p="$p" -v v="$VICTIM" '$1 > s && $4 == p && $3 != v && $6 ~ /events/ {print int(($1 - s) / 1000000), $3; exit}' "$LOG")
	diag "takeover: peer $p first pulled by ${ms#* } ${ms%% *} ms after the kill (lease_ttl + interval = $((TTL_MS + INTERVAL_MS)) ms)"
done
check "the dead member's heartbeat expired: two members" wait_s "fleet | jq -e '(.members | length) == 2'" 30
check "all six leases held by the two live members, three each at most" \
	wait_s "fleet | jq -e --arg v $VICTIM '[.peers[] | select(.holder != \"\" and .holder != \$v)] | length == 6'" 30

phase "takeover done"
# One NATS server killed mid-run (the fleet stream's leader), then back.
LEADER=$(for _m in $NATS_MON_1 $NATS_MON_2 $NATS_MON_3; do
	curl -s -m 2 "http://127.0.0.1:$_m/jsz?streams=true" |
		jq -r '[.account_details[]?.stream_detail[]? | select(.name == "fk") | .cluster.leader // empty] | .[0] // empty'
done | grep -m1 '^n[123]$')
KILLN=${LEADER#n}
case "$KILLN" in 1|2|3) ;; *) KILLN=2 ;; esac
BEFORE=$(stream_msgs)
nats_server_stop "$KILLN"
diag "killed NATS server $KILLN (the fleet stream's leader: ${LEADER:-unknown}) with $BEFORE messages in the stream"
check "with NATS server $KILLN down the fleet feed keeps growing" wait_s "[ \"\$(stream_msgs)\" -ge $((BEFORE + 30)) ]" 40
nats_server_start "$KILLN"
check "NATS server $KILLN back" wait_s "nats_js_ready $KILLN" 30

phase "NATS server back"
# The end: stop the writers; wait until the holders caught up with every
# peer's head and every live node's outbox drained.
touch "$T_TMP/stop-writer"
wait "$WRITER"
cat "$T_TMP"/p?.ids | sort >"$T_TMP/offered"
TOTAL=$(sort -u "$T_TMP/offered" | wc -l | tr -d ' ')
check_eq "the peers offered distinct events (made by served_fill)" "$(wc -l <"$T_TMP/offered" | tr -d ' ')" "$TOTAL"
diag "the peers offered $TOTAL events: $(heads)"
caught_up() {
	_j=$(fleet) || return 1
	for _p in $PEERS; do
		_h=$(wc -l <"$T_TMP/$_p.ids" | tr -d ' ')
		echo "$_j" | jq -e --arg p "$_p" --argjson h "$_h" '.peers[] | select(.peer == $p) | .fleet_cursor == $h' >/dev/null || return 1
	done
	for _n in $LIVE; do
		[ "$(eval "fedctl -c \$CONF_$_n --json feed status" | jq .pending)" = 0 ] || return 1
	done
}
check "every peer's fleet cursor is its head, every live outbox drained" wait_s caught_up 60
stable() { _a=$(stream_msgs); sleep 2; [ "$_a" = "$(stream_msgs)" ]; }
check "the fleet stream stops growing" wait_s stable 30
sleep 1   # a late duplicate would show now
phase "caught up"
NPORTS="$NATS_PORT_1 $NATS_PORT_2 $NATS_PORT_3"
R=$(python3 tests/tools/fleetkill_check.py stream fk "$T_TMP/stream.ids" $NPORTS)
SR=${R%% *}; case "$SR" in messages=[0-9]*) ;; *) SR=messages=$TOTAL ;; esac
diag "fleet stream: $R"
check_eq "fleet stream: $TOTAL messages, each with its own Nats-Msg-Id, the body's event ID" \
	"messages=$TOTAL read=$TOTAL distinct=$TOTAL body_mismatch=0 no_msgid=0" "$R"
sort "$T_TMP/stream.ids" >"$T_TMP/stream.sorted"
check_eq "fleet stream: exactly the events the peers offered (missing, extra)" "0 0" \
	"$(comm -23 "$T_TMP/offered" "$T_TMP/stream.sorted" | wc -l | tr -d ' ') $(comm -13 "$T_TMP/offered" "$T_TMP/stream.sorted" | wc -l | tr -d ' ')"
comm -23 "$T_TMP/offered" "$T_TMP/stream.sorted" | head -3 | sed 's/^/# not in the fleet feed: /'
check "fleet stream and buckets replicated on 3 servers" sh -c "curl -s 'http://127.0.0.1:$NATS_MON_1/jsz?streams=true&config=true' |
	jq -e '[.account_details[]?.stream_detail[]? | select(.name == \"fk\" or .name == \"KV_fk_leases\" or .name == \"KV_fk_peers\") | .config.num_replicas] | length == 3 and min == 3' >/dev/null"

phase "stream checked"
for n in $LIVE; do
	eval "hp=\$HTTP_$n"
	check "live node $n applied the whole fleet stream ($SR)" \
		wait_s "[ \"\$(python3 tests/tools/fleetkill_check.py listed $hp)\" -ge ${SR#messages=} ]" 30
	R=$(python3 tests/tools/fleetkill_check.py serves "$hp" "$T_TMP/offered")
	check_eq "live node $n serves every event, each once in its stream" \
		"listed=$TOTAL distinct=$TOTAL ids=$TOTAL missing=0 unlisted=0" "$R"
done
check_eq "nothing dead-lettered on the live nodes" "0 0" \
	"$(for n in $LIVE; do eval "fedctl -c \$CONF_$n --json feed status" | jq .dead; done | tr '\n' ' ' | sed 's/ $//')"

phase "served checked"
# Over the whole run: never two nodes' requests to one peer in flight at once.
R=$(python3 tests/tools/fleetkill_check.py overlaps "$LOG")
diag "proxy log: $R"
check "never two nodes' requests to one peer in flight at once (whole run)" sh -c "echo '$R' | grep -q ' overlaps=0$'"
finish
