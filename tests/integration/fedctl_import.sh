# fedctl_import.sh: a backlog imported with `fedctl import` goes through the
# inbox, validated and purgatoryd into the store (shuffled order, a garbage
# line among them), with progress on stderr; with validated down the events
# wait in the inbox and nothing is lost.
. tests/lib/lib.sh
P=$(free_port)
CONF=$(node_config imp "$P" "
[validated]
rescan_every = 300ms
rescan_age = 1s")
SERVER="imp.test:$P"
purgatory_tool gen -k "$T_TMP/imp/signing.key" -s "$SERVER" -n 500 --rooms 3 --shuffle 7 >"$T_TMP/backlog.jsonl"
echo '{"this is": "not an event"' >>"$T_TMP/backlog.jsonl"
total=$(wc -l <"$T_TMP/backlog.jsonl")
bg validated -c "$CONF" 2>"$T_TMP/validated.log"; V=$LAST_PID
bg purgatoryd -c "$CONF" 2>"$T_TMP/purgatoryd.log"
wait_for "[ -S $T_TMP/imp/run/validated.sock ] && [ -S $T_TMP/imp/run/purgatoryd.sock ]"
fedctl -c "$CONF" import "$T_TMP/backlog.jsonl" >"$T_TMP/out" 2>"$T_TMP/err"
check_eq "import exits 0" 0 $?
check "it reports what it imported" grep -q "imported $total event(s)" "$T_TMP/out"
check "progress is shown on stderr" grep -q "import: .*(100%)" "$T_TMP/err"
state() { purgatory_tool check -c "$CONF"; }
check "all 1500 events end up stored" wait_for "state | grep -q 'events=1500 '" 300
state >"$T_TMP/state"
check "store consistent, stream in topological order" grep -q "consistent=1 topo=1" "$T_TMP/state"
check "the garbage line is rejected, not dropped" grep -q "rejects=1 " "$T_TMP/state"
check "inbox drained" grep -q "inbox=0 " "$T_TMP/state"
fedctl -c "$CONF" rejects ls >"$T_TMP/rejects" 2>&1
check "rejects ls shows the reason" grep -q "bad_json" "$T_TMP/rejects"

# validated down: the import still lands in the inbox, nothing is lost. The
# generator is deterministic, so these 200 are events already stored: they
# must drain from the inbox without being stored twice.
stop "$V"
purgatory_tool gen -k "$T_TMP/imp/signing.key" -s "$SERVER" -n 200 --rooms 1 >"$T_TMP/more.jsonl"
fedctl -c "$CONF" import --from backlog2 "$T_TMP/more.jsonl" >"$T_TMP/out2" 2>"$T_TMP/err2"
check_eq "import with validated down exits 0" 0 $?
check "it says the events wait in the inbox" grep -q "not running" "$T_TMP/err2"
check "they are in the inbox" sh -c "purgatory_tool check -c '$CONF' | grep -q 'inbox=200 '"
bg validated -c "$CONF" 2>>"$T_TMP/validated.log"
check "once validated is back the inbox drains" wait_for "state | grep -q 'inbox=0 '" 300
state >"$T_TMP/state2"
check "already-stored events are not stored twice" grep -q "events=1500 stream=1500 outbox=1500 " "$T_TMP/state2"
fedctl -c "$CONF" import /nonexistent/file >/dev/null 2>"$T_TMP/err3"
check "a missing file is a clear error" grep -q "No such file" "$T_TMP/err3"
finish
