#!/bin/sh
# feedpump: the stdout sink composes with head; clear startup errors (unknown
# sink, unwritable directory); one drainer at a time (lease); dead letters
# and fedctl feed dead|retry; a feed consumer from a file directory.
. tests/lib/lib.sh
conf=$(node_config alpha "$(free_port)" "sink = file
[feedpump]
max_attempts = 2
backoff_min = 20ms")
D=$T_TMP/alpha
feed_fill "$D/state" 100

# stdout | head -n 5
{ feedpump -c "$conf" --sink stdout 2>"$T_TMP/so.err"; echo $? >"$T_TMP/so.rc"; } | head -n 5 >"$T_TMP/head.out"
check_eq "stdout | head -n 5: five lines" 5 "$(wc -l <"$T_TMP/head.out" | tr -d ' ')"
check_eq "stdout | head -n 5: feedpump exits 0" 0 "$(cat "$T_TMP/so.rc")"
check "stdout lines are JSON in stream order" sh -c "jq -r .stream_pos '$T_TMP/head.out' | tr '\n' ' ' | grep -qx '1 2 3 4 5 '"
pub=$(fedctl -c "$conf" --json feed status | jq .published)
check "published rows are a prefix of what was written ($pub)" test "$pub" -ge 5
feed_fill "$D/state" 10 --prefix n
cur=$(fedctl -c "$conf" --json feed status | jq .cursor)
feedpump -c "$conf" --sink stdout 2>/dev/null | head -n 1 >"$T_TMP/next.out"
check_eq "the next run continues exactly after the last published row" "$cur" "$(jq .stream_pos "$T_TMP/next.out")"

# startup errors
feedpump -c "$conf" --sink kafka 2>"$T_TMP/unk.err"
check_eq "unknown sink: exit 100" 100 "$?"
check "unknown sink: error lists the available sinks" sh -c "grep 'unknown feed sink \"kafka\" (available: ' '$T_TMP/unk.err' | grep nop | grep file | grep stdout | grep -q nats"
: >"$T_TMP/afile"
feedpump -c "$conf" --sink file --dir "$T_TMP/afile/feed" 2>"$T_TMP/dir.err"
check_eq "unwritable directory: exit 100" 100 "$?"
check "unwritable directory: clear error" grep -q "file sink: cannot create directory $T_TMP/afile/feed" "$T_TMP/dir.err"

# one drainer: a second feedpump waits and says why; takes over on exit
bg feedpump -c "$conf" --sink file
A=$LAST_PID
wait_for "fedctl -c '$conf' --json feed status | jq -e '.lease.pid == $A'"
# a standby on the same LMDB (its own run_dir: the socket is per instance)
mkdir -p "$D/run2"
sed "s|^run_dir = .*|run_dir = $D/run2|" "$conf" >"$D/standby.conf"
bg feedpump -c "$D/standby.conf" --sink file 2>"$T_TMP/b.err"
B=$LAST_PID
wait_for "grep -q 'waiting: another feedpump holds the drain lease' '$T_TMP/b.err'"
check "second feedpump waits and logs why" grep -q "holds the drain lease: .*pid $A" "$T_TMP/b.err"
stop $A
wait_for "fedctl -c '$conf' --json feed status | jq -e '.lease.pid == $B'"
check "second feedpump takes over when the first stops" sh -c "fedctl -c '$conf' --json feed status | jq -e '.lease.pid == $B'"

# dead letter: an outbox row whose event is missing
MP=$(( $(fedctl -c "$conf" --json feed status | jq '.published + .pending + .dead') + 1 ))
feed_fill "$D/state" 3 --prefix m --missing $MP --run-dir "$D/run2"
wait_for "fedctl -c '$conf' --json feed status | jq -e '.dead == 1 and .pending == 0'"
check_eq "a row the sink cannot publish moves to feed_dead" 1 "$(fedctl -c "$conf" --json feed status | jq .dead)"
check "the feed is not blocked behind it" sh -c "ls '$D/feed' | grep -q 'm_0000002'"
check "fedctl feed dead shows attempts and the error" sh -c "fedctl -c '$conf' feed dead | grep -q 'attempts=2.*not in the events table'"
check "fedctl feed retry requeues it (and wakes feedpump)" fedctl -c "$D/standby.conf" feed retry $MP
wait_for "fedctl -c '$conf' --json feed status | jq -e '.dead == 1 and .pending == 0'"
check_eq "retried row fails again and returns to feed_dead" 1 "$(fedctl -c "$conf" --json feed status | jq .dead)"
stop $B

# consumer from the file directory
fedctl -c "$conf" --json feed apply --into "$T_TMP/app" --source "file:$D/feed" --idle 300 >"$T_TMP/a1"
check_eq "apply from file source: exit 0" 0 "$?"
check_eq "apply from file source: every file applied" "$(ls "$D/feed" | wc -l | tr -d ' ')" "$(jq .applied "$T_TMP/a1")"
fedctl -c "$conf" --json feed apply --into "$T_TMP/app" --source "file:$D/feed" --idle 300 >"$T_TMP/a2"
check_eq "second apply: cursor kept, nothing re-applied" 0 "$(jq '.applied + .skipped' "$T_TMP/a2")"
# an idle poll (nothing new) must not leak what the source handed back
fedctl -c "$conf" --json feed apply --into "$T_TMP/lapp" --source local --idle 300 >"$T_TMP/l1"
check_eq "apply from local source: exit 0 after idle polls" 0 "$?"
check_eq "apply from local source: every stream event applied" "$(fedctl -c "$conf" feed tail --source local | wc -l | tr -d ' ')" "$(jq .applied "$T_TMP/l1")"
check_eq "tail --since N --limit N" "$(ls "$D/feed" | sed -n 2,3p | cut -c1-20 | sed 's/^0*//' | tr '\n' ' ' | sed 's/ $//')" "$(fedctl -c "$conf" feed tail --source "file:$D/feed" --since 1 --limit 2 | jq -r .control_version | tr '\n' ' ' | sed 's/ $//')"
finish
