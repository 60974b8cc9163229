#!/bin/sh
# Issue 13 item 4 (fetchd): with the LMDB map full at its ceiling, fetchd's
# writes (server_health, room_servers) fail, are aborted and reported
# (store_write_failed), and fetchd goes on fetching: health is best effort.
# One warning line for the whole episode, not one per write; when space
# returns, the writes succeed again by themselves.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 6
F=/_matrix/federation/v1
fd_peer good
fd_peer bad "{\"rules\":[{\"path\":\"$F/event/\",\"status\":503,\"body\":\"{}\"}]}"
fd_config "server_rate = 0"
sed -i "s|^\[node\]|[node]\nmap_size = 1M\nmap_size_max = 1M|" "$FD_CONF"
fd_start
id() { sed -n "${1}p" "$FD_DIR/ids"; }
fetch() { fedctl -c "$FD_CONF" fetch event "$@" >"$FD_DIR/out" 2>"$FD_DIR/err"; }

N=$(fetchd_fill "$FD_DIR/state" 1M)
check "the map was filled to its ceiling ($N rows)" [ "${N:-0}" -gt 0 ]
for i in 1 2 3; do fetch "$(id "$i")" --servers bad.test,good.test --room '!room:origin.test'; done
check_eq "fetches still succeed with the store full" 0 $?
check "... with the event" sh -c "jq -e '.pdus[0]' '$FD_DIR/out' >/dev/null"
check "the failed health writes were counted" [ "$(fd_stat health_write_errors)" -ge 2 ]
check_eq "one warning line for all of them" 1 "$(grep -c 'server_health: write failed' "$FD_DIR/fetchd.log")"
check "fetchd is still running" kill -0 "$FD_PID"
check "no server_health row was written" sh -c "! fedctl -c $FD_CONF servers | grep -q '^bad.test'"

# space returns: the map grows (as store_write_failed does) and the filler goes
fetchd_fill "$FD_DIR/state" 4M --free >/dev/null
fetch "$(id 4)" --servers bad.test,good.test
check_eq "a fetch after space returned" 0 $?
check "writes resume by themselves: the bad server's row is there now" \
	wait_for "fedctl -c $FD_CONF servers | grep -q '^bad.test'" 50
check "no read or write error after the map grew" sh -c "! grep -q 'cannot begin\|cannot take' '$FD_DIR/fetchd.log'"
fd_stop
finish
