#!/bin/sh
# purgatoryd asks fetchd for what held events miss: with fetchd down the
# requests wait and are asked again (nothing lost); once a fetchd answers,
# the fetched PDUs go through the inbox and validated and everything held is
# released in order. missing_events carries the hints (the held event's peer,
# the sender's server, the room's servers); a room whose missing_events comes
# back empty falls back to single-event fetches after a backoff. A room whose
# gap nobody has stays held; its rows carry the attempt count and next try
# (fedctl purgatory ls/show), kept current as attempts start and fail, and
# across a restart. Debounce by arrival: a room's first held event that
# arrived by sync (from a [peer] name, or the server name syncd pinned for a
# peer) waits `debounce`, any other (here: an import) `debounce_other`.
. tests/lib/lib.sh
CONF=$(node_config alpha "$(free_port)" "
[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
debounce_other = 700ms
backoff_min = 300ms
backoff_max = 1s
fetch_retry = 300ms
[peer peer.test]
endpoint = http://127.0.0.1:1
mode = paused
[peer pb]
endpoint = http://127.0.0.1:1
mode = paused")
D=$T_TMP/alpha
SRV=$(sed -n 's/^server_name = //p' "$CONF")
PT=purgatory_tool
stat_of() { $PT check -c "$CONF" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
STUB="python3 tests/tools/purgatory_stub_fetchd.py"

$PT gen -k "$D/signing.key" -s "$SRV" -n 10 --tag gap --ids "$T_TMP/gap.ids" > "$T_TMP/gap.jsonl"
$PT gen -k "$D/signing.key" -s "$SRV" -n 5 --tag noback --ids "$T_TMP/nb.ids" > "$T_TMP/nb.jsonl"
$PT gen -k "$D/signing.key" -s "$SRV" -n 4 --tag lost --ids "$T_TMP/lost.ids" > "$T_TMP/lost.jsonl"
cat "$T_TMP/gap.jsonl" "$T_TMP/nb.jsonl" > "$T_TMP/all.jsonl"
cat "$T_TMP/gap.ids" "$T_TMP/nb.ids" > "$T_TMP/all.ids"

# what syncd writes at peer pb's identity handshake: its server name
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n pb\\00server_name\n pinned.test\nDATA=END\n' |
	mdb_load -s federation_state "$D/state"
bg purgatoryd -c "$CONF" -v 2>"$T_TMP/purg.log"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"
# create + the last event of each room: 8 + 3 events missing in between
sed -n '1p;10p' "$T_TMP/gap.jsonl" | $PT submit -c "$CONF" --from peer.test - 2>/dev/null
sed -n '1p;5p' "$T_TMP/nb.jsonl" | $PT submit -c "$CONF" --from import - 2>/dev/null
sed -n '1p;4p' "$T_TMP/lost.jsonl" | $PT submit -c "$CONF" --from pinned.test - 2>/dev/null
LOST=$(sed -n 4p "$T_TMP/lost.ids")
check "the three tips are held" wait_for '[ "$(stat_of purgatory)" = 3 ] && [ "$(stat_of events)" = 3 ]'
sleep 2
check "fetchd down: purgatoryd keeps them and says it will retry" \
	sh -c "[ \"\$($PT check -c '$CONF' | grep -o 'purgatory=[0-9]*')\" = purgatory=3 ] && grep -q 'fetchd is not reachable' '$T_TMP/purg.log'"
# attempts / next_try_ms of a held row, from fedctl --json purgatory ls
row_of() { fedctl -c "$CONF" --json purgatory ls | python3 -c '
import json, sys
r = [x for x in json.load(sys.stdin) if x["event_id"] == sys.argv[1]]
print("%d %d %d" % (r[0]["attempts"], r[0]["next_try_ms"], r[0]["first_seen_ms"]) if r else "none")' "$1"; }
check_eq "fetchd down: no attempt counted" 0 "$(row_of "$LOST" | cut -d' ' -f1)"
wait_of() { set -- $(row_of "$1"); echo $(($2 - $3)); }
check_eq "from a [peer] name: sync arrival, debounce (100 ms)" 100 "$(wait_of "$(sed -n 10p "$T_TMP/gap.ids")")"
check_eq "from a peer's pinned server name: sync arrival, debounce" 100 "$(wait_of "$LOST")"
check_eq "imported: debounce_other (700 ms)" 700 "$(wait_of "$(sed -n 5p "$T_TMP/nb.ids")")"

bg $STUB "$D/run/fetchd.sock" "$T_TMP/all.jsonl" "$T_TMP/all.ids" "$T_TMP/req.log" beta.test; STUBP=$LAST_PID
check "once fetchd answers, every gap is fetched and released" \
	wait_for '[ "$(stat_of events)" = 16 ] && [ "$(stat_of purgatory)" = 1 ]' 300
check_eq "stored in topological order, exactly once" "consistent=1 topo=1" "$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
check "a missing_events request named the held event as latest and our extremity as earliest" python3 - "$T_TMP/req.log" "$(sed -n 10p "$T_TMP/gap.ids")" "$(sed -n 1p "$T_TMP/gap.ids")" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
ok = any(r["op"] == "missing_events" and sys.argv[2] in r.get("events", []) and sys.argv[3] in r.get("earliest", []) for r in reqs)
sys.exit(0 if ok else 1)
PY
check "hints: the peer it came from (peer.test) and the sender's server" python3 - "$T_TMP/req.log" "$SRV" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any("peer.test" in r.get("servers", []) for r in reqs) else 1)
PY
check "the room with no missing_events answer was filled by single-event fetches" \
	sh -c "grep -q '\"op\": \"event\"' '$T_TMP/req.log'"
check "purgatoryd counted the fetched PDUs" \
	sh -c "fedctl -c '$CONF' stats purgatoryd | grep -q '\"fetched_pdus\":[1-9]'"
# the room nobody can fill: its row follows the attempts as they fail
check "the unfillable room's row counts its attempts" \
	wait_for '[ "$(row_of "$LOST" | cut -d" " -f1)" -ge 3 ]' 300
R1=$(row_of "$LOST")
# row_moved "A N F" "A N F": attempts and next try both grew
row_moved() { set -- $1 $2; [ "$4" -gt "$1" ] && [ "$5" -gt "$2" ]; }
check "its next try lies after the hold's debounce (written when an attempt failed)" \
	sh -c "set -- $R1; [ \$2 -gt \$((\$3 + 100)) ]"
check "the row keeps up: attempts grow, next try moves on" \
	wait_for "row_moved '$R1' \"\$(row_of '$LOST')\"" 300
check "fedctl purgatory ls shows tries and next" \
	sh -c "fedctl -c '$CONF' purgatory ls | grep -- '$LOST' | grep -Eq 'tries [1-9][0-9]*, next (now|in [0-9]+s)'"
check "fedctl purgatory show shows attempts and next try" \
	sh -c "fedctl -c '$CONF' purgatory show '$LOST' | grep -Eq '^attempts +[1-9]' && fedctl -c '$CONF' purgatory show '$LOST' | grep -q '^next try '"
stop $PURG
A1=$(row_of "$LOST" | cut -d' ' -f1)
bg purgatoryd -c "$CONF" -v 2>>"$T_TMP/purg.log"; PURG=$LAST_PID
check "after a restart the count goes on from the row (not from 0)" \
	wait_for "[ \$(row_of '$LOST' | cut -d' ' -f1) -gt $A1 ]" 300
check "fedctl purgatory retry of an unknown room fails clearly" \
	sh -c "! fedctl -c '$CONF' purgatory retry '!nope:x' 2>&1 | grep -q ok; fedctl -c '$CONF' purgatory retry '!nope:x' 2>&1 | grep -q not_found"
stop $STUBP; stop $PURG; stop $VAL
finish
