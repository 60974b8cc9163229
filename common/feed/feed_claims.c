/* feed_claims.c: fleet-wide claims in a JetStream KV bucket (see
 * feed_claims.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nats/nats.h>
#include "feed/feed_claims.h"
#include "feed/feed_fleet.h"
#include "feed/feed_nats.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/pdu.h"

#define RECONNECT_GAP_MS 3000

struct fleet_claims {
	struct feed_opts o;
	struct feed_nats n;
	kvStore *kv;
	char bucket[160];
	long long ttl_ms, next_try_ms;
	int replicas;
};

struct fleet_claims *fleet_claims_open(const struct config *cfg)
{
	if (!feed_fleet_on(cfg)) return NULL;
	struct fleet_claims *c = xcalloc(1, sizeof *c);
	feed_opts_fleet(&c->o, cfg, NULL);
	c->o.nats_durable = NULL;
	snprintf(c->bucket, sizeof c->bucket, "%s_claims", cfg_str(cfg, "fleet", "name"));
	c->ttl_ms = cfg_ms(cfg, "fleet", "claims_ttl");
	c->replicas = (int)cfg_int(cfg, "fleet", "replicas");
	/* short: a claim is asked for on served's loop */
	if (c->o.nats_timeout_ms > 1000) c->o.nats_timeout_ms = 1000;
	return c;
}

static void drop(struct fleet_claims *c)
{
	if (c->kv) kvStore_Destroy(c->kv);
	c->kv = NULL;
	feed_nats_close(&c->n);
}

/* Connected with the bucket (made if missing): 0, or -1 with err. The
 * fleet stream is ensured by the connect (feed_nats_connect), harmless. */
static int ensure(struct fleet_claims *c, char *err, size_t errlen)
{
	if (c->kv) {
		if (natsConnection_Status(c->n.nc) == NATS_CONN_STATUS_CONNECTED) return 0;
		snprintf(err, errlen, "fleet claims: not connected to %s (reconnecting)", c->o.nats_url);
		return -1;
	}
	long long now = now_ms();
	if (now < c->next_try_ms) {
		snprintf(err, errlen, "fleet claims: %s unreachable (next try in %lld ms)", c->o.nats_url,
		         c->next_try_ms - now);
		return -1;
	}
	c->next_try_ms = now + RECONNECT_GAP_MS;
	if (feed_nats_connect(&c->n, &c->o, NULL, NULL, 0, err, errlen) < 0) return -1;
	natsStatus st = js_KeyValue(&c->kv, c->n.js, c->bucket);
	if (st == NATS_NOT_FOUND) {
		kvConfig kc;
		kvConfig_Init(&kc);
		kc.Bucket = c->bucket;
		kc.History = 1;
		kc.TTL = c->ttl_ms * 1000000LL;          /* nanoseconds (the stream's MaxAge) */
		kc.Replicas = c->replicas > 1 ? c->replicas : 1;
		st = js_CreateKeyValue(&c->kv, c->n.js, &kc);
		if (st != NATS_OK) {   /* another node made it meanwhile? */
			c->kv = NULL;
			st = js_KeyValue(&c->kv, c->n.js, c->bucket);
		}
	}
	if (st != NATS_OK) {
		snprintf(err, errlen, "fleet claims: bucket %s on %s: %s (%s)", c->bucket, c->o.nats_url,
		         natsStatus_GetText(st), nats_GetLastError(NULL));
		c->kv = NULL;
		drop(c);
		return -1;
	}
	log_info("fleet claims: bucket %s (ttl %lld ms)", c->bucket, c->ttl_ms);
	return 0;
}

int fleet_claim_take(struct fleet_claims *c, const char *prefix, const char *name,
                     char *err, size_t errlen)
{
	if (ensure(c, err, errlen) < 0) return -1;
	unsigned char h[32];
	pdu_sha256(h, name, strlen(name));
	char key[200];
	int o = snprintf(key, sizeof key, "%s.", prefix);
	for (int i = 0; i < 32 && o + 2 < (int)sizeof key; i++) o += snprintf(key + o, sizeof key - (size_t)o, "%02x", h[i]);
	uint64_t rev = 0;
	natsStatus st = kvStore_Create(&rev, c->kv, key, "1", 1);
	if (st == NATS_OK) return 1;
	const char *le = nats_GetLastError(NULL);
	char why[300];
	snprintf(why, sizeof why, "%s (%s)", natsStatus_GetText(st), le ? le : "");
	/* "wrong last sequence": the key exists, someone holds the claim; any
	 * other failure: ask whether the key is there before failing open */
	if (le && strstr(le, "wrong last sequence")) return 0;
	kvEntry *e = NULL;
	if (kvStore_Get(&e, c->kv, key) == NATS_OK) { kvEntry_Destroy(e); return 0; }
	snprintf(err, errlen, "fleet claims: create %s: %s", key, why);
	return -1;
}

int fleet_claims_prepare(struct fleet_claims *c, char *err, size_t errlen)
{
	long long t = c->o.nats_timeout_ms;
	c->o.nats_timeout_ms = 10000;       /* once, at start: a bucket with replicas may take a while */
	int rc = ensure(c, err, errlen);
	c->o.nats_timeout_ms = t;
	if (rc < 0) c->next_try_ms = 0;     /* the first claim tries again */
	return rc;
}

void fleet_claims_close(struct fleet_claims *c)
{
	if (!c) return;
	drop(c);
	free(c);
}
