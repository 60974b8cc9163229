#!/bin/sh
# fetchd reaches a server known only by its name through the resolver
# (core/resolve.h), against real DNS and real TLS in a network namespace of
# its own (unshare -rn, as resolve_dns.sh: the well-known must be on port
# 443): dnsmasq holds the A and SRV records, tests/tools/fed_https.py plays
# the well-known and the target servers (each logs every TCP connection it
# accepts, the SNI and Host it received, and whether the request's X-Matrix
# signature verified with python3-signedjson for the server name fetchd
# was asked for), with a CA made here by openssl and trusted through
# [node] ca_file; [fetchd] ip_range_allow opens the loopback targets.
#   (a) well-known delegation + SRV, (b) SRV only, (c) plain A on 8448:
#       the address and port connected to, Host and SNI as the spec says;
#       the resolution cached in LMDB server_resolution (the next fetch
#       makes no DNS query);
#   a certificate for the wrong name at the target is refused (fedctl
#   servers shows the TLS reason); a name that does not resolve fails
#   as resolve_failed; two SRV targets, the first refusing connections:
#   the next attempt goes to the second; a SIGHUP changing [node]
#   resolver makes a new resolver; syncd trusts [node] ca_file for a
#   [peer] endpoint without its own ca;
#   attacks: with the default deny list the same kind of name resolving to
#   127.0.0.x is refused address_denied and neither its well-known nor its
#   target server gets a connection; DNS rebinding: the name's answer
#   changes (dnsmasq restarted with an address outside ip_range_allow)
#   after a successful fetch: the new address is refused at connect time
#   and its server gets no connection. The test servers close every
#   connection after one answer, so each fetch connects anew (a connection
#   curl keeps was opened to an address already judged, and is judged
#   again before each reuse: prereq_cb).
# End to end: node B (validated, purgatoryd, fetchd) fetches A's chain
# knowing only the name a.test (see the last section).
if [ -z "${FP_IN_NETNS:-}" ]; then
	if ! unshare -rn true 2>/dev/null; then
		echo "ok 1 - user+network namespaces unavailable (unshare -rn) # SKIP"
		exit 0
	fi
	FP_IN_NETNS=1 exec unshare -rn sh "$0" "$@"
fi
ip link set lo up || { echo "not ok 1 - loopback up in the namespace"; exit 1; }
. tests/lib/lib.sh
. tests/tools/fetchd_lib.sh
command -v dnsmasq >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
if ! command -v dnsmasq >/dev/null 2>&1; then skip "dnsmasq (Debian dnsmasq-base) not installed"; finish; exit; fi
if ! /usr/bin/python3 -c 'import signedjson.key, signedjson.sign' 2>/dev/null; then
	skip "python3-signedjson missing"; finish; exit
fi

W=$T_TMP/w
mkdir -p "$W/certs"
(
	cd "$W/certs" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=fedpipe-fetchd-resolve-ca -keyout ca.key -out ca.pem
	mk() {
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
			-keyout "$1.key" -out "$1.csr"
		printf 'subjectAltName=%s\n' "$2" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
			-extfile "$1.ext" -out "$1.pem"
	}
	mk default IP:127.0.0.1
	for n in wk deleg srv plain rebind deny other b multi late; do mk "$n.test" "DNS:$n.test"; done
	mk a.test DNS:a.test,DNS:fed.a.test
) >"$W/openssl.log" 2>&1
check "test CA and certificates made" test -s "$W/certs/other.test.pem"

# ---- DNS --------------------------------------------------------------------
DNS_PORT=$(free_port)
DNS_PID=
dns_start() { # dns_start REBIND_ADDR
	: >"$W/dnsmasq.log"
	bg dnsmasq --no-daemon --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces \
		--no-resolv --no-hosts --conf-file=/dev/null --user="$(id -un)" --pid-file= \
		--local=/test/ --local-ttl=300 --log-queries \
		--host-record=wk.test,127.0.0.1 \
		--srv-host=_matrix-fed._tcp.deleg.test,srvtarget.test,8449 \
		--host-record=srvtarget.test,127.0.0.2 \
		--host-record=srv.test,127.0.0.1 \
		--srv-host=_matrix-fed._tcp.srv.test,srvtarget2.test,8450 \
		--host-record=srvtarget2.test,127.0.0.3 \
		--host-record=plain.test,127.0.0.4 \
		--host-record=wrongcert.test,127.0.0.5 \
		--host-record=deny.test,127.0.0.6 \
		--host-record="rebind.test,$1,1" \
		--host-record=a.test,127.0.0.8 --host-record=a-host.test,127.0.0.8 \
		--srv-host=_matrix-fed._tcp.fed.a.test,a-host.test,443 \
		--host-record=b.test,127.0.0.1 \
		--srv-host=_matrix-fed._tcp.multi.test,dead.test,8447,0 --host-record=dead.test,127.0.0.1 \
		--srv-host=_matrix-fed._tcp.multi.test,srvtarget2.test,8450,1 \
		--host-record=late.test,127.0.0.4 \
		2>>"$W/dnsmasq.log"
	DNS_PID=$LAST_PID
	wait_for "grep -q 'started, version' $W/dnsmasq.log" 100
}
dns_start 127.0.0.7
check "dnsmasq answers on 127.0.0.1:$DNS_PORT" kill -0 "$DNS_PID"
queries() { grep -c "query\[.*\] .*$1 from" "$W/dnsmasq.log"; }

# ---- HTTPS servers ------------------------------------------------------------
fd_events 3
eid() { sed -n "${1}p" "$FD_DIR/ids"; }
R=$W/routes.json
cat >"$R" <<'J'
{"wk.test /.well-known/matrix/server": {"body": "{\"m.server\": \"deleg.test\"}"}}
J
L=$W/https.log
: >"$L"
bg /usr/bin/python3 tests/tools/fed_https.py --certs "$W/certs" --routes "$R" --log "$L" \
	--ready "$W/ready" --events "$FD_DIR/ev.jsonl" --ids "$FD_DIR/ids" \
	--key "$FD_DIR/origin.key" --origin self.test --close \
	--listen 127.0.0.1:443 \
	--listen 127.0.0.2:8449=other.test --name 127.0.0.2:8449=wk.test \
	--listen 127.0.0.3:8450=other.test --name 127.0.0.3:8450=srv.test,multi.test \
	--listen 127.0.0.4:8448=other.test --name 127.0.0.4:8448=plain.test,plain.test:8448 \
	--listen 127.0.0.5:8448=other.test --name 127.0.0.5:8448=wrongcert.test \
	--listen 127.0.0.6:443 --listen 127.0.0.6:8448 --name 127.0.0.6:8448=deny.test \
	--listen 127.0.0.7:8448=other.test --name 127.0.0.7:8448=rebind.test \
	--listen 127.0.0.9:8448 --name 127.0.0.9:8448=rebind.test 2>"$W/https.err"
wait_for "[ -s $W/ready ]" 100
check "HTTPS servers up" test -s "$W/ready"
# seen EXPR: requests (or connections, or hellos) logged satisfying EXPR over r
seen() { /usr/bin/python3 -c 'import json,sys
n=0
for l in open(sys.argv[1]):
    r=json.loads(l)
    for k in ("host","sni","tls_sni","path","connect","verdict"): r.setdefault(k,None)
    n+=bool(eval(sys.argv[2]))
print(n)' "$L" "$1"; }

fd_config "server_rate = 0
backoff_grace = 100
ip_range_allow = 127.0.0.0/29
[node]
resolver = 127.0.0.1:$DNS_PORT
ca_file = $W/certs/ca.pem"
fd_start
fetch() { fedctl -c "$FD_CONF" fetch event "$1" --servers "$2" >"$FD_DIR/out" 2>"$FD_DIR/err"; }
health() { fedctl -c "$FD_CONF" --json servers | jq -r --arg s "$1" '.[] | select(.server == $s) | .record.last_error'; }

# (a) well-known -> deleg.test, SRV _matrix-fed._tcp.deleg.test -> srvtarget.test:8449 (127.0.0.2)
fetch "$(eid 1)" wk.test
check_eq "(a) well-known + SRV: fetched" 0 $?
check "(a) the event came back" jq -e '.pdus | length == 1' "$FD_DIR/out"
check_eq "(a) well-known asked at 127.0.0.1:443 with Host and SNI wk.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.1:443" and r["host"]=="wk.test" and r["sni"]=="wk.test" and r["path"]=="/.well-known/matrix/server"')"
check_eq "(a) the event asked at 127.0.0.2:8449 (the SRV target) with Host and SNI deleg.test, X-Matrix verified for wk.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.2:8449" and r["host"]=="deleg.test" and r["sni"]=="deleg.test" and r["verdict"]=="ok"')"
check_eq "(a) the SRV target's name was never the SNI" 0 "$(seen 'r["tls_sni"]=="srvtarget.test"')"

# (b) SRV only (the well-known answers 404)
fetch "$(eid 1)" srv.test
check_eq "(b) SRV only: fetched" 0 $?
check_eq "(b) at 127.0.0.3:8450 with Host and SNI srv.test, X-Matrix verified" 1 \
	"$(seen 'r["listen"]=="127.0.0.3:8450" and r["host"]=="srv.test" and r["sni"]=="srv.test" and r["verdict"]=="ok"')"

# (c) plain A on 8448 (no well-known server, no SRV)
fetch "$(eid 1)" plain.test
check_eq "(c) plain A: fetched" 0 $?
check_eq "(c) at 127.0.0.4:8448 with Host and SNI plain.test, X-Matrix verified" 1 \
	"$(seen 'r["listen"]=="127.0.0.4:8448" and r["host"]=="plain.test" and r["sni"]=="plain.test" and r["verdict"]=="ok"')"
check_eq "(c) resolutions looked up: 3" 3 "$(fd_stat resolutions)"
check "(c) server_resolution holds wk.test (fedctl resolve answers from the cache)" \
	sh -c "fedctl -c $FD_CONF --json resolve wk.test | jq -e '.targets[0].port == 8449 and .targets[0].host == \"deleg.test\"' >/dev/null"

# cached: more fetches make no DNS query and no well-known request
q0=$(queries test)
wk0=$(seen 'r["path"]=="/.well-known/matrix/server"')
fetch "$(eid 2)" wk.test && fetch "$(eid 2)" srv.test && fetch "$(eid 2)" plain.test
check_eq "cached: three more fetches succeed" 0 $?
check_eq "cached: no DNS query" "$q0" "$(queries test)"
check_eq "cached: no well-known request" "$wk0" "$(seen 'r["path"]=="/.well-known/matrix/server"')"
check_eq "cached: no new lookup" 3 "$(fd_stat resolutions)"
# a restarted fetchd reads LMDB first
fd_stop
fd_start
fetch "$(eid 3)" wk.test
check_eq "after a restart: fetched" 0 $?
check_eq "after a restart: the resolution came from LMDB (no DNS query)" "$q0" "$(queries test)"
check_eq "after a restart: resolutions_cached 1" 1 "$(fd_stat resolutions_cached)"

# a certificate for another name at the target is refused
fetch "$(eid 1)" wrongcert.test
check "wrong certificate name: the fetch fails" test $? -ne 0
check_eq "wrong certificate name: the handshake reached 127.0.0.5:8448 with SNI wrongcert.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.5:8448" and r["tls_sni"]=="wrongcert.test"')"
check_eq "wrong certificate name: no request was sent" 0 "$(seen 'r["listen"]=="127.0.0.5:8448" and r["path"]')"
check "fedctl servers shows the TLS reason ($(health wrongcert.test))" \
	sh -c "fedctl -c $FD_CONF servers | grep '^wrongcert.test ' | grep -qi 'transport: .*\\(SSL\\|certificate\\)'"

# a name with no address at all
fetch "$(eid 1)" nowhere.test
check "no such name: the fetch fails" test $? -ne 0
check "no such name: resolve_failed in the answer and in fedctl servers ($(health nowhere.test))" \
	sh -c "grep -q 'resolve_failed' $FD_DIR/out $FD_DIR/err && fedctl -c $FD_CONF servers | grep '^nowhere.test ' | grep -q 'resolve_failed: '"

# two SRV targets, the first refusing connections: the next attempt goes
# to the second
fetch "$(eid 1)" multi.test
check "two targets, the first down: the first fetch fails (connection refused at 127.0.0.1:8447)" test $? -ne 0
fetch "$(eid 1)" multi.test
check_eq "two targets: the next fetch goes to the second (127.0.0.3:8450, Host and SNI multi.test)" "0 1" \
	"$? $(seen 'r["listen"]=="127.0.0.3:8450" and r["host"]=="multi.test" and r["sni"]=="multi.test" and r["verdict"]=="ok"')"

# SIGHUP with another [node] resolver: a new resolver. First a DNS server
# that is not there: late.test fails as resolve_failed; after the reload
# pointing at dnsmasq again, a new name resolves.
sed -i "s/^resolver = 127.0.0.1:$DNS_PORT\$/resolver = 127.0.0.1:$(free_port)/" "$FD_CONF"
kill -HUP "$FD_PID"
check "reload: a new resolver" wait_for "grep -q 'new resolver' $FD_DIR/fetchd.log" 50
fetch "$(eid 1)" late.test
check "a DNS server that is not there: resolve_failed" grep -q resolve_failed "$FD_DIR/err" "$FD_DIR/out"
sed -i "s/^resolver = 127.0.0.1:[0-9]*\$/resolver = 127.0.0.1:$DNS_PORT/" "$FD_CONF"
kill -HUP "$FD_PID"
check "reload: back to dnsmasq" wait_for "[ \$(grep -c 'new resolver' $FD_DIR/fetchd.log) = 2 ]" 50
fetch "$(eid 1)" plain.test:8448
check_eq "after the reload a new name resolves through dnsmasq (plain.test:8448)" 0 $?

# ---- attack: DNS rebinding ------------------------------------------------------
# rebind.test answers 127.0.0.7 (TTL 1 s) and is fetched from; then its
# answer becomes 127.0.0.9, outside ip_range_allow = 127.0.0.0/29: once the
# resolution expires fetchd looks it up again, and the address it would
# connect to is refused at connect time.
fetch "$(eid 1)" rebind.test
check_eq "rebinding: first answer 127.0.0.7: fetched" 0 $?
check_eq "rebinding: 127.0.0.7:8448 served it" 1 "$(seen 'r["listen"]=="127.0.0.7:8448" and r["verdict"]=="ok"')"
stop "$DNS_PID"
dns_start 127.0.0.9
sleep 2                      # past the 1 s TTL (no assertion on time)
fetch "$(eid 2)" rebind.test
check "rebinding: the fetch after the answer changed fails" test $? -ne 0
check "rebinding: address_denied for 127.0.0.9 ($(health rebind.test))" \
	sh -c "grep -q 'address_denied: 127.0.0.9' $FD_DIR/out $FD_DIR/err"
check_eq "rebinding: 127.0.0.9:8448 got no connection" 0 "$(seen 'r["listen"]=="127.0.0.9:8448"')"
check_eq "rebinding: rebind.test looked up again (a DNS query after the change)" 1 \
	"$(test "$(queries rebind.test)" -ge 1 && echo 1)"
fd_stop

# ---- attack: the default deny list ------------------------------------------------
# The same kind of name, now without ip_range_allow: deny.test -> 127.0.0.6
# is refused; neither its well-known (127.0.0.6:443) nor its target
# (127.0.0.6:8448) gets a TCP connection.
sed -i '/^ip_range_allow/d' "$FD_CONF"
fd_start
fetch "$(eid 1)" deny.test
check "default deny list: the fetch fails" test $? -ne 0
check "default deny list: address_denied (127.0.0.6 in 127.0.0.0/8) in fedctl servers ($(health deny.test))" \
	sh -c "fedctl -c $FD_CONF servers | grep '^deny.test ' | grep -q 'address_denied: 127.0.0.6 in 127.0.0.0/8'"
check_eq "default deny list: no connection to 127.0.0.6:443 or :8448" 0 "$(seen 'r["listen"].startswith("127.0.0.6:")')"
c0=$(seen 'r["listen"]=="127.0.0.2:8449" and r["connect"]')
fetch "$(eid 1)" wk.test
check "default deny list: wk.test (cached, 127.0.0.2) refused too" test $? -ne 0
check_eq "default deny list: 127.0.0.2:8449 got no new connection" "$c0" "$(seen 'r["listen"]=="127.0.0.2:8449" and r["connect"]')"
fd_stop
# ---- syncd trusts [node] ca_file for its peers' endpoints too -------------------
# A [peer] without its own ca: the test CA is trusted through [node]
# ca_file (fed_https answers the identity request 404: a round that gets
# that far got through TLS); without ca_file the certificate is refused.
cat >>"$FD_CONF" <<CONF
[peer wk]
endpoint = https://127.0.0.1:443
CONF
timeout 30 syncd -c "$FD_CONF" --once --peer wk --stdio </dev/null >/dev/null 2>"$FD_DIR/sync.err"
check "syncd: [node] ca_file trusted for a peer's endpoint (through TLS to the peer's 404)" \
	grep -q "HTTP 404" "$FD_DIR/sync.err"
sed '/^ca_file = /d' "$FD_CONF" >"$FD_DIR/noca.conf"
timeout 30 syncd -c "$FD_DIR/noca.conf" --once --peer wk --stdio </dev/null >/dev/null 2>"$FD_DIR/sync2.err"
check "syncd: without ca_file the test CA is not trusted ($(grep -i 'tls:' "$FD_DIR/sync2.err" | tail -1 | cut -c1-100))" \
	sh -c "grep -qi 'tls: .*\\(certificate\\|SSL\\)' '$FD_DIR/sync2.err' && ! grep -q 'HTTP 404' '$FD_DIR/sync2.err'"

# ---- end to end: node B fetches what it misses from node A by A's name ----------
# A (served over TLS on 127.0.0.8:443 with [served] well_known = fed.a.test,
# X-Matrix required, and its fetchd) holds a chain; B (validated,
# purgatoryd, fetchd, served over TLS for its own key) knows only the name
# a.test: its fetchd asks A's well-known (A's served), then SRV
# _matrix-fed._tcp.fed.a.test -> a-host.test:443 (127.0.0.8), sends Host
# and SNI fed.a.test, signs for destination a.test; A's served verifies B's
# signature with B's key, which A's fetchd fetches from b.test:PB through
# its own resolver (A record b.test, explicit port).
. tests/tools/federation_lib.sh
PB=$(free_port)
NODEX="$FED_COMMON
ip_range_allow = 127.0.0.0/8"
A=$(node_config a 443 "$NODEX
[served]
well_known = fed.a.test")
B=$(node_config b "$PB" "$NODEX
[purgatoryd]
fetch_limit = 2")
for c in "$A" "$B"; do
	n=$(basename "$(dirname "$c")")
	sed -i "/^\\[node\\]\$/a resolver = 127.0.0.1:$DNS_PORT\\nca_file = $W/certs/ca.pem\\ntls_cert = $W/certs/$n.test.pem\\ntls_key = $W/certs/$n.test.key" "$c"
done
sed -i 's/^server_name = a.test:443$/server_name = a.test/; s/^listen = 127.0.0.1:443$/listen = 127.0.0.8:443/' "$A"
N=4
served_fill -c "$A" -N $N -o "$T_TMP/a.ids" >/dev/null
check_eq "A holds a chain of $((N + 1)) events" $((N + 1)) "$(wc -l <"$T_TMP/a.ids" | tr -d ' ')"
node_start a served fetchd
node_start b validated purgatoryd fetchd served
check "A's served is up over TLS on 127.0.0.8:443" \
	wait_for "curl -sf --cacert $W/certs/ca.pem --resolve a.test:443:127.0.0.8 https://a.test/healthz >/dev/null"
check_eq "A answers its well-known" '{"m.server":"fed.a.test"}' \
	"$(curl -s --cacert "$W/certs/ca.pem" --resolve a.test:443:127.0.0.8 https://a.test/.well-known/matrix/server | jq -c .)"
TIP=$(tail -n 1 "$T_TMP/a.ids")
enc() { /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
PQ=/_matrix/federation/v1/event/$(enc "$TIP")
H=$(fp_xmatrix sign "$T_TMP/a/signing.key" a.test a.test GET "$PQ")
curl -s --cacert "$W/certs/ca.pem" --resolve a.test:443:127.0.0.8 -H "Authorization: $H" "https://a.test$PQ" |
	jq -c '.pdus[0]' >"$T_TMP/tip.jsonl"
check_eq "the PDU given to B is A's last event" "$TIP" "$(fp_pdu id 10 <"$T_TMP/tip.jsonl")"
fedctl -c "$B" import "$T_TMP/tip.jsonl" >/dev/null 2>&1
pstat() { purgatory_tool check -c "$B" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
check "B stores A's whole chain, fetched by A's name" \
	wait_for "[ \"\$(pstat events)\" = $((N + 1)) ] && [ \"\$(pstat purgatory)\" = 0 ]" 600
check_eq "B's stream is A's chain, in A's order" "$(cat "$T_TMP/a.ids")" "$(purgatory_tool stream -c "$B" | cut -d' ' -f2)"
check "A requires X-Matrix" grep -q "needs X-Matrix" "$T_TMP/a/served.log"
check "A's served answered B's signed get_missing_events" \
	grep -q 'POST /_matrix/federation/v1/get_missing_events/' "$T_TMP/a/served.log"
check "B's validated got a.test's key through B's fetchd (by name)" \
	grep -q 'stored 1 key(s) of a.test' "$T_TMP/b/validated.log"
check "B's fetchd resolved a.test to fed.a.test via a-host.test:443 (127.0.0.8)" \
	grep -q 'server a.test: 1 target(s), first fed.a.test via a-host.test:443 (127.0.0.8)' "$T_TMP/b/fetchd.log"
check "A's fetchd resolved b.test:$PB for B's key (A verified B's X-Matrix)" \
	grep -q "server b.test:$PB: 1 target(s), first b.test:$PB via b.test:$PB (127.0.0.1)" "$T_TMP/a/fetchd.log"
check "B's server_resolution holds a.test" \
	sh -c "fedctl -c $B --json resolve a.test | jq -e '.targets[0].host == \"fed.a.test\" and .targets[0].port == 443' >/dev/null"
node_stop b validated purgatoryd fetchd served
node_stop a served fetchd
finish
