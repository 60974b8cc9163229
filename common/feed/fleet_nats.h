/* fleet_nats.h: the fleet's NATS connection and KV buckets, shared by
 * fleetd (which coordinates through them) and `fedctl fleet` (which reads
 * them). Connect with a bounded timeout and endless reconnects over every
 * URL of [fleet] nats_url (comma-separated: a cluster; credentials and TLS
 * from [fleet] nats_*: feed/nats_opts.h), then open a bucket,
 * creating it if absent (two nodes racing to create: the loser opens). */
#ifndef FP_FLEET_NATS_H
#define FP_FLEET_NATS_H
#include <stdint.h>
#include <nats/nats.h>
#include "feed/nats_opts.h"

struct fleet_nats {
	natsConnection *nc;
	jsCtx          *js;
	natsOptions    *opts;
};
/* 0, or -1 with a clear message (URL, what failed). wait_ms bounds every
 * request (connect, KV operations). */
int  fleet_nats_connect(struct fleet_nats *n, const char *url, const struct nats_sec *sec,
                        const char *client_name, long long wait_ms, char *err, size_t errlen);
/* Open bucket, creating it (history, ttl_ms: 0 none, replicas) if absent;
 * create = 0: open only. 0 or -1 with a message. */
int  fleet_nats_bucket(struct fleet_nats *n, kvStore **kv, const char *bucket, int history,
                       long long ttl_ms, int replicas, int create, char *err, size_t errlen);
void fleet_nats_close(struct fleet_nats *n);

#endif
