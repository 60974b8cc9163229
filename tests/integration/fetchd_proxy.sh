#!/bin/sh
# fetchd and HTTP proxies: fetchd reads http_proxy / all_proxy / no_proxy
# from its environment once per server (libcurl's rules) instead of leaving
# curl to read them on every transfer; the behaviour must be curl's. A
# fedpeer plays the proxy (it answers absolute-form requests like any other).
# The variables go to fetchd alone (FD_ENV): the test's own curl calls to
# the peers' stats must stay direct.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 2
ID1=$(sed -n 1p "$FD_DIR/ids")
ID2=$(sed -n 2p "$FD_DIR/ids")
fd_peer real
fd_peer prox
fd_config "server_rate = 0"

unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
PX="http://127.0.0.1:$FD_PORT_prox"
FD_ENV="http_proxy=$PX"
fd_start
fedctl -c "$FD_CONF" fetch event "$ID1" --servers real.test >"$FD_DIR/b1" 2>"$FD_DIR/e1"
check_eq "fetch through http_proxy succeeds" 0 $?
check_eq "the proxy got the request" 1 "$(fd_peer_stat prox requests)"
check_eq "the server was not asked directly" 0 "$(fd_peer_stat real requests)"
check "the proxy saw an absolute-form request for the server" \
	grep -q "GET /_matrix/federation/v1/event/.* target=127.0.0.1:$FD_PORT_real " "$FD_DIR/prox.log"
fd_stop

# all_proxy stands in when there is no http_proxy.
FD_ENV="all_proxy=$PX"
fd_start
fedctl -c "$FD_CONF" fetch event "$ID2" --servers real.test >/dev/null 2>&1
check_eq "all_proxy is used when http_proxy is unset" 2 "$(fd_peer_stat prox requests)"
fd_stop

# no_proxy names hosts that are reached directly.
FD_ENV="http_proxy=$PX all_proxy=$PX no_proxy=127.0.0.1"
fd_start
fedctl -c "$FD_CONF" fetch event "$ID1" --servers real.test >"$FD_DIR/b3" 2>/dev/null
check_eq "no_proxy: fetched directly" 0 $?
check_eq "no_proxy: the server was asked" 1 "$(fd_peer_stat real requests)"
check_eq "no_proxy: the proxy was not" 2 "$(fd_peer_stat prox requests)"
check_eq "the same event through the proxy and directly" "$(jq -c .pdus "$FD_DIR/b1")" "$(jq -c .pdus "$FD_DIR/b3")"
check "a direct request names no target" grep -q "target=- " "$FD_DIR/real.log"
fd_stop

# HTTP_PROXY (upper case) is ignored for http, as curl does (httpoxy).
FD_ENV="HTTP_PROXY=$PX"
fd_start
fedctl -c "$FD_CONF" fetch event "$ID2" --servers real.test >/dev/null 2>&1
check_eq "HTTP_PROXY is not used for http" 2 "$(fd_peer_stat real requests)"
fd_stop
finish
