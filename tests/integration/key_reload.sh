#!/bin/sh
# key_reload.sh: `fedctl keygen --rotate`, then SIGHUP, and the running
# stages sign with the new key, no restart. fetchd's federation requests
# and syncd's /_fed/v1 requests are checked by Synapse's own library
# (tests/tools/xmatrix_peer.py, python3-signedjson): a peer verifying with
# the new key accepts them after the SIGHUP (and refused them before it), a
# peer verifying with the old key refuses them after it. served's
# /_matrix/key/v2/server publishes the new key in verify_keys, signed by it
# (checked with signedjson), the rotated-out one in old_verify_keys.
# Attacks on the reload: a key file made garbage, and a file holding another
# key under the current key ID: each stage keeps its key (one log line
# saying why), stays up, and what it signs still verifies.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PY=/usr/bin/python3
if ! $PY -c 'import signedjson.key, signedjson.sign' 2>/dev/null; then
	echo "ok 1 - python3-signedjson missing # SKIP"
	finish
	exit 0
fi
P=$(free_port)
A=$(node_config a "$P")
D=$T_TMP/a
KEY=$D/signing.key
ORIGIN=a.test:$P
OLD_ID="ed25519:$(awk '{print $2}' "$KEY")"
cp "$KEY" "$T_TMP/old.key"

# Events the peers serve (signed by another server, origin.test).
printf '[node]\nsigning_key = %s/origin.key\n' "$T_TMP" >"$T_TMP/o.conf"
fedctl -c "$T_TMP/o.conf" keygen >/dev/null 2>&1
fedpeer --make-events 3 -k "$T_TMP/origin.key" -s origin.test --room '!room:origin.test' \
	-o "$T_TMP/ev.jsonl" --ids "$T_TMP/ids" || exit 1
id() { sed -n "${1}p" "$T_TMP/ids"; }

# xm_peer TAG NAME KEYFILE PORT: a peer that answers only requests from
# $ORIGIN signed with KEYFILE's key (signedjson), logged to $T_TMP/TAG.jsonl.
xm_peer() {
	bg $PY tests/tools/xmatrix_peer.py --name "$2" --origin "$ORIGIN" --key "$3" \
		--events "$T_TMP/ev.jsonl" --ids "$T_TMP/ids" --listen-port "$4" \
		--port-file "$T_TMP/$1.port" --log "$T_TMP/$1.jsonl" 2>>"$T_TMP/$1.log"
	wait_for "[ -s $T_TMP/$1.port ]" 100
}
PO=$(free_port); PN=$(free_port)
xm_peer old old.test "$T_TMP/old.key" "$PO"
: >"$T_TMP/new.jsonl"
cat >>"$A" <<CONF
[fetchd]
server_rate = 0
backoff_window = 200ms
backoff_grace = 100
[server old.test]
endpoint = http://127.0.0.1:$PO
[server new.test]
endpoint = http://127.0.0.1:$PN
[syncd]
interval = 200ms
backoff_max = 500ms
[peer old]
endpoint = http://127.0.0.1:$PO
server_name = old.test
[peer new]
endpoint = http://127.0.0.1:$PN
server_name = new.test
CONF
node_start a fetchd syncd served validated
U=http://127.0.0.1:$P
check "served up" wait_for "http_up $U/healthz"
fetch() { fedctl -c "$A" fetch event "$(id "$1")" --servers "$2" >"$T_TMP/out" 2>"$T_TMP/err"; }
# verdicts TAG TARGET_PREFIX: "key verdict" of each request to that peer.
verdicts() { jq -r "select(.target | startswith(\"$2\")) | \"\\(.params.key) \\(.verdict)\"" "$T_TMP/$1.jsonl"; }
doc() { curl -s "$U/_matrix/key/v2/server" >"$T_TMP/$1.json"; }
# selfsigned FILE KEY_ID: the document verifies with signedjson, by KEY_ID
# taken from its own verify_keys.
selfsigned() {
	$PY - "$1" "$2" "$ORIGIN" <<'PY'
import json, sys
import signedjson.key as k, signedjson.sign as s
doc, kid, name = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
alg, ver = kid.split(":", 1)
vk = k.decode_verify_key_base64(alg, ver, doc["verify_keys"][kid]["key"])
assert list(doc["signatures"][name]) == [kid], doc["signatures"]
s.verify_signed_json(doc, name, vk)
PY
}

# Before the rotation: everything signed with the old key.
fetch 1 old.test
check_eq "before: fetchd's request verified by the old-key peer" "0 $OLD_ID ok" \
	"$? $(verdicts old /_matrix/federation/ | tail -1)"
check "before: syncd's requests verified by the old-key peer" \
	wait_for "verdicts old /_fed/v1/ | grep -qx '$OLD_ID ok'"
doc before
check_eq "before: served publishes the old key" "[\"$OLD_ID\"]" "$(jq -c '.verify_keys|keys' "$T_TMP/before.json")"

fedctl -c "$A" keygen --rotate >/dev/null 2>"$T_TMP/rotate.err"
check "fedctl keygen --rotate" test $? -eq 0
NEW_ID="ed25519:$(awk '{print $2}' "$KEY")"
check "a new key ID" test "$NEW_ID" != "$OLD_ID"
xm_peer new new.test "$KEY" "$PN"

# Rotated, not yet reloaded: the stages still sign with the old key.
fetch 2 new.test
check_eq "rotated, no SIGHUP yet: fetchd still signs with the old key (the new-key peer refuses)" \
	"$OLD_ID" "$(verdicts new /_matrix/federation/ | tail -1 | cut -d' ' -f1)"

for s in fetchd syncd served; do
	n=$(grep -c "now signing with $NEW_ID" "$D/$s.log")
	eval "kill -HUP \$PID_a_$s"
	check "$s: SIGHUP: logs 'now signing with $NEW_ID'" \
		wait_for "[ \$(grep -c 'now signing with $NEW_ID' '$D/$s.log') -gt $n ]"
done

fetch 2 new.test
check_eq "after SIGHUP: fetchd's request verified by the new-key peer (signedjson)" "0 $NEW_ID ok" \
	"$? $(verdicts new /_matrix/federation/ | tail -1)"
check "and the event came back" grep -q '"message' "$T_TMP/out"
fedctl -c "$A" fetch missing_events "$(id 3)" --room '!room:origin.test' --servers new.test \
	--earliest "$(id 1)" --limit 5 >/dev/null 2>&1
check_eq "a POST (signed body) verified with the new key" "0 $NEW_ID ok" \
	"$? $(jq -r 'select(.method == "POST") | "\(.params.key) \(.verdict)"' "$T_TMP/new.jsonl" | tail -1)"
fetch 1 old.test
check_eq "the old-key peer now refuses fetchd (it signs with the new key)" "$NEW_ID" \
	"$(verdicts old /_matrix/federation/ | tail -1 | cut -d' ' -f1)"
check "syncd's requests now verified by the new-key peer" \
	wait_for "verdicts new /_fed/v1/ | grep -qx '$NEW_ID ok'"
check "syncd's requests now carry the new key at the old-key peer" \
	wait_for "verdicts old /_fed/v1/ | grep -q '^$NEW_ID '"

doc after
check_eq "served: verify_keys = the new key" "[\"$NEW_ID\"]" "$(jq -c '.verify_keys|keys' "$T_TMP/after.json")"
check_eq "served: old_verify_keys = the rotated-out key" "[\"$OLD_ID\"]" \
	"$(jq -c '.old_verify_keys|keys' "$T_TMP/after.json")"
check_eq "served: the old key's public key is the one it published before" \
	"$(jq -r ".verify_keys[\"$OLD_ID\"].key" "$T_TMP/before.json")" \
	"$(jq -r ".old_verify_keys[\"$OLD_ID\"].key" "$T_TMP/after.json")"
check "served: the document is self-signed by the new key (signedjson)" selfsigned "$T_TMP/after.json" "$NEW_ID"
curl -s "$U/_matrix/key/v2/query/$ORIGIN" >"$T_TMP/q.json"
check_eq "served as notary about itself: the new key, the old one as old" "[\"$NEW_ID\"] [\"$OLD_ID\"]" \
	"$(jq -c '.server_keys[0] | (.verify_keys|keys), (.old_verify_keys|keys)' "$T_TMP/q.json" | tr '\n' ' ' | sed 's/ $//')"

# Attack 1: the key file made garbage, then SIGHUP. Attack 2: another key
# under the current key ID. Each stage keeps the key it has, says why once,
# stays up.
cp "$KEY" "$T_TMP/good.key"
bad_reload() {   # bad_reload TAG WHAT: SIGHUP every stage with the key file as it is now
	for s in fetchd syncd served; do
		n=$(grep -c "signing_key not reloaded, still signing with $NEW_ID" "$D/$s.log")
		eval "kill -HUP \$PID_a_$s"
		check "$2: $s keeps $NEW_ID and says why in one line" \
			wait_for "[ \$(grep -c 'signing_key not reloaded, still signing with $NEW_ID' '$D/$s.log') -eq $((n + 1)) ]"
		eval "check '$2: $s still running' kill -0 \$PID_a_$s"
	done
	grep "not reloaded" "$D/fetchd.log" | tail -1 | sed 's/^/# /'
}
printf 'ed25519 x corrupted!!\n' >"$KEY"
bad_reload garbage "a corrupted key file"
check "fetchd's line names the file and the fault" \
	grep -q "not reloaded, still signing with $NEW_ID: $KEY: the seed is not base64" "$D/fetchd.log"
fetch 3 new.test
check_eq "after the corrupted key: fetchd still signs with the new key, verified" "0 $NEW_ID ok" \
	"$? $(verdicts new /_matrix/federation/ | tail -1)"
doc garbage
check "served still publishes the new key, self-signed" selfsigned "$T_TMP/garbage.json" "$NEW_ID"
# validated verifies the node's own events with its own keys: a bad file at
# a reload keeps them (current and rotated-out), with one warning.
kill -HUP "$PID_a_validated"
check "validated keeps the node's keys when the key file is bad" \
	wait_for "grep -q 'did not give the node.s keys; [0-9]* of its keys kept' '$D/validated.log'"
check "validated still running" kill -0 "$PID_a_validated"

: >"$KEY"
bad_reload empty "an empty key file"

printf '[node]\nsigning_key = %s/other.key\n' "$T_TMP" >"$T_TMP/x.conf"
fedctl -c "$T_TMP/x.conf" keygen --key-version "${NEW_ID#ed25519:}" >/dev/null 2>&1
cp "$T_TMP/other.key" "$KEY"
bad_reload reused "another key under the current key ID"
check "fetchd says the key ID is reused" grep -q "another key under the same key ID $NEW_ID" "$D/fetchd.log"
fetch 1 new.test
check_eq "fetchd still signs with the real key, verified" "0 $NEW_ID ok" \
	"$? $(verdicts new /_matrix/federation/ | tail -1)"
doc reused
check "served still publishes the real key, self-signed" selfsigned "$T_TMP/reused.json" "$NEW_ID"
check_eq "and the same public key as before the attacks" \
	"$(jq -r ".verify_keys[\"$NEW_ID\"].key" "$T_TMP/after.json")" \
	"$(jq -r ".verify_keys[\"$NEW_ID\"].key" "$T_TMP/reused.json")"

# The good key back, rotated again with <signing_key>.old then made
# unreadable: served signs with the newest key and still publishes every
# rotated-out key (the previous list plus the key it replaced).
cp "$T_TMP/good.key" "$KEY"
fedctl -c "$A" keygen --rotate >/dev/null 2>&1
ID3="ed25519:$(awk '{print $2}' "$KEY")"
printf 'garbage\n' >"$KEY.old"
n=$(grep -c "now signing with $ID3" "$D/served.log")
kill -HUP "$PID_a_served"
check "served: a good key with an unreadable .old: signs with $ID3" \
	wait_for "[ \$(grep -c 'now signing with $ID3' '$D/served.log') -gt $n ]"
check "served: says the rotated-out keys were not reread" grep -q "rotated-out keys not reread" "$D/served.log"
doc third
check_eq "served: verify_keys = $ID3" "[\"$ID3\"]" "$(jq -c '.verify_keys|keys' "$T_TMP/third.json")"
check_eq "served: old_verify_keys keeps both earlier keys" \
	"$(printf '%s\n%s\n' "$OLD_ID" "$NEW_ID" | sort | jq -R . | jq -sc .)" \
	"$(jq -c '.old_verify_keys|keys' "$T_TMP/third.json")"
check "served: self-signed by $ID3" selfsigned "$T_TMP/third.json" "$ID3"
finish
