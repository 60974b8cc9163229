#!/bin/sh
# fleet_leases.sh: peer assignment by lease in a fleet (issue 18, first
# slice). A three-server NATS JetStream cluster, three fedpipe nodes sharing
# one server name and signing key (fleetd + syncd + validated + purgatoryd,
# each its own LMDB) and four served peers, each node reaching each peer
# through its own port of a logging proxy (tests/tools/fleet_proxy.py), so
# every request is attributed to a node with its start and end.
#   - every peer gets one holder, its events are pulled, cursors reach KV;
#   - a settled fleet: each peer is pulled by exactly one node, its holder;
#     the shares balance (at most ceil(4/3) = 2 each);
#   - kill -9 a whole node: its peers are pulled by the others (bounded
#     poll), resuming from the fleet's cursor, not from 0;
#   - one NATS server killed: the leases are renewed on, holders unchanged;
#   - the race, all along (startup: three nodes racing for every lease;
#     rebalancing; takeover): no two nodes' requests to one peer are ever in
#     flight at the same moment, and the KV history sampled every 300 ms
#     never shows a lease passing between two holders in less than its TTL;
#   - a clean stop hands the leases over at once to the last member;
#   - outside a fleet fleetd idles; --stdio is refused.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
. tests/tools/nats_cluster.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
NODES="f1 f2 f3" PEERS="p1 p2 p3 p4"

# Outside a fleet: fleetd comes up, idles, stops cleanly; --stdio refused.
Z=$(node_config z "$(free_port)")
fleetd -c "$Z" --stdio </dev/null >/dev/null 2>"$T_TMP/z-stdio.log"
check_eq "fleetd --stdio is refused (exit 100)" 100 $?
check "... saying why" grep -q "stdio is not supported" "$T_TMP/z-stdio.log"
node_start z fleetd
check "no [fleet] nats_url: fleetd is up and idles" grep -q "not in a fleet; idling" "$T_TMP/z/fleetd.log"
stop "$PID_z_fleetd"
check "... and stops cleanly on SIGTERM" grep -q "stopped" "$T_TMP/z/fleetd.log"

check "three NATS servers with a JetStream meta leader" nats_cluster_start 3

# The peers: served nodes with a room of 20 events each (21 with the create).
for p in $PEERS; do
	eval "PORT_$p=$(free_port)"
	eval "C=\$(node_config $p \$PORT_$p)"
	served_fill -c "$C" -N 20 >/dev/null
	node_start "$p" served
done
check "peers up" wait_for "(for p in $PEERS; do eval \"http_up http://127.0.0.1:\\\$PORT_\$p/healthz\" || exit 1; done)" 200

# The proxy: one port per (node, peer).
MAP=""
for n in $NODES; do for p in $PEERS; do
	pp=$(free_port); eval "PX_${n}_$p=$pp up=\$PORT_$p"
	MAP="$MAP $pp:$up:$n:$p"
done; done
LOG=$T_TMP/requests.log
: >"$LOG"
bg python3 tests/tools/fleet_proxy.py "$LOG" $MAP >/dev/null 2>"$T_TMP/proxy.log"
check "proxy up" wait_for "http_up http://127.0.0.1:$(eval echo \$PX_f1_p1)/healthz" 100

# The fleet: one server name, one signing key, each node its own LMDB.
FPORT=$(free_port)
for n in $NODES; do
	mkdir -p "$T_TMP/$n"
	[ "$n" = f1 ] || cp "$T_TMP/f1/signing.key" "$T_TMP/$n/signing.key"
	peers=""
	for p in $PEERS; do peers="$peers
[peer $p]
endpoint = http://127.0.0.1:$(eval echo \$PX_${n}_$p)"; done
	C=$(node_config "$n" "$(free_port)" "$FED_COMMON
[syncd]
interval = 500ms
backoff_max = 1s
longpoll = 1s
[fleet]
nats_url = $NATS_URLS
name = t18
member = $n
lease_ttl = 3s
replicas = 3
$peers")
	sed -i "s/^server_name = .*/server_name = fleet.test:$FPORT/" "$C"
	eval "CONF_$n=$C"
done
check "the nodes share one signing key" cmp -s "$T_TMP/f1/signing.key" "$T_TMP/f3/signing.key"
for n in $NODES; do node_start "$n" validated purgatoryd feedpump; done
# fleetd and syncd of the three nodes at once: they race for every lease.
for n in $NODES; do node_start "$n" fleetd syncd; done
fleet() { fedctl -c "$CONF_f2" fleet --json 2>/dev/null; }
# The KV sampler: every 300 ms, the whole lease state with its history.
SAMPLES=$T_TMP/samples.jsonl
bg sh -c "while :; do fedctl -c '$CONF_f2' fleet --json >>'$SAMPLES' 2>/dev/null; sleep 0.3; done"
SAMPLER=$LAST_PID

check "every peer has a holder and its 21 events' cursor is in KV" \
	wait_for "[ \"\$(fleet | jq '[.peers[] | select(.holder != \"\" and .fleet_cursor == 21)] | length')\" = 4 ]" 600
check "balanced: three members, none holds more than ceil(4/3) = 2" \
	wait_for "fleet | jq -e '(.members | length) == 3 and ([.peers[].holder] | group_by(.) | map(length) | max) <= 2 and ([.peers[] | select(.holder != \"\")] | length) == 4'" 600

check "fedctl fleet: each member's own cursor of every peer; each holder's is the fleet's" \
	wait_for "fleet | jq -e '(.members | all(.cursors | length == 4)) and ([.peers[] as \$p | .members[] | select(.member == \$p.holder) | .cursors[\$p.peer] == \$p.fleet_cursor] | all)'" 100
# Settled: who pulls each peer from now on.
since_pulls() {   # since_pulls NS PEER: nodes that requested PEER's events since NS
	awk -v s="$1" -v p="$2" '$1 > s && $4 == p && $6 ~ /events/ {print $3}' "$LOG" | sort -u | tr '\n' ' '
}
enough() { for p in $PEERS; do [ "$(awk -v s="$1" -v p="$p" '$1 > s && $4 == p' "$LOG" | wc -l)" -ge 3 ] || return 1; done; }
sleep 1   # the shares settled; a release in progress lets its last long-poll end
T0=$(date +%s%N)
check "settled: each peer requested again" wait_for "enough $T0" 300
HOLDERS=$(fleet | jq -r '.peers[] | "\(.peer)=\(.holder)"' | tr '\n' ' ')
for p in $PEERS; do
	h=$(echo "$HOLDERS" | tr ' ' '\n' | sed -n "s/^$p=//p")
	check_eq "peer $p pulled by exactly one node, its holder" "$h " "$(since_pulls "$T0" "$p")"
done
check "syncd counts the peers it leaves to others (stats fleet_not_holder)" \
	sh -c "fedctl -c '$CONF_f1' stats syncd | grep -q '\"fleet_not_holder\":[1-9]'"
check "fleetd's stats frame: leases_held, members" \
	sh -c "fedctl -c '$CONF_f1' stats fleetd | grep -q '\"members\":3'"

# kill -9 a whole node.
VICTIM=$(fleet | jq -r '[.peers[] | select(.holder != "")] | group_by(.holder) | map(select(length > 0)) | .[0][0].holder')
LOST=$(fleet | jq -r --arg v "$VICTIM" '.peers[] | select(.holder == $v) | .peer' | tr '\n' ' ')
diag "killing node $VICTIM (holds: $LOST)"
for s in validated purgatoryd feedpump fleetd syncd; do eval "kill -9 \$PID_${VICTIM}_$s"; done
TK=$(date +%s%N)
for p in $LOST; do
	check "peer $p pulled by another node after $VICTIM died" \
		wait_for "[ -n \"\$(since_pulls $TK $p | tr -d ' ')\" ] && ! since_pulls $TK $p | grep -qw $VICTIM" 300
	first=$(awk -v s="$TK" -v p="$p" '$1 > s && $4 == p && $6 ~ /events/ {print $6; exit}' "$LOG")
	diag "peer $p: first request by a live node $(awk -v s="$TK" -v p="$p" '$1 > s && $4 == p {print int(($1 - s) / 1000000); exit}' "$LOG") ms after the kill (lease_ttl 3 s, interval 500 ms)"
	check "peer $p: the new holder resumed from a cursor, not 0 ($first)" sh -c "echo '$first' | grep -q 'since=[1-9]'"
done
check "the dead member's heartbeat expired: two members" wait_for "fleet | jq -e '(.members | length) == 2'" 300
check "all four leases held by the two live members" \
	wait_for "fleet | jq -e --arg v $VICTIM '[.peers[] | select(.holder != \"\" and .holder != \$v)] | length == 4'" 300

# One NATS server killed mid-run: renewals go on, holders stay.
sleep 1
BEFORE=$(fleet | jq -c '[.peers[] | {peer, holder, revision}]')
nats_server_stop 1
renewed() {
	fleet | jq -e --argjson b "$BEFORE" '[.peers[] as $p | $b[] | select(.peer == $p.peer and $p.revision >= .revision + 3 and $p.holder == .holder)] | length == 4'
}
check "NATS server 1 killed: every lease renewed 3 more times by the same holder" wait_for renewed 600
TN=$(date +%s%N)
check "... and every peer still pulled" wait_for "enough $TN" 300
nats_server_start 1

# A clean stop (SIGTERM, syncd first as fedsup does): the leases and the
# heartbeat are released at once, and the last member takes every peer.
LAST=$(for n in $NODES; do [ "$n" = "$VICTIM" ] || echo "$n"; done | head -1)
KEEP=$(for n in $NODES; do [ "$n" = "$VICTIM" ] || [ "$n" = "$LAST" ] || echo "$n"; done)
eval "stop \$PID_${LAST}_syncd; stop \$PID_${LAST}_fleetd"
check "SIGTERM: $LAST released its leases and its heartbeat" \
	sh -c "grep -q 'released (stopping)' '$T_TMP/$LAST/fleetd.log' || ! grep -q 'lease taken' '$T_TMP/$LAST/fleetd.log'"
check "... $KEEP is the only member and holds all four" \
	wait_for "fleet | jq -e --arg k $KEEP '(.members | length) == 1 and ([.peers[] | select(.holder == \$k)] | length) == 4'" 300
TS=$(date +%s%N)
check "... and pulls every peer" wait_for "enough $TS" 300
for p in $PEERS; do check_eq "peer $p pulled only by $KEEP after the stop" "$KEEP " "$(since_pulls "$TS" "$p")"; done

kill "$SAMPLER" 2>/dev/null
# The race, over the whole run: requests in flight at once, and hand-overs
# in the KV history faster than the TTL.
RACE=$(python3 - "$LOG" "$SAMPLES" 3000 <<'PY'
import json, sys
log, samples, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3])
reqs = {}
for line in open(log):
    s, e, node, peer, status, path = line.split(" ", 5)
    reqs.setdefault(peer, []).append((int(s), int(e), node))
overlaps = 0
for peer, rs in reqs.items():
    rs.sort()
    end_by = {}
    for s, e, n in rs:
        if any(o != n and oe > s for o, oe in end_by.items()):
            overlaps += 1
            if overlaps <= 5: print(f"# overlap on {peer}: {n} at {s} while {[o for o, oe in end_by.items() if o != n and oe > s]}", file=sys.stderr)
        end_by[n] = max(end_by.get(n, 0), e)
hist, nsamples = {}, 0
for line in open(samples):
    try: d = json.loads(line)
    except ValueError: continue
    nsamples += 1
    for p in d["peers"]:
        for h in p["history"]:
            hist.setdefault(p["peer"], {})[h["revision"]] = (h["created_ms"], h["holder"])
fast = 0
for peer, revs in hist.items():
    seq = [revs[r] for r in sorted(revs)]
    for (t1, h1), (t2, h2) in zip(seq, seq[1:]):
        if h1 and h2 and h1 != h2 and t2 - t1 < ttl - 100:
            fast += 1
            print(f"# {peer}: {h1} -> {h2} after {t2 - t1} ms", file=sys.stderr)
print(f"requests={sum(len(v) for v in reqs.values())} overlaps={overlaps} samples={nsamples} fast_handovers={fast}")
PY
)
diag "$RACE"
check "never two nodes' requests to one peer in flight at once" sh -c "echo '$RACE' | grep -q ' overlaps=0 '"
check "KV history sampled: no lease passed between holders faster than its TTL" \
	sh -c "echo '$RACE' | grep -q 'fast_handovers=0' && ! echo '$RACE' | grep -q 'samples=0 '"
finish
