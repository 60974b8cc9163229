/* events.c: the events, stream, rooms, room_extremities and room_servers
 * records (layouts in events.h). */
#include <stdlib.h>
#include <string.h>
#include "store/events.h"
#include "core/xalloc.h"

int store_event_decode(const void *v, size_t n, struct event_rec *r)
{
	const unsigned char *p = v;
	if (n < 12) return MDB_CORRUPTED;
	r->pos = be64_get(p);
	r->room_version = p[8];
	r->redacted = p[9] & 1;
	r->room_len = be16_get(p + 10);
	if (12 + r->room_len > n) return MDB_CORRUPTED;
	r->room_id = (const char *)p + 12;
	r->pdu = (const char *)p + 12 + r->room_len;
	r->pdu_len = n - 12 - r->room_len;
	return 0;
}

int store_event_get(MDB_txn *t, struct store *s, const char *event_id, struct event_rec *r)
{
	MDB_val v;
	int rc = store_get(t, s, DB_EVENTS, event_id, strlen(event_id), &v);
	return rc ? rc : store_event_decode(v.mv_data, v.mv_size, r);
}

int store_event_exists(MDB_txn *t, struct store *s, const char *event_id)
{
	MDB_val v;
	return store_get(t, s, DB_EVENTS, event_id, strlen(event_id), &v) == 0;
}

int store_event_put(MDB_txn *t, struct store *s, const char *event_id, uint64_t pos,
                    int room_version, int redacted, const char *room_id,
                    const void *pdu, size_t n)
{
	size_t rl = strlen(room_id);
	if (rl > 65535) return MDB_BAD_VALSIZE;
	/* written in place: the PDU is copied once, into the map */
	MDB_val key = { strlen(event_id), (void *)event_id }, val = { 12 + rl + n, NULL };
	int rc = mdb_put(t, s->dbi[DB_EVENTS], &key, &val, MDB_RESERVE);
	if (rc) return rc;
	unsigned char *p = val.mv_data;
	be64_put(p, pos);
	p[8] = (unsigned char)room_version;
	p[9] = redacted ? 1 : 0;
	be16_put(p + 10, (uint16_t)rl);
	memcpy(p + 12, room_id, rl);
	if (n) memcpy(p + 12 + rl, pdu, n);
	return 0;
}

int store_stream_put(MDB_txn *t, struct store *s, uint64_t pos, const char *event_id)
{
	unsigned char k[8];
	be64_put(k, pos);
	return store_put(t, s, DB_STREAM, k, 8, event_id, strlen(event_id), MDB_APPEND);
}

uint64_t store_stream_head(MDB_txn *t, struct store *s)
{
	struct store_iter it;
	uint64_t head = 0;
	if (store_iter_open(&it, t, s, DB_STREAM, NULL, 0) == 0) {
		store_iter_reverse(&it);
		if (store_iter_next(&it) == 1 && it.k.mv_size == 8) head = be64_get(it.k.mv_data);
	}
	store_iter_close(&it);
	return head;
}

int store_stream_open(struct store_stream *ss, MDB_txn *t, struct store *s, uint64_t from)
{
	int rc = store_iter_open(&ss->it, t, s, DB_STREAM, NULL, 0);
	be64_put(ss->from, from);
	store_iter_from(&ss->it, ss->from, 8);
	ss->pos = 0;
	ss->event_id = NULL;
	ss->id_len = 0;
	return rc;
}

int store_stream_next(struct store_stream *ss)
{
	int r;
	while ((r = store_iter_next(&ss->it)) == 1) {
		if (ss->it.k.mv_size != 8 || ss->it.v.mv_size == 0) continue;
		ss->pos = be64_get(ss->it.k.mv_data);
		ss->event_id = ss->it.v.mv_data;
		ss->id_len = ss->it.v.mv_size;
		return 1;
	}
	return r;
}

void store_stream_close(struct store_stream *ss)
{
	store_iter_close(&ss->it);
}

int store_room_version(MDB_txn *t, struct store *s, const char *room_id)
{
	MDB_val v;
	if (store_get(t, s, DB_ROOMS, room_id, strlen(room_id), &v) || v.mv_size < 1) return 0;
	return ((const unsigned char *)v.mv_data)[0];
}

int store_room_get(MDB_txn *t, struct store *s, const char *room_id, int *rv,
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

int store_room_put(MDB_txn *t, struct store *s, const char *room_id, int rv,
                   uint64_t max_depth, const char *create_id)
{
	size_t il = strlen(create_id);
	if (il > 65535) return MDB_BAD_VALSIZE;
	MDB_val key = { strlen(room_id), (void *)room_id }, val = { 11 + il, NULL };
	int rc = mdb_put(t, s->dbi[DB_ROOMS], &key, &val, MDB_RESERVE);
	if (rc) return rc;
	unsigned char *r = val.mv_data;
	r[0] = (unsigned char)rv;
	be64_put(r + 1, max_depth);
	be16_put(r + 9, (uint16_t)il);
	memcpy(r + 11, create_id, il);
	return 0;
}

int store_room_raise_depth(MDB_txn *t, struct store *s, const char *room_id, uint64_t depth)
{
	MDB_val v;
	size_t rl = strlen(room_id);
	if (store_get(t, s, DB_ROOMS, room_id, rl, &v) || v.mv_size < 11 ||
	    depth <= be64_get((const unsigned char *)v.mv_data + 1))
		return 0;
	/* v points into the map: copy before the put may move it */
	unsigned char *r = (unsigned char *)xmemdup(v.mv_data, v.mv_size);
	size_t n = v.mv_size;
	be64_put(r + 1, depth);
	int rc = store_put(t, s, DB_ROOMS, room_id, rl, r, n, 0);
	free(r);
	return rc;
}

/* "a \0 b" on the heap (names have no fixed bound here). */
static char *key2(const char *a, const char *b, size_t *kn)
{
	size_t an = strlen(a), bn = strlen(b);
	char *k = xmalloc(an + 1 + bn + 1);
	*kn = store_key2(k, an + 1 + bn + 1, a, b);
	return k;
}

int store_extremity_put(MDB_txn *t, struct store *s, const char *room_id,
                        const char *event_id, uint64_t depth)
{
	size_t kn;
	char *k = key2(room_id, event_id, &kn);
	unsigned char d8[8];
	be64_put(d8, depth);
	int rc = store_put(t, s, DB_ROOM_EXTREMITIES, k, kn, d8, 8, 0);
	free(k);
	return rc;
}

int store_extremity_del(MDB_txn *t, struct store *s, const char *room_id, const char *event_id)
{
	size_t kn;
	char *k = key2(room_id, event_id, &kn);
	int rc = store_del(t, s, DB_ROOM_EXTREMITIES, k, kn);
	free(k);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_room_server_seen(MDB_txn *t, struct store *s, const char *room_id,
                           const char *server, long long now_ms, long long min_gap_ms)
{
	if (!server[0]) return 0;
	size_t kn;
	char *k = key2(room_id, server, &kn);
	MDB_val old;
	int rc = 0;
	if (min_gap_ms > 0 && store_get(t, s, DB_ROOM_SERVERS, k, kn, &old) == 0 && old.mv_size == 8 &&
	    (long long)be64_get(old.mv_data) + min_gap_ms > now_ms)
		goto out;
	unsigned char v[8];
	be64_put(v, (uint64_t)now_ms);
	rc = store_put(t, s, DB_ROOM_SERVERS, k, kn, v, 8, 0);
out:
	free(k);
	return rc;
}

int store_room_servers(MDB_txn *t, struct store *s, const char *room_id,
                       struct room_server *out, int max)
{
	size_t pl = strlen(room_id) + 1;     /* the room and its NUL */
	struct store_iter it;
	int n = 0, r = 0;
	if (max <= 0) return 0;
	if (store_iter_open(&it, t, s, DB_ROOM_SERVERS, room_id, pl)) return -1;
	while (n < max && (r = store_iter_next(&it)) == 1) {
		size_t sl = it.k.mv_size - pl;
		if (sl == 0 || sl >= sizeof out[n].name) continue;
		memcpy(out[n].name, (const char *)it.k.mv_data + pl, sl);
		out[n].name[sl] = 0;
		out[n].last_seen_ms = it.v.mv_size >= 8 ? be64_get(it.v.mv_data) : 0;
		n++;
	}
	store_iter_close(&it);
	return r < 0 ? -1 : n;
}
