#!/bin/sh
# syncd against misbehaving peers (garbage, truncated JSON, a 10 MB body,
# the wrong content type, a slowloris trickle, a refused connection, broken
# events answers after a good handshake): it survives all of them at once,
# reports each with its fixed health reason, logs the first failure of a
# kind in full and repeats as one line, backs off, and keeps syncing the
# one good peer.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA")
served_fill -c "$A" -N 30 -o "$T_TMP/a.ids" >/dev/null
node_start a served
check "A up" wait_for "http_up http://127.0.0.1:$PA/healthz"
BAD=python3\ tests/tools/syncd_badpeer.py
peers=""
for m in garbage truncated big ctype slowloris events_garbage events_truncated; do
	p=$(free_port)
	bg $BAD "$p" "$m" "http://127.0.0.1:$PA" "$T_TMP/$m.req"
	peers="$peers
[peer $m]
endpoint = http://127.0.0.1:$p"
done
REFUSED=$(free_port)
B=$(node_config b "$PB" "
[syncd]
interval = 500ms
backoff_max = 2s
longpoll = 1s
low_speed_time = 2s
timeout = 6s
[peer good]
endpoint = http://127.0.0.1:$PA
[peer refused]
endpoint = http://127.0.0.1:$REFUSED$peers")
sleep 0.5
node_start b syncd
reason() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .health"; }
check "the good peer is synced while the others misbehave" wait_for \
	"[ \"\$(fedctl -c $B peers --json | jq -r '.[] | select(.name == \"good\") | .cursor')\" = 31 ]" 200
for pair in garbage:bad_body truncated:bad_body big:too_large ctype:bad_body refused:refused \
            events_garbage:bad_body events_truncated:bad_body slowloris:timeout; do
	name=${pair%%:*}; want=${pair#*:}
	check "$name reported as $want" wait_for "[ \"\$(reason $name)\" = $want ]" 150
done
check "syncd is still running" kill -0 "$PID_b_syncd"
check "first failure of a kind logged in full" grep -q "peer garbage (http://127.0.0.1:.*): bad_body: identity answer is not a JSON object" "$T_TMP/b/syncd.log"
check "repeats logged as one line" grep -q "peer garbage: still bad_body (failure [2-9]" "$T_TMP/b/syncd.log"
check "the events_* peers got past the handshake" sh -c "grep -q '_fed/v1/events' '$T_TMP/events_garbage.req'"
check_eq "nothing from the broken events answers reached the inbox; cursor stays 0" 0 \
	"$(fedctl -c "$B" peers --json | jq -r '.[] | select(.name == "events_garbage") | .cursor')"
N1=$(wc -l <"$T_TMP/garbage.req")
sleep 3
N2=$(wc -l <"$T_TMP/garbage.req")
check "failures back off (garbage peer asked $N1 then $N2 times, not every 500 ms)" [ $((N2 - N1)) -le 4 ]
stop "$PID_b_syncd"
check "syncd stopped cleanly after all that" sh -c "grep -q 'stopped' '$T_TMP/b/syncd.log'"
finish
