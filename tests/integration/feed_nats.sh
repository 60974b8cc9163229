#!/bin/sh
# feedpump, NATS JetStream sink and source, against a real nats-server -js on
# 127.0.0.1 (own port, own store dir): exactly-once by Nats-Msg-Id including
# publishes retried after kill -9; nats-server stopped mid-run (attempts and
# last error recorded, publishing resumes, nothing lost); a JetStream
# consumer killed between commit and ack skips the redelivery.
. tests/lib/lib.sh
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
NP=$(free_port)
URL=nats://127.0.0.1:$NP
conf=$(node_config alpha "$(free_port)" "sink = nats
nats_url = $URL
nats_subject = fp.test.events
nats_stream = FPTEST
nats_ack_wait = 1s
nats_timeout = 1s
[feedpump]
backoff_min = 50ms
backoff_max = 500ms
max_attempts = 3")
D=$T_TMP/alpha
start_nats() {
	bg nats-server -js -a 127.0.0.1 -p "$NP" -sd "$T_TMP/nats" 2>>"$T_TMP/nats.log"
	NATS=$LAST_PID
	wait_for "nc -z 127.0.0.1 $NP || python3 -c 'import socket; socket.create_connection((\"127.0.0.1\",$NP))'" 100
}
tail_count() { fedctl -c "$conf" feed tail --source nats:fp.test.events | wc -l | tr -d ' '; }

# unreachable URL: a clear error at startup (exit 111: try again later)
feedpump -c "$conf" --once 2>"$T_TMP/unreach.err"
rc=$?
check_eq "unreachable NATS URL: exit 111" 111 "$rc"
check "unreachable NATS URL: clear error" grep -q "cannot connect to $URL" "$T_TMP/unreach.err"

start_nats
N=600
bg feed_fill "$D/state" $N --batch 10 --delay-ms 10 --run-dir "$D/run"
FILL=$LAST_PID
i=0
while [ $i -lt 8 ]; do
	feedpump -c "$conf" --batch 16 2>>"$T_TMP/fp.log" &
	P=$!
	sleep "$(awk -v s="$$$i" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 0.3 }')"
	kill -9 $P 2>/dev/null; wait $P 2>/dev/null
	i=$((i + 1))
done
wait $FILL
check "kill -9 run: the last feedpump drains the rest" feedpump -c "$conf" --once 2>>"$T_TMP/fp.log"
check_eq "JetStream holds every event exactly once" $N "$(tail_count)"
fedctl -c "$conf" feed tail --source nats:fp.test.events >"$T_TMP/t1"
check_eq "no duplicate event IDs in the stream" $N "$(jq -r .event_id "$T_TMP/t1" | sort -u | wc -l | tr -d ' ')"
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "$e_%07d\n", i }' >"$T_TMP/expect"
check "stream order = outbox order" sh -c "jq -r .event_id '$T_TMP/t1' | cmp -s - '$T_TMP/expect'"
check "control version = stream sequence" sh -c "jq -r .control_version '$T_TMP/t1' | awk '\$1 != NR { exit 1 }'"

# A publish retried (outbox row reset to unpublished: what a kill after
# publish and before write-back leaves) resolves to the original sequence.
bg feed_fill "$D/state" 20 --prefix retry
wait $LAST_PID
FP_TEST_CRASH_AFTER_PUBLISH=1 feedpump -c "$conf" --once 2>>"$T_TMP/retry.log"
check_eq "crash after publish, before write-back (test hook)" 3 "$?"
check_eq "rows still pending after that crash" 20 "$(fedctl -c "$conf" --json feed status | jq .pending)"
feedpump -c "$conf" --once 2>>"$T_TMP/retry.log"
check "the retried publishes were acked as duplicates" grep -q 'duplicate publish ack' "$T_TMP/retry.log"
N=$((N + 20))
check_eq "retry after the kill: still exactly once ($N)" $N "$(tail_count)"

# nats-server stopped mid-run
bg feedpump -c "$conf" -v
FP=$LAST_PID
wait_for "fedctl -c '$conf' --json feed status | jq -e '.lease != null'" 100
stop $NATS
bg feed_fill "$D/state" 50 --prefix down --batch 10 --run-dir "$D/run"
wait $LAST_PID
wait_for "fedctl -c '$conf' --json feed status | jq -e '.first_pending.attempts >= 2' " 150
check "server down: attempts recorded" sh -c "fedctl -c '$conf' --json feed status | jq -e '.first_pending.attempts >= 2'"
check "server down: last error recorded" sh -c "fedctl -c '$conf' --json feed status | jq -e '.first_pending.last_error | length > 0 and length <= 200'"
check_eq "server down: nothing dead-lettered" 0 "$(fedctl -c "$conf" --json feed status | jq .dead)"
start_nats
wait_for "fedctl -c '$conf' --json feed status | jq -e '.pending == 0'" 200
check_eq "server back: everything published" 0 "$(fedctl -c "$conf" --json feed status | jq .pending)"
check_eq "server back: nothing lost, nothing twice" $((N + 50)) "$(tail_count)"
stop $FP

# Consumer: durable pull, ack after commit; crash between commit and ack.
FP_TEST_CRASH_BEFORE_ACK=1 fedctl -c "$conf" feed apply --into "$T_TMP/app" --idle 500 >/dev/null 2>"$T_TMP/apply1.err"
check_eq "apply crashed after its first commit (test hook)" 3 "$?"
fedctl -c "$conf" --json feed apply --into "$T_TMP/app" --idle 3000 >"$T_TMP/apply2.json" 2>"$T_TMP/apply2.err"
check "second apply succeeded" test $? -eq 0
sk=$(jq .skipped "$T_TMP/apply2.json"); ap=$(jq .applied "$T_TMP/apply2.json")
check "redelivered events skipped by applied_events ($sk)" test "$sk" -ge 1
check_eq "every event applied exactly once overall (applied_events entries)" $((N + 50)) \
	"$(mdb_stat -s applied_events "$T_TMP/app" | awk '/Entries:/ { print $2 }')"
check_eq "consumer data rows" $((N + 50)) "$(mdb_stat -s data "$T_TMP/app" | awk '/Entries:/ { print $2 }')"
fedctl -c "$conf" --json feed apply --into "$T_TMP/app" --idle 1500 >"$T_TMP/apply3.json"
check_eq "third apply: nothing left unacked" 0 "$(jq '.applied + .skipped' "$T_TMP/apply3.json")"
finish
