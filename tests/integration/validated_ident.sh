#!/bin/sh
# validated_ident.sh: issue 13 item 7 against real validated + purgatoryd.
# Signed PDUs whose identifiers hide a "\u0000" (the bytes name one room,
# a C-string copy names another), a control character, or a member
# state_key that is not a user ID are rejected with reason bad_id_char /
# bad_id, recorded in rejects, and nothing is stored under the room the
# truncated copy names. A PDU whose hash and signature are written with
# JSON escapes ("\/", "\u0041") is the same event: accepted, not redacted.
. tests/lib/lib.sh
pipeline_node alpha "[served]
matrix_auth = open"
PT=purgatory_tool

bg purgatoryd -c "$CONF"; PURG=$LAST_PID
bg validated -c "$CONF" -v 2>"$T_TMP/validated.log"; VAL=$LAST_PID
check "purgatoryd and validated are up" wait_for "[ -S $D/run/purgatoryd.sock ] && [ -S $D/run/validated.sock ]"

ev() { # ev ROOM SENDER TYPE EXTRA
	printf '{"room_id":"%s","sender":"%s","type":"%s","content":{"membership":"join","body":"x"},"origin_server_ts":1700000000000,"depth":1,"prev_events":[],"auth_events":[]%s}\n' "$1" "$2" "$3" "${4:-}"
}
{
	ev "!r:$SRV" "@a:$SRV" m.room.message                                  # 1 good
	ev "!r:$SRV\\u0000!other:evil.example" "@a:$SRV" m.room.message         # 2 room_id hides a NUL
	ev "!r\\u0000:$SRV" "@a:$SRV" m.room.message                            # 3
	ev "!r:$SRV" "@a:$SRV\\u0000@admin:victim.example" m.room.message       # 4 sender hides a NUL
	ev "!r:$SRV" "@a:$SRV" "m.room.create\\u0000" ',"state_key":""'          # 5 type hides a NUL
	ev "!r:$SRV" "@a:$SRV" m.room.member ",\"state_key\":\"@b:$SRV\\u0000x\"" # 6 member state_key
	ev "!r:$SRV" "@a:$SRV" m.room.member ',"state_key":"not-a-user"'        # 7 -> bad_id
	ev "!r:$SRV\\n<0>x" "@a:$SRV" m.room.message                            # 8 newline
	ev "!r:$SRV" "@a:$SRV" m.room.message ",\"origin\":\"$SRV\\u0000evil\""  # 9 origin
	ev "!r:$SRV" "@a:$SRV" m.room.message ',"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u0000"]' # 10 (duplicate key: replaced below)
} >"$T_TMP/ev.json"
# line 10 carries prev_events twice; keep the hostile one
sed -i '10s/"prev_events":\[\],//' "$T_TMP/ev.json"
fedctl -c "$CONF" sign "$T_TMP/ev.json" >"$T_TMP/pdus.jsonl" 2>"$T_TMP/ids"
check_eq "10 PDUs signed with the node's key" 10 "$(wc -l <"$T_TMP/pdus.jsonl" | tr -d ' ')"
check "the hostile bytes survive signing" grep -q '\\u0000!other:evil.example' "$T_TMP/pdus.jsonl"

# 11: event 1 with hashes.sha256 and the signature written with escapes
python3 - "$T_TMP/pdus.jsonl" >>"$T_TMP/pdus.jsonl" <<'PY'
import json, sys
line = open(sys.argv[1]).readline()
ev = json.loads(line)
def esc(s):
    return "".join("\\/" if c == "/" else "\\u%04x" % ord(c) for c in s)
h = ev["hashes"]["sha256"]
(srv, sigs), = ev["signatures"].items()
(kid, sig), = sigs.items()
text = line.strip().replace('"%s"' % h, '"%s"' % esc(h)).replace('"%s"' % sig, '"%s"' % esc(sig))
assert json.loads(text) == ev
print(text)
PY
# (every character escaped: "\/" for '/', "\u00XX" for the rest)
check "line 11 is line 1 with escaped base64" sh -c "sed -n 11p '$T_TMP/pdus.jsonl' | grep -qE '\"sha256\":\"\\\\(u00|/)'"

# Line 11 is the same event as line 1: submit it first, alone, so the
# escaped form is what gets verified and stored.
sed -n 11p "$T_TMP/pdus.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "escaped hash and signature: the event is stored" wait_for '[ "$(stat_of events)" = 1 ]' 150
GOOD=$(sed -n 1p "$T_TMP/ids")
check_eq "stored under the event ID of its unescaped bytes" "$GOOD" "$($PT stream -c "$CONF" | awk '{print $2}' | tr -d '\n')"
PORT=$(sed -n 's/^listen = 127.0.0.1://p' "$CONF")
bg served -c "$CONF"; SERVED=$LAST_PID
check "served up" wait_for "curl -s -o /dev/null http://127.0.0.1:$PORT/healthz"
GOODENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$GOOD")
check_eq "served gives it unredacted (the hash matched after unescaping)" x \
	"$(curl -s "http://127.0.0.1:$PORT/_matrix/federation/v1/event/$GOODENC" | jq -r '.pdus[0].content.body')"

# 12: line 1 carrying a wrong event_id whose 60-byte quote in the reject
# message ends inside a 2-byte character: the verdict must stay valid JSON
# (purgatoryd refused it before, and the event sat in the inbox for ever)
python3 - "$T_TMP/pdus.jsonl" >>"$T_TMP/pdus.jsonl" <<'PY'
import json, sys
ev = json.loads(open(sys.argv[1]).readline())
ev["event_id"] = "$" + "A" * 58 + "\u00e9" * 10
print(json.dumps(ev, separators=(",", ":"), ensure_ascii=False))
PY
sed -n '1,10p;12p' "$T_TMP/pdus.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "10 hostile PDUs rejected, the inbox empty" wait_for '[ "$(stat_of rejects)" = 10 ] && [ "$(stat_of inbox)" = 0 ]' 200
fedctl -c "$CONF" rejects ls >"$T_TMP/rejects"
check_eq "8 rejects are bad_id_char" 8 "$(grep -c ' bad_id_char ' "$T_TMP/rejects")"
check_eq "the cut event_id quote: bad_event_id" 1 "$(grep -c ' bad_event_id ' "$T_TMP/rejects")"
check_eq "the member state_key 'not-a-user' is bad_id" 1 "$(grep -c ' bad_id  *[0-9]' "$T_TMP/rejects")"
check_eq "only the good event is stored" 1 "$(stat_of events)"
check_eq "the stream holds only it" "$GOOD" "$($PT stream -c "$CONF" | awk '{print $2}' | tr -d '\n')"
check_eq "validated counted 8 reject.bad_id_char" 8 "$(fedctl -c "$CONF" stats validated 2>/dev/null | grep -o "\"reject.bad_id_char\": *[0-9]*" | grep -o "[0-9]*$")"
check_eq "validated logged no line starting with <0>" 0 "$(grep -c '^<0>' "$T_TMP/validated.log")"
stop "$VAL"; stop "$PURG"; stop "$SERVED"
finish
