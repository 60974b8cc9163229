#!/bin/sh
# validated_daemon.sh: validated as a daemon on its Unix socket (frames in,
# verdicts out to a stand-in purgatoryd), the inbox rescan, garbage on the
# socket (logged, connection dropped, daemon survives), and --stdio in a
# shell pipeline with the fedctl frames converter.
. tests/lib/lib.sh
H="python3 tests/tools/validated_sock.py"
# has 'jq condition': some verdict received so far matches it
has() { [ -n "$(jq -c "select($1)" "$T_TMP/verdicts.jsonl" 2>/dev/null)" ]; }
D=$T_TMP/alpha
CONF=$(node_config alpha "$(free_port)" "[validated]
rescan_every = 200ms
rescan_age = 300ms")
check "node config and signing key" test -f "$D/signing.key"

# Events signed by the node's own key (validated knows it without --keys),
# and a few bad ones.
cat >"$T_TMP/ev.jsonl" <<JSON
{"room_id":"!r:alpha.test","sender":"@a:alpha.test","type":"m.room.message","content":{"body":"one"},"origin_server_ts":1700000000000,"depth":1,"prev_events":[],"auth_events":[]}
{"room_id":"!r:alpha.test","sender":"@a:alpha.test","type":"m.room.message","content":{"body":"two"},"origin_server_ts":1700000000001,"depth":2,"prev_events":[],"auth_events":[]}
JSON
sed -i "s/alpha.test\"/alpha.test:$(sed -n 's/^server_name = alpha.test:\(.*\)/\1/p' "$CONF")\"/g" "$T_TMP/ev.jsonl"
fedctl -c "$CONF" sign "$T_TMP/ev.jsonl" >"$T_TMP/pdus.jsonl" 2>"$T_TMP/ids"
check_eq "fedctl sign made 2 PDUs" 2 "$(wc -l <"$T_TMP/pdus.jsonl" | tr -d ' ')"
printf '%s\n' '{"not":"an event"}' '{bad json' >>"$T_TMP/pdus.jsonl"

# --stdio in a pipeline: JSON lines -> frames -> validated -> frames -> JSON lines
fedctl frames encode --id 1 <"$T_TMP/pdus.jsonl" | validated -c "$CONF" --stdio 2>"$T_TMP/stdio.err" |
	fedctl frames decode >"$T_TMP/stdio.out"
check_eq "--stdio: 4 verdict frames" 4 "$(wc -l <"$T_TMP/stdio.out" | tr -d ' ')"
check_eq "--stdio: ids echoed in order" "1 2 3 4" "$(jq -r .id "$T_TMP/stdio.out" | tr '\n' ' ' | sed 's/ $//')"
check_eq "--stdio: verdicts" "accept accept reject reject" \
	"$(jq -r .meta.verdict "$T_TMP/stdio.out" | tr '\n' ' ' | sed 's/ $//')"
check_eq "--stdio: event IDs are fedctl's" "$(cat "$T_TMP/ids" | tr '\n' ' ')" \
	"$(jq -r 'select(.meta.verdict=="accept") | .meta.event_id' "$T_TMP/stdio.out" | tr '\n' ' ')"
check_eq "--stdio: reasons" "missing_field bad_json" \
	"$(jq -r 'select(.meta.verdict=="reject") | .meta.reason' "$T_TMP/stdio.out" | tr '\n' ' ' | sed 's/ $//')"
check "--stdio: accepted verdict carries the canonical PDU" \
	test "$(jq -r 'select(.id==1) | .body | tojson' "$T_TMP/stdio.out")" = "$(head -1 "$T_TMP/pdus.jsonl")"

# --workers 2: a turn's events are validated on two threads; the verdicts
# must be the same, in the same order, as with one worker.
SN=$(sed -n 's/^server_name = //p' "$CONF")
for i in $(seq 1 150); do
	printf '{"room_id":"!r:%s","sender":"@a:%s","type":"m.room.message","content":{"body":"n%d"},"origin_server_ts":%d,"depth":%d,"prev_events":[],"auth_events":[]}\n' \
		"$SN" "$SN" "$i" "$((1700000000000 + i))" "$i"
done >"$T_TMP/many.jsonl"
fedctl -c "$CONF" sign "$T_TMP/many.jsonl" >"$T_TMP/many.pdus" 2>/dev/null
# every third one tampered (content hash: accepted redacted) or broken
awk 'NR % 3 == 1 { sub(/"body":"n/, "\"body\":\"X") } NR % 7 == 0 { print "{bad"; next } { print }' \
	"$T_TMP/many.pdus" >"$T_TMP/many.mixed"
for w in 1 2; do
	fedctl frames encode --id 1 <"$T_TMP/many.mixed" | validated -c "$CONF" --stdio --workers $w 2>"$T_TMP/w$w.err" |
		fedctl frames decode | jq -c '[.id, .meta.verdict, .meta.reason, .meta.redacted, .meta.event_id]' >"$T_TMP/w$w.out"
done
check_eq "--workers 2: a verdict per frame" "$(wc -l <"$T_TMP/many.mixed" | tr -d ' ')" "$(wc -l <"$T_TMP/w2.out" | tr -d ' ')"
check "--workers 2: same verdicts in the same order as 1 worker" cmp -s "$T_TMP/w1.out" "$T_TMP/w2.out"
check "--workers 2: the mix holds accepts, redactions and rejects" \
	test "$(jq -r '.[1] + "/" + (.[3] | tostring)' "$T_TMP/w2.out" | sort -u | tr '\n' ' ')" = "accept/false accept/true reject/false "
check "--workers 2: the daemon says it runs 2 workers" grep -q "2 worker(s)" "$T_TMP/w2.err"

# Daemon mode: a stand-in purgatoryd collects the verdicts.
bg $H listen "$D/run/purgatoryd.sock" "$T_TMP/verdicts.jsonl"
FAKE=$LAST_PID
wait_for "test -S '$D/run/purgatoryd.sock'" || not_ok "stand-in purgatoryd listening"
# An old entry already in the inbox: the startup rescan must validate it.
head -1 "$T_TMP/pdus.jsonl" >"$T_TMP/inbox1.json"
SEQ=$(validated_inbox_put "$D/state" 10000 "$T_TMP/inbox1.json")
bg validated -c "$CONF" -v 2>"$T_TMP/daemon.err"
VPID=$LAST_PID
wait_for "test -S '$D/run/validated.sock'" || not_ok "validated socket appeared"
check "verdict for inbox entry $SEQ from the rescan" \
	wait_for "has '.id==$SEQ and .meta.verdict==\"accept\"'"

fedctl frames encode --id 100 <"$T_TMP/pdus.jsonl" | $H send "$D/run/validated.sock" >/dev/null
check "4 verdicts for 4 frames" wait_for "test \$(jq -c 'select(.id>=100)' '$T_TMP/verdicts.jsonl' | wc -l) -eq 4"
check_eq "daemon verdicts by id" "accept accept reject reject" \
	"$(jq -r 'select(.id>=100) | .meta.verdict' "$T_TMP/verdicts.jsonl" | tr '\n' ' ' | sed 's/ $//')"
check_eq "frame type of verdicts is FT_VERDICT (2)" "2" \
	"$(jq -r 'select(.id>=100) | .type' "$T_TMP/verdicts.jsonl" | sort -u)"

# Garbage on the socket: a clear log line, the connection dropped, still alive.
BF0=$(stage_stat "$CONF" validated bad_frames); BF0=${BF0:-0}
R=$(printf 'GET / HTTP/1.0\r\n\r\nxxxxxxxxxxxxxxxx' | $H send "$D/run/validated.sock")
check_eq "garbage: connection dropped" closed "$R"
check "garbage: log line names the fault" grep -q "dropping the connection" "$T_TMP/daemon.err"
# A frame with a valid header but a huge length: refused before allocating.
R=$(python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("!IBBHQ", 0xFFFFFFF0, 0xFD, 1, 0, 7))' |
	$H send "$D/run/validated.sock")
check_eq "oversized frame: connection dropped" closed "$R"
check_eq "bad_frames: the garbage and the oversized header, one each" "$((BF0 + 2))" "$(stage_stat "$CONF" validated bad_frames)"
R=$(python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("!IBBHQ", 2, 0xFD, 9, 0, 7) + b"{}")' |
	$H send "$D/run/validated.sock")
check_eq "unexpected frame type: connection dropped" closed "$R"
check "daemon survives bad input" kill -0 "$VPID"
sed -n 2p "$T_TMP/pdus.jsonl" | fedctl frames encode --id 200 | $H send "$D/run/validated.sock" >/dev/null
check "still validating afterwards" \
	wait_for "has '.id==200 and .meta.verdict==\"accept\"'"

# Duplicates: already-verified events skip the crypto (counter in stats).
sed -n 1p "$T_TMP/pdus.jsonl" | fedctl frames encode --id 300 | $H send "$D/run/validated.sock" >/dev/null
check "duplicate accepted" wait_for "has '.id==300 and .meta.known==true'"
STATS=$(fedctl -c "$CONF" --json stats validated 2>/dev/null)
check "stats report known_recent" sh -c "echo '$STATS' | grep -q known_recent"
# frame counters: every verdict the fake purgatoryd got was counted out
check "frames_out = the verdicts received" wait_for '[ "$(stage_stat "$CONF" validated frames_out)" = "$(wc -l <"$T_TMP/verdicts.jsonl" | tr -d " ")" ]' 100
FI=$(stage_stat "$CONF" validated frames_in)
sed -n 1p "$T_TMP/pdus.jsonl" | fedctl frames encode --id 301 | $H send "$D/run/validated.sock" >/dev/null
wait_for "has '.id==301'"
# (each stats request is a frame in too: +1 for the event, +1 for this ask)
check_eq "frames_in: one more for one more frame" "$((FI + 2))" "$(stage_stat "$CONF" validated frames_in)"

# Unknown key with fetchd down: no verdict (the inbox keeps it), no crash.
cat >"$T_TMP/mkunk.py" <<'PY'
import json, sys
sys.path.insert(0, "%s/tests/tools" % __import__("os").environ["FP_ROOT"])
from validated_pdu import *
srv = "stranger.test"
ev = sign_event(sample_event(srv, 1), srv, new_key("x1"), 10)
open(sys.argv[1], "w").write(dumps(ev))
PY
python3 "$T_TMP/mkunk.py" "$T_TMP/unk.json"
USEQ=$(validated_inbox_put "$D/state" 10000 "$T_TMP/unk.json")
sleep 1
check_eq "unknown key, fetchd down: no verdict yet" "" \
	"$(jq -c "select(.id==$USEQ)" "$T_TMP/verdicts.jsonl")"
check "daemon alive" kill -0 "$VPID"

stop "$VPID"
check "clean shutdown logged" grep -q "stopped" "$T_TMP/daemon.err"
stop "$FAKE"
finish
