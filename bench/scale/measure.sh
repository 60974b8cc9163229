#!/bin/sh
# bench/scale/measure.sh: scale_fill's --hook at each checkpoint (the writer
# is idle meanwhile). served's lookup rate on random IDs from the whole store
# (wrk -t2 -c32, SCALE_SECONDS, lookup.lua), then served's RSS.
# Env from run.sh: SCALE_N, SCALE_DIR, SCALE_URL, SCALE_SERVED_PID, SCALE_SECONDS.
# Prints: lookup N rps R non2xx X cpu_us U served_rss_kb A anon_kb B file_kb C
# (cpu_us: served's utime+stime during the run over the requests answered)
D=$SCALE_DIR
K=${SCALE_SAMPLE:-100000}
shuf -n "$K" "$D/ids" >"$D/sample"
kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$SCALE_SERVED_PID/status"; }
ticks() { sed 's/^.*) //' "/proc/$SCALE_SERVED_PID/stat" | awk '{ print $12 + $13 }'; }
c0=$(ticks)
SCALE_IDS="$D/sample" wrk -t2 -c32 -d"${SCALE_SECONDS:-10}s" -s "$(dirname "$0")/lookup.lua" "$SCALE_URL" >"$D/wrk.$SCALE_N" 2>&1
c1=$(ticks)
req=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$D/wrk.$SCALE_N")
cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="${req:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print 0 }')
rps=$(sed -n 's/^Requests\/sec: *//p' "$D/wrk.$SCALE_N")
bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$D/wrk.$SCALE_N")
echo "lookup $SCALE_N rps ${rps:-0} non2xx ${bad:-0} cpu_us $cpu_us served_rss_kb $(kb VmRSS) anon_kb $(kb RssAnon) file_kb $(kb RssFile)"
