/* fedstate.c: syncd's records in federation_state (see fedstate.h). */
#include "store/fedstate.h"
#include "core/buf.h"
#include "matrix/json.h"
#include "core/log.h"
#include "core/vclock.h"
#include <string.h>

const char *const fstate_fields[] = { "cursor", "last_seen", "node_id", "server_name", "vclock", "health", NULL };

size_t fstate_key(char *out, size_t cap, const char *peer, const char *field)
{
	return store_key2(out, cap, peer, field);
}

int fstate_get(MDB_txn *t, struct store *st, const char *peer, const char *field, char *out, size_t cap)
{
	char k[256];
	size_t kn = fstate_key(k, sizeof k, peer, field);
	MDB_val v;
	if (!kn || store_get(t, st, DB_FEDERATION_STATE, k, kn, &v) || v.mv_size >= cap) return -1;
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = 0;
	return (int)v.mv_size;
}

int fstate_put(MDB_txn *t, struct store *st, const char *peer, const char *field, const void *v, size_t n)
{
	char k[256];
	size_t kn = fstate_key(k, sizeof k, peer, field);
	return kn ? store_put(t, st, DB_FEDERATION_STATE, k, kn, v, n, 0) : MDB_BAD_VALSIZE;
}

int fstate_del(MDB_txn *t, struct store *st, const char *peer, const char *field)
{
	char k[256];
	size_t kn = fstate_key(k, sizeof k, peer, field);
	int rc = kn ? store_del(t, st, DB_FEDERATION_STATE, k, kn) : 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

uint64_t fstate_cursor(MDB_txn *t, struct store *st, const char *peer)
{
	char b[16];
	return fstate_get(t, st, peer, "cursor", b, sizeof b) == 8 ? be64_get((unsigned char *)b) : 0;
}

int fstate_health(struct store *st, const char *peer, const char *reason, const char *msg, int failures)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"at_ms\":%lld,\"failures\":%d,\"message\":", now_ms(), failures);
	json_put_string(&b, msg, strlen(msg));
	buf_adds(&b, ",\"reason\":");
	json_put_string(&b, reason, strlen(reason));
	buf_addc(&b, '}');
	int rc;
	for (;;) {
		MDB_txn *t = store_begin(st, 0);
		rc = fstate_put(t, st, peer, "health", b.data, b.len);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (!rc || !store_write_failed(st, rc)) break;   /* 1: the map grew, redo */
	}
	buf_free(&b);
	return rc;
}

void fstate_merge_clocks(MDB_txn *t, struct store *st, struct vclock *vc)
{
	struct store_iter it;
	store_iter_open(&it, t, st, DB_FEDERATION_STATE, NULL, 0);
	while (store_iter_next(&it) == 1) {
		const char *z = memchr(it.k.mv_data, 0, it.k.mv_size);
		if (!z || it.k.mv_size - (size_t)(z - (const char *)it.k.mv_data) != 7 || memcmp(z + 1, "vclock", 6))
			continue;
		struct vclock pv;
		vclock_init(&pv);
		if (vclock_parse(&pv, it.v.mv_data, it.v.mv_size) > 0) vclock_merge(vc, &pv);
	}
	store_iter_close(&it);
}

int fstate_probe(struct store *st, const char *peer)
{
	char k[256];
	size_t kn = fstate_key(k, sizeof k, peer, "probe");
	MDB_val key = { kn, k }, val = { 256, NULL };
	MDB_txn *t = store_begin(st, 0);
	int rc = mdb_put(t, st->dbi[DB_FEDERATION_STATE], &key, &val, MDB_RESERVE);
	mdb_txn_abort(t);
	return rc;
}
