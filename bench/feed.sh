#!/bin/sh
# feedpump throughput: events/s drained from the outbox into the file sink
# and into JetStream, beside the raw rate of the same writes in the same run.
# The machine is shared and fsync latency swings 5x from minute to minute,
# so each figure is the median of FEED_BENCH_ROUNDS (3) rounds in which the
# feedpump run and its baseline run back to back (interleaved), and both are
# timed the same way: whole process, start to exit (connect, open included).
# Same durable work per event on both sides:
#   file: tmp file write + fsync + rename per event, dir fsync per batch
#         (feedpump also commits its LMDB write-back, 2 fdatasyncs per txn)
#   nats: JetStream async publish with Nats-Msg-Id, every ack awaited
#         (feedpump also commits its LMDB write-back)
# Rows at --batch 64 (the default) and a larger batch (FEED_BENCH_BIG, 512).
# FEED_BENCH_SINKS="file nats" (the default) picks the rows to measure.
# FEED_BENCH_N events (5000) for the file rows, FEED_BENCH_NATS_N (20000)
# for the JetStream rows.
N=${FEED_BENCH_N:-5000}
# JetStream rows drain more: at 5000 events the whole run (~100 ms) is
# mostly connecting and finding the stream (~40 ms on both sides), so the
# figure would be start-up, not the sink's rate.
NN=${FEED_BENCH_NATS_N:-20000}
NF=$N
R=${FEED_BENCH_ROUNDS:-3}
BIG=${FEED_BENCH_BIG:-512}
SINKS=${FEED_BENCH_SINKS:-file nats}
want() { case " $SINKS " in *" $1 "*) return 0 ;; esac; return 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench-feed.XXXXXX")
NATS=""
trap '[ -n "$NATS" ] && kill $NATS 2>/dev/null; rm -rf "$T"' EXIT
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 0.001; printf "%.0f", n / d }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
mkconf() { # sink extra -> prints the config path of a fresh node
	k=$(mktemp -d "$T/n.XXXXXX"); k=${k#"$T/"}
	mkdir -p "$T/$k/state" "$T/$k/run"
	printf '[node]\nstate_dir = %s\nrun_dir = %s\n[feed]\nsink = %s\ndir = %s\n%s\n' \
		"$T/$k/state" "$T/$k/run" "$1" "$T/$k/feed" "$2" >"$T/$k.conf"
	feed_fill "$T/$k/state" "$N" --batch 500 >/dev/null 2>&1
	echo "$T/$k.conf"
}
fp_run() { # conf batch -> ev/s
	a=$(now); feedpump -c "$1" --once --batch "$2" 2>/dev/null; b=$(now)
	rate "$N" "$a" "$b"
}
raw_run() { # args... -> ev/s (whole process, like feedpump)
	a=$(now); feed_raw "$@" >/dev/null || return; b=$(now)
	rate "$N" "$a" "$b"
}
c=$(mkconf file "")
size=$(feedpump -c "$c" --once --batch 1 --sink stdout 2>/dev/null | head -n 1 | wc -c)

port=""
if want nats && command -v nats-server >/dev/null; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	nats-server -js -a 127.0.0.1 -p "$port" -sd "$T/nats" >/dev/null 2>&1 &
	NATS=$!
	sleep 1
fi
ff64=""; ffbig=""; rf64=""; rfbig=""; fn64=""; fnbig=""; rn=""
for r in $(seq 1 "$R"); do
	if want file; then
		ff64="$ff64 $(fp_run "$(mkconf file "")" 64)"
		rf64="$rf64 $(raw_run file "$T/raw$r.64" "$N" "$size" 64)"
		ffbig="$ffbig $(fp_run "$(mkconf file "")" "$BIG")"
		rfbig="$rfbig $(raw_run file "$T/raw$r.big" "$N" "$size" "$BIG")"
	fi
	if [ -n "$port" ]; then
		N=$NN
		nx="nats_url = nats://127.0.0.1:$port
nats_subject = bench.feed$r
nats_stream = BENCHFEED$r"
		fn64="$fn64 $(fp_run "$(mkconf nats "$nx")" 64)"
		rn="$rn $(raw_run nats "nats://127.0.0.1:$port" "bench.raw$r" "BENCHRAW$r" "$N" "$size")"
		nx="nats_url = nats://127.0.0.1:$port
nats_subject = bench.feedb$r
nats_stream = BENCHFEEDB$r"
		fnbig="$fnbig $(fp_run "$(mkconf nats "$nx")" "$BIG")"
		N=$NF
	fi
done
paired() { # fp-list raw-list -> the median of the rounds' own ratios
	echo "$1" | tr ' ' '\n' | grep . >"$T/pa"; echo "$2" | tr ' ' '\n' | grep . >"$T/pb"
	paste "$T/pa" "$T/pb" | awk '$2 > 0 { printf "%.4f\n", $1 / $2 }' | median
}
row() { # label fp-list raw-list
	f=$(echo "$2" | median); b=$(echo "$3" | median)
	printf '%-34s %10s %10s %6s %6.2f   %s | %s\n' "$1" "$f" "$b" "$(ratio "$f" "$b")" "$(paired "$2" "$3")" \
		"$(echo $2)" "$(echo $3)"
}
printf 'feed: %s events (JetStream rows: %s) of %s B, median of %s interleaved rounds (all rounds after the |);\n' "$NF" "$NN" "$size" "$R"
printf 'ratio = median / median, paired = median of each round'"'"'s feedpump / raw (the drift-proof one)\n'
printf '%-34s %10s %10s %6s %6s   %s\n' "" "feedpump/s" "raw/s" "ratio" "paired" "rounds: feedpump | raw"
if want file; then
	row "file, batch 64 (fsync+rename/ev)" "$ff64" "$rf64"
	row "file, batch $BIG (fsync+rename/ev)" "$ffbig" "$rfbig"
fi
if [ -n "$port" ]; then
	row "nats JetStream, batch 64 (goal 0.8)" "$fn64" "$rn"
	row "nats JetStream, batch $BIG" "$fnbig" "$rn"
elif want nats; then
	echo "nats JetStream: skipped (no nats-server)"
fi
