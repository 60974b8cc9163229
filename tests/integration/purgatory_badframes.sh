#!/bin/sh
# purgatoryd: bad frames and garbage on its socket give a clear log line and
# the connection is dropped; purgatoryd keeps running and nothing durable is
# lost (held events stay held and are released when their parent comes).
. tests/lib/lib.sh
pipeline_node alpha
PT=purgatory_tool
SOCK=$D/run/purgatoryd.sock
LOG=$T_TMP/purg.log

bg purgatoryd -c "$CONF" 2>"$LOG"; PURG=$LAST_PID
bg validated -c "$CONF"; VAL=$LAST_PID
check "up" wait_for "[ -S $SOCK ] && [ -S $D/run/validated.sock ]"
$PT gen -k "$D/signing.key" -s "$SRV" -n 20 --tag bf > "$T_TMP/bf.jsonl"
sed -n '1p;3,20p' "$T_TMP/bf.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "18 held, create stored" wait_for '[ "$(stat_of purgatory)" = 18 ] && [ "$(stat_of events)" = 1 ]'

send() { # python: connect, write the bytes given as a Python expression, wait for close
python3 - "$SOCK" "$1" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
H = lambda ln, typ, fl=0, rid=1, magic=0xFD: struct.pack("!IBBHQ", ln, magic, typ, fl, rid)
data = eval(sys.argv[2])
s.sendall(data)
s.settimeout(3)
try:
    closed = s.recv(100) == b""
except socket.timeout:
    closed = False
sys.exit(0 if closed else 1)
PY
}
check "garbage bytes: connection dropped" send 'b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3'
check "  ... with a clear log line" grep -q "bad magic\|dropping the connection" "$LOG"
check "a frame over the maximum: dropped before allocating" send 'H(0x7fffffff, 2) + b"x"'
check "  ... log says too large" grep -q "too large" "$LOG"
check "unknown frame type: dropped" send 'H(4, 99) + b"abcd"'
check "verdict with a garbage meta line: dropped" send 'H(12, 2) + b"not json\n{}x"'
check "  ... log names the bad verdict" grep -q "bad verdict frame" "$LOG"
check "verdict without a newline: dropped" send 'H(5, 2) + b"{}{}{"'
check "accepted verdict without event_id: dropped" send 'H(len(b"{\"verdict\":\"accept\"}\n{}"), 2) + b"{\"verdict\":\"accept\"}\n{}"'
check "unexpected EVENT frame: dropped" send 'H(2, 1) + b"{}"'
check "control request that is not JSON: dropped" send 'H(3, 12) + b"xyz"'
check "purgatoryd is still running" kill -0 $PURG
# each refusal counted where an operator looks (fedpipe_bad_frames_total,
# fedpipe_purgatory_bad_verdicts_total): the garbage, oversized and
# unknown-type headers as bad frames; the three bad verdicts and the
# unexpected EVENT frame as bad verdicts
check_eq "counted: bad_frames, bad_verdicts" "3 4" "$(stage_stat "$CONF" purgatoryd bad_frames) $(stage_stat "$CONF" purgatoryd bad_verdicts)"
check_eq "nothing held was lost" 18 "$(stat_of purgatory)"
sed -n 2p "$T_TMP/bf.jsonl" | $PT submit -c "$CONF" - 2>/dev/null
check "the missing parent arrives: all 20 stored" wait_for '[ "$(stat_of events)" = 20 ] && [ "$(stat_of purgatory)" = 0 ]'
check_eq "consistent and topological" "consistent=1 topo=1" "$($PT check -c "$CONF" | grep -o 'consistent=. topo=.')"
grep '^<4>' "$LOG" | sed 's/^/# /' | head -12
stop $PURG; stop $VAL
finish
