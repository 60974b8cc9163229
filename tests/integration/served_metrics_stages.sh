# served_metrics_stages.sh: served's /metrics walks the stage table: one
# fedpipe_stage_up line for each stage `fedctl stages` lists, served's own
# first, the others in flow order; a running stage shows 1, the rest 0.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
P=$(free_port)
A=$(node_config a "$P")
node_start a validated served
U=http://127.0.0.1:$P
check "up" wait_for "http_up $U/healthz"
check "validated answers its stats" wait_for "curl -s $U/metrics | grep -q 'fedpipe_stage_up{stage=\"validated\"} 1'"
curl -s "$U/metrics" >"$T_TMP/metrics"
check_eq "one stage_up line per stage of the table, served first, then flow order" \
	"served syncd validated purgatoryd fetchd feedpump fleetd" \
	"$(sed -n 's/^fedpipe_stage_up{stage="\([a-z]*\)"} [01]$/\1/p' "$T_TMP/metrics" | tr '\n' ' ' | sed 's/ $//')"
check_eq "the same stages as fedctl stages" "$(fedctl stages | sort | tr '\n' ' ')" \
	"$(sed -n 's/^fedpipe_stage_up{stage="\([a-z]*\)"}.*/\1/p' "$T_TMP/metrics" | sort | tr '\n' ' ')"
check "stages not running show 0" grep -q 'fedpipe_stage_up{stage="purgatoryd"} 0' "$T_TMP/metrics"
check "served's own counters are in" grep -q 'fedpipe_http_requests_total ' "$T_TMP/metrics"
finish
