# tests/tools/fetchd_lib.sh: shared setup for the fetchd integration tests
# (sourced after tests/lib/lib.sh). Keys, signed events, test peers
# (fedpeer) on free ports, and a fetchd whose config maps each peer's server
# name to its port.
FD_DIR=$T_TMP/fd
mkdir -p "$FD_DIR/state" "$FD_DIR/run"
FD_CONF=$FD_DIR/fetchd.conf
FD_SOCK=$FD_DIR/run/fetchd.sock
FD_SERVERS=""

# fd_events N: a signing key for origin.test and N signed PDUs ($FD_DIR/ev.jsonl,
# IDs in $FD_DIR/ids).
fd_events() {
	printf '[node]\nsigning_key = %s/origin.key\n' "$FD_DIR" >"$FD_DIR/key.conf"
	fedctl -c "$FD_DIR/key.conf" keygen >/dev/null 2>&1
	fedpeer --make-events "$1" -k "$FD_DIR/origin.key" -s origin.test \
		--room '!room:origin.test' -o "$FD_DIR/ev.jsonl" --ids "$FD_DIR/ids"
}

# fd_peer NAME [RULES_JSON] [EXTRA SERVER LINES]: start a test peer serving the events as NAME.test;
# its port is in $FD_PORT_<NAME>, its log in $FD_DIR/NAME.log.
fd_peer() {
	_p=$(free_port)
	eval "FD_PORT_$1=$_p"
	_r=""
	if [ -n "${2:-}" ]; then printf '%s\n' "$2" >"$FD_DIR/$1.rules"; _r="-r $FD_DIR/$1.rules"; fi
	# shellcheck disable=SC2086
	bg fedpeer -p "$_p" -e "$FD_DIR/ev.jsonl" -k "$FD_DIR/origin.key" -s "$1.test" $_r \
		2>>"$FD_DIR/$1.log"
	eval "FD_PID_$1=$LAST_PID"
	FD_SERVERS="$FD_SERVERS
[server $1.test]
endpoint = http://127.0.0.1:$_p
${3:-}
"
	wait_for "curl -sf http://127.0.0.1:$_p/_peer/stats" 50
}

# fd_peer_stat NAME FIELD: a counter from the peer's /_peer/stats.
fd_peer_stat() {
	eval "_p=\$FD_PORT_$1"
	curl -sf "http://127.0.0.1:$_p/_peer/stats" | jq -r ".$2"
}

# fd_config [extra [fetchd] lines]: write the config (call after the peers).
# fetchd signs its requests with origin.key (made here if fd_events was not
# called: fetchd does not start without its signing key).
fd_config() {
	if [ ! -s "$FD_DIR/origin.key" ]; then
		printf '[node]\nsigning_key = %s/origin.key\n' "$FD_DIR" >"$FD_DIR/key.conf"
		fedctl -c "$FD_DIR/key.conf" keygen >/dev/null 2>&1
	fi
	cat >"$FD_CONF" <<CONF
[node]
server_name = self.test
state_dir = $FD_DIR/state
run_dir = $FD_DIR/run
signing_key = $FD_DIR/origin.key

[fetchd]
${1:-}
$FD_SERVERS
CONF
}

# fd_start: start fetchd and wait for its socket. $FD_ENV (NAME=VALUE ...)
# goes into fetchd's environment only.
fd_start() {
	rm -f "$FD_SOCK"
	# shellcheck disable=SC2086
	bg env ${FD_ENV:-} fetchd -c "$FD_CONF" -d -v 2>>"$FD_DIR/fetchd.log"
	FD_PID=$LAST_PID
	wait_for "[ -S $FD_SOCK ] && fedctl -c $FD_CONF stats fetchd" 100
}

fd_stop() { stop "$FD_PID"; }

# fd_stat NAME: a counter from fetchd's stats.
fd_stat() {
	fedctl -c "$FD_CONF" --json stats fetchd | jq -r ".fetchd.counters.$1 // 0"
}

# fd_rss: fetchd's resident set in kB.
fd_rss() { awk '/^VmRSS/ {print $2}' "/proc/$FD_PID/status"; }
