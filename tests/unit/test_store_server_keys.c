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
	store_put(t, &s, DB_SERVER_KEYS, k, kn, pk, 39, 0);
	TAP_OK(store_key_get(t, &s, "b.test", "ed25519:short", got, &until) == MDB_CORRUPTED, "a 39-byte value: MDB_CORRUPTED");
	TAP_OK(store_key_put(t, &s, "b.test", "ed25519:short", pk, 1) == MDB_CORRUPTED, "put over a malformed row: MDB_CORRUPTED");
	MDB_val kv = { 6, "b.test" }, vv = { 40, pk };
	TAP_OK(store_key_row(&kv, &vv, &sk) == MDB_CORRUPTED, "row: a key without its NUL");
	kv.mv_data = k; kv.mv_size = kn; vv.mv_size = 41;
	TAP_OK(store_key_row(&kv, &vv, &sk) == MDB_CORRUPTED, "row: a 41-byte value");
	char longid[600];
	memset(longid, 'k', 599); longid[599] = 0;
	TAP_OK(store_key_put(t, &s, "a.test", longid, pk, 1) == MDB_BAD_VALSIZE &&
	       store_key_get(t, &s, "a.test", longid, got, &until) == MDB_NOTFOUND, "an over-long key ID: refused / absent");
	mdb_txn_abort(t);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
