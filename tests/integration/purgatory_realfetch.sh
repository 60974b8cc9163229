#!/bin/sh
# purgatoryd against the real fetchd and a real HTTP peer (no stand-in):
# node A's served answers from an LMDB filled with a 41-event chain
# (served_fill); node B runs validated + purgatoryd + fetchd with a
# [server A] endpoint and is given only the LAST event of A's chain. B holds
# it, asks fetchd for what it misses (missing_events with a small limit, so
# several rounds), fetchd asks A over HTTP (and fetches A's verify key for
# validated), and B ends with the whole chain stored once, in topological
# order, nothing held, nothing left in the inbox.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA" "$FED_COMMON$FED_OPEN")
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[purgatoryd]
fetch_limit = 10
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
N=40
served_fill -c "$A" -N $N -o "$T_TMP/a.ids" >/dev/null
check_eq "A holds a chain of $((N + 1)) events" $((N + 1)) "$(wc -l <"$T_TMP/a.ids" | tr -d ' ')"
node_start a served
node_start b validated purgatoryd fetchd
check "A's served is up" wait_for "http_up http://127.0.0.1:$PA/healthz"
TIP=$(tail -n 1 "$T_TMP/a.ids")
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
curl -s "http://127.0.0.1:$PA/_matrix/federation/v1/event/$(enc "$TIP")" | jq -c '.pdus[0]' >"$T_TMP/tip.jsonl"
check_eq "the PDU given to B is A's last event" "$TIP" "$(fp_pdu id 10 <"$T_TMP/tip.jsonl")"

fedctl -c "$B" import "$T_TMP/tip.jsonl" >/dev/null 2>&1
pstat() { purgatory_tool check -c "$B" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
stat_of() { fedctl -c "$B" --json stats "$1" | jq -r ".. | objects | select(has(\"$2\")) | .\"$2\"" | head -n 1; }
check "B stores the whole chain through fetchd" \
	wait_for "[ \"\$(pstat events)\" = $((N + 1)) ] && [ \"\$(pstat purgatory)\" = 0 ]" 600
check_eq "exactly once, stream = outbox, topological order" "events=$((N + 1)) stream=$((N + 1)) outbox=$((N + 1))" \
	"$(purgatory_tool check -c "$B" | grep -o 'events=[0-9]* stream=[0-9]* outbox=[0-9]*')"
check_eq "consistent and parents first" "consistent=1 topo=1" "$(purgatory_tool check -c "$B" | grep -o 'consistent=. topo=.')"
check_eq "B's stream is A's chain, in A's order" "$(cat "$T_TMP/a.ids")" "$(purgatory_tool stream -c "$B" | cut -d' ' -f2)"
check_eq "nothing held, nothing waiting, nothing expired or rejected" \
	"inbox=0 purgatory=0 expired=0 rejects=0 missing_index=0" \
	"$(purgatory_tool check -c "$B" | grep -o 'inbox=[0-9]* purgatory=[0-9]* expired=[0-9]* rejects=[0-9]* missing_index=[0-9]*')"
HELD=$(stat_of purgatoryd held)
check "purgatoryd held what it could not store yet ($HELD held)" sh -c "[ '${HELD:-0}' -ge 1 ]"
REQS=$(stat_of purgatoryd fetch_requests); OK=$(stat_of purgatoryd fetch_ok); GOT=$(stat_of purgatoryd fetched_pdus)
check "purgatoryd: several fetch requests answered ($REQS asked, $OK ok)" sh -c "[ '${OK:-0}' -ge 2 ]"
check_eq "purgatoryd: every ancestor came through fetchd" $N "${GOT:-0}"
UP=$(stat_of fetchd upstream_requests)
check "fetchd made upstream requests to A ($UP)" sh -c "[ '${UP:-0}' -ge 2 ]"
GME=$(grep -c 'POST /_matrix/federation/v1/get_missing_events/' "$T_TMP/a/served.log")
check "A's served answered B's get_missing_events, in several rounds ($GME)" sh -c "[ '$GME' -ge 2 ]"
check "B's validated fetched A's verify key through fetchd (no key file)" \
	sh -c "[ '$(stat_of validated key_fetches)' -ge 1 ] && grep -q 'stored 1 key(s) of a.test:$PA' '$T_TMP/b/validated.log'"
node_stop b validated purgatoryd fetchd
node_stop a served
finish
