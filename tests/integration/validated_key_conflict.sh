#!/bin/sh
# Issue 13 item 1, validated's side: a key document fetched from a server's
# own endpoint may not change a (server, key ID) already stored. The stored
# key wins: the conflicting key is refused, logged, counted (key_conflicts)
# and dropped from validated's memory as well, so an event signed with it
# is rejected. (Before the fix the conflicting key stayed in memory, where
# validated looks first, and such an event was accepted.)
. tests/lib/lib.sh
PE=$(free_port)
CONF=$(node_config alpha "$(free_port)" "
[validated]
rescan_every = 300ms
rescan_age = 1s
key_fetch_retry = 1s
[server evil.test:$PE]
endpoint = http://127.0.0.1:$PE")
D=$T_TMP/alpha
SRV=evil.test:$PE
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
cd_root=$(pwd)
$PY - "$SRV" "$T_TMP" "$PE" <<'PY' &
import json, sys, os, threading, http.server
sys.path.insert(0, os.path.join(os.getcwd(), "tests/tools"))
from validated_pdu import new_key, key_doc, sign_event, sample_event, dumps, encode_verify_key_base64
from signedjson.key import get_verify_key
from signedjson.sign import sign_json
srv, tmp, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
k_old, k_att, k_new = new_key("old"), new_key("old"), new_key("new")
open(tmp + "/stored.json", "w").write(json.dumps(key_doc(srv, k_old)))
doc = {"server_name": srv, "valid_until_ts": 4102444800000, "old_verify_keys": {},
       "verify_keys": {"ed25519:new": {"key": encode_verify_key_base64(get_verify_key(k_new))},
                       "ed25519:old": {"key": encode_verify_key_base64(get_verify_key(k_att))}}}
doc = json.dumps(sign_json(doc, srv, k_new)).encode()
e1 = sign_event(sample_event(srv, 1), srv, k_new, 10)
e2 = sign_event(sample_event(srv, 2), srv, k_att, 10)
open(tmp + "/e1.jsonl", "w").write(dumps(e1) + "\n")
open(tmp + "/e2.jsonl", "w").write(dumps(e2) + "\n")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(tmp + "/keyfetches", "a") as f: f.write(self.path + "\n")
        body = doc if self.path.startswith("/_matrix/key/v2/server") else b"{}"
        self.send_response(200 if body is doc else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
open(tmp + "/ready", "w").close()
s.serve_forever()
PY
T_PIDS="$T_PIDS $!"
check "key server up" wait_for "[ -f $T_TMP/ready ]"
check "the old key is stored (fedctl keys import)" fedctl -c "$CONF" keys import "$T_TMP/stored.json"
LOG=$T_TMP/val.log
bg validated -c "$CONF" 2>"$LOG"; VAL=$LAST_PID
bg purgatoryd -c "$CONF"; PURG=$LAST_PID
bg fetchd -c "$CONF"; FD=$LAST_PID
check "stages up" wait_for "[ -S $D/run/validated.sock ] && [ -S $D/run/purgatoryd.sock ] && [ -S $D/run/fetchd.sock ]"
stat_of() { purgatory_tool check -c "$CONF" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
purgatory_tool submit -c "$CONF" "$T_TMP/e1.jsonl" 2>/dev/null
check "E1 (signed with the new key) fetched the document and was accepted (held: its parents are unknown)" \
	wait_for '[ "$(stat_of purgatory)" = 1 ]' 300
check "the conflicting key was refused and logged" grep -q "ed25519:old is not the key stored under that ID" "$LOG"
check "  ... and counted" sh -c "fedctl -c '$CONF' stats validated | grep -q '\"key_conflicts\":1'"
purgatory_tool submit -c "$CONF" "$T_TMP/e2.jsonl" 2>/dev/null
check "E2, signed with the conflicting key under the stored ID, is rejected" wait_for '[ "$(stat_of rejects)" = 1 ]' 300
check_eq "  ... and not held" 1 "$(stat_of purgatory)"
check_eq "the stored key is unchanged" "$(jq -r '.verify_keys["ed25519:old"].key' "$T_TMP/stored.json")" \
	"$(fedctl -c "$CONF" keys ls | grep "$SRV" | grep 'ed25519:old' | awk '{print $3}')"
stop $VAL; stop $PURG; stop $FD
finish
