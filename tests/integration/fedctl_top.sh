#!/bin/sh
# fedctl top against a real node (B: every stage, peer A feeding it events),
# driven through tmux (a real pseudo-terminal of 120x40): each stage shows
# up, the stored count rises to the number of A's events, a stage that is
# stopped shows DOWN and, started again, one restart (a new pid; no fedsup
# here); a resize redraws within the new width; `q`, SIGTERM and ^C each end
# it with the terminal as it was (stty -g before and after, the shell prompt
# back). Not on a terminal: --count 3 prints 3 key=value lines, the same
# keys each time. Then under fedsup: restarts come from its state files.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
command -v tmux >/dev/null || { skip "tmux is not installed (Debian: tmux)"; finish; exit $?; }
N=40
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA" "$FED_OPEN")
served_fill -c "$A" -N $N >/dev/null
EVENTS=$((N + 1))                     # served_fill's room creation, then N events
node_start a served
check "A up" wait_for "http_up http://127.0.0.1:$PA/healthz"
B=$(node_config b "$PB" "$FED_COMMON
[syncd]
interval = 300ms
longpoll = 1s
[peer a]
endpoint = http://127.0.0.1:$PA
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
node_start b validated purgatoryd fetchd feedpump served

# Our own tmux server (its own socket): a shell in a 120x40 pane.
TM="tmux -S $T_TMP/tmux.sock"
$TM new-session -d -x 120 -y 40 "env PS1='PROMPT\$ ' HOME=$T_TMP PATH='$PATH' sh" || { not_ok "tmux session"; finish; exit 1; }
T_PIDS="$T_PIDS $($TM display-message -p '#{pid}')"
screen() { $TM capture-pane -p; }
# The prompt is back (the last non-empty line of the pane ends with it).
prompt_back() { [ "$(screen | grep -v '^$' | tail -n 1)" = 'PROMPT$' ]; }
# A command typed into the pane's shell.
type_line() { $TM send-keys -l "$1"; $TM send-keys Enter; }
has() { screen | grep -Eq "$1"; }
check "the shell in the pane is up" wait_for prompt_back 50
type_line "stty -g >$T_TMP/stty.before; clear"
wait_for "[ -s $T_TMP/stty.before ]" 50
type_line "sh -c 'echo \$\$ >$T_TMP/top.pid; exec fedctl -c $B top'"
check "the view is drawn" wait_for "screen | grep -q '^fedctl top  b.test:$PB'" 100
for st in validated purgatoryd fetchd feedpump served; do
	check "$st shows up" wait_for "screen | grep -Eq '^$st +up +[0-9]+ '" 100
done
check "syncd (not started yet) shows DOWN" wait_for "screen | grep -Eq '^syncd +DOWN '" 50
stored() { screen | sed -n 's/^stored  *[-0-9.]*  *[-0-9]*  *\([0-9]*\)  *(events table)$/\1/p'; }
check_eq "nothing stored before syncd pulls" 0 "$(stored)"
check "the keyboard is non-canonical without echo while top runs" sh -c \
	"stty -a -F $($TM display-message -p '#{pane_tty}') | grep -q -- '-icanon' && stty -a -F $($TM display-message -p '#{pane_tty}') | grep -q -- '-echo '"
node_start b syncd
check "syncd shows up" wait_for "screen | grep -Eq '^syncd +up +[0-9]+ '" 100
: >"$T_TMP/seen"
rise() { s=$(stored); [ -n "$s" ] && echo "$s" >>"$T_TMP/seen"; [ "$s" = "$EVENTS" ]; }
check "the stored count rises to $EVENTS" wait_for rise 200
check "it only rose (0 .. $EVENTS, never down)" sh -c "sort -n -c '$T_TMP/seen'"
check "peer a: ok, cursor $EVENTS, lag 0" wait_for "screen | grep -Eq '^a +ok +[a-z]+ +$EVENTS +0 '" 100
check "published: $EVENTS in the outbox" wait_for "screen | grep -Eq '^published .* $EVENTS  \\(outbox\\)$'" 100
check "store line" has '^STORE +used [0-9.]+ [KMG]?i?B of a [0-9.]+ [KMG]iB map \([0-9.]+%\)'
check "fetch line" has '^FETCH .*success .* p50 .* p99 '
check "at 120 columns the store line is whole" has '^STORE .*, ceiling [0-9.]+ [KMGT]?i?B$'

# A stage stopped: DOWN; started again: up, one restart seen (new pid).
stop "$PID_b_fetchd"
check "a stopped stage shows DOWN" wait_for "screen | grep -Eq '^fetchd +DOWN '" 100
node_start b fetchd
check "started again: up, 1 restart (pid change seen)" wait_for "screen | grep -Eq '^fetchd +up +$PID_b_fetchd +[0-9hms]+ +1\\* '" 100

# Resize: redrawn within the new width, header on top.
$TM resize-window -t 0 -x 70 -y 24 2>/dev/null || $TM resize-pane -x 70 -y 24
check "after a resize to 70x24 the view is redrawn, the store line still on it" wait_for \
	"screen | head -n 1 | grep -q '^fedctl top' && has '^validated +up ' && has '^STORE '" 100
check "... long lines cut at 70 columns, not wrapped" sh -c "[ \$($TM capture-pane -p -J | awk '{ if (length > m) m = length } END { print m + 0 }') -le 70 ]"
check "... (nothing of the store line's end)" eval "! has 'ceiling'"

# q quits; the terminal is as before.
$TM send-keys q
check "q ends it: the prompt is back" wait_for prompt_back 100
check "the top process is gone" sh -c "! kill -0 \$(cat $T_TMP/top.pid) 2>/dev/null"
type_line "stty -g >$T_TMP/stty.after.q"
wait_for "[ -s $T_TMP/stty.after.q ]" 50
check_eq "terminal settings restored after q" "$(cat "$T_TMP/stty.before")" "$(cat "$T_TMP/stty.after.q")"

# SIGTERM and ^C: the same.
for how in TERM INT; do
	rm -f "$T_TMP/top.pid"
	type_line "clear; sh -c 'echo \$\$ >$T_TMP/top.pid; exec fedctl -c $B top'"
	wait_for "[ -s $T_TMP/top.pid ] && screen | grep -Eq '^served +up '" 100
	if [ $how = TERM ]; then kill -TERM "$(cat "$T_TMP/top.pid")"; else $TM send-keys C-c; fi
	check "SIG$how ends it: the prompt is back" wait_for prompt_back 100
	type_line "stty -g >$T_TMP/stty.after.$how"
	wait_for "[ -s $T_TMP/stty.after.$how ]" 50
	check_eq "terminal settings restored after SIG$how" "$(cat "$T_TMP/stty.before")" "$(cat "$T_TMP/stty.after.$how")"
done
# ^Z: the terminal as it was while stopped; fg: the view again; q.
type_line "clear; fedctl -c $B top"
check "top again" wait_for "has '^served +up '" 100
$TM send-keys C-z
check "^Z stops it: the prompt is back" wait_for "prompt_back && has 'Stopped'" 100
type_line "stty -g >$T_TMP/stty.after.tstp"
wait_for "[ -s $T_TMP/stty.after.tstp ]" 50
check_eq "terminal settings restored while stopped" "$(cat "$T_TMP/stty.before")" "$(cat "$T_TMP/stty.after.tstp")"
type_line "clear; fg"
check "fg: the view is drawn again" wait_for "screen | head -n 1 | grep -q '^fedctl top' && has '^served +up '" 100
$TM send-keys q
check "q after fg: the prompt is back" wait_for prompt_back 100
$TM kill-server 2>/dev/null

# Not a terminal: one key=value line per sample, stable keys.
fedctl -c "$B" top --count 3 --interval 200ms </dev/null >"$T_TMP/lines" 2>"$T_TMP/lines.err"
check_eq "--count 3 off a terminal exits 0" 0 $?
check_eq "--count 3 prints 3 lines" 3 "$(wc -l <"$T_TMP/lines" | tr -d ' ')"
check_eq "no escape sequence in the lines" 0 "$(tr -dc '\033' <"$T_TMP/lines" | wc -c | tr -d ' ')"
check_eq "the same keys on every line" 1 "$(sed 's/=[^ ]*//g' "$T_TMP/lines" | sort -u | wc -l | tr -d ' ')"
last=$(tail -n 1 "$T_TMP/lines")
val() { echo "$last" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
for st in syncd validated purgatoryd fetchd feedpump served; do check_eq "line: $st=up" up "$(val "$st")"; done
check_eq "line: db_events" "$EVENTS" "$(val db_events)"
check_eq "line: peer_a_cursor" "$EVENTS" "$(val peer_a_cursor)"
check_eq "line: peer_a_lag" 0 "$(val peer_a_lag)"
check "line: rates are numbers from the second sample" sh -c "echo '$(val stored_per_s)' | grep -Eq '^[0-9]+\\.[0-9]$'"
check "line: map use in percent" sh -c "echo '$(val map_use_pct)' | grep -Eq '^[0-9]+\\.[0-9]$'"
check_eq "line: restarts seen as pid changes (no fedsup)" pids "$(val restarts_from)"
fedctl -c "$B" top --once </dev/null >"$T_TMP/once"
check_eq "--once exits 0" 0 $?
check "--once prints the whole view once" sh -c "grep -c '^fedctl top' '$T_TMP/once' | grep -qx 1 && grep -Eq '^stored .* $EVENTS  \\(events table\\)$' '$T_TMP/once'"
fedctl -c "$B" top --interval nonsense >/dev/null 2>"$T_TMP/bad.err"
check_eq "a bad --interval exits 100" 100 $?
check "... saying why" grep -q "interval nonsense" "$T_TMP/bad.err"
fedctl -c "$B" top --count 0 >/dev/null 2>&1
check_eq "--count 0 exits 100" 100 $?

# The metrics forms of the stats frames, from stand-in stages on node C's
# sockets. fetchd's histograms (core/histo.h: {"unit":"us","sum":S,"b":[per-
# bucket counts]}, bucket i up to 2^i us): every answer adds 90 ok and 10
# not_found, 100 fetch_latency observations in (1024, 2048] us and 100
# attempt_latency ones in (0, 1] us (not the one shown). Over one interval:
# success 90%, p50 1536 us, p99 2037.76 us (interpolated). syncd's gauges
# lag_events.<peer> and lag_s.<peer> are the peer's lag.
C=$(node_config c "$(free_port)" "
[peer a]
endpoint = http://127.0.0.1:9")
fedctl -c "$C" status >/dev/null 2>&1   # makes the store
cat >"$T_TMP/stage_stub.py" <<'PY'
import json, os, socket, struct, sys
path, stage = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path); s.listen(8)
k = 0
while True:
    c, _ = s.accept()
    h = c.recv(16, socket.MSG_WAITALL)
    if len(h) == 16:
        n, magic, typ, flags, rid = struct.unpack(">IBBHQ", h)
        if n: c.recv(n, socket.MSG_WAITALL)
        k += 1
        st = {"stage": stage, "pid": os.getpid(), "uptime_s": k}
        if stage == "fetchd":
            b = [0] * 12; b[11] = 100 * k
            st.update({"counters": {"requests": 100 * k, "ok": 90 * k, "not_found": 10 * k},
                       "gauges": {"inflight": 0, "queue": 0},
                       "histograms": {"attempt_latency": {"unit": "us", "sum": k, "b": [100 * k]},
                                      "fetch_latency": {"unit": "us", "sum": 1500 * 100 * k, "b": b}}})
        else:
            st.update({"counters": {"events_pulled": 0}, "gauges": {"peers_syncing": 1, "lag_events.a": 7, "lag_s.a": 3},
                       "peers": {"a": {"phase": "pull", "failures": 0, "pulled": 0}}})
        body = json.dumps(st, separators=(",", ":")).encode()
        c.sendall(struct.pack(">IBBHQ", len(body), 0xFD, 7, 2, rid) + body)
    c.close()
PY
for st in fetchd syncd; do bg python3 "$T_TMP/stage_stub.py" "$T_TMP/c/run/$st.sock" $st; done
check "the stand-in fetchd and syncd listen" wait_for "[ -S $T_TMP/c/run/fetchd.sock ] && [ -S $T_TMP/c/run/syncd.sock ]" 50
fedctl -c "$C" top --count 2 --interval 200ms </dev/null >"$T_TMP/histo" 2>&1
last=$(tail -n 1 "$T_TMP/histo")
check_eq "histogram: latency from the histogram" histogram "$(val fetch_latency_from)"
check_eq "histogram: success over the interval" 90.0 "$(val fetch_success_pct)"
check_eq "histogram: p50 (ms) of fetch_latency" 1.5 "$(val fetch_p50_ms)"
check_eq "histogram: p99 (ms) of fetch_latency" 2.0 "$(val fetch_p99_ms)"
check_eq "the other stages are down" "down down" "$(val validated) $(val purgatoryd)"
check_eq "peer lag from syncd's gauges (events, seconds)" "7 3" "$(val peer_a_lag) $(val peer_a_lag_s)"

# A stage killed while lines are printed: down in the lines that follow.
stop "$PID_b_feedpump"
fedctl -c "$B" top --count 1 </dev/null >"$T_TMP/down"
check "a killed stage is down in the line" grep -q ' feedpump=down feedpump_pid=- ' "$T_TMP/down"

# Under fedsup: restarts are fedsup's starts - 1.
node_stop b validated purgatoryd fetchd syncd served
mkdir -p "$T_TMP/b/log"
bg scripts/fedsup -c "$B" --bin "$FP_BIN" --logdir "$T_TMP/b/log" 2>"$T_TMP/fedsup.log"
SUP=$LAST_PID
topv() { fedctl -c "$B" top --count 1 </dev/null | tr ' ' '\n' | sed -n "s/^$1=//p"; }
check "under fedsup every stage is up" wait_for "fedctl -c '$B' top --count 1 </dev/null | grep -q 'syncd=up .*validated=up .*purgatoryd=up .*fetchd=up .*feedpump=up .*served=up'" 150
check_eq "restarts come from fedsup's state" fedsup "$(topv restarts_from)"
check_eq "purgatoryd: 0 restarts" 0 "$(topv purgatoryd_restarts)"
P=$(topv purgatoryd_pid)
kill -KILL "$P"
check "fedsup restarts purgatoryd: 1 restart shown" wait_for "[ \"\$(topv purgatoryd_restarts)\" = 1 ] && [ \"\$(topv purgatoryd)\" = up ]" 150
stop "$SUP"
finish
