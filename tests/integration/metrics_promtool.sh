#!/bin/sh
# metrics_promtool.sh: /metrics the Prometheus way. A running node B (every
# stage) pulls A's events; its /metrics passes `promtool check metrics`
# with no output at all, every family has HELP and TYPE, the named families
# carry sane values (events stored = the events in LMDB, a histogram's count
# = the observations it counts, lag 0 once caught up), no stats name falls
# back to the generic families at run time, and every counter/gauge name in
# the sources is in served's metric table (a new one must be mapped).
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
command -v promtool >/dev/null || { echo "1..0 # SKIP promtool not installed (Debian package prometheus)"; exit 0; }
PA=$(free_port); PB=$(free_port)
A=$(node_config a "$PA" "$FED_COMMON$FED_OPEN")
B=$(node_config b "$PB" "$FED_COMMON$FED_OPEN
[syncd]
interval = 1s
longpoll = 2s
batch = 1
[peer a]
endpoint = http://127.0.0.1:$PA
[server a.test:$PA]
endpoint = http://127.0.0.1:$PA")
IDS=$T_TMP/a.ids
served_fill -c "$A" -N 80 -s 200 -o "$IDS" >/dev/null
N=$(wc -l <"$IDS" | tr -d ' ')
node_start a served
check "A's served is up" wait_for "http_up http://127.0.0.1:$PA/healthz"
node_start b validated purgatoryd fetchd feedpump served syncd
U=http://127.0.0.1:$PB
check "B has stored A's $N events" wait_for \
	"[ \"\$(fed_check $U $IDS | cut -d' ' -f1,2)\" = 'count=$N missing=0' ]" 600
# Two fetches through B's fetchd: one A answers, one nobody can.
EV=$(head -n 1 "$IDS")
check "fetchd fetches an event from A" sh -c "fedctl -c '$B' fetch event '$EV' --servers a.test:$PA >/dev/null"
fedctl -c "$B" fetch event '$nosuch:a.test' --servers a.test:$PA >/dev/null 2>&1
m() { awk -v k="$1" '$1 == k { print $2 }' "$T_TMP/metrics"; }
scrape() { curl -s "$U/metrics" >"$T_TMP/metrics"; }
check "the outbox drains (backlog 0) and the lag on a is 0" wait_for \
	"scrape; [ \"\$(m fedpipe_feed_outbox_backlog)\" = 0 ] && [ \"\$(m 'fedpipe_sync_peer_lag_events{peer=\"a\"}')\" = 0 ] \
	 && [ \"\$(m 'fedpipe_sync_peer_lag_seconds{peer=\"a\"}')\" = 0 ]" 300
scrape
for s in served syncd validated purgatoryd fetchd feedpump; do
	check "$s is up" grep -q "^fedpipe_stage_up{stage=\"$s\"} 1$" "$T_TMP/metrics"
done
promtool check metrics <"$T_TMP/metrics" >"$T_TMP/promtool.out" 2>&1
check_eq "promtool check metrics: exit 0" 0 $?
check_eq "promtool check metrics: no output" "" "$(cat "$T_TMP/promtool.out")"
[ -s "$T_TMP/promtool.out" ] && sed 's/^/# /' "$T_TMP/promtool.out"

# Every family has one HELP and one TYPE line, and every sample a family.
check_eq "one HELP per TYPE" "$(grep -c '^# TYPE ' "$T_TMP/metrics")" "$(grep -c '^# HELP ' "$T_TMP/metrics")"
check_eq "no old-style names" 0 "$(grep -c '^fedpipe_counter_total\|^fedpipe_gauge{' "$T_TMP/metrics")"
check_eq "no stats name unmapped at run time" "" \
	"$(grep '^fedpipe_stage_other' "$T_TMP/metrics")"
for f in "fedpipe_events_stored_total counter" "fedpipe_fetch_requests_total counter" \
         "fedpipe_sync_events_pulled_total counter" "fedpipe_validate_duration_seconds histogram" \
         "fedpipe_store_commit_duration_seconds histogram" "fedpipe_store_commit_events histogram" \
         "fedpipe_feed_publish_duration_seconds histogram" "fedpipe_fetch_attempt_duration_seconds histogram" \
         "fedpipe_fetch_duration_seconds histogram" "fedpipe_sync_peer_lag_events gauge" \
         "fedpipe_sync_peer_lag_seconds gauge" "fedpipe_feed_outbox_backlog gauge" \
         "fedpipe_purgatory_oldest_held_age_seconds gauge" "fedpipe_lmdb_used_bytes gauge"; do
	check "family ${f% *} (${f#* })" grep -q "^# TYPE $f$" "$T_TMP/metrics"
done

# Values.
check_eq "events stored total = events in LMDB = $N" "$N $N" \
	"$(m fedpipe_events_stored_total) $(m 'fedpipe_lmdb_entries{db="events"}')"
check_eq "events pulled from a = $N" "$N" "$(m 'fedpipe_sync_events_pulled_total{peer="a"}')"
check_eq "validation histogram: count = events validated" "$(m fedpipe_validate_events_total)" \
	"$(m fedpipe_validate_duration_seconds_count)"
check_eq "validation histogram: +Inf bucket = count" "$(m fedpipe_validate_duration_seconds_count)" \
	"$(m 'fedpipe_validate_duration_seconds_bucket{le="+Inf"}')"
check "validation histogram: buckets cumulative" awk '
	/^fedpipe_validate_duration_seconds_bucket/ { if ($2 < last) bad = 1; last = $2 } END { exit bad }' "$T_TMP/metrics"
check_eq "commit batch sizes add up to the verdicts decided" "$(m fedpipe_purgatory_verdicts_total)" \
	"$(m fedpipe_store_commit_events_sum)"
check_eq "commit latency: one observation per commit" "$(m fedpipe_store_commits_total)" \
	"$(m fedpipe_store_commit_duration_seconds_count)"
check "publish latency observed" test "$(m fedpipe_feed_publish_duration_seconds_count)" -ge 1
check_eq "fetch latency: one observation per answered caller" 2 "$(m fedpipe_fetch_duration_seconds_count)"
check_eq "attempt latency: one observation per attempt" "$(m fedpipe_fetch_attempts_total)" \
	"$(m fedpipe_fetch_attempt_duration_seconds_count)"
check_eq "fetch results: ok 1, not_found 1" "1 1" \
	"$(m 'fedpipe_fetch_requests_total{result="ok"}') $(m 'fedpipe_fetch_requests_total{result="not_found"}')"
check_eq "nothing held: oldest held age 0" 0 "$(m fedpipe_purgatory_oldest_held_age_seconds)"
check_eq "feed published every event" "$N" "$(m fedpipe_feed_published_total)"

# Lag while catching up: A makes more events; B, pulling one per request
# (batch = 1), sees the peer's head ahead of its cursor on every answer
# until the last. Scrape until B has pulled them all (bounded).
served_fill -c "$A" -N 60 -s 200 -o "$IDS" >/dev/null
N2=$(wc -l <"$IDS" | tr -d ' ')
max=0 i=0 pulled=0
while [ $i -lt 3000 ] && [ "$pulled" != "$N2" ]; do
	scrape
	l=$(m 'fedpipe_sync_peer_lag_events{peer="a"}')
	[ "${l:-0}" -gt "$max" ] && max=$l
	pulled=$(m 'fedpipe_sync_events_pulled_total{peer="a"}')
	i=$((i + 1))
done
check_eq "B pulled A's new events" "$N2" "$pulled"
check "lag in events was above 0 while B caught up (max $max)" test "$max" -gt 0
check "and never above what A made meanwhile ($((N2 - N)))" test "$max" -le $((N2 - N))
check "lag back to 0 events, 0 s" wait_for \
	"scrape; [ \"\$(m 'fedpipe_sync_peer_lag_events{peer=\"a\"}') \$(m 'fedpipe_sync_peer_lag_seconds{peer=\"a\"}')\" = '0 0' ]" 300
promtool check metrics <"$T_TMP/metrics" >"$T_TMP/promtool.out" 2>&1
check_eq "promtool still has nothing to say" "0 " "$? $(cat "$T_TMP/promtool.out")"

# The table is complete: every counter/gauge name the sources register.
names=$(grep -rhoE '(daemon_counter|daemon_gauge)\([a-z>-]*d, "[a-z_.]+"\)|C\([a-z_]+, "[a-z_]+"\)' cmd common |
	sed 's/.*"\(.*\)".*/\1/' | sort -u)
miss=""
for n in $names; do
	grep -q "MK_[CG], \"$n\"" cmd/served/served_metrics.c || miss="$miss $n"
done
check_eq "every source counter and gauge is in served's metric table" "" "$miss"
finish
