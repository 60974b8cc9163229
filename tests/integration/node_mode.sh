#!/bin/sh
# node_mode.sh: the federation-level [node] mode (issue 20), with three real
# nodes: A publish (serves, pulls nobody), B sync, C subscribe (pulls, serves
# nothing of the stream). B pulls A, C pulls B; A's syncd makes no request
# even with a peer configured (its requests go through a logging proxy,
# tests/tools/fleet_proxy.py, whose log stays empty); nobody can pull C:
# its /_fed/v1/events and every Matrix event read answer 403 M_FORBIDDEN,
# while identity (with the mode), keys, version and /metrics still answer;
# B's syncd logs that once and backs off to backoff_max at once (one
# identity request per backoff_max through the proxy, never an events pull).
# C switched to sync (config edit + SIGHUP to served and syncd): B pulls it,
# logged once. C back to subscribe while B long-polls it: the parked
# long-poll is answered 403, B logs the transition once more. A bad mode
# value is exit 100 with file:line; `syncd --once` in publish mode is
# refused (exit 100).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port); PC=$(free_port)
PXAB=$(free_port); PXBC=$(free_port)
LOG=$T_TMP/requests.log
: >"$LOG"
bg python3 tests/tools/fleet_proxy.py "$LOG" "$PXAB:$PB:a:b" "$PXBC:$PC:b:c" >/dev/null 2>"$T_TMP/proxy.log"
check "proxy up" wait_for "http_up http://127.0.0.1:$PXAB/" 100
: >"$LOG"    # the probe above is no node's request
A=$(node_config a "$PA" "$FED_COMMON$FED_OPEN
[node]
mode = publish
[syncd]
interval = 200ms
[peer b]
endpoint = http://127.0.0.1:$PXAB")
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[syncd]
interval = 1s
longpoll = 25s
backoff_max = 3s
[peer a]
endpoint = http://127.0.0.1:$PA
[peer c]
endpoint = http://127.0.0.1:$PXBC
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
C=$(node_config c "$PC" "$FED_COMMON$FED_OPEN
[node]
mode = subscribe
[served]
upstreams = b.test:$PB
[syncd]
interval = 1s
longpoll = 2s
[peer b]
endpoint = http://127.0.0.1:$PB
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA
[server b.test:$PB]
endpoint = http://127.0.0.1:$PB")

# A bad value: exit 100, naming file and line.
BAD=$T_TMP/bad.conf
{ cat "$A"; printf '[node]\nmode = broadcast\n'; } >"$BAD"
line=$(grep -n '^mode = broadcast' "$BAD" | cut -d: -f1)
for p in syncd served; do
	$p -c "$BAD" -n >"$T_TMP/out" 2>&1; rc=$?
	check_eq "$p: mode = broadcast refused (exit 100)" 100 "$rc"
	check "  ... naming $BAD:$line and what is accepted" grep -q "$BAD:$line:.*mode.*sync|publish|subscribe" "$T_TMP/out"
done

IDS=$T_TMP/a.ids
served_fill -c "$A" -N 40 -s 200 -o "$IDS" >/dev/null
N=$(wc -l <"$IDS" | tr -d ' ')
check_eq "A made 41 events" 41 "$N"

# publish: syncd --once is refused, with a reason and exit 100.
syncd -c "$A" --once --peer b >"$T_TMP/once.out" 2>&1; rc=$?
check_eq "A (publish): syncd --once refused (exit 100)" 100 "$rc"
check "  ... saying why" grep -q "mode = publish.*--once" "$T_TMP/once.out"
check_eq "  ... and it asked nobody" 0 "$(wc -l <"$LOG" | tr -d ' ')"

node_start a served syncd
check "A's served is up" wait_for "http_up http://127.0.0.1:$PA/healthz"
node_start b validated purgatoryd fetchd served syncd
node_start c validated purgatoryd fetchd served syncd
UA=http://127.0.0.1:$PA UB=http://127.0.0.1:$PB UC=http://127.0.0.1:$PC
stat() { stage_stat "$@"; }
peer() { fedctl -c "$1" peers --json | jq -r ".[] | select(.name == \"$2\") | .$3"; }
stored() { fedctl -c "$1" --json status 2>/dev/null | jq .tables.events; }

check_eq "identity: A publish" publish "$(curl -s "$UA/_fed/v1/identity" | jq -r .mode)"
check_eq "identity: B sync (the default)" sync "$(curl -s "$UB/_fed/v1/identity" | jq -r .mode)"
check_eq "identity: C subscribe" subscribe "$(curl -s "$UC/_fed/v1/identity" | jq -r .mode)"

# B pulls A; C pulls B.
check "B has stored A's $N events" wait_for \
	"[ \"\$(fed_check $UB $IDS | cut -d' ' -f1,2)\" = 'count=$N missing=0' ]" 600
check "C (subscribe) pulled them from B" wait_for "[ \"\$(stored $C)\" = $N ]" 600
check_eq "C pulled from b" "$N" "$(stat "$C" syncd events_pulled)"

# A pulls nobody: its syncd is up, says publish, made no request.
check_eq "A's syncd stats: mode publish" publish "$(fedctl -c "$A" --json stats syncd | jq -r .syncd.mode)"
check_eq "A's syncd: no pull" 0 "$(stat "$A" syncd pulls)"
check_eq "A's syncd: no request through the proxy (peer b configured)" "" "$(grep ' a b ' "$LOG")"
check "A's syncd logged why" grep -q "mode = publish: pulling from no peer" "$T_TMP/a/syncd.log"
check_eq "fedctl peers on A: b paused (by the node's mode)" paused "$(peer "$A" b health)"
check_eq "A stored nothing from anyone" "$N" "$(stored "$A")"

# fedctl status shows the mode (text and --json).
check "fedctl status: mode subscribe on C" sh -c "fedctl -c '$C' status | grep -q '^mode: subscribe'"
check_eq "fedctl --json status: mode" "publish subscribe" \
	"$(fedctl -c "$A" --json status | jq -r .mode) $(fedctl -c "$C" --json status | jq -r .mode)"

# Nobody can pull C: 403 M_FORBIDDEN on the stream and every event read.
EV=$(head -n 1 "$IDS")
ROOM=$(curl -s "$UB/_matrix/federation/v1/event/$(printf %s "$EV" | jq -sRr @uri)" | jq -r '.pdus[0].room_id')
check "B serves the event (control)" test -n "$ROOM" -a "$ROOM" != null
eid=$(printf %s "$EV" | jq -sRr @uri); rid=$(printf %s "$ROOM" | jq -sRr @uri)
code() { curl -s -o "$T_TMP/body" -w '%{http_code}' "$@"; }
for path in "/_fed/v1/events?since=0" "/_fed/v1/events?since=0&timeout_ms=5000" \
            "/_matrix/federation/v1/event/$eid" "/_matrix/federation/v1/event/%24nosuch" \
            "/_matrix/federation/v1/event_auth/$rid/$eid" "/_matrix/federation/v1/state_ids/$rid?event_id=$eid" \
            "/_matrix/federation/v1/state/$rid?event_id=$eid" \
            "/_matrix/federation/v1/backfill/$rid?v=$eid&limit=10"; do
	check_eq "C: GET $path: 403" 403 "$(code "$UC$path")"
	check_eq "  ... M_FORBIDDEN, this node does not publish" "M_FORBIDDEN this node does not publish" \
		"$(jq -r '"\(.errcode) \(.error)"' "$T_TMP/body")"
	check_eq "  ... on B (sync): not 403" 1 "$([ "$(code "$UB$path" -m 10)" != 403 ] && echo 1)"
done
check_eq "C: POST get_missing_events: 403" 403 "$(code -X POST -H 'Content-Type: application/json' \
	-d "{\"earliest_events\":[],\"latest_events\":[\"$EV\"],\"limit\":10}" "$UC/_matrix/federation/v1/get_missing_events/$rid")"
check_eq "  ... on B: 200" 200 "$(code -X POST -H 'Content-Type: application/json' \
	-d "{\"earliest_events\":[],\"latest_events\":[\"$EV\"],\"limit\":10}" "$UB/_matrix/federation/v1/get_missing_events/$rid")"
check_eq "C: unknown federation path still 404" 404 "$(code "$UC/_matrix/federation/v1/nosuch/x")"
for path in /_fed/v1/identity /_matrix/key/v2/server "/_matrix/key/v2/query/b.test:$PB" \
            /_matrix/federation/v1/version /metrics /healthz; do
	check_eq "C still answers $path" 200 "$(code "$UC$path")"
done
check_eq "C: no cache-warm recovery (upstreams set, event misses asked)" 0 "$(stat "$C" served recover_queued)"
check "C counts the refusals" test "$(stat "$C" served mode_forbidden)" -ge 9
check_eq "C's served stats: mode subscribe" subscribe "$(fedctl -c "$C" --json stats served | jq -r .served.mode)"

# B's syncd: one clear error, then one identity request per backoff_max.
check "B's syncd sees c refuse" wait_for "[ \"\$(stat $B syncd peer_forbidden)\" -ge 1 ]" 600
fails=$(stat "$B" syncd failures)
check "  ... three times" wait_for "[ \"\$(stat $B syncd peer_forbidden)\" -ge 3 ]" 600
check_eq "  ... logged once" 1 "$(grep -c 'peer c .*does not publish' "$T_TMP/b/syncd.log")"
check "  ... the log names backoff_max" grep -q "peer c .*does not publish.*retrying every 3s" "$T_TMP/b/syncd.log"
check_eq "fedctl peers on B: c not_publishing" not_publishing "$(peer "$B" c health)"
check_eq "B never asked C for events" "" "$(grep ' b c .*/_fed/v1/events' "$LOG")"
check_eq "B's syncd: not counted as failures" "$fails" "$(stat "$B" syncd failures)"
# Timers never fire early: from the first answer on (C's served may have
# come up after B's syncd: refused connections before it, logged 502), each
# request to C starts at least backoff_max (3 s) after the one before (not
# 1, 2, 4 s).
check "B's requests to C: at least backoff_max apart from the first refusal on" awk '
	$3 == "b" && $4 == "c" && ($5 == 200 || n) { if (n && $1 - last < 2950000000) bad = 1; last = $1; n++ }
	END { exit bad || n < 3 }' "$LOG"

# C to sync: config and SIGHUP to served and syncd; B pulls it.
sed -i 's/^mode = subscribe$/mode = sync/' "$C"
check "fedctl status before the SIGHUP: the stages still run subscribe" sh -c \
	"fedctl -c '$C' status | grep -q '^mode: the configuration says sync, but syncd runs mode subscribe, served runs mode subscribe'"
kill -HUP "$PID_c_served" "$PID_c_syncd"
check "C's identity says sync" wait_for "[ \"\$(curl -s $UC/_fed/v1/identity | jq -r .mode)\" = sync ]" 100
check_eq "C serves its stream again" 200 "$(code "$UC/_fed/v1/events?since=0")"
check "C's syncd logged the change" wait_for "grep -q 'mode subscribe -> sync' $T_TMP/c/syncd.log" 100
check "B pulls C now (cursor at C's head)" wait_for "[ \"\$(peer $B c cursor)\" = $N ]" 600
check_eq "B's peer c healthy" ok "$(peer "$B" c health)"
check_eq "  ... the resumption logged once" 1 "$(grep -c 'peer c: publishes again' "$T_TMP/b/syncd.log")"
check_eq "  ... and the refusal still once" 1 "$(grep -c 'peer c .*does not publish' "$T_TMP/b/syncd.log")"

# C back to subscribe while B long-polls it: the parked request gets 403.
# (A long-poll parked just now: 25 s left, so still parked at the SIGHUP.)
lp=$(stat "$C" served longpolls)
check "B long-polls C" wait_for "[ \"\$(stat $C served longpolls)\" -gt $lp ] && \
	[ \"\$(fedctl -c $C --json stats served | jq .served.gauges.longpoll_waiters)\" -ge 1 ]" 600
sed -i 's/^mode = sync$/mode = subscribe/' "$C"
kill -HUP "$PID_c_served" "$PID_c_syncd"
check "the parked long-poll was answered 403" wait_for "grep -q ' b c 403 /_fed/v1/events' $LOG" 300
check "B logged the refusal again (a new transition)" wait_for \
	"[ \"\$(grep -c 'peer c .*does not publish' $T_TMP/b/syncd.log)\" = 2 ]" 300
f=$(stat "$B" syncd peer_forbidden)
check "B keeps backing off" wait_for "[ \"\$(stat $B syncd peer_forbidden)\" -gt $f ]" 600
check_eq "  ... without logging it again" 2 "$(grep -c 'peer c .*does not publish' "$T_TMP/b/syncd.log")"

# A still pulled nobody, the whole time.
check_eq "A's syncd: still no request" "" "$(grep ' a b ' "$LOG")"
# publish -> sync on A by SIGHUP: A's syncd starts pulling b.
sed -i 's/^mode = publish$/mode = sync/' "$A"
kill -HUP "$PID_a_syncd"
check "A (now sync) pulls b" wait_for "grep -q ' a b 200 /_fed/v1/identity' $LOG" 300
finish
