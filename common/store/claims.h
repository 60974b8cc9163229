/* claims.h: short-lived claims ("SetNX with a TTL") that let several
 * instances agree who does a piece of work (only this module knows their
 * bytes). served claims "recover:<event_id>" before recovering an event.
 *   claims  key name  val u64 expires_ms (wall ms, big-endian) */
#ifndef FP_STORE_CLAIMS_H
#define FP_STORE_CLAIMS_H
#include <stddef.h>
#include "store/store.h"

/* Claim name until now_ms + ttl_ms unless a live claim holds it:
 * 0 with *held = 0 (claimed: written), 0 with *held = 1 (someone holds it:
 * nothing written), or an LMDB error (abort the txn). */
int  store_claim_take(MDB_txn *t, struct store *s, const char *name, size_t n,
                      long long now_ms, long long ttl_ms, int *held);
/* Is this claims value expired at now_ms? A malformed one (not 8 bytes)
 * counts as expired: the sweep removes it. */
int  store_claim_expired(const MDB_val *v, long long now_ms);
/* Delete the claim if it is expired at now_ms (checked again in this txn:
 * another instance may have renewed it). 0 (*deleted 0 or 1) or an LMDB
 * error; an absent claim is no error. */
int  store_claim_del_expired(MDB_txn *t, struct store *s, const void *name, size_t n,
                             long long now_ms, int *deleted);

#endif
