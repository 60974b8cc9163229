#!/bin/sh
# served alone against an LMDB we fill: identity, events paging (100 cap,
# next cursor, stream order), long-poll woken by a new store, Matrix reads
# (event, event_auth, state_ids, backfill, get_missing_events), the
# self-signed key document, bearer auth (401 without/with a wrong key),
# JSON errors for bad paths/methods/bodies, oversized requests refused
# without a crash, /metrics and /healthz.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = open")
sed -i 's/^\[node\]$/[node]\nshared_key = k3y/' "$A"
served_fill -c "$A" -N 250 -o "$T_TMP/ids" >/dev/null
node_start a served
U=http://127.0.0.1:$P
H="Authorization: Bearer k3y"
check "up" wait_for "http_up $U/healthz"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check_eq "healthz needs no key" 200 "$(code "$U/healthz")"
check_eq "no key: 401" 401 "$(code "$U/_fed/v1/identity")"
check_eq "wrong key: 401" 401 "$(code -H 'Authorization: Bearer k3z' "$U/_fed/v1/identity")"
check_eq "401 body is a Matrix error" M_UNAUTHORIZED "$(curl -s "$U/_fed/v1/identity" | jq -r .errcode)"
I=$(curl -s -H "$H" "$U/_fed/v1/identity")
check "identity: node ULID, schema 1, server name, key, clock" sh -c "echo '$I' | jq -e '(.node_id|length)==26 and .schema_version==1 and .server_name==\"a.test:$P\" and (.verify_keys|length)==1 and (.vclock[.node_id])==251' >/dev/null"
check_eq "events: at most 100 per call" 100 "$(curl -s -H "$H" "$U/_fed/v1/events?since=0&limit=1000" | jq '.events|length')"
check_eq "events: next cursor" 150 "$(curl -s -H "$H" "$U/_fed/v1/events?since=50&limit=100" | jq .next)"
check_eq "events after the head: none, next unchanged" "0 251" "$(curl -s -H "$H" "$U/_fed/v1/events?since=251" | jq -r '"\(.events|length) \(.next)"')"
check_eq "bad since: 400 JSON" M_INVALID_PARAM "$(curl -s -H "$H" "$U/_fed/v1/events?since=-1" | jq -r .errcode)"
( sleep 1; served_fill -c "$A" -N 2 >/dev/null ) &
check_eq "long-poll wakes when the stream advances" 3 "$(curl -s -m 10 -H "$H" "$U/_fed/v1/events?since=251&timeout_ms=8000" | jq '.events|length')"
check_eq "long-poll times out empty" 0 "$(curl -s -m 5 -H "$H" "$U/_fed/v1/events?since=254&timeout_ms=300" | jq '.events|length')"
E1=$(sed -n 1p "$T_TMP/ids"); E9=$(sed -n 9p "$T_TMP/ids"); E20=$(sed -n 20p "$T_TMP/ids")
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
ROOM=$(curl -s -H "$H" "$U/_matrix/federation/v1/event/$(enc "$E9")" | jq -r '.pdus[0].room_id')
check_eq "event/{id}" "$E9" "$(curl -s -H "$H" "$U/_matrix/federation/v1/event/$(enc "$E9")" | jq -c '.pdus[0]' | fp_pdu id 10)"
check_eq "event/{id} miss: 404 M_NOT_FOUND" M_NOT_FOUND "$(curl -s -H "$H" "$U/_matrix/federation/v1/event/%24nope" | jq -r .errcode)"
check_eq "event_auth: the create event" m.room.create "$(curl -s -H "$H" "$U/_matrix/federation/v1/event_auth/$(enc "$ROOM")/$(enc "$E9")" | jq -r '.auth_chain[0].type')"
check_eq "state_ids: the create event is the state" "$E1" "$(curl -s -H "$H" "$U/_matrix/federation/v1/state_ids/$(enc "$ROOM")?event_id=$(enc "$E9")" | jq -r '.pdu_ids[0]')"
check_eq "backfill: limit respected, newest included" "5 20" "$(curl -s -H "$H" "$U/_matrix/federation/v1/backfill/$(enc "$ROOM")?v=$(enc "$E20")&limit=5" | jq -r '"\(.pdus|length) \(.pdus|map(.depth)|max)"')"
check_eq "get_missing_events: between earliest and latest" "10" "$(curl -s -H "$H" -X POST -d "{\"earliest_events\":[\"$E9\"],\"latest_events\":[\"$E20\"],\"limit\":50}" "$U/_matrix/federation/v1/get_missing_events/$(enc "$ROOM")" | jq '.events|length')"
check_eq "get_missing_events with a bad body: 400" M_NOT_JSON "$(curl -s -H "$H" -X POST -d 'nope' "$U/_matrix/federation/v1/get_missing_events/$(enc "$ROOM")" | jq -r .errcode)"
check "key document verifies (self-signed)" sh -c "curl -s -H '$H' $U/_matrix/key/v2/server | python3 -c '
import sys, json, signedjson.key, signedjson.sign, base64
d = json.load(sys.stdin); (kid, v), = d[\"verify_keys\"].items()
vk = signedjson.key.decode_verify_key_bytes(kid, base64.b64decode(v[\"key\"] + \"==\"))
signedjson.sign.verify_signed_json(d, d[\"server_name\"], vk)'"
check_eq "unknown path: 404 JSON" M_UNRECOGNIZED "$(curl -s -H "$H" "$U/nope" | jq -r .errcode)"
check_eq "wrong method: 405 JSON" 405 "$(code -H "$H" -X DELETE "$U/_fed/v1/events")"
check_eq "GET on get_missing_events: 405" 405 "$(code -H "$H" "$U/_matrix/federation/v1/get_missing_events/x")"
check_eq "oversized headers refused" 400 "$(code -H "$H" -H "X-Pad: $(head -c 40000 /dev/zero | tr '\0' a)" "$U/healthz")"
check_eq "oversized body refused" 413 "$(head -c 3000000 /dev/zero | code -H "$H" -X POST --data-binary @- "$U/_matrix/federation/v1/get_missing_events/x")"
printf 'GARBAGE\r\n\r\n' | timeout 3 nc -q1 127.0.0.1 "$P" >/dev/null 2>&1
check "still alive after garbage" http_up "$U/healthz"
check "metrics: served counters and LMDB sizes" sh -c "curl -s -H '$H' $U/metrics | grep -q 'fedpipe_lmdb_entries{db=\"events\"} 254' && curl -s -H '$H' $U/metrics | grep -q 'fedpipe_http_unauthorized_total [1-9]'"
check "metrics: stages that are down show 0" sh -c "curl -s -H '$H' $U/metrics | grep -q 'fedpipe_stage_up{stage=\"validated\"} 0'"
finish
