# tests/lib/lib.sh: shared helpers for integration tests (POSIX sh, sourced).
# TAP-like output counted by tests/run.sh; every process a test starts is
# remembered by PID and ended at exit; a temporary directory per test.
T_N=0
T_FAIL=0
T_PIDS=""
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fp-test.XXXXXX")
FP_BIN=${FP_BIN:-$(pwd)/bin}
FP_BUILD=${FP_BUILD:-$(pwd)/build}
PATH="$FP_BIN:$FP_BUILD/tools:$PATH"
export PATH

ok()     { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }
not_ok() { T_N=$((T_N + 1)); T_FAIL=$((T_FAIL + 1)); echo "not ok $T_N - $*"; }
skip()   { T_N=$((T_N + 1)); echo "ok $T_N - $* # SKIP"; }
# check "description" command args...: ok if the command succeeds.
check()  { _d=$1; shift; if "$@"; then ok "$_d"; else not_ok "$_d"; fi; }
# check_eq "description" expected actual
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi; }
diag()   { echo "# $*"; }

# bg command args...: start in the background, remember the PID in $LAST_PID.
bg() { "$@" & LAST_PID=$!; T_PIDS="$T_PIDS $LAST_PID"; }
# stop PID: TERM, wait up to 5 s, then KILL. Returns the exit status.
stop() {
	kill -TERM "$1" 2>/dev/null
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	for _p in $T_PIDS; do kill -TERM "$_p" 2>/dev/null; done
	sleep 0.2
	for _p in $T_PIDS; do kill -KILL "$_p" 2>/dev/null; done
	[ -n "${FP_KEEP:-}" ] && echo "# kept $T_TMP" || rm -rf "$T_TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# jq 1.6 exits 0 for `jq -e FILTER` on empty input, so a check piping a
# command that printed nothing (it failed, it is not there) would pass. In
# tests, `jq -e FILTER` reading standard input fails on empty input.
jq() {
	if [ "${1:-}" = -e ] && [ $# -eq 2 ]; then
		_jq_in=$(cat)
		[ -n "$_jq_in" ] || return 1
		printf '%s\n' "$_jq_in" | command jq "$@"
	else command jq "$@"; fi
}
# wait_for "shell condition" [tenths of a second, default 100]: bounded poll.
wait_for() {
	_n=${2:-100}
	while ! eval "$1" >/dev/null 2>&1; do
		_n=$((_n - 1)); [ $_n -le 0 ] && return 1; sleep 0.1
	done
}
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# node_config NAME PORT [extra config text]: makes $T_TMP/NAME/{state,run,feed},
# a signing key and $T_TMP/NAME/fedpipe.conf; prints the config path.
node_config() {
	_dir=$T_TMP/$1
	mkdir -p "$_dir/state" "$_dir/run" "$_dir/feed"
	cat >"$_dir/fedpipe.conf" <<CONF
[node]
server_name = $1.test:$2
state_dir = $_dir/state
run_dir = $_dir/run
signing_key = $_dir/signing.key
listen = 127.0.0.1:$2

[feed]
dir = $_dir/feed
${3:-}
CONF
	[ -f "$_dir/signing.key" ] || fedctl -c "$_dir/fedpipe.conf" keygen >/dev/null 2>&1
	echo "$_dir/fedpipe.conf"
}
finish() { echo "# $T_N checks, $T_FAIL failed"; [ "$T_FAIL" -eq 0 ]; }
# pipeline_node NAME [extra config]: a node for validated + purgatoryd tests
# (quick rescans, short debounce); sets CONF, D (its directory) and SRV.
pipeline_node() {
	CONF=$(node_config "$1" "$(free_port)" "
[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
${2:-}")
	D=$T_TMP/$1
	SRV=$(sed -n 's/^server_name = //p' "$CONF")
}
# stat_of NAME: one count from `purgatory_tool check` (events, purgatory, rejects, ...).
stat_of() { purgatory_tool check -c "$CONF" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# stage_stat CONF STAGE NAME: one counter or gauge from a running stage's
# stats frame (empty when the stage is down or has not made that one yet)
stage_stat() { fedctl -c "$1" stats "$2" 2>/dev/null | grep -o "\"$3\": *-\{0,1\}[0-9]*" | head -1 | grep -o -- "-\{0,1\}[0-9]*\$"; }
