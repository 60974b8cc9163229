/* feed_sink_nats.c: NATS JetStream as the feed. Nats-Msg-Id = event ID, so
 * a retried publish inside the stream's duplicate window is acked as a
 * duplicate carrying the original sequence; control version = that stream
 * sequence. Batches are published asynchronously: submit queues the batch
 * and returns at once, the sink's publisher thread builds and sends its
 * messages in submit order (so the drain reads the next batch from LMDB
 * while this one goes out), several batches may be in flight. Each
 * message asks for its JetStream ack on a reply subject of our own,
 * <inbox>.<n>, n counting the messages this sink sent: the ack (read on
 * the subscription's thread, parsed by our JSON parser) names its event
 * by n alone, with no per-message bookkeeping in libnats. wait collects a
 * batch.
 * An event counts as published only on an ack from our stream: an error
 * reply, a "no responders" status, an ack from another stream (the
 * subject bound elsewhere) are errors, so is no ack by the batch's
 * deadline (sent + nats_timeout + 1 s). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "feed/feed_nats.h"
#include "feed/fleet_mac.h"
#include "matrix/json.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"

/* A span = one submitted batch, waited for (released) in submit order;
 * sent once the publisher thread has handed all of it to libnats (it
 * reads the events until then), the ack deadline counted from there; its
 * events' replies are numbered base, base+1, ... */
struct span { struct feed_event *ev; size_t n, first, pending; int sent; uint64_t base; struct timespec deadline; };
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
	/* replies: <inbox>.<n>; n of the next message sent (publisher thread) */
	natsSubscription *sub;
	char            inbox[128];
	size_t          inbox_len;
	uint64_t        next_n;
	struct json_doc ack_doc;          /* reused by the subscription's thread */
	const struct fleet_key *mac_key;  /* the fleet feed: members' MAC on each message */
	int             sub_done;         /* the subscription is closed and on_reply returned */
};

/* Every header a published event carries is set here, in one place
 * (body: the message's payload, for a header computed over it). */
static natsStatus set_headers(struct nats_sink *s, natsMsg *m, const struct feed_event *e,
                              const char *body, size_t len)
{
	natsStatus st = natsMsgHeader_Set(m, "Nats-Msg-Id", e->event_id);
	if (st == NATS_OK && s->mac_key) {   /* the fleet feed: members prove it is theirs */
		char mac[FLEET_MAC_LEN + 1];
		fleet_mac(s->mac_key, "feed", e->event_id, body, len, mac);
		st = natsMsgHeader_Set(m, FLEET_MAC_HEADER, mac);
	}
	return st;
}

static void mark(struct span *sp, struct feed_event *e)
{
	sp->pending--;
	while (sp->first < sp->n && sp->ev[sp->first].rc != FEED_PENDING) sp->first++;
	(void)e;
}

/* Mark e (under mu): published with sequence seq, or failed. */
static void settle(struct nats_sink *s, struct span *sp, struct feed_event *e, int rc, uint64_t seq,
                   const char *err)
{
	if (e->rc != FEED_PENDING) return;
	e->rc = rc;
	if (rc == FEED_OK) e->control_version = seq;
	else snprintf(e->err, sizeof e->err, "%s", err);
	mark(sp, e);
	if (!sp->pending) pthread_cond_broadcast(&s->cv);
}

/* A JetStream ack on <inbox>.<n>: {"stream":..,"seq":..[,"duplicate":true]}
 * or {"error":{..,"description":..}}, or a "no responders" status. */
static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct nats_sink *s = closure;
	const char *subj = natsMsg_GetSubject(msg);
	uint64_t n = 0;
	const char *p = subj && strlen(subj) > s->inbox_len ? subj + s->inbox_len : "";
	if (*p == '.') p++; else p = "";
	for (; *p >= '0' && *p <= '9'; p++) n = n * 10 + (uint64_t)(*p - '0');
	if (*p) { natsMsg_Destroy(msg); return; }   /* not one of ours */
	int rc = FEED_ERR_SINK, dup = 0;
	uint64_t seq = 0;
	char err[FEED_ERR_MAX + 56];
	if (natsMsg_IsNoResponders(msg)) {
		snprintf(err, sizeof err, "nats publish: no responders (no stream stores %.100s)", s->subject);
	} else if (json_parse(&s->ack_doc, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 4) < 0
	           || s->ack_doc.tok[0].type != JSON_OBJECT) {
		snprintf(err, sizeof err, "nats publish: an ack that is not a JSON object");
	} else {
		struct json_doc *d = &s->ack_doc;
		int t, st = json_obj_get(d, 0, "stream"), sq = json_obj_get(d, 0, "seq");
		if ((t = json_obj_get(d, 0, "error")) >= 0) {
			int ds = d->tok[t].type == JSON_OBJECT ? json_obj_get(d, t, "description") : -1;
			char desc[160] = "?";
			if (ds >= 0 && d->tok[ds].type == JSON_STRING) json_str_copy(d, ds, desc, sizeof desc);
			snprintf(err, sizeof err, "nats publish: %s", desc);
		} else if (st < 0 || d->tok[st].type != JSON_STRING || !json_str_eq(d, st, s->stream)) {
			char other[80] = "?";
			if (st >= 0 && d->tok[st].type == JSON_STRING) json_str_copy(d, st, other, sizeof other);
			snprintf(err, sizeof err, "nats publish: stored by stream %.64s, not %.64s "
			         "(its subject is bound to another stream)", other, s->stream);
		} else if (sq < 0 || d->tok[sq].type != JSON_INT || d->tok[sq].ival <= 0) {
			snprintf(err, sizeof err, "nats publish: an ack without a sequence");
		} else {
			rc = FEED_OK;
			seq = (uint64_t)d->tok[sq].ival;
			t = json_obj_get(d, 0, "duplicate");
			dup = t >= 0 && d->tok[t].type == JSON_TRUE;
			err[0] = 0;
		}
	}
	pthread_mutex_lock(&s->mu);
	for (size_t k = 0; k < s->nspans; k++) {     /* almost always the oldest */
		struct span *sp = &s->spans[k];
		if (sp->base == UINT64_MAX || n < sp->base || n - sp->base >= sp->n) continue;
		struct feed_event *e = &sp->ev[n - sp->base];
		if (rc == FEED_OK && dup && e->rc == FEED_PENDING) s->dups++;
		settle(s, sp, e, rc, seq, err);
		break;
	}
	pthread_mutex_unlock(&s->mu);
	natsMsg_Destroy(msg);
}

/* libnats: called once the subscription is closed and on_reply has
 * returned for the last time; only then may s (its ack_doc, spans) go. */
static void on_sub_complete(void *closure)
{
	struct nats_sink *s = closure;
	pthread_mutex_lock(&s->mu);
	s->sub_done = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Unsubscribe and wait (up to 10 s) until no on_reply runs or can run:
 * acks still arriving at close (a busy stream, or anyone sending to our
 * inbox) would otherwise meet a freed sink. */
static void sub_close(struct nats_sink *s, int complete_cb)
{
	if (!s->sub) return;
	natsSubscription_Unsubscribe(s->sub);
	if (complete_cb) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 10;
		pthread_mutex_lock(&s->mu);
		while (!s->sub_done)
			if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0) break;
		int done = s->sub_done;
		pthread_mutex_unlock(&s->mu);
		if (!done) log_warnx("nats sink: the ack subscription did not close within 10 s");
	}
	natsSubscription_Destroy(s->sub);
	s->sub = NULL;
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
static void send_span(struct nats_sink *s, struct feed_event *ev, size_t n, uint64_t base, struct buf *body)
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
		char reply[160];
		snprintf(reply, sizeof reply, "%s.%llu", s->inbox, (unsigned long long)(base + i));
		natsStatus st = natsMsg_Create(&m, s->subject, reply, body->data, (int)body->len);
		if (st == NATS_OK) st = set_headers(s, m, e, body->data, body->len);
		if (st == NATS_OK) st = natsConnection_PublishMsg(s->n.nc, m);
		natsMsg_Destroy(m);
		if (st != NATS_OK) {
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
		uint64_t base = sp->base = s->next_n;   /* its events' reply numbers */
		s->next_n += n;
		pthread_mutex_unlock(&s->mu);
		send_span(s, ev, n, base, &body);
		pthread_mutex_lock(&s->mu);
		sp = span_of(s, ev);              /* spans move only when released, never unsent ones */
		sp->sent = 1;
		/* nothing but this deadline reports an ack that never comes;
		 * the extra second covers a slow subscription thread */
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
	s->mac_key = o->mac_key;
	pthread_cond_init(&s->pub_cv, NULL);
	natsInbox *inbox = NULL;
	char subj[200];
	natsStatus st;
	if (feed_nats_connect(&s->n, o, NULL, NULL, 1, err, errlen) < 0) {
		pthread_mutex_destroy(&s->mu); pthread_cond_destroy(&s->cv); pthread_cond_destroy(&s->pub_cv);
		free(s);
		return -1;
	}
	if ((st = natsInbox_Create(&inbox)) == NATS_OK) {
		snprintf(s->inbox, sizeof s->inbox, "%s", (const char *)inbox);
		s->inbox_len = strlen(s->inbox);
		natsInbox_Destroy(inbox);
		snprintf(subj, sizeof subj, "%s.*", s->inbox);
		st = natsConnection_Subscribe(&s->sub, s->n.nc, subj, on_reply, s);
	}
	int complete_cb = 0;
	if (st == NATS_OK) complete_cb = (st = natsSubscription_SetOnCompleteCB(s->sub, on_sub_complete, s)) == NATS_OK;
	if (st == NATS_OK) st = natsSubscription_SetPendingLimits(s->sub, -1, -1);   /* never drop an ack */
	if (st != NATS_OK) {
		snprintf(err, errlen, "nats: cannot subscribe to the ack subject: %s", natsStatus_GetText(st));
		sub_close(s, complete_cb);
		feed_nats_close(&s->n);
		pthread_mutex_destroy(&s->mu); pthread_cond_destroy(&s->cv); pthread_cond_destroy(&s->pub_cv);
		free(s);
		return -1;
	}
	s->maxpay = natsConnection_GetMaxPayload(s->n.nc);
	if (pthread_create(&s->pub, NULL, pub_main, s) != 0) {
		snprintf(err, errlen, "nats sink: cannot start the publisher thread");
		natsSubscription_Destroy(s->sub);
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
	/* no reply numbers until the publisher thread takes it: a late ack of
	 * a released span (its numbers are in the past) must not match */
	sp->base = UINT64_MAX;
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
	/* Release: late acks for these numbers no longer find them. */
	size_t k = (size_t)(sp - s->spans);
	memmove(&s->spans[k], &s->spans[k + 1], (s->nspans - k - 1) * sizeof *sp);
	s->nspans--;
	unsigned long long dups = s->dups;
	s->dups = 0;
	pthread_mutex_unlock(&s->mu);
	if (lost)   /* late acks find no span: their numbers are past */
		log_warnx("nats: %zu publish(es) not acked within %lld ms", lost, s->timeout_ms + 1000);
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
	/* Stop the acks, then the connection (its reader thread ends), then
	 * wait for the subscription's last on_reply: destroying the
	 * subscription while the reader still hands it messages crashed
	 * libnats 3.4 in a flood of acks (feed_nats_lateack). */
	if (s->sub) natsSubscription_Unsubscribe(s->sub);
	if (s->n.nc) natsConnection_Close(s->n.nc);
	sub_close(s, 1);
	feed_nats_close(&s->n);
	json_doc_free(&s->ack_doc);
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
