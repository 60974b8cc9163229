/* feedpump_drain.c: one write-back per loop turn. Read up to `batch`
 * unpublished outbox rows from the cursor (short read txn, bytes copied
 * out) and hand them to the sink; an asynchronous sink (NATS) gets a ring
 * of 2f batches in flight, each read after the previous one. Then wait
 * for the oldest f batches and write back their results, plus those of
 * every younger batch already complete, in ONE txn that also re-checks
 * the lease and moves the cursor over the contiguous published prefix.
 * Group commit with the pipe kept full: while LMDB fsyncs (milliseconds
 * to tens of them on a busy disk) the other f batches are being acked, so
 * the broker does not wait for our disk, and a commit carries f batches.
 * A row is still marked published only by the txn after its ack; that
 * txn is committed with one sync, not two (store/outbox.h:
 * outbox_commit_relaxed). Any failure, lease loss or cursor rewind
 * empties the pipeline (the batches behind are re-read and re-published:
 * they resolve to the same control versions). The sink is idempotent by
 * event ID, so a crash anywhere in here costs a re-publish that resolves
 * to the same control version, never a duplicate or a gap (an OS crash:
 * provided the node publishes again within the stream's duplicate
 * window). Order: a row that fails blocks the rows behind it (head of
 * line) until it succeeds or, if the sink refused the row itself, until
 * it is dead-lettered after max_attempts; a sink outage never
 * dead-letters anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "feedpump.h"
#include "core/histo.h"
#include "core/log.h"
#include "core/xalloc.h"

#define SCAN_MAX 65536   /* published rows skipped per turn before yielding */
#define WINDOW_ROWS 2048 /* rows in flight to an asynchronous sink, also while a write-back
                            commits (the ring holds twice as many); the NATS sink's own
                            bound is far above */
#define RING_MAX 128     /* batches in the ring (the NATS sink tracks up to 256) */

static void drain_cb(evutil_socket_t fd, short what, void *arg);

void fp_drain_schedule(struct feedpump *fp, long long delay_ms)
{
	if (fp->stopping) return;
	long long now = mono_ms();
	if (fp->retry_at && now + delay_ms < fp->retry_at)
		delay_ms = fp->retry_at - now;        /* backoff wins over wakeups */
	if (delay_ms < 0) delay_ms = 0;
	struct timeval tv = { (time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000 };
	/* Keep an earlier pending run; otherwise (re)arm. */
	struct timeval pend;
	if (evtimer_pending(fp->drain_ev, &pend)) {
		struct timeval nowtv, want;
		event_base_gettimeofday_cached(fp->d->base, &nowtv);
		evutil_timeradd(&nowtv, &tv, &want);
		if (evutil_timercmp(&pend, &want, <=)) return;
	}
	evtimer_add(fp->drain_ev, &tv);
}

static long long backoff_for(struct feedpump *fp, int64_t attempts)
{
	long long d = fp->backoff_min;
	for (int64_t i = 1; i < attempts && d < fp->backoff_max; i++) d *= 2;
	return d > fp->backoff_max ? fp->backoff_max : d;
}

/* Collect one batch into slot x: from the stored cursor if nothing is in
 * flight (fp->cur_in := it), else from fp->next_pos. x->skip_to = where the
 * cursor may move if every row before the first unpublished one is done. */
static void collect(struct feedpump *fp, struct fp_slot *x)
{
	struct store *st = fp->d->st;
	MDB_txn *t = store_begin(st, 1);
	struct store_iter it;
	uint64_t cur;
	if (fp->inflight == 0) cur = fp->cur_in = outbox_cursor_get(t, st);
	else cur = fp->next_pos;
	x->skip_to = cur;
	size_t n = 0;
	int skipping = 1, scanned = 0;
	buf_reset(&x->arena);
	/* Offsets into the arena first (it may grow), pointers fixed up after. */
	size_t *off = xcalloc((size_t)fp->batch * 3, sizeof *off);
	if (store_iter_open(&it, t, st, DB_OUTBOX, NULL, 0) != 0) log_panic("outbox cursor");
	unsigned char kb[8];
	be64_put(kb, cur);
	store_iter_from(&it, kb, 8);
	while (n < (size_t)fp->batch && store_iter_next(&it) == 1) {
		uint64_t pos;
		if (outbox_key_pos(&it.k, &pos) < 0) continue;
		struct outbox_row *r = &x->rows[n];
		if (outbox_row_parse(it.v.mv_data, it.v.mv_size, r) < 0) {
			log_err("outbox row %llu is not valid JSON; treating it as an event refused",
			        (unsigned long long)pos);
			snprintf(r->event_id, sizeof r->event_id, "?pos%llu", (unsigned long long)pos);
			r->attempts = fp->max_attempts;   /* straight to feed_dead */
		} else if (r->control_version) {
			if (skipping) x->skip_to = pos + 1;
			if (++scanned >= SCAN_MAX) break;
			continue;
		}
		skipping = 0;
		struct feed_event *e = &x->ev[n];
		memset(e, 0, sizeof *e);
		e->pos = pos;
		off[n * 3] = x->arena.len;
		buf_add(&x->arena, r->event_id, strlen(r->event_id) + 1);
		struct event_rec er;
		if (r->event_id[0] != '?' && store_event_get(t, st, r->event_id, &er) == 0) {
			off[n * 3 + 1] = x->arena.len;
			buf_add(&x->arena, er.room_id, er.room_len);
			e->room_len = er.room_len;
			off[n * 3 + 2] = x->arena.len;
			buf_add(&x->arena, er.pdu, er.pdu_len);
			e->pdu_len = er.pdu_len;
		} else {
			e->pdu_len = 0;
			e->rc = FEED_ERR_EVENT;      /* marker: no bytes to publish */
		}
		n++;
	}
	store_iter_close(&it);
	mdb_txn_abort(t);
	for (size_t i = 0; i < n; i++) {
		x->ev[i].event_id = x->arena.data + off[i * 3];
		x->ev[i].room_id = x->arena.data + off[i * 3 + 1];
		x->ev[i].pdu = x->arena.data + off[i * 3 + 2];
	}
	free(off);
	x->n = n;
	fp->next_pos = n ? x->ev[n - 1].pos + 1 : x->skip_to;
}

/* Hand slot x to the sink: rows without bytes never reach it, they fail
 * as events and block what follows. */
/* /metrics: publish latency per batch, from its hand-over to the sink to
 * the drain seeing it complete; the hand-over times by slot index. */
static struct histo *h_publish;
static uint64_t *sent_us;
static int sent_cap;

static void submit(struct feedpump *fp, struct fp_slot *x)
{
	if (!h_publish) h_publish = daemon_histo(fp->d, "publish_latency", "us");
	if (sent_cap < fp->window) {
		sent_us = xreallocarray(sent_us, (size_t)fp->window, sizeof *sent_us);
		sent_cap = fp->window;
	}
	sent_us[x - fp->slots] = histo_now_us();
	size_t n = x->n, send = 0;
	while (send < n && x->ev[send].rc != FEED_ERR_EVENT) send++;
	x->send = send;
	if (send) feed_sink_submit(fp->sink, x->ev, send);
	if (send < n) {
		struct feed_event *e = &x->ev[send];
		e->rc = FEED_ERR_EVENT;
		snprintf(e->err, sizeof e->err, "event %s is not in the events table", e->event_id);
		for (size_t i = send + 1; i < n; i++) { x->ev[i].rc = FEED_ERR_SINK; snprintf(x->ev[i].err, sizeof x->ev[i].err, "not attempted"); }
	}
}

static struct fp_slot *slot_at(struct feedpump *fp, int i) { return &fp->slots[(fp->head + i) % fp->window]; }

/* Top the ring up: collect and submit batches until it is full, until the
 * outbox has nothing more (a short batch), or until a batch holds a row
 * that cannot be sent (what follows it would only be dropped at its
 * write-back). */
static void fill(struct feedpump *fp)
{
	if (fp->inflight > 0) {
		struct fp_slot *last = slot_at(fp, fp->inflight - 1);
		if (last->send < last->n) return;
	}
	while (fp->inflight < fp->window) {
		struct fp_slot *x = slot_at(fp, fp->inflight);
		if (!x->ev) {
			x->ev = xcalloc((size_t)fp->batch, sizeof *x->ev);
			x->rows = xcalloc((size_t)fp->batch, sizeof *x->rows);
		}
		collect(fp, x);
		if (x->n == 0 && fp->inflight > 0) break;
		submit(fp, x);
		fp->inflight++;
		if (x->n < (size_t)fp->batch || x->send < x->n) break;
	}
}

void fp_drain_flush(struct feedpump *fp)
{
	for (int i = 0; i < fp->inflight; i++) {
		struct fp_slot *x = slot_at(fp, i);
		if (x->send) feed_sink_wait(fp->sink, x->ev, x->send, 1);
	}
	fp->head = 0;
	fp->inflight = 0;
}

#define FULL_RETRY_MS 2000   /* the store is full: how often a small write probes it */

/* A write-back txn failed (aborted or freed): the pipeline is emptied (its
 * batches are re-read and re-published: the sink is idempotent). A grown
 * map retries at once; a full store waits, probing with the lease write. */
static int write_failed(struct feedpump *fp, int rc)
{
	fp_drain_flush(fp);
	if (store_write_failed(fp->d->st, rc))
		return 1;                         /* redo now */
	if (rc != MDB_MAP_FULL)
		log_err("LMDB write-back failed (%s); will retry the batch (the sink is idempotent)",
		        mdb_strerror(rc));
	/* a retry time, not just a timer: wakeups wait for it, --once does not
	 * take the failure for an empty outbox */
	fp->retry_at = mono_ms() + (rc == MDB_MAP_FULL ? FULL_RETRY_MS : 1000);
	return 0;
}

/* 1 if every event of slot x was sent and published. */
static int slot_ok(const struct fp_slot *x)
{
	if (x->send < x->n) return 0;
	for (size_t i = 0; i < x->send; i++)
		if (x->ev[i].rc != FEED_OK) return 0;
	return 1;
}

/* Fill the ring, wait for its older half (or for all of it when it holds
 * the end of the outbox), then write back every complete batch from the
 * oldest on. Returns 1 if more work is probably waiting. */
static int drain_batch(struct feedpump *fp)
{
	struct daemon *d = fp->d;
	/* The ring holds 2f batches: f are written back together while the
	 * other f are still being acked, so the broker does not wait for our
	 * fsync and a commit carries f batches, not whatever happened to be
	 * acked first. */
	int f = fp->window > 1 ? fp->window / 2 : 1;
	fill(fp);
	/* the end of the outbox in the ring: all of it in one write-back */
	struct fp_slot *last = slot_at(fp, fp->inflight - 1);
	int at_end = last->n < (size_t)fp->batch || last->send < last->n;
	int want = fp->inflight < f || at_end ? fp->inflight : f, m = 0;
	uint64_t t_wait = histo_now_us();
	while (m < want) {                    /* blocking, each bounded by the sink's timeout */
		struct fp_slot *x = slot_at(fp, m++);
		if (x->send) feed_sink_wait(fp->sink, x->ev, x->send, 1);
		if (!slot_ok(x)) break;           /* what follows is flushed anyway */
	}
	while (m == want && m < fp->inflight  /* and what else is complete */
	       && (!slot_at(fp, m)->send
	           || feed_sink_wait(fp->sink, slot_at(fp, m)->ev, slot_at(fp, m)->send, 0)))
		m++;
	uint64_t done_us = histo_now_us();
	if (m == 1 && slot_at(fp, 0)->n == 0 && slot_at(fp, 0)->skip_to == fp->cur_in) {
		/* Nothing to write back (no row, no cursor move): no txn, no
		 * fsync. The lease is renewed by its own timer. */
		fp->head = (fp->head + 1) % fp->window;
		fp->inflight--;
		fp->retry_at = 0;
		return 0;
	}
	for (int k = 0; k < m; k++)
		if (slot_at(fp, k)->send) histo_observe(h_publish, done_us - sent_us[slot_at(fp, k) - fp->slots]);
	if (slot_at(fp, 0)->send && getenv("FP_TEST_CRASH_AFTER_PUBLISH")) {
		log_notice("FP_TEST_CRASH_AFTER_PUBLISH: exiting after the sink call, before write-back");
		_exit(3);
	}
	uint64_t t_wb = histo_now_us();

	MDB_txn *t = store_begin(d->st, 0);
	int wrc = fp_lease_check_renew(fp, t);
	if (wrc < 0) {
		mdb_txn_abort(t);
		fp_drain_flush(fp);
		fp_drain_schedule(fp, 500);
		return 0;
	}
	if (wrc) goto fail;
	long long now = now_ms();
	uint64_t cur_in = fp->cur_in, new_cursor = cur_in;
	int blocked = 0, closed = 0, more = 0;
	size_t ok = 0, dead = 0;
	long long retry_delay = 0;
	for (int k = 0; k < m; k++) {
		struct fp_slot *x = slot_at(fp, k);
		if (!blocked && x->skip_to > new_cursor) new_cursor = x->skip_to;
		if (x->n == (size_t)fp->batch) more = 1;
		for (size_t i = 0; i < x->n; i++) {
			struct feed_event *e = &x->ev[i];
			struct outbox_row *r = &x->rows[i];
			if (e->rc == FEED_OK) {
				r->attempts++;
				r->control_version = e->control_version;
				r->published_ms = now;
				if ((wrc = outbox_row_put(t, d->st, DB_OUTBOX, e->pos, r))) goto fail;
				ok++;
				if (!blocked) new_cursor = e->pos + 1;
				continue;
			}
			if (blocked || strcmp(e->err, "not attempted") == 0) { blocked = 1; continue; }
			blocked = 1;
			if (e->rc == FEED_ERR_CLOSED) { closed = 1; continue; }
			r->attempts++;
			feed_clip_utf8(r->last_error, e->err, strlen(e->err), FEED_ERR_MAX);
			(*fp->c_failed)++;
			if (e->rc == FEED_ERR_EVENT && r->attempts >= fp->max_attempts) {
				if ((wrc = outbox_row_put(t, d->st, DB_FEED_DEAD, e->pos, r))) goto fail;
				if ((wrc = outbox_row_del(t, d->st, DB_OUTBOX, e->pos))) goto fail;
				log_err("outbox %llu (%s) moved to feed_dead after %lld attempts: %s",
				        (unsigned long long)e->pos, r->event_id, (long long)r->attempts, r->last_error);
				dead++;
				new_cursor = e->pos + 1;
				more = 1;
				continue;
			}
			if ((wrc = outbox_row_put(t, d->st, DB_OUTBOX, e->pos, r))) goto fail;
			retry_delay = backoff_for(fp, r->attempts);
			log_warnx("publishing outbox %llu (%s) failed (attempt %lld, retry in %lld ms): %s",
			          (unsigned long long)e->pos, r->event_id, (long long)r->attempts, retry_delay, r->last_error);
		}
	}
	/* Move the cursor only if nobody moved it meanwhile (fedctl feed retry
	 * rewinds it; its rewind must win). */
	int rewound = 0;
	if (new_cursor != cur_in) {
		if (outbox_cursor_get(t, d->st) == cur_in) {
			if ((wrc = outbox_cursor_put(t, d->st, new_cursor))) goto fail;
		} else rewound = more = 1;
	}
	int skipped = m == 1 && slot_at(fp, 0)->n == 0 && new_cursor != cur_in;
	/* --once and this is the end (nothing more to read, nothing else in
	 * flight, nothing to retry): the lease goes in this txn, committed
	 * with full syncs, instead of in one more commit at exit. */
	int final = fp->once && !more && !dead && !skipped && !blocked && !rewound && !closed && !retry_delay
	           && fp->inflight == m;
	if (final && (wrc = outbox_lease_del(t, d->st))) goto fail;
	uint64_t t_commit = histo_now_us();
	/* One sync, not two (store/outbox.h): an OS crash may undo this
	 * txn until the next commit syncs the file; its rows are then
	 * re-published and the stream drops them as duplicates (the same
	 * as rows acked but not yet written back). */
	if ((wrc = final ? store_commit(t) : outbox_commit_relaxed(t, d->st)))   /* a failed commit frees the txn */
		return write_failed(fp, wrc);
	if (final) {
		fp->have_lease = 0;
		fp->once_done = 1;
		*fp->g_lease = 0;
	}
	log_debug("write-back: %d batch(es), %zu published; waited %llu us, "
	          "wrote %llu us, committed %llu us; %d batch(es) in flight", m, ok,
	          (unsigned long long)(done_us - t_wait),
	          (unsigned long long)(t_commit - t_wb), (unsigned long long)(histo_now_us() - t_commit),
	          fp->inflight - m);
	fp_lease_committed(fp);               /* renewed in this txn */
	fp->head = (fp->head + m) % fp->window;
	fp->inflight -= m;
	if (!rewound) fp->cur_in = new_cursor;
	/* The batches behind a failure (or a rewind) are re-read from the
	 * stored cursor: drop them. */
	if (blocked || rewound || dead) fp_drain_flush(fp);
	*fp->c_published += ok;
	*fp->c_dead += dead;
	(*fp->c_batches)++;
	*fp->g_cursor = (int64_t)new_cursor;
	if (closed) {
		log_info("the sink's reader went away; stopping (published rows are exactly those written)");
		fp->stopping = 1;
		daemon_stop(d, 0);
		return 0;
	}
	if (retry_delay) {
		fp->retry_at = mono_ms() + retry_delay;
		return 0;
	}
	fp->retry_at = 0;
	return more || dead || fp->inflight > 0 || skipped;
fail:
	mdb_txn_abort(t);
	return write_failed(fp, wrc);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct feedpump *fp = arg;
	if (fp->stopping) return;
	if (fp->once_done) {                   /* the last write-back released the lease */
		log_info("--once: outbox drained");
		fp->stopping = 1;
		daemon_stop(fp->d, 0);
		return;
	}
	int held = fp_lease_held(fp);
	if (!held) {
		outbox_meta_sync(fp->d->st, 0);   /* a lease undone by an OS crash is no one's */
		held = fp_lease_acquire(fp);
		outbox_meta_sync(fp->d->st, 1);
	}
	if (!held) {
		fp_drain_schedule(fp, fp->d->st->full ? FULL_RETRY_MS : 500);
		return;
	}
	if (fp->retry_at && mono_ms() < fp->retry_at) {
		fp_drain_schedule(fp, 0);
		return;
	}
	fp->retry_at = 0;
	/* the store is full: publish nothing that cannot be written back; a
	 * small write (the lease's renewal) says when space has returned */
	if (fp->d->st->full && fp_lease_renew(fp) == MDB_MAP_FULL) {
		fp->retry_at = mono_ms() + FULL_RETRY_MS;
		fp_drain_schedule(fp, FULL_RETRY_MS);
		return;
	}
	int more = drain_batch(fp);
	if (fp->stopping) return;
	if (more) fp_drain_schedule(fp, 0);
	else if (fp->retry_at) fp_drain_schedule(fp, fp->retry_at - mono_ms());
	else if (fp->once_done) drain_cb(fd, what, arg);
	else if (fp->once && fp->have_lease) {
		log_info("--once: outbox drained");
		fp->stopping = 1;
		daemon_stop(fp->d, 0);
	}
}

static void slots_make(struct feedpump *fp)
{
	fp->window = 1;
	if (feed_sink_async(fp->sink)) {   /* the ring: twice the rows in flight during a commit */
		int w = (WINDOW_ROWS + fp->batch - 1) / fp->batch;
		fp->window = w > RING_MAX / 2 ? RING_MAX : 2 * w;
	}
	/* a slot's arrays are made when fill first uses it: a
	 * short drain touches only the slots it fills */
	fp->slots = xcalloc((size_t)fp->window, sizeof *fp->slots);
	for (int i = 0; i < fp->window; i++)
		buf_init(&fp->slots[i].arena);
}

static void slots_free(struct feedpump *fp)
{
	for (int i = 0; fp->slots && i < fp->window; i++) {
		free(fp->slots[i].ev);
		free(fp->slots[i].rows);
		buf_free(&fp->slots[i].arena);
	}
	free(fp->slots);
	fp->slots = NULL;
}

void fp_drain_init(struct feedpump *fp)
{
	fp->drain_ev = evtimer_new(fp->d->base, drain_cb, fp);
	if (!fp->drain_ev) fatalx("cannot create the drain timer");
	slots_make(fp);
}

void fp_drain_resize(struct feedpump *fp, int batch)
{
	if (batch == fp->batch) return;
	fp_drain_flush(fp);
	slots_free(fp);
	fp->batch = batch;
	slots_make(fp);
	fp_drain_schedule(fp, 0);
}
