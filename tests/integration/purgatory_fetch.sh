#!/bin/sh
# purgatoryd asks fetchd for what held events miss: with fetchd down the
# requests wait and are asked again (nothing lost); once a fetchd answers,
# the fetched PDUs go through the inbox and validated and everything held is
# released in order. missing_events carries the hints (the held event's peer,
# the sender's server, the room's servers); a room whose missing_events comes
# back empty falls back to single-event fetches after a backoff.
. tests/lib/lib.sh
CONF=$(node_config alpha "$(free_port)" "
[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
backoff_min = 300ms
backoff_max = 1s
fetch_retry = 300ms")
D=$T_TMP/alpha
SRV=$(sed -n 's/^server_name = //p' "$CONF")
PT=purgatory_tool
stat_of() { $PT check -c "$CONF" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
STUB="python3 tests/tools/purgatory_stub_fetchd.py"

$PT gen -k "$D/signing.key" -s "$SRV" -n 10 --tag gap --ids "$T_TMP/gap.ids" > "$T_TMP/gap.jsonl"
$PT gen -k "$D/signing.key" -s "$SRV" -n 5 --tag noback --ids "$T_TMP/nb.ids" > "$T_TMP/nb.jsonl"
cat "$T_TMP/gap.jsonl" "$T_TMP/nb.jsonl" > "$T_TMP/all.jsonl"
cat "$T_TMP/gap.ids" "$T_TMP/nb.ids" > "$T_TMP/all.ids"

bg purgatoryd -c "$CONF" -v 2>"$T_TMP/purg.log"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"
# create + the last event of each room: 8 + 3 events missing in between
sed -n '1p;10p' "$T_TMP/gap.jsonl" | $PT submit -c "$CONF" --from peer.test - 2>/dev/null
sed -n '1p;5p' "$T_TMP/nb.jsonl" | $PT submit -c "$CONF" --from peer.test - 2>/dev/null
check "the two tips are held" wait_for '[ "$(stat_of purgatory)" = 2 ] && [ "$(stat_of events)" = 2 ]'
sleep 2
check "fetchd down: purgatoryd keeps them and says it will retry" \
	sh -c "[ \"\$($PT check -c '$CONF' | grep -o 'purgatory=[0-9]*')\" = purgatory=2 ] && grep -q 'fetchd is not reachable' '$T_TMP/purg.log'"

bg $STUB "$D/run/fetchd.sock" "$T_TMP/all.jsonl" "$T_TMP/all.ids" "$T_TMP/req.log" beta.test; STUBP=$LAST_PID
check "once fetchd answers, every gap is fetched and released" \
	wait_for '[ "$(stat_of events)" = 15 ] && [ "$(stat_of purgatory)" = 0 ]' 300
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
check "fedctl purgatory retry of an unknown room fails clearly" \
	sh -c "! fedctl -c '$CONF' purgatory retry '!nope:x' 2>&1 | grep -q ok; fedctl -c '$CONF' purgatory retry '!nope:x' 2>&1 | grep -q not_found"
stop $STUBP; stop $PURG; stop $VAL
finish
