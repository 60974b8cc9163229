/* server_keys.c: the server_keys record (layout in server_keys.h). */
#include <string.h>
#include "core/log.h"
#include "store/server_keys.h"

#define V1_LEN 40   /* pk | valid_until_ts (before fetched_ts) */
#define V2_LEN 49   /* pk | valid_until_ts | fetched_ts | flags */

static int key_decode(const MDB_val *v, struct key_rec *r)
{
	const unsigned char *p = v->mv_data;
	if (v->mv_size != V1_LEN && v->mv_size != V2_LEN) return MDB_CORRUPTED;
	memcpy(r->pk, p, 32);
	r->valid_until_ts = (int64_t)be64_get(p + 32);
	r->fetched_ts = v->mv_size == V2_LEN ? (int64_t)be64_get(p + 40) : 0;
	r->flags = v->mv_size == V2_LEN ? p[48] & (KEY_OLD | KEY_OPERATOR) : 0;
	return 0;
}

int64_t store_key_valid_until(const struct key_rec *r)
{
	if (r->flags & (KEY_OLD | KEY_OPERATOR)) return r->valid_until_ts;
	int64_t cap = r->fetched_ts > INT64_MAX - KEY_FETCHED_MAX_AGE_MS ? INT64_MAX
	              : r->fetched_ts + KEY_FETCHED_MAX_AGE_MS;
	return r->valid_until_ts < cap ? r->valid_until_ts : cap;
}

int store_key_put_rec(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                      const struct key_rec *r)
{
	char k[512];
	size_t kn = store_key2(k, sizeof(k), server, key_id);
	if (!kn) return MDB_BAD_VALSIZE;
	/* A (server, key ID) names one public key forever: whoever hands us
	 * another one for it is refused (only its validity may change). */
	MDB_val have;
	int rc = store_get(t, s, DB_SERVER_KEYS, k, kn, &have);
	if (rc == 0) {
		struct key_rec old;
		if ((rc = key_decode(&have, &old))) return rc;
		if (memcmp(old.pk, r->pk, 32)) return STORE_KEY_CONFLICT;
		if (have.mv_size == V2_LEN && old.valid_until_ts == r->valid_until_ts
		    && old.fetched_ts == r->fetched_ts && old.flags == r->flags)
			return 0;
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	unsigned char v[V2_LEN];
	memcpy(v, r->pk, 32);
	be64_put(v + 32, (uint64_t)r->valid_until_ts);
	be64_put(v + 40, (uint64_t)r->fetched_ts);
	v[48] = (unsigned char)(r->flags & (KEY_OLD | KEY_OPERATOR));
	return store_put(t, s, DB_SERVER_KEYS, k, kn, v, sizeof(v), 0);
}

int store_key_put(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                  const unsigned char pk[32], int64_t valid_until_ts)
{
	struct key_rec r;
	memcpy(r.pk, pk, 32);
	r.valid_until_ts = valid_until_ts;
	r.fetched_ts = now_ms();
	r.flags = 0;
	return store_key_put_rec(t, s, server, key_id, &r);
}

int store_key_get_rec(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                      struct key_rec *r)
{
	char k[512];
	size_t kn = store_key2(k, sizeof(k), server, key_id);
	if (!kn) return MDB_NOTFOUND;
	MDB_val v;
	int rc = store_get(t, s, DB_SERVER_KEYS, k, kn, &v);
	return rc ? rc : key_decode(&v, r);
}

int store_key_get(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                  unsigned char pk[32], int64_t *valid_until_ts)
{
	struct key_rec r;
	int rc = store_key_get_rec(t, s, server, key_id, &r);
	if (rc) return rc;
	memcpy(pk, r.pk, 32);
	if (valid_until_ts) *valid_until_ts = r.valid_until_ts;
	return 0;
}

int store_key_usable(MDB_txn *t, struct store *s, const char *server, int64_t now)
{
	char pre[300];
	size_t n = strlen(server);
	if (n + 1 > sizeof pre) return 0;
	memcpy(pre, server, n);
	pre[n] = 0;
	struct store_iter it;
	int rc = store_iter_open(&it, t, s, DB_SERVER_KEYS, pre, n + 1), found = 0;
	if (rc) return rc;
	while (!found && store_iter_next(&it) == 1) {
		struct key_rec r;
		if (key_decode(&it.v, &r) == 0 && !(r.flags & KEY_OLD) && store_key_valid_until(&r) >= now)
			found = 1;
	}
	store_iter_close(&it);
	return found;
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
	struct key_rec r;
	int rc = key_decode(v, &r);
	if (rc) return rc;
	memcpy(out->pk, r.pk, 32);
	out->valid_until_ts = r.valid_until_ts;
	out->fetched_ts = r.fetched_ts;
	out->flags = r.flags;
	return 0;
}
