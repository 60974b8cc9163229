#!/bin/sh
# syncd signs its /_fed/v1 requests (X-Matrix), checked by Synapse's own
# library: tests/tools/xmatrix_peer.py verifies each request with
# python3-signedjson against syncd's public key (its node's signing key
# file), origin = the node's server_name, destination = the peer's [peer]
# server_name, or, with none configured and none pinned, the endpoint's
# host:port; a [peer] key is still sent as the bearer (first), the X-Matrix
# header after it. Each header is also checked by fedpipe's own verifier
# (fp_xmatrix verify). An unreadable signing key stops syncd (exit 100).
. tests/lib/lib.sh
PY=/usr/bin/python3
if ! $PY -c 'import signedjson.key, signedjson.sign' 2>/dev/null; then
	echo "ok 1 - python3-signedjson missing # SKIP"
	finish
	exit 0
fi
PN=$(free_port)
N=$(node_config n "$PN")
ORIGIN=$(sed -n 's/^server_name = //p' "$N")
KEY=$T_TMP/n/signing.key

# xm_peer TAG NAME: a verifying peer answering as NAME; port in $XP_<TAG>.
# Its identity answer is a 404: syncd's round stops after the identity
# request, which is what is checked here.
xm_peer() {
	bg $PY tests/tools/xmatrix_peer.py --name "$2" --origin "$ORIGIN" --key "$KEY" \
		--port-file "$T_TMP/$1.port" --log "$T_TMP/$1.jsonl" 2>>"$T_TMP/$1.log"
	wait_for "[ -s $T_TMP/$1.port ]" 100
	eval "XP_$1=\$(cat $T_TMP/$1.port)"
}
PB=$(free_port)
xm_peer a peer.test
xm_peer c bearer.test
# the anonymous peer must know its own port before it starts: it is its name
bg $PY tests/tools/xmatrix_peer.py --name "127.0.0.1:$PB" --origin "$ORIGIN" --key "$KEY" \
	--port-file "$T_TMP/b.port" --log "$T_TMP/b.jsonl" --listen-port "$PB" 2>>"$T_TMP/b.log"
wait_for "[ -s $T_TMP/b.port ]" 100
cat >>"$N" <<CONF
[syncd]
backoff_max = 1s
[peer named]
endpoint = http://127.0.0.1:$XP_a
server_name = peer.test
[peer anon]
endpoint = http://127.0.0.1:$PB/
[peer withkey]
endpoint = http://127.0.0.1:$XP_c
server_name = bearer.test
key = s3cret-key
CONF
for p in named anon withkey; do
	syncd -c "$N" --once --peer "$p" --stdio </dev/null >/dev/null 2>"$T_TMP/$p.err"
done

id1() { jq -c 'select(.target == "/_fed/v1/identity")' "$T_TMP/$1.jsonl" | head -1; }
check_eq "named: the identity request verified by signedjson" ok "$(id1 a | jq -r .verdict)"
check_eq "named: destination = [peer] server_name" peer.test "$(id1 a | jq -r .params.destination)"
check_eq "named: origin = our server_name" "$ORIGIN" "$(id1 a | jq -r .params.origin)"
check_eq "named: every value quoted, names lower-case" "true true" \
	"$(id1 a | jq -r '"\(.all_quoted) \(.all_lower)"')"
check_eq "anon: destination = the endpoint's host:port, verified" "127.0.0.1:$PB ok" \
	"$(id1 b | jq -r '"\(.params.destination) \(.verdict)"')"
check_eq "withkey: verified" ok "$(id1 c | jq -r .verdict)"
check_eq "withkey: the bearer first, the X-Matrix header second" "Bearer s3cret-key|X-Matrix" \
	"$(id1 c | jq -r '.authorization | map(split(" ")[0:2] | join(" ")) | .[0] + "|" + (.[1] | split(" ")[0])')"

# fedpipe's own verifier agrees.
PK=$($PY -c '
import sys, signedjson.key as k
sk = k.read_signing_keys(open(sys.argv[1]))[0]
print(k.encode_verify_key_base64(k.get_verify_key(sk)))' "$KEY")
H=$(id1 a | jq -r '.authorization[0]')
check "fp_xmatrix verify accepts the named request's header" \
	fp_xmatrix verify "$PK" peer.test GET /_fed/v1/identity "$H"
check "and refuses it for another destination" sh -c \
	"! fp_xmatrix verify '$PK' other.test GET /_fed/v1/identity '$H'"

# A tampered or foreign signature is what the verifier refuses: the python
# peer says 401 to a request signed by another key.
printf '[node]\nsigning_key = %s/other.key\n' "$T_TMP" >"$T_TMP/other.conf"
fedctl -c "$T_TMP/other.conf" keygen >/dev/null 2>&1
H2=$(fp_xmatrix sign "$T_TMP/other.key" "$ORIGIN" peer.test GET /_fed/v1/identity)
check_eq "a request signed with another key: 401 from the verifying peer" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $H2" "http://127.0.0.1:$XP_a/_fed/v1/identity")"

# An unreadable signing key: syncd does not start.
sed "s|^signing_key = .*|signing_key = $T_TMP/nokey|" "$N" >"$T_TMP/nokey.conf"
timeout 20 syncd -c "$T_TMP/nokey.conf" --once --peer named --stdio </dev/null >/dev/null 2>"$T_TMP/nokey.err"
check_eq "a missing signing key: exit 100" 100 "$?"
check "and the error names the file" grep -q "$T_TMP/nokey" "$T_TMP/nokey.err"
finish
