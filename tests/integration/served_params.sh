#!/bin/sh
# Issue 13 item 10 (served): numeric query parameters accept ASCII digits
# only. strtoll-style parsing took "-1", " 5", "+5", "0x10", "1e3"; each is
# now a 400 M_INVALID_PARAM (since, limit, timeout_ms on /_fed/v1/events;
# limit on backfill), and so is a number too large for 64 bits; plain
# digits still work. A bad percent escape in a path ID is a 400 too.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P" "[served]
matrix_auth = open")
served_fill -c "$A" -N 20 -o "$T_TMP/ids" >/dev/null
node_start a served
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
err() { curl -s "$1" | jq -r '.errcode // "none"'; }
E9=$(sed -n 9p "$T_TMP/ids")
ROOM=$(curl -s "$U/_matrix/federation/v1/event/$(enc "$E9")" | jq -r '.pdus[0].room_id')
BF="$U/_matrix/federation/v1/backfill/$(enc "$ROOM")?v=$(enc "$E9")"
for v in -1 %205 %2B5 0x10 1e3 5%20 '' 99999999999999999999999 ' 5' '5.0' '%E2%91%A4'; do
	case "$v" in ' 5') v=%20%205 ;; esac
	check_eq "events since='$v': 400" M_INVALID_PARAM "$(err "$U/_fed/v1/events?since=$v")"
	check_eq "events limit='$v': 400" M_INVALID_PARAM "$(err "$U/_fed/v1/events?limit=$v")"
	check_eq "events timeout_ms='$v': 400" M_INVALID_PARAM "$(err "$U/_fed/v1/events?timeout_ms=$v")"
	check_eq "backfill limit='$v': 400" M_INVALID_PARAM "$(err "$BF&limit=$v")"
done
check_eq "digits work: since=5&limit=3" "3 8" "$(curl -s "$U/_fed/v1/events?since=5&limit=3" | jq -r '"\(.events|length) \(.next)"')"
check_eq "digits work: backfill limit=4" 4 "$(curl -s "$BF&limit=4" | jq '.pdus|length')"
check_eq "limit=0 refused" M_INVALID_PARAM "$(err "$U/_fed/v1/events?limit=0")"
check_eq "bad percent escape in a path ID: 400" M_INVALID_PARAM "$(err "$U/_matrix/federation/v1/event/%24abc%zz")"
check_eq "escape decoding to NUL: 400" M_INVALID_PARAM "$(err "$U/_matrix/federation/v1/event/%24abc%00")"
finish
