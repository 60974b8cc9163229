#!/bin/sh
# served_key_rotation.sh: after `fedctl keygen --rotate`, served's key
# document (/_matrix/key/v2/server and the notary answer about itself)
# publishes the new key in verify_keys, signed by it, and the rotated-out
# key in old_verify_keys with its expired_ts, so events signed before the
# rotation still verify elsewhere. An unreadable .old file stops served
# with exit 100 instead of publishing a document without it.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P")
KEY=$(sed -n 's/^signing_key = //p' "$A")
OLD_ID="ed25519:$(awk '{print $2}' "$KEY")"
T0=$(date +%s%3N)
fedctl -c "$A" keygen --rotate >/dev/null 2>&1
check "fedctl keygen --rotate succeeds" test $? -eq 0
NEW_ID="ed25519:$(awk '{print $2}' "$KEY")"
check "the key ID changed" test "$OLD_ID" != "$NEW_ID"
node_start a served
U=http://127.0.0.1:$P
check "served up" wait_for "http_up $U/healthz"
curl -s "$U/_matrix/key/v2/server" >"$T_TMP/doc"
check_eq "verify_keys: the new key only" "[\"$NEW_ID\"]" "$(jq -c '.verify_keys|keys' "$T_TMP/doc")"
check_eq "old_verify_keys: the rotated-out key" "[\"$OLD_ID\"]" "$(jq -c '.old_verify_keys|keys' "$T_TMP/doc")"
ET=$(jq -r ".old_verify_keys[\"$OLD_ID\"].expired_ts" "$T_TMP/doc")
check "its expired_ts is the rotation time ($ET >= $T0)" test "$ET" -ge "$T0"
check_eq "the document is signed by the new key" "[\"$NEW_ID\"]" "$(jq -c '.signatures[]|keys' "$T_TMP/doc")"
curl -s "$U/_matrix/key/v2/query/a.test:$P" >"$T_TMP/q"
check_eq "the notary answer about ourselves carries the old key too" "[\"$OLD_ID\"]" \
	"$(jq -c '.server_keys[0].old_verify_keys|keys' "$T_TMP/q")"
stop "$PID_a_served"
printf 'garbage\n' >"$KEY.old"
served -c "$A" >"$T_TMP/bad.log" 2>&1
check_eq "an unreadable $KEY.old: exit 100" 100 "$?"
check "... saying why" grep -q 'rotated-out keys' "$T_TMP/bad.log"
exit $T_FAIL
