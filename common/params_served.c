/* params_served.c: parameters of served ([served] section): the federation
 * HTTP endpoint, its request limits, long-poll, and cache-warm recovery. */
#include <stddef.h>
#include "config.h"

const struct param params_served[] = {
	{ "served", "upstreams",        "", "server names asked for events this node lacks (cache-warm recovery)" },
	{ "served", "max_header_size",  "16K", "largest request header block accepted" },
	{ "served", "max_body_size",    "1M", "largest request body accepted" },
	{ "served", "timeout",          "30s", "HTTP read/write timeout per connection" },
	{ "served", "header_timeout",   "10s", "deadline for a request's whole header block (not per byte)" },
	{ "served", "body_timeout",     "30s", "deadline for a request's whole body (not per byte)" },
	{ "served", "max_connections",  "1024", "open client connections; beyond it new ones are closed at once" },
	{ "served", "max_connections_per_ip", "32", "open client connections from one address" },
	{ "served", "events_limit",     "100", "most events one /_fed/v1/events answer carries" },
	{ "served", "events_max_bytes", "4M", "byte cap of one /_fed/v1/events answer" },
	{ "served", "longpoll_max",     "30s", "longest timeout_ms a long-poll may ask for" },
	{ "served", "longpoll_tick",    "50ms", "how often the stream head is polled while long-pollers wait" },
	{ "served", "longpoll_waiters", "1024", "most concurrent long-poll requests" },
	{ "served", "recover_queue",    "1024", "recovery jobs queued before new misses are dropped" },
	{ "served", "recover_inflight", "16", "recovery requests outstanding at fetchd at once" },
	{ "served", "recover_per_client", "16", "recovery jobs one client address may have queued" },
	{ "served", "recover_timeout",  "20s", "give up on one recovery request after this" },
	{ "served", "claim_ttl",        "60s", "cross-request dedup claim lifetime for a recovery" },
	{ "served", "key_valid_for",    "168h", "validity advertised in the self-signed key document" },
	{ "served", "stats_timeout",    "250ms", "how long /metrics waits for each stage's stats" },
	{ NULL, NULL, NULL, NULL }
};
