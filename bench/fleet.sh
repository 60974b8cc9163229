#!/bin/sh
# bench/fleet.sh (issue 18): a fleet of 1, 2 and 3 fedpipe nodes on this
# machine pulling the same FLEET_BENCH_PEERS (6) peers, in the same run.
# NATS: a real three-server JetStream cluster (tests/tools/nats_cluster.sh),
# stream and buckets with 3 replicas, as a fleet would run it; its CPU is
# shown apart (FLEET_BENCH_NATS_SERVERS=1: one server, replicas 1, to see
# what the replication costs). Peers: fedpipe nodes (served only) serving /_fed/v1/events,
# each filled by served_fill with a chain of real signed events (E events in
# all: FLEET_BENCH_EVENTS, default 6000, about 2 minutes for the three
# fleets; FLEET_BENCH_PEERS, FLEET_BENCH_NODES="1 2 3"). A fleet node is
# every stage: validated purgatoryd fetchd feedpump served fleetd syncd, one
# server name and signing key for the fleet, each node its own LMDB. fleetd
# starts first and the leases settle (every peer held, none over its share);
# then the other stages start (t0) and the nodes pull their peers through
# the whole pipeline, feedpump publishes to the fleet stream (Nats-Msg-Id =
# event ID) and applies the others' events into its own store. [feed]
# nats_timeout = 20 s: on this loaded machine the 3-replica stream create
# once took over the 5 s default and feedpump exited (fedsup would restart
# it; no fedsup runs here, so a stage that exits fails the run, saying which).
#   feed ev/s     the stream's message count sampled every 0.2 s: messages
#                 added from the first sample with any to the one with all E,
#                 over that time (start-up left out: "1st msg" is t0 to then)
#   all-applied   seconds from t0 until every node's store holds all E
#   apply ev/s    events a node applied from the fleet feed (its others'),
#                 over the time from the first message to all-applied; mean
#                 over the nodes (no apply with one node)
#   CPU/ev        per node: utime+stime (/proc/PID/stat) of all its stages,
#                 summed, over the events in its store (pulled + applied);
#                 the mean over the nodes, and the largest
#   fleet CPU/ev  all stages of all nodes over E (each event stored k times)
#   NATS CPU/ev   the three nats-servers' CPU during the run, over E
# Each ratio is over the 1-node row of this run. This machine has 2 cores:
# the point is the cost per event and that nothing serializes, not the total.
. tests/lib/lib.sh
. tests/tools/nats_cluster.sh
E=${FLEET_BENCH_EVENTS:-6000}
P=${FLEET_BENCH_PEERS:-6}
SIZES=${FLEET_BENCH_NODES:-1 2 3}
NS=${FLEET_BENCH_NATS_SERVERS:-3}
LIMIT=${FLEET_BENCH_TIMEOUT:-600}   # tenths of a second per phase (x5 for the pull and apply phases)
STAGES="validated purgatoryd fetchd feedpump served fleetd syncd"
command -v nats-server >/dev/null || { echo "fleet: nats-server not installed; skipped"; exit 0; }
if [ "$NS" -gt 1 ]; then
	nats_cluster_start "$NS" >/dev/null || { echo "fleet: the NATS cluster did not start"; exit 1; }
else   # one plain JetStream server (a one-server "cluster" gets no meta leader)
	NATS_PORT_1=$(free_port) NATS_MON_1=$(free_port)
	NATS_URLS=nats://127.0.0.1:$NATS_PORT_1
	bg nats-server -js -a 127.0.0.1 -p "$NATS_PORT_1" -m "$NATS_MON_1" -sd "$T_TMP/nats-1" 2>>"$T_TMP/nats-1.log"
	NATS_PID_1=$LAST_PID
	wait_for "curl -sf -m 2 'http://127.0.0.1:$NATS_MON_1/healthz?js-enabled-only=true' >/dev/null" 300 ||
		{ echo "fleet: nats-server did not start"; exit 1; }
fi
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
cpu_ticks() {   # cpu_ticks PID...: utime+stime summed (clock ticks)
	_t=0
	for _p in "$@"; do
		_s=$(sed 's/^.*) //' "/proc/$_p/stat" 2>/dev/null) || continue
		set -- $_s
		_t=$((_t + ${12} + ${13}))
	done
	echo $_t
}
nats_ticks() { cpu_ticks $NATS_PID_1 $NATS_PID_2 $NATS_PID_3; }

# The peers: E events over P peers (served_fill -N n makes n + 1 with the create).
PER=$((E / P))
E=$((PER * P))
i=1
while [ $i -le $P ]; do
	eval "PORT_p$i=$(free_port)"
	eval "C=\$(node_config p$i \$PORT_p$i)"
	served_fill -c "$C" -N $((PER - 1)) >/dev/null || { echo "fleet: served_fill failed"; exit 1; }
	bg served -c "$C" 2>>"$T_TMP/p$i/served.log"
	i=$((i + 1))
done
wait_for "i=1; while [ \$i -le $P ]; do eval \"curl -s -o /dev/null -m 2 http://127.0.0.1:\\\$PORT_p\$i/healthz\" || exit 1; i=\$((i + 1)); done" 300 ||
	{ echo "fleet: peers did not come up"; exit 1; }

stream_msgs() {   # stream_msgs NAME
	curl -s -m 5 "http://127.0.0.1:$NATS_MON_1/jsz?streams=true" |
		jq --arg s "$1" '[.account_details[]?.stream_detail[]? | select(.name == $s) | .state.messages] | max // 0'
}
events_of() { purgatory_tool check -c "$1" 2>/dev/null | tr ' ' '\n' | sed -n 's/^events=//p'; }
stat_of() {   # stat_of CONF STAGE NAME
	fedctl -c "$1" stats "$2" 2>/dev/null | sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p" | head -1
}

run() {   # run K: one fleet of K nodes; appends a result line to $T_TMP/results
	k=$1 fl=fb$1
	FPORT=$(free_port)
	j=1 CONFS=""
	while [ $j -le "$k" ]; do
		n=${fl}n$j
		peers=""
		i=1
		while [ $i -le $P ]; do
			peers="$peers
[peer p$i]
endpoint = http://127.0.0.1:$(eval echo \$PORT_p$i)"
			i=$((i + 1))
		done
		mkdir -p "$T_TMP/$n"
		[ $j -gt 1 ] && cp "$T_TMP/${fl}n1/signing.key" "$T_TMP/$n/signing.key"
		C=$(node_config "$n" "$(free_port)" "nats_timeout = 20s
[syncd]
interval = 200ms
longpoll = 1s
[fleet]
nats_url = $NATS_URLS
name = $fl
member = $n
lease_ttl = 5s
replicas = $NS
$peers")
		sed -i "s/^server_name = .*/server_name = fleet.test:$FPORT/" "$C"
		CONFS="$CONFS $C"
		j=$((j + 1))
	done
	set -- $CONFS
	C1=$1
	# fleetd everywhere first; the leases settle.
	j=1
	while [ $j -le "$k" ]; do
		bg fleetd -c "$T_TMP/${fl}n$j/fedpipe.conf" 2>>"$T_TMP/${fl}n$j/fleetd.log"
		eval "PID_${fl}n${j}_fleetd=$LAST_PID"
		j=$((j + 1))
	done
	share=$(((P + k - 1) / k))
	settled() {
		fedctl -c "$C1" fleet --json >"$T_TMP/fleet.$k.json" 2>/dev/null &&
			jq -e "(.members | length) == $k and ([.peers[] | select(.holder != \"\")] | length) == $P and ([.peers[].holder] | group_by(.) | map(length) | max) <= $share" "$T_TMP/fleet.$k.json"
	}
	wait_for settled $((LIMIT * 2)) || { echo "fleet: $k nodes: the leases did not settle"; return 1; }
	HOLD=$(jq -r '[.peers[].holder] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$T_TMP/fleet.$k.json")
	n0=$(nats_ticks)
	t0=$(now)
	j=1
	while [ $j -le "$k" ]; do
		for s in $STAGES; do
			[ "$s" = fleetd ] && continue
			bg "$s" -c "$T_TMP/${fl}n$j/fedpipe.conf" 2>>"$T_TMP/${fl}n$j/$s.log"
			eval "PID_${fl}n${j}_$s=$LAST_PID"
		done
		j=$((j + 1))
	done
	# A stage that exits is not restarted here (no fedsup): say which, and stop.
	dead() {
		j=1
		while [ $j -le "$k" ]; do
			for s in $STAGES; do
				eval "_p=\$PID_${fl}n${j}_$s"
				kill -0 "$_p" 2>/dev/null && continue
				echo "fleet: $k nodes: ${fl}n$j's $s exited: $(grep -v '^<[67]>' "$T_TMP/${fl}n$j/$s.log" | tail -1)"
				return 0
			done
			j=$((j + 1))
		done
		return 1
	}
	end=$(($(date +%s) + LIMIT / 2))
	# the stream's message count over time, every 0.2 s
	: >"$T_TMP/samples.$k"
	while :; do
		c=$(stream_msgs $fl)
		echo "$(now) ${c:-0}" >>"$T_TMP/samples.$k"
		[ "${c:-0}" -ge $E ] && break
		dead && return 1
		[ "$(date +%s)" -gt $end ] && { echo "fleet: $k nodes: the stream did not reach $E ($c)"; return 1; }
		sleep 0.2
	done
	t1=$(now)
	# steady rate: from the first sample with a message to the last
	set -- $(awk '$2 > 0 && !a { a = $1; c = $2 } END { print a, c, $1, $2 }' "$T_TMP/samples.$k")
	ta=$1 ca=$2 tb=$3 cb=$4
	all() { for c in $CONFS; do [ "$(events_of "$c")" -ge $E ] || return 1; done; }
	until all; do   # every 0.5 s (purgatory_tool check per node is not free)
		dead && return 1
		[ "$(date +%s)" -gt $end ] && { echo "fleet: $k nodes: not every node holds all $E events:$(for c in $CONFS; do printf ' %s' "$(events_of "$c")"; done)"; return 1; }
		sleep 0.5
	done
	t2=$(now)
	nt=$(($(nats_ticks) - n0))
	# CPU now, before anything else happens; then the counts.
	j=1
	while [ $j -le "$k" ]; do
		n=${fl}n$j pids=""
		for s in $STAGES; do eval "pids=\"\$pids \$PID_${n}_$s\""; done
		eval "CPU_$j=\$(cpu_ticks $pids)"
		det=""
		for s in $STAGES; do eval "det=\"\$det \$s=\$(cpu_ticks \$PID_${n}_$s)\""; done
		eval "DET_$j=\"\$det\""
		j=$((j + 1))
	done
	msgs=$(stream_msgs $fl)
	j=1
	while [ $j -le "$k" ]; do
		n=${fl}n$j c=$T_TMP/$n/fedpipe.conf
		eval "cpu=\$CPU_$j det=\$DET_$j"
		ev=$(events_of "$c")
		echo "node $k $n events ${ev:-0} pulled $(stat_of "$c" purgatoryd stored) applied $(stat_of "$c" feedpump fleet_applied) published $(stat_of "$c" feedpump published) cpu_ticks $cpu hz $HZ$det" >>"$T_TMP/results"
		j=$((j + 1))
	done
	echo "fleet $k t0 $t0 t1 $t1 t2 $t2 ta $ta ca $ca tb $tb cb $cb nats_ticks $nt msgs $msgs leases $HOLD" >>"$T_TMP/results"
	# stop this fleet (syncd first, as fedsup does)
	j=1
	while [ $j -le "$k" ]; do
		for s in syncd fleetd feedpump served fetchd purgatoryd validated; do eval "stop \$PID_${fl}n${j}_$s"; done
		j=$((j + 1))
	done
}
: >"$T_TMP/results"
for k in $SIZES; do run "$k" || { cat "$T_TMP/results"; exit 1; }; done
[ -n "${FLEET_BENCH_RAW:-}" ] && cat "$T_TMP/results"
awk -v E="$E" -v P="$P" -v NS="$NS" '
	function kv(k,   i) { for (i = 1; i < NF; i++) if ($i == k) return $(i + 1); return "" }
	function r(v, b) { return (b > 0 && v > 0) ? sprintf("%.2fx", v / b) : "-" }
	/^node / { k = $2; hz = kv("hz"); u = kv("cpu_ticks") / hz * 1e6 / kv("events")
	           sum[k] += u; if (u > mx[k]) mx[k] = u; tot[k] += kv("cpu_ticks") / hz; ap[k] += kv("applied")
	           det[k] = det[k] sprintf("  %s: %d events (%d pulled, %d applied), %.0f us/event;", $3, kv("events"), kv("pulled"), kv("applied"), u)
	           for (i = 1; i <= NF; i++) if ($i ~ /=/) { split($i, a, "="); st[k, a[1]] += a[2] / hz } }
	/^fleet / { k = $2; ks[++m] = k; rate[k] = (kv("tb") > kv("ta")) ? (kv("cb") - kv("ca")) / (kv("tb") - kv("ta")) : 0; first[k] = kv("ta") - kv("t0"); appl[k] = kv("t2") - kv("t0"); kv2[k] = kv("t2") - kv("ta")
	            nats[k] = kv("nats_ticks"); msgs[k] = kv("msgs"); hold[k] = substr($0, index($0, "leases ") + 7) }
	END {
		printf "fleet of 1..3 nodes on this 2-core machine, %d events from %d peers, %s (replicas %d)\n", E, P, (NS > 1 ? NS "-server NATS JetStream cluster" : "one NATS JetStream server"), NS
		printf "(2 cores: the point is the cost per event and that nothing serializes, not the total)\n"
		printf "%-5s %9s %6s %7s %11s %10s %11s %6s %11s %12s %6s %11s %6s\n", "nodes", "feed ev/s", "vs 1", "1st msg", "all-applied", "apply ev/s", "CPU us/ev", "vs 1", "max node", "fleet us/ev", "vs 1", "NATS us/ev", "vs 1"
		for (i = 1; i <= m; i++) {
			k = ks[i]; b = ks[1]; c = sum[k] / k
			f = tot[k] * 1e6 / E; fb = tot[b] * 1e6 / E
			printf "%-5d %9.0f %6s %6.1fs %10.1fs %10s %11.0f %6s %11.0f %12.0f %6s %11.0f %6s\n", k, rate[k], r(rate[k], rate[b]), first[k], appl[k], (ap[k] > 0 && kv2[k] > 0) ? sprintf("%.0f", ap[k] / k / kv2[k]) : "-", c, r(c, sum[b] / b), mx[k], f, r(f, fb), nats[k] / hz * 1e6 / E, r(nats[k], nats[b])
		}
		printf "per node (events in its store = pulled by it + applied from the fleet feed; leases at t0):\n"
		for (i = 1; i <= m; i++) {
			k = ks[i]; printf "%d node(s), leases %s, stream %d messages\n%s\n", k, hold[k], msgs[k], det[k]
			printf "  CPU s by stage, all nodes:"
			split("validated purgatoryd fetchd feedpump served fleetd syncd", ss, " ")
			for (j = 1; j <= 7; j++) printf " %s %.2f", ss[j], st[k, ss[j]]
			printf "\n"
		}
	}' "$T_TMP/results"
