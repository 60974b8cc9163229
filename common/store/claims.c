/* claims.c: the claims record (layout in claims.h). */
#include "store/claims.h"

int store_claim_expired(const MDB_val *v, long long now_ms)
{
	return !(v->mv_size == 8 && (long long)be64_get(v->mv_data) > now_ms);
}

int store_claim_take(MDB_txn *t, struct store *s, const char *name, size_t n,
                     long long now_ms, long long ttl_ms, int *held)
{
	MDB_val v;
	*held = 0;
	int rc = store_get(t, s, DB_CLAIMS, name, n, &v);
	if (rc == 0 && !store_claim_expired(&v, now_ms)) {
		*held = 1;
		return 0;
	}
	unsigned char e[8];
	be64_put(e, (uint64_t)(now_ms + ttl_ms));
	return store_put(t, s, DB_CLAIMS, name, n, e, 8, 0);
}

int store_claim_del_expired(MDB_txn *t, struct store *s, const void *name, size_t n,
                            long long now_ms, int *deleted)
{
	MDB_val v;
	*deleted = 0;
	int rc = store_get(t, s, DB_CLAIMS, name, n, &v);
	if (rc == MDB_NOTFOUND) return 0;
	if (rc) return rc;
	if (!store_claim_expired(&v, now_ms)) return 0;
	rc = store_del(t, s, DB_CLAIMS, name, n);
	if (rc == MDB_NOTFOUND) return 0;
	if (rc == 0) *deleted = 1;
	return rc;
}
