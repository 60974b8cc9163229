#!/bin/sh
# bench/scale/run.sh (`make bench-scale`, not part of `make bench`): the
# scale curve of one node at 10^5, 10^6 and 10^7 stored events (SCALE_MAX
# stops earlier; SCALE_SIZES="n1 n2 ..." other sizes, ascending). One store,
# filled in steps by build/bench/scale_fill: real signed PDUs (room version
# 10, ~SCALE_BODY-byte bodies, SCALE_ROOMS room chains) written through
# purgatoryd's store path (purg_pdu_parse + purg_store_event + commit,
# SCALE_BATCH events a transaction; signing is timed apart and not counted).
# served runs on the same store the whole time. 10^7 needs ~17 GB of disk
# and, on a 2-core machine, about an hour (3x10^6 took 12 minutes).
# At each size:
#   store/s      the store path's rate over the last 100,000 events written
#   store us     the writer's CPU time (utime+stime) in the store path per
#                event over the same events (a loaded machine distorts the
#                rates more than this)
#   lookups/s    served GET /_matrix/federation/v1/event/{id}, IDs drawn at
#                random from the whole store (SCALE_SAMPLE of them), wrk
#                -t2 -c32 for SCALE_SECONDS, writer idle meanwhile
#   lookup us    served's CPU time per request answered, same run
#   served RSS   VmRSS after the lookups (anon = its heap; the rest is
#                LMDB's map, file pages shared with the page cache)
#   writer RSS   the writing process's VmRSS at that size (same split)
#   B/event      data.mdb size / events (every table the store path writes,
#                outbox rows included: no feedpump runs)
#   sign us/ev   the generator's wall time per signed event: pure CPU work
#                that does not grow with the store, so it shows how loaded
#                the machine was during each step (other work shares it)
# Each "vs" column is the figure over the 10^5 row's, same run.
# The free disk is checked before each size; a size that would not fit is
# skipped with a line saying so.
ROOT=${FP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${FP_BIN:-$ROOT/bin}; BB=${FP_BUILD:-$ROOT/build}/bench
MAX=${SCALE_MAX:-10000000}
command -v wrk >/dev/null || { echo "bench-scale: wrk not installed; skipped"; exit 0; }
[ -x "$BB/scale_fill" ] || { echo "bench-scale: $BB/scale_fill not built (make all)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench-scale.XXXXXX")
SPID=""
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; [ -n "${FP_KEEP:-}" ] || rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/state" "$T/run"
cat >"$T/c.conf" <<CONF
[node]
server_name = scale.test:$PORT
state_dir = $T/state
run_dir = $T/run
signing_key = $T/signing.key
listen = 127.0.0.1:$PORT
map_size = 64G
map_size_max = 64G
[served]
matrix_auth = open
CONF
"$BIN/fedctl" -c "$T/c.conf" keygen >/dev/null || exit 1
"$BIN/served" -c "$T/c.conf" 2>"$T/served.log" & SPID=$!
i=0
until curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/healthz"; do
	i=$((i + 1)); [ $i -gt 300 ] && { echo "bench-scale: served did not start"; cat "$T/served.log"; exit 1; }
	sleep 0.1
done
AT=""
for n in ${SCALE_SIZES:-100000 1000000 10000000}; do [ "$n" -le "$MAX" ] && AT="${AT:+$AT,}$n"; done
[ -n "$AT" ] || { echo "bench-scale: SCALE_MAX=$MAX is below 10^5; nothing to do"; exit 1; }
echo "bench-scale: sizes $AT; store in $T ($(df -h "$T" | awk 'NR == 2 { print $4 }') free)"
export SCALE_DIR="$T" SCALE_URL="http://127.0.0.1:$PORT" SCALE_SERVED_PID="$SPID"
"$BB/scale_fill" -c "$T/c.conf" --at "$AT" --ids "$T/ids" \
	--rooms "${SCALE_ROOMS:-1000}" --batch "${SCALE_BATCH:-500}" --body "${SCALE_BODY:-300}" \
	--hook "sh '$(dirname "$0")/measure.sh'" | tee "$T/lines" | grep '^skip'
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""
grep -q '^at ' "$T/lines" || { echo "bench-scale: no size reached"; exit 1; }
awk -v batch="${SCALE_BATCH:-500}" -v secs="${SCALE_SECONDS:-10}" '
	function kv(k,   i) { for (i = 1; i < NF; i++) if ($i == k) return $(i + 1); return "" }
	function vs(v, b) { return (b > 0) ? sprintf("%.2fx", v / b) : "-" }
	function lg(n,   e, m) { e = int(log(n) / log(10) + 1e-9); m = n / (10 ^ e); return (m == 1) ? sprintf("10^%d", e) : sprintf("%gx10^%d", m, e) }
	/^at / { n = kv("at"); k[++m] = n; sr[n] = kv("last_rate"); sc[n] = kv("last_cpu_us"); gu[n] = kv("gen_us")
	         wr[n] = kv("rss_kb") / 1024; wa[n] = kv("anon_kb") / 1024; bpe[n] = kv("db_bytes") / n }
	/^lookup / { n = kv("lookup"); lr[n] = kv("rps"); lc[n] = kv("cpu_us"); bad[n] = kv("non2xx")
	             srs[n] = kv("served_rss_kb") / 1024; sa[n] = kv("anon_kb") / 1024 }
	END {
		b = k[1]
		printf "scale curve, one node; every \"vs\" is over the %s row of this run\n", lg(b)
		printf "store: purg_pdu_parse + purg_store_event + commit, %d events/txn, over the last 100,000 events before each size\n", batch
		printf "lookups: served GET /_matrix/federation/v1/event/{id}, random IDs from the whole store, wrk -t2 -c32 %ss, writer idle\n", secs
		printf "CPU columns: the process'"'"'s utime+stime per event / per request (less distorted by a loaded machine than the rates);\n"
		printf "sign us/ev: the generator'"'"'s wall time per signed event, pure CPU: a yardstick of the machine'"'"'s load in that step\n"
		printf "%-6s %9s %6s %9s %6s %10s %6s %9s %6s %6s %10s\n", "events", "store/s", "vs", "store us", "vs", "lookups/s", "vs", "lookup us", "vs", "non2xx", "sign us/ev"
		for (i = 1; i <= m; i++) {
			n = k[i]
			printf "%-6s %9.0f %6s %9.1f %6s %10.0f %6s %9.1f %6s %6d %10.1f\n", lg(n), sr[n], vs(sr[n], sr[b]), sc[n], vs(sc[n], sc[b]), lr[n], vs(lr[n], lr[b]), lc[n], vs(lc[n], lc[b]), bad[n], gu[n]
		}
		printf "RSS (MB; anon = heap, the rest LMDB map pages shared with the page cache) and disk (data.mdb size / events, outbox rows included)\n"
		printf "%-6s %13s %7s %6s %13s %7s %6s %8s %6s\n", "events", "served RSS", "(anon)", "vs", "writer RSS", "(anon)", "vs", "B/event", "vs"
		for (i = 1; i <= m; i++) {
			n = k[i]
			printf "%-6s %13.0f %7.1f %6s %13.0f %7.1f %6s %8.0f %6s\n", lg(n), srs[n], sa[n], vs(srs[n], srs[b]), wr[n], wa[n], vs(wr[n], wr[b]), bpe[n], vs(bpe[n], bpe[b])
		}
	}' "$T/lines"
grep '^skip' "$T/lines" >/dev/null && grep '^skip' "$T/lines" | sed 's/^/bench-scale: /'
exit 0
