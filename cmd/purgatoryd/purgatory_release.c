/* purgatory_release.c: deciding an accepted event (store now, or hold) and
 * releasing held events the moment they become satisfiable: after every
 * stored event, its waiters (found through missing_index, so only they are
 * touched) are re-checked, cascading, parents always before children. */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/log.h"

void tx_begin(struct purgatoryd *p, struct tx *x)
{
	x->t = store_begin(p->d->st, 0);
	x->now = now_ms();
	x->last_pos = 0;
	x->stored = 0;
	x->err = 0;
}

void tx_fail(struct tx *x, int rc, const char *what)
{
	if (x->err) return;
	x->err = rc;
	log_debug("%s: %s", what, mdb_strerror(rc));
}

int tx_commit(struct purgatoryd *p, struct tx *x)
{
	int rc = x->err;
	if (rc) mdb_txn_abort(x->t);
	else rc = store_commit(x->t);           /* a failed commit frees the txn */
	x->t = NULL;
	if (rc) {
		int again = store_write_failed(p->d->st, rc);
		/* memory already reflects the txn: anything but a full map is a
		 * broken store, and a restart rebuilds from what LMDB holds */
		if (!again && rc != MDB_MAP_FULL)
			fatalx("LMDB write failed: %s; restarting to rebuild from the store", mdb_strerror(rc));
		purgatory_resync(p);
		if (again) return 1;
		if (!p->full_logged)
			log_warnx("store full: storing stops; verdicts wait (their inbox rows stay); "
			          "retrying every %lld ms", p->tick);
		p->full_logged = 1;
		p->stalled = 1;
		return -1;
	}
	p->full_logged = 0;
	if (p->dropped_full) {
		log_notice("storing again; %llu verdict(s) left in the inbox while full come back "
		           "with validated's rescan", (unsigned long long)p->dropped_full);
		p->dropped_full = 0;
	}
	*p->c_stored += (uint64_t)x->stored;
	(*p->c_batches)++;
	if (x->stored) {
		char w[64];
		int n = snprintf(w, sizeof w, "{\"outbox\":%llu}", (unsigned long long)x->last_pos);
		daemon_emit(p->d, "feedpump", FT_WAKEUP, 0, 0, w, (size_t)n);
	}
	return 0;
}

static void stored_one(struct purgatoryd *p, struct tx *x, uint64_t pos)
{
	x->stored++;
	if (pos > x->last_pos) x->last_pos = pos;
}

/* A growable list of event IDs (the cascade's work list). */
struct idlist { char (*v)[PDU_EVENT_ID_MAX]; size_t n, cap; };

static void idl_push(struct idlist *l, const char *id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		if (!l->v) log_panic("out of memory");
	}
	snprintf(l->v[l->n++], PDU_EVENT_ID_MAX, "%s", id);
}

static int waiter_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct idlist *l = arg;
	const char *z = memchr(k->mv_data, 0, k->mv_size);
	if (!z) return 0;
	size_t wl = k->mv_size - (size_t)(z + 1 - (const char *)k->mv_data);
	char id[PDU_EVENT_ID_MAX];
	if (wl >= sizeof id) return 0;
	memcpy(id, z + 1, wl);
	id[wl] = 0;
	idl_push(l, id);
	return 0;
}

/* 1 stored, 0 stays held (still missing, or not authorized), -1 not held */
int purgatory_try_release(struct purgatoryd *p, struct tx *x, const char *id)
{
	struct store *s = p->d->st;
	MDB_val v;
	char err[160];
	if (store_get(x->t, s, DB_PURGATORY, id, strlen(id), &v)) {
		struct held *hd = held_find(p, id);
		if (hd) held_remove(p, hd);
		return -1;
	}
	/* copy: the txn's own writes may move the page the value sits on */
	struct buf rec;
	buf_init(&rec);
	buf_add(&rec, v.mv_data, v.mv_size);
	struct hold_rec *h = p->hr;
	struct pdu_info *pi = p->pi;
	int ret = 0;
	if (pstore_hold_decode(&p->doc, rec.data, rec.len, h) < 0 ||
	    pstore_pdu_parse(&p->doc2, h->pdu, h->pdu_len, pi, err, sizeof err) < 0) {
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
	int rc = pstore_store_event(x->t, s, pi, h->room_version ? h->room_version : p->default_rv,
	                            h->redacted, h->pdu, h->pdu_len, x->now, &pos);
	if (rc < 0 || rc > 1) { tx_fail(x, rc, "storing a released event"); goto out; }
	if (rc == 0) stored_one(p, x, pos);
	purgatory_unhold(p, x, id, h);
	(*p->c_released)++;
	log_debug("released %s (stream %llu)", id, (unsigned long long)pos);
	ret = 1;
out:
	buf_free(&rec);
	return ret;
}

void purgatory_release_waiters(struct purgatoryd *p, struct tx *x, const char *stored_id)
{
	struct store *s = p->d->st;
	struct idlist work = { 0 }, waiters = { 0 };
	idl_push(&work, stored_id);
	/* FIFO over work: breadth-first, each event only after its parents */
	for (size_t wi = 0; wi < work.n && !x->err; wi++) {
		char cur[PDU_EVENT_ID_MAX];
		memcpy(cur, work.v[wi], sizeof cur);
		size_t cl = strlen(cur);
		unsigned char pre[PDU_EVENT_ID_MAX + 1];
		memcpy(pre, cur, cl);
		pre[cl] = 0;
		waiters.n = 0;
		int rc = pstore_prefix_each(x->t, s, DB_MISSING_INDEX, pre, cl + 1, waiter_cb, &waiters);
		if (rc) { tx_fail(x, rc, "missing_index scan"); break; }
		for (size_t i = 0; i < waiters.n; i++) {
			unsigned char k[2 * PDU_EVENT_ID_MAX];
			size_t wl = strlen(waiters.v[i]);
			memcpy(k, pre, cl + 1);
			memcpy(k + cl + 1, waiters.v[i], wl);
			rc = store_del(x->t, s, DB_MISSING_INDEX, k, cl + 1 + wl);
			if (rc && rc != MDB_NOTFOUND) { tx_fail(x, rc, "missing_index del"); break; }
			if (purgatory_try_release(p, x, waiters.v[i]) == 1)
				idl_push(&work, waiters.v[i]);
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
	if (pstore_pdu_parse(&p->doc, v->body, v->body_len, pi, err, sizeof err) < 0) {
		/* validated accepted it, yet we cannot read it: record why, lose nothing */
		log_warnx("accepted event %s cannot be stored: %s; recorded in rejects", v->event_id, err);
		int rc = pstore_reject_put(x->t, s, v->event_id, "unstorable", err, from, v->body,
		                           v->body_len, x->now);
		if (rc) tx_fail(x, rc, "rejects put");
		else (*p->c_rejected)++;
		return;
	}
	snprintf(pi->event_id, sizeof pi->event_id, "%s", v->event_id);
	if (store_event_exists(x->t, s, v->event_id) || held_find(p, v->event_id)) {
		(*p->c_dups)++;
		return;
	}
	int rv = v->rv > 0 ? v->rv : pstore_room_version_for(x->t, s, pi, p->default_rv);
	char (*missing)[PDU_EVENT_ID_MAX] = malloc(PSTORE_DEPS_MAX * sizeof *missing);
	if (!missing) log_panic("out of memory");
	int nm = pstore_missing(x->t, s, pi, missing);
	if (nm == 0 && purgatory_acl_ok(p, pi)) {
		uint64_t pos = 0;
		int rc = pstore_store_event(x->t, s, pi, rv, v->redacted, v->body, v->body_len, x->now, &pos);
		if (rc < 0 || rc > 1) { tx_fail(x, rc, "storing an event"); free(missing); return; }
		if (rc == 0) stored_one(p, x, pos);
		char id[PDU_EVENT_ID_MAX];
		memcpy(id, pi->event_id, sizeof id);
		purgatory_release_waiters(p, x, id);
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

void purgatory_recheck_all(struct purgatoryd *p)
{
	struct idlist all = { 0 };
	for (size_t i = 0; i < p->rcap; i++)
		for (struct proom *r = p->rtab[i]; r; r = r->hnext)
			for (struct held *h = r->head; h; h = h->rnext) idl_push(&all, h->id);
	p->recheck_pending = 0;
	if (!all.n) return;
	struct tx x;
	size_t released;
	int rc;
	do {
		released = 0;
		tx_begin(p, &x);
		for (size_t i = 0; i < all.n && !x.err; i++) {
			if (!held_find(p, all.v[i])) continue;    /* released by an earlier cascade */
			if (purgatory_try_release(p, &x, all.v[i]) == 1) {
				released++;
				purgatory_release_waiters(p, &x, all.v[i]);
			}
		}
	} while ((rc = tx_commit(p, &x)) == 1);
	if (rc < 0) p->recheck_pending = 1;       /* the tick redoes it */
	else if (released) log_info("recheck released %zu held events", released);
	free(all.v);
}
