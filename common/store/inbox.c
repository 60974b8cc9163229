/* inbox.c: the inbox record (layout in inbox.h). */
#include <string.h>
#include "store/inbox.h"
#include "core/log.h"

int store_inbox_put(MDB_txn *t, struct store *s, const char *from, const void *bytes,
                    size_t n, uint64_t *seq_out)
{
	size_t fl = from ? strlen(from) : 0;
	if (fl > 65535) fl = 65535;
	uint64_t seq;
	int rc = store_seq_take(t, s, "inbox_next", &seq);
	if (rc) return rc;
	unsigned char k[8];
	be64_put(k, seq);
	MDB_val key = { 8, k }, val = { 8 + 2 + fl + n, NULL };
	/* inbox_next only grows, so the key is past every row: MDB_APPEND
	 * writes it at the end of the last leaf without a search or a split in
	 * the middle (issue 19: -5 to -8 us an event in syncd and purgatoryd).
	 * Should a row ever sit at or past it (a counter reset), the plain put
	 * does what it always did. */
	rc = mdb_put(t, s->dbi[DB_INBOX], &key, &val, MDB_RESERVE | MDB_APPEND);
	if (rc == MDB_KEYEXIST) {
		val.mv_size = 8 + 2 + fl + n;
		val.mv_data = NULL;
		rc = mdb_put(t, s->dbi[DB_INBOX], &key, &val, MDB_RESERVE);
	}
	if (rc) return rc;
	unsigned char *p = val.mv_data;
	be64_put(p, (uint64_t)now_ms());
	be16_put(p + 8, (uint16_t)fl);
	if (fl) memcpy(p + 10, from, fl);
	if (n) memcpy(p + 10 + fl, bytes, n);
	if (seq_out) *seq_out = seq;
	return 0;
}

int store_inbox_parse(const MDB_val *v, struct inbox_rec *r)
{
	const unsigned char *p = v->mv_data;
	if (v->mv_size < 10) return MDB_CORRUPTED;
	r->received_ms = be64_get(p);
	r->from_len = be16_get(p + 8);
	if (10 + r->from_len > v->mv_size) return MDB_CORRUPTED;
	r->from = (const char *)p + 10;
	r->bytes = (const char *)p + 10 + r->from_len;
	r->len = v->mv_size - 10 - r->from_len;
	return 0;
}

int store_inbox_row(const MDB_val *k, const MDB_val *v, uint64_t *seq, struct inbox_rec *r)
{
	if (k->mv_size != 8) return MDB_CORRUPTED;
	*seq = be64_get(k->mv_data);
	return store_inbox_parse(v, r);
}

int store_inbox_get(MDB_txn *t, struct store *s, uint64_t seq, struct inbox_rec *r)
{
	unsigned char k[8];
	be64_put(k, seq);
	MDB_val v;
	int rc = store_get(t, s, DB_INBOX, k, 8, &v);
	return rc ? rc : store_inbox_parse(&v, r);
}
