/* params_feedpump.c: parameters of feedpump ([feedpump]) and the feed
 * backends' extra keys ([feed]; sink, dir and nats_url are in params_node.c). */
#include <stddef.h>
#include "core/config.h"

const struct param params_feedpump[] = {
	P_INT("feedpump", "batch", "64", "1", "1000000", "outbox rows drained per sink call and write-back txn"),
	P_DUR("feedpump", "interval", "15s", "10ms", "24h", "safety-net drain timer (wakeups from purgatoryd are the fast path)"),
	P_INT("feedpump", "max_attempts", "10", "1", "1000000000", "attempts before a row the sink refuses moves to feed_dead"),
	P_DUR("feedpump", "backoff_min", "200ms", "1ms", "24h", "first retry delay after a failed publish (doubles per attempt)"),
	P_DUR("feedpump", "backoff_max", "30s", "1ms", "24h", "longest retry delay"),
	P_DUR("feedpump", "lease_ttl", "10s", "300ms", "24h", "drainer lease lifetime (renewed every ttl/3)"),
	P_STR("feed", "nats_subject", "fedpipe.events", "JetStream subject events are published on"),
	P_STR("feed", "nats_stream", "FEDPIPE", "JetStream stream (created with the subject if missing)"),
	P_STR("feed", "nats_durable", "fedpipe-apply", "durable pull consumer name for fedctl feed apply"),
	P_DUR("feed", "nats_timeout", "5s", "10ms", "10m", "NATS connect/publish-ack timeout"),
	P_DUR("feed", "nats_dup_window", "10m", "1s", "3650d", "JetStream duplicate window for Nats-Msg-Id (stream creation)"),
	P_DUR("feed", "nats_ack_wait", "30s", "1s", "24h", "consumer ack wait before redelivery"),
	P_STR("feed", "nats_user", "", "NATS user name (with nats_password_file; empty: no user/password)"),
	P_PATH("feed", "nats_password_file", "", "file whose first line is the NATS password (refused if others can read it)"),
	P_PATH("feed", "nats_ca_file", "", "PEM CA the NATS servers' certificates must lead to: turns TLS on"),
	P_STR("feed", "nats_tls_name", "", "name every NATS server's certificate must carry (empty: the first URL's host)"),
	P_PATH("feed", "nats_cert_file", "", "PEM client certificate for NATS mutual TLS (with nats_key_file and nats_ca_file)"),
	P_PATH("feed", "nats_key_file", "", "PEM private key of nats_cert_file"),
	P_END
};
