/* feed_claims.h: claims across a fleet: a JetStream KV bucket `<name>_claims`
 * on the fleet's NATS ([fleet] nats_url, name, replicas), with the bucket's
 * TTL [fleet] claims_ttl. A claim is kvStore_Create (create-if-absent): the
 * first node to create the key holds it until the TTL removes it. Never
 * blocks when NATS is away: the caller then falls back to its local claim
 * (fail-open). Keys: "<prefix>.<sha256 hex of the name>" (KV keys allow
 * only letters, digits and -/_=. ; event IDs carry '$' and ':'). */
#ifndef FP_FEED_CLAIMS_H
#define FP_FEED_CLAIMS_H
#include "core/config.h"

struct fleet_claims;
/* NULL if no fleet is configured. Connects lazily (at the first claim, then
 * at most every few seconds while NATS is unreachable). */
struct fleet_claims *fleet_claims_open(const struct config *cfg);
/* 1 = claimed here, 0 = another holder has it, -1 = the fleet's NATS is not
 * usable now (err says why): fall back to the local claim. */
int  fleet_claim_take(struct fleet_claims *c, const char *prefix, const char *name,
                      char *err, size_t errlen);
/* Connect and make the bucket now (at start: making a replicated bucket can
 * take longer than a claim may wait on the loop). 0, or -1 with err (the
 * first claim tries again). */
int  fleet_claims_prepare(struct fleet_claims *c, char *err, size_t errlen);
void fleet_claims_close(struct fleet_claims *c);

#endif
