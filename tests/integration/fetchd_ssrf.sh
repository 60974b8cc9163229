#!/bin/sh
# Issue 13 item 3: nobody outside the configuration makes fetchd connect
# where they choose. (a) Server names from IDs, hints and rooms must be
# Matrix server names (common/matrix/servername.h), and a name the configuration
# does not know gets no connection to a non-public address (Synapse's
# default ip_range_blacklist): a loopback listener the configuration does
# not name sees no connection at all, whatever the request carries, while
# a configured one is reached. (b) 10,000 distinct names, bogus and
# grammatical, leave fetchd's server table, its RSS and server_health bounded.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 1
ID1=$(sed -n 1p "$FD_DIR/ids")
# the victim: an internal service nobody configured; the control: a
# listener the configuration names (both on ports of their own choosing)
bg python3 tests/tools/fetchd_listener.py 0 "$FD_DIR/victim.log"
bg python3 tests/tools/fetchd_listener.py 0 "$FD_DIR/control.log"
wait_for "[ -s $FD_DIR/victim.log.port ] && [ -s $FD_DIR/control.log.port ]" 50 ||
	{ not_ok "listeners did not start"; finish; exit 1; }
LP=$(cat "$FD_DIR/victim.log.port")
CP=$(cat "$FD_DIR/control.log.port")
FD_SERVERS="$FD_SERVERS
[server control.test]
endpoint = http://127.0.0.1:$CP
"
fd_config "server_rate = 0
servers_max = 200
connect_timeout = 1s
request_timeout = 2s"
fd_start

req() { fetchd_client -s "$FD_SOCK" -n 1 -w 1 -r "$1" 2>/dev/null; }
accepts() { grep -c '^accept' "$1"; }

# (a) the attack from the issue, and its relatives
V="127.0.0.1:$LP"
for r in \
	"{\"op\":\"event\",\"event_id\":\"\$x:$V/internal?cmd=\"}" \
	"{\"op\":\"event\",\"event_id\":\"\$x:$V/internal?cmd=:8448\"}" \
	"{\"op\":\"event\",\"event_id\":\"\$x\",\"servers\":[\"$V/internal?cmd=\"]}" \
	"{\"op\":\"event\",\"event_id\":\"\$x\",\"servers\":[\"$V#frag\",\"$V?q\",\"u@$V\",\"u:p@$V\",\"$V:$LP\",\"$V/\"]}" \
	"{\"op\":\"event\",\"event_id\":\"\$x\",\"servers\":[\"$V\",\"localhost:$LP\",\"127.1:$LP\",\"2130706433:$LP\",\"0x7f.0.0.1:$LP\",\"[::ffff:127.0.0.1]:$LP\",\"127.0.0.2:$LP\"]}" \
	"{\"op\":\"event\",\"event_id\":\"\$x:$V\"}" \
	"{\"op\":\"state_ids\",\"room_id\":\"!r:$V\",\"event_id\":\"\$y:$V\"}" \
	"{\"op\":\"backfill\",\"room_id\":\"!r:$V/x\",\"events\":[\"\$a:$V\",\"\$b:localhost:$LP\"]}" \
	"{\"op\":\"server_keys\",\"event_id\":\"$V\"}" \
	"{\"op\":\"server_keys\",\"event_id\":\"localhost:$LP\",\"servers\":[\"$V/_matrix/key/v2/server?\"]}"; do
	out=$(req "$r")
	case "$out" in *"replies=1 "*) : ;; *) not_ok "no answer to $r ($out)" ;; esac
done
check_eq "the unconfigured loopback listener saw no connection" 0 "$(accepts "$FD_DIR/victim.log")"
check "names that are not server names were counted" [ "$(fd_stat bad_server_names)" -ge 14 ]
check "non-public addresses of unconfigured names were refused" [ "$(fd_stat denied_addresses)" -ge 4 ]
fedctl -c "$FD_CONF" fetch event "\$x" --servers "$V" >/dev/null 2>"$FD_DIR/why"
check "the caller is told why (address_denied)" grep -q "address_denied" "$FD_DIR/why"
fedctl -c "$FD_CONF" fetch event "\$x:$V/internal?cmd=" >/dev/null 2>"$FD_DIR/why2"
check "an ID naming no server name: no candidates" grep -q "no_candidates" "$FD_DIR/why2"
# a recovery (FF_PROXIED, as served sends them) asks only its hints: the
# server inside the ID is not asked, even one the configuration names
out=$(fetchd_client -s "$FD_SOCK" -n 1 -w 1 --proxied -r "{\"op\":\"event\",\"event_id\":\"\$x:control.test\"}" 2>/dev/null)
check "a recovery without hints has no candidates" sh -c "echo '$out' | grep -q 'err_no_candidates=1'"
check_eq "a recovery never asks the server named in its ID" 0 "$(accepts "$FD_DIR/control.log")"
# the control: a listener the configuration names is reached
req "{\"op\":\"event\",\"event_id\":\"$ID1\",\"servers\":[\"control.test\"]}" >/dev/null
check_eq "the configured listener was reached (the probe works)" 1 "$(accepts "$FD_DIR/control.log")"
check_eq "still no connection to the unconfigured one" 0 "$(accepts "$FD_DIR/victim.log")"

# (b) 10,000 distinct names: half not server names, half grammatical but
# unreachable (127.a.b.c on a closed port): each one fails at once.
DP=$(free_port)
awk -v p="$DP" 'BEGIN { for (i = 0; i < 5000; i++) {
	printf "$b%d:127.0.0.1:%d/x?i=%d\n", i, p, i
	printf "$g%d:127.%d.%d.%d:%d\n", i, 1 + int(i / 65536), int(i / 256) % 256, i % 256, p } }' \
	>"$FD_DIR/names"
head -1000 "$FD_DIR/names" >"$FD_DIR/names1k"
fetchd_client -s "$FD_SOCK" -n 1000 -w 64 -i "$FD_DIR/names1k" -r '{"op":"event","event_id":"%ID%"}' >"$FD_DIR/warm.out"
RSS0=$(fd_rss)
fetchd_client -s "$FD_SOCK" -n 10000 -w 64 -i "$FD_DIR/names" -r '{"op":"event","event_id":"%ID%"}' >"$FD_DIR/flood.out"
check "10,000 fetches naming 10,000 servers all answered" grep -q "replies=10000 " "$FD_DIR/flood.out"
RSS1=$(fd_rss)
SERVERS=$(fedctl -c "$FD_CONF" --json stats fetchd | jq -r '.fetchd.gauges.servers')
ROWS=$(fedctl -c "$FD_CONF" --json servers | jq length)
diag "RSS ${RSS0} kB -> ${RSS1} kB; servers in memory $SERVERS; server_health rows $ROWS; evicted $(fd_stat servers_evicted), pruned $(fd_stat health_pruned)"
check "servers in memory stay within servers_max (200)" [ "$SERVERS" -le 200 ]
check "server_health rows stay within servers_max (200)" [ "$ROWS" -le 200 ]
case "${FP_BUILD:-}" in
*asan*) skip "RSS bound (ASan's quarantine holds freed memory)" ;;
*) check "RSS grew by less than 8 MB over 10,000 names" [ $((RSS1 - RSS0)) -lt 8192 ] ;;
esac
check_eq "no connection to the victim through all that" 0 "$(accepts "$FD_DIR/victim.log")"
check "servers were evicted" [ "$(fd_stat servers_evicted)" -gt 0 ]
check "the configured server's row is kept" sh -c "fedctl -c $FD_CONF --json servers | grep -q control.test"
# fetchd still works for real servers afterwards
req "{\"op\":\"event\",\"event_id\":\"$ID1\",\"servers\":[\"control.test\"]}" >/dev/null
check_eq "the configured listener is still reached" 2 "$(accepts "$FD_DIR/control.log")"
fd_stop
finish
