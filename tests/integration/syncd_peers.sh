#!/bin/sh
# syncd's peer handling against real served nodes: the identity pin (a peer
# whose node ID changes is refused, with the reset command in the log, until
# `fedctl peer reset`, which is idempotent), a paused peer is never
# contacted, a wrong bearer key gets 401 and is reported as unauthorized
# (the right key works), and `syncd --once --peer NAME --stdio` writes the
# pulled events as frames on stdout.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port); PK=$(free_port); PP=$(free_port)
A=$(node_config a "$PA")
K=$(node_config k "$PK")
sed -i 's/^\[node\]$/[node]\nshared_key = s3cret-key/' "$K"
served_fill -c "$A" -N 20 -o "$T_TMP/a.ids" >/dev/null
served_fill -c "$K" -N 5 >/dev/null
node_start a served
node_start k served
bg python3 tests/tools/syncd_badpeer.py "$PP" listen "" "$T_TMP/paused.req"
check "peers up" wait_for "http_up http://127.0.0.1:$PA/healthz && http_up http://127.0.0.1:$PK/healthz"
B=$(node_config b "$PB" "
[syncd]
interval = 500ms
backoff_max = 1s
longpoll = 1s
[peer a]
endpoint = http://127.0.0.1:$PA
[peer paused]
endpoint = http://127.0.0.1:$PP
mode = paused
[peer wrongkey]
endpoint = http://127.0.0.1:$PK
key = not-the-key
[peer rightkey]
endpoint = http://127.0.0.1:$PK
key = s3cret-key")
peer() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }

# --once --stdio: frames on stdout, and the cursor is durable.
syncd -c "$B" --once --peer a --stdio </dev/null >"$T_TMP/once.frames" 2>"$T_TMP/once.log"
check_eq "--once exits 0" 0 $?
check_eq "--once pulled A's 21 events (cursor)" 21 "$(peer a cursor)"
check "--once wrote the events as frames on stdout" sh -c \
	"fedctl frames --to-jsonl <'$T_TMP/once.frames' 2>/dev/null | wc -l | grep -qx 21 || [ \$(wc -c <'$T_TMP/once.frames') -gt 5000 ]"
syncd -c "$B" --once --peer paused </dev/null 2>/dev/null
check_eq "--once on a paused peer fails" 1 $?

node_start b syncd
check "wrong key: 401 reported as unauthorized" wait_for "[ \"\$(peer wrongkey health)\" = unauthorized ]" 100
check "the 401 is in syncd's log" grep -q "peer wrongkey .*unauthorized: identity: HTTP 401" "$T_TMP/b/syncd.log"
check "k's served logged the 401" grep -q "401 for GET /_fed/v1/identity" "$T_TMP/k/served.log"
check "the right key syncs" wait_for "[ \"\$(peer rightkey cursor)\" = 6 ]" 100
check_eq "rightkey is healthy" ok "$(peer rightkey health)"
check_eq "the paused peer shows as paused" paused "$(peer paused health)"
check_eq "the paused peer was never contacted" 0 "$(cat "$T_TMP/paused.req" 2>/dev/null | wc -l | tr -d ' ')"
check_eq "a pinned" "$(curl -s http://127.0.0.1:$PA/_fed/v1/identity | jq -r .node_id)" "$(peer a node_id)"

# A's store is replaced: new node ID, new stream.
stop "$PID_a_served"
rm -rf "$T_TMP/a/state"; mkdir -p "$T_TMP/a/state"
: >"$T_TMP/a2.ids"
served_fill -c "$A" -N 4 -o "$T_TMP/a2.ids" >/dev/null
node_start a served
check "changed node ID: refused" wait_for "[ \"\$(peer a health)\" = identity_changed ]" 100
check "the log names the reset command" grep -q "reset the pin with: fedctl peer reset a" "$T_TMP/b/syncd.log"
sleep 1.5
check_eq "cursor untouched while refused" 21 "$(peer a cursor)"
fedctl -c "$B" peer reset a >/dev/null
check_eq "peer reset exits 0" 0 $?
fedctl -c "$B" peer reset a >/dev/null
check_eq "peer reset again (idempotent) exits 0" 0 $?
check "after the reset syncd re-pins and pulls the new stream" wait_for \
	"[ \"\$(peer a cursor)\" = 5 ] && [ \"\$(peer a health)\" = ok ]" 100
check_eq "the new ID is pinned" "$(curl -s http://127.0.0.1:$PA/_fed/v1/identity | jq -r .node_id)" "$(peer a node_id)"
check_eq "paused peer still never contacted" 0 "$(cat "$T_TMP/paused.req" 2>/dev/null | wc -l | tr -d ' ')"
finish
