#!/bin/sh
# Issue 13 item 2: one client address cannot take served down.
# Part 1: served under a 256-file limit; from 127.0.0.1, 500 slow-header
# connections (a byte every 2 s, reopened when closed) and 50 half-sent 1 MB
# bodies (25 without the key, 25 with it); meanwhile every ordinary request
# from 127.0.0.2 succeeds, the per-address cap refuses the flood at once, the
# header and body deadlines end what was admitted, the keyless bodies are
# refused from their headers, and served's log stays under 4 KB.
# Part 2: served under a 64-file limit with caps above it: more connections
# than descriptors; accept() fails (EMFILE), served pauses accepting instead
# of spinning, logs a line or two, and answers again afterwards.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
ATK="python3 tests/tools/served_attack.py"
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = open
max_connections_per_ip = 32
header_timeout = 3s
body_timeout = 4s")
sed -i 's/^\[node\]$/[node]\nshared_key = k3y/' "$A"
served_fill -c "$A" -N 5 >/dev/null
U=http://127.0.0.1:$P
LOG=$T_TMP/served.log
# no -v: the log is what an operator would see
bg sh -c "ulimit -n 256; exec served -c '$A' 2>>'$LOG'"
SP=$LAST_PID
check "up" wait_for "http_up $U/healthz"
ord() {   # N ordinary requests from 127.0.0.2; prints how many got 200
	_ok=0; _i=0
	while [ $_i -lt "$1" ]; do
		_c=$(curl -s -o /dev/null -m 10 -w '%{http_code}' --interface 127.0.0.2 -H 'Authorization: Bearer k3y' "$U/_fed/v1/identity")
		[ "$_c" = 200 ] && _ok=$((_ok + 1)); _i=$((_i + 1))
	done
	echo $_ok
}
stat() { curl -s -m 10 --interface 127.0.0.2 -H 'Authorization: Bearer k3y' "$U/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
$ATK --port "$P" --half 25 --duration 14 >"$T_TMP/half_nokey.json" &
H1=$!
$ATK --port "$P" --half 25 --half-key k3y --duration 14 >"$T_TMP/half_key.json" &
H2=$!
sleep 1
$ATK --port "$P" --slow 500 --reconnect --duration 12 >"$T_TMP/slow.json" &
S1=$!
sleep 2
check_eq "ordinary requests from another address all succeed during the attack" 60 "$(ord 60)"
wait $S1 $H1 $H2
diag "slow: $(cat "$T_TMP/slow.json")"
diag "half without key: $(cat "$T_TMP/half_nokey.json"); with key: $(cat "$T_TMP/half_key.json")"
check "served still running" kill -0 $SP
check "the per-address cap refused most of the flood at once" \
	python3 -c "import json,sys; d=json.load(open('$T_TMP/slow.json')); sys.exit(0 if d['closed_fast'] >= 400 else 1)"
check "refusals counted (conn_refused_per_ip >= 400)" test "$(stat 'fedpipe_http_connections_refused_total{limit="per_ip"}')" -ge 400
check "slow headers ended by the header deadline" test "$(stat 'fedpipe_http_timeouts_total{phase="header"}')" -ge 1
check "keyless bodies refused from their headers, unread" test "$(stat fedpipe_http_unauthorized_before_body_total)" -ge 20
check "keyless bodies: connection closed at once" \
	python3 -c "import json,sys; d=json.load(open('$T_TMP/half_nokey.json')); sys.exit(0 if d['closed_fast'] >= 20 and d['still_open'] == 0 else 1)"
check "half-sent bodies with the key ended by the body deadline" test "$(stat 'fedpipe_http_timeouts_total{phase="body"}')" -ge 1
check_eq "afterwards: ordinary requests succeed" 10 "$(ord 10)"
check "no connection left over (gauge back to the scrapes' own)" \
	wait_for "[ \"\$(curl -s --interface 127.0.0.2 -H 'Authorization: Bearer k3y' $U/metrics | sed -n 's/^fedpipe_http_connections //p')\" -le 2 ]" 100
SZ=$(wc -c <"$LOG")
diag "served log: $SZ bytes"
check "served's log stays under 4 KB" test "$SZ" -lt 4096
stop $SP

# Part 2: EMFILE.
P2=$(free_port)
B=$(node_config b "$P2" "[served]
matrix_auth = open
max_connections = 1000
max_connections_per_ip = 1000
header_timeout = 2s")
U2=http://127.0.0.1:$P2
LOG2=$T_TMP/served2.log
bg sh -c "ulimit -n 64; exec served -c '$B' 2>>'$LOG2'"
SP2=$LAST_PID
check "up under ulimit -n 64" wait_for "http_up $U2/healthz"
$ATK --port "$P2" --hold 300 --duration 6 >"$T_TMP/hold.json"
diag "hold: $(cat "$T_TMP/hold.json")"
check "served still running after EMFILE" kill -0 $SP2
check "answers again afterwards" wait_for "curl -s -f -m 3 --interface 127.0.0.2 $U2/_fed/v1/identity >/dev/null" 100
M=$(curl -s -m 5 --interface 127.0.0.2 "$U2/metrics")
E=$(echo "$M" | sed -n 's/^fedpipe_http_accept_errors_total //p')
diag "accept errors: $E"
check "accept errors happened and were counted" test "${E:-0}" -ge 1
SZ2=$(wc -c <"$LOG2")
diag "served log: $SZ2 bytes"
check "log stays under 4 KB after EMFILE" test "$SZ2" -lt 4096
stop $SP2
finish
