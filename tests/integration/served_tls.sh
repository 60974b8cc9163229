#!/bin/sh
# served speaks HTTPS with [node] tls_cert / tls_key (issue 15): a throwaway
# CA and a certificate for 127.0.0.1 (made here with the openssl command);
# curl --cacert reads healthz, the key document and a signed Matrix read;
# a TLS 1.1 client and a plain-HTTP client are refused; a client that does
# not trust the CA is refused; SIGHUP loads a new pair (a certificate from
# another CA), and a bad new pair (key not matching) keeps the one in use
# and says why; a half pair is a configuration error.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
# mkcert DIR: a CA (DIR/ca.pem) and a server certificate for 127.0.0.1 and
# localhost signed by it (DIR/cert.pem, DIR/key.pem).
mkcert() {
	mkdir -p "$1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=fedpipe test CA $(basename "$1")" -keyout "$1/ca.key" -out "$1/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$1/key.pem" -out "$1/req.pem" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$1/ext"
	openssl x509 -req -in "$1/req.pem" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 2 \
		-extfile "$1/ext" -out "$1/cert.pem" 2>/dev/null
}
mkcert "$T_TMP/c1"
mkcert "$T_TMP/c2"
cp "$T_TMP/c1/cert.pem" "$T_TMP/cert.pem"; cp "$T_TMP/c1/key.pem" "$T_TMP/key.pem"
P=$(free_port)
A=$(node_config a "$P")
sed -i "s|^\[node\]$|[node]\ntls_cert = $T_TMP/cert.pem\ntls_key = $T_TMP/key.pem|" "$A"
served_fill -c "$A" -N 3 -o "$T_TMP/ids" >/dev/null
node_start a served
U=https://127.0.0.1:$P
C1="--cacert $T_TMP/c1/ca.pem"
C2="--cacert $T_TMP/c2/ca.pem"
check "up over HTTPS (CA 1)" wait_for "curl -sf $C1 $U/healthz"
check_eq "healthz over HTTPS" 200 "$(curl -s -o /dev/null -w '%{http_code}' $C1 "$U/healthz")"
check_eq "by name too (DNS:localhost)" 200 "$(curl -s -o /dev/null -w '%{http_code}' $C1 "https://localhost:$P/healthz")"
check_eq "key document over HTTPS" "a.test:$P" "$(curl -s $C1 "$U/_matrix/key/v2/server" | jq -r .server_name)"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
E=$(sed -n 2p "$T_TMP/ids")
PQ=/_matrix/federation/v1/event/$(enc "$E")
H=$(fp_xmatrix sign "$T_TMP/a/signing.key" "a.test:$P" "a.test:$P" GET "$PQ")
check_eq "signed Matrix read over HTTPS (our own name and key)" "$E" "$(curl -s $C1 -H "Authorization: $H" "$U$PQ" | jq -c '.pdus[0]' | fp_pdu id 10)"
check_eq "unsigned Matrix read over HTTPS: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' $C1 "$U$PQ")"
check "a client without the CA is refused" sh -c "! curl -s -o /dev/null $U/healthz"
check "plain HTTP to the TLS port gets no HTTP answer" sh -c "! curl -s -m 3 -o /dev/null http://127.0.0.1:$P/healthz"
check "a TLS 1.1 client is refused" sh -c "! curl -s -m 5 -o /dev/null $C1 --tlsv1.1 --tls-max 1.1 --ciphers DEFAULT@SECLEVEL=0 $U/healthz"
check "a TLS 1.1 client is refused (openssl s_client)" sh -c "! echo | timeout 5 openssl s_client -connect 127.0.0.1:$P -tls1_1 -cipher DEFAULT@SECLEVEL=0 >$T_TMP/s11 2>&1"
check "... by the server (protocol version alert)" grep -q "alert protocol version" "$T_TMP/s11"
check "TLS 1.2 is accepted (openssl s_client)" sh -c "echo | timeout 5 openssl s_client -connect 127.0.0.1:$P -tls1_2 -CAfile $T_TMP/c1/ca.pem 2>/dev/null | grep -q 'Verify return code: 0'"
check "still up after the refused clients" curl -sf $C1 "$U/healthz" -o /dev/null
# Reload: a certificate from CA 2.
cp "$T_TMP/c2/cert.pem" "$T_TMP/cert.pem"; cp "$T_TMP/c2/key.pem" "$T_TMP/key.pem"
kill -HUP "$PID_a_served"
check "SIGHUP: the new certificate is served" wait_for "curl -sf $C2 $U/healthz"
check "SIGHUP: the old CA no longer verifies" sh -c "! curl -s -o /dev/null $C1 $U/healthz"
check "reload logged" grep -q "reloaded certificate" "$T_TMP/a/served.log"
# A bad pair: CA 1's certificate with CA 2's key.
cp "$T_TMP/c1/cert.pem" "$T_TMP/cert.pem"
kill -HUP "$PID_a_served"
check "bad pair: logged why" wait_for "grep -q 'TLS reload failed, keeping the certificate in use' $T_TMP/a/served.log"
check_eq "bad pair: the one in use is kept" 200 "$(curl -s -o /dev/null -w '%{http_code}' $C2 "$U/healthz")"
# Half a pair is a configuration error (exit 100... or the daemon's config exit).
P2=$(free_port)
B=$(node_config b "$P2")
sed -i "s|^\[node\]$|[node]\ntls_cert = $T_TMP/cert.pem|" "$B"
served -c "$B" >"$T_TMP/b.log" 2>&1; rc=$?
check_eq "tls_cert without tls_key: refused at start" 100 "$rc"
check "... saying why" grep -q "tls_cert and tls_key go together" "$T_TMP/b.log"
sed -i "s|^tls_cert = .*|tls_cert = $T_TMP/nope.pem\ntls_key = $T_TMP/key.pem|" "$B"
served -c "$B" >"$T_TMP/b.log" 2>&1; rc=$?
check_eq "missing certificate file: refused at start" 100 "$rc"
finish
