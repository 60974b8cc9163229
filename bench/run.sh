#!/bin/sh
# make bench: runs every bench/<name>.sh (each prints its own table with a
# baseline measured in the same run and the ratio). BENCH=name runs one.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export FP_ROOT="$ROOT" FP_BIN="$ROOT/bin" FP_BUILD="$ROOT/build"
export FP_VECTORS="${FP_VECTORS:-$(cd "$ROOT/../shared/vectors" 2>/dev/null && pwd)}"
export PATH="$FP_BIN:$FP_BUILD/tools:$FP_BUILD/bench:/usr/bin:$PATH"
rc=0
for b in bench/*.sh; do
	[ "$b" = bench/run.sh ] && continue
	n=$(basename "$b" .sh)
	case "$n" in *"${1:-}"*) ;; *) continue ;; esac
	echo "== $n"
	sh "$b" || { echo "bench $n failed"; rc=1; }
	echo
done
exit $rc
