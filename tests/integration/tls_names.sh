#!/bin/sh
# tls_names.sh: outgoing TLS checks the certificate's name, not only its
# chain. Every certificate here is signed by one test CA (made by openssl
# now) that fetchd and syncd are told to trust (`ca`), so only the name can
# be wrong. HTTPS peers (tests/tools/tls_peer.py) on 127.0.0.1:
#   right  : subjectAltName IP:127.0.0.1, DNS:localhost
#   evil   : subjectAltName DNS:evil.test (CN evil.test)
#   cnonly : CN 127.0.0.1, subjectAltName DNS:evil.test (a CN is no name
#            when a subjectAltName is there)
#   iponly : subjectAltName IP:127.0.0.1 only
# fetchd ([server NAME] endpoint = https://...) and syncd ([peer NAME]
# endpoint = https://...) reach right at https://127.0.0.1 and
# https://localhost; they refuse evil and cnonly at https://127.0.0.1 and
# iponly at https://localhost, before any HTTP request is sent, with a TLS
# reason in fedctl fetch's error, fedctl servers and syncd's log. No code
# turns certificate or host verification off (grep).
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 1
ID=$(sed -n 1p "$FD_DIR/ids")
fd_peer src
curl -sf "http://127.0.0.1:$FD_PORT_src/_matrix/federation/v1/event/$(printf '%s' "$ID" | sed 's/\$/%24/')" \
	>"$FD_DIR/body"
check "the event body to serve over TLS" test -s "$FD_DIR/body"

X=$FD_DIR/pki
mkdir -p "$X"
# cert NAME SUBJECT SAN: a key and a certificate signed by the test CA.
cert() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
		-keyout "$X/$1.key" -out "$X/$1.csr" &&
	printf 'subjectAltName=%s\n' "$3" >"$X/$1.ext" &&
	openssl x509 -req -in "$X/$1.csr" -CA "$X/ca.pem" -CAkey "$X/ca.key" -CAcreateserial \
		-days 2 -extfile "$X/$1.ext" -out "$X/$1.pem"
}
{
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=fedpipe-test-ca -keyout "$X/ca.key" -out "$X/ca.pem"
	cert right /CN=right 'IP:127.0.0.1,DNS:localhost'
	cert evil /CN=evil.test DNS:evil.test
	cert cnonly /CN=127.0.0.1 DNS:evil.test
	cert iponly /CN=iponly IP:127.0.0.1
} >"$X/openssl.log" 2>&1
check "test CA and certificates made" test -s "$X/right.pem" -a -s "$X/evil.pem" -a -s "$X/cnonly.pem" -a -s "$X/iponly.pem"
check "all four chain to the test CA" sh -c \
	"openssl verify -CAfile '$X/ca.pem' '$X/right.pem' '$X/evil.pem' '$X/cnonly.pem' '$X/iponly.pem' >/dev/null"

for c in right evil cnonly iponly; do
	bg python3 tests/tools/tls_peer.py --cert "$X/$c.pem" --key "$X/$c.key" \
		--body "$FD_DIR/body" --port-file "$FD_DIR/$c.port" 2>>"$FD_DIR/$c.log"
	wait_for "[ -s $FD_DIR/$c.port ]" 100
	eval "TP_$c=\$(cat $FD_DIR/$c.port)"
done
FD_SERVERS="$FD_SERVERS
[server right.test]
endpoint = https://127.0.0.1:$TP_right
ca = $X/ca.pem
[server righthost.test]
endpoint = https://localhost:$TP_right
ca = $X/ca.pem
[server evil.test]
endpoint = https://127.0.0.1:$TP_evil
ca = $X/ca.pem
[server cnonly.test]
endpoint = https://127.0.0.1:$TP_cnonly
ca = $X/ca.pem
[server iponly.test]
endpoint = https://localhost:$TP_iponly
ca = $X/ca.pem
"
fd_config "server_rate = 0
request_timeout = 5s
backoff_grace = 100"
fd_start
fetch() { fedctl -c "$FD_CONF" fetch event "$ID" --servers "$1" >"$FD_DIR/$1.body" 2>"$FD_DIR/$1.err"; }
tls_reason() { grep -qi "ssl\|tls\|certificate\|subject" "$1"; }

fetch right.test
check_eq "fetchd: https://127.0.0.1 with a certificate for IP 127.0.0.1: fetched" "0 right.test" \
	"$? $(tail -1 "$FD_DIR/right.test.err")"
check "the bytes are the peer's" cmp -s "$FD_DIR/body" "$FD_DIR/right.test.body"
fetch righthost.test
check_eq "fetchd: https://localhost with a certificate for DNS localhost: fetched" "0 righthost.test" \
	"$? $(tail -1 "$FD_DIR/righthost.test.err")"
N_RIGHT=$(grep -c "GET " "$FD_DIR/right.log")
check_eq "the right peer got both requests" 2 "$N_RIGHT"

for s in evil cnonly iponly; do
	fetch $s.test
	rc=$?
	check "fetchd refuses $s's certificate (exit $rc)" [ "$rc" -ne 0 ]
	check "with a TLS reason: $(tail -1 "$FD_DIR/$s.test.err")" tls_reason "$FD_DIR/$s.test.err"
done
fedctl -c "$FD_CONF" --json servers >"$FD_DIR/servers.json"
srv_err() { jq -r ".[] | select(.server==\"$1\") | .record.last_error" "$FD_DIR/servers.json"; }
for s in evil cnonly iponly; do
	check "fedctl servers: $s.test's last error is the certificate: $(srv_err $s.test)" \
		sh -c "jq -r '.[] | select(.server==\"$s.test\") | .record.last_error' '$FD_DIR/servers.json' | grep -qi 'ssl\|certificate'"
done
# curl's own words, not its generic code: the name is what failed.
check "fedctl servers: evil.test's error names the mismatch: $(srv_err evil.test)" \
	sh -c "jq -r '.[] | select(.server==\"evil.test\") | .record.last_error' '$FD_DIR/servers.json' | grep -qi 'match'"
check "fetchd's log says why" grep -qi "evil.test.*\(ssl\|certificate\|subject\)" "$FD_DIR/fetchd.log"
check_eq "the refused peers never got an HTTP request" 0 \
	"$(cat "$FD_DIR/evil.log" "$FD_DIR/cnonly.log" "$FD_DIR/iponly.log" | grep -c "GET ")"
fd_stop

# syncd: the same certificates behind [peer] endpoints. tls_peer answers
# the identity request 404: a round that gets that far got through TLS.
cat >>"$FD_CONF" <<CONF
[syncd]
connect_timeout = 5s
[peer right]
endpoint = https://127.0.0.1:$TP_right
ca = $X/ca.pem
[peer righthost]
endpoint = https://localhost:$TP_right
ca = $X/ca.pem
[peer evil]
endpoint = https://127.0.0.1:$TP_evil
ca = $X/ca.pem
[peer cnonly]
endpoint = https://127.0.0.1:$TP_cnonly
ca = $X/ca.pem
[peer iponly]
endpoint = https://localhost:$TP_iponly
ca = $X/ca.pem
CONF
sync_once() { timeout 30 syncd -c "$FD_CONF" --once --peer "$1" --stdio </dev/null >/dev/null 2>"$FD_DIR/sync.$1.err"; }
for p in right righthost; do
	sync_once $p
	check "syncd: $p: through TLS (the peer's 404 for the identity is the failure)" \
		grep -q "HTTP 404" "$FD_DIR/sync.$p.err"
done
check_eq "the right peer got both identity requests" 2 "$(grep -c "GET /_fed/v1/identity" "$FD_DIR/right.log")"
for p in evil cnonly iponly; do
	sync_once $p
	rc=$?
	check "syncd refuses $p's certificate (exit $rc): $(grep -i "tls:" "$FD_DIR/sync.$p.err" | tail -1 | sed 's/^.*): //' | cut -c1-120)" \
		sh -c "[ $rc -ne 0 ] && grep -qi 'tls: identity: .*\(certificate\|SSL\)' '$FD_DIR/sync.$p.err'"
done
check "syncd's reason for evil names the mismatch" grep -qi "tls: identity: .*match" "$FD_DIR/sync.evil.err"
check_eq "the refused peers never got an HTTP request" 0 \
	"$(cat "$FD_DIR/evil.log" "$FD_DIR/cnonly.log" "$FD_DIR/iponly.log" | grep -c "GET ")"

# No code path turns verification off.
R=${FP_ROOT:-.}
check_eq "no VERIFYPEER/VERIFYHOST off, no SSL_VERIFY_NONE, no insecure flag in cmd/ common/ scripts/" "" \
	"$(grep -rnE 'VERIFY(PEER|HOST)[^;]*, *0|VERIFYHOST[^;]*, *1L|SSL_VERIFY_NONE|--insecure|curl +(-[a-zA-Z]*k|.* -k )|CERT_NONE|verify *= *False' \
		"$R/cmd" "$R/common" "$R/scripts" 2>/dev/null)"
check "fetchd and syncd state VERIFYPEER 1 and VERIFYHOST 2" sh -c \
	"grep -q 'CURLOPT_SSL_VERIFYHOST, 2L' '$R/cmd/fetchd/fetch_transport.c' && grep -q 'CURLOPT_SSL_VERIFYHOST, 2L' '$R/cmd/syncd/syncd_main.c'"
finish
