/* feed_nats.c: connection setup shared by the NATS feed sink and source. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "feed/feed_nats.h"

/* One attempt at finding or creating the stream. 0: there; 1: a state a
 * cluster passes through (a request timed out, no JetStream responder yet,
 * too few peers for the replicas while routes form, another node creating
 * it at the same moment); -1: anything else. */
static int ensure_once(struct feed_nats *n, const struct feed_opts *o, char *why, size_t whylen)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus st = js_GetStreamInfo(&si, n->js, o->nats_stream, NULL, &jerr);
	if (st == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (st != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
		snprintf(why, whylen, "stream %s: %s (jerr %d; JetStream enabled? nats-server -js)",
		         o->nats_stream, natsStatus_GetText(st), (int)jerr);
		return st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr
		       || jerr == JSClusterNotAvailErr || jerr == JSInsufficientResourcesErr ? 1 : -1;
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
	jerr = 0;
	st = js_AddStream(&si, n->js, &sc, NULL, &jerr);
	if (st == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	snprintf(why, whylen, "cannot create stream %s on %s: %s (jerr %d)", o->nats_stream, o->nats_subject,
	         natsStatus_GetText(st), (int)jerr);
	return st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || jerr == JSClusterNotAvailErr
	       || jerr == JSInsufficientResourcesErr || jerr == JSStreamNameExistErr
	       || jerr == JSClusterNoPeersErr ? 1 : -1;
}

/* The stream, found or created. With wait, what a forming or recovering
 * cluster answers is retried for up to max(30 s, 10 timeouts), each retry
 * logged (the sink, at start, before its loop runs); without, one attempt
 * (the apply source and served's claims: they retry on their own timers
 * and must not block their event loop). */
static int ensure_stream(struct feed_nats *n, const struct feed_opts *o, long long to, int wait,
                         char *err, size_t errlen)
{
	long long until = wait ? mono_ms() + (to * 10 > 30000 ? to * 10 : 30000) : 0, pause = 200;
	char why[400];
	for (int tries = 1;; tries++) {
		int r = ensure_once(n, o, why, sizeof why);
		if (r == 0) {
			if (tries > 1) log_info("nats %s: stream %s ready after %d attempts", o->nats_url, o->nats_stream, tries);
			return 0;
		}
		if (r < 0 || mono_ms() >= until) {
			snprintf(err, errlen, "nats %s: %s%s", o->nats_url, why, r > 0 && wait ? " (gave up retrying)" : "");
			return -1;
		}
		log_warnx("nats %s: %s; retrying in %lld ms", o->nats_url, why, pause);
		struct timespec ts = { (time_t)(pause / 1000), (long)(pause % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		pause = pause * 2 > 2000 ? 2000 : pause * 2;
	}
}

int feed_nats_connect(struct feed_nats *n, const struct feed_opts *o, jsPubAckHandler ack,
                      void *closure, int wait_stream, char *err, size_t errlen)
{
	natsStatus st;
	memset(n, 0, sizeof *n);
	if (!o->nats_url || !*o->nats_url) {
		snprintf(err, errlen, "nats: no server URL ([feed] nats_url or --nats-url)");
		return -1;
	}
	long long to = o->nats_timeout_ms > 0 ? o->nats_timeout_ms : 5000;
	char why[400];
	if (nats_opts_new(&n->opts, o->nats_url, "fedpipe-feed", to, &o->nats_sec, why, sizeof why) < 0) {
		snprintf(err, errlen, "nats: %s", why);
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
	if (ensure_stream(n, o, to, wait_stream, err, errlen) < 0) goto fail;
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
