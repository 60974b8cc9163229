#!/bin/sh
# bench/sync.sh: events/s replicated A -> B over loopback (pull by syncd,
# inbox, validate with every deep check, store by purgatoryd) for
# SYNC_EVENTS (default 100,000) ~1 KiB events, beside baselines measured in
# the same run against the same served: wrk on /_matrix/federation/v1/event/{id}
# (requests/s), wrk on /_fed/v1/events pages of 100 (events/s the endpoint can
# hand out), and syncd --once alone (pull + inbox, no validation).
# SYNC_VALIDATED_WORKERS=N sets B's [validated] workers (default 1: on two
# cores the five processes already fill both, and 2 measured no faster).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
N=${SYNC_EVENTS:-100000}
DUR=${SYNC_WRK_SECONDS:-5}
PA=$(free_port); PB=$(free_port); PP=$(free_port)
A=$(node_config a "$PA" "[served]
matrix_auth = open")
VW=${SYNC_VALIDATED_WORKERS:-1}
B=$(node_config b "$PB" "
[validated]
workers = $VW
[syncd]
interval = 200ms
longpoll = 1s
[peer a]
endpoint = http://127.0.0.1:$PA")
P=$(node_config p "$PP" "
[peer a]
endpoint = http://127.0.0.1:$PA")
echo "# making $N events of ~1 KiB on A"
served_fill -c "$A" -N $((N - 1)) -s 900 -o "$T_TMP/a.ids" >/dev/null || exit 1
TOTAL=$(wc -l <"$T_TMP/a.ids" | tr -d ' ')
node_start a served
wait_for "http_up http://127.0.0.1:$PA/healthz" || exit 1
ms() { date +%s%3N; }
stored() { mdb_stat -s events "$T_TMP/b/state" 2>/dev/null | sed -n 's/^ *Entries: //p'; }

# baseline 1: served /event/{id} (wrk)
ID=$(sed -n "$((TOTAL / 2))p" "$T_TMP/a.ids" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
EV_RPS=$(wrk -t2 -c32 -d"${DUR}s" "http://127.0.0.1:$PA/_matrix/federation/v1/event/$ID" 2>/dev/null | sed -n 's/^Requests\/sec: *//p')
# baseline 2: served /_fed/v1/events pages (wrk), in events/s
PG_RPS=$(wrk -t2 -c8 -d"${DUR}s" "http://127.0.0.1:$PA/_fed/v1/events?since=1000&limit=100" 2>/dev/null | sed -n 's/^Requests\/sec: *//p')
# baseline 3: syncd --once alone: pull + inbox txn, nothing validated
t0=$(ms); syncd -c "$P" --once --peer a 2>/dev/null; t1=$(ms)
PULL_EPS=$(( TOTAL * 1000 / (t1 - t0 + 1) ))

# the measurement: the whole pipeline on B
node_start b validated purgatoryd
t0=$(ms)
node_start b syncd
wait_for "[ \"\$(stored)\" = $TOTAL ]" 6000 || { echo "B stored only $(stored) of $TOTAL"; exit 1; }
t1=$(ms)
SYNC_EPS=$(( TOTAL * 1000 / (t1 - t0) ))
awk -v vw="$VW" -v n="$TOTAL" -v s="$SYNC_EPS" -v p="$PULL_EPS" -v e="$EV_RPS" -v g="$PG_RPS" -v el="$((t1 - t0))" 'BEGIN {
	printf "%-52s %14s %10s\n", "measure", "rate", "ratio";
	printf "%-52s %11.0f/s %10s\n", "served /event/{id} (wrk, 32 conns) req", e, "";
	printf "%-52s %11.0f/s %10s\n", "served /_fed/v1/events pages of 100 (wrk) events", g * 100, "";
	printf "%-52s %11.0f/s %9.2fx\n", "syncd --once alone: pull + inbox, events", p, p / (g * 100);
	printf "%-52s %11.0f/s %9.2fx\n", "replicated A->B: pull+inbox+validate+store, events (validated workers " vw ")", s, s / (g * 100);
	printf "# %d events replicated in %.1f s; ratios are against the served events page rate\n", n, el / 1000;
}'
