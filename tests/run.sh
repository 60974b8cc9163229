#!/bin/sh
# The test runner: runs every unit test program and every integration script,
# counts their "ok"/"not ok" lines (TAP-like; "# SKIP" marks a skip), keeps
# each one's output in $FP_BUILD/test-logs/, and ends with the single line
# "N passed, N failed, N skipped". Usage: tests/run.sh [name-pattern ...]
# (a test runs when its name contains any of the patterns; none: all)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export FP_ROOT="$ROOT"
export FP_BUILD="$ROOT/${FP_BUILD:-build}"
case "$FP_BUILD" in "$ROOT//"*) FP_BUILD=${FP_BUILD#"$ROOT/"} ;; esac
export FP_BIN="$ROOT/${FP_BIN:-bin}"
case "${FP_BIN}" in "$ROOT//"*) FP_BIN=${FP_BIN#"$ROOT/"} ;; esac
[ -d "$FP_BIN" ] || FP_BIN="$ROOT/bin"
export FP_VECTORS="${FP_VECTORS:-$(cd "$ROOT/../shared/vectors" 2>/dev/null && pwd)}"
# Debian's python3 has python3-signedjson/canonicaljson; a pyenv shim earlier
# on PATH would not.
export PATH="$FP_BIN:$FP_BUILD/tools:/usr/bin:$PATH"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
patterns="$*"
logs="$FP_BUILD/test-logs"
mkdir -p "$logs"
pass=0 fail=0 skip=0 ran=0 files_failed=""
run_one() {
	name=$1; shift
	if [ -n "$patterns" ]; then
		hit=0
		for _pat in $patterns; do
			case "$name" in *"$_pat"*) hit=1; break ;; esac
		done
		[ "$hit" = 1 ] || return
	fi
	ran=$((ran + 1))
	log="$logs/$name.log"
	start=$(date +%s)
	timeout -k 10 "${FP_TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1
	rc=$?
	p=$(grep -a '^ok ' "$log" | grep -vc '# SKIP')
	s=$(grep -a '^ok ' "$log" | grep -c '# SKIP')
	f=$(grep -ac '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1; echo "not ok - $name exited with status $rc" >>"$log"
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	el=$(( $(date +%s) - start ))
	if [ "$f" -gt 0 ]; then
		files_failed="$files_failed $name"
		printf 'FAIL %-32s %4d ok %3d failed %3d skipped %4ds  (%s)\n' "$name" "$p" "$f" "$s" "$el" "$log"
		grep -aE '^not ok|failed at|<[0-3]>' "$log" | head -20 | sed 's/^/     /'
	else
		printf 'pass %-32s %4d ok %3d failed %3d skipped %4ds\n' "$name" "$p" "$f" "$s" "$el"
	fi
}
for t in "$FP_BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" "$t"
done
for t in tests/integration/*.sh tests/integration/*.py; do
	[ -f "$t" ] || continue
	b=$(basename "$t")
	case "$t" in *.py) run_one "${b%.py}" "$PY" "$t" ;; *) run_one "${b%.sh}" sh "$t" ;; esac
done
[ -n "$files_failed" ] && echo "failed:$files_failed"
if [ "$ran" -eq 0 ]; then
	echo "no test name contains any of: $patterns" >&2
	fail=1
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
