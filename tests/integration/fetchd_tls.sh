#!/bin/sh
# fetchd over TLS: a [server] `ca` file is trusted for that server, a server
# whose certificate chains to nothing we trust is refused, and so is a server
# that only speaks TLS < 1.2 -- checked with OpenSSL's own floor lowered
# (OPENSSL_CONF), so that fetchd's TLS >= 1.2 is what refuses it. The HTTPS
# peer is tests/tools/tls_peer.py on 127.0.0.1 with a test CA made here.
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh

fd_events 1
ID=$(sed -n 1p "$FD_DIR/ids")
fd_peer src
EV=/_matrix/federation/v1/event/
curl -sf "http://127.0.0.1:$FD_PORT_src$EV$(printf '%s' "$ID" | sed 's/\$/%24/')" >"$FD_DIR/body"
check "the event body to serve over TLS" test -s "$FD_DIR/body"

# A test CA and a certificate for IP 127.0.0.1 signed by it; a second,
# self-signed certificate nobody trusts.
X=$FD_DIR/pki
mkdir -p "$X"
(
	cd "$X" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=fedpipe-test-ca -keyout ca.key -out ca.pem
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj /CN=127.0.0.1 -keyout srv.key -out srv.csr
	printf 'subjectAltName=IP:127.0.0.1\n' >srv.ext
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile srv.ext -out srv.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout self.key -out self.pem
) >"$X/openssl.log" 2>&1
check "test CA and certificates made" test -s "$X/srv.pem" -a -s "$X/self.pem"

# tls_peer NAME CERT KEY MAXTLS: start an HTTPS peer; its port in $TP_<NAME>.
tls_peer() {
	bg python3 tests/tools/tls_peer.py --cert "$2" --key "$3" --max-tls "$4" \
		--body "$FD_DIR/body" --port-file "$FD_DIR/$1.port" 2>>"$FD_DIR/$1.log"
	wait_for "[ -s $FD_DIR/$1.port ]" 100
	eval "TP_$1=\$(cat $FD_DIR/$1.port)"
}
tls_peer good "$X/srv.pem" "$X/srv.key" 1.3
tls_peer self "$X/self.pem" "$X/self.key" 1.3
tls_peer old "$X/srv.pem" "$X/srv.key" 1.1
FD_SERVERS="$FD_SERVERS
[server tls.test]
endpoint = https://127.0.0.1:$TP_good
ca = $X/ca.pem
[server noca.test]
endpoint = https://127.0.0.1:$TP_good
[server self.test]
endpoint = https://127.0.0.1:$TP_self
ca = $X/ca.pem
[server old.test]
endpoint = https://127.0.0.1:$TP_old
ca = $X/ca.pem
"
fd_config "server_rate = 0
request_timeout = 5s"

# OpenSSL with its floor lowered to TLS 1.0 and security level 0.
cat >"$X/lax.cnf" <<CNF
openssl_conf = lax_conf
[lax_conf]
ssl_conf = lax_ssl
[lax_ssl]
system_default = lax_default
[lax_default]
MinProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
CNF
FD_ENV="OPENSSL_CONF=$X/lax.cnf"
fd_start

fedctl -c "$FD_CONF" fetch event "$ID" --servers tls.test >"$FD_DIR/tls.body" 2>"$FD_DIR/tls.err"
check_eq "fetch over https with the server's CA file" 0 $?
check_eq "answered by tls.test" tls.test "$(tail -1 "$FD_DIR/tls.err")"
check "the bytes are the peer's" cmp -s "$FD_DIR/body" "$FD_DIR/tls.body"
check "the peer saw TLS 1.2 or 1.3 and fetchd's User-Agent" \
	grep -q "tls=TLSv1.[23] ua=fedpipe-fetchd/" "$FD_DIR/good.log"

fedctl -c "$FD_CONF" fetch event "$ID" --servers noca.test >/dev/null 2>"$FD_DIR/noca.err"
check "no CA file: the test CA is not trusted, fetch fails" test $? -ne 0
check "and says it was the certificate" grep -qi "certificate\|SSL" "$FD_DIR/noca.err"

fedctl -c "$FD_CONF" fetch event "$ID" --servers self.test >/dev/null 2>"$FD_DIR/self.err"
check "a certificate not from the server's CA is refused" test $? -ne 0
check_eq "the refused peers never got an HTTP request" 1 "$(cat "$FD_DIR/good.log" "$FD_DIR/self.log" | grep -c "GET ")"

# With the lax OpenSSL settings a client *can* speak TLS 1.1 to old.test
# (curl shows it); fetchd still refuses, because it asks for TLS >= 1.2.
code=$(OPENSSL_CONF="$X/lax.cnf" curl -s -o /dev/null -w '%{http_code}' --cacert "$X/ca.pem" \
	--tls-max 1.1 "https://127.0.0.1:$TP_old/probe" 2>/dev/null)
if [ "$code" = 404 ]; then
	ok "curl with the lax OpenSSL settings reaches the TLS 1.1 server"
	fedctl -c "$FD_CONF" fetch event "$ID" --servers old.test >/dev/null 2>"$FD_DIR/old.err"
	check "fetchd refuses a TLS 1.1-only server" test $? -ne 0
	check_eq "that server only ever got curl's probe" "GET /probe tls=TLSv1.1 ua=curl" \
		"$(grep "GET " "$FD_DIR/old.log" | sed 's|/[0-9.]*$||; s|^tls_peer: ||')"
	check "the failure names TLS" grep -qi "ssl\|tls\|protocol\|version" "$FD_DIR/old.err"
else
	skip "this OpenSSL cannot speak TLS 1.1 even with its floor lowered (curl said $code)"
fi
fd_stop
finish
