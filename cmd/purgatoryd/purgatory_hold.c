/* purgatory_hold.c: holding events. The rows (purgatory, missing_index) are
 * the truth; memory keeps two hash indexes rebuilt from them at startup:
 * held events by ID and rooms (each with its held list, oldest first, and its
 * fetch pacing). Also expiry into the dead-letter table `expired`. */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/log.h"

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s) { h ^= (unsigned char)*s++; h *= 1099511628211ull; }
	return h;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);
	if (!p) log_panic("out of memory");
	return p;
}

struct held *held_find(struct purgatoryd *p, const char *id)
{
	if (!p->hcap) return NULL;
	for (struct held *h = p->htab[hash_str(id) & (p->hcap - 1)]; h; h = h->hnext)
		if (!strcmp(h->id, id)) return h;
	return NULL;
}

struct proom *room_find(struct purgatoryd *p, const char *room_id)
{
	if (!p->rcap) return NULL;
	for (struct proom *r = p->rtab[hash_str(room_id) & (p->rcap - 1)]; r; r = r->hnext)
		if (!strcmp(r->id, room_id)) return r;
	return NULL;
}

static void held_rehash(struct purgatoryd *p)
{
	size_t nc = p->hcap ? p->hcap * 2 : 1024;
	struct held **nt = xcalloc(nc, sizeof *nt);
	for (size_t i = 0; i < p->hcap; i++)
		for (struct held *h = p->htab[i], *n; h; h = n) {
			n = h->hnext;
			size_t b = hash_str(h->id) & (nc - 1);
			h->hnext = nt[b]; nt[b] = h;
		}
	free(p->htab);
	p->htab = nt; p->hcap = nc;
}

static void room_rehash(struct purgatoryd *p)
{
	size_t nc = p->rcap ? p->rcap * 2 : 64;
	struct proom **nt = xcalloc(nc, sizeof *nt);
	for (size_t i = 0; i < p->rcap; i++)
		for (struct proom *r = p->rtab[i], *n; r; r = n) {
			n = r->hnext;
			size_t b = hash_str(r->id) & (nc - 1);
			r->hnext = nt[b]; nt[b] = r;
		}
	free(p->rtab);
	p->rtab = nt; p->rcap = nc;
}

struct proom *room_get(struct purgatoryd *p, const char *room_id)
{
	struct proom *r = room_find(p, room_id);
	if (r) return r;
	if (p->nrooms + 1 > p->rcap) room_rehash(p);
	size_t l = strlen(room_id);
	r = xcalloc(1, sizeof *r + l + 1);
	memcpy(r->id, room_id, l + 1);
	size_t b = hash_str(room_id) & (p->rcap - 1);
	r->hnext = p->rtab[b]; p->rtab[b] = r;
	p->nrooms++;
	*p->g_rooms = (int64_t)p->nrooms;
	return r;
}

static void room_free_if_idle(struct purgatoryd *p, struct proom *r)
{
	if (r->nheld || r->inflight) return;
	struct proom **pp = &p->rtab[hash_str(r->id) & (p->rcap - 1)];
	while (*pp && *pp != r) pp = &(*pp)->hnext;
	if (*pp) *pp = r->hnext;
	if (r->dirty) p->ndirty--;
	free(r->recent);
	free(r);
	p->nrooms--;
	*p->g_rooms = (int64_t)p->nrooms;
}

struct held *held_add(struct purgatoryd *p, const char *id, const char *room_id, long long first_seen)
{
	struct held *h = held_find(p, id);
	if (h) return h;
	if (p->nheld + 1 > p->hcap) held_rehash(p);
	struct proom *r = room_get(p, room_id);
	h = xcalloc(1, sizeof *h);
	snprintf(h->id, sizeof h->id, "%s", id);
	h->room = r;
	h->first_seen_ms = first_seen;
	size_t b = hash_str(id) & (p->hcap - 1);
	h->hnext = p->htab[b]; p->htab[b] = h;
	h->rprev = r->tail;
	if (r->tail) r->tail->rnext = h; else r->head = h;
	r->tail = h;
	if (!r->nheld || first_seen < r->oldest_ms) r->oldest_ms = first_seen;
	r->nheld++;
	p->nheld++;
	*p->g_held = (int64_t)p->nheld;
	return h;
}

void held_remove(struct purgatoryd *p, struct held *h)
{
	struct held **pp = &p->htab[hash_str(h->id) & (p->hcap - 1)];
	while (*pp && *pp != h) pp = &(*pp)->hnext;
	if (*pp) *pp = h->hnext;
	struct proom *r = h->room;
	if (h->rprev) h->rprev->rnext = h->rnext; else r->head = h->rnext;
	if (h->rnext) h->rnext->rprev = h->rprev; else r->tail = h->rprev;
	r->nheld--;
	p->nheld--;
	*p->g_held = (int64_t)p->nheld;
	free(h);
	room_free_if_idle(p, r);
}

void room_dirty(struct purgatoryd *p, struct proom *r)
{
	if (r->dirty) return;
	r->dirty = 1;
	p->ndirty++;
}

/* Only the dirty rooms' held rows are read, and only those whose stored
 * values differ are written: one attempt costs one pass over its room. */
void purgatory_persist_rooms(struct purgatoryd *p, struct tx *x)
{
	struct store *s = p->d->st;
	size_t rewritten = 0;
	for (size_t i = 0; i < p->rcap && p->ndirty; i++)
		for (struct proom *r = p->rtab[i]; r && p->ndirty; r = r->hnext) {
			if (!r->dirty) continue;
			r->dirty = 0;
			p->ndirty--;
			for (struct held *h = r->head; h; h = h->rnext) {
				MDB_val v;
				if (store_get(x->t, s, DB_PURGATORY, h->id, strlen(h->id), &v) ||
				    pstore_hold_decode(&p->doc, v.mv_data, v.mv_size, p->hr) < 0)
					continue;
				if (p->hr->attempts == r->attempts && p->hr->next_try_ms == r->due_ms) continue;
				p->hr->attempts = r->attempts;
				p->hr->next_try_ms = r->due_ms;
				/* encoded (copied) before the put moves anything */
				buf_reset(&p->scratch);
				pstore_hold_encode(&p->scratch, p->hr);
				int rc = store_put(x->t, s, DB_PURGATORY, h->id, strlen(h->id),
				                   p->scratch.data, p->scratch.len, 0);
				if (rc) { tx_fail(x, rc, "purgatory put (pacing)"); p->ndirty = 0; return; }
				rewritten++;
			}
		}
	p->ndirty = 0;
	if (rewritten) log_debug("persisted fetch pacing into %zu held rows", rewritten);
}

void purgatory_hold(struct purgatoryd *p, struct tx *x, const struct pdu_info *pi, int rv,
                    int redacted, const char *from, const char *pdu, size_t n,
                    char missing[][PDU_EVENT_ID_MAX], int nmissing)
{
	struct hold_rec *h = p->hr;
	struct proom *r = room_find(p, pi->room_id);
	int fresh = !r || !r->nheld, pulled = 0;
	long long due = r ? r->due_ms : 0;
	/* a room starts its pacing with this event, or had nothing to ask for
	 * (everything waited on held events) and now may: debounce by arrival */
	if ((fresh || r->idle_wait) && !(r && r->inflight)) {
		int sync = purgatory_by_sync(p, x->t, from ? from : "");
		long long want = x->now + (sync ? p->debounce : p->debounce_other);
		if (fresh || want < due) {
			pulled = !fresh;
			due = want;
		}
		if (r) r->idle_wait = 0;
		log_debug("room %s: %s held event came %s%s; fetch in %lld ms", pi->room_id,
		          fresh ? "first" : "new", sync ? "by sync from " : "from ",
		          from && from[0] ? from : "-", due - x->now);
	}
	snprintf(h->room_id, sizeof h->room_id, "%s", pi->room_id);
	h->nmissing = nmissing;
	for (int i = 0; i < nmissing; i++) memcpy(h->missing[i], missing[i], PDU_EVENT_ID_MAX);
	/* the room's pacing so far: a row joining a room already being fetched
	 * says so at once (persist_rooms keeps it current afterwards) */
	snprintf(h->from, sizeof h->from, "%s", from ? from : "");
	h->attempts = r ? r->attempts : 0;
	h->first_seen_ms = x->now;
	h->next_try_ms = due;
	h->expired_ms = 0;
	h->room_version = rv;
	h->redacted = redacted;
	h->reason[0] = 0;
	h->pdu = pdu; h->pdu_len = n;
	buf_reset(&p->scratch);
	pstore_hold_encode(&p->scratch, h);
	int rc = store_put(x->t, p->d->st, DB_PURGATORY, pi->event_id, strlen(pi->event_id),
	                   p->scratch.data, p->scratch.len, 0);
	if (rc) { tx_fail(x, rc, "purgatory put"); return; }
	unsigned char k[2 * PDU_EVENT_ID_MAX];
	for (int i = 0; i < nmissing; i++) {
		size_t kn = store_key2((char *)k, sizeof k, missing[i], pi->event_id);
		if ((rc = store_put(x->t, p->d->st, DB_MISSING_INDEX, k, kn, "", 0, 0))) {
			tx_fail(x, rc, "missing_index put");
			return;
		}
	}
	struct held *hd = held_add(p, pi->event_id, pi->room_id, x->now);
	hd->room->due_ms = due;
	if (pulled) room_dirty(p, hd->room);     /* the other rows said backoff_max */
	(*p->c_held)++;
	if (!nmissing) (*p->c_acl_blocked)++;
}

void purgatory_unhold(struct purgatoryd *p, struct tx *x, const char *id, const struct hold_rec *h)
{
	unsigned char k[2 * PDU_EVENT_ID_MAX];
	int rc;
	for (int i = 0; i < h->nmissing; i++) {
		size_t kn = store_key2((char *)k, sizeof k, h->missing[i], id);
		if ((rc = store_del(x->t, p->d->st, DB_MISSING_INDEX, k, kn)) && rc != MDB_NOTFOUND) {
			tx_fail(x, rc, "missing_index del");
			return;
		}
	}
	if ((rc = store_del(x->t, p->d->st, DB_PURGATORY, id, strlen(id))) && rc != MDB_NOTFOUND) {
		tx_fail(x, rc, "purgatory del");
		return;
	}
	struct held *hd = held_find(p, id);
	if (hd) held_remove(p, hd);
}

/* ---- startup: rebuild the indexes from the purgatory table ---- */

static int load_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct purgatoryd *p = arg;
	char id[PDU_EVENT_ID_MAX];
	if (k->mv_size >= sizeof id) return 0;
	memcpy(id, k->mv_data, k->mv_size);
	id[k->mv_size] = 0;
	if (pstore_hold_decode(&p->doc, v->mv_data, v->mv_size, p->hr) < 0) {
		log_warnx("purgatory row %s is unreadable; it stays until dropped", id);
		return 0;
	}
	struct held *h = held_add(p, id, p->hr->room_id, p->hr->first_seen_ms);
	/* the attempt count goes on across restarts (the rows carry it) */
	if (p->hr->attempts > h->room->attempts) h->room->attempts = p->hr->attempts;
	return 0;
}

void purgatory_resync(struct purgatoryd *p)
{
	size_t before = p->nheld;
	/* rooms with fetches in flight stay (their requests point at them) */
	for (size_t i = 0; i < p->hcap; i++)
		while (p->htab[i]) held_remove(p, p->htab[i]);
	MDB_txn *t = store_begin(p->d->st, 1);
	int rc = pstore_prefix_each(t, p->d->st, DB_PURGATORY, "", 0, load_cb, p);
	mdb_txn_abort(t);
	if (rc) fatalx("re-reading purgatory: %s", mdb_strerror(rc));
	long long now = now_ms();
	for (size_t i = 0; i < p->rcap; i++)
		for (struct proom *r = p->rtab[i]; r; r = r->hnext)
			if (!r->inflight && r->due_ms < now + p->debounce) r->due_ms = now + p->debounce;
	log_debug("held events re-read from the store: %zu (were %zu in memory)", p->nheld, before);
}

int purgatory_load(struct purgatoryd *p)
{
	MDB_txn *t = store_begin(p->d->st, 1);
	int rc = pstore_prefix_each(t, p->d->st, DB_PURGATORY, "", 0, load_cb, p);
	mdb_txn_abort(t);
	if (rc) { log_err("reading purgatory: %s", mdb_strerror(rc)); return -1; }
	/* outstanding fetches are asked again: every room is due after a debounce */
	long long now = now_ms();
	for (size_t i = 0; i < p->rcap; i++)
		for (struct proom *r = p->rtab[i]; r; r = r->hnext) r->due_ms = now + p->debounce;
	if (p->nheld) log_info("%zu held events in %zu rooms", p->nheld, p->nrooms);
	/* deps may have been stored, or the ACL changed, while we were down */
	purgatory_recheck_all(p);
	return 0;
}

/* ---- expiry ---- */

static void expire_one(struct purgatoryd *p, struct tx *x, const char *id)
{
	MDB_val v;
	struct store *s = p->d->st;
	struct hold_rec *h = p->hr;
	if (store_get(x->t, s, DB_PURGATORY, id, strlen(id), &v) ||
	    pstore_hold_decode(&p->doc, v.mv_data, v.mv_size, h) < 0) {
		struct held *hd = held_find(p, id);
		if (hd) held_remove(p, hd);
		return;
	}
	/* what is still missing now, not what was missing when held */
	struct hold_rec *e = malloc(sizeof *e);
	if (!e) log_panic("out of memory");
	memcpy(e, h, sizeof *e);
	e->nmissing = 0;
	for (int i = 0; i < h->nmissing; i++)
		if (!store_event_exists(x->t, s, h->missing[i]))
			memcpy(e->missing[e->nmissing++], h->missing[i], PDU_EVENT_ID_MAX);
	if (e->nmissing)
		snprintf(e->reason, sizeof e->reason, "missing_events: %d prev/auth event%s never arrived "
		         "within max_hold", e->nmissing, e->nmissing == 1 ? "" : "s");
	else {
		struct pdu_info *pi = p->pi;
		char err[128];
		if (pstore_pdu_parse(&p->doc2, h->pdu, h->pdu_len, pi, err, sizeof err) == 0)
			snprintf(e->reason, sizeof e->reason, "acl: server %s is not allowed by the node's "
			         "server ACL", !cfg_acl_allows(&p->d->cfg, pi->sender_server) ?
			         pi->sender_server : pi->origin);
		else
			snprintf(e->reason, sizeof e->reason, "unreleasable: %s", err);
	}
	e->expired_ms = x->now;
	struct held *hd = held_find(p, id);
	if (hd) e->attempts = hd->room->attempts;
	buf_reset(&p->scratch);
	pstore_hold_encode(&p->scratch, e);
	int rc = store_put(x->t, s, DB_EXPIRED, id, strlen(id), p->scratch.data, p->scratch.len, 0);
	if (rc) { tx_fail(x, rc, "expired put"); free(e); return; }
	log_notice("expired %s (room %s): %s", id, e->room_id, e->reason);
	purgatory_unhold(p, x, id, h);
	(*p->c_expired)++;
	free(e);
}

void purgatory_expire_due(struct purgatoryd *p, long long now)
{
	char (*due)[PDU_EVENT_ID_MAX] = NULL;
	size_t n = 0, cap = 0;
	if (p->max_hold <= 0) return;
	for (size_t i = 0; i < p->rcap; i++)
		for (struct proom *r = p->rtab[i]; r; r = r->hnext) {
			if (!r->nheld || r->oldest_ms + p->max_hold > now) continue;
			long long oldest = now;
			for (struct held *h = r->head; h; h = h->rnext) {
				if (h->first_seen_ms + p->max_hold <= now) {
					if (n == cap) {
						cap = cap ? cap * 2 : 64;
						due = realloc(due, cap * sizeof *due);
						if (!due) log_panic("out of memory");
					}
					memcpy(due[n++], h->id, PDU_EVENT_ID_MAX);
				} else if (h->first_seen_ms < oldest)
					oldest = h->first_seen_ms;
			}
			r->oldest_ms = oldest;
		}
	if (!n) return;
	struct tx x;
	do {
		tx_begin(p, &x);
		for (size_t i = 0; i < n && !x.err; i++) expire_one(p, &x, due[i]);
	} while (tx_commit(p, &x) == 1);     /* not written: the next tick tries again */
	free(due);
}

/* fedctl purgatory drop: 0 dropped, -1 not held, -2 not written (store full) */
int purgatory_drop(struct purgatoryd *p, const char *id)
{
	MDB_val v;
	struct tx x;
	int found, rc;
again:
	found = 0;
	tx_begin(p, &x);
	if (store_get(x.t, p->d->st, DB_PURGATORY, id, strlen(id), &v) == 0) {
		found = 1;
		if (pstore_hold_decode(&p->doc, v.mv_data, v.mv_size, p->hr) < 0) p->hr->nmissing = 0;
		purgatory_unhold(p, &x, id, p->hr);
		log_notice("dropped held event %s on operator request", id);
	} else {
		struct held *hd = held_find(p, id);
		if (hd) { held_remove(p, hd); found = 1; }
	}
	if ((rc = tx_commit(p, &x)) == 1) goto again;
	if (rc < 0) return -2;
	return found ? 0 : -1;
}
