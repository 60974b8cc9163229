/* feed_sink_nats.c: NATS JetStream as the feed. Nats-Msg-Id = event ID, so
 * a retried publish inside the stream's duplicate window is acked as a
 * duplicate carrying the original sequence; control version = that stream
 * sequence. Batches are published asynchronously: submit queues the batch
 * and returns at once, the sink's publisher thread builds and sends its
 * messages in submit order (so the drain reads the next batch from LMDB
 * while this one goes out), several batches may be in flight; acks come
 * back on libnats' thread and are matched to their event by Nats-Msg-Id;
 * wait collects a batch.
 * An event counts as published only on an ack from our stream: an ack from
 * another stream (the subject bound elsewhere) is an error, so is no ack
 * by the span's deadline (submit + nats_timeout + 1 s; libnats keeps no
 * per-message timer for us, which would cost an allocation and a timeout
 * message per event). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "feed/feed_nats.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"

/* A span = one submitted batch, waited for (released) in submit order;
 * sent once the publisher thread has handed all of it to libnats (it
 * reads the events until then), the ack deadline counted from there. */
struct span { struct feed_event *ev; size_t n, first, pending; int sent; struct timespec deadline; };
#define MAX_SPANS 256

struct nats_sink {
	struct feed_nats n;
	char   subject[256], stream[128];
	long long timeout_ms;
	int64_t maxpay;
	pthread_mutex_t mu;
	pthread_cond_t  cv;               /* acks and sent spans; on CLOCK_MONOTONIC */
	pthread_cond_t  pub_cv;           /* a span to send, or stop */
	pthread_t       pub;
	int             pub_started, stop;
	struct span spans[MAX_SPANS]; size_t nspans;
	unsigned long long dups;
};

/* Every header a published event carries is set here, in one place. */
static natsStatus set_headers(struct nats_sink *s, natsMsg *m, const struct feed_event *e)
{
	(void)s;
	return natsMsgHeader_Set(m, "Nats-Msg-Id", e->event_id);
}

static void mark(struct span *sp, struct feed_event *e)
{
	sp->pending--;
	while (sp->first < sp->n && sp->ev[sp->first].rc != FEED_PENDING) sp->first++;
	(void)e;
}

/* Acks come back in publish order, so the match is almost always the
 * first pending event of the oldest span. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct nats_sink *s = closure;
	const char *id = NULL;
	natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
	pthread_mutex_lock(&s->mu);
	for (size_t k = 0; id && k < s->nspans; k++) {
		struct span *sp = &s->spans[k];
		for (size_t j = sp->first; j < sp->n; j++) {
			struct feed_event *e = &sp->ev[j];
			if (e->rc != FEED_PENDING || strcmp(e->event_id, id) != 0) continue;
			if (pa && pa->Stream && strcmp(pa->Stream, s->stream) != 0) {
				e->rc = FEED_ERR_SINK;
				snprintf(e->err, sizeof e->err, "nats publish: stored by stream %.64s, not %.64s "
				         "(its subject is bound to another stream)", pa->Stream, s->stream);
			} else if (pa) {
				if (pa->Duplicate) s->dups++;
				e->rc = FEED_OK;
				e->control_version = pa->Sequence;
			} else {
				e->rc = FEED_ERR_SINK;
				snprintf(e->err, sizeof e->err, "nats publish: %s%s%s",
				         pae ? natsStatus_GetText(pae->Err) : "error",
				         pae && pae->ErrText ? ": " : "", pae && pae->ErrText ? pae->ErrText : "");
			}
			mark(sp, e);
			if (!sp->pending) pthread_cond_broadcast(&s->cv);
			goto done;
		}
	}
done:
	pthread_mutex_unlock(&s->mu);
	natsMsg_Destroy(msg);
}

static struct span *span_of(struct nats_sink *s, const struct feed_event *ev)
{
	for (size_t k = 0; k < s->nspans; k++)
		if (s->spans[k].ev == ev) return &s->spans[k];
	return NULL;
}

/* Mark e failed (under mu). */
static void fail(struct nats_sink *s, struct feed_event *ev, struct feed_event *e, int rc, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void fail(struct nats_sink *s, struct feed_event *ev, struct feed_event *e, int rc, const char *fmt, ...)
{
	if (e->rc != FEED_PENDING) return;   /* acked already */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof e->err, fmt, ap);
	va_end(ap);
	e->rc = rc;
	mark(span_of(s, ev), e);
}

/* The publisher thread: sends ev[0..n) in order (the first failure stops
 * the span: what follows is "not attempted"). The events are read without
 * the lock: they belong to the sink until the span is released, which
 * waits for it to be sent. */
static void send_span(struct nats_sink *s, struct feed_event *ev, size_t n, struct buf *body)
{
	size_t i;
	for (i = 0; i < n; i++) {
		struct feed_event *e = &ev[i];
		buf_reset(body);
		feed_event_json(body, e);
		if (s->maxpay > 0 && (int64_t)body->len > s->maxpay - 1024) {
			pthread_mutex_lock(&s->mu);
			fail(s, ev, e, FEED_ERR_EVENT, "event of %zu bytes exceeds NATS max_payload %lld",
			     body->len, (long long)s->maxpay);
			pthread_mutex_unlock(&s->mu);
			i++;
			break;
		}
		natsMsg *m = NULL;
		natsStatus st = natsMsg_Create(&m, s->subject, NULL, body->data, (int)body->len);
		if (st == NATS_OK) st = set_headers(s, m, e);
		if (st == NATS_OK) st = js_PublishMsgAsync(s->n.js, &m, NULL);   /* takes m on success */
		if (st != NATS_OK) {
			if (m) natsMsg_Destroy(m);
			pthread_mutex_lock(&s->mu);
			fail(s, ev, e, FEED_ERR_SINK, "nats publish: %s (%s)", natsStatus_GetText(st), nats_GetLastError(NULL));
			pthread_mutex_unlock(&s->mu);
			i++;
			break;
		}
	}
	/* What was not sent will never be acked. */
	pthread_mutex_lock(&s->mu);
	for (; i < n; i++) fail(s, ev, &ev[i], FEED_ERR_SINK, "not attempted");
	pthread_mutex_unlock(&s->mu);
}

static void *pub_main(void *arg)
{
	struct nats_sink *s = arg;
	struct buf body;
	buf_init(&body);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct span *sp = NULL;
		for (size_t k = 0; k < s->nspans && !sp; k++)
			if (!s->spans[k].sent) sp = &s->spans[k];
		if (!sp) {
			if (s->stop) break;
			pthread_cond_wait(&s->pub_cv, &s->mu);
			continue;
		}
		struct feed_event *ev = sp->ev;
		size_t n = sp->n;
		pthread_mutex_unlock(&s->mu);
		send_span(s, ev, n, &body);
		pthread_mutex_lock(&s->mu);
		sp = span_of(s, ev);              /* spans move only when released, never unsent ones */
		sp->sent = 1;
		/* libnats reports no ack by itself (no per-message MaxWait); the
		 * extra second covers a slow ack thread */
		clock_gettime(CLOCK_MONOTONIC, &sp->deadline);
		long long ms = s->timeout_ms + 1000;
		sp->deadline.tv_sec += (time_t)(ms / 1000);
		sp->deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (sp->deadline.tv_nsec >= 1000000000L) { sp->deadline.tv_sec++; sp->deadline.tv_nsec -= 1000000000L; }
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	buf_free(&body);
	return NULL;
}

static int nats_open(struct feed_sink *fs, const struct feed_opts *o, char *err, size_t errlen)
{
	struct nats_sink *s = xcalloc(1, sizeof *s);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(s->subject, sizeof s->subject, "%s", o->nats_subject);
	snprintf(s->stream, sizeof s->stream, "%s", o->nats_stream);
	s->timeout_ms = o->nats_timeout_ms > 0 ? o->nats_timeout_ms : 5000;
	/* feedpump bounds the rows in flight (its ring); a library bound
	 * below that would stall publishes on the drain's thread */
	pthread_cond_init(&s->pub_cv, NULL);
	if (feed_nats_connect_pending(&s->n, o, on_ack, s, 1 << 20, err, errlen) < 0) {
		pthread_mutex_destroy(&s->mu); pthread_cond_destroy(&s->cv); pthread_cond_destroy(&s->pub_cv);
		free(s);
		return -1;
	}
	s->maxpay = natsConnection_GetMaxPayload(s->n.nc);
	if (pthread_create(&s->pub, NULL, pub_main, s) != 0) {
		snprintf(err, errlen, "nats sink: cannot start the publisher thread");
		feed_nats_close(&s->n);
		pthread_mutex_destroy(&s->mu); pthread_cond_destroy(&s->cv); pthread_cond_destroy(&s->pub_cv);
		free(s);
		return -1;
	}
	s->pub_started = 1;
	fs->priv = s;
	return 0;
}

static void nats_submit(struct feed_sink *fs, struct feed_event *ev, size_t n)
{
	struct nats_sink *s = fs->priv;
	pthread_mutex_lock(&s->mu);
	if (s->nspans == MAX_SPANS) {   /* the caller's window is bounded below this */
		pthread_mutex_unlock(&s->mu);
		for (size_t i = 0; i < n; i++) { ev[i].rc = FEED_ERR_SINK; snprintf(ev[i].err, sizeof ev[i].err, "not attempted"); }
		log_err("nats sink: too many batches in flight");
		return;
	}
	struct span *sp = &s->spans[s->nspans++];
	memset(sp, 0, sizeof *sp);
	sp->ev = ev; sp->n = n; sp->pending = n;
	for (size_t i = 0; i < n; i++) ev[i].rc = FEED_PENDING;
	pthread_cond_signal(&s->pub_cv);
	pthread_mutex_unlock(&s->mu);
}

static int nats_wait(struct feed_sink *fs, struct feed_event *ev, size_t n, int block)
{
	struct nats_sink *s = fs->priv;
	pthread_mutex_lock(&s->mu);
	struct span *sp = span_of(s, ev);
	if (!sp) { pthread_mutex_unlock(&s->mu); return 1; }
	if ((!sp->sent || sp->pending) && !block) { pthread_mutex_unlock(&s->mu); return 0; }
	while (!sp->sent)                     /* the publisher thread always finishes a span */
		pthread_cond_wait(&s->cv, &s->mu);
	while (sp->pending)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &sp->deadline) != 0) break;
	size_t lost = 0;
	for (size_t j = 0; j < sp->n; j++)
		if (ev[j].rc == FEED_PENDING) {
			ev[j].rc = FEED_ERR_SINK;
			snprintf(ev[j].err, sizeof ev[j].err, "nats publish: no ack (timeout; server down?)");
			lost++;
		}
	/* Release: late acks for these IDs no longer find them. */
	size_t k = (size_t)(sp - s->spans);
	memmove(&s->spans[k], &s->spans[k + 1], (s->nspans - k - 1) * sizeof *sp);
	s->nspans--;
	unsigned long long dups = s->dups;
	s->dups = 0;
	pthread_mutex_unlock(&s->mu);
	if (lost) {
		/* Acks that did not come by the deadline: libnats still holds
		 * those messages for acks that may never come. Drop every
		 * publish it holds: the drain re-publishes whatever is not
		 * written back (the batches behind this one are flushed), and a
		 * late ack now finds nothing to match. */
		natsMsgList pend = { 0 };
		if (js_PublishAsyncGetPendingList(&pend, s->n.js) == NATS_OK) {
			log_warnx("nats: %zu publish(es) not acked in %lld ms; dropping the %d still pending",
			          lost, s->timeout_ms + 1000, pend.Count);
			natsMsgList_Destroy(&pend);
		}
	}
	if (dups)
		log_info("nats: %llu duplicate publish ack(s): retried event IDs resolved to their original sequence", dups);
	(void)n;
	return 1;
}

static void nats_append(struct feed_sink *fs, struct feed_event *ev, size_t n)
{
	nats_submit(fs, ev, n);
	nats_wait(fs, ev, n, 1);
}

static void nats_close(struct feed_sink *fs)
{
	struct nats_sink *s = fs->priv;
	if (!s) return;
	if (s->pub_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->pub_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->pub, NULL);   /* it finishes what was submitted first */
	}
	feed_nats_close(&s->n);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->pub_cv);
	free(s);
}

const struct feed_sink_ops feed_sink_nats_ops = {
	.name = "nats", .help = "NATS JetStream ([feed] nats_url, nats_subject, nats_stream; control version = stream sequence)",
	.open = nats_open, .append = nats_append, .close = nats_close,
	.submit = nats_submit, .wait = nats_wait,
};
FEED_SINK_REGISTER(feed_sink_nats_ops)
