#!/bin/sh
# Server name resolution against real DNS and real TLS: dnsmasq on a
# loopback port holds the A and SRV records, tests/tools/wk_https.py serves
# /.well-known/matrix/server on 127.0.0.1:443 and stands in for the targets
# (127.0.0.1:8448, :8451, 127.0.0.2:8449, 127.0.0.3:8450), with a CA and
# certificates made here by openssl and trusted through [node] ca_file. The
# well-known must be on port 443 (the spec): the test runs in a user and
# network namespace of its own (unshare -rn, loopback up), where binding
# 443 needs no privilege, so the resolver stays exactly as the spec says.
# One case per step and per fall-through, each asserted on `fedctl resolve
# --json` (steps, targets, Host, TLS name, addresses, expiry) and on what the
# HTTPS servers received (Host, SNI); --probe sends a request to the target
# as fetchd would (core/resolve.h: resolve_target_apply). Certificates for
# the wrong name are refused at the well-known and at the target, and a
# certificate for the SRV target's name does not stand for the server's.
if [ -z "${FP_IN_NETNS:-}" ]; then
	if ! unshare -rn true 2>/dev/null; then
		echo "ok 1 - user+network namespaces unavailable (unshare -rn) # SKIP"
		exit 0
	fi
	FP_IN_NETNS=1 exec unshare -rn sh "$0" "$@"
fi
ip link set lo up || { echo "not ok 1 - loopback up in the namespace"; exit 1; }
. tests/lib/lib.sh
command -v dnsmasq >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
if ! command -v dnsmasq >/dev/null 2>&1; then skip "dnsmasq (Debian dnsmasq-base) not installed"; finish; exit; fi

W=$T_TMP/w
mkdir -p "$W/certs"
# ---- PKI: a CA, one certificate per name (SAN), one for 127.0.0.1 ----------
(
	cd "$W/certs" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=fedpipe-resolve-test-ca -keyout ca.key -out ca.pem
	mk() { # mk FILE SAN
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
			-keyout "$1.key" -out "$1.csr"
		printf 'subjectAltName=%s\n' "$2" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
			-extfile "$1.ext" -out "$1.pem"
	}
	mk default IP:127.0.0.1,IP:::1
	for n in v6 wk port wkport deleg deleg2 nowk badjson plain dep exp long srvtarget redir big other; do
		mk "$n.test" "DNS:$n.test"
	done
	# wrong.test's well-known and target servers present other.test's certificate
	cp other.test.pem wrong.test.pem; cp other.test.key wrong.test.key
) >"$W/openssl.log" 2>&1
check "test CA and certificates made" test -s "$W/certs/wrong.test.pem"

# ---- DNS ---------------------------------------------------------------------
DNS_PORT=$(free_port)
DNS_PID=
dns_start() { # dns_start TTL [extra records]
	bg dnsmasq --no-daemon --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces \
		--no-resolv --no-hosts --conf-file=/dev/null --user="$(id -un)" --pid-file= \
		--local=/test/ --local-ttl="$1" --log-queries \
		--host-record=wk.test,127.0.0.1 --host-record=port.test,127.0.0.1 \
		--host-record=wkport.test,127.0.0.1 --host-record=deleg2.test,127.0.0.1 \
		--host-record=nowk.test,127.0.0.1 --host-record=badjson.test,127.0.0.1 \
		--host-record=plain.test,127.0.0.1 --host-record=dep.test,127.0.0.1 \
		--host-record=exp.test,127.0.0.1 --host-record=long.test,127.0.0.1 \
		--host-record=wrong.test,127.0.0.1 --host-record=srvcert.test,127.0.0.1 \
		--host-record=redir.test,127.0.0.1 --host-record=big.test,127.0.0.1 \
		--host-record=srvtarget.test,127.0.0.2 --host-record=deptarget.test,127.0.0.3 \
		--host-record=v6.test,::1 \
		--srv-host=_matrix-fed._tcp.deleg.test,srvtarget.test,8449 \
		--srv-host=_matrix-fed._tcp.nowk.test,srvtarget.test,8449 \
		--srv-host=_matrix._tcp.dep.test,deptarget.test,8450 \
		--srv-host=_matrix-fed._tcp.srvcert.test,srvtarget.test,8449 \
		${2:-} 2>>"$W/dnsmasq.log"
	DNS_PID=$LAST_PID
	wait_for "grep -q 'started, version' $W/dnsmasq.log" 100
}
dns_start 300
check "dnsmasq answers on 127.0.0.1:$DNS_PORT" kill -0 "$DNS_PID"

# ---- HTTPS: well-known and targets -------------------------------------------
R=$W/routes.json
cat >"$R" <<'J'
{
 "wk.test /.well-known/matrix/server": {"body": "{\"m.server\": \"deleg.test\"}"},
 "wkport.test /.well-known/matrix/server": {"body": "{\"m.server\": \"deleg2.test:8451\"}"},
 "badjson.test /.well-known/matrix/server": {"body": "{\"m.server\": deleg.test"},
 "exp.test /.well-known/matrix/server": {"body": "{\"m.server\": \"deleg.test\"}",
                                        "headers": {"Cache-Control": "public, max-age=1"}},
 "long.test /.well-known/matrix/server": {"body": "{\"m.server\": \"deleg.test\"}",
                                         "headers": {"Cache-Control": "max-age=999999"}},
 "redir.test /.well-known/matrix/server": {"status": 302,
                     "headers": {"Location": "https://wk.test/.well-known/matrix/server"}},
 "wrong.test /.well-known/matrix/server": {"body": "{\"m.server\": \"deleg.test\"}"}
}
J
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["big.test /.well-known/matrix/server"]={"body": " "*60000+"{\"m.server\":\"deleg.test\"}"}; json.dump(r,open(sys.argv[1],"w"))' "$R"
L=$W/https.log
: >"$L"
bg python3 tests/tools/wk_https.py --certs "$W/certs" --routes "$R" --log "$L" --ready "$W/ready" \
	--listen 127.0.0.1:443 --listen 127.0.0.1:8448 --listen 127.0.0.1:8451 \
	--listen 127.0.0.2:8449=srvtarget.test --listen 127.0.0.3:8450 --listen '[::1]:8451' 2>"$W/https.err"
wait_for "[ -s $W/ready ]" 100
check "HTTPS servers on 443, 8448, 8449, 8450, 8451" test -s "$W/ready"

CONF=$(node_config res "$(free_port)" "")
sed -i "/^\[node\]$/a resolver = 127.0.0.1:$DNS_PORT\nca_file = $W/certs/ca.pem" "$CONF"

# res NAME [flags]: fedctl resolve --json into $W/NAME.json; its status in RC
res() {
	_rn=$1; shift
	fedctl -c "$CONF" --json resolve "$_rn" "$@" >"$W/$_rn.json" 2>"$W/$_rn.err"
	RC=$?
}
# j NAME EXPR: a Python expression over the JSON d of the last res NAME
j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$W/$1.json" "$2"; }
# seen EXPR: how many requests logged by the HTTPS servers satisfy EXPR (over r)
seen() { python3 -c 'import json,sys
n=0
for l in open(sys.argv[1]):
    r=json.loads(l); r.setdefault("host",None); r.setdefault("sni",None); r.setdefault("tls_sni",None); r.setdefault("path",None)
    n+=bool(eval(sys.argv[2]))
print(n)' "$L" "$1"; }
steps() { j "$1" '" ".join(s["step"] for s in d["steps"])'; }
tgt() { j "$1" '"%s|%s|%s|%s|%s" % tuple((t["host"], t["tls_name"], t["connect_host"], t["port"], ",".join(t["addresses"])) for t in d["targets"][:1])[0]'; }

# 1. IP literal: that address, 8448, Host = the name; no DNS, no well-known
res 127.0.0.1 --probe
check_eq "ip literal: steps" "ip_literal" "$(steps 127.0.0.1)"
check_eq "ip literal: Host 127.0.0.1, TLS name the IP, 127.0.0.1:8448" \
	"127.0.0.1|127.0.0.1|127.0.0.1|8448|127.0.0.1" "$(tgt 127.0.0.1)"
check_eq "ip literal: probe answered by 127.0.0.1:8448" "200 127.0.0.1:8448" \
	"$(j 127.0.0.1 'str(d["probe"]["status"])+" "+json.loads(d["probe"]["body"])["server"]["version"]')"
check_eq "ip literal: the server got Host 127.0.0.1, no SNI" 1 \
	"$(seen 'r["listen"]=="127.0.0.1:8448" and r["host"]=="127.0.0.1" and r["sni"]==""')"

# 2. hostname with a port: A/AAAA, Host name:port, no well-known, no SRV
res port.test:8451 --probe
check_eq "name:port: steps" "explicit_port address" "$(steps port.test:8451)"
check_eq "name:port: Host port.test:8451, TLS port.test, 127.0.0.1:8451" \
	"port.test:8451|port.test|port.test|8451|127.0.0.1" "$(tgt port.test:8451)"
check_eq "name:port: the target got Host port.test:8451 and SNI port.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.1:8451" and r["host"]=="port.test:8451" and r["sni"]=="port.test"')"
check_eq "name:port: no well-known asked" 0 "$(seen 'r["host"]=="port.test"')"

# IPv6: a literal in brackets, and a name with only an AAAA record
res '[::1]:8451' --probe
check_eq "IPv6 literal: Host [::1]:8451, TLS name ::1, ::1 port 8451" \
	"[::1]:8451|::1|::1|8451|::1" "$(tgt '[::1]:8451')"
check_eq "IPv6 literal: the server on [::1]:8451 got Host [::1]:8451" 1 \
	"$(seen 'r["listen"]=="[::1]:8451" and r["host"]=="[::1]:8451"')"
res v6.test:8451 --probe
check_eq "AAAA only: address ::1" "v6.test:8451|v6.test|v6.test|8451|::1" "$(tgt v6.test:8451)"
check_eq "AAAA only: [::1]:8451 got Host v6.test:8451, SNI v6.test" 1 \
	"$(seen 'r["listen"]=="[::1]:8451" and r["host"]=="v6.test:8451" and r["sni"]=="v6.test"')"

# 3. well-known delegation without port, to a name with SRV (3.3)
res wk.test --probe
check_eq "well-known -> SRV: steps" "well_known srv address" "$(steps wk.test)"
check_eq "well-known -> SRV: m.server deleg.test" "delegated deleg.test" \
	"$(j wk.test 'd["well_known"]["state"]+" "+d["well_known"]["server"]')"
check_eq "well-known -> SRV: Host and TLS name deleg.test (never the SRV target), srvtarget.test:8449" \
	"deleg.test|deleg.test|srvtarget.test|8449|127.0.0.2" "$(tgt wk.test)"
check_eq "well-known request: Host wk.test, SNI wk.test, on 127.0.0.1:443" 1 \
	"$(seen 'r["listen"]=="127.0.0.1:443" and r["host"]=="wk.test" and r["sni"]=="wk.test" and r["path"]=="/.well-known/matrix/server"')"
check_eq "well-known -> SRV: the SRV target got Host deleg.test, SNI deleg.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.2:8449" and r["host"]=="deleg.test" and r["sni"]=="deleg.test"')"
check_eq "well-known: cached 24 h by default" 86400000 "$(j wk.test 'd["well_known"]["expires_ms"]-d["resolved_ms"]' | awk '{ print int(($1 + 5000) / 10000) * 10000 }')"
check_eq "result expiry: the DNS TTL (300 s), earlier than the well-known's" 300 \
	"$(j wk.test 'round((d["expires_ms"]-d["resolved_ms"])/1000)')"

# 3.2 well-known delegation with a port: A/AAAA only, Host deleg2.test:8451
res wkport.test --probe
check_eq "well-known with port: steps" "well_known explicit_port address" "$(steps wkport.test)"
check_eq "well-known with port: Host deleg2.test:8451, TLS deleg2.test, 127.0.0.1:8451" \
	"deleg2.test:8451|deleg2.test|deleg2.test|8451|127.0.0.1" "$(tgt wkport.test)"
check_eq "well-known with port: the target got Host deleg2.test:8451, SNI deleg2.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.1:8451" and r["host"]=="deleg2.test:8451" and r["sni"]=="deleg2.test"')"

# redirects are followed (to https, through our own DNS)
res redir.test
check_eq "well-known 302 followed to wk.test's" "delegated deleg.test" \
	"$(j redir.test 'd["well_known"]["state"]+" "+d["well_known"]["server"]')"

# 4. well-known 404: SRV of the name itself, Host = the name; error cached 1 h
res nowk.test --probe
check_eq "well-known 404: steps" "well_known srv address" "$(steps nowk.test)"
check_eq "well-known 404: failed, HTTP 404" "failed HTTP 404" \
	"$(j nowk.test 'd["well_known"]["state"]+" "+d["well_known"]["error"]')"
check_eq "well-known 404: cached 1 h" 3600 "$(j nowk.test 'round((d["well_known"]["expires_ms"]-d["resolved_ms"])/1000)')"
check_eq "SRV of the name: Host nowk.test, TLS nowk.test, srvtarget.test:8449" \
	"nowk.test|nowk.test|srvtarget.test|8449|127.0.0.2" "$(tgt nowk.test)"
check_eq "SRV target got Host nowk.test, SNI nowk.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.2:8449" and r["host"]=="nowk.test" and r["sni"]=="nowk.test"')"

# invalid JSON: falls through (no SRV) to A on 8448
res badjson.test --probe
check_eq "invalid JSON: steps" "well_known srv srv_deprecated address" "$(steps badjson.test)"
check "invalid JSON: the error says so" \
	[ "$(j badjson.test 'd["well_known"]["error"].startswith("invalid JSON")')" = True ]
check_eq "invalid JSON: A on 8448, Host badjson.test" \
	"badjson.test|badjson.test|badjson.test|8448|127.0.0.1" "$(tgt badjson.test)"
check_eq "invalid JSON: 8448 got Host badjson.test, SNI badjson.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.1:8448" and r["host"]=="badjson.test" and r["sni"]=="badjson.test"')"

# a body over 50 KiB is refused
res big.test
check_eq "well-known over 50 KiB refused" "failed body larger than 50 KiB" \
	"$(j big.test 'd["well_known"]["state"]+" "+d["well_known"]["error"]')"

# 5. SRV then the deprecated SRV
res dep.test --probe
check_eq "deprecated SRV: steps" "well_known srv srv_deprecated address" "$(steps dep.test)"
check_eq "deprecated SRV: Host dep.test, deptarget.test:8450" \
	"dep.test|dep.test|deptarget.test|8450|127.0.0.3" "$(tgt dep.test)"
check_eq "deprecated SRV target got Host dep.test, SNI dep.test" 1 \
	"$(seen 'r["listen"]=="127.0.0.3:8450" and r["host"]=="dep.test" and r["sni"]=="dep.test"')"
# 6. no SRV at all: A on 8448
res plain.test
check_eq "plain: steps" "well_known srv srv_deprecated address" "$(steps plain.test)"
check_eq "plain: A on 8448" "plain.test|plain.test|plain.test|8448|127.0.0.1" "$(tgt plain.test)"
res nothere.test
check_eq "a name with no address: no target, exit 1" "1 0" "$RC $(j nothere.test 'len(d["targets"])')"

# Cache-Control max-age beyond 48 h is clamped to 48 h
res long.test
check_eq "max-age=999999 clamped to 48 h" 172800 \
	"$(j long.test 'round((d["well_known"]["expires_ms"]-d["resolved_ms"])/1000)')"

# ---- wrong names -------------------------------------------------------------
res wrong.test --probe
check_eq "wrong-name certificate at the well-known: refused" "failed" "$(j wrong.test 'd["well_known"]["state"]')"
check "wrong-name certificate: the error is the certificate's" \
	[ "$(j wrong.test '"certificate" in d["well_known"]["error"].lower() or "ssl" in d["well_known"]["error"].lower()')" = True ]
check_eq "wrong-name certificate: SNI wrong.test sent, no request made" "1 0" \
	"$(seen 'r["listen"]=="127.0.0.1:443" and r["tls_sni"]=="wrong.test"') $(seen 'r["host"]=="wrong.test"')"
check_eq "wrong-name certificate at the target (8448): probe refused, exit 1" "1 0" \
	"$RC $(j wrong.test 'd["probe"]["status"]')"
res srvcert.test --probe
check_eq "SRV target presenting its own name's certificate (not srvcert.test): refused" "1 srvcert.test" \
	"$RC $(j srvcert.test 'd["targets"][0]["tls_name"]')"
check_eq "... and no request reached it" 0 "$(seen 'r["host"]=="srvcert.test"')"
# Without [node] ca_file the test CA is not trusted: the same well-known fails.
NOCA=$T_TMP/noca.conf
grep -v '^ca_file' "$CONF" | sed "s|^state_dir = .*|state_dir = $T_TMP/noca-state|" >"$NOCA"
fedctl -c "$NOCA" --json resolve wk.test --fresh >"$W/noca.json" 2>&1
check_eq "without ca_file the private CA is not trusted" failed \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["well_known"]["state"])' "$W/noca.json")"

# ---- the cache ---------------------------------------------------------------
N0=$(seen 'r["host"]=="wk.test"')
res wk.test
check_eq "a fresh cached resolution costs no lookup" "True $N0" "$(j wk.test 'd["cached"]') $(seen 'r["host"]=="wk.test"')"
check_eq "... and gives the same target" "deleg.test|deleg.test|srvtarget.test|8449|127.0.0.2" "$(tgt wk.test)"
Q0=$(grep -c 'query\[SRV\] _matrix-fed._tcp.deleg.test' "$W/dnsmasq.log")
res wk.test
check_eq "... and no DNS query" "$Q0" "$(grep -c 'query\[SRV\] _matrix-fed._tcp.deleg.test' "$W/dnsmasq.log")"

# expired entries are refreshed: exp.test's well-known lives 1 s; its answer
# changes, and a resolution after expiry asks again and sees the new one.
res exp.test
check_eq "max-age=1: well-known cached 1 s" 1 "$(j exp.test 'round((d["well_known"]["expires_ms"]-d["resolved_ms"])/1000)')"
check_eq "max-age=1: the result expires with it" 1 "$(j exp.test 'round((d["expires_ms"]-d["resolved_ms"])/1000)')"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["exp.test /.well-known/matrix/server"]={"body":"{\"m.server\":\"deleg2.test:8451\"}"}; json.dump(r,open(sys.argv[1],"w"))' "$R"
check "expired entry refreshed: the new delegation shows" \
	wait_for "res exp.test; [ \"\$(j exp.test 'd[\"well_known\"][\"server\"]')\" = deleg2.test:8451 ]" 100
check_eq "refreshed: exp.test's well-known asked twice" 2 "$(seen 'r["host"]=="exp.test"')"
check_eq "refreshed: target deleg2.test:8451" "deleg2.test:8451|deleg2.test|deleg2.test|8451|127.0.0.1" "$(tgt exp.test)"

# Errors cached 1 h: nowk.test's well-known starts answering; with DNS TTLs
# of 1 s the result expires and is resolved again, but the failed
# well-known is reused from the cache, not asked.
stop "$DNS_PID"
dns_start 1
res nowk.test --fresh
check_eq "TTL 1 s: the result expires in 1 s, the failed well-known in 1 h" "1 3600" \
	"$(j nowk.test 'round((d["expires_ms"]-d["resolved_ms"])/1000)') $(j nowk.test 'round((d["well_known"]["expires_ms"]-d["resolved_ms"])/1000)')"
W0=$(seen 'r["host"]=="nowk.test" and r["path"]=="/.well-known/matrix/server"')
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["nowk.test /.well-known/matrix/server"]={"body":"{\"m.server\":\"deleg.test\"}"}; json.dump(r,open(sys.argv[1],"w"))' "$R"
check "DNS TTL expiry: nowk.test resolved again" \
	wait_for "res nowk.test; [ \"\$(j nowk.test 'd[\"cached\"]')\" = False ] && [ \"\$(j nowk.test 'd[\"steps\"][0][\"cached\"]')\" = True ]" 100
check_eq "error cached 1 h: the well-known was not asked again" "failed HTTP 404" \
	"$(j nowk.test 'd["well_known"]["state"]+" "+d["well_known"]["error"]')"
check_eq "... no request to nowk.test's well-known since the --fresh one" "$W0" \
	"$(seen 'r["host"]=="nowk.test" and r["path"]=="/.well-known/matrix/server"')"

# fedctl resolve prints each step (text form)
fedctl -c "$CONF" resolve wk.test >"$W/text.out" 2>&1
check "text output: steps, answers and the target" \
	sh -c "grep -q 'well_known' '$W/text.out' && grep -q 'm.server deleg.test' '$W/text.out' && grep -q 'target 1: https://deleg.test' '$W/text.out'"
fedctl -c "$CONF" resolve 'bad name' >/dev/null 2>&1
check_eq "an invalid name: exit 100" 100 "$?"

finish
