#!/bin/sh
# Issue 13 item 10 (fetchd): a peer's bearer key goes only to that peer's
# endpoint (same scheme, host and port), never to a server that merely
# carries the peer's name, and never along a redirect (fetchd follows none).
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 3
F=/_matrix/federation/v1
ID1=$(sed -n 1p "$FD_DIR/ids"); ID2=$(sed -n 2p "$FD_DIR/ids"); ID3=$(sed -n 3p "$FD_DIR/ids")
fd_peer c
fd_peer a "{\"rules\":[{\"path\":\"$F/event/$(printf '%s' "$ID3" | sed 's/\$/%24/')\",\"match\":\"exact\",\"status\":302,\"body\":\"{}\",\"location\":\"http://127.0.0.1:$FD_PORT_c$F/event/x\"}]}"
fd_peer b
KEY=SECRET-ALPHA-KEY-1234
FD_SERVERS="$FD_SERVERS
[peer alpha]
endpoint = http://127.0.0.1:$FD_PORT_a/
key = $KEY

[server alpha]
endpoint = http://127.0.0.1:$FD_PORT_b
"
fd_config "server_rate = 0"
fd_start

fedctl -c "$FD_CONF" fetch event "$ID1" --servers a.test >/dev/null 2>&1
check_eq "the peer's own endpoint is fetched from" 0 $?
check "the peer's endpoint gets the peer's key" grep -q "auth=Bearer $KEY" "$FD_DIR/a.log"
fedctl -c "$FD_CONF" fetch event "$ID2" --servers alpha >/dev/null 2>&1
check_eq "a server named like the peer (another endpoint) answers" 0 $?
check "... and got a request" grep -q "GET $F/event/" "$FD_DIR/b.log"
check "... without the peer's key" sh -c "! grep -q '$KEY' '$FD_DIR/b.log'"
fedctl -c "$FD_CONF" fetch event "$ID2" --servers b.test >/dev/null 2>&1
check "another loopback listener never sees the key" sh -c "! grep -q '$KEY' '$FD_DIR/b.log'"
fedctl -c "$FD_CONF" fetch event "$ID3" --servers a.test >/dev/null 2>"$FD_DIR/redir.err"
check "a redirect from the peer's endpoint is an error, not followed" grep -q "http 302" "$FD_DIR/redir.err"
check_eq "the redirect target got no request" 0 "$(fd_peer_stat c requests)"
check "the key was sent to the endpoint itself" [ "$(grep -c "auth=Bearer $KEY" "$FD_DIR/a.log")" -ge 2 ]
fd_stop
finish
