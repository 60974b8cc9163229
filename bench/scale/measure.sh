#!/bin/sh
# bench/scale/measure.sh: scale_fill's --hook at each checkpoint (the writer
# is idle meanwhile). served's lookup rate on random IDs from the whole store
# (wrk -t2 -c32, SCALE_SECONDS, lookup.lua), then served's RSS.
# Env from run.sh: SCALE_N, SCALE_DIR, SCALE_URL, SCALE_SERVED_PID, SCALE_SECONDS.
# Prints: lookup N rps R non2xx X served_rss_kb A anon_kb B file_kb C
D=$SCALE_DIR
K=${SCALE_SAMPLE:-100000}
shuf -n "$K" "$D/ids" >"$D/sample"
kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$SCALE_SERVED_PID/status"; }
SCALE_IDS="$D/sample" wrk -t2 -c32 -d"${SCALE_SECONDS:-10}s" -s "$(dirname "$0")/lookup.lua" "$SCALE_URL" >"$D/wrk.$SCALE_N" 2>&1
rps=$(sed -n 's/^Requests\/sec: *//p' "$D/wrk.$SCALE_N")
bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$D/wrk.$SCALE_N")
echo "lookup $SCALE_N rps ${rps:-0} non2xx ${bad:-0} served_rss_kb $(kb VmRSS) anon_kb $(kb RssAnon) file_kb $(kb RssFile)"
