#!/bin/sh
# Issue 13 item 4 (syncd): a store at its ceiling (MAP_FULL) does not kill
# or wedge syncd. It stops pulling (no cursor advanced past what is stored,
# nothing lost), logs once, retries on a timer without asking the peer, and
# resumes by itself when writes succeed again (here: the inbox is consumed,
# as validated would, by tests/tools/syncd_lmdb.py). In the end every event
# of the peer was taken exactly once.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port)
MAP=1048576
A=$(node_config a "$PA")
served_fill -c "$A" -N 299 -s 2000 >/dev/null       # 300 events of ~2.5 KB: 3/4 MB
node_start a served
check "A up" wait_for "http_up http://127.0.0.1:$PA/healthz"
B=$(node_config b "$PB" "
[syncd]
interval = 300ms
backoff_max = 1s
longpoll = 0
batch = 10
[peer a]
endpoint = http://127.0.0.1:$PA")
sed -i "s/^\[node\]$/[node]\nmap_size = $MAP\nmap_size_max = $MAP/" "$B"
peer() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
stat() { stage_stat "$B" syncd "$1"; }
inbox() { mdb_stat -s inbox "$T_TMP/b/state" 2>/dev/null | sed -n 's/.*Entries: //p'; }
node_start b syncd
check "syncd hits the full store" wait_for "grep -q 'store full: syncd stops pulling' $T_TMP/b/syncd.log" 300
check "it keeps waiting on a timer (3 retries still full)" wait_for "[ \"\$(stat store_full_waits)\" -ge 3 ]" 300
check "syncd is alive" kill -0 "$PID_b_syncd"
C1=$(peer a cursor)
check "part of the stream was pulled, not all" sh -c "[ '$C1' -gt 0 ] && [ '$C1' -lt 300 ]"
check_eq "the cursor matches the inbox (nothing skipped)" "$C1" "$(inbox)"
check_eq "logged once" 1 "$(grep -c 'store full: syncd stops pulling' "$T_TMP/b/syncd.log")"
P1=$(stat pulls)
sleep 2
check_eq "no pull is asked of the peer while full" "$P1" "$(stat pulls)"
check "fedctl peers shows it" sh -c "fedctl -c '$B' peers --json | jq -e '.[0].health == \"store_full\" or .[0].health == \"ok\"' >/dev/null"

# validated's part: consume the inbox; syncd resumes by itself.
: >"$T_TMP/drained"
i=0
while [ "$(peer a cursor)" != 300 ] && [ $i -lt 40 ]; do
	python3 tests/tools/syncd_lmdb.py drain "$T_TMP/b/state" $MAP "$T_TMP/drained" >/dev/null
	C=$(peer a cursor)
	wait_for "[ \"\$(fedctl -c $B peers --json | jq -r '.[0].cursor')\" != $C ]" 150
	i=$((i + 1))
done
check_eq "syncd resumed by itself and pulled everything" 300 "$(peer a cursor)"
check "the resume is logged" grep -q "store has room again: syncd resumes pulling" "$T_TMP/b/syncd.log"
python3 tests/tools/syncd_lmdb.py depths "$T_TMP/b/state" $MAP >>"$T_TMP/drained"
check_eq "every event taken exactly once (depths 1..300)" "$(seq 1 300 | tr '\n' ' ')" "$(sort -n "$T_TMP/drained" | tr '\n' ' ')"
check "syncd is still alive" kill -0 "$PID_b_syncd"
check "no restart, no crash" sh -c "[ \$(grep -c 'syncd: 1 peer' '$T_TMP/b/syncd.log') = 1 ]"
finish
