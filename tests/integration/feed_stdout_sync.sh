#!/bin/sh
# The stdout sink into a regular file: every batch is fdatasync'ed before the
# outbox marks any row of it published (strace -y shows the order: the last
# write to the file, then fdatasync of it, then LMDB's commit of the marks).
# Into a pipe there is nothing to sync and no fdatasync is made. (One batch
# of 20 rows, so one sync and one commit.)
. tests/lib/lib.sh
if ! command -v strace >/dev/null 2>&1; then
	skip "strace is not installed (make deps installs it)"; finish
fi
# LeakSanitizer cannot run under ptrace (make asan): leaks off for the traced runs.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS
conf=$(node_config sy "$(free_port)" "sink = stdout")
D=$T_TMP/sy
feed_fill "$D/state" 20
strace -f -y -e trace=write,pwrite64,pwritev,fdatasync,fsync,msync -o "$T_TMP/trace" \
	feedpump -c "$conf" --sink stdout --batch 100 --once >"$T_TMP/out.jsonl" 2>"$T_TMP/fp.err"
check_eq "feedpump --once into a file exits 0" 0 $?
check_eq "20 lines written" 20 "$(wc -l <"$T_TMP/out.jsonl" | tr -d ' ')"
check_eq "all 20 rows published" 20 "$(fedctl -c "$conf" --json feed status | jq .published)"
F=$T_TMP/out.jsonl
lw=$(grep -n "write(1<$F>" "$T_TMP/trace" | tail -1 | cut -d: -f1)
fs=$(grep -n "fdatasync(1<$F>" "$T_TMP/trace" | head -1 | cut -d: -f1)
# LMDB's commit: its page writes (or the meta page) to data.mdb after our sync.
lm=$(grep -n "data.mdb>" "$T_TMP/trace" | awk -F: -v f="${fs:-0}" '$1 > f {print $1; exit}')
before() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -lt "$2" ]; }
check "the file was fdatasync'ed" [ -n "$fs" ]
check "after the last line was written (trace lines $lw < $fs)" before "$lw" "$fs"
check "and before LMDB committed the published marks ($fs < $lm)" before "$fs" "$lm"
check_eq "no LMDB write between the first line and the sync" "" \
	"$(awk -v a="$(grep -n "write(1<$F>" "$T_TMP/trace" | head -1 | cut -d: -f1)" -v b="${fs:-0}" 'NR > a && NR < b && /data.mdb>/' "$T_TMP/trace")"

# Into a pipe: no fdatasync on it.
feed_fill "$D/state" 5 --prefix p
strace -f -y -e trace=fdatasync -o "$T_TMP/trace2" feedpump -c "$conf" --sink stdout --once 2>/dev/null | cat >"$T_TMP/pipe.out"
check_eq "into a pipe: 5 more lines" 5 "$(wc -l <"$T_TMP/pipe.out" | tr -d ' ')"
check_eq "into a pipe: no fdatasync of stdout" 0 "$(grep -c "fdatasync(1<pipe" "$T_TMP/trace2")"
finish
