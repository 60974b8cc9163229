#!/bin/sh
# Interoperability with an implementation no one here wrote (issue 15): npm's
# @rocket.chat/federation-sdk (TypeScript, installed by scripts/deps-npm.sh
# into $FP_NODE_MODULES, default $FP_BUILD/node_modules, else
# build/node_modules), run as real Node
# processes over HTTPS on 127.0.0.1 with a test CA made here by openssl and
# given to Node through NODE_EXTRA_CA_CERTS.
#
# fedpipe node A: served (HTTPS, matrix_auth = xmatrix, the default) and
# fetchd, server name 127.0.0.1:PORT -- an IP literal, so that the SDK's own
# server-name resolution (makeSignedRequest's and its key fetcher's) goes
# straight to that address and port, no DNS, no well-known, no SRV.
# The SDK side, tests/tools/sdk/sdk_server.js, is "sdk.test": an HTTPS
# server publishing the SDK's getSignedServerKey document and answering
# federation reads from a fixture only when the SDK's verifyRequestSignature
# accepts the request; A reaches it through a [server sdk.test] section.
#
# 1. The SDK signs (makeSignedRequest, tests/tools/sdk/sdk_client.js) every
#    Matrix read to A's served (event, state_ids, event_auth, backfill,
#    get_missing_events POST): each answers correctly (the PDUs asked for,
#    each accepted by the SDK's own room v10 schema), A having fetched
#    sdk.test's key from the SDK's key document. Unsigned, tampered URI,
#    tampered query, tampered body (the SDK's own header replayed on a
#    changed request), wrong key (the SDK signing with another key under
#    sdk.test's key ID) and wrong destination (the SDK signing for another
#    server) get 401 M_UNAUTHORIZED, each with its reason in served's log.
# 2. A's fetchd fetches every op from sdk_server.js, whose SDK verifier gets
#    A's key over HTTPS from A's served and accepts each signed request;
#    fp_xmatrix headers made with another key, for another URI or for
#    another destination are refused by the same verifier.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh

if ! command -v node >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		not_ok "node is on the machine (make deps installs it; CI=true)"
	else
		skip "node is not installed (make deps installs Node.js, npm and the SDK)"
	fi
	finish
	exit $?
fi
# The modules are architecture-independent: a build tree of its own (asan's,
# clang's) uses the default build's when it has none.
if [ -z "${FP_NODE_MODULES:-}" ]; then
	FP_NODE_MODULES=$FP_BUILD/node_modules
	[ -d "$FP_NODE_MODULES" ] || [ ! -d "${FP_ROOT:-$(pwd)}/build/node_modules" ] ||
		FP_NODE_MODULES=${FP_ROOT:-$(pwd)}/build/node_modules
fi
SDK_PKG=$FP_NODE_MODULES/@rocket.chat/federation-sdk/package.json
if [ ! -f "$SDK_PKG" ]; then
	not_ok "@rocket.chat/federation-sdk installed in $FP_NODE_MODULES (run make deps, or sh scripts/deps-npm.sh)"
	finish
	exit 1
fi
diag "node $(node --version), @rocket.chat/federation-sdk $(jq -r .version "$SDK_PKG")"
export NODE_PATH="$FP_NODE_MODULES"
unset NODE_OPTIONS

# A test CA and a certificate for 127.0.0.1 signed by it (served's and the
# SDK server's), and the CA for Node.
X=$T_TMP/pki
mkdir -p "$X"
(
	cd "$X" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=fedpipe sdk interop CA" -keyout ca.key -out ca.pem
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-keyout key.pem -out req.pem
	printf 'subjectAltName=IP:127.0.0.1\n' >ext
	openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile ext -out cert.pem
) >"$X/openssl.log" 2>&1
check "test CA and certificate made" test -s "$X/cert.pem"
export NODE_EXTRA_CA_CERTS="$X/ca.pem"
CAF=$X/ca.pem

# The SDK server's signing key, another key under the same key ID (the
# wrong-key attacks), and the fixture it serves (signed PDUs of origin.test).
keygen() { printf '[node]\nsigning_key = %s\n' "$1" >"$1.conf"; fedctl -c "$1.conf" keygen >/dev/null 2>&1; }
keygen "$T_TMP/sdk.key"
keygen "$T_TMP/other.key"
SDKKV=$(cut -d' ' -f2 "$T_TMP/sdk.key")
printf 'ed25519 %s %s\n' "$SDKKV" "$(cut -d' ' -f3 "$T_TMP/other.key")" >"$T_TMP/sdk-wrong.key"
keygen "$T_TMP/origin.key"
fedpeer --make-events 4 -k "$T_TMP/origin.key" -s origin.test --room '!room:origin.test' \
	-o "$T_TMP/ev.jsonl" --ids "$T_TMP/ev.ids"
check_eq "fixture: 4 signed PDUs" 4 "$(wc -l <"$T_TMP/ev.ids")"

SDKN=sdk.test
bg node tests/tools/sdk/sdk_server.js --name "$SDKN" --key "$T_TMP/sdk.key" \
	--cert "$X/cert.pem" --tls-key "$X/key.pem" --port-file "$T_TMP/sdk.port" \
	--log "$T_TMP/sdk.jsonl" --events "$T_TMP/ev.jsonl" --ids "$T_TMP/ev.ids" \
	>>"$T_TMP/sdk_server.log" 2>&1
check "the SDK server is up" wait_for "[ -s $T_TMP/sdk.port ]" 300
S=$(cat "$T_TMP/sdk.port")

P=$(free_port)
ME=127.0.0.1:$P
A=$(node_config a "$P" "$FED_COMMON
[served]
key_wait = 10s
[server $SDKN]
endpoint = https://127.0.0.1:$S
ca = $X/ca.pem")
sed -i "s|^server_name = .*|server_name = $ME|; s|^\[node\]$|[node]\ntls_cert = $X/cert.pem\ntls_key = $X/key.pem|" "$A"
served_fill -c "$A" -N 6 -o "$T_TMP/ids" >/dev/null
node_start a fetchd served
U=https://127.0.0.1:$P
check "A's served is up over HTTPS" wait_for "curl -sf --cacert $CAF $U/healthz" 100

enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
code() { curl -s --cacert "$CAF" -o "$T_TMP/body" -w '%{http_code}' "$@"; }
errc() { jq -r .errcode "$T_TMP/body" 2>/dev/null; }
# sdkc ARGS...: one request signed and sent by the SDK as sdk.test; prints
# the status; the answer in $T_TMP/body, the header it sent in $T_TMP/hdr.
sdkc() {
	rm -f "$T_TMP/body" "$T_TMP/hdr"
	node tests/tools/sdk/sdk_client.js --name "$SDKN" --key "$T_TMP/sdk.key" --dest "$ME" \
		--out "$T_TMP/body" --header-out "$T_TMP/hdr" "$@" >"$T_TMP/client.out" 2>>"$T_TMP/client.err"
	cat "$T_TMP/client.out" >>"$T_TMP/client.log"
	status <"$T_TMP/client.out"
}
# pdu_ids FIELD: the sorted IDs of the PDUs in $T_TMP/body's FIELD, on one line.
pdu_ids() { jq -c "$1[]" "$T_TMP/body" | while read -r e; do echo "$e" | fp_pdu id 10; done | sort | tr '\n' ' '; }
# status: the status line sdk_client.js printed (the SDK's own log lines,
# JSON, may share its stdout).
status() { grep -E '^([0-9]{3}|error: .*)$' | tail -1; }
pdus_line() { grep '^pdus: ' "$T_TMP/client.out"; }
sdk_key_fetches() { jq -r 'select(.target == "/_matrix/key/v2/server") | .verdict' "$T_TMP/sdk.jsonl" | grep -c open; }

# --- 1. The SDK signs, fedpipe's served verifies ---------------------------
E1=$(sed -n 1p "$T_TMP/ids"); E2=$(sed -n 2p "$T_TMP/ids"); E3=$(sed -n 3p "$T_TMP/ids")
E4=$(sed -n 4p "$T_TMP/ids"); E6=$(sed -n 6p "$T_TMP/ids")
EV3=/_matrix/federation/v1/event/$(enc "$E3")
check_eq "SDK-signed GET event: 200" 200 "$(sdkc --method GET --uri "$EV3" --pdus pdus)"
check_eq "... the event asked for" "$E3" "$(jq -c '.pdus[0]' "$T_TMP/body" | fp_pdu id 10)"
check_eq "... a PDU the SDK's room v10 schema accepts" "pdus: 1/1 valid" "$(pdus_line)"
cp "$T_TMP/hdr" "$T_TMP/hdr.event"
check "... the SDK's header: X-Matrix, all quoted, lower-case, destination ours" \
	grep -Eq "^X-Matrix origin=\"$SDKN\",destination=\"$ME\",key=\"ed25519:$SDKKV\",sig=\"[^\"]+\"$" "$T_TMP/hdr.event"
check_eq "A fetched sdk.test's key from the SDK's key document, once" 1 "$(sdk_key_fetches)"
ROOM=$(jq -r '.pdus[0].room_id' "$T_TMP/body")
R=$(enc "$ROOM")
check_eq "SDK-signed GET state_ids (a query string): the create event is the state" "200 $E1" \
	"$(sdkc --method GET --uri "/_matrix/federation/v1/state_ids/$R" --query "event_id=$(enc "$E4")") $(jq -r '.pdu_ids[0]' "$T_TMP/body")"
check_eq "SDK-signed GET event_auth: the create event" "200 m.room.create" \
	"$(sdkc --method GET --uri "/_matrix/federation/v1/event_auth/$R/$(enc "$E4")" --pdus auth_chain) $(jq -r '.auth_chain[0].type' "$T_TMP/body")"
check_eq "... the SDK's schema accepts it" "pdus: 1/1 valid" "$(pdus_line)"
BF=/_matrix/federation/v1/backfill/$R
check_eq "SDK-signed GET backfill v=E6 limit=3: E4, E5, E6" "200 $(sed -n 4,6p "$T_TMP/ids" | sort | tr '\n' ' ')" \
	"$(sdkc --method GET --uri "$BF" --query "v=$(enc "$E6")&limit=3" --pdus pdus) $(pdu_ids .pdus)"
check_eq "... the SDK's schema accepts them" "pdus: 3/3 valid" "$(pdus_line)"
cp "$T_TMP/hdr" "$T_TMP/hdr.backfill"
printf '{"earliest_events":["%s"],"latest_events":["%s"],"limit":10}' "$E2" "$E6" >"$T_TMP/gme.json"
GP=/_matrix/federation/v1/get_missing_events/$R
check_eq "SDK-signed POST get_missing_events (body signed as content): E3, E4, E5" "200 3" \
	"$(sdkc --method POST --uri "$GP" --body "$T_TMP/gme.json" --pdus events) $(jq '.events|length' "$T_TMP/body")"
check_eq "... the SDK's schema accepts them" "pdus: 3/3 valid" "$(pdus_line)"
cp "$T_TMP/hdr" "$T_TMP/hdr.gme"
check_eq "... each of them between E2 and E6" "$(sed -n 3,5p "$T_TMP/ids" | sort | tr '\n' ' ')" "$(pdu_ids .events)"
check_eq "five reads, still one key fetch (cached)" 1 "$(sdk_key_fetches)"
check "served logged no refusal so far" sh -c "! grep -q 'M_UNAUTHORIZED\|bad signature\|wrong destination' $T_TMP/a/served.log"

# The SDK's headers replayed by curl: unchanged, accepted (the control) ...
check_eq "the SDK's event header replayed unchanged: 200" 200 "$(code -H "Authorization: $(cat "$T_TMP/hdr.event")" "$U$EV3")"
node -e 'process.stdout.write(JSON.stringify(JSON.parse(require("fs").readFileSync(process.argv[1]))))' \
	"$T_TMP/gme.json" >"$T_TMP/gme.wire"
check_eq "the SDK's POST header replayed with the same body: 200" 200 \
	"$(code -H "Authorization: $(cat "$T_TMP/hdr.gme")" -H 'Content-Type: application/json' --data-binary @"$T_TMP/gme.wire" "$U$GP")"
# ... and every attack refused.
check_eq "unsigned: 401" 401 "$(code "$U$EV3")"
check_eq "unsigned: M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check_eq "tampered URI (the SDK's header for E3 on E4): 401" 401 \
	"$(code -H "Authorization: $(cat "$T_TMP/hdr.event")" "$U/_matrix/federation/v1/event/$(enc "$E4")")"
check_eq "... M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check_eq "tampered query (the SDK's backfill header, limit=3 made 4): 401" 401 \
	"$(code -H "Authorization: $(cat "$T_TMP/hdr.backfill")" "$U$BF?v=$(enc "$E6")&limit=4")"
check_eq "... M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
sed 's/"limit":10/"limit":11/' "$T_TMP/gme.wire" >"$T_TMP/gme.tampered"
check_eq "tampered body (the SDK's POST header, limit 10 made 11): 401" 401 \
	"$(code -H "Authorization: $(cat "$T_TMP/hdr.gme")" -H 'Content-Type: application/json' --data-binary @"$T_TMP/gme.tampered" "$U$GP")"
check_eq "... M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check "tampering logged as a bad signature" grep -q "bad signature" "$T_TMP/a/served.log"
rm -f "$T_TMP/body"
W=$(node tests/tools/sdk/sdk_client.js --name "$SDKN" --key "$T_TMP/sdk-wrong.key" --dest "$ME" \
	--method GET --uri "$EV3" --out "$T_TMP/body" --header-out "$T_TMP/hdr.wrong" 2>>"$T_TMP/client.err" | status)
check_eq "wrong key (the SDK signing with another key under sdk.test's key ID): 401" 401 "$W"
check_eq "... M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check "... the request did name sdk.test's key ID" grep -q "key=\"ed25519:$SDKKV\"" "$T_TMP/hdr.wrong"
OTHER=127.0.0.1:$(free_port)
rm -f "$T_TMP/hdr"
node tests/tools/sdk/sdk_client.js --name "$SDKN" --key "$T_TMP/sdk.key" --dest "$OTHER" --dry-run \
	--method GET --uri "$EV3" --header-out "$T_TMP/hdr.dest" >>"$T_TMP/client.log" 2>>"$T_TMP/client.err"
check "the SDK signed a request for $OTHER (not sent)" grep -q "destination=\"$OTHER\"" "$T_TMP/hdr.dest"
check_eq "wrong destination (that header sent to A): 401" 401 "$(code -H "Authorization: $(cat "$T_TMP/hdr.dest")" "$U$EV3")"
check_eq "... M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check "... logged: wrong destination" grep -q "wrong destination $OTHER" "$T_TMP/a/served.log"
check_eq "after the attacks, a genuine SDK request still succeeds" 200 "$(sdkc --method GET --uri "$EV3")"

# --- 2. fedpipe's fetchd signs, the SDK verifies ---------------------------
fetch() { fedctl -c "$A" fetch "$@" --servers "$SDKN" >"$T_TMP/out" 2>"$T_TMP/err"; echo "$? $(tail -1 "$T_TMP/err")"; }
F1=$(sed -n 1p "$T_TMP/ev.ids"); F2=$(sed -n 2p "$T_TMP/ev.ids"); F3=$(sed -n 3p "$T_TMP/ev.ids")
FR='!room:origin.test'
check_eq "fetchd: event from the SDK server" "0 $SDKN" "$(fetch event "$F2")"
check_eq "... the fixture's event" "$F2" "$(jq -c '.pdus[0]' "$T_TMP/out" | fp_pdu id 10)"
check_eq "fetchd: state_ids" "0 $SDKN" "$(fetch state_ids "$F3" --room "$FR")"
check_eq "fetchd: auth_chain (event_auth)" "0 $SDKN" "$(fetch auth_chain "$F3" --room "$FR")"
check_eq "fetchd: missing_events (POST, body signed as content)" "0 $SDKN" "$(fetch missing_events "$F3" --room "$FR" --earliest "$F1" --limit 5)"
check_eq "fetchd: backfill" "0 $SDKN" "$(fetch backfill "$F3" --room "$FR" --limit 2)"
fed() { jq -c 'select(.target | startswith("/_matrix/federation/"))' "$T_TMP/sdk.jsonl"; }
check_eq "the SDK server saw five federation requests from fetchd" 5 \
	"$(fed | jq -r 'select(.origin == "'"$ME"'") | .target' | wc -l)"
check_eq "the SDK's verifier accepted every one, origin $ME" "ok $ME" \
	"$(fed | jq -r 'select(.verdict == "ok" and (.authorization[0] | contains("origin=\"'"$ME"'\""))) | "\(.verdict) \(.origin)"' | sort -u)"
check_eq "... the POST among them" 1 "$(fed | jq -r 'select(.method == "POST" and .origin == "'"$ME"'") | .verdict' | grep -c ok)"
# The key the SDK used: fetched over HTTPS from A's served, A's own.
AKEY=$(curl -s --cacert "$CAF" "$U/_matrix/key/v2/server" | jq -r '.verify_keys | to_entries[0] | "\(.key) \(.value.key)"')
check "A's key document over HTTPS" test -n "$AKEY"
AKID=${AKEY% *}
check_eq "the SDK verified with A's key as A's served publishes it" "$AKEY" \
	"$(jq -r 'select(.verdict == "ok" and .origin == "'"$ME"'") | .key_cache["'"$ME"'"] | to_entries[0] | "\(.key) \(.value.key)"' "$T_TMP/sdk.jsonl" | sort -u)"
# The same verifier refuses fedpipe-format headers that are not A's.
FQ=/_matrix/federation/v1/event/$(enc "$F2")
SU=https://127.0.0.1:$S
xm() { fp_xmatrix sign "$1" "$ME" "$2" GET "$3"; }
check_eq "control: fp_xmatrix's header with A's key: the SDK accepts it" 200 \
	"$(code -H "Authorization: $(xm "$T_TMP/a/signing.key" "$SDKN" "$FQ")" "$SU$FQ")"
AKV=${AKID#ed25519:}
printf 'ed25519 %s %s\n' "$AKV" "$(cut -d' ' -f3 "$T_TMP/other.key")" >"$T_TMP/a-wrong.key"
check_eq "A's origin and key ID, signed by another key: the SDK refuses (401)" 401 \
	"$(code -H "Authorization: $(xm "$T_TMP/a-wrong.key" "$SDKN" "$FQ")" "$SU$FQ")"
check_eq "... M_UNAUTHORIZED" M_UNAUTHORIZED "$(errc)"
check_eq "A's genuine header for another event (tampered URI): the SDK refuses (401)" 401 \
	"$(code -H "Authorization: $(xm "$T_TMP/a/signing.key" "$SDKN" "/_matrix/federation/v1/event/$(enc "$F1")")" "$SU$FQ")"
check_eq "A's genuine header for another destination: the SDK refuses (401)" 401 \
	"$(code -H "Authorization: $(xm "$T_TMP/a/signing.key" "$OTHER" "$FQ")" "$SU$FQ")"
check_eq "unsigned: the SDK refuses (401)" 401 "$(code "$SU$FQ")"
# An impostor: another fedpipe fetchd calling itself A, signing with a key A
# does not publish (under A's key ID). The SDK refuses each of its fetches.
B=$(node_config b "$(free_port)" "$FED_COMMON
[server $SDKN]
endpoint = https://127.0.0.1:$S
ca = $X/ca.pem")
sed -i "s|^server_name = .*|server_name = $ME|; s|^signing_key = .*|signing_key = $T_TMP/a-wrong.key|" "$B"
node_start b fetchd
fedctl -c "$B" fetch event "$F2" --servers "$SDKN" --max-attempts 1 >"$T_TMP/out" 2>"$T_TMP/err"
check "an impostor fetchd (A's name, another key): its fetch fails" [ $? -ne 0 ]
check "... with HTTP 401 from the SDK server" grep -q "http 401" "$T_TMP/err"
check_eq "the SDK's log: 5 refusals, 6 acceptances of $ME" "5 6" \
	"$(fed | jq -r .verdict | grep -c refused) $(fed | jq -r 'select(.verdict == "ok" and .origin == "'"$ME"'") | .verdict' | wc -l)"
finish
