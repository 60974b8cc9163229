/* test_store_claims.c: store/claims on a real LMDB file: SetNX with a TTL,
 * expiry, a malformed value counted as expired, the sweep's delete. */
#include <stdlib.h>
#include <string.h>
#include "store/claims.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "claims", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	int held = -1, del = -1;
	TAP_OK(store_claim_take(t, &s, "recover:$a", 10, 1000, 500, &held) == 0 && held == 0, "a free name is claimed");
	TAP_OK(store_claim_take(t, &s, "recover:$a", 10, 1499, 500, &held) == 0 && held == 1, "held until it expires");
	TAP_OK(store_claim_take(t, &s, "recover:$a", 10, 1500, 500, &held) == 0 && held == 0, "expired: claimed again");
	MDB_val v;
	TAP_OK(store_get(t, &s, DB_CLAIMS, "recover:$a", 10, &v) == 0 && !store_claim_expired(&v, 1999) &&
	       store_claim_expired(&v, 2000), "expires at now + ttl");
	MDB_val bad = { 3, "abc" };
	TAP_OK(store_claim_expired(&bad, 0), "a malformed value counts as expired");
	store_put(t, &s, DB_CLAIMS, "recover:$b", 10, "abc", 3, 0);
	TAP_OK(store_claim_take(t, &s, "recover:$b", 10, 0, 500, &held) == 0 && held == 0, "a malformed claim is taken over");
	TAP_OK(store_claim_del_expired(t, &s, "recover:$a", 10, 1999, &del) == 0 && del == 0 &&
	       store_get(t, &s, DB_CLAIMS, "recover:$a", 10, &v) == 0, "a live claim is not swept");
	TAP_OK(store_claim_del_expired(t, &s, "recover:$a", 10, 2000, &del) == 0 && del == 1 &&
	       store_get(t, &s, DB_CLAIMS, "recover:$a", 10, &v) == MDB_NOTFOUND, "an expired one is");
	TAP_OK(store_claim_del_expired(t, &s, "recover:$zz", 11, 0, &del) == 0 && del == 0, "an absent one: no error");
	store_put(t, &s, DB_CLAIMS, "junk", 4, "x", 1, 0);
	TAP_OK(store_claim_del_expired(t, &s, "junk", 4, 0, &del) == 0 && del == 1, "a malformed one is swept");
	mdb_txn_abort(t);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
