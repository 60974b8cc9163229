#!/bin/sh
# feedpump throughput: events/s drained from the outbox into the file sink
# and into JetStream, beside the raw rate of the same writes in the same run
# (fsync'd tmp+rename file writes; libnats async JetStream publish).
N=${FEED_BENCH_N:-5000}
T=$(mktemp -d /tmp/fp-bench-feed.XXXXXX)
NATS=""
trap '[ -n "$NATS" ] && kill $NATS 2>/dev/null; rm -rf "$T"' EXIT
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 0.001; printf "%.0f", n / d }'; }
mkconf() { # name sink extra
	mkdir -p "$T/$1/state" "$T/$1/run"
	printf '[node]\nstate_dir = %s\nrun_dir = %s\n[feed]\nsink = %s\ndir = %s\n%s\n' \
		"$T/$1/state" "$T/$1/run" "$2" "$T/$1/feed" "$3" >"$T/$1.conf"
}
mkconf file file ""
feed_fill "$T/file/state" "$N" --batch 500
size=$(feedpump -c "$T/file.conf" --once --batch 1 --sink stdout 2>/dev/null | head -n 1 | wc -c)
a=$(now); feedpump -c "$T/file.conf" --once 2>/dev/null; b=$(now)
fp_file=$(rate "$N" "$a" "$b")
raw_file=$(feed_raw file "$T/raw" "$N" "$size")

fp_nats="-"; raw_nats="-"
if command -v nats-server >/dev/null; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	nats-server -js -a 127.0.0.1 -p "$port" -sd "$T/nats" >/dev/null 2>&1 &
	NATS=$!
	sleep 1
	mkconf nats nats "nats_url = nats://127.0.0.1:$port
nats_subject = bench.feed
nats_stream = BENCHFEED"
	feed_fill "$T/nats/state" "$N" --batch 500
	a=$(now); feedpump -c "$T/nats.conf" --once 2>/dev/null; b=$(now)
	fp_nats=$(rate "$N" "$a" "$b")
	raw_nats=$(feed_raw nats "nats://127.0.0.1:$port" bench.raw BENCHRAW "$N" "$size")
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
printf '%-28s %12s %12s %8s\n' "feed ($N events, ${size} B)" "feedpump/s" "raw/s" "ratio"
printf '%-28s %12s %12s %8s\n' "file sink (fsync+rename)" "$fp_file" "$raw_file" "$(ratio "$fp_file" "$raw_file")"
printf '%-28s %12s %12s %8s\n' "nats JetStream" "$fp_nats" "$raw_nats" "$(ratio "$fp_nats" "$raw_nats")"
