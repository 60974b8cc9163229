#!/bin/sh
# fleet_purgatory_wake.sh: what purgatoryd holds is released as soon as its
# missing parents are stored by another writer, not at its next retry.
# 1. The fleet applier: node b holds a room's tip (8 parents missing, no
#    fetchd, fetch_retry 10 min). Node a (same fleet) stores the 8 and
#    publishes them; b's feedpump applies them and tells b's purgatoryd
#    ({"op":"stored"} on FT_PURG_CTL), which releases the tip at once.
# 2. A writer that tells nobody: node c holds a tip; the parents are written
#    into c's store behind purgatoryd's back (fleet_fill); purgatoryd's next
#    fetch attempt finds them stored and releases the tip instead of going
#    idle until backoff_max (before: it sat held until a reload).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PT=purgatory_tool
stat_of() { $PT check -c "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# --- 2 first: no NATS needed ---
C=$(node_config c "$(free_port)" "[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
debounce_other = 100ms
backoff_min = 300ms
backoff_max = 1h
fetch_retry = 300ms")
SRVC=$(sed -n 's/^server_name = //p' "$C")
$PT gen -k "$T_TMP/c/signing.key" -s "$SRVC" -n 10 --tag wakec --ids "$T_TMP/c.ids" >"$T_TMP/c.jsonl"
: >"$T_TMP/empty.jsonl"; : >"$T_TMP/empty.ids"
bg python3 tests/tools/purgatory_stub_fetchd.py "$T_TMP/c/run/fetchd.sock" "$T_TMP/empty.jsonl" "$T_TMP/empty.ids" "$T_TMP/c.req" "$SRVC"
bg purgatoryd -c "$C" -v 2>"$T_TMP/c-purg.log"
bg validated -c "$C" 2>"$T_TMP/c-val.log"
check "c: up" wait_for "[ -S $T_TMP/c/run/purgatoryd.sock ] && [ -S $T_TMP/c/run/validated.sock ]"
sed -n '1p;10p' "$T_TMP/c.jsonl" | $PT submit -c "$C" --from import - 2>/dev/null
check "c: the tip is held (8 parents missing)" wait_for '[ "$(stat_of "$C" purgatory)" = 1 ] && [ "$(stat_of "$C" events)" = 1 ]' 300
check "c: purgatoryd asked the (empty) fetchd for them" wait_for "[ -s '$T_TMP/c.req' ]" 300
sed -n '2,9p' "$T_TMP/c.jsonl" >"$T_TMP/c-mid.jsonl"
check_eq "c: the 8 parents written behind purgatoryd's back" 8 "$(fleet_fill "$T_TMP/c/state" "$T_TMP/c-mid.jsonl")"
check "c: the next attempt finds them stored and releases the tip" \
	wait_for '[ "$(stat_of "$C" purgatory)" = 0 ] && [ "$(stat_of "$C" events)" = 10 ]' 300
check "c: the log says so" grep -q "whose parents were stored meanwhile" "$T_TMP/c-purg.log"
check "c: consistent, in topological order" sh -c "$PT check -c '$C' | grep -q 'consistent=1 topo=1'"

# --- 1: the fleet applier ---
command -v nats-server >/dev/null || { skip "nats-server not installed"; finish; exit 0; }
NP=$(free_port); NM=$(free_port)
bg nats-server -js -a 127.0.0.1 -p "$NP" -m "$NM" -sd "$T_TMP/nats" 2>>"$T_TMP/nats.log"
NATS_URLS=nats://127.0.0.1:$NP
check "a NATS server with JetStream" wait_for "curl -s -m 2 http://127.0.0.1:$NM/jsz | grep -q config" 300
mk() {
	node_config "$1" "$2" "nats_timeout = 2s
[feedpump]
interval = 300ms
[validated]
rescan_every = 300ms
rescan_age = 1s
[purgatoryd]
debounce = 100ms
debounce_other = 100ms
fetch_retry = 10min
backoff_min = 10min
backoff_max = 1h
[fleet]
nats_url = $NATS_URLS
name = fpwake
member = $1
replicas = 1"
}
PA=$(free_port); PB=$(free_port)
A=$(mk a "$PA"); B=$(mk b "$PB")
sed -i "s/^server_name = .*/server_name = a.test:$PA/" "$T_TMP/b/fedpipe.conf"
cp "$T_TMP/a/signing.key" "$T_TMP/b/signing.key"
$PT gen -k "$T_TMP/a/signing.key" -s "a.test:$PA" -n 10 --tag wakeb --ids "$T_TMP/b.ids" >"$T_TMP/b.jsonl"
node_start b purgatoryd validated feedpump
sed -n '1p;10p' "$T_TMP/b.jsonl" | $PT submit -c "$B" --from import - 2>/dev/null
check "b: the tip is held (8 parents missing, no fetchd)" wait_for '[ "$(stat_of "$B" purgatory)" = 1 ] && [ "$(stat_of "$B" events)" = 1 ]' 300
# a stores the create and the 8 parents and publishes them to the fleet feed
sed -n '1,9p' "$T_TMP/b.jsonl" >"$T_TMP/a-part.jsonl"
check_eq "a stores 9" 9 "$(fleet_fill "$T_TMP/a/state" "$T_TMP/a-part.jsonl")"
node_start a feedpump
check "b applies them and purgatoryd releases the tip at once (fetch_retry is 10 min)" \
	wait_for '[ "$(stat_of "$B" purgatory)" = 0 ] && [ "$(stat_of "$B" events)" = 10 ]' 600
check "b's purgatoryd logs the release by the applier's word" grep -q "stored by stage:feedpump\|stored by client" "$T_TMP/b/purgatoryd.log"
check "b: consistent, in topological order" sh -c "$PT check -c '$B' | grep -q 'consistent=1 topo=1'"
check "b's feedpump counted the wake" sh -c "fedctl -c '$B' stats feedpump | grep -q '\"fleet_purgatory_wakes\":[1-9]'"
# Bad input: a malformed "stored" request gets a clear refusal and changes
# nothing (an ID that is not one, a non-array, a non-string element).
ctl() {   # ctl SOCK JSON -> purgatoryd's reply payload
	python3 - "$1" "$2" <<'PY'
import socket, struct, sys
H = struct.Struct("!IBBHQ")
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
p = sys.argv[2].encode()
s.sendall(H.pack(len(p), 0xFD, 12, 0, 7) + p)
b = b""
while len(b) < 16: b += s.recv(16 - len(b))
n = H.unpack(b)[0]; r = b""
while len(r) < n: r += s.recv(n - len(r))
print(r.decode())
PY
}
check_eq "stored: an ID without \$ is refused" '{"ok":false,"error":"bad_request"}' \
	"$(ctl "$T_TMP/b/run/purgatoryd.sock" '{"op":"stored","event_ids":["nope"]}')"
check_eq "stored: not an array is refused" '{"ok":false,"error":"bad_request"}' \
	"$(ctl "$T_TMP/b/run/purgatoryd.sock" '{"op":"stored","event_ids":"$x"}')"
check_eq "stored: a number in the array is refused" '{"ok":false,"error":"bad_request"}' \
	"$(ctl "$T_TMP/b/run/purgatoryd.sock" '{"op":"stored","event_ids":["$a",5]}')"
check_eq "stored: an unknown ID releases nothing" '{"ok":true,"released":0}' \
	"$(ctl "$T_TMP/b/run/purgatoryd.sock" '{"op":"stored","event_ids":["$unknownunknownunknownunknownunknownunknown1"]}')"
check_eq "b still has its 10 events, nothing held" "10 0" "$(stat_of "$B" events) $(stat_of "$B" purgatory)"
finish
