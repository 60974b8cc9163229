#!/bin/sh
# fedpipe as a notary (issue 15, "Where keys may come from"), with real
# processes on 127.0.0.1:
#  - S: a homeserver key endpoint (tests/tools/served_keyserver.py,
#    python3-signedjson) serving its self-signed document;
#  - N: a fedpipe node (validated, purgatoryd, fetchd, served) that verifies
#    an event of S, so stores S's keys and S's signed document; its served
#    answers POST /_matrix/key/v2/query and GET .../query/{S}[/{keyId}] with
#    S's document countersigned by N (both signatures checked by
#    python3-signedjson), filtered by minimum_valid_until_ts; a server N
#    never verified is absent; an operator-imported document is served too;
#  - B: a second fedpipe node with [node] trusted_key_servers = N, H, which
#    cannot reach S at all: it learns S's key through N's POST answer and
#    accepts S's event; B's own served then answers for S with S's, N's and
#    B's signatures; N, peering with B ([peer], syncd), serves B's document;
#  - attacks: H, a trusted notary (python), countersigns a document of S2
#    whose S2 signature no longer holds (its key swapped): B refuses it and
#    rejects S2's event unknown_key; U, a notary B does not trust, is never
#    asked for S3's keys and S3's event is rejected unknown_key.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
PS=$(free_port); PN=$(free_port); PB=$(free_port); PH=$(free_port); PU=$(free_port)
PDEAD=$(free_port); PS2=$(free_port); PS3=$(free_port)
S=s.test:$PS N=n.test:$PN B_NAME=b.test:$PB H=h.test:$PH U=u.test:$PU S2=s2.test:$PS2 S3=s3.test:$PS3
node_config s "$PS" >/dev/null
NC=$(node_config n "$PN" "$FED_COMMON
[server $S]
endpoint = http://127.0.0.1:$PS")
BC=$(node_config b "$PB" "$FED_COMMON
[validated]
key_fetch_retry = 1s
[server $N]
endpoint = http://127.0.0.1:$PN
[server $H]
endpoint = http://127.0.0.1:$PH
[server $U]
endpoint = http://127.0.0.1:$PU
[server $S]
endpoint = http://127.0.0.1:$PDEAD
[server $S2]
endpoint = http://127.0.0.1:$PDEAD
[server $S3]
endpoint = http://127.0.0.1:$PDEAD")
sed -i "s/^\[node\]\$/[node]\ntrusted_key_servers = $N, $H\nshared_key = k3y/" "$BC"
bg "$PY" tests/tools/served_keyserver.py "$T_TMP/s/signing.key" "$S" "$PS" "$T_TMP/hits.s"

# Events and the python notaries H (trusted by B, hostile) and U (not trusted).
$PY - "$T_TMP" "$S $N $H $U $S2 $S3" <<'PY' &
import json, sys, os, threading, http.server
sys.path.insert(0, os.path.join(os.getcwd(), "tests/tools"))
from validated_pdu import new_key, sign_event, sample_event, dumps, event_id, encode_verify_key_base64
from signedjson.key import get_verify_key, read_signing_keys
from signedjson.sign import sign_json
tmp, names = sys.argv[1], sys.argv[2].split()
S, N, H, U, S2, S3 = names
FUT = 4102444800000
ks = read_signing_keys(open(tmp + "/s/signing.key"))[0]
kn = read_signing_keys(open(tmp + "/n/signing.key"))[0]
kh, ku, k2, k2x, k3, k4 = [new_key(v) for v in ("h1", "u1", "s2", "s2", "s3", "s4")]
def vk(k): return encode_verify_key_base64(get_verify_key(k))
def doc(server, keys, signers, until=FUT):
    d = {"server_name": server, "valid_until_ts": until, "old_verify_keys": {},
         "verify_keys": {"ed25519:" + k.version: {"key": vk(k)} for k in keys}}
    for sname, sk in signers: d = sign_json(d, sname, sk)
    return d
files = {
  "es1": sign_event(sample_event(S, 1), S, ks, 10),     # to N: N fetches S's keys from S
  "es2": sign_event(sample_event(S, 2), S, ks, 10),     # to B: through N
  "en": sign_event(sample_event(N, 3), N, kn, 10),      # to B: B fetches N's own keys from N
  "eh": sign_event(sample_event(H, 4), H, kh, 10),      # to B: B fetches H's own keys from H
  "e2": sign_event(sample_event(S2, 5), S2, k2x, 10),   # to B: H's tampered answer
  "e3": sign_event(sample_event(S3, 6), S3, k3, 10),    # to B: only U would answer
}
for n, e in files.items():
    open("%s/%s.jsonl" % (tmp, n), "w").write(dumps(e) + "\n")
    open("%s/%s.id" % (tmp, n), "w").write(event_id(e, 10))
# S2's real document, its key swapped for k2x afterwards (S2's signature no
# longer holds), then countersigned by H
bad = doc(S2, [k2], [(S2, k2)])
bad["verify_keys"] = {"ed25519:s2": {"key": vk(k2x)}}
bad = sign_json(bad, H, kh)
serve = {
  H: (doc(H, [kh], [(H, kh)]), {S2: bad}),
  U: (doc(U, [ku], [(U, ku)]), {S3: doc(S3, [k3], [(S3, k3), (U, ku)])}),
}
# an operator's copy of S4's document, for N's fedctl keys import
json.dump(doc("s4.test", [k4], [("s4.test", k4)]), open(tmp + "/s4.json", "w"))
def handler(name):
    own, query = serve[name]
    class Hd(http.server.BaseHTTPRequestHandler):
        def do_GET(self): self.answer(None)
        def do_POST(self): self.answer(self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)))
        def answer(self, post):
            with open("%s/hits.%s" % (tmp, name.split(".")[0]), "a") as f:
                f.write(self.command + " " + self.path + "\n")
            body = None
            if self.path == "/_matrix/key/v2/server": body = own
            elif self.path == "/_matrix/key/v2/query" and post:
                asked = json.loads(post).get("server_keys", {})
                body = {"server_keys": [query[s] for s in asked if s in query]}
            body = json.dumps(body).encode() if body is not None else b'{"errcode":"M_NOT_FOUND"}'
            self.send_response(404 if body.startswith(b'{"errcode"') else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def log_message(self, *a): pass
    return Hd
for name in (H, U):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", int(name.split(":")[1])), handler(name))
    threading.Thread(target=s.serve_forever, daemon=True).start()
open(tmp + "/ready", "w").close()
threading.Event().wait()
PY
T_PIDS="$T_PIDS $!"
check "python key servers up" wait_for "[ -f $T_TMP/ready ] && http_up http://127.0.0.1:$PS/"

node_start n validated purgatoryd fetchd served
UN=http://127.0.0.1:$PN
check "N up" wait_for "http_up $UN/healthz"
id_of() { cat "$T_TMP/$1.id"; }
submit() { purgatory_tool submit -c "$1" "$T_TMP/$2.jsonl" 2>/dev/null; }
code() { curl -s -o "$T_TMP/body" -w '%{http_code}' "$@"; }
post() { code -X POST -H 'Content-Type: application/json' -d "$1" "$UN/_matrix/key/v2/query"; }
names() { jq -r '[.server_keys[].server_name] | join(",")' "$T_TMP/body"; }

# Before N verified anything of S: nothing to say about S.
check_eq "N before it verified S: an empty list for S" "200 " "$(post "{\"server_keys\":{\"$S\":{}}}") $(names)"

# N verifies an event of S: S's keys and document fetched from S itself.
submit "$NC" es1
check "N fetched and stored S's keys (from S)" wait_for "grep -q 'stored 1 key(s) of $S (from $S)' $T_TMP/n/validated.log" 300
KID=$(fedctl -c "$NC" keys ls --json | jq -r --arg s "$S" '.[] | select(.server == $s) | .key_id')
check "  ... fedctl keys ls lists S's key, not the document row" sh -c "[ '$KID' = 'ed25519:$(cut -d' ' -f2 "$T_TMP/s/signing.key")' ]"

check_eq "POST query for S: S's document" "200 $S" "$(post "{\"server_keys\":{\"$S\":{}}}") $(names)"
cp "$T_TMP/body" "$T_TMP/answer.json"
curl -s "$UN/_matrix/key/v2/server" >"$T_TMP/n.json"
verify() {
	$PY - "$T_TMP/answer.json" "$T_TMP/n.json" "$1" <<'PY'
import json, sys
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64
ans, nd, who = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
def key_of(d):
    kid, v = next(iter(d["verify_keys"].items()))
    return decode_verify_key_bytes(kid, decode_base64(v["key"]))
d = ans["server_keys"][0]
if who == "origin": verify_signed_json(d, d["server_name"], key_of(d))
else: verify_signed_json(d, nd["server_name"], key_of(nd))
PY
}
check "  ... S's own signature holds (python3-signedjson)" verify origin
check "  ... N's countersignature holds, by N's published key (python3-signedjson)" verify notary
check_eq "  ... both signatures present" "2" "$(jq '.server_keys[0].signatures | length' "$T_TMP/answer.json")"
check_eq "  ... S's keys as S published them" "$(curl -s http://127.0.0.1:$PS/_matrix/key/v2/server | jq -c .verify_keys)" \
	"$(jq -c '.server_keys[0].verify_keys' "$T_TMP/answer.json")"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
check_eq "GET query/{S}: S's document" "200 $S" "$(code "$UN/_matrix/key/v2/query/$(enc "$S")") $(names)"
check_eq "GET query/{S}/{keyId}: S's document" "200 $S" "$(code "$UN/_matrix/key/v2/query/$(enc "$S")/$(enc "$KID")") $(names)"
check_eq "GET query/{S}/{another keyId}: none" "200 " "$(code "$UN/_matrix/key/v2/query/$(enc "$S")/ed25519:nope") $(names)"
# minimum_valid_until_ts: S's document is valid for an hour
FAR=4102444800000
check_eq "minimum_valid_until_ts beyond the document's validity: left out (POST)" "200 " \
	"$(post "{\"server_keys\":{\"$S\":{\"$KID\":{\"minimum_valid_until_ts\":$FAR}}}}") $(names)"
check_eq "minimum_valid_until_ts within it: returned (POST)" "200 $S" \
	"$(post "{\"server_keys\":{\"$S\":{\"$KID\":{\"minimum_valid_until_ts\":1700000000000}}}}") $(names)"
check_eq "minimum_valid_until_ts beyond it: left out (GET)" "200 " \
	"$(code "$UN/_matrix/key/v2/query/$(enc "$S")?minimum_valid_until_ts=$FAR") $(names)"
check_eq "a server N never verified: absent (S listed too: only S)" "200 $S" \
	"$(post "{\"server_keys\":{\"$S2\":{},\"$S\":{}}}") $(names)"
check_eq "N itself: its own document" "200 $N" "$(post "{\"server_keys\":{\"$N\":{}}}") $(names)"
check_eq "bad body: 400" 400 "$(post '{"server_keys":[1]}')"
check_eq "bad minimum_valid_until_ts: 400" 400 "$(post "{\"server_keys\":{\"$S\":{\"$KID\":{\"minimum_valid_until_ts\":\"x\"}}}}")"
check_eq "bad GET minimum_valid_until_ts: 400" 400 "$(code "$UN/_matrix/key/v2/query/$(enc "$S")?minimum_valid_until_ts=-1")"
# The operator's import of a whole document: served, countersigned.
check "fedctl keys import of S4's document on N" sh -c "fedctl -c '$NC' keys import '$T_TMP/s4.json' >/dev/null"
check_eq "  ... N answers for s4.test, countersigned" "200 s4.test 2" \
	"$(post '{"server_keys":{"s4.test":{}}}') $(names) $(jq '.server_keys[0].signatures | length' "$T_TMP/body")"

# B learns S's key through N (S is unreachable from B).
node_start b validated purgatoryd fetchd
submit "$BC" en
check "B fetched N's own keys from N" wait_for "grep -q 'stored 1 key(s) of $N (from $N)' $T_TMP/b/validated.log" 300
submit "$BC" eh
check "B fetched H's own keys from H" wait_for "grep -q 'stored 1 key(s) of $H (from $H)' $T_TMP/b/validated.log" 300
CONF=$BC
check "  ... N's and H's events accepted (held: parents unknown)" wait_for "[ \"\$(stat_of purgatory)\" = 2 ]" 300
submit "$BC" es2
check "B stored S's key from N's answer" wait_for "grep -q 'stored 1 key(s) of $S (from $N)' $T_TMP/b/validated.log" 300
check "  ... S's event accepted" wait_for "[ \"\$(stat_of purgatory)\" = 3 ]" 300
check "  ... and not rejected" sh -c "! grep -q 'reject $(id_of es2)' $T_TMP/b/validated.log"
check "  ... B's fetchd asked N the POST form (/_matrix/key/v2/query, no server in the path)" \
	grep -q "fetch server_keys $S -> http://127.0.0.1:$PN/_matrix/key/v2/query\$" "$T_TMP/b/fetchd.log"
# B, a notary in turn: S's document as N handed it over, S's signature kept.
node_start b served
check "B's served up" wait_for "http_up http://127.0.0.1:$PB/healthz"
UN=http://127.0.0.1:$PB
check_eq "B answers for S (learnt through N): S, N and B signatures" "200 $S $(printf '%s\n' "$B_NAME" "$N" "$S" | LC_ALL=C sort | paste -sd,)" \
	"$(post "{\"server_keys\":{\"$S\":{}}}") $(names) $(jq -r '.server_keys[0].signatures | keys | join(",")' "$T_TMP/body")"
cp "$T_TMP/body" "$T_TMP/answer.json"
curl -s "$UN/_matrix/key/v2/server" >"$T_TMP/n.json"
check "  ... S's own signature holds (python3-signedjson)" verify origin
check "  ... B's countersignature holds (python3-signedjson)" verify notary

# Attack: H countersigns a document of S2 whose S2 signature does not hold.
submit "$BC" e2
check "H's countersigned, tampered document of S2: refused (S2's signature)" \
	wait_for "grep -q 'keys of $S2 from $H refused: $S2: not signed by any of its own' $T_TMP/b/fetchd.log" 300
check "  ... H was asked with POST" grep -q "^POST /_matrix/key/v2/query" "$T_TMP/hits.h"
check "  ... S2's event rejected unknown_key" wait_for "grep -q 'reject $(id_of e2) .*: unknown_key:' $T_TMP/b/validated.log" 300
check_eq "  ... no key of S2 stored" "" \
	"$(fedctl -c "$BC" keys ls --json | jq -r --arg s "$S2" '[.[] | select(.server == $s)] | map(.key) | join(",")')"

# Attack: U, a notary B does not trust, holds a good answer for S3: never asked.
submit "$BC" e3
check "S3's event rejected unknown_key (only an untrusted notary has its keys)" \
	wait_for "grep -q 'reject $(id_of e3) .*: unknown_key:' $T_TMP/b/validated.log" 300
check "  ... U was never asked" sh -c "[ ! -s $T_TMP/hits.u ]"
OUT=$(fedctl -c "$BC" fetch server_keys "$S3" --servers "$U" --timeout 3000 2>&1)
check "  ... even named as a hint: not asked, and why" grep -q "$U is neither the server nor a trusted notary" "$T_TMP/b/fetchd.log"
check "  ... still no request at U" sh -c "[ ! -s $T_TMP/hits.u ]"

# A [peer]'s own document (syncd): N peers with B and serves B's document.
cat >>"$NC" <<CONF
[peer b]
endpoint = http://127.0.0.1:$PB
server_name = $B_NAME
key = k3y
CONF
node_start n syncd
check "N's syncd stored its peer B's key" wait_for "grep -q 'stored 1 verify key(s) of $B_NAME' $T_TMP/n/syncd.log" 300
UN=http://127.0.0.1:$PN
check_eq "N answers for B (its peer's document), countersigned by N" "200 $B_NAME $B_NAME,$N" \
	"$(post "{\"server_keys\":{\"$B_NAME\":{}}}") $(names) $(jq -r '.server_keys[0].signatures | keys | join(",")' "$T_TMP/body")"
cp "$T_TMP/body" "$T_TMP/answer.json"
curl -s "$UN/_matrix/key/v2/server" >"$T_TMP/n.json"
check "  ... B's own signature holds (python3-signedjson)" verify origin
check "  ... N's countersignature holds (python3-signedjson)" verify notary
finish
