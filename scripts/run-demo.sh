#!/bin/sh
# make run: a two-node federation on 127.0.0.1 under fedsup, state in ./var.
# Node A creates a room and keeps sending signed events; node B pulls them,
# stores them and publishes them to its file feed (./var/b/feed). A live
# status line shows events made, replicated, held and in the feed, and the
# replication lag (events stored on A not yet stored on B, and how long ago
# B's syncd last had an answer from A); `fedctl -c var/b/fedpipe.conf top`
# shows the whole of node B. Ctrl-C stops everything cleanly.
# DEMO_SECONDS=N stops by itself after N seconds.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/bin"
VAR="$ROOT/var"
PA=${DEMO_PORT_A:-18448}
PB=${DEMO_PORT_B:-18449}
RATE=${DEMO_RATE:-5}      # events per second from A
mkdir -p "$VAR/a" "$VAR/b"
conf() { # name port peer-name peer-port
	cat <<CONF
[node]
server_name = $1.test:$2
state_dir = $VAR/$1/state
run_dir = $VAR/$1/run
signing_key = $VAR/$1/signing.key
listen = 127.0.0.1:$2

[server $3.test:$4]
endpoint = http://127.0.0.1:$4
CONF
}
conf a "$PA" b "$PB" >"$VAR/a/fedpipe.conf"
conf b "$PB" a "$PA" >"$VAR/b/fedpipe.conf"
cat >>"$VAR/b/fedpipe.conf" <<CONF

[peer a]
endpoint = http://127.0.0.1:$PA
mode = sync

[syncd]
interval = 2s

[feed]
sink = file
dir = $VAR/b/feed
CONF
for n in a b; do
	[ -f "$VAR/$n/signing.key" ] || "$BIN/fedctl" -c "$VAR/$n/fedpipe.conf" keygen >/dev/null || exit 1
done
echo "fedpipe demo: node A on 127.0.0.1:$PA, node B on 127.0.0.1:$PB; state in $VAR; logs in $VAR/*/log/"
mkdir -p "$VAR/a/log" "$VAR/b/log"
"$ROOT/scripts/fedsup" -c "$VAR/a/fedpipe.conf" --bin "$BIN" --logdir "$VAR/a/log" 2>>"$VAR/a/log/fedsup.log" &
SA=$!
"$ROOT/scripts/fedsup" -c "$VAR/b/fedpipe.conf" --bin "$BIN" --logdir "$VAR/b/log" 2>>"$VAR/b/log/fedsup.log" &
SB=$!
stop() {
	trap '' INT TERM
	printf '\nstopping both nodes...\n'
	kill -TERM "$SA" "$SB" 2>/dev/null
	wait "$SA" "$SB" 2>/dev/null
	echo "stopped. State is kept in $VAR (rm -rf var to start afresh)."
	exit 0
}
trap stop INT TERM
# Wait for both nodes' sockets (fedsup has waited for each stage's readiness).
i=0
until [ -S "$VAR/a/run/purgatoryd.sock" ] && [ -S "$VAR/b/run/syncd.sock" ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
ROOM=$(cat "$VAR/a/room" 2>/dev/null)
if [ -z "$ROOM" ]; then
	ROOM=$("$BIN/fedctl" -c "$VAR/a/fedpipe.conf" create-room 2>"$VAR/a/log/fedctl.log" | head -n 1) || { echo "create-room failed: $(cat "$VAR/a/log/fedctl.log")"; stop; }
	echo "$ROOM" >"$VAR/a/room"
fi
echo "node A created room $ROOM; press Ctrl-C to stop"
echo "live view of node B: $BIN/fedctl -c $VAR/b/fedpipe.conf top"
count() { mdb_stat -s "$2" "$VAR/$1/state" 2>/dev/null | awk '/Entries:/ {print $2; exit}'; }
# lag: events stored on A that B has not stored yet; seconds since B's syncd
# last had an answer from A (fedctl top's one-line form, peer a).
lag() {
	_la=$(count a events) _lb=$(count b events)
	case "$_la:$_lb" in *[!0-9:]*|:*|*:) _ev=- ;; *) _ev=$((_la > _lb ? _la - _lb : 0)) ;; esac
	_ms=$("$BIN/fedctl" -c "$VAR/b/fedpipe.conf" top --count 1 2>/dev/null </dev/null | tr ' ' '\n' | sed -n 's/^peer_a_last_answer_ms=//p')
	case "$_ms" in ''|*[!0-9]*) _ago=- ;; *) _ago=$((_ms / 1000))s ;; esac
	echo "$_ev ev, last pull $_ago ago"
}
made=0 start=$(date +%s)
while :; do
	k=0
	while [ $k -lt "$RATE" ]; do
		"$BIN/fedctl" -c "$VAR/a/fedpipe.conf" send "$ROOM" m.room.message \
			"{\"msgtype\":\"m.text\",\"body\":\"hello $made from A\"}" >/dev/null 2>>"$VAR/a/log/fedctl.log" && made=$((made + 1))
		k=$((k + 1))
	done
	feed=$(find "$VAR/b/feed" -maxdepth 1 -type f -name '*\$*' 2>/dev/null | wc -l)
	printf '\rmade %6d  stored on A %6s  replicated to B %6s  held on B %4s  in B feed %6s  lag %s  (%ds) ' \
		"$made" "$(count a events)" "$(count b events)" "$(count b purgatory)" "$feed" "$(lag)" $(( $(date +%s) - start ))
	if [ -n "${DEMO_SECONDS:-}" ] && [ $(( $(date +%s) - start )) -ge "$DEMO_SECONDS" ]; then stop; fi
	sleep 1
done
