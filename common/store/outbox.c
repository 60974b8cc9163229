/* outbox.c: the outbox and feed_dead rows, the drain cursor and the drain
 * lease (layouts in outbox.h). */
#include <stdio.h>
#include <string.h>
#include "store/outbox.h"
#include "matrix/json.h"

#define CURSOR_KEY "feed_cursor"
#define LEASE_KEY  "feedpump"

/* At most max bytes of src into dst (NUL-terminated), never splitting a
 * UTF-8 character; a byte that starts no valid character (or a NUL)
 * becomes '?'. */
static void clip_utf8(char *dst, const char *src, size_t srclen, size_t max)
{
	size_t i = 0, o = 0;
	while (i < srclen) {
		int l = json_utf8_seq_len(src + i, srclen - i);
		if (l <= 0 || src[i] == 0) {
			if (o + 1 > max) break;
			dst[o++] = '?'; i++;
			continue;
		}
		if (o + (size_t)l > max) break;
		memcpy(dst + o, src + i, (size_t)l);
		o += (size_t)l; i += (size_t)l;
	}
	dst[o] = 0;
}

/* The fast path of outbox_row_parse: a row exactly as outbox_row_encode
 * writes it (every writer does) with no last_error and a plain event ID,
 * read without a JSON parse (feedpump reads every row it publishes).
 * 1 parsed; 0 not in that form (the JSON parse decides). It takes nothing
 * the JSON parse would read differently: no sign, no leading zero, at most
 * 18 digits, printable ASCII IDs without escapes, nothing after the '}'. */
static int lit(const char **p, const char *e, const char *s, size_t n)
{
	if ((size_t)(e - *p) < n || memcmp(*p, s, n) != 0) return -1;
	*p += n;
	return 0;
}
#define LIT(p, e, s) lit(p, e, s, sizeof s - 1)

static int num(const char **p, const char *e, int64_t *v)
{
	const char *q = *p;
	if (q == e || *q < '0' || *q > '9' || (*q == '0' && q + 1 < e && q[1] >= '0' && q[1] <= '9'))
		return -1;
	int64_t x = 0;
	int nd = 0;
	while (q < e && *q >= '0' && *q <= '9') {
		if (++nd > 18) return -1;
		x = x * 10 + (*q++ - '0');
	}
	*v = x;
	*p = q;
	return 0;
}

static int num_or_null(const char **p, const char *e, int64_t *v)
{
	if (LIT(p, e, "null") == 0) { *v = 0; return 0; }
	return num(p, e, v);
}

static int row_parse_fast(const char *p, size_t n, struct outbox_row *r)
{
	const char *e = p + n, *id;
	int64_t v;
	if (LIT(&p, e, "{\"attempts\":") || num(&p, e, &r->attempts)) return 0;
	if (LIT(&p, e, ",\"control_version\":") || num_or_null(&p, e, &v)) return 0;
	r->control_version = (uint64_t)v;
	if (LIT(&p, e, ",\"event_id\":\"")) return 0;
	for (id = p; p < e && *p != '"'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '\\') return 0;
	size_t l = (size_t)(p - id);
	if (p == e || l == 0 || l >= sizeof r->event_id) return 0;
	memcpy(r->event_id, id, l);
	r->event_id[l] = 0;
	p++;
	if (LIT(&p, e, ",\"last_error\":null,\"published_ms\":") || num_or_null(&p, e, &r->published_ms)
	    || LIT(&p, e, "}") || p != e)
		return 0;
	return 1;
}

int outbox_row_parse(const void *p, size_t n, struct outbox_row *r)
{
	struct json_doc d = {0};
	memset(r, 0, sizeof *r);
	if (row_parse_fast(p, n, r)) return 0;
	memset(r, 0, sizeof *r);
	if (json_parse(&d, p, n, 8) < 0 || d.tok[0].type != JSON_OBJECT) { json_doc_free(&d); return -1; }
	int t;
	int rc = -1;
	if ((t = json_obj_get(&d, 0, "event_id")) < 0 || d.tok[t].type != JSON_STRING
	    || json_str_copy(&d, t, r->event_id, sizeof r->event_id) <= 0)
		goto out;
	if ((t = json_obj_get(&d, 0, "attempts")) >= 0 && d.tok[t].type == JSON_INT)
		r->attempts = d.tok[t].ival;
	if ((t = json_obj_get(&d, 0, "control_version")) >= 0 && d.tok[t].type == JSON_INT && d.tok[t].ival > 0)
		r->control_version = (uint64_t)d.tok[t].ival;
	if ((t = json_obj_get(&d, 0, "published_ms")) >= 0 && d.tok[t].type == JSON_INT)
		r->published_ms = d.tok[t].ival;
	if ((t = json_obj_get(&d, 0, "last_error")) >= 0 && d.tok[t].type == JSON_STRING) {
		char tmp[1024];
		int l = json_str_copy(&d, t, tmp, sizeof tmp);
		if (l > 0) clip_utf8(r->last_error, tmp, (size_t)l, OUTBOX_ERR_MAX);
	}
	rc = 0;
out:
	json_doc_free(&d);
	return rc;
}

/* A signed decimal (printf's %lld, without printf: a row is written per
 * event published). */
static void put_dec(struct buf *out, int64_t v)
{
	char t[24], *w = t + sizeof t;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do *--w = (char)('0' + u % 10); while ((u /= 10) != 0);
	if (v < 0) *--w = '-';
	buf_add(out, w, (size_t)(t + sizeof t - w));
}

void outbox_row_encode(struct buf *out, const struct outbox_row *r)
{
	buf_adds(out, "{\"attempts\":");
	put_dec(out, r->attempts);
	buf_adds(out, ",\"control_version\":");
	if (r->control_version) {
		char t[24], *w = t + sizeof t;
		uint64_t u = r->control_version;
		do *--w = (char)('0' + u % 10); while ((u /= 10) != 0);
		buf_add(out, w, (size_t)(t + sizeof t - w));
	} else buf_adds(out, "null");
	buf_adds(out, ",\"event_id\":");
	json_put_string(out, r->event_id, strlen(r->event_id));
	buf_adds(out, ",\"last_error\":");
	if (r->last_error[0]) json_put_string(out, r->last_error, strlen(r->last_error));
	else buf_adds(out, "null");
	buf_adds(out, ",\"published_ms\":");
	if (r->published_ms) put_dec(out, r->published_ms);
	else buf_adds(out, "null");
	buf_addc(out, '}');
}

int outbox_key_pos(const MDB_val *k, uint64_t *pos)
{
	if (k->mv_size != 8) return -1;
	*pos = be64_get(k->mv_data);
	return 0;
}

static int row_put(MDB_txn *t, struct store *s, int db, uint64_t pos, const struct outbox_row *r,
                   unsigned flags)
{
	unsigned char kb[8];
	struct buf b;
	be64_put(kb, pos);
	buf_init(&b);
	outbox_row_encode(&b, r);
	int rc = store_put(t, s, db, kb, 8, b.data, b.len, flags);
	buf_free(&b);
	return rc;
}

int outbox_row_put(MDB_txn *t, struct store *s, int db, uint64_t pos, const struct outbox_row *r)
{
	return row_put(t, s, db, pos, r, 0);
}

int outbox_row_del(MDB_txn *t, struct store *s, int db, uint64_t pos)
{
	unsigned char kb[8];
	be64_put(kb, pos);
	return store_del(t, s, db, kb, 8);
}

int outbox_append(MDB_txn *t, struct store *s, uint64_t pos, const char *event_id)
{
	struct outbox_row r;
	memset(&r, 0, sizeof r);
	if (strlen(event_id) >= sizeof r.event_id) return MDB_BAD_VALSIZE;
	snprintf(r.event_id, sizeof r.event_id, "%s", event_id);
	return row_put(t, s, DB_OUTBOX, pos, &r, MDB_APPEND);
}

uint64_t outbox_cursor_get(MDB_txn *t, struct store *s)
{
	MDB_val v;
	if (store_get(t, s, DB_LEASES, CURSOR_KEY, strlen(CURSOR_KEY), &v) == 0 && v.mv_size == 8)
		return be64_get(v.mv_data);
	return 0;
}

int outbox_cursor_put(MDB_txn *t, struct store *s, uint64_t pos)
{
	unsigned char b[8];
	be64_put(b, pos);
	return store_put(t, s, DB_LEASES, CURSOR_KEY, strlen(CURSOR_KEY), b, 8, 0);
}

void outbox_lease_encode(struct buf *b, const struct lease_rec *l)
{
	buf_adds(b, "{\"holder\":");
	json_put_string(b, l->holder, strlen(l->holder));
	buf_printf(b, ",\"pid\":%lld,\"renewed\":%lld,\"until_ms\":%lld}", l->pid, l->renewed, l->until_ms);
}

int outbox_lease_decode(const void *p, size_t n, struct lease_rec *l)
{
	struct json_doc d = {0};
	int rc = -1;
	memset(l, 0, sizeof *l);
	if (json_parse(&d, p, n, 4) == 0 && d.tok[0].type == JSON_OBJECT) {
		int k;
		if ((k = json_obj_get(&d, 0, "holder")) >= 0 && d.tok[k].type == JSON_STRING)
			json_str_copy(&d, k, l->holder, sizeof l->holder);
		if ((k = json_obj_get(&d, 0, "pid")) >= 0 && d.tok[k].type == JSON_INT) l->pid = d.tok[k].ival;
		if ((k = json_obj_get(&d, 0, "until_ms")) >= 0 && d.tok[k].type == JSON_INT) l->until_ms = d.tok[k].ival;
		if ((k = json_obj_get(&d, 0, "renewed")) >= 0 && d.tok[k].type == JSON_INT) l->renewed = d.tok[k].ival;
		rc = 0;
	}
	json_doc_free(&d);
	return rc;
}

int outbox_lease_get(MDB_txn *t, struct store *s, struct lease_rec *l)
{
	MDB_val v;
	int rc = store_get(t, s, DB_LEASES, LEASE_KEY, strlen(LEASE_KEY), &v);
	if (rc) { memset(l, 0, sizeof *l); return rc; }
	return outbox_lease_decode(v.mv_data, v.mv_size, l) ? MDB_CORRUPTED : 0;
}

int outbox_lease_put(MDB_txn *t, struct store *s, const struct lease_rec *l)
{
	struct buf b;
	buf_init(&b);
	outbox_lease_encode(&b, l);
	int rc = store_put(t, s, DB_LEASES, LEASE_KEY, strlen(LEASE_KEY), b.data, b.len, 0);
	buf_free(&b);
	return rc;
}

int outbox_lease_del(MDB_txn *t, struct store *s)
{
	return store_del(t, s, DB_LEASES, LEASE_KEY, strlen(LEASE_KEY));
}

void outbox_meta_sync(struct store *s, int on)
{
	mdb_env_set_flags(s->env, MDB_NOMETASYNC, on ? 0 : 1);
}

int outbox_commit_relaxed(MDB_txn *t, struct store *s)
{
	outbox_meta_sync(s, 0);
	int rc = store_commit(t);
	outbox_meta_sync(s, 1);
	return rc;
}
