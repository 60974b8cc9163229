#!/bin/sh
# fetchd signs its federation requests (X-Matrix), checked by Synapse's own
# library: tests/tools/xmatrix_peer.py answers a request only if its
# Authorization header verifies with python3-signedjson against fetchd's
# public key (read from fetchd's signing key file), with origin fetchd's
# [node] server_name and destination the peer's own server name; else 401
# M_UNAUTHORIZED. fetchd fetches every op through it (the POST with its
# body signed as content), the destination is the server name as the
# request names it (a port included, never the endpoint address), and the
# key endpoints go unsigned (GET /_matrix/key/v2/server from the server
# itself, POST /_matrix/key/v2/query from anyone else). Every header
# seen is recorded: all values quoted, names lower-case, destination
# present. Against a fetchd that does not sign, every fetch gets 401.
# An unreadable signing key stops fetchd at start (exit 100, naming it).
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

PY=/usr/bin/python3
if ! $PY -c 'import signedjson.key, signedjson.sign' 2>/dev/null; then
	echo "ok 1 - python3-signedjson missing # SKIP"
	finish
	exit 0
fi

fd_events 3
id() { sed -n "${1}p" "$FD_DIR/ids"; }
R='!room:xm.test'   # no other server named in the room ID

# xm_peer TAG NAME: a verifying peer answering as NAME; port in $XP_<TAG>.
xm_peer() {
	bg $PY tests/tools/xmatrix_peer.py --name "$2" --origin self.test --key "$FD_DIR/origin.key" \
		--events "$FD_DIR/ev.jsonl" --ids "$FD_DIR/ids" --port-file "$FD_DIR/$1.port" \
		--log "$FD_DIR/$1.jsonl" 2>>"$FD_DIR/$1.log"
	wait_for "[ -s $FD_DIR/$1.port ]" 100
	eval "XP_$1=\$(cat $FD_DIR/$1.port)"
}
xm_peer a xm.test
xm_peer b 'xmp.test:8448'
xm_peer c keyed.test
xm_peer d pfx.test
FD_SERVERS="
[server xm.test]
endpoint = http://127.0.0.1:$XP_a
[server xmp.test:8448]
endpoint = http://127.0.0.1:$XP_b
[server alias.test]
endpoint = http://127.0.0.1:$XP_a
[server pfx.test]
endpoint = http://127.0.0.1:$XP_d/fed/prefix/
[server keyed.test]
endpoint = http://127.0.0.1:$XP_c
key = s3cret
"
fd_config "server_rate = 0
backoff_grace = 100
[node]
trusted_key_servers = xm.test"
fd_start
fetch() { fedctl -c "$FD_CONF" fetch "$@" >"$FD_DIR/out" 2>"$FD_DIR/err"; }

fetch event "$(id 1)" --servers xm.test
check_eq "event fetched through a peer that verifies X-Matrix" "0 xm.test" "$? $(tail -1 "$FD_DIR/err")"
check "and the event's bytes came back" grep -q '"message 0"' "$FD_DIR/out"
fetch state_ids "$(id 1)" --room "$R" --servers xm.test
check_eq "state_ids fetched (a signed query string)" "0 xm.test" "$? $(tail -1 "$FD_DIR/err")"
fetch auth_chain "$(id 2)" --room "$R" --servers xm.test
check_eq "auth_chain fetched" "0 xm.test" "$? $(tail -1 "$FD_DIR/err")"
# fetchd keeps a plain GET's handle and its parsed URL for the next
# request to the server: only path and query are set anew. The query of
# state_ids must not stay on the next request (nor in what is signed).
check_eq "auth_chain after state_ids on the same server: its target has no query left over" \
	"/_matrix/federation/v1/event_auth/$(printf '%s' "$R" | sed 's/!/%21/; s/:/%3a/')/$(id 2 | sed 's/\$/%24/') ok" \
	"$(jq -r 'select(.target | startswith("/_matrix/federation/v1/event_auth/")) | .target + " " + .verdict' "$FD_DIR/a.jsonl")"
fetch missing_events "$(id 3)" --room "$R" --servers xm.test --earliest "$(id 1)" --limit 5
check_eq "missing_events fetched (POST: its body signed as content)" "0 xm.test" "$? $(tail -1 "$FD_DIR/err")"
fetch backfill "$(id 3)" --room "$R" --servers xm.test --limit 2
check_eq "backfill fetched (v= and limit in the query)" "0 xm.test" "$? $(tail -1 "$FD_DIR/err")"
fetch event "$(id 2)" --servers 'xmp.test:8448'
check_eq "a server name with a port: fetched (destination keeps the port)" "0 xmp.test:8448" \
	"$? $(tail -1 "$FD_DIR/err")"

# alias.test's endpoint is xm.test's server: the request says destination
# alias.test (the name it is for), which xm.test refuses as not its own.
fetch event "$(id 1)" --servers alias.test
rc=$?
check "a request for alias.test is refused by the server at its address (exit $rc)" [ "$rc" -ne 0 ]
check "with HTTP 401" grep -q "http 401" "$FD_DIR/err"
check "because the destination named alias.test" grep -q "destination 'alias.test', I am 'xm.test'" "$FD_DIR/a.log"

# A server with a bearer key gets both: the bearer first (served reads the
# first Authorization header), the X-Matrix header after it.
fetch event "$(id 1)" --servers keyed.test
check_eq "keyed.test: fetched, the X-Matrix header verified" "0 ok" \
	"$? $(jq -r .verdict "$FD_DIR/c.jsonl" | sort -u)"
check_eq "keyed.test: Bearer first, X-Matrix second" "Bearer s3cret|X-Matrix" \
	"$(jq -r '.authorization | .[0] + "|" + (.[1] | split(" ")[0])' "$FD_DIR/c.jsonl")"
fetch missing_events "$(id 3)" --room "!room:keyed.test" --servers keyed.test --earliest "$(id 1)" --limit 5
check_eq "keyed.test: a POST (its own header list) too: bearer first, verified" "0 Bearer s3cret|X-Matrix ok" \
	"$? $(jq -r 'select(.method == "POST") | (.authorization | .[0] + "|" + (.[1] | split(" ")[0])) + " " + .verdict' "$FD_DIR/c.jsonl")"

# An endpoint with a path of its own: the signed uri is the whole target
# sent, prefix included (the peer, knowing no such prefix, answers 404).
fetch event "$(id 1)" --servers pfx.test
check_eq "pfx.test: the target sent under the endpoint's prefix was what was signed" \
	"/fed/prefix/_matrix/federation/v1/event/$(id 1 | sed 's/\$/%24/') ok" \
	"$(jq -r '.target + " " + .verdict' "$FD_DIR/d.jsonl")"

J="$FD_DIR/a.jsonl $FD_DIR/b.jsonl"
fed() { cat $J | jq -c 'select(.target | startswith("/_matrix/federation/"))'; }
check_eq "xm.test and xmp.test:8448 saw the fetches (event, state_ids, auth, missing, backfill, event, alias)" 7 \
	"$(fed | wc -l)"
check_eq "every one verified by signedjson but the alias one" 6 "$(fed | jq -r .verdict | grep -c '^ok$')"
check_eq "every one had exactly one Authorization header" 7 "$(fed | jq '.authorization | length' | grep -c '^1$')"
check_eq "every value quoted, every name lower-case" 7 "$(fed | jq 'select(.all_quoted and .all_lower)' | jq -s length)"
check_eq "origin, destination, key and sig in each" 7 \
	"$(fed | jq 'select(.params | has("origin") and has("destination") and has("key") and has("sig"))' | jq -s length)"
check_eq "destination with its port at xmp.test:8448" '"xmp.test:8448"' \
	"$(jq -c 'select(.target | startswith("/_matrix/federation/")) | .params.destination' "$FD_DIR/b.jsonl")"
check_eq "the POST was signed and verified" ok \
	"$(jq -r 'select(.method == "POST") | .verdict' "$FD_DIR/a.jsonl")"

# Keys: the server's own document from itself, another's from a notary
# (the query form); neither is signed.
fetch server_keys xm.test
fetch server_keys origin.test --servers xm.test
check_eq "server_keys for xm.test: GET /_matrix/key/v2/server at xm.test" 1 \
	"$(jq -r 'select(.target == "/_matrix/key/v2/server") | .method' "$FD_DIR/a.jsonl" | grep -c GET)"
check_eq "server_keys for origin.test asked of xm.test (a trusted notary): POST /_matrix/key/v2/query" 1 \
	"$(jq -r 'select(.target == "/_matrix/key/v2/query") | .method' "$FD_DIR/a.jsonl" | grep -c POST)"
check_eq "the key endpoints got no Authorization header" 0 \
	"$(jq 'select(.target | startswith("/_matrix/key/")) | .authorization | length' "$FD_DIR/a.jsonl" | grep -vc '^0$')"
fd_stop

# An unreadable signing key: fetchd does not start, exit 100, says which file.
sed "s|^signing_key = .*|signing_key = $FD_DIR/nokey|" "$FD_CONF" >"$FD_DIR/nokey.conf"
timeout 20 fetchd -c "$FD_DIR/nokey.conf" -d 2>"$FD_DIR/nokey.err"
rc=$?
check_eq "a missing signing key: exit 100" 100 "$rc"
check "and the error names [node] signing_key and the file" \
	grep -q "signing_key.*$FD_DIR/nokey" "$FD_DIR/nokey.err"
printf 'ed25519 a_x notbase64!!\n' >"$FD_DIR/bad.key"
sed "s|^signing_key = .*|signing_key = $FD_DIR/bad.key|" "$FD_CONF" >"$FD_DIR/bad.conf"
timeout 20 fetchd -c "$FD_DIR/bad.conf" -d 2>"$FD_DIR/bad.err"
check_eq "a malformed signing key: exit 100" 100 "$?"
check "and the error names the file" grep -q "$FD_DIR/bad.key" "$FD_DIR/bad.err"
finish
