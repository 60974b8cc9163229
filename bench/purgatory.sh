#!/bin/sh
# purgatoryd benchmark: store throughput (verdict frames in, committed with
# per-turn batching) beside the raw LMDB put rate of the same bytes in the
# same run (same average batch size); release cost with ~100,000 events held
# in 1,000 rooms when one missing event arrives (1 waiter vs 1,000 waiters);
# memory (RSS) per held event. Timings are medians/whole runs, never asserted.
ROOT=${FP_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${FP_BIN:-$ROOT/bin}; BB=${FP_BUILD:-$ROOT/build}/bench
N=${PURG_BENCH_N:-50000}
T=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench-purg.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT
mkdir -p "$T/state" "$T/run"
cat > "$T/c.conf" <<CONF
[node]
server_name = bench.test
state_dir = $T/state
run_dir = $T/run
[purgatoryd]
fetch_retry = 60s
CONF
"$BIN/purgatoryd" -c "$T/c.conf" 2>"$T/purg.log" & PID=$!; PIDS=$PID
i=0; while [ ! -S "$T/run/purgatoryd.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done

set -- $("$BB/purgatory_bench" store "$T/c.conf" "$N" 100)
S_SECS=$3
BATCHES=$("$BIN/fedctl" -c "$T/c.conf" stats purgatoryd | python3 -c 'import json,sys; l=sys.stdin.read().split(" ",1)[1]; print(json.loads(l)["counters"].get("batches",1))')
AVG=$(( N / (BATCHES > 0 ? BATCHES : 1) )); [ $AVG -lt 1 ] && AVG=1
set -- $("$BB/purgatory_bench" raw "$T/raw" "$N" 100 "$AVG")
R_SECS=$3
set -- $("$BB/purgatory_bench" raw "$T/raw1000" "$N" 100 1000)
R1000_SECS=$3
set -- $("$BB/purgatory_bench" release "$T/c.conf" "$PID" | tr '\n' ' ')
HELD=$2 HELD_SECS=$3 RSS=$4 REL1=$6 REL1000=$8
LMDB_KB=$(du -k "$T/state" | cut -f1)

python3 - "$N" "$S_SECS" "$R_SECS" "$AVG" "$HELD" "$HELD_SECS" "$RSS" "$REL1" "$REL1000" "$R1000_SECS" <<'PY'
import sys
n, s, r, avg, held, hs, rss, r1, r1000, rk = sys.argv[1:]
rk = float(rk)
n=int(n); s=float(s); r=float(r); held=int(held); hs=float(hs); rss=int(rss); r1=int(r1); r1000=int(r1000)
srate, rrate = n/s, n/r
print("| measure | purgatoryd | baseline (same run) | ratio |")
print("|---|---|---|---|")
print(f"| store throughput, {n} events, avg batch {avg} | {srate:,.0f} ev/s | raw LMDB put of the same bytes: {rrate:,.0f} ev/s | {srate/rrate:.0%} (goal >= 50%) |")
print(f"| (context) raw LMDB put, batch 1000 | | {n/rk:,.0f} ev/s | {srate/(n/rk):.0%} |")
print(f"| hold throughput, {held} events in 1,000 rooms | {held/hs:,.0f} ev/s | | |")
print(f"| release, 1 waiter (median of 3) | {r1} us | | 1.0x |")
print(f"| release, 1,000 waiters (median of 3) | {r1000} us | 1 waiter: {r1} us | {r1000/max(r1,1):.0f}x for 1000x the waiters ({r1000/1000:.0f} us/waiter) |")
print(f"| memory per held event (anonymous RSS delta / {held}; rows stay in LMDB) | {rss*1024/held:.0f} bytes | | |")
PY
