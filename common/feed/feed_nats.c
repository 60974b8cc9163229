/* feed_nats.c: connection setup shared by the NATS feed sink and source. */
#include <stdio.h>
#include <string.h>
#include "feed/feed_nats.h"

int feed_nats_connect(struct feed_nats *n, const struct feed_opts *o, jsPubAckHandler ack,
                      void *closure, char *err, size_t errlen)
{
	natsStatus st;
	memset(n, 0, sizeof *n);
	if (!o->nats_url || !*o->nats_url) {
		snprintf(err, errlen, "nats: no server URL ([feed] nats_url or --nats-url)");
		return -1;
	}
	long long to = o->nats_timeout_ms > 0 ? o->nats_timeout_ms : 5000;
	/* a comma-separated list (a cluster): every server is a seed */
	char urls[2048];
	const char *srv[16];
	int nsrv = 0;
	snprintf(urls, sizeof urls, "%s", o->nats_url);
	for (char *save = NULL, *u = strtok_r(urls, ", ", &save); u && nsrv < 16; u = strtok_r(NULL, ", ", &save))
		srv[nsrv++] = u;
	if ((st = natsOptions_Create(&n->opts)) != NATS_OK
	    || (st = nsrv > 1 ? natsOptions_SetServers(n->opts, srv, nsrv) : natsOptions_SetURL(n->opts, o->nats_url)) != NATS_OK
	    || (st = natsOptions_SetTimeout(n->opts, to)) != NATS_OK
	    || (st = natsOptions_SetMaxReconnect(n->opts, -1)) != NATS_OK
	    || (st = natsOptions_SetReconnectWait(n->opts, 250)) != NATS_OK
	    || (st = natsOptions_SetName(n->opts, "fedpipe-feed")) != NATS_OK) {
		snprintf(err, errlen, "nats: options: %s", natsStatus_GetText(st));
		goto fail;
	}
	if ((st = natsConnection_Connect(&n->nc, n->opts)) != NATS_OK) {
		snprintf(err, errlen, "nats: cannot connect to %s: %s", o->nats_url, natsStatus_GetText(st));
		goto fail;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = to;
	jo.PublishAsync.AckHandler = ack;
	jo.PublishAsync.AckHandlerClosure = closure;
	jo.PublishAsync.MaxPending = 4096;
	if ((st = natsConnection_JetStream(&n->js, n->nc, &jo)) != NATS_OK) {
		snprintf(err, errlen, "nats: JetStream context: %s", natsStatus_GetText(st));
		goto fail;
	}
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	st = js_GetStreamInfo(&si, n->js, o->nats_stream, NULL, &jerr);
	if (st == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (st != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
		snprintf(err, errlen, "nats %s: stream %s: %s (JetStream enabled? nats-server -js)",
		         o->nats_url, o->nats_stream, natsStatus_GetText(st));
		goto fail;
	}
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	const char *subj[1] = { o->nats_subject };
	sc.Name = o->nats_stream;
	sc.Subjects = subj;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Duplicates = (o->nats_dup_window_ms > 0 ? o->nats_dup_window_ms : 120000) * 1000000LL;
	if (o->nats_replicas > 1) sc.Replicas = o->nats_replicas;
	st = js_AddStream(&si, n->js, &sc, NULL, &jerr);
	if (st != NATS_OK) {
		snprintf(err, errlen, "nats %s: cannot create stream %s on %s: %s (jerr %d)",
		         o->nats_url, o->nats_stream, o->nats_subject, natsStatus_GetText(st), (int)jerr);
		goto fail;
	}
	jsStreamInfo_Destroy(si);
	return 0;
fail:
	feed_nats_close(n);
	return -1;
}

void feed_nats_close(struct feed_nats *n)
{
	if (n->js) jsCtx_Destroy(n->js);
	if (n->nc) { natsConnection_Close(n->nc); natsConnection_Destroy(n->nc); }
	if (n->opts) natsOptions_Destroy(n->opts);
	memset(n, 0, sizeof *n);
}
