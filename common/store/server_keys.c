/* server_keys.c: the server_keys record (layout in server_keys.h). */
#include <string.h>
#include <stdlib.h>
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include "store/server_keys.h"

#define V1_LEN 40   /* pk | valid_until_ts (before fetched_ts) */
#define V2_LEN 49   /* pk | valid_until_ts | fetched_ts | flags */
#define DOC_HDR 17  /* 'D' | valid_until_ts | stored_ts, then the document */
#define DOC_MIN 64  /* a shorter "document" is no key document (and its row
                     * could never be mistaken for a 40- or 49-byte key) */

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
	size_t kn = key_id[0] ? store_key2(k, sizeof(k), server, key_id) : 0;
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
	size_t kn = key_id[0] ? store_key2(k, sizeof(k), server, key_id) : 0;
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
		if (it.k.mv_size > n + 1 && key_decode(&it.v, &r) == 0 && !(r.flags & KEY_OLD) && store_key_valid_until(&r) >= now)
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
	if (!out->key_id_len) return STORE_KEY_DOC_ROW;
	struct key_rec r;
	int rc = key_decode(v, &r);
	if (rc) return rc;
	memcpy(out->pk, r.pk, 32);
	out->valid_until_ts = r.valid_until_ts;
	out->fetched_ts = r.fetched_ts;
	out->flags = r.flags;
	return 0;
}

/* --- signed key documents -------------------------------------------- */

static size_t doc_key(char *k, size_t cap, const char *server)
{
	return server[0] ? store_key2(k, cap, server, "") : 0;
}

int store_key_doc_put(MDB_txn *t, struct store *s, const char *server, const char *doc, size_t n,
                      int64_t valid_until_ts)
{
	char k[512];
	size_t kn = doc_key(k, sizeof k, server);
	if (!kn || n < DOC_MIN || n > KEY_DOC_MAX) return MDB_BAD_VALSIZE;
	int64_t have_vu;
	const char *have;
	size_t hn;
	int rc = store_key_doc_get(t, s, server, &have, &hn, &have_vu, NULL);
	if (rc == 0 && have_vu > valid_until_ts) return 0;
	if (rc == 0 && have_vu == valid_until_ts && hn == n && !memcmp(have, doc, n)) return 0;
	if (rc && rc != MDB_NOTFOUND && rc != MDB_CORRUPTED) return rc;
	unsigned char *v = xmalloc(DOC_HDR + n);
	v[0] = 'D';
	be64_put(v + 1, (uint64_t)valid_until_ts);
	be64_put(v + 9, (uint64_t)now_ms());
	memcpy(v + DOC_HDR, doc, n);
	rc = store_put(t, s, DB_SERVER_KEYS, k, kn, v, DOC_HDR + n, 0);
	free(v);
	return rc;
}

int store_key_doc_get(MDB_txn *t, struct store *s, const char *server, const char **doc, size_t *n,
                      int64_t *valid_until_ts, int64_t *stored_ts)
{
	char k[512];
	size_t kn = doc_key(k, sizeof k, server);
	if (!kn) return MDB_NOTFOUND;
	MDB_val v;
	int rc = store_get(t, s, DB_SERVER_KEYS, k, kn, &v);
	if (rc) return rc;
	const unsigned char *p = v.mv_data;
	if (v.mv_size < DOC_HDR + DOC_MIN || v.mv_size > DOC_HDR + KEY_DOC_MAX || p[0] != 'D')
		return MDB_CORRUPTED;
	*valid_until_ts = (int64_t)be64_get(p + 1);
	if (stored_ts) *stored_ts = (int64_t)be64_get(p + 9);
	*doc = (const char *)p + DOC_HDR;
	*n = v.mv_size - DOC_HDR;
	return 0;
}

/* Does object t name server, and with an integer valid_until_ts? */
static int doc_names(const struct json_doc *d, int t, const char *server, int64_t *vu)
{
	if (d->tok[t].type != JSON_OBJECT) return 0;
	int sn = json_obj_get(d, t, "server_name"), v = json_obj_get(d, t, "valid_until_ts");
	if (sn < 0 || d->tok[sn].type != JSON_STRING || !json_str_eq(d, sn, server)) return 0;
	if (v < 0 || d->tok[v].type != JSON_INT) return 0;
	*vu = d->tok[v].ival;
	return 1;
}

int store_key_doc_pick(const char *json, size_t n, const char *server, size_t *off, size_t *len,
                       int64_t *valid_until_ts)
{
	struct json_doc d = { 0 };
	int found = -1;
	if (json_parse(&d, json, n, JSON_MAX_DEPTH_DEFAULT) < 0 || d.tok[0].type != JSON_OBJECT) goto out;
	int a = json_obj_get(&d, 0, "server_keys");
	int64_t vu;
	if (a < 0) {
		if (doc_names(&d, 0, server, &vu)) found = 0, *valid_until_ts = vu;
	} else if (d.tok[a].type == JSON_ARRAY) {
		for (int e = json_first(&d, a); e >= 0; e = json_next_elem(&d, a, e))
			if (doc_names(&d, e, server, &vu) && (found < 0 || vu > *valid_until_ts))
				found = e, *valid_until_ts = vu;
	}
	if (found >= 0) {
		*off = d.tok[found].start;
		*len = d.tok[found].end - d.tok[found].start;
	}
out:
	json_doc_free(&d);
	return found >= 0 ? 0 : -1;
}

int store_key_doc_put_answer(MDB_txn *t, struct store *s, const char *server, const char *json,
                             size_t n)
{
	size_t off, len;
	int64_t vu;
	if (store_key_doc_pick(json, n, server, &off, &len, &vu) < 0) return 0;
	int rc = store_key_doc_put(t, s, server, json + off, len, vu);
	if (rc == MDB_BAD_VALSIZE) {
		log_info("key document of %s (%zu bytes) not kept: larger than %d bytes", server, len, KEY_DOC_MAX);
		return 0;
	}
	return rc;
}
