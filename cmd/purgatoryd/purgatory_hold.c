/* purgatory_hold.c: holding events. The rows (purgatory, missing_index) are
 * the truth; memory keeps two hash maps rebuilt from them at startup:
 * held events by ID and rooms (each with its held list, oldest first, and its
 * fetch pacing). Also expiry into the dead-letter table `expired`. */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/log.h"
#include "core/xalloc.h"

struct held *purgatory_held_find(struct purgatoryd *p, const char *id)
{
	uint64_t hv = hmap_hash_str(id);
	HMAP_FOR_HASH(&p->held, hv, n) {
		struct held *h = HMAP_ENTRY(n, struct held, hn);
		if (!strcmp(h->id, id)) return h;
	}
	return NULL;
}

struct proom *purgatory_room_find(struct purgatoryd *p, const char *room_id)
{
	uint64_t hv = hmap_hash_str(room_id);
	HMAP_FOR_HASH(&p->rooms, hv, n) {
		struct proom *r = HMAP_ENTRY(n, struct proom, hn);
		if (!strcmp(r->id, room_id)) return r;
	}
	return NULL;
}

struct proom *purgatory_room_get(struct purgatoryd *p, const char *room_id)
{
	struct proom *r = purgatory_room_find(p, room_id);
	if (r) return r;
	size_t l = strlen(room_id);
	r = xcalloc(1, sizeof *r + l + 1);
	memcpy(r->id, room_id, l + 1);
	hmap_insert(&p->rooms, &r->hn, hmap_hash_str(room_id));
	p->nrooms++;
	*p->g_rooms = (int64_t)p->nrooms;
	return r;
}

static void room_free_if_idle(struct purgatoryd *p, struct proom *r)
{
	if (r->nheld || r->inflight) return;
	hmap_remove(&p->rooms, &r->hn);
	if (r->dirty) p->ndirty--;
	free(r->recent);
	free(r);
	p->nrooms--;
	*p->g_rooms = (int64_t)p->nrooms;
}

struct held *purgatory_held_add(struct purgatoryd *p, const char *id, const char *room_id,
                                long long first_seen)
{
	struct held *h = purgatory_held_find(p, id);
	if (h) return h;
	struct proom *r = purgatory_room_get(p, room_id);
	h = xcalloc(1, sizeof *h);
	snprintf(h->id, sizeof h->id, "%s", id);
	h->room = r;
	h->first_seen_ms = first_seen;
	hmap_insert(&p->held, &h->hn, hmap_hash_str(h->id));
	h->rprev = r->tail;
	if (r->tail) r->tail->rnext = h; else r->head = h;
	r->tail = h;
	if (!r->nheld || first_seen < r->oldest_ms) r->oldest_ms = first_seen;
	r->nheld++;
	p->nheld++;
	*p->g_held = (int64_t)p->nheld;
	return h;
}

void purgatory_held_remove(struct purgatoryd *p, struct held *h)
{
	hmap_remove(&p->held, &h->hn);
	struct proom *r = h->room;
	if (h->rprev) h->rprev->rnext = h->rnext; else r->head = h->rnext;
	if (h->rnext) h->rnext->rprev = h->rprev; else r->tail = h->rprev;
	r->nheld--;
	p->nheld--;
	*p->g_held = (int64_t)p->nheld;
	free(h);
	room_free_if_idle(p, r);
}

void purgatory_room_dirty(struct purgatoryd *p, struct proom *r)
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
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &p->rooms);
	while (p->ndirty && (n = hmap_iter_next(&it))) {
		struct proom *r = HMAP_ENTRY(n, struct proom, hn);
		if (!r->dirty) continue;
		r->dirty = 0;
		p->ndirty--;
		for (struct held *h = r->head; h; h = h->rnext) {
			int rc = purg_hold_set_pacing(x->t, s, h->id, r->attempts, r->due_ms, &p->doc,
			                              &p->scratch);
			if (rc == 1 || rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) continue;
			if (rc) { purgatory_tx_fail(x, rc, "purgatory put (pacing)"); p->ndirty = 0; return; }
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
	struct proom *r = purgatory_room_find(p, pi->room_id);
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
	int rc = purg_hold_put(x->t, p->d->st, pi->event_id, h, &p->scratch);
	if (rc) { purgatory_tx_fail(x, rc, "purgatory put"); return; }
	struct held *hd = purgatory_held_add(p, pi->event_id, pi->room_id, x->now);
	hd->room->due_ms = due;
	if (pulled) purgatory_room_dirty(p, hd->room);     /* the other rows said backoff_max */
	(*p->c_held)++;
	if (!nmissing) (*p->c_acl_blocked)++;
}

void purgatory_unhold(struct purgatoryd *p, struct tx *x, const char *id, const struct hold_rec *h)
{
	int rc = purg_hold_del(x->t, p->d->st, id, h);
	if (rc) { purgatory_tx_fail(x, rc, "purgatory del"); return; }
	struct held *hd = purgatory_held_find(p, id);
	if (hd) purgatory_held_remove(p, hd);
}

/* ---- startup: rebuild the indexes from the purgatory table ---- */

/* Every row of purgatory into memory: 0 or the LMDB error. */
static int load_rows(struct purgatoryd *p)
{
	struct store_iter it;
	MDB_txn *t = store_begin(p->d->st, 1);
	int rc = store_iter_open(&it, t, p->d->st, DB_PURGATORY, NULL, 0);
	while (!rc && store_iter_next(&it) == 1) {
		char id[PDU_EVENT_ID_MAX];
		if (it.k.mv_size >= sizeof id) continue;
		memcpy(id, it.k.mv_data, it.k.mv_size);
		id[it.k.mv_size] = 0;
		if (purg_hold_decode(&p->doc, it.v.mv_data, it.v.mv_size, p->hr) < 0) {
			log_warnx("purgatory row %s is unreadable; it stays until dropped", id);
			continue;
		}
		struct held *h = purgatory_held_add(p, id, p->hr->room_id, p->hr->first_seen_ms);
		/* the attempt count goes on across restarts (the rows carry it) */
		if (p->hr->attempts > h->room->attempts) h->room->attempts = p->hr->attempts;
	}
	if (!rc) rc = it.rc;
	store_iter_close(&it);
	mdb_txn_abort(t);
	return rc;
}

void purgatory_resync(struct purgatoryd *p)
{
	size_t before = p->nheld;
	struct hmap_iter it;
	struct hmap_node *n;
	/* rooms with fetches in flight stay (their requests point at them) */
	hmap_iter_init(&it, &p->held);
	while ((n = hmap_iter_next(&it))) purgatory_held_remove(p, HMAP_ENTRY(n, struct held, hn));
	int rc = load_rows(p);
	if (rc) fatalx("re-reading purgatory: %s", mdb_strerror(rc));
	long long now = now_ms();
	hmap_iter_init(&it, &p->rooms);
	while ((n = hmap_iter_next(&it))) {
		struct proom *r = HMAP_ENTRY(n, struct proom, hn);
		if (!r->inflight && r->due_ms < now + p->debounce) r->due_ms = now + p->debounce;
	}
	log_debug("held events re-read from the store: %zu (were %zu in memory)", p->nheld, before);
}

int purgatory_load(struct purgatoryd *p)
{
	int rc = load_rows(p);
	if (rc) { log_err("reading purgatory: %s", mdb_strerror(rc)); return -1; }
	/* outstanding fetches are asked again: every room is due after a debounce */
	long long now = now_ms();
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &p->rooms);
	while ((n = hmap_iter_next(&it))) HMAP_ENTRY(n, struct proom, hn)->due_ms = now + p->debounce;
	if (p->nheld) log_info("%zu held events in %zu rooms", p->nheld, p->nrooms);
	/* deps may have been stored, or the ACL changed, while we were down */
	purgatory_recheck_all(p);
	return 0;
}

/* ---- expiry ---- */

static void expire_one(struct purgatoryd *p, struct tx *x, const char *id)
{
	struct store *s = p->d->st;
	struct hold_rec *h = p->hr;
	if (purg_hold_get(x->t, s, DB_PURGATORY, id, &p->doc, h)) {
		struct held *hd = purgatory_held_find(p, id);
		if (hd) purgatory_held_remove(p, hd);
		return;
	}
	/* what is still missing now, not what was missing when held */
	struct hold_rec *e = xmalloc(sizeof *e);
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
		if (purg_pdu_parse(&p->doc2, h->pdu, h->pdu_len, pi, err, sizeof err) == 0)
			snprintf(e->reason, sizeof e->reason, "acl: server %s is not allowed by the node's "
			         "server ACL", !cfg_acl_allows(&p->d->cfg, pi->sender_server) ?
			         pi->sender_server : pi->origin);
		else
			snprintf(e->reason, sizeof e->reason, "unreleasable: %s", err);
	}
	e->expired_ms = x->now;
	struct held *hd = purgatory_held_find(p, id);
	if (hd) e->attempts = hd->room->attempts;
	int rc = purg_expired_put(x->t, s, id, e, &p->scratch);
	if (rc) { purgatory_tx_fail(x, rc, "expired put"); free(e); return; }
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
	struct hmap_iter it;
	struct hmap_node *node;
	hmap_iter_init(&it, &p->rooms);
	while ((node = hmap_iter_next(&it))) {
		struct proom *r = HMAP_ENTRY(node, struct proom, hn);
		if (!r->nheld || r->oldest_ms + p->max_hold > now) continue;
		long long oldest = now;
		for (struct held *h = r->head; h; h = h->rnext) {
			if (h->first_seen_ms + p->max_hold <= now) {
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					due = xreallocarray(due, cap, sizeof *due);
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
		purgatory_tx_begin(p, &x);
		for (size_t i = 0; i < n && !x.err; i++) expire_one(p, &x, due[i]);
	} while (purgatory_tx_commit(p, &x) == 1);     /* not written: the next tick tries again */
	free(due);
}

/* fedctl purgatory drop: 0 dropped, -1 not held, -2 not written (store full) */
int purgatory_drop(struct purgatoryd *p, const char *id)
{
	struct tx x;
	int found, rc;
again:
	found = 0;
	purgatory_tx_begin(p, &x);
	if ((rc = purg_hold_get(x.t, p->d->st, DB_PURGATORY, id, &p->doc, p->hr)) == 0 ||
	    rc == MDB_CORRUPTED) {
		found = 1;
		if (rc) p->hr->nmissing = 0;
		purgatory_unhold(p, &x, id, p->hr);
		log_notice("dropped held event %s on operator request", id);
	} else {
		struct held *hd = purgatory_held_find(p, id);
		if (hd) { purgatory_held_remove(p, hd); found = 1; }
	}
	if ((rc = purgatory_tx_commit(p, &x)) == 1) goto again;
	if (rc < 0) return -2;
	return found ? 0 : -1;
}
