#!/bin/sh
# fetchd coalescing: 1,000 concurrent callers of one event -> exactly one
# upstream request and 1,000 identical answers; the coalescing key folds the
# op (event vs auth_event are separate fetches) and sorts ID windows.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 3
ID=$(sed -n 1p "$FD_DIR/ids")
fd_peer slow '{"rules":[{"path":"/_matrix/federation/v1/event/","mode":"events","delay_ms":1500},{"path":"/_matrix/federation/v1/get_missing_events/","status":404,"body":"{}","delay_ms":1500}]}'
fd_config "server_rate = 0"
fd_start

out=$(fetchd_client -s "$FD_SOCK" -n 1000 -c 1000 -r "{\"op\":\"event\",\"event_id\":\"$ID\",\"servers\":[\"slow.test\"]}")
diag "$out"
case "$out" in *"replies=1000 ok=1000 distinct=1 "*) ok "1000 callers: 1000 ok answers, all identical" ;;
	*) not_ok "1000 callers: 1000 identical ok answers ($out)" ;; esac
check_eq "exactly one upstream request" 1 "$(fd_peer_stat slow requests)"
check_eq "fetchd counted one upstream request" 1 "$(fd_stat upstream_requests)"
check_eq "999 callers coalesced" 999 "$(fd_stat coalesced)"

# Same event over a different op: a separate fetch (one more upstream request).
out=$(fetchd_client -s "$FD_SOCK" -n 50 -r "{\"op\":\"auth_event\",\"event_id\":\"$ID\",\"servers\":[\"slow.test\"]}")
case "$out" in *"replies=50 ok=50 distinct=1 "*) ok "auth_event callers coalesced among themselves" ;;
	*) not_ok "auth_event callers ($out)" ;; esac
check_eq "auth_event is its own fetch" 2 "$(fd_peer_stat slow requests)"

# A window of IDs in any order is one key (missing_events: the peer has no
# rule for it, so it is a 404 -> not_found, but still one upstream request).
fetchd_client -s "$FD_SOCK" -n 20 -r '{"op":"missing_events","room_id":"!room:origin.test","events":["$b","$a"],"servers":["slow.test"]}' >"$FD_DIR/w1" &
W1=$!
fetchd_client -s "$FD_SOCK" -n 20 -r '{"op":"missing_events","room_id":"!room:origin.test","events":["$a","$b"],"servers":["slow.test"]}' >"$FD_DIR/w2"
wait $W1
check_eq "window order does not split the key" 3 "$(fd_peer_stat slow requests)"
case "$(cat "$FD_DIR/w2")" in *"err_not_found=20"*) ok "missing_events answered not_found" ;;
	*) not_ok "missing_events answered not_found ($(cat "$FD_DIR/w2"))" ;; esac

# A new request after the fetch finished is a new fetch (no stale cache).
out=$(fetchd_client -s "$FD_SOCK" -n 1 -r "{\"op\":\"event\",\"event_id\":\"$ID\",\"servers\":[\"slow.test\"]}")
case "$out" in *"ok=1 "*) ok "a later request fetches again" ;; *) not_ok "later request ($out)" ;; esac
check_eq "and goes upstream once more" 4 "$(fd_peer_stat slow requests)"
finish
