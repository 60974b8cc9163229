#!/bin/sh
# fetchd per-server backoff in LMDB server_health: grows with the failure
# streak (window x streak^2, a single failure only deprioritizes), survives a
# restart of fetchd, `fedctl servers wake` clears it, a 404 does not count,
# success clears it, HTTP 410 backs off for the maximum at once.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 8
EV='/_matrix/federation/v1/event/'
fd_peer bad "{\"rules\":[{\"path\":\"$EV\",\"status\":503,\"body\":\"{}\"}]}"
fd_peer good
fd_peer nf "{\"rules\":[{\"path\":\"$EV\",\"status\":404,\"body\":\"{}\"}]}"
fd_peer flaky "{\"rules\":[{\"path\":\"$EV\",\"status\":500,\"body\":\"{}\",\"times\":2}]}"
fd_peer gone "{\"rules\":[{\"path\":\"$EV\",\"status\":410,\"body\":\"{}\"}]}"
fd_config "server_rate = 0
backoff_window = 10s"
fd_start
id() { sed -n "$1p" "$FD_DIR/ids"; }
srv() { fedctl -c "$FD_CONF" --json servers | jq -r ".[] | select(.server==\"$1\") | .$2"; }
fetch() { fedctl -c "$FD_CONF" fetch event "$@" >/dev/null 2>"$FD_DIR/err"; }

fetch "$(id 1)" --servers bad.test
check_eq "1st failure: streak 1" 1 "$(srv bad.test record.streak)"
check_eq "1st failure: only deprioritized (grace)" deprioritized "$(srv bad.test state)"
fetch "$(id 2)" --servers bad.test
check_eq "2nd failure: streak 2" 2 "$(srv bad.test record.streak)"
check_eq "2nd failure: backed off" backed-off "$(srv bad.test state)"
b2=$(srv bad.test backoff_s)
fetch "$(id 3)" --servers bad.test
check_eq "a backed-off server is still used when nothing else is left" 3 "$(fd_peer_stat bad requests)"
b3=$(srv bad.test backoff_s)
check "backoff grows with the streak ($b2 s -> $b3 s)" [ "$b3" -gt "$b2" -a "$b3" -gt 60 -a "$b3" -le 90 ]

fd_stop
fd_start
fetch "$(id 4)" --servers bad.test,good.test
check_eq "after a restart: answered by good" good.test "$(tail -1 "$FD_DIR/err")"
check_eq "after a restart: the backed-off server is skipped" 3 "$(fd_peer_stat bad requests)"
check_eq "streak survived the restart" 3 "$(srv bad.test record.streak)"

fedctl -c "$FD_CONF" servers wake bad.test >/dev/null
check_eq "wake clears the record" "" "$(srv bad.test state)"
fetch "$(id 5)" --servers bad.test,good.test
check_eq "after wake: bad asked first again" 4 "$(fd_peer_stat bad requests)"
check_eq "after wake: good still answers" good.test "$(tail -1 "$FD_DIR/err")"

fetch '$nothere' --servers nf.test
check "404 answered not_found" grep -q not_found "$FD_DIR/err"
check_eq "a 404 does not count against the server" "" "$(srv nf.test state)"

fetch "$(id 6)" --servers flaky.test
fetch "$(id 6)" --servers flaky.test
check_eq "flaky backed off after two 500s" backed-off "$(srv flaky.test state)"
fetch "$(id 6)" --servers flaky.test
check_eq "flaky answered the third time" flaky.test "$(tail -1 "$FD_DIR/err")"
check_eq "success clears the streak" "0 ok" "$(srv flaky.test record.streak) $(srv flaky.test state)"

fetch "$(id 7)" --servers gone.test
check "HTTP 410: backed off for ~24 h at once" [ "$(srv gone.test backoff_s)" -gt 86000 ]
fedctl -c "$FD_CONF" servers >"$FD_DIR/table"
check "fedctl servers lists them" grep -q "^gone.test .*backed-off" "$FD_DIR/table"
finish
