#!/bin/sh
# Issue 13 item 12: SIGHUP under sync with changed values. syncd keeps no
# pointer into a freed configuration (`fedctl stats syncd` names exactly
# the configured peers, no garbage; clean under `make asan`), and every
# change applies at once: a peer added is started, a paused peer switched
# to sync is contacted without a restart, a removed one is stopped, a peer
# paused stops pulling, a shorter interval takes effect.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PC=$(free_port); PD=$(free_port); PB=$(free_port)
A=$(node_config a "$PA")
C=$(node_config c "$PC")
D=$(node_config d "$PD")
served_fill -c "$A" -N 10 >/dev/null
served_fill -c "$C" -N 5 >/dev/null
served_fill -c "$D" -N 3 >/dev/null
node_start a served
node_start c served
node_start d served
check "A, C, D up" wait_for "http_up http://127.0.0.1:$PA/healthz && http_up http://127.0.0.1:$PC/healthz && http_up http://127.0.0.1:$PD/healthz"
B=$(node_config b "$PB")
conf() {   # conf INTERVAL A_MODE C_MODE WITH_D
	cat >"$B" <<CONF
[node]
server_name = b.test:$PB
state_dir = $T_TMP/b/state
run_dir = $T_TMP/b/run
signing_key = $T_TMP/b/signing.key
listen = 127.0.0.1:$PB
[syncd]
interval = $1
backoff_max = 1s
longpoll = 0
[peer a]
endpoint = http://127.0.0.1:$PA
mode = $2
[peer c]
endpoint = http://127.0.0.1:$PC
mode = $3
CONF
	[ "$4" = yes ] && printf '[peer d]\nendpoint = http://127.0.0.1:%s\n' "$PD" >>"$B"
	return 0
}
peer() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
# The peer names syncd reports, sorted, comma-separated.
names() { fedctl -c "$B" stats syncd | sed -n 's/^[^{]*//p' | jq -r '[.. | .peers? // empty | keys[]] | sort | join(",")' 2>/dev/null; }
hup() { kill -HUP "$PID_b_syncd"; sleep 0.3; }

conf 1h sync paused no
node_start b syncd
check "a pulled (11 events)" wait_for "[ \"\$(peer a cursor)\" = 11 ]" 200
check_eq "stats name a and c" "a,c" "$(names)"
check_eq "c paused: never contacted" 0 "$(peer c cursor)"

# Reload 1: c resumed, d added, interval 1h -> 300ms.
conf 300ms sync sync yes
hup
check "the resumed peer c is contacted without a restart (6 events)" wait_for "[ \"\$(peer c cursor)\" = 6 ]" 300
check "the added peer d is pulled (4 events)" wait_for "[ \"\$(peer d cursor)\" = 4 ]" 300
check "stats name exactly a, c, d" wait_for "[ \"\$(names)\" = a,c,d ]" 100
served_fill -c "$A" -N 4 >/dev/null
check "the shorter interval applies: A's new events arrive (old interval 1h)" wait_for "[ \"\$(peer a cursor)\" = 16 ]" 300

# Reload 2..4 under sync: d removed, a paused; repeated SIGHUPs.
conf 300ms paused sync no
hup; hup; hup
check "stats name exactly a, c after three SIGHUPs" wait_for "[ \"\$(names)\" = a,c ]" 100
check_eq "a reported paused" paused "$(peer a health)"
served_fill -c "$A" -N 3 >/dev/null
served_fill -c "$C" -N 3 >/dev/null
check "c still syncs (cursor 6 -> 10)" wait_for "[ \"\$(peer c cursor)\" = 10 ]" 300
sleep 1
check_eq "the paused a pulled nothing more" 16 "$(peer a cursor)"

# Reload 5, 6: a resumed; then the same config again and again.
conf 300ms sync sync yes
hup
check "a resumed: its held-back events arrive (cursor 20)" wait_for "[ \"\$(peer a cursor)\" = 20 ]" 300
for i in 1 2 3 4 5; do hup; done
check "stats still name exactly a, c, d" wait_for "[ \"\$(names)\" = a,c,d ]" 100
check "no garbage in the peer names" sh -c "fedctl -c '$B' stats syncd | LC_ALL=C grep -q '[^[:print:]]' && exit 1 || exit 0"
check "syncd survived every reload" kill -0 "$PID_b_syncd"
stop "$PID_b_syncd"
check "no sanitizer report in syncd's log" sh -c "! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' '$T_TMP/b/syncd.log'"
check_eq "reloads logged" 10 "$(grep -c 'configuration reloaded' "$T_TMP/b/syncd.log")"
finish
