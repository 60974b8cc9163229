#!/bin/sh
# log_injection.sh: issue 13 item 6. An attacker puts a newline and a syslog
# priority prefix inside an ID ("%0A<0>owned" in a URL, "\n<0>" in a JSON
# string). Against real served and validated processes: every log line they
# write starts with their own "<N>prog[pid]: " prefix, no line starts with
# "<0>", and the hostile ID is logged escaped on one line.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P" "[served]
upstreams = 127.0.0.1:1
matrix_auth = open")
node_start a served
U=http://127.0.0.1:$P
check "served up" wait_for "http_up $U/healthz"
LOG=$T_TMP/a/served.log
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
EVIL='/_matrix/federation/v1/event/%24x%0A%3C0%3Eowned:example'
# A proxied miss is logged with the decoded ID; an ordinary one is logged
# (with -v) and queued for recovery.
check_eq "proxied miss with %0A<0> in the ID: 404" 404 "$(code -H 'X-Fed-Proxied: 1' "$U$EVIL")"
check_eq "miss with %0A<0> in the ID: 404" 404 "$(code "$U$EVIL")"
check_eq "CR, ESC, DEL and a bad UTF-8 byte: 404" 404 \
	"$(code -H 'X-Fed-Proxied: 1' "$U/_matrix/federation/v1/event/%24y%0D%3C0%3E%1B%5B2J%7F%C0%AFz:example")"
check "the proxied miss was logged" wait_for "grep -q 'proxied miss for .*owned:example' '$LOG'"
check "the CR/ESC miss was logged" wait_for "grep -q 'proxied miss for .*z:example' '$LOG'"
check "served alive" http_up "$U/healthz"
node_stop a served
check_eq "no log line starts with <0>" 0 "$(grep -c '^<0>' "$LOG")"
check_eq "every line is one of served's own" 0 "$(grep -cv '^<[0-7]>served\[[0-9]*\]: ' "$LOG")"
check_eq "the ID is logged escaped, on one line" 1 \
	"$(grep -c 'proxied miss for \$x\\x0a<0>owned:example: not recovering' "$LOG")"
check_eq "CR, ESC, DEL, overlong UTF-8 escaped" 1 \
	"$(grep -c 'proxied miss for \$y\\x0d<0>\\x1b\[2J\\x7f\\xc0\\xafz:example' "$LOG")"
check_eq "no raw control byte in the log" 0 "$(tr -d '\n' <"$LOG" | LC_ALL=C tr -d '\040-\176' | wc -c | tr -d ' ')"

# validated: signed PDUs whose identifiers carry "\n<0>" are rejected, and
# whatever validated logs about them stays one line per call.
SN=$(sed -n 's/^server_name = //p' "$A")
printf '%s\n' \
	'{"room_id":"!r\n<0>owned:x","sender":"@a:'"$SN"'","type":"m.room.message","content":{},"origin_server_ts":1,"depth":1,"prev_events":["$p\n<0>owned"],"auth_events":[]}' \
	'{"room_id":"!r:x","sender":"@a\n<0>owned:'"$SN"'","type":"m.room.message","content":{},"origin_server_ts":1,"depth":1,"prev_events":[],"auth_events":[]}' \
	'{"room_id":"!r:x","sender":"@a:'"$SN"'","type":"m.room.member","state_key":"@b\n<0>owned:x","content":{},"origin_server_ts":1,"depth":1,"prev_events":[],"auth_events":[]}' \
	>"$T_TMP/evil.json"
fedctl -c "$A" sign "$T_TMP/evil.json" >"$T_TMP/evil.jsonl" 2>/dev/null
check_eq "3 hostile PDUs signed by the node's key" 3 "$(wc -l <"$T_TMP/evil.jsonl" | tr -d ' ')"
fedctl frames encode --id 1 <"$T_TMP/evil.jsonl" | validated -c "$A" -v --stdio 2>"$T_TMP/validated.err" |
	fedctl frames decode >"$T_TMP/verdicts"
check_eq "validated: 3 rejects" "reject reject reject" "$(jq -r .meta.verdict "$T_TMP/verdicts" | tr '\n' ' ' | sed 's/ $//')"
check_eq "validated: no log line starts with <0>" 0 "$(grep -c '^<0>' "$T_TMP/validated.err")"
check_eq "validated: every line is its own" 0 "$(grep -cv '^<[0-7]>validated\[[0-9]*\]: ' "$T_TMP/validated.err")"
finish
