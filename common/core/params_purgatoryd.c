/* params_purgatoryd.c: parameters of purgatoryd ([purgatoryd] section):
 * batching of store writes, per-room fetch pacing (debounce for sync
 * arrivals, debounce_other for the rest, backoff, in-progress timeout), and
 * how long an event may stay held.
 *
 * debounce vs debounce_other: a short wait (500 ms) for what sync brought,
 * a longer one for the rest. An arrival is by sync when its inbox from is a configured
 * peer's server name (the one syncd pinned in federation_state at the
 * identity handshake) or a [peer] section's own name. Everything else waits
 * debounce_other, default 2 s rather than minutes: a fetch here is one HTTP
 * request that fetchd coalesces and rate-limits per server, not an
 * expensive clone. 2 s is what the other arrivals need: after a fetch
 * that brought events, validated must return their verdicts (up to
 * fetch_limit PDUs, signature checks on a busy node) before the next attempt
 * can see the new frontier; an import or requeue delivers the rest of a
 * backlog within that time, so we do not ask remote servers for events that
 * are about to arrive locally. A fetched gap of depth N then fills in about
 * N / fetch_limit * 2 s rather than minutes per round.
 *
 * commit_delay: verdicts are gathered for up to this long (from the oldest
 * one waiting) or until batch_max wait, then committed in one transaction.
 * One commit (an fdatasync, each touched B-tree page written once) then
 * carries several loop turns' verdicts instead of one socket read's worth
 * (~110 of ~1.3 KB). Each costs up to commit_delay of latency. It stays
 * far below validated's rescan_age (default 3s), or validated would send
 * verdicts still waiting here again; hence at most 1s. 0 = commit at the
 * end of every loop turn. */
#include <stddef.h>
#include "core/config.h"

const struct param params_purgatoryd[] = {
	P_DUR("purgatoryd", "debounce", "500ms", "0", "1h", "wait before fetching for a room whose first held event arrived by sync (from a [peer])"),
	P_DUR("purgatoryd", "debounce_other", "2s", "0", "1h", "the same for any other arrival (fetched, imported, requeued, recovered, sent), and after a fetch that brought events"),
	P_DUR("purgatoryd", "backoff_min", "20s", "1ms", "24h", "first wait after a room fetch that brought nothing"),
	P_DUR("purgatoryd", "backoff_max", "120s", "1ms", "24h", "cap of the per-room backoff (doubles from backoff_min)"),
	P_DUR("purgatoryd", "max_hold", "30m", "1s", "365d", "a held event expires (to the expired table) after this long"),
	P_DUR("purgatoryd", "rejects_keep", "168h", "1s", "3650d", "rejected events are kept (rejects table) this long, then pruned"),
	P_DUR("purgatoryd", "tick", "1s", "1ms", "1m", "period of the fetch/expiry scheduler"),
	P_INT("purgatoryd", "batch_max", "5000", "1", "1000000", "most verdicts committed in one transaction"),
	P_DUR("purgatoryd", "commit_delay", "5ms", "0", "1s", "verdicts are gathered for up to this long (from the oldest one waiting) or until batch_max wait, then committed in one transaction; 0 = commit at the end of every loop turn"),
	P_DUR("purgatoryd", "fetch_timeout", "60s", "10ms", "1h", "a fetch request without an answer after this long counts as failed"),
	P_DUR("purgatoryd", "fetch_retry", "2s", "1ms", "1h", "retry wait while fetchd is not reachable (no backoff)"),
	P_INT("purgatoryd", "fetch_limit", "100", "1", "1000", "limit asked for in a missing_events request"),
	P_INT("purgatoryd", "fetch_latest_max", "20", "1", "64", "most held events named as latest_events in one request"),
	P_INT("purgatoryd", "fetch_events_max", "8", "1", "100", "most single-event requests per room attempt"),
	P_INT("purgatoryd", "fetch_servers_max", "10", "1", "32", "most server hints sent with a request"),
	P_END
};
