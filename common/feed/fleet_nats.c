/* fleet_nats.c: the fleet's NATS connection and KV buckets (fleet_nats.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "feed/fleet_nats.h"

int fleet_nats_connect(struct fleet_nats *n, const char *url, const struct nats_sec *sec,
                       const char *client_name, long long wait_ms, char *err, size_t errlen)
{
	natsStatus st;
	memset(n, 0, sizeof *n);
	if (!url || !*url) {
		snprintf(err, errlen, "fleet: no NATS server URL ([fleet] nats_url)");
		return -1;
	}
	if (nats_opts_new(&n->opts, url, client_name, wait_ms, sec, err, errlen) < 0) {
		char why[400];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "fleet: %s", why);
		return -1;
	}
	if ((st = natsConnection_Connect(&n->nc, n->opts)) != NATS_OK) {
		snprintf(err, errlen, "fleet: cannot connect to %s: %s", url, natsStatus_GetText(st));
		goto fail;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = wait_ms;
	if ((st = natsConnection_JetStream(&n->js, n->nc, &jo)) != NATS_OK) {
		snprintf(err, errlen, "fleet: JetStream context: %s", natsStatus_GetText(st));
		goto fail;
	}
	return 0;
fail:
	fleet_nats_close(n);
	return -1;
}

static int bucket_once(struct fleet_nats *n, kvStore **kv, const char *bucket, int history,
                       long long ttl_ms, int replicas, int create, char *err, size_t errlen)
{
	*kv = NULL;
	natsStatus st = js_KeyValue(kv, n->js, bucket);
	if (st == NATS_OK) return 0;
	if (st != NATS_NOT_FOUND || !create) {
		const char *last = nats_GetLastError(NULL);
		snprintf(err, errlen, "fleet: KV bucket %s: %s%s%s (JetStream enabled? nats-server -js)", bucket,
		         st == NATS_NOT_FOUND ? "no such bucket" : natsStatus_GetText(st),
		         st != NATS_NOT_FOUND && last && *last ? ": " : "", st != NATS_NOT_FOUND && last ? last : "");
		return -1;
	}
	kvConfig kc;
	kvConfig_Init(&kc);
	kc.Bucket = bucket;
	kc.History = (uint8_t)history;
	kc.TTL = ttl_ms * 1000000LL;          /* nanoseconds (the stream's MaxAge) */
	kc.Replicas = replicas;
	kc.StorageType = js_FileStorage;
	st = js_CreateKeyValue(kv, n->js, &kc);
	if (st == NATS_OK) return 0;
	char why[256];
	snprintf(why, sizeof why, "%s", nats_GetLastError(NULL));
	/* Another node created it first (with its own settings): open that one. */
	if (js_KeyValue(kv, n->js, bucket) == NATS_OK) return 0;
	snprintf(err, errlen, "fleet: cannot create KV bucket %s (history %d, ttl %lld ms, replicas %d): %s",
	         bucket, history, ttl_ms, replicas, *why ? why : natsStatus_GetText(st));
	return -1;
}

/* A bucket made by fleetd is retried for up to 30 s while the cluster forms
 * or recovers (a timeout, no quorum, too few peers), each retry logged; a
 * lookup only (fedctl) answers at once. */
int fleet_nats_bucket(struct fleet_nats *n, kvStore **kv, const char *bucket, int history,
                      long long ttl_ms, int replicas, int create, char *err, size_t errlen)
{
	long long until = mono_ms() + 30000, pause = 200;
	for (int tries = 1;; tries++) {
		if (bucket_once(n, kv, bucket, history, ttl_ms, replicas, create, err, errlen) == 0) {
			if (tries > 1) log_info("fleet: KV bucket %s ready after %d attempts", bucket, tries);
			return 0;
		}
		if (!create || mono_ms() >= until) return -1;
		log_warnx("%s; retrying in %lld ms", err, pause);
		struct timespec ts = { (time_t)(pause / 1000), (long)(pause % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		pause = pause * 2 > 2000 ? 2000 : pause * 2;
	}
}

void fleet_nats_close(struct fleet_nats *n)
{
	if (n->js) jsCtx_Destroy(n->js);
	if (n->nc) { natsConnection_Close(n->nc); natsConnection_Destroy(n->nc); }
	if (n->opts) natsOptions_Destroy(n->opts);
	memset(n, 0, sizeof *n);
}
