/* params_feedpump.c: parameters of feedpump ([feedpump]) and the feed
 * backends' extra keys ([feed]; sink, dir and nats_url are in params_node.c). */
#include <stddef.h>
#include "config.h"

const struct param params_feedpump[] = {
	{ "feedpump", "batch",        "64",   "outbox rows drained per sink call and write-back txn" },
	{ "feedpump", "interval",     "15s",  "safety-net drain timer (wakeups from purgatoryd are the fast path)" },
	{ "feedpump", "max_attempts", "10",   "attempts before a row the sink refuses moves to feed_dead" },
	{ "feedpump", "backoff_min",  "200ms", "first retry delay after a failed publish (doubles per attempt)" },
	{ "feedpump", "backoff_max",  "30s",  "longest retry delay" },
	{ "feedpump", "lease_ttl",    "10s",  "drainer lease lifetime (renewed every ttl/3)" },
	{ "feed", "nats_subject",     "fedpipe.events", "JetStream subject events are published on" },
	{ "feed", "nats_stream",      "FEDPIPE", "JetStream stream (created with the subject if missing)" },
	{ "feed", "nats_durable",     "fedpipe-apply", "durable pull consumer name for fedctl feed apply" },
	{ "feed", "nats_timeout",     "5s",   "NATS connect/publish-ack timeout" },
	{ "feed", "nats_dup_window",  "10m",  "JetStream duplicate window for Nats-Msg-Id (stream creation)" },
	{ "feed", "nats_ack_wait",    "30s",  "consumer ack wait before redelivery" },
	{ NULL, NULL, NULL, NULL }
};
