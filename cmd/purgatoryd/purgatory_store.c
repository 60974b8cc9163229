/* purgatory_store.c: the write transaction and the write batch. Verdicts are
 * checked and queued as they arrive; at the end of the loop turn everything
 * queued is decided in one transaction: store / hold / reject, each one's
 * inbox row deleted in that same transaction; then, once it is committed,
 * feedpump is woken. A failed commit leaves the batch queued, in order. */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/histo.h"
#include "core/log.h"
#include "core/xalloc.h"

/* /metrics: commit latency (store_commit, the fsync included), verdicts
 * per write transaction, and the oldest held event's age (a gauge kept by
 * a 1 s timer: the rooms' lists are oldest first, so O(rooms)). Made on
 * the first transaction (nothing is held before one). */
static struct histo *h_commit, *h_batch;
static int64_t *g_oldest;

static void oldest_held_tick(struct daemon *d, void *arg)
{
	struct purgatoryd *p = arg;
	long long now = now_ms(), oldest = now;
	struct hmap_iter it;
	struct hmap_node *n;
	(void)d;
	hmap_iter_init(&it, &p->rooms);
	while ((n = hmap_iter_next(&it))) {
		struct proom *r = HMAP_ENTRY(n, struct proom, hn);
		if (r->head && r->head->first_seen_ms < oldest) oldest = r->head->first_seen_ms;
	}
	*g_oldest = (now - oldest) / 1000;
}

static void metrics_start(struct purgatoryd *p)
{
	h_commit = daemon_histo(p->d, "commit_latency", "us");
	h_batch = daemon_histo(p->d, "batch_size", "1");
	g_oldest = daemon_gauge(p->d, "oldest_held_age_s");
	if (!p->d->stdio) daemon_timer(p->d, 1000, oldest_held_tick, p);
}

void purgatory_tx_begin(struct purgatoryd *p, struct tx *x)
{
	if (!h_commit) metrics_start(p);
	x->t = store_begin(p->d->st, 0);
	purg_batch_init(&x->b, x->t);
	x->now = now_ms();
	x->last_pos = 0;
	x->stored = 0;
	x->err = 0;
}

void purgatory_tx_fail(struct tx *x, int rc, const char *what)
{
	if (x->err) return;
	x->err = rc;
	log_debug("%s: %s", what, mdb_strerror(rc));
}

int purgatory_tx_commit(struct purgatoryd *p, struct tx *x)
{
	int rc = x->err;
	if (!rc && (rc = purg_batch_flush(&x->b, p->d->st)))
		log_debug("writing the batch's room rows: %s", mdb_strerror(rc));
	purg_batch_drop(&x->b);
	if (rc) mdb_txn_abort(x->t);
	else {
		uint64_t t0 = histo_now_us();
		rc = store_commit(x->t);            /* a failed commit frees the txn */
		if (rc == 0) histo_observe(h_commit, histo_now_us() - t0);
	}
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

void purgatory_verdict_free(struct verdict *v)
{
	if (!v) return;
	free(v->message);
	free(v->from);
	free(v->body);
	free(v);
}

static char *dup_str(const struct json_doc *d, int t)
{
	if (t < 0 || d->tok[t].type != JSON_STRING) return NULL;
	size_t n = json_str_len(d, t);
	char *s = xmalloc(n + 1);
	if (json_str_copy(d, t, s, n + 1) < 0) { free(s); return NULL; }
	return s;
}

/* Check a VERDICT frame and queue it. -1 with *why on malformed input. */
int purgatory_verdict_frame(struct purgatoryd *p, const struct frame *f, const char **why)
{
	const char *meta, *body;
	size_t ml, bl;
	struct json_doc *d = &p->doc;
	if (frame_split_meta(f, &meta, &ml, &body, &bl) < 0) { *why = "no meta line"; return -1; }
	if (json_parse(d, meta, ml, 8) < 0 || d->tok[0].type != JSON_OBJECT) {
		*why = "meta line is not a JSON object"; return -1;
	}
	struct verdict *v = xcalloc(1, sizeof *v);
	v->inbox = f->id;
	int t = json_obj_get(d, 0, "verdict");
	if (t >= 0 && json_str_eq(d, t, "accept")) v->accept = 1;
	else if (t >= 0 && json_str_eq(d, t, "reject")) v->accept = 0;
	else { *why = "verdict is neither \"accept\" nor \"reject\""; goto bad; }
	t = json_obj_get(d, 0, "event_id");
	if (t >= 0 && d->tok[t].type == JSON_STRING &&
	    json_str_copy(d, t, v->event_id, sizeof v->event_id) > 0 && v->event_id[0] == '$')
		;
	else if (v->accept) { *why = "accepted verdict without a valid event_id"; goto bad; }
	else v->event_id[0] = 0;
	t = json_obj_get(d, 0, "reason");
	if (t >= 0 && d->tok[t].type == JSON_STRING) (void)json_str_copy(d, t, v->reason, sizeof v->reason);
	v->message = dup_str(d, json_obj_get(d, 0, "message"));
	v->from = dup_str(d, json_obj_get(d, 0, "from"));
	t = json_obj_get(d, 0, "redacted");
	v->redacted = t >= 0 && d->tok[t].type == JSON_TRUE;
	t = json_obj_get(d, 0, "room_version");
	if (t >= 0 && d->tok[t].type == JSON_INT) v->rv = (int)d->tok[t].ival;
	else if (t >= 0 && d->tok[t].type == JSON_STRING) {
		char rv[16];
		if (json_str_copy(d, t, rv, sizeof rv) > 0) v->rv = atoi(rv);
	}
	if (v->accept && (bl == 0 || bl > PDU_MAX_BYTES * 2)) { *why = "accepted verdict without PDU bytes"; goto bad; }
	v->body = xmemdup(body, bl);
	v->body_len = bl;
	if (p->stalled && p->nvq >= (size_t)p->batch_max) {
		/* the store is full: this verdict's inbox row stays, and
		 * validated's rescan sends it again (nothing is lost) */
		p->dropped_full++;
		purgatory_verdict_free(v);
		return 0;
	}
	*p->vq_tail = v;
	p->vq_tail = &v->next;
	p->nvq++;
	return 0;
bad:
	purgatory_verdict_free(v);
	return -1;
}

static void decide(struct purgatoryd *p, struct tx *x, struct verdict *v)
{
	struct store *s = p->d->st;
	struct inbox_rec ir;
	char from[PURG_NAME_MAX] = "";
	int in_inbox = 0;
	(*p->c_verdicts)++;
	if (v->inbox) {
		if (store_inbox_get(x->t, s, v->inbox, &ir) == 0) {
			in_inbox = 1;
			size_t l = ir.from_len < sizeof from ? ir.from_len : sizeof from - 1;
			memcpy(from, ir.from, l);
			from[l] = 0;
		} else {
			/* already decided (a re-sent verdict): a no-op, whatever it says */
			(*p->c_dups)++;
			return;
		}
	}
	if (!from[0] && v->from) snprintf(from, sizeof from, "%s", v->from);
	if (v->accept)
		purgatory_accept(p, x, v, from);
	else {
		int rc = purg_reject_put(x->t, s, v->event_id, v->reason[0] ? v->reason : "rejected",
		                         v->message, from, v->body, v->body_len, x->now);
		if (rc) { purgatory_tx_fail(x, rc, "rejects put"); return; }
		(*p->c_rejected)++;
		log_debug("rejected %s from %s: %s", v->event_id[0] ? v->event_id : "(no id)",
		          from[0] ? from : "-", v->reason);
	}
	if (in_inbox) {
		unsigned char k[8];
		be64_put(k, v->inbox);
		int rc = store_del(x->t, s, DB_INBOX, k, 8);
		if (rc && rc != MDB_NOTFOUND) purgatory_tx_fail(x, rc, "inbox del");
	}
}

/* Also writes the fetch pacing of rooms whose attempts started or ended
 * this turn into their held rows, in the same transaction. */
/* The batch's verdicts are kept until its txn commits: a txn that could not
 * be written (store full) puts them back in front of the queue, in order. */
void purgatory_flush(struct purgatoryd *p)
{
	if (p->stalled) return;             /* the tick retries */
	while (p->vq || p->ndirty) {
		struct tx x;
		struct verdict *batch = NULL, **bt = &batch;
		size_t nb = 0;
		purgatory_tx_begin(p, &x);
		for (int n = 0; p->vq && n < p->batch_max && !x.err; n++) {
			struct verdict *v = p->vq;
			p->vq = v->next;
			if (!p->vq) p->vq_tail = &p->vq;
			p->nvq--;
			decide(p, &x, v);
			v->next = NULL;
			*bt = v;
			bt = &v->next;
			nb++;
		}
		if (p->ndirty && !x.err) purgatory_persist_rooms(p, &x);
		int rc = purgatory_tx_commit(p, &x);
		if (rc == 0) {
			if (nb) histo_observe(h_batch, nb);
			while (batch) {
				struct verdict *v = batch;
				batch = v->next;
				purgatory_verdict_free(v);
			}
			continue;
		}
		if (batch) {
			*bt = p->vq;
			if (!p->vq) p->vq_tail = bt;
			p->vq = batch;
			p->nvq += nb;
		}
		if (rc < 0) return;
	}
}
