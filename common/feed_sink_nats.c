/* feed_sink_nats.c: NATS JetStream as the feed. Nats-Msg-Id = event ID, so
 * a retried publish inside the stream's duplicate window is acked as a
 * duplicate carrying the original sequence; control version = that stream
 * sequence. A batch is published asynchronously (one round trip of acks,
 * not one per event); acks come back on libnats' thread and are matched to
 * the batch by their Nats-Msg-Id. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "feed_nats.h"
#include "buf.h"
#include "log.h"

struct nats_sink {
	struct feed_nats n;
	char   subject[256], stream[128];
	long long timeout_ms;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	struct feed_event *batch; size_t nbatch, nacked;
	unsigned long long dups;
};

static struct feed_event *batch_find(struct nats_sink *s, const char *id)
{
	for (size_t i = 0; i < s->nbatch; i++)
		if (strcmp(s->batch[i].event_id, id) == 0) return &s->batch[i];
	return NULL;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct nats_sink *s = closure;
	const char *id = NULL;
	natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
	pthread_mutex_lock(&s->mu);
	struct feed_event *e = id && s->batch ? batch_find(s, id) : NULL;
	if (e && e->rc == -1) {
		if (pa) {
			if (pa->Duplicate) s->dups++;
			e->rc = FEED_OK;
			e->control_version = pa->Sequence;
		} else {
			e->rc = FEED_ERR_SINK;
			snprintf(e->err, sizeof e->err, "nats publish: %s%s%s",
			         pae ? natsStatus_GetText(pae->Err) : "error",
			         pae && pae->ErrText ? ": " : "", pae && pae->ErrText ? pae->ErrText : "");
		}
		s->nacked++;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	natsMsg_Destroy(msg);
}

static int nats_open(struct feed_sink *fs, const struct feed_opts *o, char *err, size_t errlen)
{
	struct nats_sink *s = calloc(1, sizeof *s);
	if (!s) { snprintf(err, errlen, "out of memory"); return -1; }
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	snprintf(s->subject, sizeof s->subject, "%s", o->nats_subject);
	snprintf(s->stream, sizeof s->stream, "%s", o->nats_stream);
	s->timeout_ms = o->nats_timeout_ms > 0 ? o->nats_timeout_ms : 5000;
	if (feed_nats_connect(&s->n, o, on_ack, s, err, errlen) < 0) {
		pthread_mutex_destroy(&s->mu); pthread_cond_destroy(&s->cv);
		free(s);
		return -1;
	}
	fs->priv = s;
	return 0;
}

static void nats_append(struct feed_sink *fs, struct feed_event *ev, size_t n)
{
	struct nats_sink *s = fs->priv;
	struct buf body;
	buf_init(&body);
	int64_t maxpay = natsConnection_GetMaxPayload(s->n.nc);
	pthread_mutex_lock(&s->mu);
	s->batch = ev; s->nbatch = n; s->nacked = 0;
	for (size_t i = 0; i < n; i++) ev[i].rc = -1;   /* pending */
	pthread_mutex_unlock(&s->mu);

	size_t sent = 0, i;
	for (i = 0; i < n; i++) {
		struct feed_event *e = &ev[i];
		buf_reset(&body);
		feed_event_json(&body, e);
		if (maxpay > 0 && (int64_t)body.len > maxpay - 1024) {
			pthread_mutex_lock(&s->mu);
			e->rc = FEED_ERR_EVENT;
			snprintf(e->err, sizeof e->err, "event of %zu bytes exceeds NATS max_payload %lld",
			         body.len, (long long)maxpay);
			pthread_mutex_unlock(&s->mu);
			i++;
			break;
		}
		natsMsg *m = NULL;
		natsStatus st = natsMsg_Create(&m, s->subject, NULL, body.data, (int)body.len);
		if (st == NATS_OK) st = natsMsgHeader_Set(m, "Nats-Msg-Id", e->event_id);
		if (st == NATS_OK) {
			jsPubOptions po;
			jsPubOptions_Init(&po);
			po.ExpectStream = s->stream;
			po.MaxWait = s->timeout_ms;
			st = js_PublishMsgAsync(s->n.js, &m, &po);   /* takes m on success */
		}
		if (st != NATS_OK) {
			if (m) natsMsg_Destroy(m);
			pthread_mutex_lock(&s->mu);
			if (e->rc == -1) {
				e->rc = FEED_ERR_SINK;
				snprintf(e->err, sizeof e->err, "nats publish: %s (%s)", natsStatus_GetText(st),
				         nats_GetLastError(NULL));
			}
			pthread_mutex_unlock(&s->mu);
			i++;
			break;
		}
		sent++;
	}
	/* Wait for every ack of what went out (bounded). */
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = s->timeout_ms;
	if (sent) js_PublishAsyncComplete(s->n.js, &po);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 1;
	pthread_mutex_lock(&s->mu);
	while (s->nacked < sent) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0) break;
	}
	for (size_t j = 0; j < n; j++)
		if (ev[j].rc == -1) {
			ev[j].rc = FEED_ERR_SINK;
			snprintf(ev[j].err, sizeof ev[j].err, "%s", j < i ?
			         "nats publish: no ack (timeout; server down?)" : "not attempted");
		}
	s->batch = NULL; s->nbatch = 0;
	unsigned long long dups = s->dups;
	s->dups = 0;
	pthread_mutex_unlock(&s->mu);
	if (dups)
		log_info("nats: %llu duplicate publish ack(s): retried event IDs resolved to their original sequence", dups);
	buf_free(&body);
}

static void nats_close(struct feed_sink *fs)
{
	struct nats_sink *s = fs->priv;
	if (!s) return;
	feed_nats_close(&s->n);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

const struct feed_sink_ops feed_sink_nats_ops = {
	.name = "nats", .help = "NATS JetStream ([feed] nats_url, nats_subject, nats_stream; control version = stream sequence)",
	.open = nats_open, .append = nats_append, .close = nats_close,
};
FEED_SINK_REGISTER(feed_sink_nats_ops)
