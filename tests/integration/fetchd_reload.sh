#!/bin/sh
# Issue 13 item 12 (fetchd): SIGHUP under load, again and again, with
# changed values: every change takes effect (per-server concurrency, the
# server table bound, a [server] endpoint moved, a peer's key changed,
# timeouts), fetches in flight are all answered, a bad value is refused with
# the old limits kept, and nothing reads freed memory (make asan
# TESTS=fetchd_reload: fetchd must exit 0 with no sanitizer report).
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 60
F=/_matrix/federation/v1
fd_peer slow "{\"rules\":[{\"path\":\"$F/event/\",\"mode\":\"events\",\"delay_ms\":300}]}"
fd_peer load "{\"rules\":[{\"path\":\"$F/event/\",\"mode\":\"events\",\"delay_ms\":20}]}"
fd_peer a
fd_peer b
BASE_SERVERS=$FD_SERVERS
# conf CONC SERVERS_MAX MOVED_PORT KEY FETCH_TIMEOUT REQUEST_TIMEOUT
conf() {
	FD_SERVERS="$BASE_SERVERS
[server moved.test]
endpoint = http://127.0.0.1:$3

[peer alpha]
endpoint = http://127.0.0.1:$FD_PORT_a
key = $4
"
	fd_config "server_rate = 0
server_concurrency = $1
servers_max = $2
fetch_timeout = $5
request_timeout = $6"
}
reloads() { grep -c "fetchd: reloaded" "$FD_DIR/fetchd.log"; }
hup() {
	_n=$(reloads)
	kill -HUP "$FD_PID"
	wait_for "[ \$(grep -c 'fetchd: reloaded\|keeps its previous limits\|keeping the running configuration' $FD_DIR/fetchd.log) -gt $_n ]" 100
}
fetch() { fedctl -c "$FD_CONF" fetch event "$@" >/dev/null 2>"$FD_DIR/err"; }

conf 1 50 "$FD_PORT_a" KEY-ONE 60s 10s
fd_start
sed -n 1,6p "$FD_DIR/ids" >"$FD_DIR/six"
fetchd_client -s "$FD_SOCK" -n 6 -w 6 -i "$FD_DIR/six" -r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}' >/dev/null
check_eq "server_concurrency 1: one request at a time" 1 "$(fd_peer_stat slow inflight_max)"
fetch "$(sed -n 7p "$FD_DIR/ids")" --servers moved.test
check_eq "moved.test is at a" 1 "$(fd_peer_stat a requests)"
check "a (peer alpha's endpoint) got KEY-ONE" grep -q "auth=Bearer KEY-ONE" "$FD_DIR/a.log"

# Load: 400 fetches from a steady server plus 2,000 distinct unreachable
# names churning the server table, while fetchd is reloaded 12 times.
awk 'BEGIN { for (i = 0; i < 2000; i++) printf "$c%d:127.9.%d.%d:1\n", i, int(i / 256), i % 256 }' >"$FD_DIR/churn"
sed -n 8,40p "$FD_DIR/ids" >"$FD_DIR/loadids"
fetchd_client -s "$FD_SOCK" -n 400 -w 16 -i "$FD_DIR/loadids" \
	-r '{"op":"event","event_id":"%ID%","servers":["load.test"],"max_attempts":1}' >"$FD_DIR/load.out" &
L1=$!
fetchd_client -s "$FD_SOCK" -n 2000 -w 2 -i "$FD_DIR/churn" -r '{"op":"event","event_id":"%ID%"}' >"$FD_DIR/churn.out" &
L2=$!
i=0
while [ $i -lt 12 ]; do
	if [ $((i % 2)) -eq 0 ]; then conf 3 20 "$FD_PORT_b" "KEY-$i" "$((30 + i))s" 9s
	else conf 1 50 "$FD_PORT_a" "KEY-$i" "$((30 + i))s" 10s; fi
	hup
	i=$((i + 1))
done
conf 3 20 "$FD_PORT_b" KEY-TWO 45s 8s
hup
wait "$L1"; wait "$L2"
check "every load fetch was answered (ok) across 13 reloads" grep -q "replies=400 ok=400 " "$FD_DIR/load.out"
check "every churn fetch was answered" grep -q "replies=2000 " "$FD_DIR/churn.out"
check_eq "13 reloads applied" 13 "$(reloads)"

# The last configuration is in force.
sed -n 41,49p "$FD_DIR/ids" >"$FD_DIR/nine"
fetchd_client -s "$FD_SOCK" -n 9 -w 9 -i "$FD_DIR/nine" -r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}' >/dev/null
check_eq "server_concurrency 3 after the reload: three at a time" 3 "$(fd_peer_stat slow inflight_max)"
A0=$(fd_peer_stat a requests); B0=$(fd_peer_stat b requests)
fetch "$(sed -n 50p "$FD_DIR/ids")" --servers moved.test
check_eq "moved.test now goes to b" "$A0 $((B0 + 1))" "$(fd_peer_stat a requests) $(fd_peer_stat b requests)"
fetch "$(sed -n 51p "$FD_DIR/ids")" --servers a.test
check_eq "peer alpha's endpoint now gets the new key" "auth=Bearer KEY-TWO" \
	"$(grep -o 'auth=Bearer [^ ]*' "$FD_DIR/a.log" | tail -1)"
S=$(fedctl -c "$FD_CONF" --json stats fetchd | jq -r '.fetchd.gauges.servers')
check "the server table follows servers_max 20 ($S)" [ "$S" -le 20 ]

# A bad value: refused, the old limits stay.
conf 0 20 "$FD_PORT_b" KEY-TWO 45s 8s
hup
check "a bad reload is refused" grep -q "keeps its previous limits\|keeping the running configuration" "$FD_DIR/fetchd.log"
sed -n 52,60p "$FD_DIR/ids" >"$FD_DIR/nine2"
fetchd_client -s "$FD_SOCK" -n 9 -w 9 -i "$FD_DIR/nine2" -r '{"op":"event","event_id":"%ID%","servers":["slow.test"]}' >"$FD_DIR/after.out"
check "fetches still work after the refused reload" grep -q "replies=9 ok=9 " "$FD_DIR/after.out"

# [acl] at a reload: fetchd skips the ACL lookup while deny and allow are
# both empty, so a reload that sets either must take effect at once, and
# one that clears them again must too.
acl() { conf 3 20 "$FD_PORT_b" KEY-TWO 45s 8s; printf '[acl]\n%s\n' "$1" >>"$FD_CONF"; hup; }
ID41=$(sed -n 41p "$FD_DIR/ids")
acl "deny = a.test"
fetch "$ID41" --servers a.test
check "[acl] deny = a.test after a reload: a.test is no candidate" grep -q "no_candidates" "$FD_DIR/err"
acl "allow = b.test"
fetch "$ID41" --servers a.test
check "[acl] allow = b.test after a reload: a.test is no candidate" grep -q "no_candidates" "$FD_DIR/err"
fetch "$ID41" --servers b.test
check_eq "... and b.test still is" 0 "$?"
acl ""
fetch "$ID41" --servers a.test
check_eq "[acl] emptied by a reload: a.test is asked again" 0 "$?"

stop "$FD_PID"
check_eq "fetchd exits cleanly" 0 "$?"
check "no sanitizer report" sh -c "! grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error' '$FD_DIR/fetchd.log'"
finish
