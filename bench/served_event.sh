#!/bin/sh
# bench/served_event.sh: served's GET /_matrix/federation/v1/event/{id}
# (matrix_auth = open) beside nginx serving the same response bytes as a
# static file, one worker each, wrk -t2 -c32, in the same run, in
# SERVED_EVENT_ROUNDS (default 3) alternating rounds of SERVED_EVENT_SECONDS
# (default 5); medians. Goal (issue 19): served >= 0.75 of nginx. Skipped
# (with a line saying so) when nginx is not installed.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
DUR=${SERVED_EVENT_SECONDS:-5}
R=${SERVED_EVENT_ROUNDS:-3}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "served_event: nginx not installed; skipped"; exit 0; }
PA=$(free_port); PN=$(free_port)
A=$(node_config a "$PA" "[served]
matrix_auth = open")
served_fill -c "$A" -N 999 -s 820 -o "$T_TMP/a.ids" >/dev/null || exit 1
node_start a served
wait_for "http_up http://127.0.0.1:$PA/healthz" || exit 1
ID=$(sed -n 500p "$T_TMP/a.ids" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
URL="http://127.0.0.1:$PA/_matrix/federation/v1/event/$ID"
mkdir -p "$T_TMP/ngx/www" "$T_TMP/ngx/tmp"
curl -sf "$URL" >"$T_TMP/ngx/www/event.json" || { echo "served_event: no answer from served"; exit 1; }
cat >"$T_TMP/ngx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $T_TMP/ngx/nginx.pid;
error_log $T_TMP/ngx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 1000000;
	client_body_temp_path $T_TMP/ngx/tmp;
	proxy_temp_path $T_TMP/ngx/tmp;
	fastcgi_temp_path $T_TMP/ngx/tmp;
	uwsgi_temp_path $T_TMP/ngx/tmp;
	scgi_temp_path $T_TMP/ngx/tmp;
	types { application/json json; }
	server {
		listen 127.0.0.1:$PN;
		root $T_TMP/ngx/www;
	}
}
CONF
bg "$NGINX" -p "$T_TMP/ngx" -c "$T_TMP/ngx/nginx.conf"
wait_for "http_up http://127.0.0.1:$PN/event.json" || { echo "served_event: nginx did not start"; cat "$T_TMP/ngx/error.log"; exit 1; }
rps() { wrk -t2 -c32 -d"${DUR}s" "$1" 2>/dev/null | sed -n 's/^Requests\/sec: *//p'; }
: >"$T_TMP/rounds"
i=0
while [ $i -lt "$R" ]; do
	echo "served $(rps "$URL")" >>"$T_TMP/rounds"
	echo "nginx $(rps "http://127.0.0.1:$PN/event.json")" >>"$T_TMP/rounds"
	i=$((i + 1))
done
BYTES=$(wc -c <"$T_TMP/ngx/www/event.json" | tr -d ' ')
sort -k1,1 -k2,2n "$T_TMP/rounds" | awk -v by="$BYTES" -v r="$R" '
	{ n[$1]++; v[$1, n[$1]] = $2 }
	END {
		s = v["served", int((n["served"] + 1) / 2)]; g = v["nginx", int((n["nginx"] + 1) / 2)]
		printf "served /event/{id} vs nginx, same %d-byte answer, one worker each, wrk -t2 -c32, median of %d rounds\n", by, r
		printf "%-44s %12s %9s\n", "server", "req/s", "ratio"
		printf "%-44s %12.0f %8.2fx\n", "nginx, static file", g, 1
		printf "%-44s %12.0f %8.2fx   (goal >= 0.75)\n", "served GET /_matrix/federation/v1/event/{id}", s, (g ? s / g : 0)
	}'
