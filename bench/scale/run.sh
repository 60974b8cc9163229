#!/bin/sh
# bench/scale/run.sh (`make bench-scale`, not part of `make bench`): the
# scale curve of one node at 10^5, 10^6 and 10^7 stored events (SCALE_MAX
# stops earlier). One store, filled in steps by build/bench/scale_fill: real
# signed PDUs (room version 10, ~SCALE_BODY-byte bodies, SCALE_ROOMS room
# chains) written through purgatoryd's store path (purg_pdu_parse +
# purg_store_event + commit, SCALE_BATCH events a transaction; signing is
# timed apart and not counted). served runs on the same store the whole time.
# At each size:
#   store ev/s   the store path's rate over the last 100,000 events written
#   lookups/s    served GET /_matrix/federation/v1/event/{id}, IDs drawn at
#                random from the whole store (SCALE_SAMPLE of them), wrk
#                -t2 -c32 for SCALE_SECONDS, writer idle meanwhile
#   served RSS   VmRSS after the lookups (anon = its heap; the rest is
#                LMDB's map, file pages shared with the page cache)
#   writer RSS   the writing process's VmRSS at that size (same split)
#   B/event      data.mdb size / events (every table the store path writes,
#                outbox rows included: no feedpump runs)
# Each "vs 10^5" column is the figure over the 10^5 row's, same run.
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
for n in 100000 1000000 10000000; do [ "$n" -le "$MAX" ] && AT="${AT:+$AT,}$n"; done
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
	function lg(n) { return sprintf("10^%d", int(log(n) / log(10) + 0.5)) }
	/^at / { n = kv("at"); k[++m] = n; sr[n] = kv("last_rate"); wr[n] = kv("rss_kb") / 1024; wa[n] = kv("anon_kb") / 1024
	         bpe[n] = kv("db_bytes") / n; gen[n] = kv("gen_s") }
	/^lookup / { n = kv("lookup"); lr[n] = kv("rps"); bad[n] = kv("non2xx"); srs[n] = kv("served_rss_kb") / 1024; sa[n] = kv("anon_kb") / 1024 }
	END {
		printf "scale curve, one node: store path (purg_store_event, %d events/txn), served /event/{id} on random IDs (wrk -t2 -c32, %ss), RSS, disk\n", batch, secs
		printf "%-6s %9s %6s %10s %6s %5s %17s %6s %17s %6s %8s %6s\n", "events", "store/s", "vs", "lookups/s", "vs", "non2xx", "served RSS MB(anon)", "vs", "writer RSS MB(anon)", "vs", "B/event", "vs"
		b = k[1]
		for (i = 1; i <= m; i++) {
			n = k[i]
			printf "%-6s %9.0f %6s %10.0f %6s %5d %11.0f (%4.0f) %6s %11.0f (%4.0f) %6s %8.0f %6s\n", lg(n), sr[n], vs(sr[n], sr[b]), lr[n], vs(lr[n], lr[b]), bad[n], srs[n], sa[n], vs(srs[n], srs[b]), wr[n], wa[n], vs(wr[n], wr[b]), bpe[n], vs(bpe[n], bpe[b])
		}
		printf "(\"vs\" = over the %s row of this run; store/s over the last 100,000 events written before that size)\n", lg(b)
	}' "$T/lines"
grep '^skip' "$T/lines" >/dev/null && grep '^skip' "$T/lines" | sed 's/^/bench-scale: /'
exit 0
