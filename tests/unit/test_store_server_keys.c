/* test_store_server_keys.c: store/server_keys on a real LMDB file: round
 * trip, a stored key never changes, the row decoder a walk uses, and
 * malformed rows as errors. */
#include <stdlib.h>
#include <string.h>
#include "store/server_keys.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "keys", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	unsigned char pk[32], pk2[32], got[32];
	memset(pk, 7, 32); memset(pk2, 8, 32);
	int64_t until = 0;
	TAP_OK(store_key_put(t, &s, "a.test", "ed25519:k", pk, 1000) == 0, "put");
	TAP_OK(store_key_get(t, &s, "a.test", "ed25519:k", got, &until) == 0 && !memcmp(got, pk, 32) && until == 1000,
	       "round trip");
	TAP_OK(store_key_put(t, &s, "a.test", "ed25519:k", pk, 2000) == 0 &&
	       store_key_get(t, &s, "a.test", "ed25519:k", got, &until) == 0 && until == 2000, "same key: validity updated");
	TAP_OK(store_key_put(t, &s, "a.test", "ed25519:k", pk2, 3000) == STORE_KEY_CONFLICT &&
	       store_key_get(t, &s, "a.test", "ed25519:k", got, &until) == 0 && !memcmp(got, pk, 32) && until == 2000,
	       "another key for the same ID: refused, nothing written");
	TAP_OK(store_key_get(t, &s, "a.test", "ed25519:x", got, &until) == MDB_NOTFOUND, "absent: MDB_NOTFOUND");

	struct store_iter it;
	struct server_key sk;
	int n = 0, ok = 0;
	store_iter_open(&it, t, &s, DB_SERVER_KEYS, NULL, 0);
	while (store_iter_next(&it) == 1) {
		n++;
		ok = store_key_row(&it.k, &it.v, &sk) == 0 && sk.server_len == 6 && !memcmp(sk.server, "a.test", 6) &&
		     sk.key_id_len == 9 && !memcmp(sk.key_id, "ed25519:k", 9) && !memcmp(sk.pk, pk, 32) &&
		     sk.valid_until_ts == 2000;
	}
	store_iter_close(&it);
	TAP_OK(n == 1 && ok, "a walk decodes the row");

	char k[32];
	size_t kn = store_key2(k, sizeof k, "b.test", "ed25519:short");
	unsigned char odd[48] = { 0 };   /* malformed values, longer than a key */
	store_put(t, &s, DB_SERVER_KEYS, k, kn, odd, 39, 0);
	TAP_OK(store_key_get(t, &s, "b.test", "ed25519:short", got, &until) == MDB_CORRUPTED, "a 39-byte value: MDB_CORRUPTED");
	TAP_OK(store_key_put(t, &s, "b.test", "ed25519:short", pk, 1) == MDB_CORRUPTED, "put over a malformed row: MDB_CORRUPTED");
	MDB_val kv = { 6, "b.test" }, vv = { 40, odd };
	TAP_OK(store_key_row(&kv, &vv, &sk) == MDB_CORRUPTED, "row: a key without its NUL");
	kv.mv_data = k; kv.mv_size = kn; vv.mv_size = 41;
	TAP_OK(store_key_row(&kv, &vv, &sk) == MDB_CORRUPTED, "row: a 41-byte value");
	char longid[600];
	memset(longid, 'k', 599); longid[599] = 0;
	TAP_OK(store_key_put(t, &s, "a.test", longid, pk, 1) == MDB_BAD_VALSIZE &&
	       store_key_get(t, &s, "a.test", longid, got, &until) == MDB_NOTFOUND, "an over-long key ID: refused / absent");

	/* the two formats: a 40-byte row (before fetched_ts) still decodes,
	 * fetched_ts 0, so fetched + 7 days is past: a refetch is due */
	unsigned char v1[40];
	memcpy(v1, pk, 32);
	be64_put(v1 + 32, 4102444800000ULL);
	kn = store_key2(k, sizeof k, "old.test", "ed25519:v1");
	TAP_OK(store_put(t, &s, DB_SERVER_KEYS, k, kn, v1, 40, 0) == 0, "a 40-byte (old format) row written");
	struct key_rec r;
	TAP_OK(store_key_get_rec(t, &s, "old.test", "ed25519:v1", &r) == 0 && !memcmp(r.pk, pk, 32)
	       && r.valid_until_ts == 4102444800000LL && r.fetched_ts == 0 && r.flags == 0,
	       "old format decodes: fetched_ts 0, no flags");
	TAP_OK(store_key_valid_until(&r) == KEY_FETCHED_MAX_AGE_MS, "old format: valid until 0 + 7 days (refetch due)");
	TAP_OK(store_key_usable(t, &s, "old.test", 1000000000000LL) == 0, "old format: not usable now");
	r.fetched_ts = 1000000000000LL;
	TAP_OK(store_key_put_rec(t, &s, "old.test", "ed25519:v1", &r) == 0, "refetched: rewritten");
	MDB_val raw;
	TAP_OK(store_get(t, &s, DB_SERVER_KEYS, k, kn, &raw) == 0 && raw.mv_size == 49, "  ... in the new 49-byte format");
	struct key_rec r2;
	TAP_OK(store_key_get_rec(t, &s, "old.test", "ed25519:v1", &r2) == 0 && r2.fetched_ts == 1000000000000LL
	       && store_key_valid_until(&r2) == 1000000000000LL + KEY_FETCHED_MAX_AGE_MS,
	       "new format: valid until min(valid_until_ts, fetched + 7 days)");
	TAP_OK(store_key_usable(t, &s, "old.test", 1000000000000LL) == 1, "  ... usable now");
	r2.fetched_ts += 5 * KEY_FETCHED_MAX_AGE_MS;
	TAP_OK(store_key_put_rec(t, &s, "old.test", "ed25519:v1", &r2) == 0
	       && store_key_get_rec(t, &s, "old.test", "ed25519:v1", &r) == 0
	       && store_key_valid_until(&r) == 1000000000000LL + 6 * KEY_FETCHED_MAX_AGE_MS,
	       "a later fetch of the same key extends validity");
	r2.valid_until_ts = 2000; r2.flags = KEY_OLD;
	TAP_OK(store_key_put_rec(t, &s, "old.test", "ed25519:v1", &r2) == 0
	       && store_key_get_rec(t, &s, "old.test", "ed25519:v1", &r) == 0 && r.flags == KEY_OLD
	       && store_key_valid_until(&r) == 2000, "moved to old_verify_keys: its expired_ts, flagged old");
	TAP_OK(store_key_usable(t, &s, "old.test", 0) == 0, "an old key is never a usable current key");
	r2.flags = KEY_OPERATOR; r2.fetched_ts = 0; r2.valid_until_ts = 4102444800000LL;
	TAP_OK(store_key_put_rec(t, &s, "old.test", "ed25519:v1", &r2) == 0
	       && store_key_get_rec(t, &s, "old.test", "ed25519:v1", &r) == 0
	       && store_key_valid_until(&r) == 4102444800000LL, "an operator's key: valid_until_ts only");
	memcpy(r2.pk, pk2, 32);
	TAP_OK(store_key_put_rec(t, &s, "old.test", "ed25519:v1", &r2) == STORE_KEY_CONFLICT, "another pk: still a conflict");
	kv.mv_data = k; kv.mv_size = kn; vv.mv_size = 49;
	unsigned char v2[49] = { 0 };
	vv.mv_data = v2; v2[48] = 0xff;
	TAP_OK(store_key_row(&kv, &vv, &sk) == 0 && sk.flags == (KEY_OLD | KEY_OPERATOR), "row: unknown flag bits ignored");
	mdb_txn_abort(t);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
