#!/bin/sh
# Local boundaries (issue 13, item 10): a stage socket is born 0660 (bound
# under a restrictive umask, never chmod'ed wider afterwards), a run
# directory others may write is refused, and a connection from a uid that is
# not ours, root or [node] socket_group is closed before it is read, so a
# local user cannot inject `verdict accept` frames into purgatoryd even when
# the socket's mode would let them in.
. tests/lib/lib.sh
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1 || ! command -v setpriv >/dev/null; then
	skip "needs root, a 'nobody' user and setpriv to act as another local user"; finish; exit $?
fi
CONF=$(node_config alpha "$(free_port)")
D=$T_TMP/alpha
RUN=$D/run
SRV=$(sed -n 's/^server_name = //p' "$CONF")
LOG=$T_TMP/purg.log
PYN=/usr/bin/python3; [ -x $PYN ] || PYN=$(command -v python3)

# 1. a run directory writable by others
chmod 0777 "$RUN"
timeout 30 purgatoryd -c "$CONF" 2>"$T_TMP/ww.log"; rc=$?
check_eq "a run directory writable by others: purgatoryd refuses to start (exit 100)" 100 "$rc"
check "  ... and says why" grep -q "writable by others" "$T_TMP/ww.log"
check "  ... and made no socket there" test ! -e "$RUN/purgatoryd.sock"
chmod 0750 "$RUN"

# 2. the socket is born 0660: umask before bind, no chmod after it
if command -v strace >/dev/null; then
	strace -f -o "$T_TMP/strace.out" -e trace=umask,bind,chmod,fchmodat timeout 5 validated -c "$CONF" 2>/dev/null
	b=$(grep -n 'bind(.*validated.sock' "$T_TMP/strace.out" | head -1 | cut -d: -f1)
	u=$(grep -n 'umask(0117)' "$T_TMP/strace.out" | head -1 | cut -d: -f1)
	check "the socket is bound under umask 0117 (born 0660)" test -n "$b" -a -n "$u" -a "${u:-0}" -lt "${b:-0}"
	check "  ... and never chmod'ed afterwards" sh -c "! grep -q 'chmod.*validated.sock' '$T_TMP/strace.out'"
else
	skip "strace not installed"; skip "strace not installed"
fi

bg purgatoryd -c "$CONF" 2>"$LOG"; PURG=$LAST_PID
check "purgatoryd up" wait_for "[ -S $RUN/purgatoryd.sock ]"
check_eq "socket mode" "660" "$(stat -c %a "$RUN/purgatoryd.sock")"

# 3. the attack: another local user reaches the socket (a wider mode set by
# hand, an ACL, a bind mount: we do not rely on the mode alone) and sends a
# verdict accepting a forged event.
purgatory_tool gen -k "$D/signing.key" -s "$SRV" -n 1 --tag lb > "$T_TMP/ev.jsonl"
python3 - "$T_TMP/ev.jsonl" "$T_TMP/verdict.bin" <<'PY'
import json, struct, sys
ev = json.loads(open(sys.argv[1]).readline())
ev["content"]["forged"] = "by a local user"        # the signature no longer matches
pdu = json.dumps(ev, sort_keys=True, separators=(",", ":")).encode()
meta = json.dumps({"verdict": "accept", "event_id": "$forgedlocalverdictxxxxxxxxxxxxxxxxxxxxxxxxxx",
                   "room_id": ev["room_id"], "room_version": 10, "from": "local"}).encode()
p = meta + b"\n" + pdu
open(sys.argv[2], "wb").write(struct.pack("!IBBHQ", len(p), 0xFD, 2, 0, 0) + p)
PY
chmod 0755 "$T_TMP" "$D" "$RUN"
chmod 0644 "$T_TMP/verdict.bin"
chmod 0666 "$RUN/purgatoryd.sock"
inject() { # as nobody: send the verdict, then ask for stats; print what came back
setpriv --reuid=nobody --regid=nogroup --clear-groups "$PYN" - "$RUN/purgatoryd.sock" "$T_TMP/verdict.bin" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    s.sendall(open(sys.argv[2], "rb").read())
    s.sendall(struct.pack("!IBBHQ", 0, 0xFD, 6, 0, 7))
    s.settimeout(5)
    print("answered" if s.recv(16) else "closed")
except OSError as e:
    print("closed" if "reset" in str(e).lower() or "pipe" in str(e).lower() else "error " + str(e))
PY
}
check_eq "another uid's connection is closed unread" "closed" "$(inject)"
sleep 1
check_eq "the forged verdict was not stored" "0" "$(purgatory_tool check -c "$CONF" | tr ' ' '\n' | sed -n 's/^events=//p')"
check "the refusal is logged with the uid" grep -q "refused a connection.*uid $(id -u nobody)" "$LOG"
check_eq "  ... and counted (socket_refused)" 1 "$(stage_stat "$CONF" purgatoryd socket_refused)"
check "purgatoryd still runs" kill -0 $PURG
stop $PURG

# 4. [node] socket_group admits that group's members
GRP=$(id -gn nobody)
sed -i "s/^\[node\]$/[node]\nsocket_group = $GRP/" "$CONF"
bg purgatoryd -c "$CONF" 2>"$LOG"; PURG=$LAST_PID
check "purgatoryd up with socket_group" wait_for "[ -S $RUN/purgatoryd.sock ]"
check_eq "the socket belongs to socket_group" "$GRP" "$(stat -c %G "$RUN/purgatoryd.sock")"
check_eq "a member of socket_group is let in" "answered" "$(printf '' > "$T_TMP/verdict.bin"; inject)"
stop $PURG
sed -i "s/^socket_group = .*/socket_group = no-such-group-fp/" "$CONF"
timeout 30 purgatoryd -c "$CONF" 2>"$T_TMP/ng.log"; rc=$?
check_eq "an unknown socket_group is a configuration error (exit 100)" 100 "$rc"
finish
