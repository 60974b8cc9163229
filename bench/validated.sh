#!/bin/sh
# bench/validated.sh: deep validation (event ID + content hash + ed25519
# signature, common/matrix/validate.c) on ~1 KiB v10 events, beside the raw
# crypto_sign_verify_detached rate on the same bytes and python3-signedjson's
# rate on the same events, all measured in this run. Targets: >= 90% of raw
# verify, >= 1.8x signedjson, near-linear on 2 threads.
B=${FP_BUILD:-build}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/fp-vbench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
SECS=${BENCH_SECONDS:-2}
"$B/bench/validated_bench" "$DIR" 2000 "$SECS" >"$DIR/c.txt" || { echo "validated_bench failed"; exit 1; }
# signedjson runs in its own process: pair it with deep validation in three
# alternating rounds and keep the medians, so both see the same machine.
: >"$DIR/pair.txt"
mkdir -p "$DIR/p"
for r in 1 2 3; do
	python3 "$(dirname "$0")/validated_signedjson.py" "$DIR" "$SECS" >>"$DIR/pair.txt" 2>"$DIR/py.err" ||
		echo "signedjson 0" >>"$DIR/pair.txt"
	BENCH_PROFILE=deep "$B/bench/validated_bench" "$DIR/p" 2000 "$SECS" | sed -n 's/^deep /deep_paired /p' >>"$DIR/pair.txt"
done
sort -k1,1 -k2,2n "$DIR/pair.txt" | awk '{ n[$1]++; v[$1, n[$1]] = $2 } END { for (k in n) print k, v[k, int((n[k] + 1) / 2)] }' >"$DIR/py.txt"
# validated --jsonl end to end (parse input lines, print verdicts), 1 and 2 workers
printf '[node]\nstate_dir = %s/none\nsigning_key = %s/none.key\n[validated]\nseen_cache = 0\n' "$DIR" "$DIR" >"$DIR/conf"
for i in 1 2 3 4 5; do cat "$DIR/events.jsonl"; done >"$DIR/x5.jsonl"
for w in 1 2; do
	s=$(date +%s.%N)
	"${FP_BIN:-bin}/validated" --jsonl -c "$DIR/conf" --keys "$DIR/keys.json" --workers $w <"$DIR/x5.jsonl" >"$DIR/out$w" 2>/dev/null
	e=$(date +%s.%N)
	echo "jsonl_$w $(awk -v n="$(wc -l <"$DIR/out$w")" -v s="$s" -v e="$e" 'BEGIN{printf "%.0f", n/(e-s)}')" >>"$DIR/c.txt"
done
cat "$DIR/c.txt" "$DIR/py.txt" | awk '
	{ v[$1] = $2 }
	END {
		raw = v["raw_verify"]; py = v["signedjson"]; one = v["deep_1"]
		printf "validated benchmark: %d-byte events, one core unless noted (events/s)\n", v["event_bytes"]
		printf "%-44s %10s %9s %9s\n", "measure", "events/s", "vs raw", "vs py"
		row("raw crypto_sign_verify_detached (libsodium)", raw)
		row("python3-signedjson hash + verify", py)
		row("validate_pdu deep (event ID, hash, sig)", one)
		row("validate_pdu deep + canonical PDU (daemon)", v["deep_pdu_1"])
		row("raw verify, 2 threads", v["raw_verify_2"])
		row("validate_pdu deep, 2 threads", v["deep_2"])
		row("stream with every event 3x (dedup cache)", v["dedup3_1"])
		row("validated --jsonl, 1 worker (end to end)", v["jsonl_1"])
		row("validated --jsonl, 2 workers (end to end)", v["jsonl_2"])
		ns = v["nosig_1"]
		if (ns && one)
			printf "work besides the signature (parse, event ID, content hash): %.2f us/event = %.1f%% of deep validation (goal < 10%%)\n", 1e6 / ns, 100 * one / ns
		printf "single-core rows: median of 5 interleaved rounds\n"
		if (py && v["deep_paired"])
			printf "deep validation vs signedjson in 3 alternating rounds (medians): %.0f vs %.0f events/s = %.2fx (goal >= 1.8x)\n", v["deep_paired"], py, v["deep_paired"] / py
		printf "scaling 2 threads / 1: validate %.2fx, raw verify %.2fx (the machine sets the ceiling)\n", (one ? v["deep_2"] / one : 0), (raw ? v["raw_verify_2"] / raw : 0)
	}
	function row(name, x) {
		printf "%-44s %10.0f %8.1f%% %8.2fx\n", name, x, (raw ? 100 * x / raw : 0), (py ? x / py : 0)
	}'
