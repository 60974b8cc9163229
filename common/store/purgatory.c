/* purgatory.c (store): how an accepted PDU becomes rows of the event store,
 * and the purgatory, missing_index, expired and rejects records (see
 * purgatory.h). Every function works inside the caller's transaction so
 * that purgatoryd can commit a whole loop turn at once. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/purgatory.h"
#include "matrix/b64.h"
#include "core/log.h"
#include "core/xalloc.h"

static int tok_copy(const struct json_doc *d, int t, char *out, size_t cap)
{
	if (t < 0 || d->tok[t].type != JSON_STRING) return -1;
	return json_str_copy(d, t, out, cap) < 0 ? -1 : 0;
}

void purg_server_of(const char *user, size_t n, char *out, size_t cap)
{
	const char *c = memchr(user, ':', n);
	size_t m = c ? n - (size_t)(c + 1 - user) : 0;
	if (!c || m >= cap) { out[0] = 0; return; }
	memcpy(out, c + 1, m);
	out[m] = 0;
}

static int add_dep(struct pdu_info *pi, const struct json_doc *d, int t)
{
	char id[PDU_EVENT_ID_MAX];
	if (tok_copy(d, t, id, sizeof id) < 0 || id[0] != '$') return -1;
	for (int i = 0; i < pi->ndeps; i++)
		if (!strcmp(pi->deps[i], id)) return 0;
	if (pi->ndeps >= PURG_DEPS_MAX) return -1;
	memcpy(pi->deps[pi->ndeps++], id, sizeof id);
	return 0;
}

int purg_pdu_parse(struct json_doc *d, const char *pdu, size_t n, struct pdu_info *pi,
                   char *err, size_t errlen)
{
	char sender[PURG_NAME_MAX];
	pi->room_id[0] = pi->sender_server[0] = pi->origin[0] = pi->type[0] = 0;
	pi->is_create = pi->create_rv = 0;
	pi->depth = 0;
	pi->ndeps = pi->nprev = 0;
	if (json_parse(d, pdu, n, JSON_MAX_DEPTH_DEFAULT) < 0) {
		snprintf(err, errlen, "PDU is not strict JSON: %s at byte %u",
		         json_err_str(d->err), d->err_off);
		return -1;
	}
	if (d->tok[0].type != JSON_OBJECT) { snprintf(err, errlen, "PDU is not an object"); return -1; }
	if (tok_copy(d, json_obj_get(d, 0, "room_id"), pi->room_id, sizeof pi->room_id) < 0) {
		snprintf(err, errlen, "PDU has no string room_id"); return -1;
	}
	if (tok_copy(d, json_obj_get(d, 0, "sender"), sender, sizeof sender) < 0) {
		snprintf(err, errlen, "PDU has no string sender"); return -1;
	}
	purg_server_of(sender, strlen(sender), pi->sender_server, sizeof pi->sender_server);
	(void)tok_copy(d, json_obj_get(d, 0, "origin"), pi->origin, sizeof pi->origin);
	if (tok_copy(d, json_obj_get(d, 0, "type"), pi->type, sizeof pi->type) < 0) {
		snprintf(err, errlen, "PDU has no string type"); return -1;
	}
	int t = json_obj_get(d, 0, "depth");
	if (t >= 0 && d->tok[t].type == JSON_INT) pi->depth = d->tok[t].ival;
	int sk = json_obj_get(d, 0, "state_key");
	if (!strcmp(pi->type, "m.room.create") && sk >= 0 && json_str_eq(d, sk, "")) {
		pi->is_create = 1;
		int c = json_obj_get(d, 0, "content");
		int rv = c >= 0 && d->tok[c].type == JSON_OBJECT ? json_obj_get(d, c, "room_version") : -1;
		char v[16];
		if (rv >= 0 && tok_copy(d, rv, v, sizeof v) == 0) pi->create_rv = atoi(v);
		else pi->create_rv = 1;     /* Matrix: absent room_version means "1" */
	}
	static const char *const lists[2] = { "prev_events", "auth_events" };
	for (int l = 0; l < 2; l++) {
		int a = json_obj_get(d, 0, lists[l]);
		if (a < 0 || d->tok[a].type != JSON_ARRAY) {
			snprintf(err, errlen, "PDU has no %s array", lists[l]); return -1;
		}
		for (int e = json_first(d, a); e >= 0; e = json_next_elem(d, a, e))
			if (add_dep(pi, d, e) < 0) {
				snprintf(err, errlen, "bad or too many %s (max %d in all)", lists[l],
				         PURG_DEPS_MAX);
				return -1;
			}
		if (l == 0) pi->nprev = pi->ndeps;
	}
	return 0;
}

int purg_room_version_for(MDB_txn *t, struct store *s, const struct pdu_info *pi, int dflt)
{
	int rv = store_room_version(t, s, pi->room_id);
	if (rv > 0) return rv;
	if (pi->is_create && pi->create_rv > 0) return pi->create_rv;
	return dflt;
}

/* --- the write batch (purgatory.h) --------------------------------------- */

enum { BR_ROOM = 'R', BR_EXT = 'E', BR_SEEN = 'S' };
struct purg_brow {
	struct hmap_node hn;
	int      known;                 /* BR_ROOM: the room row exists */
	int      dirty;                 /* BR_ROOM: depth raised in this batch */
	uint64_t depth;                 /* BR_ROOM: max_depth now; BR_EXT: the row's value */
	size_t   kn;                    /* key bytes: kind, then room [\0 id] */
	char     k[];
};

void purg_batch_init(struct purg_batch *b, MDB_txn *t)
{
	memset(b, 0, sizeof *b);
	b->t = t;
}

/* key = kind | a [| \0 | b] into buf (cap bytes); its length, 0 if too long */
static size_t brow_key(char *buf, size_t cap, int kind, const char *a, const char *c)
{
	size_t an = strlen(a), cn = c ? strlen(c) + 1 : 0;
	if (1 + an + cn > cap) return 0;
	buf[0] = (char)kind;
	memcpy(buf + 1, a, an);
	if (c) { buf[1 + an] = 0; memcpy(buf + 2 + an, c, cn - 1); }
	return 1 + an + cn;
}

static struct purg_brow *brow_find(struct purg_batch *b, const char *k, size_t kn, uint64_t h)
{
	HMAP_FOR_HASH(&b->rows, h, n) {
		struct purg_brow *r = HMAP_ENTRY(n, struct purg_brow, hn);
		if (r->kn == kn && !memcmp(r->k, k, kn)) return r;
	}
	return NULL;
}

static struct purg_brow *brow_add(struct purg_batch *b, const char *k, size_t kn, uint64_t h)
{
	struct purg_brow *r = xcalloc(1, sizeof *r + kn + 1);    /* + NUL: k's names are strings */
	memcpy(r->k, k, kn);
	r->kn = kn;
	hmap_insert(&b->rows, &r->hn, h);
	b->nrows++;
	return r;
}

static void brow_del(struct purg_batch *b, struct purg_brow *r)
{
	hmap_remove(&b->rows, &r->hn);
	b->nrows--;
	free(r);
}

void purg_batch_drop(struct purg_batch *b)
{
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &b->rows);
	while ((n = hmap_iter_next(&it))) free(HMAP_ENTRY(n, struct purg_brow, hn));
	hmap_free(&b->rows);
	memset(&b->rows, 0, sizeof b->rows);
	b->nrows = 0;
}

int purg_batch_flush(struct purg_batch *b, struct store *s)
{
	struct hmap_iter it;
	struct hmap_node *n;
	int rc = 0;
	hmap_iter_init(&it, &b->rows);
	while (!rc && (n = hmap_iter_next(&it))) {
		struct purg_brow *r = HMAP_ENTRY(n, struct purg_brow, hn);
		const char *a = r->k + 1;
		if (r->k[0] == BR_ROOM && r->dirty)
			rc = store_room_raise_depth(b->t, s, a, r->depth);
		else if (r->k[0] == BR_EXT)
			rc = store_extremity_put(b->t, s, a, a + strlen(a) + 1, r->depth);
	}
	purg_batch_drop(b);
	return rc;
}

/* The key buffer: a room ID and an event ID or server name, each bounded
 * by the parse (PURG_NAME_MAX, PDU_EVENT_ID_MAX); too long = unbatched. */
#define BKEY_MAX (2 + PURG_NAME_MAX + PURG_NAME_MAX + PDU_EVENT_ID_MAX)

static int batch_raise_depth(struct purg_batch *b, struct store *s, const char *room,
                             uint64_t depth)
{
	char k[BKEY_MAX];
	size_t kn = b ? brow_key(k, sizeof k, BR_ROOM, room, NULL) : 0;
	if (!kn) return store_room_raise_depth(b ? b->t : NULL, s, room, depth);
	uint64_t h = hmap_hash(k, kn);
	struct purg_brow *r = brow_find(b, k, kn, h);
	if (!r) {
		r = brow_add(b, k, kn, h);
		r->known = store_room_get(b->t, s, room, NULL, &r->depth, NULL, 0) == 0;
	}
	/* an unknown room is left alone, as store_room_raise_depth does */
	if (r->known && depth > r->depth) { r->depth = depth; r->dirty = 1; }
	return 0;
}

static void batch_room_forget(struct purg_batch *b, const char *room)
{
	char k[BKEY_MAX];
	size_t kn = b ? brow_key(k, sizeof k, BR_ROOM, room, NULL) : 0;
	struct purg_brow *r = kn ? brow_find(b, k, kn, hmap_hash(k, kn)) : NULL;
	if (r) brow_del(b, r);
}

static int batch_ext_put(struct purg_batch *b, MDB_txn *t, struct store *s, const char *room,
                         const char *id, uint64_t depth)
{
	char k[BKEY_MAX];
	size_t kn = b ? brow_key(k, sizeof k, BR_EXT, room, id) : 0;
	if (!kn) return store_extremity_put(t, s, room, id, depth);
	uint64_t h = hmap_hash(k, kn);
	struct purg_brow *r = brow_find(b, k, kn, h);
	if (!r) r = brow_add(b, k, kn, h);
	r->depth = depth;
	return 0;
}

static int batch_ext_del(struct purg_batch *b, MDB_txn *t, struct store *s, const char *room,
                         const char *id)
{
	char k[BKEY_MAX];
	size_t kn = b ? brow_key(k, sizeof k, BR_EXT, room, id) : 0;
	struct purg_brow *r = kn ? brow_find(b, k, kn, hmap_hash(k, kn)) : NULL;
	if (r) {
		/* put in this batch, so stored in this txn: no row before it */
		brow_del(b, r);
		return 0;
	}
	return store_extremity_del(t, s, room, id);
}

/* room_servers with the txn's one now: a pair handled once in the batch is
 * fresh for the rest of it (written with now, or found within min_gap). */
static int batch_server_seen(struct purg_batch *b, MDB_txn *t, struct store *s,
                             const char *room, const char *server, long long now)
{
	char k[BKEY_MAX];
	size_t kn = b && server[0] ? brow_key(k, sizeof k, BR_SEEN, room, server) : 0;
	if (!kn) return store_room_server_seen(t, s, room, server, now, 60000);
	uint64_t h = hmap_hash(k, kn);
	if (brow_find(b, k, kn, h)) return 0;
	int rc = store_room_server_seen(t, s, room, server, now, 60000);
	if (!rc) brow_add(b, k, kn, h);
	return rc;
}

int purg_store_event(MDB_txn *t, struct store *s, const struct pdu_info *pi, int rv,
                     int redacted, const char *pdu, size_t n, long long now, uint64_t *posp)
{
	return purg_store_event_b(NULL, t, s, pi, rv, redacted, pdu, n, now, posp);
}

int purg_store_event_b(struct purg_batch *b, MDB_txn *t, struct store *s,
                       const struct pdu_info *pi, int rv, int redacted, const char *pdu,
                       size_t n, long long now, uint64_t *posp)
{
	int rc = store_event_exists(t, s, pi->event_id);
	if (rc == 1) return 1;
	if (b && b->t != t) b = NULL;       /* not this txn's batch: write at once */
	uint64_t pos, depth = (uint64_t)(pi->depth > 0 ? pi->depth : 0);
	if ((rc = store_seq_take(t, s, "stream_next", &pos))) return rc;
	if ((rc = store_event_put(t, s, pi->event_id, pos, rv, redacted, pi->room_id, pdu, n))) return rc;
	if ((rc = store_stream_put(t, s, pos, pi->event_id))) return rc;

	/* rooms: the create event names the version; later events raise max_depth */
	if (pi->is_create) {
		batch_room_forget(b, pi->room_id);
		rc = store_room_put(t, s, pi->room_id,
		                    pi->create_rv > 0 && pi->create_rv < 256 ? pi->create_rv : rv,
		                    depth, pi->event_id);
	} else if (pi->depth > 0)
		rc = b ? batch_raise_depth(b, s, pi->room_id, depth)
		       : store_room_raise_depth(t, s, pi->room_id, depth);
	if (rc) return rc;

	/* forward extremities: this event is one, its parents no longer are */
	if ((rc = batch_ext_put(b, t, s, pi->room_id, pi->event_id, depth))) return rc;
	for (int i = 0; i < pi->nprev; i++)
		if ((rc = batch_ext_del(b, t, s, pi->room_id, pi->deps[i]))) return rc;

	/* last_seen only needs minute precision: skip writes within a minute */
	if ((rc = batch_server_seen(b, t, s, pi->room_id, pi->sender_server, now))) return rc;
	if (pi->origin[0] && strcmp(pi->origin, pi->sender_server) &&
	    (rc = batch_server_seen(b, t, s, pi->room_id, pi->origin, now)))
		return rc;

	if ((rc = outbox_append(t, s, pos, pi->event_id))) return rc;
	if (posp) *posp = pos;
	return 0;
}

int purg_missing(MDB_txn *t, struct store *s, const struct pdu_info *pi,
                 char missing[][PDU_EVENT_ID_MAX])
{
	int n = 0;
	for (int i = 0; i < pi->ndeps; i++)
		if (!store_event_exists(t, s, pi->deps[i]))
			memcpy(missing[n++], pi->deps[i], PDU_EVENT_ID_MAX);
	return n;
}

static void put_str(struct buf *b, const char *s)
{
	json_put_string(b, s, strlen(s));
}

int purg_reject_put(MDB_txn *t, struct store *s, const char *event_id, const char *reason,
                    const char *message, const char *from, const void *bytes, size_t n,
                    long long now)
{
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"at_ms\":");
	buf_printf(&b, "%lld", now);
	buf_adds(&b, ",\"bytes_b64\":\"");
	buf_reserve(&b, b64_enc_len(n) + 8);
	b.len += b64_encode(b.data + b.len, bytes, n);
	buf_adds(&b, "\",\"event_id\":"); put_str(&b, event_id ? event_id : "");
	buf_adds(&b, ",\"from\":"); put_str(&b, from ? from : "");
	buf_adds(&b, ",\"message\":"); put_str(&b, message ? message : "");
	buf_adds(&b, ",\"reason\":"); put_str(&b, reason ? reason : "");
	buf_addc(&b, '}');
	uint64_t seq;
	int rc = store_seq_take(t, s, "rejects_next", &seq);
	unsigned char k[8];
	be64_put(k, seq);
	if (!rc) rc = store_put(t, s, DB_REJECTS, k, 8, b.data, b.len, 0);
	buf_free(&b);
	return rc;
}

/* at_ms of a reject row: it leads the JSON ({"at_ms":N,...}, put above) */
static long long reject_at_ms(const MDB_val *v)
{
	static const char pre[] = "{\"at_ms\":";
	size_t pl = sizeof pre - 1;
	if (v->mv_size <= pl || memcmp(v->mv_data, pre, pl)) return 0;   /* unreadable: oldest */
	long long ms = 0;
	for (size_t i = pl; i < v->mv_size; i++) {
		char c = ((const char *)v->mv_data)[i];
		if (c < '0' || c > '9') break;
		ms = ms * 10 + (c - '0');
	}
	return ms;
}

long long purg_reject_oldest_ms(MDB_txn *t, struct store *s)
{
	struct store_iter it;
	long long ms = -1;
	if (store_iter_open(&it, t, s, DB_REJECTS, NULL, 0)) return -1;
	if (store_iter_next(&it) == 1) ms = reject_at_ms(&it.v);
	store_iter_close(&it);
	return ms;
}

int purg_rejects_prune(MDB_txn *t, struct store *s, long long before_ms, int max, int *deleted)
{
	struct store_iter it;
	int rc;
	*deleted = 0;
	if ((rc = store_iter_open(&it, t, s, DB_REJECTS, NULL, 0))) return rc;
	while (*deleted < max && store_iter_next(&it) == 1) {
		if (reject_at_ms(&it.v) >= before_ms) break;
		if (store_iter_del(&it)) break;
		(*deleted)++;
	}
	rc = it.rc;                 /* 0, or the LMDB error of the walk or a delete */
	store_iter_close(&it);
	return rc;
}

/* ---- held events: purgatory, missing_index, expired ---- */

#define HOLD_FORMAT 1
#define HOLD_FIXED  (3 + 4 + 4 * 8)          /* bytes before the first str */
#define HOLD_OFF_ATTEMPTS 7                  /* u64 attempts, then u64 next_try_ms */

static void put_bstr(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	unsigned char l[2];
	if (n > 0xffff) n = 0xffff;
	be16_put(l, (uint16_t)n);
	buf_add(b, l, 2);
	buf_add(b, s, n);
}

void purg_hold_encode(struct buf *b, const struct hold_rec *h)
{
	unsigned char f[HOLD_FIXED];
	int nm = h->nmissing < 0 ? 0 : h->nmissing > PURG_DEPS_MAX ? PURG_DEPS_MAX : h->nmissing;
	uint32_t rv = (uint32_t)h->room_version;
	f[0] = HOLD_FORMAT;
	f[1] = h->redacted ? 1 : 0;
	f[2] = (unsigned char)nm;
	f[3] = (unsigned char)(rv >> 24); f[4] = (unsigned char)(rv >> 16);
	f[5] = (unsigned char)(rv >> 8);  f[6] = (unsigned char)rv;
	be64_put(f + 7, (uint64_t)h->attempts);
	be64_put(f + 15, (uint64_t)h->next_try_ms);
	be64_put(f + 23, (uint64_t)h->first_seen_ms);
	be64_put(f + 31, (uint64_t)h->expired_ms);
	buf_add(b, f, sizeof f);
	put_bstr(b, h->room_id);
	put_bstr(b, h->from);
	put_bstr(b, h->reason);
	for (int i = 0; i < nm; i++) put_bstr(b, h->missing[i]);
	buf_add(b, h->pdu, h->pdu_len);
}

/* A str at *off into out[cap] (NUL-terminated): -1 if it runs past the
 * value or does not fit. */
static int get_bstr(const unsigned char *p, size_t n, size_t *off, char *out, size_t cap)
{
	if (*off + 2 > n) return -1;
	size_t l = be16_get(p + *off);
	if (*off + 2 + l > n || l >= cap) return -1;
	memcpy(out, p + *off + 2, l);
	out[l] = 0;
	*off += 2 + l;
	return 0;
}

static int hold_decode_bin(const unsigned char *p, size_t n, struct hold_rec *h)
{
	if (n < HOLD_FIXED || p[0] != HOLD_FORMAT || p[2] > PURG_DEPS_MAX) return -1;
	h->redacted = p[1] & 1;
	h->room_version = (int)(((uint32_t)p[3] << 24) | ((uint32_t)p[4] << 16) |
	                        ((uint32_t)p[5] << 8) | p[6]);
	h->attempts = (int64_t)be64_get(p + 7);
	h->next_try_ms = (int64_t)be64_get(p + 15);
	h->first_seen_ms = (int64_t)be64_get(p + 23);
	h->expired_ms = (int64_t)be64_get(p + 31);
	size_t off = HOLD_FIXED;
	if (get_bstr(p, n, &off, h->room_id, sizeof h->room_id) < 0 ||
	    get_bstr(p, n, &off, h->from, sizeof h->from) < 0 ||
	    get_bstr(p, n, &off, h->reason, sizeof h->reason) < 0)
		return -1;
	for (h->nmissing = 0; h->nmissing < p[2]; h->nmissing++)
		if (get_bstr(p, n, &off, h->missing[h->nmissing], PDU_EVENT_ID_MAX) < 0) return -1;
	if (off >= n) return -1;                  /* a held event always has its PDU */
	h->pdu = (const char *)p + off;
	h->pdu_len = n - off;
	return 0;
}

/* The JSON object rows were before the binary format (and what fedctl
 * --json prints): members in sorted order, the PDU embedded as is. */
void purg_hold_json(struct buf *b, const struct hold_rec *h)
{
	buf_printf(b, "{\"attempts\":%lld", (long long)h->attempts);
	if (h->reason[0]) buf_printf(b, ",\"expired_ms\":%lld", (long long)h->expired_ms);
	buf_printf(b, ",\"first_seen_ms\":%lld,\"from\":", (long long)h->first_seen_ms);
	put_str(b, h->from);
	buf_adds(b, ",\"missing\":[");
	for (int i = 0; i < h->nmissing; i++) {
		if (i) buf_addc(b, ',');
		put_str(b, h->missing[i]);
	}
	buf_printf(b, "],\"next_try_ms\":%lld,\"pdu\":", (long long)h->next_try_ms);
	buf_add(b, h->pdu, h->pdu_len);
	if (h->reason[0]) { buf_adds(b, ",\"reason\":"); put_str(b, h->reason); }
	buf_printf(b, ",\"redacted\":%s,\"room_id\":", h->redacted ? "true" : "false");
	put_str(b, h->room_id);
	buf_printf(b, ",\"room_version\":%d}", h->room_version);
}

static int64_t int_of(const struct json_doc *d, int t)
{
	return t >= 0 && d->tok[t].type == JSON_INT ? d->tok[t].ival : 0;
}

static int hold_decode_json(struct json_doc *d, const char *v, size_t n, struct hold_rec *h)
{
	memset(h, 0, offsetof(struct hold_rec, missing));
	h->nmissing = 0;
	h->reason[0] = 0;
	h->pdu = NULL; h->pdu_len = 0;
	if (json_parse(d, v, n, JSON_MAX_DEPTH_DEFAULT) < 0 || d->tok[0].type != JSON_OBJECT)
		return -1;
	if (tok_copy(d, json_obj_get(d, 0, "room_id"), h->room_id, sizeof h->room_id) < 0) return -1;
	(void)tok_copy(d, json_obj_get(d, 0, "from"), h->from, sizeof h->from);
	(void)tok_copy(d, json_obj_get(d, 0, "reason"), h->reason, sizeof h->reason);
	h->attempts = int_of(d, json_obj_get(d, 0, "attempts"));
	h->next_try_ms = int_of(d, json_obj_get(d, 0, "next_try_ms"));
	h->first_seen_ms = int_of(d, json_obj_get(d, 0, "first_seen_ms"));
	h->expired_ms = int_of(d, json_obj_get(d, 0, "expired_ms"));
	h->room_version = (int)int_of(d, json_obj_get(d, 0, "room_version"));
	int r = json_obj_get(d, 0, "redacted");
	h->redacted = r >= 0 && d->tok[r].type == JSON_TRUE;
	int m = json_obj_get(d, 0, "missing");
	if (m >= 0 && d->tok[m].type == JSON_ARRAY)
		for (int e = json_first(d, m); e >= 0 && h->nmissing < PURG_DEPS_MAX;
		     e = json_next_elem(d, m, e))
			if (tok_copy(d, e, h->missing[h->nmissing], PDU_EVENT_ID_MAX) == 0)
				h->nmissing++;
	int p = json_obj_get(d, 0, "pdu");
	if (p < 0 || d->tok[p].type != JSON_OBJECT) return -1;
	h->pdu = v + d->tok[p].start;
	h->pdu_len = d->tok[p].end - d->tok[p].start;
	return 0;
}

int purg_hold_decode(struct json_doc *d, const void *v, size_t n, struct hold_rec *h)
{
	const unsigned char *p = v;
	if (n && p[0] == '{') return hold_decode_json(d, v, n, h);
	return hold_decode_bin(p, n, h);
}

int purg_hold_get(MDB_txn *t, struct store *s, int db, const char *event_id,
                  struct json_doc *d, struct hold_rec *h)
{
	MDB_val v;
	int rc = store_get(t, s, db, event_id, strlen(event_id), &v);
	if (rc) return rc;
	return purg_hold_decode(d, v.mv_data, v.mv_size, h) < 0 ? MDB_CORRUPTED : 0;
}

int purg_hold_put(MDB_txn *t, struct store *s, const char *event_id, const struct hold_rec *h,
                  struct buf *scratch)
{
	buf_reset(scratch);
	purg_hold_encode(scratch, h);
	int rc = store_put(t, s, DB_PURGATORY, event_id, strlen(event_id), scratch->data,
	                   scratch->len, 0);
	unsigned char k[2 * PDU_EVENT_ID_MAX];
	for (int i = 0; i < h->nmissing && !rc; i++) {
		size_t kn = store_key2((char *)k, sizeof k, h->missing[i], event_id);
		rc = store_put(t, s, DB_MISSING_INDEX, k, kn, "", 0, 0);
	}
	return rc;
}

int purg_hold_del(MDB_txn *t, struct store *s, const char *event_id, const struct hold_rec *h)
{
	unsigned char k[2 * PDU_EVENT_ID_MAX];
	int rc;
	for (int i = 0; i < h->nmissing; i++) {
		size_t kn = store_key2((char *)k, sizeof k, h->missing[i], event_id);
		if (kn && (rc = store_del(t, s, DB_MISSING_INDEX, k, kn)) && rc != MDB_NOTFOUND)
			return rc;
	}
	rc = store_del(t, s, DB_PURGATORY, event_id, strlen(event_id));
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int purg_hold_set_pacing(MDB_txn *t, struct store *s, const char *event_id, int64_t attempts,
                         int64_t next_try_ms, struct json_doc *d, struct buf *scratch)
{
	MDB_val v;
	size_t idlen = strlen(event_id);
	int rc = store_get(t, s, DB_PURGATORY, event_id, idlen, &v);
	if (rc) return rc;
	const unsigned char *p = v.mv_data;
	buf_reset(scratch);
	if (v.mv_size >= HOLD_FIXED && p[0] == HOLD_FORMAT) {
		/* the two fields sit at fixed offsets: compare, then patch a copy
		 * (the put may move the page the value sits on) */
		if ((int64_t)be64_get(p + HOLD_OFF_ATTEMPTS) == attempts &&
		    (int64_t)be64_get(p + HOLD_OFF_ATTEMPTS + 8) == next_try_ms)
			return 1;
		buf_add(scratch, v.mv_data, v.mv_size);
		be64_put((unsigned char *)scratch->data + HOLD_OFF_ATTEMPTS, (uint64_t)attempts);
		be64_put((unsigned char *)scratch->data + HOLD_OFF_ATTEMPTS + 8, (uint64_t)next_try_ms);
	} else {
		/* an older row: rewritten in the binary format */
		struct hold_rec *h = xmalloc(sizeof *h);
		if (purg_hold_decode(d, v.mv_data, v.mv_size, h) < 0) { free(h); return MDB_CORRUPTED; }
		if (h->attempts == attempts && h->next_try_ms == next_try_ms) { free(h); return 1; }
		h->attempts = attempts;
		h->next_try_ms = next_try_ms;
		purg_hold_encode(scratch, h);
		free(h);
	}
	return store_put(t, s, DB_PURGATORY, event_id, idlen, scratch->data, scratch->len, 0);
}

void purg_idlist_push(struct purg_idlist *l, const char *id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
	}
	snprintf(l->v[l->n++], PDU_EVENT_ID_MAX, "%s", id);
}

int purg_waiters(MDB_txn *t, struct store *s, const char *missing_id, struct purg_idlist *l)
{
	unsigned char pre[PDU_EVENT_ID_MAX + 1];
	size_t ml = strlen(missing_id);
	if (ml >= PDU_EVENT_ID_MAX) return 0;
	memcpy(pre, missing_id, ml);
	pre[ml] = 0;
	struct store_iter it;
	int rc = store_iter_open(&it, t, s, DB_MISSING_INDEX, pre, ml + 1);
	if (rc) return rc;
	while (store_iter_next(&it) == 1) {
		size_t wl = it.k.mv_size - (ml + 1);
		char id[PDU_EVENT_ID_MAX];
		if (wl >= sizeof id) continue;
		memcpy(id, (const char *)it.k.mv_data + ml + 1, wl);
		id[wl] = 0;
		purg_idlist_push(l, id);
	}
	rc = it.rc;
	store_iter_close(&it);
	return rc;
}

int purg_waiter_del(MDB_txn *t, struct store *s, const char *missing_id, const char *waiting_id)
{
	unsigned char k[2 * PDU_EVENT_ID_MAX];
	size_t kn = store_key2((char *)k, sizeof k, missing_id, waiting_id);
	int rc = kn ? store_del(t, s, DB_MISSING_INDEX, k, kn) : 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int purg_expired_put(MDB_txn *t, struct store *s, const char *event_id, const struct hold_rec *h,
                     struct buf *scratch)
{
	buf_reset(scratch);
	purg_hold_encode(scratch, h);
	return store_put(t, s, DB_EXPIRED, event_id, strlen(event_id), scratch->data, scratch->len, 0);
}

/* ---- rooms: forward extremities, known servers ---- */

int purg_extremities(MDB_txn *t, struct store *s, const char *room_id,
                     char ids[][PDU_EVENT_ID_MAX], int64_t *depths, int max)
{
	size_t plen = strlen(room_id) + 1;
	int n = 0;
	struct store_iter it;
	if (max <= 0) return 0;
	for (int i = 0; i < max; i++) ids[i][0] = 0;
	if (store_iter_open(&it, t, s, DB_ROOM_EXTREMITIES, room_id, plen)) return 0;
	while (store_iter_next(&it) == 1) {
		size_t l = it.k.mv_size - plen;
		if (l >= PDU_EVENT_ID_MAX || it.v.mv_size != 8) continue;
		int64_t dep = (int64_t)be64_get(it.v.mv_data);
		int at;
		if (n < max) at = n++;
		else if (dep > depths[max - 1]) at = max - 1;
		else continue;
		memcpy(ids[at], (const char *)it.k.mv_data + plen, l);
		ids[at][l] = 0;
		depths[at] = dep;
		/* bubble into place, deepest first */
		for (int i = at; i > 0 && depths[i] > depths[i - 1]; i--) {
			char tmp[PDU_EVENT_ID_MAX]; int64_t td = depths[i];
			memcpy(tmp, ids[i], sizeof tmp);
			memcpy(ids[i], ids[i - 1], sizeof tmp);
			memcpy(ids[i - 1], tmp, sizeof tmp);
			depths[i] = depths[i - 1]; depths[i - 1] = td;
		}
	}
	/* an LMDB error part way: what was read so far, as before */
	store_iter_close(&it);
	return it.rc ? 0 : n;
}

int purg_requeue_expired(MDB_txn *t, struct store *s, const char *event_id,
                         uint64_t *seq, struct buf *pdu)
{
	struct json_doc d = { 0 };
	struct hold_rec *h = xmalloc(sizeof *h);
	int rc = purg_hold_get(t, s, DB_EXPIRED, event_id, &d, h);
	if (rc) { json_doc_free(&d); free(h); return rc; }
	buf_reset(pdu);
	buf_add(pdu, h->pdu, h->pdu_len);
	rc = store_inbox_put(t, s, h->from[0] ? h->from : "requeue", pdu->data, pdu->len, seq);
	if (!rc) rc = store_del(t, s, DB_EXPIRED, event_id, strlen(event_id));
	json_doc_free(&d);
	free(h);
	return rc;
}
