/* pstore.c: how an accepted PDU becomes rows of the event store, and the
 * purgatory/expired/rejects record codecs. Every function works inside the
 * caller's transaction so that purgatoryd can commit a whole loop turn at once. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/pstore.h"
#include "matrix/b64.h"
#include "core/log.h"

static int tok_copy(const struct json_doc *d, int t, char *out, size_t cap)
{
	if (t < 0 || d->tok[t].type != JSON_STRING) return -1;
	return json_str_copy(d, t, out, cap) < 0 ? -1 : 0;
}

void pstore_server_of(const char *user, size_t n, char *out, size_t cap)
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
	if (pi->ndeps >= PSTORE_DEPS_MAX) return -1;
	memcpy(pi->deps[pi->ndeps++], id, sizeof id);
	return 0;
}

int pstore_pdu_parse(struct json_doc *d, const char *pdu, size_t n, struct pdu_info *pi,
                     char *err, size_t errlen)
{
	char sender[PSTORE_NAME_MAX];
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
	pstore_server_of(sender, strlen(sender), pi->sender_server, sizeof pi->sender_server);
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
				         PSTORE_DEPS_MAX);
				return -1;
			}
		if (l == 0) pi->nprev = pi->ndeps;
	}
	return 0;
}

int pstore_room_version_for(MDB_txn *t, struct store *s, const struct pdu_info *pi, int dflt)
{
	int rv = store_room_version(t, s, pi->room_id);
	if (rv > 0) return rv;
	if (pi->is_create && pi->create_rv > 0) return pi->create_rv;
	return dflt;
}

int pstore_room_get(MDB_txn *t, struct store *s, const char *room_id, int *rv,
                    uint64_t *max_depth, char *create_id, size_t cap)
{
	MDB_val v;
	int rc = store_get(t, s, DB_ROOMS, room_id, strlen(room_id), &v);
	if (rc) return rc;
	const unsigned char *p = v.mv_data;
	if (v.mv_size < 11) return MDB_NOTFOUND;
	if (rv) *rv = p[0];
	if (max_depth) *max_depth = be64_get(p + 1);
	size_t l = be16_get(p + 9);
	if (create_id && cap) {
		if (11 + l > v.mv_size || l >= cap) l = 0;
		memcpy(create_id, p + 11, l);
		create_id[l] = 0;
	}
	return 0;
}

static int put_room_server(MDB_txn *t, struct store *s, const char *room, const char *server,
                           long long now)
{
	unsigned char k[2 * PSTORE_NAME_MAX], v[8];
	size_t kn = store_key2((char *)k, sizeof k, room, server);
	MDB_val old;
	if (!kn || !server[0]) return 0;
	/* last_seen only needs minute precision; skip the write otherwise */
	if (store_get(t, s, DB_ROOM_SERVERS, k, kn, &old) == 0 && old.mv_size == 8 &&
	    (long long)be64_get(old.mv_data) + 60000 > now)
		return 0;
	be64_put(v, (uint64_t)now);
	return store_put(t, s, DB_ROOM_SERVERS, k, kn, v, 8, 0);
}

int pstore_store_event(MDB_txn *t, struct store *s, const struct pdu_info *pi, int rv,
                       int redacted, const char *pdu, size_t n, long long now, uint64_t *posp)
{
	MDB_val v;
	int rc;
	size_t idlen = strlen(pi->event_id), rlen = strlen(pi->room_id);
	if (store_get(t, s, DB_EVENTS, pi->event_id, idlen, &v) == 0) return 1;
	uint64_t pos;
	if ((rc = store_seq_take(t, s, "stream_next", &pos))) return rc;
	unsigned char pk[8];
	be64_put(pk, pos);

	/* events: u64 pos | u8 rv | u8 flags | str room | pdu, written in place */
	MDB_val key = { idlen, (void *)pi->event_id }, val = { 12 + rlen + n, NULL };
	if ((rc = mdb_put(t, s->dbi[DB_EVENTS], &key, &val, MDB_RESERVE))) return rc;
	unsigned char *p = val.mv_data;
	be64_put(p, pos);
	p[8] = (unsigned char)rv;
	p[9] = redacted ? 1 : 0;
	be16_put(p + 10, (uint16_t)rlen);
	memcpy(p + 12, pi->room_id, rlen);
	memcpy(p + 12 + rlen, pdu, n);

	if ((rc = store_put(t, s, DB_STREAM, pk, 8, pi->event_id, idlen, MDB_APPEND))) return rc;

	/* rooms: the create event names the version; later events raise max_depth */
	if (pi->is_create) {
		unsigned char r[11 + PDU_EVENT_ID_MAX];
		r[0] = (unsigned char)(pi->create_rv > 0 && pi->create_rv < 256 ? pi->create_rv : rv);
		be64_put(r + 1, (uint64_t)(pi->depth > 0 ? pi->depth : 0));
		be16_put(r + 9, (uint16_t)idlen);
		memcpy(r + 11, pi->event_id, idlen);
		if ((rc = store_put(t, s, DB_ROOMS, pi->room_id, rlen, r, 11 + idlen, 0))) return rc;
	} else if (store_get(t, s, DB_ROOMS, pi->room_id, rlen, &v) == 0 && v.mv_size >= 11 &&
	           pi->depth > 0 && (uint64_t)pi->depth > be64_get((unsigned char *)v.mv_data + 1)) {
		unsigned char r[11 + PDU_EVENT_ID_MAX + 256];
		if (v.mv_size <= sizeof r) {
			memcpy(r, v.mv_data, v.mv_size);
			be64_put(r + 1, (uint64_t)pi->depth);
			if ((rc = store_put(t, s, DB_ROOMS, pi->room_id, rlen, r, v.mv_size, 0))) return rc;
		}
	}

	/* forward extremities: this event is one, its parents no longer are */
	unsigned char k[PSTORE_NAME_MAX + PDU_EVENT_ID_MAX + 2], d8[8];
	size_t kn = store_key2((char *)k, sizeof k, pi->room_id, pi->event_id);
	be64_put(d8, (uint64_t)(pi->depth > 0 ? pi->depth : 0));
	if (kn && (rc = store_put(t, s, DB_ROOM_EXTREMITIES, k, kn, d8, 8, 0))) return rc;
	for (int i = 0; i < pi->nprev; i++) {
		kn = store_key2((char *)k, sizeof k, pi->room_id, pi->deps[i]);
		if (kn && (rc = store_del(t, s, DB_ROOM_EXTREMITIES, k, kn)) && rc != MDB_NOTFOUND)
			return rc;
	}

	if ((rc = put_room_server(t, s, pi->room_id, pi->sender_server, now))) return rc;
	if (pi->origin[0] && strcmp(pi->origin, pi->sender_server) &&
	    (rc = put_room_server(t, s, pi->room_id, pi->origin, now)))
		return rc;

	char ob[160];
	int on = snprintf(ob, sizeof ob, "{\"attempts\":0,\"control_version\":0,\"event_id\":\"%s\","
	                  "\"last_error\":\"\",\"published_ms\":0}", pi->event_id);
	if ((rc = store_put(t, s, DB_OUTBOX, pk, 8, ob, (size_t)on, MDB_APPEND))) return rc;
	if (posp) *posp = pos;
	return 0;
}

int pstore_missing(MDB_txn *t, struct store *s, const struct pdu_info *pi,
                   char missing[][PDU_EVENT_ID_MAX])
{
	int n = 0;
	MDB_val v;
	for (int i = 0; i < pi->ndeps; i++)
		if (store_get(t, s, DB_EVENTS, pi->deps[i], strlen(pi->deps[i]), &v) != 0)
			memcpy(missing[n++], pi->deps[i], PDU_EVENT_ID_MAX);
	return n;
}

static void put_str(struct buf *b, const char *s)
{
	json_put_string(b, s, strlen(s));
}

int pstore_reject_put(MDB_txn *t, struct store *s, const char *event_id, const char *reason,
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

long long pstore_reject_oldest_ms(MDB_txn *t, struct store *s)
{
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(t, s->dbi[DB_REJECTS], &c)) return -1;
	long long ms = mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 ? reject_at_ms(&v) : -1;
	mdb_cursor_close(c);
	return ms;
}

int pstore_rejects_prune(MDB_txn *t, struct store *s, long long before_ms, int max, int *deleted)
{
	MDB_cursor *c;
	MDB_val k, v;
	*deleted = 0;
	int rc = mdb_cursor_open(t, s->dbi[DB_REJECTS], &c);
	if (rc) return rc;
	while (*deleted < max && (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
		if (reject_at_ms(&v) >= before_ms) break;
		if ((rc = mdb_cursor_del(c, 0))) break;
		(*deleted)++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

void pstore_hold_encode(struct buf *b, const struct hold_rec *h)
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

int pstore_hold_decode(struct json_doc *d, const char *v, size_t n, struct hold_rec *h)
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
		for (int e = json_first(d, m); e >= 0 && h->nmissing < PSTORE_DEPS_MAX;
		     e = json_next_elem(d, m, e))
			if (tok_copy(d, e, h->missing[h->nmissing], PDU_EVENT_ID_MAX) == 0)
				h->nmissing++;
	int p = json_obj_get(d, 0, "pdu");
	if (p < 0 || d->tok[p].type != JSON_OBJECT) return -1;
	h->pdu = v + d->tok[p].start;
	h->pdu_len = d->tok[p].end - d->tok[p].start;
	return 0;
}

int pstore_prefix_each(MDB_txn *t, struct store *s, int db, const void *prefix, size_t plen,
                       int (*cb)(void *arg, const MDB_val *k, const MDB_val *v), void *arg)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[db], &c);
	if (rc) return rc;
	MDB_val k = { plen, (void *)prefix }, v;
	rc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)) break;
		if (cb(arg, &k, &v)) break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

struct ext_acc { char (*ids)[PDU_EVENT_ID_MAX]; int64_t *depths; int n, max; size_t plen; };

static int ext_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct ext_acc *a = arg;
	size_t l = k->mv_size - a->plen;
	if (l >= PDU_EVENT_ID_MAX || v->mv_size != 8) return 0;
	int64_t dep = (int64_t)be64_get(v->mv_data);
	int at;
	if (a->n < a->max) at = a->n++;
	else if (dep > a->depths[a->max - 1]) at = a->max - 1;
	else return 0;
	memcpy(a->ids[at], (const char *)k->mv_data + a->plen, l);
	a->ids[at][l] = 0;
	a->depths[at] = dep;
	/* bubble into place, deepest first */
	for (int i = at; i > 0 && a->depths[i] > a->depths[i - 1]; i--) {
		char tmp[PDU_EVENT_ID_MAX]; int64_t td = a->depths[i];
		memcpy(tmp, a->ids[i], sizeof tmp);
		memcpy(a->ids[i], a->ids[i - 1], sizeof tmp);
		memcpy(a->ids[i - 1], tmp, sizeof tmp);
		a->depths[i] = a->depths[i - 1]; a->depths[i - 1] = td;
	}
	return 0;
}

int pstore_extremities(MDB_txn *t, struct store *s, const char *room_id,
                       char ids[][PDU_EVENT_ID_MAX], int64_t *depths, int max)
{
	size_t plen = strlen(room_id) + 1;
	struct ext_acc a = { ids, depths, 0, max, plen };
	if (max <= 0) return 0;
	for (int i = 0; i < max; i++) ids[i][0] = 0;
	if (pstore_prefix_each(t, s, DB_ROOM_EXTREMITIES, room_id, plen, ext_cb, &a)) return 0;
	return a.n;
}

struct srv_acc { char (*out)[PSTORE_NAME_MAX]; int n, max; size_t plen; };

static int srv_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct srv_acc *a = arg;
	size_t l = k->mv_size - a->plen;
	if (l >= PSTORE_NAME_MAX) return 0;
	memcpy(a->out[a->n], (const char *)k->mv_data + a->plen, l);
	a->out[a->n][l] = 0;
	return ++a->n >= a->max;
}

int pstore_room_servers(MDB_txn *t, struct store *s, const char *room_id,
                        char out[][PSTORE_NAME_MAX], int max)
{
	struct srv_acc a = { out, 0, max, strlen(room_id) + 1 };
	if (max <= 0) return 0;
	if (pstore_prefix_each(t, s, DB_ROOM_SERVERS, room_id, a.plen, srv_cb, &a)) return 0;
	return a.n;
}

int pstore_requeue_expired(MDB_txn *t, struct store *s, const char *event_id,
                           uint64_t *seq, struct buf *pdu)
{
	MDB_val v;
	struct json_doc d = { 0 };
	struct hold_rec *h = malloc(sizeof *h);
	int rc = store_get(t, s, DB_EXPIRED, event_id, strlen(event_id), &v);
	if (!h) log_panic("out of memory");
	if (rc) { free(h); return rc; }
	if (pstore_hold_decode(&d, v.mv_data, v.mv_size, h) < 0) {
		json_doc_free(&d); free(h);
		return MDB_CORRUPTED;
	}
	buf_reset(pdu);
	buf_add(pdu, h->pdu, h->pdu_len);
	rc = store_inbox_put(t, s, h->from[0] ? h->from : "requeue", pdu->data, pdu->len, seq);
	if (!rc) rc = store_del(t, s, DB_EXPIRED, event_id, strlen(event_id));
	json_doc_free(&d);
	free(h);
	return rc;
}
