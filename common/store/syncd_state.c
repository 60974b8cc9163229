/* syncd_state.c: syncd's records in federation_state (see syncd_state.h). */
#include "store/syncd_state.h"
#include "core/buf.h"
#include "matrix/json.h"
#include "core/log.h"
#include "core/vclock.h"
#include <string.h>

const char *const fstate_fields[] = { "cursor", "last_seen", "node_id", "server_name", "vclock", "health", NULL };


int fstate_get(MDB_txn *t, struct store *st, const char *peer, const char *field, char *out, size_t cap)
{
	char k[256];
	size_t kn = store_key2(k, sizeof k, peer, field);
	MDB_val v;
	if (!kn || store_get(t, st, DB_FEDERATION_STATE, k, kn, &v) || v.mv_size >= cap) return -1;
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = 0;
	return (int)v.mv_size;
}

int fstate_put(MDB_txn *t, struct store *st, const char *peer, const char *field, const void *v, size_t n)
{
	char k[256];
	size_t kn = store_key2(k, sizeof k, peer, field);
	return kn ? store_put(t, st, DB_FEDERATION_STATE, k, kn, v, n, 0) : MDB_BAD_VALSIZE;
}

int fstate_del(MDB_txn *t, struct store *st, const char *peer, const char *field)
{
	char k[256];
	size_t kn = store_key2(k, sizeof k, peer, field);
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
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(t, st->dbi[DB_FEDERATION_STATE], &c) != 0) return;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *z = memchr(k.mv_data, 0, k.mv_size);
		if (!z || k.mv_size - (size_t)(z - (const char *)k.mv_data) != 7 || memcmp(z + 1, "vclock", 6)) continue;
		struct vclock pv;
		vclock_init(&pv);
		if (vclock_parse(&pv, v.mv_data, v.mv_size) > 0) vclock_merge(vc, &pv);
	}
	mdb_cursor_close(c);
}
