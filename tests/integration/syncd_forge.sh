#!/bin/sh
# Issue 13 item 1: a sync peer cannot make this node accept events forged
# "from" another server. Real nodes on 127.0.0.1: V is the real
# victim.example; attackers E1, E2, E3 run served with events "from"
# @fill:victim.example signed with their own keys. B pulls from them with
# every stage running (its fetchd knows the real victim.example).
#  e1: [peer] server_name = e1.test:P, but E1 says victim.example: refused.
#  e2: no server_name: pinned as e2.test:P at first success (its honest
#      events are stored: the pipeline works), then E2 renames itself
#      victim.example: refused like a node ID change, until `peer reset`.
#  e3: no server_name, first contact as victim.example with a key document
#      reusing the real victim's key ID with another public key: the stored
#      key does not change; refused, logged once, counted key_conflicts.
# Nothing "from" victim.example is stored, and B keeps V's real key.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PV=$(free_port); PB=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port)
V=$(node_config v "$PV" "$FED_COMMON$FED_OPEN")
sed -i 's/^server_name = .*/server_name = victim.example/' "$V"
E1=$(node_config e1 "$P1")
sed -i 's/^server_name = .*/server_name = victim.example/' "$E1"
E2=$(node_config e2 "$P2")
E3=$(node_config e3 "$P3")
sed -i 's/^server_name = .*/server_name = victim.example/' "$E3"
# E3's key reuses the victim's key version (key ID) with its own seed.
VVER=$(cut -d' ' -f2 "$T_TMP/v/signing.key")
printf 'ed25519 %s %s\n' "$VVER" "$(cut -d' ' -f3 "$T_TMP/e3/signing.key")" >"$T_TMP/e3/signing.key"
VPK=$(fedctl -c "$V" keys doc | jq -r '.verify_keys[].key')
E3PK=$(fedctl -c "$E3" keys doc | jq -r '.verify_keys[].key')
check "E3 claims the victim's key ID with another key" sh -c "[ '$VPK' != '$E3PK' ] && fedctl -c '$E3' keys doc | jq -e '.verify_keys[\"ed25519:$VVER\"]' >/dev/null"
served_fill -c "$V" -N 3 >/dev/null
served_fill -c "$E1" -N 5 >/dev/null
served_fill -c "$E2" -N 3 >/dev/null
served_fill -c "$E3" -N 5 >/dev/null
node_start v served
node_start e1 served
node_start e2 served
node_start e3 served
check "V, E1, E2, E3 up" wait_for "http_up http://127.0.0.1:$PV/healthz && http_up http://127.0.0.1:$P1/healthz && http_up http://127.0.0.1:$P2/healthz && http_up http://127.0.0.1:$P3/healthz"
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[syncd]
interval = 300ms
backoff_max = 1s
longpoll = 0
[peer e1]
endpoint = http://127.0.0.1:$P1
server_name = e1.test:$P1
[peer e2]
endpoint = http://127.0.0.1:$P2
[peer e3]
endpoint = http://127.0.0.1:$P3
[server victim.example]
endpoint = http://127.0.0.1:$PV")
# B already holds the real victim's key (an operator import; a fetch from
# the origin would do the same).
fedctl -c "$V" keys doc >"$T_TMP/v.key.json"
fedctl -c "$B" keys import "$T_TMP/v.key.json" >/dev/null
check_eq "B holds victim.example's real key" "$VPK" "$(fedctl -c "$B" keys ls --json | jq -r '.[] | select(.server == "victim.example") | .key')"
peer() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
victim_events() { mdb_dump -p -s events "$T_TMP/b/state" 2>/dev/null | grep -c 'fill:victim\.example'; }
node_start b validated purgatoryd fetchd syncd

check "e2 (honest at first) syncs as e2.test" wait_for "[ \"\$(peer e2 cursor)\" = 4 ] && [ \"\$(peer e2 health)\" = ok ]" 200
check "e2's events are stored (the pipeline accepts honest peers)" wait_for \
	"[ \$(mdb_dump -p -s events $T_TMP/b/state | grep -c 'fill:e2\\.test') = 4 ]" 200
check_eq "e2 pinned as e2.test" "e2.test:$P2" "$(peer e2 server_name)"

# e1: the configured name wins over what the peer says.
check "e1 (says victim.example, configured e1.test) refused: name_mismatch" wait_for "[ \"\$(peer e1 health)\" = name_mismatch ]" 200
check "the refusal is logged" grep -q "peer e1 .*name_mismatch: peer says it is victim.example, but \[peer e1\] server_name = e1.test:$P1" "$T_TMP/b/syncd.log"
check_eq "nothing pulled from e1" 0 "$(peer e1 cursor)"

# e3: first contact as victim.example, key ID taken: refused.
check "e3's key document refused: key_conflict" wait_for "[ \"\$(peer e3 health)\" = key_conflict ]" 200
check "e3 refused again after backoff (failures >= 3)" wait_for \
	"fedctl -c $B peers e3 --json | jq -e '.[0].health_message | test(\"differ\")' >/dev/null && [ \$(grep -c 'peer e3: still key_conflict' $T_TMP/b/syncd.log) -ge 2 ]" 300
check_eq "the conflict is logged once per (server, key)" 1 "$(grep -c "key conflict: its key document gives victim.example key ed25519:$VVER = $E3PK" "$T_TMP/b/syncd.log")"
check "key_conflicts counted (>= 3)" sh -c "[ \"\$(fedctl -c '$B' stats syncd | grep -o '\"key_conflicts\":[0-9]*' | cut -d: -f2)\" -ge 3 ]"
check "identity_refused counted" sh -c "[ \"\$(fedctl -c '$B' stats syncd | grep -o '\"identity_refused\":[0-9]*' | cut -d: -f2)\" -ge 1 ]"
check_eq "nothing pulled from e3" 0 "$(peer e3 cursor)"

# e2 renames itself victim.example (same store, same node ID).
stop "$PID_e2_served"
sed -i 's/^server_name = .*/server_name = victim.example/' "$E2"
served_fill -c "$E2" -N 5 >/dev/null
node_start e2 served
check "e2's name change refused: identity_changed" wait_for "[ \"\$(peer e2 health)\" = identity_changed ]" 200
check "the log names the change and the reset command" grep -q "peer e2 .*server name changed from e2.test:$P2 to victim.example: refusing to sync with it.*fedctl peer reset e2" "$T_TMP/b/syncd.log"
sleep 1.5
check_eq "e2's cursor untouched while refused" 4 "$(peer e2 cursor)"
check_eq "e2 still pinned as e2.test" "e2.test:$P2" "$(peer e2 server_name)"

# The outcome that matters: no event "from" victim.example stored, and the
# only key B holds for victim.example is the real one.
check_eq "no forged event stored" 0 "$(victim_events)"
check_eq "victim.example's keys: only the real one" "$VPK" \
	"$(fedctl -c "$B" keys ls --json | jq -r '[.[] | select(.server == "victim.example") | .key] | join(",")')"
check_eq "nothing from victim.example in the inbox" 0 "$(mdb_dump -p -s inbox "$T_TMP/b/state" 2>/dev/null | grep -c 'victim\.example')"
check "syncd is still running" kill -0 "$PID_b_syncd"
finish
