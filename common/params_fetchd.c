/* params_fetchd.c: parameters of fetchd ([fetchd] section). Fan-out and
 * attempt settings here are ceilings: they can only tighten the per-op
 * profiles and what callers ask for. */
#include <stddef.h>
#include "config.h"

const struct param params_fetchd[] = {
	{ "fetchd", "requests_max",       "256", "in-flight fetches across all keys (REQUESTS_MAX)" },
	{ "fetchd", "queue_max",          "1024", "fetches waiting for a slot; beyond it callers get busy" },
	{ "fetchd", "servers_max",        "4096", "servers tracked in memory; idle ones without backoff state are evicted first" },
	{ "fetchd", "request_timeout",    "10s", "one upstream HTTP request, connect to last byte" },
	{ "fetchd", "connect_timeout",    "3s", "TCP/TLS connect of one upstream request" },
	{ "fetchd", "fetch_timeout",      "60s", "a whole fetch, every round included" },
	{ "fetchd", "response_max",       "3M", "largest upstream response body accepted" },
	{ "fetchd", "round_width_max",    "8", "ceiling on servers raced in one fan-out round" },
	{ "fetchd", "attempts_max",       "16", "ceiling on upstream attempts per fetch" },
	{ "fetchd", "server_concurrency", "5", "concurrent requests per server (throttle)" },
	{ "fetchd", "server_rate",        "60", "requests per minute per server (0: unlimited)" },
	{ "fetchd", "backoff_window",     "10s", "backoff delay = window x streak^2" },
	{ "fetchd", "backoff_max",        "24h", "cap on a server's backoff delay (HTTP 410: always this)" },
	{ "fetchd", "backoff_grace",      "1", "consecutive failures only deprioritized, not backed off" },
	{ "fetchd", "checks",             "event_id", "default response checks: event_id hashes signatures" },
	{ NULL, NULL, NULL, NULL }
};
