#!/bin/sh
# fetchd cancellation and revival: a caller that cancels (FT_CANCEL) or
# disconnects drops its interest; with no caller left the fetch stops at the
# next attempt boundary (the next server is never asked); an identical
# request during the wind-down revives the fetch instead.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 3
EV='/_matrix/federation/v1/event/'
fd_peer slowfail "{\"rules\":[{\"path\":\"$EV\",\"status\":404,\"body\":\"{}\",\"delay_ms\":2500}]}"
fd_peer good
fd_config "server_rate = 0
"
fd_start
req() { echo "{\"op\":\"event\",\"event_id\":\"$(sed -n "$1p" "$FD_DIR/ids")\",\"servers\":[\"slowfail.test\",\"good.test\"]}"; }
done_count() { grep -c "done req=" "$FD_DIR/slowfail.log"; }

# 1. Cancel: the caller gets "cancelled", the fetch winds down after slowfail.
out=$(fetchd_client -s "$FD_SOCK" -n 3 -c 1 --cancel-after 300 -r "$(req 1)")
case "$out" in *"replies=3 ok=0 distinct=0 err_cancelled=3 "*) ok "cancelling callers get cancelled" ;;
	*) not_ok "cancelled replies ($out)" ;; esac
check "slowfail finished its attempt" wait_for '[ "$(done_count)" -ge 1 ]' 100
sleep 0.5
check_eq "no caller left: the next server is never asked" 0 "$(fd_peer_stat good requests)"
check_eq "nothing left in flight" 0 "$(fedctl -c "$FD_CONF" --json stats fetchd | jq .fetchd.gauges.inflight)"

# 2. Disconnect: same, by closing the connection.
fetchd_client -s "$FD_SOCK" -n 2 -c 1 --close-after 300 -r "$(req 2)" >/dev/null
check "slowfail finished its attempt" wait_for '[ "$(done_count)" -ge 2 ]' 100
sleep 0.5
check_eq "disconnected: the next server is never asked" 0 "$(fd_peer_stat good requests)"

# 3. Revival: cancel, then an identical request while slowfail still works.
fetchd_client -s "$FD_SOCK" -n 1 -c 1 --cancel-after 200 -r "$(req 3)" >"$FD_DIR/c1" &
C1=$!
sleep 1
out=$(fetchd_client -s "$FD_SOCK" -n 5 -r "$(req 3)")
wait $C1
case "$(cat "$FD_DIR/c1")" in *"err_cancelled=1"*) ok "first caller cancelled" ;; *) not_ok "first caller cancelled ($(cat "$FD_DIR/c1"))" ;; esac
case "$out" in *"replies=5 ok=5 distinct=1 "*) ok "revived fetch answers the new callers" ;; *) not_ok "revival ($out)" ;; esac
check_eq "revived, not restarted: slowfail asked 3 times in all" 3 "$(fd_peer_stat slowfail requests)"
check_eq "the good server asked once" 1 "$(fd_peer_stat good requests)"
check_eq "fetchd counted the revival" 1 "$(fd_stat revived)"
finish
