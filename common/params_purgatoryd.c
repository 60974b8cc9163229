/* params_purgatoryd.c: parameters of purgatoryd ([purgatoryd] section):
 * batching of store writes, per-room fetch pacing (debounce, backoff,
 * in-progress timeout), and how long an event may stay held. */
#include <stddef.h>
#include "config.h"

const struct param params_purgatoryd[] = {
	{ "purgatoryd", "debounce",       "500ms", "wait after an event is held before its room is fetched (collects bursts)" },
	{ "purgatoryd", "backoff_min",    "20s",   "first wait after a room fetch that brought nothing" },
	{ "purgatoryd", "backoff_max",    "120s",  "cap of the per-room backoff (doubles from backoff_min)" },
	{ "purgatoryd", "max_hold",       "30m",   "a held event expires (to the expired table) after this long" },
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
