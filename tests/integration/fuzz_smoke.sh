# fuzz_smoke.sh: a short libFuzzer run of every harness (make fuzz runs them
# longer). The harnesses are built by `make test` (target fuzz-smoke) with
# clang's -fsanitize=fuzzer,address,undefined; a crash or sanitizer report fails.
. tests/lib/lib.sh
found=0 seen=""
for f in "$FP_BUILD"/fuzz/fuzz_* "$FP_ROOT"/build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	n=$(basename "$f")
	case " $seen " in *" $n "*) continue ;; esac   # build-asan falls back to build/fuzz
	seen="$seen $n"
	found=1
	mkdir -p "$T_TMP/$n"
	if "$f" -max_total_time="${FP_FUZZ_SECONDS:-10}" -max_len=70000 -rss_limit_mb=1024 \
		"$T_TMP/$n" tests/fuzz/seeds >"$T_TMP/$n.log" 2>&1; then
		ok "$n: $(grep -o 'Done [0-9]* runs' "$T_TMP/$n.log" | head -1), no crash"
	else
		not_ok "$n crashed or failed; last lines:"
		tail -20 "$T_TMP/$n.log" | sed 's/^/# /'
	fi
done
[ $found = 1 ] || not_ok "no fuzz harness was built (make fuzz-smoke needs clang and libclang-rt-14-dev)"
finish
