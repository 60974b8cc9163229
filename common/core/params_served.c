/* params_served.c: parameters of served ([served] section): the federation
 * HTTP endpoint, its request limits, long-poll, and cache-warm recovery. */
#include <stddef.h>
#include "core/config.h"

const struct param params_served[] = {
	P_NAMES("served", "upstreams", "", "server names asked for events this node lacks (cache-warm recovery)"),
	P_SIZE("served", "max_header_size", "16K", "1K", "1M", "largest request header block accepted"),
	P_SIZE("served", "max_body_size", "1M", "1K", "1G", "largest request body accepted"),
	P_DUR("served", "timeout", "30s", "100ms", "1h", "HTTP read/write timeout per connection"),
	P_DUR("served", "header_timeout", "10s", "100ms", "1h", "deadline for a request's whole header block (not per byte); also ends an idle keep-alive connection"),
	P_DUR("served", "body_timeout", "30s", "100ms", "1h", "deadline for a request's whole body (not per byte)"),
	P_INT("served", "max_connections", "1024", "1", "10000000", "open client connections; beyond it new ones are closed at once"),
	P_INT("served", "max_connections_per_ip", "32", "1", "10000000", "open client connections from one address"),
	P_INT("served", "events_limit", "100", "1", "100", "most events one /_fed/v1/events answer carries"),
	P_SIZE("served", "events_max_bytes", "4M", "1K", "1G", "byte cap of one /_fed/v1/events answer"),
	P_DUR("served", "longpoll_max", "30s", "0", "1h", "longest timeout_ms a long-poll may ask for"),
	P_DUR("served", "longpoll_tick", "50ms", "5ms", "1m", "how often the stream head is polled while long-pollers wait"),
	P_INT("served", "longpoll_waiters", "1024", "0", "10000000", "most concurrent long-poll requests"),
	P_INT("served", "recover_queue", "1024", "1", "10000000", "recovery jobs queued before new misses are dropped"),
	P_INT("served", "recover_inflight", "16", "1", "100000", "recovery requests outstanding at fetchd at once"),
	P_INT("served", "recover_per_client", "16", "1", "10000000", "recovery jobs one client address may have queued or in flight"),
	P_DUR("served", "recover_timeout", "20s", "10ms", "1h", "give up on one recovery request after this"),
	P_DUR("served", "claim_ttl", "60s", "1s", "24h", "cross-request dedup claim lifetime for a recovery"),
	P_DUR("served", "key_valid_for", "168h", "1m", "3650d", "validity advertised in the self-signed key document"),
	P_DUR("served", "stats_timeout", "250ms", "1ms", "1m", "how long /metrics waits for each stage's stats"),
	P_ENUM("served", "matrix_auth", "xmatrix", "xmatrix|open", "/_matrix/federation/* requests: xmatrix (a valid X-Matrix signature required; 401 otherwise) | open"),
	P_DUR("served", "key_wait", "5s", "100ms", "1m", "how long a request waits while fetchd gets an unknown origin's key (401 after)"),
	P_NAME("served", "well_known", "", "host[:port] answered at GET /.well-known/matrix/server as {\"m.server\": ...} "
	       "(delegation: who serves this node's federation); empty: 404"),
	P_END
};
