# fedsup_orphans.sh: a killed fedsup leaves no orphans and a new one does not
# loop. Node a runs under fedsup with events being sent to it, node b (under
# its own fedsup) pulls from it. Case 1: kill -9 a's fedsup: every stage of a
# (and every per-stage supervisor) exits by itself; a new fedsup starts exactly
# one of each stage and restarts none of them. Case 2: kill -9 and start the
# new fedsup at once, while the old stages still run: the new one stops them
# first (by PID, from the pid files) and again runs one of each, no restart.
# A stale fedsup.pid and a stage pid file naming someone else's process (a
# decoy) neither block the new fedsup nor get the decoy killed. In the end
# every event sent is stored exactly once on a and b and fed exactly once.
. tests/lib/lib.sh
NSTAGES=$(fedctl stages --json | jq length)
. tests/tools/federation_lib.sh
SUP="$FP_ROOT/scripts/fedsup"
STAGES="validated purgatoryd fetchd feedpump served fleetd syncd"
PA=$(free_port)
PB=$(free_port)
A=$(node_config a "$PA" "$FED_COMMON$FED_OPEN
[feed]
sink = file")
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[syncd]
interval = 1s
[feed]
sink = file
[peer a]
endpoint = http://127.0.0.1:$PA
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
RUNA=$T_TMP/a/run/fedsup
mkdir -p "$T_TMP/a/log" "$T_TMP/b/log"

# Whatever of ours is still running at the end (on the pre-fix script: the
# orphans) is ended by PID, picked by this test's unique temporary directory.
reap_orphans() {
	for _c in /proc/[0-9]*/cmdline; do
		_p=${_c#/proc/}; _p=${_p%/cmdline}
		[ "$_p" = $$ ] && continue
		tr '\0' ' ' 2>/dev/null <"$_c" | grep -q "$T_TMP/" && kill -KILL "$_p" 2>/dev/null
	done
}
trap 'reap_orphans; cleanup' EXIT

# procs CONF [all]: how many processes run each stage with CONF (with all:
# and how many fedsup processes name CONF), from /proc/*/cmdline.
procs() {
	python3 - "$1" "$STAGES" ${2:-} <<'PY'
import os, sys
conf, names = sys.argv[1], sys.argv[2].split()
n, sup = dict.fromkeys(names, 0), 0
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        a = [x.decode(errors="replace") for x in open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")[:-1]]
    except OSError:
        continue
    if conf not in a:
        continue
    if a and os.path.basename(a[0]) in n:
        n[os.path.basename(a[0])] += 1
    elif any(x == "fedsup" or x.endswith("/fedsup") for x in a):
        sup += 1
print(" ".join("%s=%d" % (k, n[k]) for k in names) + (" fedsup=%d" % sup if len(sys.argv) > 3 else ""))
PY
}
# gone CONF: no stage and no fedsup process (main or per-stage) of the node.
gone() { [ "$(procs "$1" all)" = "$NONE" ]; }
NONE="validated=0 purgatoryd=0 fetchd=0 feedpump=0 served=0 fleetd=0 syncd=0 fedsup=0"
ONE="validated=1 purgatoryd=1 fetchd=1 feedpump=1 served=1 fleetd=1 syncd=1"
# starts LOG: how many stage starts a fedsup log shows.
starts() { grep -c 'started [a-z]* (pid' "$1"; }
# restarted LOG: some stage was started a second time.
restarted() { grep -q 'start #[2-9]' "$1"; }
# no_restart LOG: a bounded poll that must run out: no restart seen in 10 s.
no_restart() { ! wait_for "restarted $1" 100; }

start_sup() { # node logname: start a fedsup, PID in SUPPID
	bg "$SUP" -c "$T_TMP/$1/fedpipe.conf" --bin "$FP_BIN" --logdir "$T_TMP/$1/log" 2>"$T_TMP/$1/$2"
	SUPPID=$LAST_PID
}
start_sup b sup.log
SUPB=$SUPPID
start_sup a sup1.log
SUPA=$SUPPID
check "node a: every stage started under fedsup" wait_for "grep -q 'all stages started' $T_TMP/a/sup1.log" 300
check "node b: every stage started under fedsup" wait_for "grep -q 'all stages started' $T_TMP/b/sup.log" 300
check_eq "node a: one of each stage" "$ONE" "$(procs "$A")"
ROOM=$(fedctl -c "$A" create-room 2>>"$T_TMP/a/fedctl.log" | head -n 1)
check "node a created a room" test -n "$ROOM"

# Load: events sent to a until the stop file appears, one ID per line.
load() {
	_i=0
	while [ ! -f "$T_TMP/stop" ]; do
		fedctl -c "$A" send "$ROOM" m.room.message "{\"body\":\"e $_i\"}" >>"$T_TMP/ids" 2>>"$T_TMP/a/fedctl.log"
		_i=$((_i + 1))
		sleep 0.05
	done
}
bg load
sent() { grep -c '^\$' "$T_TMP/ids" 2>/dev/null || echo 0; }
check "events are being sent" wait_for "[ \$(sent) -ge 20 ]" 300

# Case 1: kill -9 fedsup; its stages must not run on unsupervised.
kill -9 "$SUPA"
wait "$SUPA" 2>/dev/null
check "case 1: every stage (and fedsup process) of a exits once fedsup is killed" wait_for "gone $A" 300
diag "after kill -9: $(procs "$A" all)"
n0=$(sent)
start_sup a sup2.log
SUPA=$SUPPID
check "case 1: the new fedsup starts every stage" wait_for "grep -q 'all stages started' $T_TMP/a/sup2.log" 600
check_eq "case 1: exactly one of each stage runs" "$ONE" "$(procs "$A")"
check "case 1: load goes on under the new fedsup" wait_for "[ \$(sent) -ge $((n0 + 40)) ]" 600
check "case 1: no stage restarted (observed for 10 s)" no_restart "$T_TMP/a/sup2.log"
check_eq "case 1: one start per stage ($NSTAGES) in the new fedsup's log" "$NSTAGES" "$(starts "$T_TMP/a/sup2.log")"
check_eq "case 1: still one of each stage" "$ONE" "$(procs "$A")"

# Case 2: kill -9 and start the new fedsup at once: the old stages still run.
kill -9 "$SUPA"
start_sup a sup3.log
OLD=$SUPA
SUPA=$SUPPID
wait "$OLD" 2>/dev/null
check "case 2: the new fedsup starts every stage" wait_for "grep -q 'all stages started' $T_TMP/a/sup3.log" 600
check_eq "case 2: exactly one of each stage runs" "$ONE" "$(procs "$A")"
n0=$(sent)
check "case 2: load goes on under the new fedsup" wait_for "[ \$(sent) -ge $((n0 + 40)) ]" 600
check "case 2: no stage restarted (observed for 10 s)" no_restart "$T_TMP/a/sup3.log"
check_eq "case 2: one start per stage ($NSTAGES) in the new fedsup's log" "$NSTAGES" "$(starts "$T_TMP/a/sup3.log")"
check_eq "case 2: still one of each stage" "$ONE" "$(procs "$A")"
check_eq "no stage ever found another instance on its socket" 0 \
	"$(cat "$T_TMP"/a/log/*.log | grep -c 'already listening')"
"$SUP" -c "$A" status >"$T_TMP/status" 2>&1
check "fedsup status shows the new fedsup's stages" grep -q "^validated *running" "$T_TMP/status"

# Nothing lost, nothing twice: every event sent is stored and fed exactly once.
touch "$T_TMP/stop"
sleep 0.5
diag "events sent: $(sent)"
for n in a b; do
	if wait_for "python3 tests/tools/chaos_check.py $T_TMP/$n/fedpipe.conf $T_TMP/$n/feed $T_TMP/ids >$T_TMP/$n/check" 600; then
		ok "node $n: every event sent stored and fed exactly once: $(cat "$T_TMP/$n/check")"
	else
		not_ok "node $n: events lost or duplicated: $(cat "$T_TMP/$n/check")"
	fi
done
kill -TERM "$SUPA" "$SUPB"
wait "$SUPA"
check_eq "the new fedsup exits 0 after SIGTERM" 0 $?
wait "$SUPB"
check "node a: nothing left running after the stop" wait_for "gone $A" 100

# Decoys: a stale fedsup.pid and a stage pid file, both naming a live
# process that is not ours: they neither block a new fedsup nor get the
# decoy signalled.
bg sleep 300
DECOY=$LAST_PID
echo "$DECOY" >"$RUNA/fedsup.pid"
echo "$DECOY" >"$RUNA/validated.pid"
start_sup a sup4.log
SUPA=$SUPPID
check "decoys: a fedsup starts despite stale pid files" wait_for "grep -q 'all stages started' $T_TMP/a/sup4.log" 600
check_eq "decoys: one of each stage" "$ONE" "$(procs "$A")"
check "decoys: the process named by the stale pid files is alive" kill -0 "$DECOY"
kill -TERM "$SUPA"
wait "$SUPA"
check "node a: nothing left running" wait_for "gone $A" 100
finish
