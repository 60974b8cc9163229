#!/bin/sh
# Three real nodes on 127.0.0.1, each with its own LMDB and every stage:
# A originates events, B pulls from A, C pulls from B (and fetches A's key
# through its fetchd). Everything A made is stored exactly once on C,
# parents before children; more events made later flow through too
# (long-poll wakes the pullers); fedctl peers reports the chain.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port); PC=$(free_port)
SYNC="
[syncd]
interval = 1s
longpoll = 2s
"
A=$(node_config a "$PA" "$FED_COMMON$FED_OPEN")
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN$SYNC
[peer a]
endpoint = http://127.0.0.1:$PA
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
C=$(node_config c "$PC" "$FED_COMMON$FED_OPEN$SYNC
[peer b]
endpoint = http://127.0.0.1:$PB
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA
[server b.test:$PB]
endpoint = http://127.0.0.1:$PB")
IDS=$T_TMP/a.ids
for r in 1 2 3; do served_fill -c "$A" -N 60 -s 200 -o "$IDS" >/dev/null; done
check_eq "A made 183 events" 183 "$(wc -l <"$IDS" | tr -d ' ')"
node_start a served
check "A's served is up" wait_for "http_up http://127.0.0.1:$PA/healthz"
node_start b validated purgatoryd fetchd served syncd
node_start c validated purgatoryd fetchd served syncd
check "C has stored all 183 events" wait_for \
	"[ \"\$(fed_check http://127.0.0.1:$PC $IDS | cut -d' ' -f1,2)\" = 'count=183 missing=0' ]" 600
R=$(fed_check "http://127.0.0.1:$PC" "$IDS")
check_eq "on C: each exactly once, parents before children" "count=183 missing=0 dup=0 order=ok" "$R"
check_eq "on B too" "count=183 missing=0 dup=0 order=ok" "$(fed_check "http://127.0.0.1:$PB" "$IDS")"

# More events later: the long-poll wakes B, then C.
served_fill -c "$A" -N 40 -s 200 -o "$IDS" >/dev/null
check "events made later reach C" wait_for \
	"[ \"\$(fed_check http://127.0.0.1:$PC $IDS | cut -d' ' -f1,2)\" = 'count=224 missing=0' ]" 300
check_eq "still exactly once and in order" "count=224 missing=0 dup=0 order=ok" "$(fed_check "http://127.0.0.1:$PC" "$IDS")"
check "B's syncd long-polled" sh -c "fedctl -c '$B' stats syncd | grep -q '\"longpolls\":[1-9]'"

# fedctl peers on C: b pinned, ok, cursor = B's stream head.
J=$(fedctl -c "$C" peers --json)
check_eq "C's peer b is healthy" ok "$(echo "$J" | jq -r '.[0].health')"
check_eq "C's cursor on b is B's stream head" 224 "$(echo "$J" | jq -r '.[0].cursor')"
BID=$(curl -s "http://127.0.0.1:$PB/_fed/v1/identity" | jq -r .node_id)
check_eq "C pinned B's node ID" "$BID" "$(echo "$J" | jq -r '.[0].node_id')"
check "C's clock carries A's and B's positions" sh -c \
	"curl -s http://127.0.0.1:$PC/_fed/v1/identity | jq -e '.vclock | length >= 3' >/dev/null"
check "fedctl peers (text) shows b ok" sh -c "fedctl -c '$C' peers | grep -q '^b .*ok'"
check "C's validated verified A's signatures with A's key fetched by C's fetchd" sh -c \
	"fedctl -c '$C' stats validated | grep -q '\"accepted\":[1-9]'"
curl -s "http://127.0.0.1:$PB/metrics" >"$T_TMP/metrics"
for s in served syncd validated purgatoryd fetchd; do
	check "B's /metrics: $s up" grep -q "fedpipe_stage_up{stage=\"$s\"} 1" "$T_TMP/metrics"
done
check "B's /metrics: LMDB table sizes" grep -q 'fedpipe_lmdb_entries{db="events"} 224' "$T_TMP/metrics"
check "B's /metrics: syncd counters" grep -q 'fedpipe_sync_events_pulled_all_total 224' "$T_TMP/metrics"
finish
