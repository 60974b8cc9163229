# fedsup.sh: the supervisor with real stages: readiness, restart after
# kill -9, no restart after exit 100, backoff for a stage dying at startup,
# status, reverse-order shutdown on SIGTERM.
. tests/lib/lib.sh
P=$(free_port)
CONF=$(node_config sup "$P")
SUP="$FP_ROOT/scripts/fedsup"
bg "$SUP" -c "$CONF" --bin "$FP_BIN" --stages "validated feedpump" --logdir "$T_TMP" 2>"$T_TMP/sup.log"
SPID=$LAST_PID
check "both stages come up (readiness from the daemons)" wait_for "grep -q 'all stages started' $T_TMP/sup.log" 200
check "readiness logged per stage" grep -q "validated is ready" "$T_TMP/sup.log"
"$SUP" -c "$CONF" status >"$T_TMP/status" 2>&1
check "status shows validated running" grep -q "^validated *running" "$T_TMP/status"
VPID=$(awk '/^validated/ {print $3}' "$T_TMP/status")
fedctl -c "$CONF" status >"$T_TMP/fstatus" 2>&1
check_eq "fedctl status exits 1 while some stages are down" 1 $?
check "fedctl status: validated up with its pid" grep -q "^validated *up *$VPID " "$T_TMP/fstatus"
check "fedctl status: fetchd down" grep -q "^fetchd *down" "$T_TMP/fstatus"
check "fedctl status: store table sizes" grep -q "^store: events=0 inbox=0" "$T_TMP/fstatus"
check "fedctl status --json parses" sh -c "fedctl -c '$CONF' status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"stages\"][1][\"up\"] and d[\"tables\"][\"events\"] == 0'"
kill -9 "$VPID"
check "kill -9 is noticed and logged with the signal" wait_for "grep -q 'validated killed by SIGKILL' $T_TMP/sup.log" 100
check "validated is restarted" wait_for "grep -q 'started validated (pid [0-9]*, start #2)' $T_TMP/sup.log" 100
check "and ready again" wait_for "[ \$(grep -c 'validated is ready' $T_TMP/sup.log) -ge 2 ]" 100
"$SUP" -c "$CONF" status >"$T_TMP/status" 2>&1
check "status shows 2 starts" grep -q "^validated *running *[0-9]* *2 " "$T_TMP/status"
V2=$(awk '/^validated/ {print $3}' "$T_TMP/status")
FPID2=$(awk '/^feedpump/ {print $3}' "$T_TMP/status")
"$SUP" -c "$CONF" --bin "$FP_BIN" >"$T_TMP/second.log" 2>&1
check_eq "a second fedsup for the same node refuses (exit 111)" 111 $?
kill -TERM "$SPID"
wait "$SPID"
check_eq "fedsup exits 0 after SIGTERM" 0 $?
check "stages stopped in reverse order (feedpump before validated)" \
	sh -c "grep -n 'stopped (exited 0' $T_TMP/sup.log | head -1 | grep -q feedpump"
check "no stage left running" sh -c "! kill -0 $V2 2>/dev/null && ! kill -0 $FPID2 2>/dev/null"

# A stage with a bad configuration exits 100 and is not restarted.
BAD=$T_TMP/bad.conf
sed 's/^\[node\]/[node]\nroom_version = 12/' "$CONF" >"$BAD"
bg "$SUP" -c "$BAD" --bin "$FP_BIN" --stages "validated" 2>"$T_TMP/bad.log"
BPID=$LAST_PID
check "exit 100 is reported as not restarted" wait_for "grep -q 'NOT restarting' $T_TMP/bad.log" 100
sleep 2
check_eq "and it is started only once" 1 "$(grep -c 'started validated' "$T_TMP/bad.log")"
stop "$BPID"

# A stage that keeps dying at startup (exit 111: its state dir is a file) backs off.
F=$T_TMP/flaky
mkdir -p "$F"; : >"$F/notadir"
sed "s|^state_dir = .*|state_dir = $F/notadir|; s|^run_dir = .*|run_dir = $F/run|" "$CONF" >"$F/flaky.conf"
bg "$SUP" -c "$F/flaky.conf" --bin "$FP_BIN" --stages "validated" 2>"$T_TMP/flaky.log"
FPID=$LAST_PID
wait_for "grep -q 'backoff 4s' $T_TMP/flaky.log" 150
stop "$FPID"
delays=$(grep -o 'backoff [0-9]*s' "$T_TMP/flaky.log" | awk '{print $2}' | tr '\n' ' ')
check_eq "backoff doubles while it dies at startup" "1s 2s 4s " "$delays"

# A stage killed the instant it is started (before it could even open the
# readiness pipe) must be noticed and restarted: fedsup may not hang waiting
# for a readiness line that can never come. A watcher kills each new pid as
# soon as fedsup logs it, K times in a row.
R=$T_TMP/race
P2=$(free_port)
RCONF=$(node_config race "$P2")
K=6
bg "$SUP" -c "$RCONF" --bin "$FP_BIN" --stages "validated" --stable 0 2>"$T_TMP/race.log"
RPID=$LAST_PID
python3 - "$T_TMP/race.log" "$K" >"$T_TMP/race.kills" 2>&1 <<'PY' &
import os, re, signal, sys, time
path, k = sys.argv[1], int(sys.argv[2])
seen, pos, buf = 0, 0, ""
deadline = time.monotonic() + 60
while seen < k and time.monotonic() < deadline:
    try:
        with open(path) as f:
            f.seek(pos); chunk = f.read(); pos = f.tell()
    except FileNotFoundError:
        chunk = ""
    buf += chunk
    for m in re.finditer(r"started validated \(pid (\d+), start #(\d+)\)", buf):
        n = int(m.group(2))
        if n > seen:
            try: os.kill(int(m.group(1)), signal.SIGKILL)
            except ProcessLookupError: pass
            seen = n
            print("killed start", n, flush=True)
    buf = buf[buf.rfind("\n") + 1:]
    if not chunk: time.sleep(0.0005)
PY
KPID=$!
wait "$KPID"
check_eq "the watcher killed $K fresh starts" "$K" "$(grep -c '^killed start' "$T_TMP/race.kills")"
check "after $K kills at birth the stage is started again" wait_for "grep -q 'started validated (pid [0-9]*, start #$((K + 1)))' $T_TMP/race.log" 150
check "and becomes ready" wait_for "grep -q 'validated is ready' $T_TMP/race.log" 150
check_eq "each kill at birth was logged as a failed start" "$K" "$(grep -c 'validated killed by SIGKILL' "$T_TMP/race.log")"
stop "$RPID"
finish
