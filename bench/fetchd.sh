#!/bin/sh
# bench/fetchd.sh: fetchd throughput and coalescing.
# 1. Fetches/s of distinct events through fetchd (socket -> coalescing ->
#    curl multi -> local test peer -> cheap check incl. reference hash ->
#    reply) beside a plain libcurl multi loop fetching the same URLs with the
#    same number in flight, in the same run. The baseline row is that loop
#    signing each request with X-Matrix as fetchd does (fetchd signs every
#    federation request; nothing turns that off, so the fair raw loop does
#    the same required work); the unsigned loop stays in the table, with
#    fetchd's ratio to it beside. Goals (issue 19): 1 caller connection
#    >= 0.9 of the baseline, 8 caller connections >= 0.8.
# 2. N = 1, 100, 10,000 concurrent callers of one event (peer answers after
#    200 ms): upstream requests (goal 1) and median caller latency.
# 3. X-Matrix signing (fetchd signs every federation request): the same
#    curl loop with a per-request signed Authorization header (as fetchd
#    builds it) beside the unsigned one, CPU us/fetch added; and the
#    signature alone (xmatrix_sign vs crypto_sign_detached of the same
#    bytes), us/request added beyond the raw ed25519 signature.
# 4. fetchd itself, signed against unsigned: the same fetchd objects linked
#    a second time (here, with cc) with xmatrix_sign replaced (ld --wrap) by
#    one writing the same header with a constant sig of the same length:
#    the same code, requests and bytes on the wire, no canonical JSON, no
#    ed25519. fetchd's CPU per fetch (from /proc), paired rounds, medians:
#    us/fetch signing adds inside fetchd, beside the raw
#    crypto_sign_detached of the same bytes (from 3). fetchd signs every
#    /_matrix/federation request; no setting turns that off, so this is
#    how an unsigned fetchd is had without adding one.
# Rates are medians of paired rounds. Timings are printed, never asserted.
ROOT=${FP_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${FP_BIN:-$ROOT/bin}; B=${FP_BUILD:-$ROOT/build}
PATH="$BIN:$B/tools:$B/bench:$PATH"
N=${FETCHD_BENCH_N:-20000}
W=${FETCHD_BENCH_CONC:-32}
T=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench-fetchd.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; sleep 0.2; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$T/state" "$T/run"
printf '[node]\nsigning_key = %s/k\n' "$T" >"$T/k.conf"
fedctl -c "$T/k.conf" keygen >/dev/null 2>&1
fedpeer --make-events "$N" -k "$T/k" -s origin.test --room '!r:origin.test' -o "$T/ev.jsonl" --ids "$T/ids" || exit 1
P1=$(port); P2=$(port)
fedpeer -p "$P1" -e "$T/ev.jsonl" -s fast.test 2>/dev/null & PIDS="$PIDS $!"
printf '{"rules":[{"path":"/_matrix/federation/v1/event/","mode":"events","delay_ms":200}]}\n' >"$T/slow.rules"
fedpeer -p "$P2" -e "$T/ev.jsonl" -s slow.test -r "$T/slow.rules" 2>/dev/null & PIDS="$PIDS $!"
cat >"$T/c.conf" <<CONF
[node]
server_name = bench.test
state_dir = $T/state
run_dir = $T/run
signing_key = $T/k
[fetchd]
server_rate = 0
server_concurrency = $W
[server fast.test]
endpoint = http://127.0.0.1:$P1
[server slow.test]
endpoint = http://127.0.0.1:$P2
CONF
fetchd -c "$T/c.conf" 2>"$T/fetchd.log" & FPID=$!; PIDS="$PIDS $FPID"
i=0; while [ ! -S "$T/run/fetchd.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
i=0; while ! curl -sf "http://127.0.0.1:$P1/_peer/stats" >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sed "s|^\\\$|http://127.0.0.1:$P1/_matrix/federation/v1/event/%24|" "$T/ids" >"$T/urls"
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# warm up both paths (connections, page cache)
fetchd_curl "$T/urls" "$W" >/dev/null
fetchd_client -s "$T/run/fetchd.sock" -n 2000 -c 1 -w "$W" -i "$T/ids" \
	-r '{"op":"event","event_id":"%ID%","servers":["fast.test"]}' >/dev/null
# Paired rounds. Each round: the curl loop, signed and unsigned; fetchd
# with one caller connection keeping W requests outstanding (how purgatoryd
# and syncd call it: one connection each); the same with 2W outstanding
# (fetchd still sends at most W upstream, server_concurrency = W, the rest
# waits in its queue: the curl loop's W transfers stay W); and W spread over
# 8 connections. The signed loop runs right before and right after fetchd's
# 1- and 8-connection runs (its rate and CPU are the mean of the two, so a
# linear drift of the machine's load cancels); the unsigned loop and the
# 2W run sit next to each other; even rounds run everything in the
# opposite order. Ratios are taken per round (fetchd / loop of the same
# round), their median printed: a noisy spell hits both sides of a pair
# instead of one row. CPU per fetch is the
# process's own user + system time (fetchd from /proc, the curl loop from
# getrusage).
R=${FETCHD_BENCH_ROUNDS:-7}
HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$FPID/stat"; }
fc() {  # fc CONNS WINDOW -> "rate ok cpu_ms"
	c0=$(cpu)
	o=$(fetchd_client -s "$T/run/fetchd.sock" -n "$N" -c "$1" -w "$2" -i "$T/ids" \
		-r '{"op":"event","event_id":"%ID%","servers":["fast.test"]}')
	echo "$(val "$o" rate) $(val "$o" ok) $(( ($(cpu) - c0) * 1000 / HZ ))"
}
: >"$T/rounds"
signed() { fetchd_curl "$T/urls" "$W" "$T/k" bench.test fast.test; }
# mean S1 S2: the two signed runs bracketing a round's fetchd runs, as one
# "rate cpu_ms" (linear drift of the machine's load cancels)
mean() { echo "$(( ($(val "$1" rate) + $(val "$2" rate)) / 2 )) $(( ($(val "$1" cpu_ms) + $(val "$2" cpu_ms)) / 2 ))"; }
for r in $(seq 1 "$R"); do
	if [ $((r % 2)) = 1 ]; then
		s1=$(signed); f1=$(fc 1 "$W"); f8=$(fc 8 "$W"); s2=$(signed)
		base=$(fetchd_curl "$T/urls" "$W"); f2=$(fc 1 $((2 * W)))
	else
		f2=$(fc 1 $((2 * W))); base=$(fetchd_curl "$T/urls" "$W")
		s1=$(signed); f8=$(fc 8 "$W"); f1=$(fc 1 "$W"); s2=$(signed)
	fi
	echo "$(val "$base" rate) $(val "$base" cpu_ms) $f1 $f2 $f8 $(mean "$s1" "$s2")" >>"$T/rounds"
done
python3 - "$T/rounds" "$W" "$N" <<'PY'
import statistics as st, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
w, n = int(sys.argv[2]), int(sys.argv[3])
# columns: 0 unsigned rate, 1 its cpu_ms; 2..4, 5..7, 8..10 fetchd rate ok cpu_ms
# (1 conn W, 1 conn 2W, 8 conns W); 11 signed rate, 12 its cpu_ms
med = lambda i: st.median(r[i] for r in rows)
ratio = lambda i, b: st.median(r[i] / r[b] for r in rows if r[b])
us = lambda i: med(i) * 1000.0 / n
print(f"distinct events, {n} fetches a run, local peer, {len(rows)} paired rounds (medians;"
      f" ratio = median of the rounds' fetchd/loop):")
print(f"  {'':50} {'fetches/s':>9} {'ratio':>6} {'vs unsigned':>11} {'CPU us/fetch':>13}")
print(f"  {'BASELINE: libcurl multi loop, ' + str(w) + ' in flight,':50}")
print(f"  {'  each request X-Matrix signed as fetchd signs':50} {med(11):9.0f} {1:6.2f}"
      f" {ratio(11, 0):11.2f} {us(12):13.1f}")
print(f"  {'the same loop unsigned (less work than fetchd)':50} {med(0):9.0f} {ratio(0, 11):6.2f}"
      f" {1:11.2f} {us(1):13.1f}")
rowsdef = [(2, f"fetchd, 1 caller conn, window {w}", 0.9),
           (5, f"fetchd, 1 caller conn, window {2 * w} ({w} upstream)", None),
           (8, f"fetchd, 8 caller conns, window {w}", 0.8)]
for i, label, goal in rowsdef:
    g = f"  goal >= {goal}" if goal else ""
    print(f"  {label:50} {med(i):9.0f} {ratio(i, 11):6.2f} {ratio(i, 0):11.2f} {us(i + 2):13.1f}"
          f"  (ok {min(r[i + 1] for r in rows)}/{n}){g}")
print(f"  signing adds {st.median((r[12] - r[1]) * 1000.0 / n for r in rows):.1f} us/fetch to the loop")
for i, label, _ in rowsdef:
    if i == 5:
        continue
    print(f"  per round, {label}: fetchd/signed " + " ".join(f"{r[i] / r[11]:.2f}" for r in rows) +
          "; fetchd/unsigned " + " ".join(f"{r[i] / r[0]:.2f}" for r in rows))
print("  per round, fetches/s (signed unsigned fetchd-1 fetchd-8): " +
      ", ".join(f"{r[11]} {r[0]} {r[2]} {r[8]}" for r in rows))
PY
sc=$(fetchd_curl --sign-cost "$T/k" "$T/urls" 9)
echo "X-Matrix signature alone, per request ($N targets x 9 paired rounds, medians):"
echo "  xmatrix_sign $(val "$sc" sign_us) us, crypto_sign_detached of the same bytes $(val "$sc" raw_us) us:" \
	"added beyond the raw signature $(val "$sc" added_us) us/request"

# 4. fetchd as shipped against fetchd with xmatrix_sign stubbed (see top).
cat >"$T/nosign.c" <<'C'
/* xmatrix_sign without the signature: the header fetchd sends, the same
 * shape and length (an 86-character sig), nothing computed. */
#include "core/buf.h"
#include "matrix/keys.h"
int __wrap_xmatrix_sign(const struct signing_key *k, const char *origin, const char *destination,
                        const char *method, const char *uri, const char *content, size_t clen,
                        struct buf *out);
int __wrap_xmatrix_sign(const struct signing_key *k, const char *origin, const char *destination,
                        const char *method, const char *uri, const char *content, size_t clen,
                        struct buf *out)
{
	(void)method; (void)uri; (void)content; (void)clen;
	buf_printf(out, "X-Matrix origin=\"%s\",destination=\"%s\",key=\"%s\",sig=\"%.86s\"", origin,
	           destination, k->key_id,
	           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	return 0;
}
C
# mk NAME VAR: the Makefile's $(VAR) (flags and libraries as the build uses them).
# shellcheck disable=SC2016
mk() { printf 'fp-print-%s: ; @echo $(%s)\n' "$1" "$2" | (cd "$ROOT" && make -s --no-print-directory -f Makefile -f - "fp-print-$1"); }
NS=""
# shellcheck disable=SC2046
if cc $(mk cflags CFLAGS) -I"$ROOT/common" -c -o "$T/nosign.o" "$T/nosign.c" 2>"$T/nosign.err" &&
   cc -o "$T/fetchd_nosign" "$B"/obj/cmd/fetchd/*.o "$T/nosign.o" "$B/libfpfeed.a" "$B/libfpstore.a" \
	"$B/libfpcore.a" "$B/libfpmatrix.a" -Wl,--wrap=xmatrix_sign $(mk ldlibs LDLIBS) 2>>"$T/nosign.err"; then
	mkdir -p "$T/run2"
	sed "s|^run_dir = .*|run_dir = $T/run2|" "$T/c.conf" >"$T/c2.conf"
	"$T/fetchd_nosign" -c "$T/c2.conf" 2>"$T/fetchd2.log" & F2=$!; PIDS="$PIDS $F2"
	i=0; while [ ! -S "$T/run2/fetchd.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	NS="$T/run2/fetchd.sock"
else
	echo "fetchd signed vs unsigned: cannot link fetchd with a stubbed xmatrix_sign ($(head -c 300 "$T/nosign.err"))"
fi
if [ -n "$NS" ]; then
	fcpu() {  # fcpu PID SOCK -> "cpu_ms ok"
		c0=$(awk '{print $14 + $15}' "/proc/$1/stat")
		o=$(fetchd_client -s "$2" -n "$N" -c 1 -w "$W" -i "$T/ids" \
			-r '{"op":"event","event_id":"%ID%","servers":["fast.test"]}')
		echo "$(( ($(awk '{print $14 + $15}' "/proc/$1/stat") - c0) * 1000 / HZ )) $(val "$o" ok)"
	}
	fcpu "$F2" "$NS" >/dev/null     # warm-up
	: >"$T/srounds"
	for r in $(seq 1 "$R"); do
		if [ $((r % 2)) = 1 ]; then a=$(fcpu "$FPID" "$T/run/fetchd.sock"); b=$(fcpu "$F2" "$NS")
		else b=$(fcpu "$F2" "$NS"); a=$(fcpu "$FPID" "$T/run/fetchd.sock"); fi
		echo "$a $b" >>"$T/srounds"
	done
	python3 - "$T/srounds" "$N" "$(val "$sc" raw_us)" "$(val "$sc" sign_us)" <<'PY'
import statistics as st, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
n, raw, sign = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
us = lambda i: st.median(r[i] for r in rows) * 1000.0 / n
added = st.median((r[0] - r[2]) * 1000.0 / n for r in rows)
print(f"fetchd signed vs unsigned, {n} distinct event fetches a run, {len(rows)} paired rounds (medians, CPU of fetchd):")
print(f"  {'':52} {'CPU us/fetch':>13}")
print(f"  {'fetchd, every request X-Matrix signed (as shipped)':52} {us(0):13.1f}  (ok {min(r[1] for r in rows)}/{n})")
print(f"  {'the same fetchd, xmatrix_sign stubbed (same header)':52} {us(2):13.1f}  (ok {min(r[3] for r in rows)}/{n})")
print(f"  {'added by signing inside fetchd':52} {added:13.1f}")
print(f"  {'raw crypto_sign_detached of the same bytes (3)':52} {raw:13.1f}")
print(f"  {'xmatrix_sign alone (3)':52} {sign:13.1f}")
print(f"  ratio added / raw sign: {added / raw:.2f} (goal: about 1: one signature per request, nothing more);"
      f" per-round added: " + " ".join(f"{(r[0] - r[2]) * 1000.0 / n:.1f}" for r in rows))
print("  fetchd's CPU is counted in clock ticks from /proc; (3) is wall time of a loop: on a loaded")
print("  machine (load average above the core count) (3) grows and the ratio falls below 1.")
PY
fi
echo
echo "one event, N concurrent callers (peer answers after 200 ms):"
printf '  %8s %18s %18s %14s\n' N "upstream requests" "median latency ms" "all identical"
k=1
for n in 1 100 10000; do
	id=$(sed -n "${k}p" "$T/ids"); k=$((k + 1))
	before=$(curl -sf "http://127.0.0.1:$P2/_peer/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/')
	c=$n; [ $c -gt 1000 ] && c=1000
	out=$(fetchd_client -s "$T/run/fetchd.sock" -n $n -c $c \
		-r "{\"op\":\"event\",\"event_id\":\"$id\",\"servers\":[\"slow.test\"]}")
	after=$(curl -sf "http://127.0.0.1:$P2/_peer/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/')
	same=no; [ "$(val "$out" ok)" = "$n" ] && [ "$(val "$out" distinct)" = 1 ] && same=yes
	printf '  %8s %18s %18s %14s\n' "$n" "$((after - before))" "$(val "$out" median_ms)" "$same"
done
