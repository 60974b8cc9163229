# chaos.sh: three nodes under fedsup, full mesh; events originated
# continuously on all three (own rooms and one shared room) for
# FP_CHAOS_SECONDS (default 60) while a random stage of a random node is
# killed with kill -9 about once a second; then a quiet period. Afterwards
# every originated event is stored exactly once on every node and appears
# exactly once in every node's feed, parents before children; no rejects;
# mdb_stat finds every environment consistent. Prints the figures.
# The soak (FP_SOAK=1, `make soak`) runs until FP_CHAOS_KILLS stages (default
# 1000) were killed, one every FP_CHAOS_INTERVAL seconds (default 0.3; stages
# count as healthy again after FP_CHAOS_STABLE s, default 3, so they are not
# kept in long backoffs), then also requires the three nodes' stored sets to
# be equal, and prints kills, events, lost, duplicated and the duration.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
DURATION=${FP_CHAOS_SECONDS:-60}
KILLS=${FP_CHAOS_KILLS:-}
INTERVAL=${FP_CHAOS_INTERVAL:-1}
STABLE=${FP_CHAOS_STABLE:-10}
if [ -n "${FP_SOAK:-}" ]; then
	KILLS=${FP_CHAOS_KILLS:-1000}
	INTERVAL=${FP_CHAOS_INTERVAL:-0.3}
	STABLE=${FP_CHAOS_STABLE:-3}
fi
STAGES="validated purgatoryd fetchd feedpump served syncd"
NODES="a b c"
for n in $NODES; do eval "PORT_$n=$(free_port)"; done
for n in $NODES; do
	extra="$FED_COMMON$FED_OPEN
[syncd]
interval = 1s
[feed]
sink = file"
	for m in $NODES; do
		[ "$m" = "$n" ] && continue
		eval "pm=\$PORT_$m"
		extra="$extra
[peer $m]
endpoint = http://127.0.0.1:$pm
[server $m.test:$pm]
endpoint = http://127.0.0.1:$pm"
	done
	eval "p=\$PORT_$n"
	node_config "$n" "$p" "$extra" >/dev/null
	# node_config writes [feed] dir; the second [feed] section adds sink.
done
for n in $NODES; do
	mkdir -p "$T_TMP/$n/log"
	bg "$FP_ROOT/scripts/fedsup" -c "$T_TMP/$n/fedpipe.conf" --bin "$FP_BIN" --stages "$STAGES" \
		--stable "$STABLE" --logdir "$T_TMP/$n/log" 2>"$T_TMP/$n/fedsup.log"
	eval "SUP_$n=$LAST_PID"
done
for n in $NODES; do
	check "node $n: every stage started under fedsup" wait_for "grep -q 'all stages started' $T_TMP/$n/fedsup.log" 300
done
conf() { echo "$T_TMP/$1/fedpipe.conf"; }
for n in $NODES; do
	fedctl -c "$(conf $n)" create-room 2>>"$T_TMP/$n/fedctl.log" | head -n 1 >"$T_TMP/$n/room"
	check "node $n created its room" test -s "$T_TMP/$n/room"
done
SHARED=$(fedctl -c "$(conf a)" create-room 2>>"$T_TMP/a/fedctl.log" | head -n 1)
check "node a created the shared room" test -n "$SHARED"
# The shared room's create event must reach b and c before they can send to it.
for n in b c; do
	check "node $n has the shared room" wait_for \
		"fedctl -c $(conf $n) send '$SHARED' m.room.message '{\"body\":\"hello\"}' >>$T_TMP/$n/ids 2>/dev/null" 600
done

originate() { # node: send until the stop file appears, one ID per line
	_n=$1 _i=0 _room=$(cat "$T_TMP/$1/room")
	while [ ! -f "$T_TMP/stop" ]; do
		_r=$_room
		[ $((_i % 3)) -eq 2 ] && _r=$SHARED
		fedctl -c "$(conf "$_n")" send "$_r" m.room.message "{\"body\":\"$_n $_i\"}" >>"$T_TMP/$_n/ids" 2>>"$T_TMP/$_n/fedctl.log"
		_i=$((_i + 1))
		sleep 0.05
	done
}
killer() { # kill -9 a random stage of a random node every INTERVAL s (up to KILLS)
	_k=0
	while [ ! -f "$T_TMP/stop" ] && { [ -z "$KILLS" ] || [ $_k -lt "$KILLS" ]; }; do
		sleep "$INTERVAL"
		_pick=$(awk -v s="$(date +%s%N)" 'BEGIN { srand(s % 2147483647); printf "%d %d", int(rand() * 3), int(rand() * 6) }')
		_node=$(echo "$NODES" | cut -d' ' -f$(( ${_pick% *} + 1 )))
		_stage=$(echo "$STAGES" | cut -d' ' -f$(( ${_pick#* } + 1 )))
		pid=-
		[ -f "$T_TMP/$_node/run/fedsup/$_stage.state" ] && . "$T_TMP/$_node/run/fedsup/$_stage.state"
		case "$pid" in ''|-|*[!0-9]*) continue ;; esac
		kill -9 "$pid" 2>/dev/null && { _k=$((_k + 1)); echo "$_node $_stage $pid" >>"$T_TMP/kills"; }
	done
}
start=$(date +%s)
for n in $NODES; do bg originate "$n"; done
bg killer
if [ -n "$KILLS" ]; then
	# Until KILLS kills were done (bounded: 10 times the planned time).
	_n=$(awk -v k="$KILLS" -v i="$INTERVAL" 'BEGIN { printf "%d", k * i * 10 + 60 }')
	while [ "$(wc -l 2>/dev/null <"$T_TMP/kills" || echo 0)" -lt "$KILLS" ] && [ "$_n" -gt 0 ]; do
		sleep 1; _n=$((_n - 1))
	done
	DURATION=$(( $(date +%s) - start ))
else
	sleep "$DURATION"
fi
touch "$T_TMP/stop"
sleep 1.5
quiet=$(date +%s)
originated=$(cat "$T_TMP"/a/ids "$T_TMP"/b/ids "$T_TMP"/c/ids | grep -c '^\$')
kills=$(wc -l <"$T_TMP/kills" 2>/dev/null || echo 0)
diag "chaos phase: ${DURATION}s, $originated events originated, $kills kill -9"
check "events were originated on every node" sh -c "[ -s $T_TMP/a/ids ] && [ -s $T_TMP/b/ids ] && [ -s $T_TMP/c/ids ]"
if [ -n "$KILLS" ]; then
	check "$KILLS stages were killed" [ "$kills" -ge "$KILLS" ]
else
	check "stages were killed about once a second" [ "$kills" -ge $((DURATION / 2)) ]
fi
converged=1
for n in $NODES; do
	if wait_for "python3 tests/tools/chaos_check.py --dump $T_TMP/$n/set $(conf $n) $T_TMP/$n/feed $T_TMP/a/ids $T_TMP/b/ids $T_TMP/c/ids >$T_TMP/$n/check" 3000; then
		ok "node $n converged: $(cat "$T_TMP/$n/check")"
	else
		converged=0
		not_ok "node $n did not converge: $(cat "$T_TMP/$n/check")"
	fi
done
took=$(( $(date +%s) - quiet ))
# Exact set equality: every node stores (and feeds: chaos_check) the same set.
check "every node stores the same set of events" sh -c "cmp -s $T_TMP/a/set $T_TMP/b/set && cmp -s $T_TMP/a/set $T_TMP/c/set"
lost=0 dups=0
for n in $NODES; do
	eval "$(sed -n 's/.* missing=\([0-9]*\) dup_stream=\([0-9]*\) .* dup_feed=\([0-9]*\) feed_missing=\([0-9]*\) .*/lost=$((lost + \1 + \4)) dups=$((dups + \2 + \3))/p' "$T_TMP/$n/check")"
done
for n in $NODES; do
	# A re-pulled duplicate (a syncd killed before its cursor commit) can
	# still sit in the inbox when the stream has converged: it leaves only
	# when decided (validated's rescan, purgatoryd's duplicate), so wait.
	wait_for "purgatory_tool check -c '$(conf $n)' >'$T_TMP/$n/pcheck' 2>&1 &&
		grep -q 'inbox=0 purgatory=0 expired=0 rejects=0 .*consistent=1 topo=1' '$T_TMP/$n/pcheck'" 600
	check "node $n: store consistent, topological stream, no rejects, inbox and purgatory empty ($(cat "$T_TMP/$n/pcheck"))" \
		grep -q "inbox=0 purgatory=0 expired=0 rejects=0 .*consistent=1 topo=1" "$T_TMP/$n/pcheck"
	check "node $n: mdb_stat reads the environment" mdb_stat -e "$T_TMP/$n/state" >/dev/null
	check "node $n: mdb_stat reads every table" mdb_stat -a "$T_TMP/$n/state" >/dev/null
done
restarts=$(cat "$T_TMP"/*/fedsup.log | grep -c 'restarting ')
for n in $NODES; do
	check "node $n: no stage left in a failed state" sh -c "! grep -q 'NOT restarting' $T_TMP/$n/fedsup.log"
done
diag "figures: originated=$originated kills=$kills restarts=$restarts converge_s=$took chaos_s=$DURATION total_s=$(( $(date +%s) - start ))"
echo "# chaos: $originated events, $kills kills, $restarts restarts, converged in ${took}s after the chaos phase"
echo "# soak figures: kills=$kills events=$originated lost=$lost duplicated=$dups (summed over $(echo $NODES | wc -w) nodes, store and feed) chaos_s=$DURATION total_s=$(( $(date +%s) - start ))"
for n in $NODES; do kill -TERM "$(eval echo \$SUP_$n)"; done
for n in $NODES; do wait "$(eval echo \$SUP_$n)"; done
finish
