#!/bin/sh
# Issue 15, where keys may come from: real validated + purgatoryd + fetchd
# and small python key servers on 127.0.0.1 (signatures by Debian's
# python3-signedjson). Each attack is refused with its reason:
#  1 a hostile server named as a hint hands out a self-signed document for S
#    with its own key: not asked (not S, not a trusted notary); S's event
#    stays unverified (unknown_key);
#  2 S's own endpoint answers a document naming another server: refused;
#  3 an expired key (event newer than valid_until_ts): the keys are fetched
#    again; refused (expired_key) when the new document is still expired,
#    accepted when it is not (a refetch extends validity);
#  4 a rotated key (old_verify_keys) used after its expired_ts: refused
#    (expired_key); before its expired_ts: accepted;
#  5 a trusted notary that swaps S's key (S's signature no longer holds), and
#    a notary countersigning with a key that is not its own: refused; a good
#    notary answer is accepted (fetchd asks notaries with POST
#    /_matrix/key/v2/query naming the key ID wanted);
#  6 fedctl keygen --rotate: the old key is published in old_verify_keys
#    with expired_ts, the node signs with the new one.
. tests/lib/lib.sh
P1=$(free_port); P2=$(free_port); P3=$(free_port); P3B=$(free_port); P4=$(free_port)
PE=$(free_port); PN=$(free_port); P5=$(free_port); P6=$(free_port); P7=$(free_port)
S1=s1.test:$P1 S2=s2.test:$P2 S3=s3.test:$P3 S3B=s3b.test:$P3B S4=s4.test:$P4
EV=evil.test:$PE NT=notary.test:$PN S5=s5.test:$P5 S6=s6.test:$P6 S7=s7.test:$P7
srv() { printf '[server %s]\nendpoint = http://127.0.0.1:%s\n' "$1" "$2"; }
pipeline_node alpha "[node]
trusted_key_servers = $NT
[validated]
key_fetch_retry = 1s
$(srv $S1 $P1)
$(srv $S2 $P2)
$(srv $S3 $P3)
$(srv $S3B $P3B)
$(srv $S4 $P4)
$(srv $EV $PE)
$(srv $NT $PN)
$(srv $S5 $P5)
$(srv $S6 $P6)
$(srv $S7 $P7)"
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
$PY - "$T_TMP" "$S1 $S2 $S3 $S3B $S4 $EV $NT $S5 $S6 $S7" <<'PY' &
import json, sys, os, threading, http.server, urllib.parse
sys.path.insert(0, os.path.join(os.getcwd(), "tests/tools"))
from validated_pdu import new_key, key_doc, sign_event, sample_event, dumps, event_id, encode_verify_key_base64
from signedjson.key import get_verify_key
from signedjson.sign import sign_json
tmp, names = sys.argv[1], sys.argv[2].split()
S1, S2, S3, S3B, S4, EV, NT, S5, S6, S7 = names
FUT = 4102444800000
def vk(k): return encode_verify_key_base64(get_verify_key(k))
def doc(server, keys, signers, until=FUT, old=None):
    d = {"server_name": server, "valid_until_ts": until, "old_verify_keys": old or {},
         "verify_keys": {"ed25519:" + k.version: {"key": vk(k)} for k in keys}}
    for sname, sk in signers: d = sign_json(d, sname, sk)
    return d
k1, kev, k2, k3, k3b, k4o, k4n, kn, kn2, k5, k6, k7 = [new_key(v) for v in
    ("s1", "s1", "s2", "s3", "s3b", "old", "new", "n1", "n1", "s5", "s6", "s7")]
# what each key server answers: (own /_matrix/key/v2/server, /query/<S> answers)
serve = {
  S1: (None, {}),
  EV: (doc(S1, [kev], [(S1, kev)]), {S1: {"server_keys": [doc(S1, [kev], [(S1, kev)])]}}),
  S2: (doc("elsewhere.test", [k2], [("elsewhere.test", k2)]), {}),
  S3: (doc(S3, [k3], [(S3, k3)], until=1600000000000), {}),
  S3B: (doc(S3B, [k3b], [(S3B, k3b)]), {}),
  S4: (doc(S4, [k4n], [(S4, k4n)], old={"ed25519:old": {"key": vk(k4o), "expired_ts": 1650000000000}}), {}),
  NT: (doc(NT, [kn], [(NT, kn)]), {
      # S5's key swapped by the notary: S5's own signature no longer holds
      S5: {"server_keys": [sign_json(dict(doc(S5, [k5], [(S5, k5)]),
              verify_keys={"ed25519:s5": {"key": vk(kev)}}), NT, kn)]},
      S6: {"server_keys": [doc(S6, [k6], [(S6, k6), (NT, kn)])]},
      # countersigned by a key that is not the notary's (kn2 under its ID)
      S7: {"server_keys": [doc(S7, [k7], [(S7, k7), (NT, kn2)])]}}),
  S5: (None, {}), S6: (None, {}), S7: (None, {}),
}
files = {
  "e1": sign_event(sample_event(S1, 1), S1, kev, 10),
  "e2": sign_event(sample_event(S2, 2), S2, k2, 10),
  "e3": sign_event(sample_event(S3, 3), S3, k3, 10),
  "e3b": sign_event(sample_event(S3B, 4), S3B, k3b, 10),
  "e4": sign_event(sample_event(S4, 5), S4, k4o, 10),
  "e4ok": sign_event(dict(sample_event(S4, 6), origin_server_ts=1600000000000), S4, k4o, 10),
  "e5": sign_event(sample_event(S5, 7), S5, kev, 10),
  "e6": sign_event(sample_event(S6, 8), S6, k6, 10),
  "e7": sign_event(sample_event(S7, 9), S7, k7, 10),
}
for n, e in files.items():
    open("%s/%s.jsonl" % (tmp, n), "w").write(dumps(e) + "\n")
    open("%s/%s.id" % (tmp, n), "w").write(event_id(e, 10))
# the operator's copies of S3's and S3B's keys: both already expired
open(tmp + "/s3.json", "w").write(json.dumps([doc(S3, [k3], [(S3, k3)], until=1600000000000),
                                              doc(S3B, [k3b], [(S3B, k3b)], until=1600000000000)]))
def handler(name):
    own, query = serve[name]
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self): self.answer(None)
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0") or 0)
            self.answer(self.rfile.read(n))
        def answer(self, post):
            with open("%s/hits.%s" % (tmp, name.split(".")[0]), "a") as f:
                f.write(self.command + " " + self.path + (" " + post.decode() if post else "") + "\n")
            body = None
            if self.path.startswith("/_matrix/key/v2/server"): body = own
            elif self.path.startswith("/_matrix/key/v2/query/"):
                body = query.get(urllib.parse.unquote(self.path[len("/_matrix/key/v2/query/"):].split("?")[0]))
            elif self.path == "/_matrix/key/v2/query" and post is not None:
                # the spec's POST: {"server_keys":{S:{key ID:{criteria}}}}, one server here
                asked = list(json.loads(post).get("server_keys", {}))
                body = query.get(asked[0]) if len(asked) == 1 else None
            body = json.dumps(body).encode() if body is not None else b'{"errcode":"M_NOT_FOUND"}'
            self.send_response(404 if body.startswith(b'{"errcode"') else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def log_message(self, *a): pass
    return H
for name in names:
    s = http.server.ThreadingHTTPServer(("127.0.0.1", int(name.split(":")[1])), handler(name))
    threading.Thread(target=s.serve_forever, daemon=True).start()
open(tmp + "/ready", "w").close()
threading.Event().wait()
PY
T_PIDS="$T_PIDS $!"
check "key servers up" wait_for "[ -f $T_TMP/ready ]" 200
check "the operator imports expired keys of s3, s3b" fedctl -c "$CONF" keys import "$T_TMP/s3.json"
VLOG=$T_TMP/val.log FLOG=$T_TMP/fetchd.log
bg validated -c "$CONF" 2>"$VLOG"; VAL=$LAST_PID
bg purgatoryd -c "$CONF" 2>/dev/null; PURG=$LAST_PID
bg fetchd -c "$CONF" 2>"$FLOG"; FD=$LAST_PID
check "stages up" wait_for "[ -S $D/run/validated.sock ] && [ -S $D/run/purgatoryd.sock ] && [ -S $D/run/fetchd.sock ]"
id_of() { cat "$T_TMP/$1.id"; }
rejected() { grep -q "reject $(id_of $1) .*: $2:" "$VLOG"; }
submit() { purgatory_tool submit -c "$CONF" "$T_TMP/$1.jsonl" 2>/dev/null; }
keys_of() { fedctl -c "$CONF" keys ls --json | jq -r --arg s "$1" '[.[] | select(.server == $s) | .key] | join(",")'; }

# 1: a hostile hint
OUT=$(fedctl -c "$CONF" fetch server_keys "$S1" --servers "$EV" --timeout 3000 2>&1)
check "1 hostile hint: fedctl fetch of S1's keys with hint evil gets no document" sh -c "! echo '$OUT' | grep -q verify_keys"
check "  ... evil was not asked (its reason logged)" grep -q "$EV is neither the server nor a trusted notary" "$FLOG"
check "  ... and evil saw no request" sh -c "[ ! -s $T_TMP/hits.evil ]"
submit e1
check "  ... S1's event, signed with evil's key, is rejected unknown_key" wait_for "rejected e1 unknown_key" 300
check_eq "  ... no key of S1 stored" "" "$(keys_of "$S1")"

# 2: the origin names another server
submit e2
check "2 origin document naming another server: refused (fetchd)" wait_for "grep -q 'keys of $S2 from $S2 refused: the document names elsewhere.test, not $S2' $FLOG" 300
check "  ... S2's event rejected unknown_key" wait_for "rejected e2 unknown_key" 300
check_eq "  ... no key stored for S2 or elsewhere.test" "," "$(keys_of "$S2"),$(keys_of elsewhere.test)"

# 3: expired keys are fetched again
submit e3; submit e3b
check "3 expired key: S3's keys fetched again" wait_for "[ -s $T_TMP/hits.s3 ]" 300
check "  ... still expired: rejected expired_key" wait_for "rejected e3 expired_key" 300
check "  ... S3B's refetched document is valid: its event accepted (held: parents unknown)" wait_for "[ \"\$(stat_of purgatory)\" = 1 ] && [ -s $T_TMP/hits.s3b ]" 300
check "  ... and not rejected" sh -c "! grep -q 'reject $(id_of e3b)' $VLOG"
check "  ... S3B's key now fetched (provenance: fetched)" sh -c "fedctl -c '$CONF' keys ls | grep '$S3B' | grep -q fetched"

# 4: a rotated key after its expired_ts
submit e4; submit e4ok
check "4 rotated key used after expired_ts: rejected expired_key" wait_for "rejected e4 expired_key" 300
check "  ... the same old key before its expired_ts: accepted" wait_for "[ \"\$(stat_of purgatory)\" = 2 ]" 300
check "  ... and not rejected" sh -c "! grep -q 'reject $(id_of e4ok)' $VLOG"

# 5: notaries (asked with POST /_matrix/key/v2/query)
submit e5
check "5 a notary swapping S5's key: refused (S5's signature fails)" wait_for "grep -q 'keys of $S5 from $NT refused: $S5: not signed by any of its own' $FLOG" 300
check "  ... S5's event rejected" wait_for "rejected e5 unknown_key" 300
check_eq "  ... no key of S5 stored" "" "$(keys_of "$S5")"
check "  ... the notary's own key was fetched from the notary" wait_for "grep -q 'stored 1 key(s) of $NT (from $NT)' $VLOG" 300
submit e6
submit e7
check "  a notary countersigning with a key not its own: refused" wait_for "grep -q 'keys of $S7 from $NT refused: the notary $NT.s signature ed25519:n1 does not verify' $FLOG" 300
check "  ... S7's event rejected" wait_for "rejected e7 unknown_key" 300
check_eq "  ... no key of S7 stored" "" "$(keys_of "$S7")"
check "  a good notary answer (signed by S6 and the notary): S6's event accepted" wait_for "[ \"\$(stat_of purgatory)\" = 3 ]" 300
check "  the notary was asked with POST, naming the key ID wanted and minimum_valid_until_ts" grep -q "^POST /_matrix/key/v2/query {\"server_keys\":{\"$S6\":{\"ed25519:s6\":{\"minimum_valid_until_ts\":[0-9]*}}}}\$" $T_TMP/hits.notary
check "  the notary was never asked for its own keys by another" sh -c "! grep -q 'query.*$NT' $T_TMP/hits.notary 2>/dev/null"

# 6: rotation of the node's own key
OLDPK=$(fedctl -c "$CONF" keys doc | jq -r '.verify_keys | to_entries[0].value.key')
OLDID=$(fedctl -c "$CONF" keys doc | jq -r '.verify_keys | keys[0]')
check "6 fedctl keygen --rotate" sh -c "fedctl -c '$CONF' keygen --rotate >$T_TMP/rot.out 2>/dev/null"
NEWID=$(cut -d' ' -f1 "$T_TMP/rot.out")
check "  ... a new key ID, not the old one" sh -c "[ -n '$NEWID' ] && [ -n '$OLDID' ] && [ '$NEWID' != '$OLDID' ]"
DOC=$(fedctl -c "$CONF" keys doc)
check_eq "  ... the document's verify_keys: the new key only" "$NEWID" "$(echo "$DOC" | jq -r '.verify_keys | keys | join(",")')"
check_eq "  ... old_verify_keys: the old key" "$OLDPK" "$(echo "$DOC" | jq -r --arg k "$OLDID" '.old_verify_keys[$k].key')"
check "  ... with an expired_ts" sh -c "echo '$DOC' | jq -e --arg k '$OLDID' '.old_verify_keys[\$k].expired_ts > 1700000000000' >/dev/null"
check "  ... self-signed by the new key (python3-signedjson)" $PY -c "
import json, sys
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64
d = json.loads(sys.argv[1]); kid = sys.argv[2]
verify_signed_json(d, d['server_name'], decode_verify_key_bytes(kid, decode_base64(d['verify_keys'][kid]['key'])))" "$DOC" "$NEWID"
check "  ... <signing_key>.old has the old key line" grep -q "^$OLDID $OLDPK [0-9]*\$" "$D/signing.key.old"
check "  ... fedctl sign now signs with the new key" sh -c "echo '{\"type\":\"m.room.message\",\"room_id\":\"!r:x\",\"sender\":\"@a:x\",\"content\":{},\"origin_server_ts\":1,\"depth\":1,\"prev_events\":[],\"auth_events\":[]}' | fedctl -c '$CONF' sign 2>/dev/null | grep -q '\"$NEWID\"'"
stop $VAL; stop $PURG; stop $FD
finish
