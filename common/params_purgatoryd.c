/* params_purgatoryd.c: parameters of purgatoryd ([purgatoryd] section):
 * batching of store writes, per-room fetch pacing (debounce for sync
 * arrivals, debounce_other for the rest, backoff, in-progress timeout), and
 * how long an event may stay held.
 *
 * debounce vs debounce_other (issue 3, seed 003: "500ms for sync-triggered,
 * 3min default"). An arrival is by sync when its inbox from is a configured
 * peer's server name (the one syncd pinned in federation_state at the
 * identity handshake) or a [peer] section's own name. Everything else waits
 * debounce_other, default 2 s rather than the seed's 3 min: there a fetch is
 * a git clone, here it is one HTTP request that fetchd coalesces and
 * rate-limits per server. 2 s is what the other arrivals need: after a fetch
 * that brought events, validated must return their verdicts (up to
 * fetch_limit PDUs, signature checks on a busy node) before the next attempt
 * can see the new frontier; an import or requeue delivers the rest of a
 * backlog within that time, so we do not ask remote servers for events that
 * are about to arrive locally. A fetched gap of depth N then fills in about
 * N / fetch_limit * 2 s instead of 3 min per round. */
#include <stddef.h>
#include "config.h"

const struct param params_purgatoryd[] = {
	{ "purgatoryd", "debounce",       "500ms", "wait before fetching for a room whose first held event arrived by sync (from a [peer])" },
	{ "purgatoryd", "debounce_other", "2s",    "the same for any other arrival (fetched, imported, requeued, recovered, sent), and after a fetch that brought events" },
	{ "purgatoryd", "backoff_min",    "20s",   "first wait after a room fetch that brought nothing" },
	{ "purgatoryd", "backoff_max",    "120s",  "cap of the per-room backoff (doubles from backoff_min)" },
	{ "purgatoryd", "max_hold",       "30m",   "a held event expires (to the expired table) after this long" },
	{ "purgatoryd", "rejects_keep",   "168h",  "rejected events are kept (rejects table) this long, then pruned" },
	{ "purgatoryd", "tick",           "1s",    "period of the fetch/expiry scheduler" },
	{ "purgatoryd", "batch_max",      "5000",  "most verdicts committed in one transaction" },
	{ "purgatoryd", "fetch_timeout",  "60s",   "a fetch request without an answer after this long counts as failed" },
	{ "purgatoryd", "fetch_retry",    "2s",    "retry wait while fetchd is not reachable (no backoff)" },
	{ "purgatoryd", "fetch_limit",    "100",   "limit asked for in a missing_events request" },
	{ "purgatoryd", "fetch_latest_max", "20",  "most held events named as latest_events in one request" },
	{ "purgatoryd", "fetch_events_max", "8",   "most single-event requests per room attempt" },
	{ "purgatoryd", "fetch_servers_max", "10", "most server hints sent with a request" },
	{ NULL, NULL, NULL, NULL }
};
