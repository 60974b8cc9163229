/* server_keys.c: the server_keys record (layout in server_keys.h). */
#include <string.h>
#include "store/server_keys.h"

static int key_decode(const MDB_val *v, unsigned char pk[32], int64_t *valid_until_ts)
{
	if (v->mv_size != 40) return MDB_CORRUPTED;
	memcpy(pk, v->mv_data, 32);
	if (valid_until_ts) *valid_until_ts = (int64_t)be64_get((const unsigned char *)v->mv_data + 32);
	return 0;
}

int store_key_put(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                  const unsigned char pk[32], int64_t valid_until_ts)
{
	char k[512];
	size_t kn = store_key2(k, sizeof(k), server, key_id);
	if (!kn) return MDB_BAD_VALSIZE;
	/* A (server, key ID) names one public key forever: whoever hands us
	 * another one for it is refused (only its validity may change). */
	MDB_val have;
	int rc = store_get(t, s, DB_SERVER_KEYS, k, kn, &have);
	if (rc == 0) {
		unsigned char old[32];
		int64_t until;
		if ((rc = key_decode(&have, old, &until))) return rc;
		if (memcmp(old, pk, 32)) return STORE_KEY_CONFLICT;
		if (until == valid_until_ts) return 0;
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	unsigned char v[40];
	memcpy(v, pk, 32);
	be64_put(v + 32, (uint64_t)valid_until_ts);
	return store_put(t, s, DB_SERVER_KEYS, k, kn, v, sizeof(v), 0);
}

int store_key_get(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                  unsigned char pk[32], int64_t *valid_until_ts)
{
	char k[512];
	size_t kn = store_key2(k, sizeof(k), server, key_id);
	if (!kn) return MDB_NOTFOUND;
	MDB_val v;
	int rc = store_get(t, s, DB_SERVER_KEYS, k, kn, &v);
	return rc ? rc : key_decode(&v, pk, valid_until_ts);
}

int store_key_row(const MDB_val *k, const MDB_val *v, struct server_key *out)
{
	const char *key = k->mv_data;
	const char *z = memchr(key, 0, k->mv_size);
	if (!z) return MDB_CORRUPTED;
	out->server = key;
	out->server_len = (size_t)(z - key);
	out->key_id = z + 1;
	out->key_id_len = k->mv_size - out->server_len - 1;
	return key_decode(v, out->pk, &out->valid_until_ts);
}
