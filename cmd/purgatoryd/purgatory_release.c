/* purgatory_release.c: deciding an accepted event (store now, or hold) and
 * releasing held events the moment they become satisfiable: after every
 * stored event, its waiters (found through missing_index, so only they are
 * touched) are re-checked, cascading, parents always before children. */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/log.h"
#include "core/xalloc.h"

static void stored_one(struct purgatoryd *p, struct tx *x, uint64_t pos)
{
	x->stored++;
	if (pos > x->last_pos) x->last_pos = pos;
}

/* 1 stored, 0 stays held (still missing, or not authorized), -1 not held */
int purgatory_try_release(struct purgatoryd *p, struct tx *x, const char *id)
{
	struct store *s = p->d->st;
	struct hold_rec *h = p->hr;
	char err[160];
	int rc = purg_hold_get(x->t, s, DB_PURGATORY, id, &p->doc, h);
	if (rc && rc != MDB_CORRUPTED) {
		struct held *hd = purgatory_held_find(p, id);
		if (hd) purgatory_held_remove(p, hd);
		return -1;
	}
	/* copy the PDU: the txn's own writes may move the page it sits on */
	struct buf pdu;
	buf_init(&pdu);
	struct pdu_info *pi = p->pi;
	int ret = 0;
	if (!rc) {
		buf_add(&pdu, h->pdu, h->pdu_len);
		h->pdu = pdu.data;
	}
	if (rc || purg_pdu_parse(&p->doc2, h->pdu, h->pdu_len, pi, err, sizeof err) < 0) {
		log_warnx("held event %s has an unreadable row; leaving it to expire", id);
		goto out;
	}
	snprintf(pi->event_id, sizeof pi->event_id, "%s", id);
	for (int i = 0; i < pi->ndeps; i++)
		if (!store_event_exists(x->t, s, pi->deps[i])) goto out;
	if (!purgatory_acl_ok(p, pi)) {
		log_debug("%s is satisfiable but its server is not allowed; stays held", id);
		goto out;
	}
	uint64_t pos = 0;
	rc = purg_store_event_b(&x->b, x->t, s, pi, h->room_version ? h->room_version : p->default_rv,
	                            h->redacted, h->pdu, h->pdu_len, x->now, &pos);
	if (rc < 0 || rc > 1) { purgatory_tx_fail(x, rc, "storing a released event"); goto out; }
	if (rc == 0) stored_one(p, x, pos);
	purgatory_unhold(p, x, id, h);
	(*p->c_released)++;
	log_debug("released %s (stream %llu)", id, (unsigned long long)pos);
	ret = 1;
out:
	buf_free(&pdu);
	return ret;
}

void purgatory_release_waiters(struct purgatoryd *p, struct tx *x, const char *stored_id)
{
	struct store *s = p->d->st;
	struct purg_idlist work = { 0 }, waiters = { 0 };
	purg_idlist_push(&work, stored_id);
	/* FIFO over work: breadth-first, each event only after its parents */
	for (size_t wi = 0; wi < work.n && !x->err; wi++) {
		char cur[PDU_EVENT_ID_MAX];
		memcpy(cur, work.v[wi], sizeof cur);
		waiters.n = 0;
		int rc = purg_waiters(x->t, s, cur, &waiters);
		if (rc) { purgatory_tx_fail(x, rc, "missing_index scan"); break; }
		for (size_t i = 0; i < waiters.n; i++) {
			if ((rc = purg_waiter_del(x->t, s, cur, waiters.v[i]))) {
				purgatory_tx_fail(x, rc, "missing_index del");
				break;
			}
			if (purgatory_try_release(p, x, waiters.v[i]) == 1)
				purg_idlist_push(&work, waiters.v[i]);
		}
	}
	free(work.v);
	free(waiters.v);
}

void purgatory_accept(struct purgatoryd *p, struct tx *x, struct verdict *v, const char *from)
{
	struct store *s = p->d->st;
	struct pdu_info *pi = p->pi;
	char err[200];
	if (purg_pdu_parse(&p->doc, v->body, v->body_len, pi, err, sizeof err) < 0) {
		/* validated accepted it, yet we cannot read it: record why, lose nothing */
		log_warnx("accepted event %s cannot be stored: %s; recorded in rejects", v->event_id, err);
		int rc = purg_reject_put(x->t, s, v->event_id, "unstorable", err, from, v->body,
		                         v->body_len, x->now);
		if (rc) purgatory_tx_fail(x, rc, "rejects put");
		else (*p->c_rejected)++;
		return;
	}
	snprintf(pi->event_id, sizeof pi->event_id, "%s", v->event_id);
	if (purgatory_held_find(p, v->event_id)) {
		(*p->c_dups)++;
		return;
	}
	/* One events lookup per new event: a storable one is looked up by
	 * purg_store_event (a duplicate returns 1 there, before any write);
	 * only the rare hold path looks it up here, so a stored event is
	 * never held. (Its prev/auth events are stored whenever it is, so a
	 * duplicate always takes the first path.) */
	int rv = v->rv > 0 ? v->rv : purg_room_version_for(x->t, s, pi, p->default_rv);
	char (*missing)[PDU_EVENT_ID_MAX] = xmalloc(PURG_DEPS_MAX * sizeof *missing);
	int nm = purg_missing(x->t, s, pi, missing);
	if (nm == 0 && purgatory_acl_ok(p, pi)) {
		uint64_t pos = 0;
		int rc = purg_store_event_b(&x->b, x->t, s, pi, rv, v->redacted, v->body, v->body_len, x->now, &pos);
		if (rc < 0 || rc > 1) { purgatory_tx_fail(x, rc, "storing an event"); free(missing); return; }
		if (rc == 1) { (*p->c_dups)++; free(missing); return; }
		stored_one(p, x, pos);
		char id[PDU_EVENT_ID_MAX];
		memcpy(id, pi->event_id, sizeof id);
		purgatory_release_waiters(p, x, id);
	} else if (store_event_exists(x->t, s, v->event_id)) {
		(*p->c_dups)++;
	} else {
		if (nm == 0)
			log_info("holding %s: server %s/%s not allowed by the ACL", v->event_id,
			         pi->sender_server, pi->origin[0] ? pi->origin : "-");
		else
			log_debug("holding %s: %d of its prev/auth events missing (first %s)",
			          v->event_id, nm, missing[0]);
		purgatory_hold(p, x, pi, rv, v->redacted, from, v->body, v->body_len, missing, nm);
	}
	free(missing);
}

/* Release what ids make satisfiable, in one txn (redone if the map grew):
 * each held id whose prev/auth events are all stored now is stored, and
 * one stored meanwhile by someone else (the fleet applier) leaves
 * purgatory as the duplicate it is; with waiters, each id is also taken
 * as stored, and the events waiting on it are re-checked (the applier
 * stored it: purgatoryd never saw it). -1 when the txn failed (the
 * caller retries later), else the number stored (cascades included). */
long purgatory_release_ids(struct purgatoryd *p, const struct purg_idlist *ids, int waiters)
{
	struct store *s = p->d->st;
	struct tx x;
	int rc;
	do {
		purgatory_tx_begin(p, &x);
		for (size_t i = 0; i < ids->n && !x.err; i++) {
			const char *id = ids->v[i];
			if (purgatory_held_find(p, id)) {
				if (store_event_exists(x.t, s, id) == 1) {
					if (purg_hold_get(x.t, s, DB_PURGATORY, id, &p->doc, p->hr) == 0) {
						purgatory_unhold(p, &x, id, p->hr);
						(*p->c_dups)++;
						log_debug("held %s was stored by another writer; it leaves purgatory", id);
					}
				} else if (purgatory_try_release(p, &x, id) == 1) {
					purgatory_release_waiters(p, &x, id);
					continue;
				}
			}
			if (waiters) purgatory_release_waiters(p, &x, id);
		}
	} while ((rc = purgatory_tx_commit(p, &x)) == 1);
	return rc < 0 ? -1 : (long)x.stored;
}

void purgatory_recheck_all(struct purgatoryd *p)
{
	struct purg_idlist all = { 0 };
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &p->rooms);
	while ((n = hmap_iter_next(&it)))
		for (struct held *h = HMAP_ENTRY(n, struct proom, hn)->head; h; h = h->rnext)
			purg_idlist_push(&all, h->id);
	p->recheck_pending = 0;
	if (!all.n) return;
	long released = purgatory_release_ids(p, &all, 0);
	if (released < 0) p->recheck_pending = 1;       /* the tick redoes it */
	else if (released) log_info("recheck released %ld held events", released);
	free(all.v);
}
