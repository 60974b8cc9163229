#!/bin/sh
# store_full: the LMDB map grows by itself (doubling up to [node]
# map_size_max), and at the ceiling every writer degrades instead of dying.
# Part 1: map_size small, map_size_max large: sends well past the first size
# are all stored, the map grew, no "store full". Part 2 (the attack): a node
# whose map is at its ceiling from the start (map_size = map_size_max = 1M)
# is filled by `fedctl send`s and by outsiders' misses on served's
# /_matrix/federation/v1/event/{id}: no restart loop (purgatoryd and feedpump
# keep their PIDs), no wedge (a further send fails promptly with a clear
# error, feedpump ends on SIGTERM), served still answers reads, `fedctl
# status` says "store full"; then, with the ceiling raised and the stages
# restarted, every event sent is stored exactly once.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PT=purgatory_tool
PAD=$(head -c 3000 /dev/zero | tr '\0' x)
conf_of() { echo "$T_TMP/$1/fedpipe.conf"; }
stat_of() { $PT check -c "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# sends N events to room R of node config C; successful IDs appended to F;
# stops at the first failure (its stderr in F.err). Prints the number sent.
send_n() {
	_c=$1 _r=$2 _n=$3 _f=$4 _i=0
	while [ $_i -lt "$_n" ]; do
		fedctl -c "$_c" send "$_r" m.room.message "{\"body\":\"$_i $PAD\"}" >>"$_f" 2>"$_f.err"
		_rc=$?
		cat "$_f.err" >>"$_f.log"
		[ $_rc -eq 0 ] || break
		_i=$((_i + 1))
	done
	echo $_i
}
# every ID of file F is in node C's stream exactly once
all_once() {
	$PT stream -c "$1" | awk '{print $2}' | sort >"$T_TMP/stream.sorted"
	sort "$2" >"$T_TMP/want.sorted"
	[ "$(comm -23 "$T_TMP/want.sorted" "$T_TMP/stream.sorted" | wc -l)" -eq 0 ] &&
	[ "$(uniq -d "$T_TMP/stream.sorted" | wc -l)" -eq 0 ]
}

# ---- 1. growth: 512K to start, 64M ceiling ------------------------------
G=$(node_config grow "$(free_port)" "$FED_COMMON$FED_OPEN
[feed]
sink = file")
sed -i 's/^\[node\]$/[node]\nmap_size = 512K\nmap_size_max = 64M/' "$G"
node_start grow validated purgatoryd feedpump
ROOM=$(fedctl -c "$G" create-room 2>>"$T_TMP/grow/fedctl.log" | head -n 1)
check "growth: room created" test -n "$ROOM"
N=$(send_n "$G" "$ROOM" 400 "$T_TMP/grow.ids")
check_eq "growth: 400 sends of 3 KB succeed past the 512K map" 400 "$N"
[ "$N" = 400 ] || diag "send $N said: $(cat "$T_TMP/grow.ids.err")"
check "growth: all 400 stored" wait_for "[ \$(stat_of $G inbox) = 0 ] && all_once $G $T_TMP/grow.ids" 600
check "growth: the map grew (logged by whichever writer met the edge)" sh -c "cat $T_TMP/grow/*.log $T_TMP/grow.ids.log | grep -q 'LMDB map full at .* grown to'"
check "growth: the other stages adopted it" grep -q "LMDB map grown by another process" "$T_TMP/grow/validated.log"
check "growth: no store full state" sh -c "! grep -q 'store full' $T_TMP/grow/*.log && [ ! -e $T_TMP/grow/state/store-full ]"
check "growth: feed has every event" wait_for "[ \$(cat $T_TMP/grow/feed/* 2>/dev/null | grep -c '\"event_id\"') -ge 400 ]" 300
node_stop grow validated purgatoryd feedpump

# ---- 2. the attack: a map at its ceiling ---------------------------------
P=$(free_port)
C=$(node_config full "$P" "$FED_COMMON$FED_OPEN
[feed]
sink = file")
sed -i 's/^\[node\]$/[node]\nmap_size = 1M\nmap_size_max = 1M/' "$C"
D=$T_TMP/full
node_start full validated purgatoryd feedpump served
U=http://127.0.0.1:$P
check "full: served up" wait_for "http_up $U/healthz"
PURG=$PID_full_purgatoryd FEED=$PID_full_feedpump
ROOM=$(fedctl -c "$C" create-room 2>>"$D/fedctl.log" | head -n 1)
check "full: room created" test -n "$ROOM"
: >"$T_TMP/full.ids"
# fill: sends until one fails (purgatoryd stores as they come), with a few
# hundred outsiders' misses on served mixed in
( i=0; while [ $i -lt 300 ] && [ ! -f "$T_TMP/stopmiss" ]; do
	curl -s -o /dev/null -m 5 "$U/_matrix/federation/v1/event/%24miss$i:elsewhere.test"; i=$((i + 1))
  done ) &
MISS=$!
T_PIDS="$T_PIDS $MISS"
# rounds of sends until three rounds in a row cannot put a single event
# (purgatoryd frees inbox pages as it stores, so one failure is not the end)
SENT=0 fails=0 rounds=0
while [ $fails -lt 3 ] && [ $rounds -lt 40 ]; do
	n=$(send_n "$C" "$ROOM" 1000 "$T_TMP/full.ids")
	SENT=$((SENT + n)) rounds=$((rounds + 1))
	if [ "$n" -eq 0 ]; then fails=$((fails + 1)); else fails=0; fi
	sleep 0.5
done
diag "sends accepted before the map was full: $SENT in $rounds rounds; the failing one said: $(head -c 300 "$T_TMP/full.ids.err")"
check "full: the sends filled the map (3 rounds in a row failed)" test $fails -eq 3
check "full: the failed send said the store is full" grep -q "store is full" "$T_TMP/full.ids.err"
touch "$T_TMP/stopmiss"; wait $MISS 2>/dev/null
# the writers reach the ceiling too: purgatoryd and feedpump keep running
sleep 3
check "full: purgatoryd still running, same PID (no exit 111)" kill -0 "$PURG"
check "full: feedpump still running, same PID" kill -0 "$FEED"
check "full: purgatoryd logged the full store once" test "$(grep -c 'LMDB store full' "$D/purgatoryd.log")" -le 1
# no wedge: another send fails promptly (bounded, not a stopwatch). A full
# map is not a sharp edge (pages freed by older snapshots come back), so
# the late send is a 60 KB event, which no freed scrap can hold.
BIG=$(head -c 60000 /dev/zero | tr '\0' y)
timeout 60 fedctl -c "$C" send "$ROOM" m.room.message "{\"body\":\"late $BIG\"}" >>"$T_TMP/full.ids" 2>"$T_TMP/late.err"
RC=$?
check "full: a further send returns with an error, not a hang (rc $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
check "full: ... saying the store is full" grep -q "store is full" "$T_TMP/late.err"
# The marker can clear between two commands when a stage's small write finds
# pages freed by an older snapshot (the state did end, briefly): a refused
# big send marks it again, and status right after must say so.
full_says() {
	timeout 60 fedctl -c "$C" send "$ROOM" m.room.message "{\"body\":\"later $BIG\"}" >>"$T_TMP/full.ids" 2>/dev/null && return 2
	fedctl -c "$C" status 2>/dev/null | grep -q 'store full'
}
check "full: fedctl status says store full" wait_for full_says 20
check "full: served still answers reads" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -m 10 $U/_fed/v1/identity)\" != 000 ]"
check "full: served answers a miss" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -m 10 $U/_matrix/federation/v1/event/%24another:elsewhere.test)\" != 000 ]"
check "full: no write txn left behind (mdb_stat sees no writer lock held)" sh -c "timeout 20 fedctl -c $C servers wake nobody.test >/dev/null 2>&1; [ \$? -ne 124 ]"
kill -TERM "$FEED"
check "full: feedpump ends on SIGTERM" wait_for "! kill -0 $FEED" 300
stop "$FEED"
cat "$T_TMP/full.ids" | grep '^\$' >"$T_TMP/full.sent"
diag "events sent: $(wc -l <"$T_TMP/full.sent"); stored so far: $(stat_of "$C" events)"

# ---- raise the ceiling, restart: every sent event stored exactly once ----
sed -i 's/^map_size_max = 1M$/map_size_max = 64M/' "$C"
node_stop full validated purgatoryd served
node_start full validated purgatoryd feedpump
check "after: every sent event stored exactly once" wait_for "[ \$(stat_of $C inbox) = 0 ] && all_once $C $T_TMP/full.sent" 900
check_eq "after: events/stream/outbox consistent" "consistent=1" "$($PT check -c "$C" | grep -o 'consistent=.')"
check "after: the store-full state ended" wait_for "! fedctl -c $C status 2>/dev/null | grep -q 'store full'" 100
check "after: the feed has every sent event" wait_for "[ \$(cat $D/feed/* 2>/dev/null | grep -o '\"event_id\":\"[^\"]*\"' | sort -u | wc -l) -ge \$(wc -l <$T_TMP/full.sent) ]" 600
node_stop full validated purgatoryd feedpump
finish
