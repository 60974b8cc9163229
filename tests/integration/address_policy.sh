#!/bin/sh
# Issue 16, address policy: fetchd never connects a server the configuration
# does not name to an address of [fetchd] ip_range_deny (default: Synapse's
# federation blocklist, core/iprange.h), checked on the address curl is
# about to connect to (open_cb), in every spelling (IPv4, ::1, IPv4-mapped,
# IPv4-compatible, a name resolving there). The attack: ask fetchd for an
# event from servers whose names lead to loopback listeners; the listeners
# count accepts. A refused address fails as address_denied, in the caller's
# answer and in `fedctl servers`. ip_range_allow (reloaded on SIGHUP) opens a
# range; a [server NAME] section is exempt; a bad range in the file exits 100
# naming file:line.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

bg python3 tests/tools/fetchd_listener.py 0 "$FD_DIR/v4.log"
bg python3 tests/tools/fetchd_listener.py 0 "$FD_DIR/v6.log" ::1
wait_for "[ -s $FD_DIR/v4.log.port ] && [ -s $FD_DIR/v6.log.port ]" 50 ||
	{ not_ok "listeners did not start"; finish; exit 1; }
P4=$(cat "$FD_DIR/v4.log.port")
P6=$(cat "$FD_DIR/v6.log.port")
accepts() { grep -c '^accept' "$FD_DIR/$1.log"; }
# a [server NAME] section the operator wrote: exempt, whatever its address
FD_SERVERS="
[server named.test]
endpoint = https://127.0.0.1:$P4
"
EXTRA="server_rate = 0
backoff_grace = 1000
connect_timeout = 2s
request_timeout = 3s"
fd_config "$EXTRA"
fd_start

# fetch NAME: one event fetch from that server only; stderr in $FD_DIR/why
fetch() { fedctl -c "$FD_CONF" fetch event "\$x" --servers "$1" >/dev/null 2>"$FD_DIR/why"; }
health() { fedctl -c "$FD_CONF" --json servers | jq -r --arg s "$1" '.[] | select(.server == $s) | .record.last_error'; }

# 1. default policy: every spelling of loopback is refused before connecting
for n in "127.0.0.1:$P4" "localhost:$P4" "[::ffff:127.0.0.1]:$P4" "[::ffff:7f00:1]:$P4" \
	"[::127.0.0.1]:$P4" "127.0.0.2:$P4" "[::1]:$P6" "localhost:$P6"; do
	fetch "$n"
	check "default: $n refused as address_denied" grep -q "address_denied" "$FD_DIR/why"
done
check_eq "default: the IPv4 loopback listener saw no connection" 0 "$(accepts v4)"
check_eq "default: the IPv6 loopback listener saw no connection" 0 "$(accepts v6)"
check "default: the refusals were counted" [ "$(fd_stat denied_addresses)" -ge 8 ]
wait_for "[ -n \"\$(health 127.0.0.1:$P4)\" ]" 50
check "fedctl servers shows address_denied and the range (127.0.0.1:$P4: $(health "127.0.0.1:$P4"))" \
	sh -c "fedctl -c $FD_CONF servers | grep '^127.0.0.1:$P4 ' | grep -q 'address_denied: 127.0.0.1 in 127.0.0.0/8'"
check "fedctl servers: the mapped form names the range it fell in ($(health "[::ffff:127.0.0.1]:$P4"))" \
	sh -c "fedctl -c $FD_CONF --json servers | grep -q 'address_denied: ::ffff:127.0.0.1 in 127.0.0.0/8'"
check "fedctl servers: ::1 refused by ::1/128 ($(health "[::1]:$P6"))" \
	sh -c "fedctl -c $FD_CONF --json servers | grep -q 'address_denied: ::1 in ::1/128'"
check "fetchd's log says why" grep -q "failed: address_denied" "$FD_DIR/fetchd.log"

# 2. a [server NAME] section is exempt: the operator named it
fetch named.test
wait_for "[ \$(grep -c '^accept' $FD_DIR/v4.log) -ge 1 ]" 50
check_eq "[server named.test] (127.0.0.1) is connected to" 1 "$(accepts v4)"
check "and its failure is not address_denied" sh -c "! grep -q address_denied $FD_DIR/why"

# 3. ip_range_allow = 127.0.0.0/8, by SIGHUP: loopback IPv4 reachable, ::1 still not
fd_config "$EXTRA
ip_range_allow = 127.0.0.0/8"
kill -HUP "$FD_PID"
wait_for "grep -q 'fetchd: reloaded' $FD_DIR/fetchd.log" 50
before=$(accepts v4)
fetch "127.0.0.1:$P4"
wait_for "[ \$(grep -c '^accept' $FD_DIR/v4.log) -gt $before ]" 50
check_eq "allow 127.0.0.0/8: 127.0.0.1 is reached" $((before + 1)) "$(accepts v4)"
check "allow 127.0.0.0/8: that failure is not address_denied" sh -c "! grep -q address_denied $FD_DIR/why"
fetch "[::ffff:127.0.0.1]:$P4"
wait_for "[ \$(grep -c '^accept' $FD_DIR/v4.log) -gt $((before + 1)) ]" 50
check_eq "allow 127.0.0.0/8: ::ffff:127.0.0.1 is the same address, reached" $((before + 2)) "$(accepts v4)"
fetch "[::1]:$P6"
check "allow 127.0.0.0/8: ::1 still refused" grep -q "address_denied" "$FD_DIR/why"
check_eq "allow 127.0.0.0/8: the IPv6 listener still saw nothing" 0 "$(accepts v6)"
fetch "10.255.255.1:$P4"
check "allow 127.0.0.0/8: 10.255.255.1 still refused" grep -q "address_denied: 10.255.255.1 in 10.0.0.0/8" "$FD_DIR/why"

# 4. a reload with a bad range is refused and the running policy stays
printf '[node]\nserver_name = self.test\nstate_dir = %s/state\nrun_dir = %s/run\nsigning_key = %s/origin.key\n[fetchd]\nip_range_allow = 127.0.0.0/8\n  ::1/129\n' \
	"$FD_DIR" "$FD_DIR" "$FD_DIR" >"$FD_CONF"
cp "$FD_CONF" "$FD_DIR/bad-reload.conf"
kill -HUP "$FD_PID"
wait_for "grep -q '::1/129' $FD_DIR/fetchd.log" 50
fd_config "$EXTRA
ip_range_allow = 127.0.0.0/8"      # for fedctl below; fetchd is not told
check "a bad range at reload is logged with file:line" grep -q "fetchd.conf:8:.*'::1/129': prefix length 129 is above 128" "$FD_DIR/fetchd.log"
check "fetchd still runs" kill -0 "$FD_PID"
before=$(accepts v4)
fetch "[::1]:$P6"
check "the previous policy stays: ::1 refused" grep -q "address_denied" "$FD_DIR/why"
fetch "127.0.0.1:$P4"
wait_for "[ \$(grep -c '^accept' $FD_DIR/v4.log) -gt $before ]" 50
check_eq "the previous policy stays: 127.0.0.1 allowed" $((before + 1)) "$(accepts v4)"
fd_stop

# 5. a bad range in the file: exit 100 naming file:line and the item
for bad in "10.0.0.1/8" "127.0.0.0/33" "localhost" "::ffff:127.0.0.0/8" "fe80::1%lo"; do
	printf '[node]\nserver_name = self.test\nsigning_key = %s/origin.key\n\n[fetchd]\nip_range_deny = 127.0.0.0/8, %s\n' \
		"$FD_DIR" "$bad" >"$FD_DIR/bad.conf"
	fetchd -c "$FD_DIR/bad.conf" -n >/dev/null 2>"$FD_DIR/bad.err"
	rc=$?
	check_eq "ip_range_deny with '$bad': exit 100" 100 "$rc"
	check "ip_range_deny with '$bad': names file:line and the item ($(head -c 300 "$FD_DIR/bad.err"))" \
		grep -q "bad.conf:6: \[fetchd\] ip_range_deny = .*'$bad'" "$FD_DIR/bad.err"
done
finish
