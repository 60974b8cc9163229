#!/bin/sh
# bench/resolve.sh: fetchd reaching servers by name (core/resolve.h).
# 1. A cached resolution costs no lookup: N fetches of distinct events from
#    wk.test (well-known -> deleg.test, SRV -> 127.0.0.2:8449, over TLS),
#    then N more: DNS queries (dnsmasq --log-queries) and well-known GETs
#    (tests/tools/fed_https.py's log) per batch. Goal: the first batch
#    makes one resolution's queries, the second none; after a restart of
#    fetchd, none either (LMDB server_resolution).
# 2. 1,000 distinct names resolving at once do not stall other fetches:
#    fetchd's rate for a known [server] (a fedpeer over HTTP, W in flight)
#    alone, then while 1,000 fetches wait for 1,000 distinct names whose
#    DNS server never answers (c-ares: 3 tries of 2 s per query, so every
#    name is still resolving during the measurement: the "resolving" gauge
#    is printed before and after), in paired rounds (fresh names each
#    round); medians and the ratio. Goal: ratio >= 0.9. And fetchd's CPU
#    over 3 s with the names resolving and nothing else to do.
# Runs in a user+network namespace of its own (unshare -rn) so the
# well-known can be on port 443 as the spec says. Timings are printed,
# never asserted.
if [ -z "${FP_IN_NETNS:-}" ]; then
	if ! unshare -rn true 2>/dev/null; then
		echo "resolve: user+network namespaces unavailable (unshare -rn): skipped"
		exit 0
	fi
	FP_IN_NETNS=1 exec unshare -rn sh "$0" "$@"
fi
ip link set lo up || exit 1
ROOT=${FP_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${FP_BIN:-$ROOT/bin}; B=${FP_BUILD:-$ROOT/build}
PATH="$BIN:$B/tools:$B/bench:$PATH:/usr/sbin"
PY=/usr/bin/python3
N=${RESOLVE_BENCH_N:-2000}
M=${RESOLVE_BENCH_NAMES:-1000}
W=${RESOLVE_BENCH_CONC:-32}
R=${RESOLVE_BENCH_ROUNDS:-3}
K=${RESOLVE_BENCH_KNOWN:-20000}
T=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench-resolve.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; sleep 0.2; rm -rf "$T"' EXIT
command -v dnsmasq >/dev/null 2>&1 || { echo "resolve: dnsmasq not installed: skipped"; exit 0; }
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() { i=0; while ! sh -c "$1" >/dev/null 2>&1 && [ $i -lt "${2:-100}" ]; do sleep 0.1; i=$((i + 1)); done; }
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
mkdir -p "$T/state" "$T/run" "$T/certs"
(
	cd "$T/certs" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=fp-bench-ca -keyout ca.key -out ca.pem
	for n in default wk.test deleg.test; do
		san=DNS:$n; [ $n = default ] && san=IP:127.0.0.1
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" -keyout "$n.key" -out "$n.csr"
		printf 'subjectAltName=%s\n' "$san" >"$n.ext"
		openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$n.ext" -out "$n.pem"
	done
) >"$T/openssl.log" 2>&1
printf '[node]\nsigning_key = %s/k\n' "$T" >"$T/k.conf"
fedctl -c "$T/k.conf" keygen >/dev/null 2>&1
fedpeer --make-events "$((2 * N))" -k "$T/k" -s origin.test --room '!r:origin.test' -o "$T/ev.jsonl" --ids "$T/ids" || exit 1

DP=$(port)
dnsmasq --no-daemon --port="$DP" --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
	--conf-file=/dev/null --user="$(id -un)" --pid-file= --local=/test/ --local-ttl=3600 --log-queries \
	--host-record=wk.test,127.0.0.1 --srv-host=_matrix-fed._tcp.deleg.test,srvtarget.test,8449 \
	--host-record=srvtarget.test,127.0.0.2 2>"$T/dns.log" & PIDS="$PIDS $!"
printf '{"wk.test /.well-known/matrix/server": {"body": "{\\"m.server\\": \\"deleg.test\\"}"}}\n' >"$T/routes.json"
$PY "$ROOT/tests/tools/fed_https.py" --certs "$T/certs" --routes "$T/routes.json" --log "$T/https.log" \
	--ready "$T/ready" --events "$T/ev.jsonl" --ids "$T/ids" --no-verify \
	--listen 127.0.0.1:443 --listen 127.0.0.2:8449 2>"$T/https.err" & PIDS="$PIDS $!"
# the DNS server of part 2: reads every query, answers none
BH=$(port)
$PY -c 'import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",int(sys.argv[1])))
while True: s.recv(4096)' "$BH" & PIDS="$PIDS $!"
PK=$(port)
fedpeer -p "$PK" -e "$T/ev.jsonl" -s known.test 2>/dev/null & PIDS="$PIDS $!"
waitfor "[ -s $T/ready ] && grep -q 'started, version' $T/dns.log && curl -sf http://127.0.0.1:$PK/_peer/stats"

conf() { # conf RESOLVER
	cat >"$T/c.conf" <<CONF
[node]
server_name = bench.test
state_dir = $T/state
run_dir = $T/run
signing_key = $T/k
resolver = $1
ca_file = $T/certs/ca.pem
[fetchd]
server_rate = 0
server_concurrency = $W
requests_max = $((M + 4 * W))
queue_max = $((4 * M))
servers_max = $((8 * M))
fetch_timeout = 10m
ip_range_allow = 127.0.0.0/8
[server known.test]
endpoint = http://127.0.0.1:$PK
CONF
}
FPID=
fstart() {
	rm -f "$T/run/fetchd.sock"
	fetchd -c "$T/c.conf" 2>>"$T/fetchd.log" & FPID=$!; PIDS="$PIDS $FPID"
	waitfor "[ -S $T/run/fetchd.sock ] && fedctl -c $T/c.conf stats fetchd"
}
fstop() { kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null; }
stat() { fedctl -c "$T/c.conf" --json stats fetchd | jq -r ".fetchd.$1 // 0"; }
dnsq() { grep -c 'query\[' "$T/dns.log"; }
wkq() { grep -c '"path": "/.well-known/matrix/server"' "$T/https.log"; }

# ---- 1. cached resolutions --------------------------------------------------
conf "127.0.0.1:$DP"
fstart
sed -n "1,${N}p" "$T/ids" >"$T/ids1"
sed -n "$((N + 1)),$((2 * N))p" "$T/ids" >"$T/ids2"
echo "cached resolution: $N fetches of distinct events from wk.test per batch (well-known + SRV, TLS, $W in flight)"
printf '  %-34s %8s %12s %16s %12s\n' batch ok "DNS queries" "well-known GETs" "resolutions"
batch() { # batch LABEL IDS
	q0=$(dnsq); w0=$(wkq); r0=$(stat counters.resolutions)
	o=$(fetchd_client -s "$T/run/fetchd.sock" -n "$N" -c 1 -w "$W" -i "$2" \
		-r '{"op":"event","event_id":"%ID%","servers":["wk.test"]}')
	printf '  %-34s %8s %12s %16s %12s\n' "$1" "$(val "$o" ok)" "$(($(dnsq) - q0))" "$(($(wkq) - w0))" \
		"$(($(stat counters.resolutions) - r0))"
}
batch "first (resolves once)" "$T/ids1"
batch "second (cached in memory)" "$T/ids2"
fstop
fstart
batch "after a restart (LMDB)" "$T/ids1"
fstop

# ---- 2. 1,000 names resolving at once ------------------------------------------
conf "127.0.0.1:$BH"
HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$FPID/stat"; }
known() { fetchd_client -s "$T/run/fetchd.sock" -n "$K" -c 1 -w "$W" -i "$T/ids" \
	-r '{"op":"event","event_id":"%ID%","servers":["known.test"]}'; }
: >"$T/rounds"
r=0
while [ $r -lt "$R" ]; do
	# a fresh fetchd each round: the names of the last one would still
	# hold their fetch slots (a fetch nobody waits for ends at its next
	# attempt boundary, here when its name fails, some 20 s on)
	fstart
	known >/dev/null    # warm up
	base=$(known)
	i=0; while [ $i -lt "$M" ]; do echo "\$b$r-$i:n$r-$i.slow.test"; i=$((i + 1)); done >"$T/names"
	fetchd_client -s "$T/run/fetchd.sock" -n "$M" -c 1 -w "$M" -i "$T/names" >/dev/null 2>&1 & NP=$!
	waitfor "[ \"\$(fedctl -c $T/c.conf --json stats fetchd | jq -r .fetchd.gauges.resolving)\" -ge $M ]" 100
	g0=$(stat gauges.resolving)
	c0=$(cpu); sleep 3; idle=$(( ($(cpu) - c0) * 1000 / HZ / 3 ))   # CPU ms/s with nothing but the lookups
	busy=$(known)
	g1=$(stat gauges.resolving)
	kill "$NP" 2>/dev/null; wait "$NP" 2>/dev/null
	echo "$(val "$base" rate) $(val "$busy" rate) $g0 $g1 $(val "$base" ok) $(val "$busy" ok) $(val "$base" median_ms) $(val "$busy" median_ms) $idle" >>"$T/rounds"
	fstop
	r=$((r + 1))
done
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "known [server] rate while $M distinct names resolve ($K fetches, $W in flight, $R paired rounds):"
printf '  %-6s %14s %14s %18s %18s %10s\n' round "alone f/s" "busy f/s" "resolving before" "resolving after" ratio
awk '{printf "  %-6d %14.0f %14.0f %18d %18d %10.2f\n", NR, $1, $2, $3, $4, ($1 > 0 ? $2 / $1 : 0)}' "$T/rounds"
a=$(cut -d' ' -f1 "$T/rounds" | med); b=$(cut -d' ' -f2 "$T/rounds" | med)
echo "  median: alone $a f/s, while $M names resolve $b f/s, ratio $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}') (goal >= 0.9);" \
	"median latency alone $(cut -d' ' -f7 "$T/rounds" | med) ms, busy $(cut -d' ' -f8 "$T/rounds" | med) ms"
echo "  fetchd's CPU with $M names resolving and no other work: $(cut -d' ' -f9 "$T/rounds" | med) ms per second (median of rounds)"
