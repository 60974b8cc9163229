# syncd_health.sh: inbound traffic from a server clears fetchd's backoff for
# it: a successful pull from a peer deletes the peer's server_health row.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA")
B=$(node_config b "$PB" "
[syncd]
interval = 200ms
[peer a]
endpoint = http://127.0.0.1:$PA")
served_fill -c "$A" -N 20 -s 200 -o "$T_TMP/a.ids" >/dev/null
node_start a served
wait_for "http_up http://127.0.0.1:$PA/healthz"
# A backed-off record for a.test, as fetchd writes it after failures.
printf 'a.test:%s\n{"streak":4,"until_ms":%s000,"last_error":"HTTP 503","last_ok_ms":0,"latency_ms":0}\n' \
	"$PA" "$(( $(date +%s) + 3600 ))" | mdb_load -T -s server_health "$T_TMP/b/state"
fedctl -c "$B" servers >"$T_TMP/before" 2>&1
check "the server shows as backed off before" grep -q "a.test:$PA" "$T_TMP/before"
node_start b syncd
check "syncd pulls from the peer" wait_for "fedctl -c $B peers --json | jq -e '.[0].cursor > 0'" 100
fedctl -c "$B" servers >"$T_TMP/after" 2>&1
check "its backoff is cleared by the inbound traffic" sh -c "! grep -q 'a.test:$PA' $T_TMP/after"
finish
