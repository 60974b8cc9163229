/* params_fetchd.c: parameters of fetchd ([fetchd] section). Fan-out and
 * attempt settings here are ceilings: they can only tighten the per-op
 * profiles and what callers ask for. */
#include <stddef.h>
#include "core/config.h"
#include "core/iprange.h"

const struct param params_fetchd[] = {
	P_INT("fetchd", "requests_max", "256", "1", "100000", "in-flight fetches across all keys (REQUESTS_MAX)"),
	P_INT("fetchd", "queue_max", "1024", "1", "10000000", "fetches waiting for a slot; beyond it callers get busy"),
	P_INT("fetchd", "servers_max", "4096", "16", "10000000", "servers tracked in memory; idle ones without backoff state are evicted first"),
	P_DUR("fetchd", "request_timeout", "10s", "10ms", "1h", "one upstream HTTP request, connect to last byte"),
	P_DUR("fetchd", "connect_timeout", "3s", "10ms", "10m", "TCP/TLS connect of one upstream request"),
	P_DUR("fetchd", "fetch_timeout", "60s", "10ms", "24h", "a whole fetch, every round included"),
	P_SIZE("fetchd", "response_max", "3M", "1K", "1G", "largest upstream response body accepted"),
	P_INT("fetchd", "round_width_max", "8", "1", "64", "ceiling on servers raced in one fan-out round"),
	P_INT("fetchd", "attempts_max", "16", "1", "1000", "ceiling on upstream attempts per fetch"),
	P_INT("fetchd", "server_concurrency", "5", "1", "10000", "concurrent requests per server (throttle)"),
	P_INT("fetchd", "server_rate", "60", "0", "10000000", "requests per minute per server (0: unlimited)"),
	P_DUR("fetchd", "backoff_window", "10s", "0", "24h", "backoff delay = window x streak^2"),
	P_DUR("fetchd", "backoff_max", "24h", "0", "365d", "cap on a server's backoff delay (HTTP 410: always this)"),
	P_INT("fetchd", "backoff_grace", "1", "0", "1000", "consecutive failures only deprioritized, not backed off"),
	P_LIST("fetchd", "checks", "event_id", "event_id|hashes|signatures", "default response checks: event_id hashes signatures"),
	P_CIDRS("fetchd", "ip_range_deny", IPRANGE_DEFAULT_DENY, "addresses never connected to for a server without a [server NAME] section "
	        "(default: Synapse's federation blocklist plus 0/8, 240/4, ::); an IPv4 range covers its ::ffff:, ::a.b.c.d and 6to4 forms; "
	        "setting it replaces the default; continue a long list on indented lines"),
	P_CIDRS("fetchd", "ip_range_allow", "", "exceptions to ip_range_deny (e.g. 127.0.0.0/8 for a test federation on loopback)"),
	P_END
};
