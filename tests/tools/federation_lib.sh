# tests/tools/federation_lib.sh: helpers for served/syncd/federation tests
# (sourced after tests/lib/lib.sh). A node is a directory $T_TMP/NAME made by
# node_config; its stages are started with node_start NAME STAGE... and their
# logs go to $T_TMP/NAME/<stage>.log.
FED_COMMON="
[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
debounce_other = 100ms
backoff_min = 300ms
backoff_max = 1s
fetch_retry = 300ms
tick = 200ms
[fetchd]
backoff_window = 200ms
server_rate = 0
"
# FED_OPEN: for tests that read the Matrix endpoints with plain curl (X-Matrix
# between real processes is tested in served_xmatrix and fetchd_xmatrix).
FED_OPEN="
[served]
matrix_auth = open
"
# node_start NAME STAGE...: start stages of a node, remember PIDs as PID_<NAME>_<STAGE>.
node_start() {
	_node=$1; shift
	for _s in "$@"; do
		bg "$_s" -c "$T_TMP/$_node/fedpipe.conf" -v 2>>"$T_TMP/$_node/$_s.log"
		eval "PID_${_node}_${_s}=$LAST_PID"
	done
	for _s in "$@"; do
		[ "$_s" = served ] && continue
		wait_for "[ -S $T_TMP/$_node/run/$_s.sock ]" 100 || diag "$_node $_s did not come up"
	done
}
node_stop() {
	_node=$1; shift
	for _s in "$@"; do eval "stop \$PID_${_node}_${_s}"; done
}
# http_ok URL: served answers (any status)
http_up() { curl -s -o /dev/null -m 2 "$1"; }
# fed_ids URL: every event ID in a node's stream order (pages /_fed/v1/events).
fed_ids() {
	python3 - "$1" <<'PY'
import json, sys, urllib.request
base, since = sys.argv[1], 0
while True:
    with urllib.request.urlopen(f"{base}/_fed/v1/events?since={since}&limit=100", timeout=10) as r:
        a = json.load(r)
    for e in a["events"]:
        print(json.dumps({"room": e["room_id"], "prev": e["prev_events"], "type": e["type"], "depth": e["depth"]}, sort_keys=True))
    if not a["events"]: break
    since = a["next"]
PY
}
# fed_check URL IDS_FILE: every ID in IDS_FILE is in the node's stream exactly
# once, parents before children. Prints "count=N missing=M dup=D order=ok|bad".
fed_check() {
	python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request, urllib.parse
base, want = sys.argv[1], [l.strip() for l in open(sys.argv[2]) if l.strip()]
since, order = 0, []
evs = {}
while True:
    with urllib.request.urlopen(f"{base}/_fed/v1/events?since={since}&limit=100", timeout=10) as r:
        a = json.load(r)
    for e in a["events"]:
        order.append(e)
    if not a["events"]: break
    since = a["next"]
# Event IDs are not carried in v10 PDUs: ask the node for each wanted ID and
# map the answer back to its stream position by content.
pos = {}
for i, e in enumerate(order):
    pos[json.dumps(e, sort_keys=True)] = i
missing, idx = 0, {}
for w in want:
    try:
        with urllib.request.urlopen(f"{base}/_matrix/federation/v1/event/{urllib.parse.quote(w)}", timeout=10) as r:
            p = json.load(r)["pdus"][0]
        idx[w] = pos.get(json.dumps(p, sort_keys=True), -1)
        if idx[w] < 0: missing += 1
    except Exception:
        missing += 1
seen = [json.dumps(e, sort_keys=True) for e in order]
dup = len(seen) - len(set(seen))
bad = 0
for w in want:
    if w not in idx or idx[w] < 0: continue
    for pr in order[idx[w]]["prev_events"]:
        if pr in idx and idx[pr] >= idx[w]: bad += 1
print(f"count={len(order)} missing={missing} dup={dup} order={'ok' if bad == 0 else 'bad'}")
PY
}
