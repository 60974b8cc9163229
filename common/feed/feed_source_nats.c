/* feed_source_nats.c: JetStream pull consumer as a feed source. With a
 * durable name the consumer's position lives on the server: poll fetches
 * what is unacked, ack(event_id) acks the message only after the caller
 * committed its apply (the last of a fetched batch with AckSync, the others
 * without waiting); a crash before the ack means redelivery after
 * ack_wait, which the caller's applied_events guard turns into a no-op.
 * Without a durable name (fedctl feed tail) it is an ephemeral consumer that
 * starts at since+1 and needs no acks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "feed/feed_nats.h"
#include "feed/feed_source.h"
#include "feed/fleet_mac.h"
#include "core/buf.h"
#include "core/xalloc.h"

struct pending { char id[256]; natsMsg *msg; };
struct nats_src {
	struct feed_nats n;
	natsSubscription *sub;
	int durable;
	uint64_t started_at;
	struct pending *pend; size_t npend, cap;
	char subject[256], stream[128];
	const struct feed_opts *o;
	char durable_name[128];
	long long ack_wait_ms;
	const struct fleet_key *mac_key;   /* the fleet feed: check each message's MAC */
};

static int natssrc_open(struct feed_source *s, const char *arg, const struct feed_opts *o,
                        struct store *st, char *err, size_t errlen)
{
	struct nats_src *ns = xcalloc(1, sizeof *ns);
	struct feed_opts oo = *o;
	if (*arg) oo.nats_subject = arg;
	snprintf(ns->subject, sizeof ns->subject, "%s", oo.nats_subject);
	snprintf(ns->stream, sizeof ns->stream, "%s", oo.nats_stream);
	if (o->nats_durable && *o->nats_durable) {
		ns->durable = 1;
		snprintf(ns->durable_name, sizeof ns->durable_name, "%s", o->nats_durable);
	}
	ns->ack_wait_ms = o->nats_ack_wait_ms > 0 ? o->nats_ack_wait_ms : 30000;
	ns->mac_key = o->mac_key;
	if (feed_nats_connect(&ns->n, &oo, NULL, NULL, 0, err, errlen) < 0) { free(ns); return -1; }
	s->priv = ns;
	return 0;
}

/* The subscription is made at the first poll, when `since` is known. */
static int subscribe(struct nats_src *ns, uint64_t since, char *err, size_t errlen)
{
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = ns->stream;
	so.ManualAck = true;
	so.Config.AckPolicy = ns->durable ? js_AckExplicit : js_AckNone;
	so.Config.AckWait = ns->ack_wait_ms * 1000000LL;
	if (since > 0) {
		so.Config.DeliverPolicy = js_DeliverByStartSequence;
		so.Config.OptStartSeq = since + 1;
	} else so.Config.DeliverPolicy = js_DeliverAll;
	jsErrCode jerr = 0;
	natsStatus st;
	if (ns->durable) {
		/* An existing durable keeps its position and config: bind to it. */
		jsConsumerInfo *ci = NULL;
		if (js_GetConsumerInfo(&ci, ns->n.js, ns->stream, ns->durable_name, NULL, &jerr) == NATS_OK) {
			jsConsumerInfo_Destroy(ci);
			jsSubOptions_Init(&so);
			so.Stream = ns->stream;
			so.Consumer = ns->durable_name;
			so.ManualAck = true;
		}
	}
	st = js_PullSubscribe(&ns->sub, ns->n.js, ns->subject,
	                                 ns->durable ? ns->durable_name : NULL, NULL, &so, &jerr);
	if (st != NATS_OK) {
		snprintf(err, errlen, "nats source: pull subscribe %s on %s: %s (jerr %d)",
		         ns->durable ? ns->durable_name : "(ephemeral)", ns->subject, natsStatus_GetText(st), (int)jerr);
		return -1;
	}
	return 0;
}

static int natssrc_poll(struct feed_source *s, uint64_t since, size_t max, long long wait_ms,
                        struct feed_item **items, size_t *n, char *err, size_t errlen)
{
	struct nats_src *ns = s->priv;
	if (!ns->sub && subscribe(ns, since, err, errlen) < 0) return -1;
	natsMsgList list = {0};
	jsErrCode jerr = 0;
	natsStatus st = natsSubscription_Fetch(&list, ns->sub, (int)(max > 256 ? 256 : max),
	                                       wait_ms > 0 ? wait_ms : 1, &jerr);
	if (st == NATS_TIMEOUT || (st == NATS_OK && list.Count == 0)) { natsMsgList_Destroy(&list); return 0; }
	if (st != NATS_OK) {
		snprintf(err, errlen, "nats source: fetch: %s", natsStatus_GetText(st));
		natsMsgList_Destroy(&list);
		return -1;
	}
	struct feed_item *it = xcalloc((size_t)list.Count, sizeof *it);
	size_t got = 0;
	for (int i = 0; i < list.Count; i++) {
		natsMsg *m = list.Msgs[i];
		jsMsgMetaData *md = NULL;
		if (natsMsg_GetMetaData(&md, m) != NATS_OK) continue;
		uint64_t cv = md->Sequence.Stream;
		jsMsgMetaData_Destroy(md);
		const char *id = NULL;
		natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
		const char *data = natsMsg_GetData(m);
		int dl = natsMsg_GetDataLength(m);
		if (ns->mac_key) {           /* the fleet feed: a member's MAC over what it published */
			const char *mac = NULL;
			natsMsgHeader_Get(m, FLEET_MAC_HEADER, &mac);
			it[got].mac = fleet_mac_ok(ns->mac_key, "feed", id ? id : "", data, (size_t)(dl > 0 ? dl : 0), mac)
			              ? 1 : -1;
		}
		struct buf b;
		buf_init(&b);
		static const char pfx[] = "{\"control_version\":0,";
		if (dl >= (int)sizeof pfx - 1 && memcmp(data, pfx, sizeof pfx - 1) == 0) {
			buf_printf(&b, "{\"control_version\":%llu,", (unsigned long long)cv);
			buf_add(&b, data + sizeof pfx - 1, (size_t)dl - (sizeof pfx - 1));
		} else buf_add(&b, data, (size_t)dl);
		it[got].cv = cv;
		snprintf(it[got].event_id, sizeof it[got].event_id, "%s", id ? id : "");
		it[got].json_len = b.len;
		it[got].json = buf_steal(&b);
		got++;
		if (ns->durable) {           /* keep the handle until the caller acks */
			if (ns->npend == ns->cap) {
				ns->cap = ns->cap ? ns->cap * 2 : 64;
				ns->pend = xreallocarray(ns->pend, ns->cap, sizeof *ns->pend);
			}
			snprintf(ns->pend[ns->npend].id, sizeof ns->pend[0].id, "%s", id ? id : "");
			ns->pend[ns->npend].msg = m;
			ns->npend++;
			list.Msgs[i] = NULL;
		}
	}
	natsMsgList_Destroy(&list);
	*items = it; *n = got;
	return 0;
}

static int natssrc_ack(struct feed_source *s, const char *event_id, char *err, size_t errlen)
{
	struct nats_src *ns = s->priv;
	for (size_t i = 0; i < ns->npend; i++) {
		if (strcmp(ns->pend[i].id, event_id) != 0) continue;
		/* One replicated round trip a batch, not one an event: the acks
		 * before the batch's last go out without waiting; the last waits,
		 * and the server answers it only after it has processed the ones
		 * sent before it on this connection. A lost ack means a
		 * redelivery, which the applied_events guard makes a no-op. */
		jsErrCode jerr = 0;
		natsStatus st = ns->npend > 1 ? natsMsg_Ack(ns->pend[i].msg, NULL)
		                              : natsMsg_AckSync(ns->pend[i].msg, NULL, &jerr);
		natsMsg_Destroy(ns->pend[i].msg);
		ns->pend[i] = ns->pend[--ns->npend];
		if (st != NATS_OK) {
			snprintf(err, errlen, "nats ack %s: %s (it will be redelivered)", event_id, natsStatus_GetText(st));
			return -1;
		}
		return 0;
	}
	return 0;
}

static void natssrc_close(struct feed_source *s)
{
	struct nats_src *ns = s->priv;
	if (!ns) return;
	for (size_t i = 0; i < ns->npend; i++) natsMsg_Destroy(ns->pend[i].msg);
	free(ns->pend);
	if (ns->sub) {
		if (!ns->durable) natsSubscription_Unsubscribe(ns->sub);
		natsSubscription_Destroy(ns->sub);
	}
	feed_nats_close(&ns->n);
	free(ns);
}

const struct feed_source_ops feed_source_nats_ops = {
	.name = "nats", .open = natssrc_open, .poll = natssrc_poll, .ack = natssrc_ack, .close = natssrc_close,
};
FEED_SOURCE_REGISTER(feed_source_nats_ops)
