#!/bin/sh
# Issue 16, "answer what other servers probe": served answers
# GET /.well-known/matrix/server with {"m.server": [served] well_known}
# (application/json, Cache-Control max-age), 404 while unset, changed by a
# SIGHUP; and GET /_matrix/federation/v1/version with
# {"server":{"name":"fedpipe","version":...}}; both with no authorization at
# all, on a node that requires a bearer key and X-Matrix everywhere else. A
# well_known that is not a server name is refused at load (exit 100,
# file:line).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = xmatrix")
sed -i 's/^\[node\]$/[node]\nshared_key = s3cret/' "$A"
node_start a served
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
WK=$U/.well-known/matrix/server
code() { curl -s -o "$T_TMP/body" -D "$T_TMP/hdrs" -w '%{http_code}' "$@"; }
hdr() { tr -d '\r' <"$T_TMP/hdrs" | sed -n "s/^$1: //Ip"; }

# unset: 404, JSON error, no authorization needed to learn that
check_eq "well_known unset: 404" 404 "$(code "$WK")"
check_eq "well_known unset: M_NOT_FOUND" M_NOT_FOUND "$(jq -r .errcode "$T_TMP/body")"
# the control: everything else still wants the key
check_eq "the control: /_fed/v1/identity without the key is 401" 401 "$(code "$U/_fed/v1/identity")"
check_eq "the control: /_matrix/federation/v1/event without X-Matrix is 401" 401 \
	"$(code "$U/_matrix/federation/v1/event/%24x")"

# version: open, the documented shape
check_eq "version: 200 without authorization" 200 "$(code "$U/_matrix/federation/v1/version")"
check_eq "version: server.name" fedpipe "$(jq -r .server.name "$T_TMP/body")"
check "version: server.version is a non-empty string" \
	sh -c "jq -e '.server.version | type == \"string\" and length > 0' $T_TMP/body >/dev/null"
check_eq "version: application/json" application/json "$(hdr content-type)"
check_eq "version: POST is 405" 405 "$(code -X POST "$U/_matrix/federation/v1/version")"

# set it, SIGHUP: the delegation is answered
n=$(grep -c 'configuration reloaded' "$T_TMP/a/served.log")
sed -i "s/^matrix_auth = xmatrix$/matrix_auth = xmatrix\nwell_known = fed.example.org:8443/" "$A"
kill -HUP "$PID_a_served"
wait_for "[ \$(grep -c 'configuration reloaded' '$T_TMP/a/served.log') -gt $n ]" 100
check_eq "well_known set: 200 without authorization" 200 "$(code "$WK")"
check_eq "well_known set: the body" '{"m.server":"fed.example.org:8443"}' "$(cat "$T_TMP/body")"
check_eq "well_known set: application/json" application/json "$(hdr content-type)"
check "well_known set: Cache-Control max-age ($(hdr cache-control))" sh -c "echo '$(hdr cache-control)' | grep -Eq '^max-age=[0-9]+$'"
check_eq "well_known: POST is 405" 405 "$(code -X POST "$WK")"
check_eq "well_known: only the exact path is open (a path below it wants the key: 401)" 401 "$(code "$WK/x")"

# an IPv6 literal delegation, then back to unset
n=$(grep -c 'configuration reloaded' "$T_TMP/a/served.log")
sed -i "s/^well_known = .*/well_known = [2001:db8::1]:8448/" "$A"
kill -HUP "$PID_a_served"
wait_for "[ \$(grep -c 'configuration reloaded' '$T_TMP/a/served.log') -gt $n ]" 100
code "$WK" >/dev/null
check_eq "well_known = [2001:db8::1]:8448 answered as written" "[2001:db8::1]:8448" "$(jq -r '."m.server"' "$T_TMP/body")"
n=$(grep -c 'configuration reloaded' "$T_TMP/a/served.log")
sed -i "/^well_known = /d" "$A"
kill -HUP "$PID_a_served"
wait_for "[ \$(grep -c 'configuration reloaded' '$T_TMP/a/served.log') -gt $n ]" 100
check_eq "well_known removed: 404 again" 404 "$(code "$WK")"

# a value that is not a server name: the file is refused, naming file:line
for bad in "https://fed.example.org" "fed.example.org/x" "fed.example.org:99999" "a b" '"fed.example.org"' "fed.example.org:" "::1"; do
	printf '[node]\nserver_name = a.test\n[served]\nwell_known = %s\n' "$bad" >"$T_TMP/bad.conf"
	served -c "$T_TMP/bad.conf" -n >/dev/null 2>"$T_TMP/bad.err"
	rc=$?
	check_eq "well_known = $bad: exit 100" 100 "$rc"
	check "well_known = $bad: file:line and what is accepted ($(head -c 200 "$T_TMP/bad.err"))" \
		grep -q "bad.conf:4: \[served\] well_known = .* is not a server name" "$T_TMP/bad.err"
done
# and at a reload the running answer stays
n=$(grep -c 'keeping the running configuration' "$T_TMP/a/served.log")
echo "well_known = not a name" >>"$A"
kill -HUP "$PID_a_served"
wait_for "[ \$(grep -c 'keeping the running configuration' '$T_TMP/a/served.log') -gt $n ]" 100
check "a bad well_known at reload is logged and refused" grep -q "well_known = 'not a name' is not a server name" "$T_TMP/a/served.log"
check_eq "served keeps answering (404: the running configuration has none)" 404 "$(code "$WK")"
finish
