#!/bin/sh
# Issue 13 item 12 (served): SIGHUP under requests applies every change and
# keeps no pointer into the freed configuration (run it under `make asan
# TESTS=served_reload`): events_limit, max_connections_per_ip, upstreams
# and shared_key are changed several times while a client keeps asking.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port); PU=$(free_port)
bg python3 tests/tools/served_listener.py "$PU" "$T_TMP/up.count" 404
A=$(node_config a "$P" "[served]
matrix_auth = open
events_limit = 100
max_connections_per_ip = 32
[server up.test:$PU]
endpoint = http://127.0.0.1:$PU")
served_fill -c "$A" -N 60 >/dev/null
node_start a served fetchd
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
bg sh -c "while :; do curl -s -o /dev/null --interface 127.0.0.2 '$U/_fed/v1/events?since=0'; curl -s -o /dev/null --interface 127.0.0.2 '$U/metrics'; done"
LOAD=$LAST_PID
n=0
hup() {   # hup KEY VALUE: set [served] KEY (added if missing), SIGHUP, wait for the reload line
	if grep -q "^$1 = " "$A"; then sed -i "s|^$1 = .*|$1 = $2|" "$A"
	else sed -i "s|^\[served\]$|[served]\n$1 = $2|" "$A"; fi
	n=$((n + 1))
	kill -HUP "$PID_a_served"
	wait_for "[ \$(grep -c 'configuration reloaded' '$T_TMP/a/served.log') -ge $n ]" 100
}
for v in 7 3 11 5 50 2; do
	hup events_limit $v
	check_eq "events_limit = $v applies" $v "$(curl -s "$U/_fed/v1/events?since=0" | jq '.events|length')"
done
hup max_connections_per_ip 3
R=$(python3 tests/tools/served_attack.py --port "$P" --src 127.0.0.6 --hold 10 --duration 2)
check_eq "max_connections_per_ip = 3: 7 of 10 refused at once" 7 "$(echo "$R" | jq .closed_fast)"
hup max_connections_per_ip 50
R=$(python3 tests/tools/served_attack.py --port "$P" --src 127.0.0.6 --hold 10 --duration 2)
check_eq "max_connections_per_ip = 50: none refused" 0 "$(echo "$R" | jq .closed_fast)"
check_eq "no upstreams: a miss recovers nothing" 0 "$(cat "$T_TMP/up.count")"
hup upstreams "up.test:$PU"
curl -s -o /dev/null "$U/_matrix/federation/v1/event/%24reloadmiss1"
check "upstreams added by reload: the miss is recovered from it" wait_for "[ \$(cat $T_TMP/up.count) -ge 1 ]" 150
hup upstreams "other.test:1"
hup upstreams "up.test:$PU, other.test:1"
sed -i 's/^\[node\]$/[node]\nshared_key = k3y/' "$A"
n=$((n + 1)); kill -HUP "$PID_a_served"
wait_for "[ \$(grep -c 'configuration reloaded' '$T_TMP/a/served.log') -ge $n ]" 100
check_eq "shared_key added by reload: no key, 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$U/_fed/v1/identity")"
check_eq "... with it, 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer k3y' "$U/_fed/v1/identity")"
stop $LOAD
check "served still running after $n reloads" kill -0 "$PID_a_served"
stop "$PID_a_served"
check "no sanitizer report" sh -c "! grep -q 'Sanitizer' '$T_TMP/a/served.log'"
finish
