/* fetch_worker.c: the single loop that owns every fetch. Coalescing (one
 * fetch per key, every caller attached to it), admission (REQUESTS_MAX in
 * flight, then a bounded FIFO, then busy), staged fan-out rounds, the first
 * valid answer winning its round, cancellation and revival. */
#include <stdlib.h>
#include <string.h>
#include "fetch.h"
#include "matrix/json.h"
#include "core/histo.h"
#include "core/log.h"
#include "core/xalloc.h"

/* Per-op default profiles: growth, width ceiling, attempt budget, limit. */
static const struct profile {
	struct fetch_fanout growth;
	int width, attempts, limit;
} profiles[FOP__COUNT] = {
	[FOP_EVENT]          = { { FAN_FIXED, 1, 0 },     1, 8, 0 },
	[FOP_AUTH_EVENT]     = { { FAN_GEOMETRIC, 1, 2 }, 4, 8, 0 },
	[FOP_AUTH_CHAIN]     = { { FAN_LINEAR, 1, 1 },    2, 4, 0 },
	[FOP_STATE_IDS]      = { { FAN_FIXED, 1, 0 },     1, 4, 0 },
	[FOP_MISSING_EVENTS] = { { FAN_LINEAR, 1, 1 },    3, 6, 10 },
	[FOP_BACKFILL]       = { { FAN_LINEAR, 1, 1 },    3, 6, 10 },
	[FOP_SERVER_KEYS]    = { { FAN_FIXED, 1, 0 },     1, 2, 0 },
};

static void fetch_start(struct fetchd *fd, struct fetch *f);
static void fetch_end(struct fetchd *fd, struct fetch *f, struct outcome *o);
static void next_round(struct fetchd *fd, struct fetch *f);

/* ---- the coalescing key ------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void key_list(struct buf *k, char **l, size_t n)
{
	if (n > 1) qsort(l, n, sizeof *l, cmp_str);   /* windows are sets: order-free */
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(l[i], l[i - 1]) == 0) continue;
		buf_adds(k, l[i]);
		buf_addc(k, ',');
	}
	buf_addc(k, '\x1f');
}

static void key_int(struct buf *k, long long v)
{
	char t[24], *e = t + sizeof t, *p = e - 1;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	*p = '\x1f';                 /* the separator, in the same append */
	do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
	if (v < 0) *--p = '-';
	buf_add(k, p, (size_t)(e - p));
}

/* The key names everything that shapes the answer; built with plain
 * appends (two printf calls here were a tenth of fetchd's own CPU). */
static void make_key(struct fetch_req *r, uint16_t flags, struct buf *k)
{
	char fan[64] = "default";
	if (r->fanout.kind != FAN_DEFAULT) fetchreq_fanout_str(&r->fanout, fan, sizeof fan);
	buf_reserve(k, 128 + strlen(r->room_id) + strlen(r->event_id));
	key_int(k, r->op);
	key_int(k, flags);
	buf_adds(k, r->room_id);
	buf_addc(k, '\x1f');
	buf_adds(k, r->event_id);
	buf_addc(k, '\x1f');
	key_list(k, r->events, r->nevents);
	key_list(k, r->earliest, r->nearliest);
	key_int(k, r->limit);
	buf_adds(k, fan);
	buf_addc(k, '\x1f');
	key_int(k, r->max_width);
	key_int(k, r->max_attempts);
	key_int(k, r->checks);
	key_int(k, r->hints_only);
}

static struct fetch *map_find(struct fetchd *fd, uint64_t h, const char *key, size_t n)
{
	HMAP_FOR_HASH(&fd->map, h, node) {
		struct fetch *f = HMAP_ENTRY(node, struct fetch, hn);
		if (f->keylen == n && memcmp(f->key, key, n) == 0)
			return f;     /* the hash matched and the full key confirms it */
	}
	return NULL;
}

static void map_remove(struct fetchd *fd, struct fetch *f)
{
	hmap_remove(&fd->map, &f->hn);
}

/* ---- replies ----------------------------------------------------------- */

static void send_reply(struct fetchd *fd, struct client *cl, uint64_t id, const char *p, size_t n)
{
	if (conn_send(cl->c, FT_FETCH_RESULT, FF_REPLY, id, p, n) < 0) {
		(*fd->c_reply_dropped)++;
		log_warnx("%s: reply %llu dropped (connection down or output queue full)",
		          conn_peer(cl->c), (unsigned long long)id);
	}
}

void fetch_reply_error(struct fetchd *fd, struct client *cl, uint64_t id, const char *error,
                 const char *why)
{
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"ok\":false,\"error\":");
	json_put_string(&b, error, strlen(error));
	if (why) {
		buf_adds(&b, ",\"message\":");
		json_put_string(&b, why, strlen(why));
	}
	buf_adds(&b, "}\n");
	send_reply(fd, cl, id, b.data, b.len);
	buf_free(&b);
}

/* One allocation: the struct with its payload (meta line, '\n', body)
 * right behind it; the meta line is built in a buffer kept between calls. */
static struct outcome *outcome_new(struct fetch *f, int ok, const char *error,
                                   const char *server, const char *body, size_t n)
{
	static struct buf meta;
	buf_reset(&meta);
	fetchres_meta(&meta, ok, error, server, f->tried, ok ? NULL : f->why, (size_t)f->ntried);
	buf_addc(&meta, '\n');
	struct outcome *o = xmalloc(sizeof *o + meta.len + n + 1);
	o->payload = (char *)(o + 1);
	memcpy(o->payload, meta.data, meta.len);
	if (n) memcpy(o->payload + meta.len, body, n);
	o->len = meta.len + n;
	o->payload[o->len] = 0;
	o->refs = 1;
	if (meta.cap > 65536) buf_free(&meta);   /* a long tried list's buffer is not kept */
	return o;
}

static void outcome_unref(struct outcome *o)
{
	if (o && --o->refs == 0) free(o);
}

/* ---- waiters ----------------------------------------------------------- */

static void waiter_free(struct fetchd *fd, struct waiter *w)
{
	TAILQ_REMOVE(&w->f->waiters, w, f_link);
	TAILQ_REMOVE(&w->cl->waiters, w, c_link);
	w->f->nwaiters--;
	fd->nwaiters--;
	if (w->timer) event_free(w->timer);
	free(w);
}

static void fetch_free(struct fetchd *fd, struct fetch *f)
{
	struct attempt *a;
	while ((a = TAILQ_FIRST(&f->attempts_list))) {
		TAILQ_REMOVE(&f->attempts_list, a, f_link);
		transport_attempt_abort(fd, a);
	}
	if (f->has_deadline) event_del(&f->deadline);
	for (int i = 0; i < f->ncand; i++) free(f->cand[i]);
	for (int i = 0; i < f->ntried; i++) { free(f->tried[i]); free(f->why[i]); }
	free(f->cand); free(f->tried); free(f->why);
	fetchreq_free(&f->req);
	free(f->key);
	free(f);
}

static void queue_remove(struct fetchd *fd, struct fetch *f)
{
	TAILQ_REMOVE(f->lo ? &fd->queue_lo : &fd->queue, f, q_link);
	fd->queued--;
	if (f->lo) fd->queued_lo--;
}

/* A fetch nobody waits for any more. Queued: gone at once. Active: it winds
 * down and stops at its next attempt boundary (next_round / a win), unless
 * an identical request revives it first. */
static void fetch_orphaned(struct fetchd *fd, struct fetch *f)
{
	if (f->nwaiters || f->state != FS_QUEUED) return;
	queue_remove(fd, f);
	map_remove(fd, f);
	fetch_free(fd, f);
}

static struct fetchd *fetchd;

/* /metrics: attempt and fetch latency (ms clocks, in us), made on first use. */
static struct histo *h_attempt, *h_fetch;
static void observe_ms(struct fetchd *fd, struct histo **h, const char *name, long long ms)
{
	if (!*h) *h = daemon_histo(fd->d, name, "us");
	histo_observe(*h, ms > 0 ? (uint64_t)ms * 1000u : 0);
}


static void waiter_timeout_cb(evutil_socket_t s, short ev, void *arg)
{
	struct waiter *w = arg;
	struct fetch *f = w->f;
	(void)s; (void)ev;
	(*fetchd->c_timeout)++;
	fetch_reply_error(fetchd, w->cl, w->id, "timeout", "caller's timeout_ms passed");
	waiter_free(fetchd, w);
	fetch_orphaned(fetchd, f);
}

static void waiter_add(struct fetchd *fd, struct fetch *f, struct client *cl, uint64_t id,
                       long long timeout_ms)
{
	struct waiter *w = xcalloc(1, sizeof *w);
	w->f = f; w->cl = cl; w->id = id; w->t0 = mono_ms();
	TAILQ_INSERT_TAIL(&f->waiters, w, f_link);
	TAILQ_INSERT_TAIL(&cl->waiters, w, c_link);
	f->nwaiters++;
	fd->nwaiters++;
	if (timeout_ms > 0) {
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		w->timer = evtimer_new(fd->d->base, waiter_timeout_cb, w);
		if (!w->timer) log_panic("out of memory");
		evtimer_add(w->timer, &tv);
	}
}

void fetch_cancel(struct fetchd *fd, struct client *cl, uint64_t id, int reply)
{
	struct waiter *w;
	TAILQ_FOREACH(w, &cl->waiters, c_link)
		if (w->id == id) break;
	if (!w) return;               /* already answered: nothing to cancel */
	struct fetch *f = w->f;
	(*fd->c_cancelled)++;
	if (reply) fetch_reply_error(fd, cl, id, "cancelled", "cancelled by the caller");
	waiter_free(fd, w);
	fetch_orphaned(fd, f);
}

void fetch_client_gone(struct fetchd *fd, struct client *cl)
{
	struct waiter *w;
	while ((w = TAILQ_FIRST(&cl->waiters))) {
		struct fetch *f = w->f;
		waiter_free(fd, w);
		fetch_orphaned(fd, f);
	}
}

/* ---- admission --------------------------------------------------------- */

static int admitting;

static void admit_queue(struct fetchd *fd)
{
	if (admitting) return;
	admitting = 1;
	while (fd->active < fd->requests_max && fd->queued) {
		struct fetch *f = TAILQ_FIRST(&fd->queue);    /* recoveries last */
		if (!f) f = TAILQ_FIRST(&fd->queue_lo);
		queue_remove(fd, f);
		fetch_start(fd, f);
	}
	admitting = 0;
}

void fetch_submit(struct fetchd *fd, struct client *cl, uint64_t id, uint16_t flags,
                  struct fetch_req *req)
{
	const struct profile *p;
	struct buf k;
	fetchd = fd;
	if (req->checks < 0) req->checks = fd->checks_default;
	p = &profiles[req->op];
	if (!req->limit) req->limit = p->limit;
	if ((req->op == FOP_AUTH_CHAIN || req->op == FOP_STATE_IDS ||
	     req->op == FOP_MISSING_EVENTS || req->op == FOP_BACKFILL) && !req->room_id[0]) {
		fetch_reply_error(fd, cl, id, "bad_request", "this op needs room_id");
		(*fd->c_bad_request)++;
		fetchreq_free(req);
		return;
	}
	if (!req->event_id[0] && !(req->op == FOP_MISSING_EVENTS && req->nevents) &&
	    !(req->op == FOP_BACKFILL && req->nevents)) {
		fetch_reply_error(fd, cl, id, "bad_request", "event_id (or events) missing");
		(*fd->c_bad_request)++;
		fetchreq_free(req);
		return;
	}
	buf_init(&k);
	make_key(req, flags, &k);
	uint64_t h = hmap_hash(k.data, k.len);
	struct fetch *f = map_find(fd, h, k.data, k.len);
	if (f) {
		(*fd->c_coalesced)++;
		if (f->nwaiters == 0 && f->state == FS_ACTIVE) {
			(*fd->c_revived)++;
			log_debug("fetch %s %s revived during wind-down", fetchreq_op_name(f->req.op),
			          f->req.event_id);
		}
		waiter_add(fd, f, cl, id, req->timeout_ms);
		if (f->state == FS_ACTIVE) fetch_add_hints(fd, f, req->servers, req->nservers);
		else for (size_t i = 0; i < req->nservers; i++)   /* ranked at start */
			fetchreq_list_add(&f->req.servers, &f->req.nservers, req->servers[i]);
		buf_free(&k);
		fetchreq_free(req);
		return;
	}
	int start = fd->active < fd->requests_max, lo = FETCH_LOW_PRIO(flags);
	if (!start && fd->queued >= fd->queue_max && !lo && fd->queued_lo) {
		/* full, partly of recoveries: the newest recovery makes room */
		struct fetch *v = TAILQ_LAST(&fd->queue_lo, fetch_q);
		struct waiter *w;
		(*fd->c_busy_lo)++;
		queue_remove(fd, v);
		map_remove(fd, v);
		while ((w = TAILQ_FIRST(&v->waiters))) {
			fetch_reply_error(fd, w->cl, w->id, "busy", "queue full: a recovery gave way");
			waiter_free(fd, w);
		}
		fetch_free(fd, v);
	}
	if (!start && fd->queued >= fd->queue_max) {
		(*fd->c_busy)++;
		fetch_reply_error(fd, cl, id, "busy", "too many fetches in flight and queued");
		buf_free(&k);
		fetchreq_free(req);
		return;
	}
	f = xcalloc(1, sizeof *f);
	f->keylen = k.len;
	f->key = buf_steal(&k);
	f->flags = flags;
	f->lo = lo;
	f->req = *req;              /* takes ownership of the lists */
	fetchreq_init(req);
	TAILQ_INIT(&f->waiters);
	TAILQ_INIT(&f->attempts_list);
	f->t0 = mono_ms();
	hmap_insert(&fd->map, &f->hn, h);
	waiter_add(fd, f, cl, id, f->req.timeout_ms);
	if (start) {
		fetch_start(fd, f);
	} else {
		(*fd->c_queued)++;
		f->state = FS_QUEUED;
		TAILQ_INSERT_TAIL(lo ? &fd->queue_lo : &fd->queue, f, q_link);
		fd->queued++;
		if (lo) fd->queued_lo++;
	}
}

/* ---- fetch lifecycle --------------------------------------------------- */

static void fetch_deadline_cb(evutil_socket_t s, short ev, void *arg)
{
	struct fetch *f = arg;
	(void)s; (void)ev;
	(*fetchd->c_timeout)++;
	fetch_end(fetchd, f, outcome_new(f, 0, "timeout", NULL, NULL, 0));
}

static void fetch_start(struct fetchd *fd, struct fetch *f)
{
	const struct profile *p = &profiles[f->req.op];
	f->state = FS_ACTIVE;
	if (++fd->active > *fd->g_peak) *fd->g_peak = fd->active;
	f->growth = f->req.fanout.kind != FAN_DEFAULT ? f->req.fanout : p->growth;
	f->width_max = f->req.max_width ? f->req.max_width :
	               f->req.fanout.kind != FAN_DEFAULT ? fd->width_max : p->width;
	if (f->width_max > fd->width_max) f->width_max = fd->width_max;   /* only tighten */
	f->attempts_max = f->req.max_attempts ? f->req.max_attempts : p->attempts;
	if (f->attempts_max > fd->attempts_max) f->attempts_max = fd->attempts_max;
	/* Every fetch has the same deadline: libevent's common-timeout queue
	 * adds and removes it in O(1), and no allocation per fetch. */
	if (!fd->deadline_tv) {
		long long ms = fd->fetch_timeout;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		fd->deadline_tv = event_base_init_common_timeout(fd->d->base, &tv);
		if (!fd->deadline_tv) {      /* libevent's 256 common timeouts used up (reloads) */
			fd->deadline_plain = tv;
			fd->deadline_tv = &fd->deadline_plain;
		}
	}
	evtimer_assign(&f->deadline, fd->d->base, fetch_deadline_cb, f);
	evtimer_add(&f->deadline, fd->deadline_tv);
	f->has_deadline = 1;
	fetch_select(fd, f);
	if (f->ncand == 0) {
		(*fd->c_no_cand)++;
		fetch_end(fd, f, outcome_new(f, 0, "no_candidates", NULL, NULL, 0));
		return;
	}
	next_round(fd, f);
}

static void tried_add(struct fetch *f, const char *server, const char *why)
{
	f->tried = xreallocarray(f->tried, (size_t)f->ntried + 1, sizeof *f->tried);
	f->why = xreallocarray(f->why, (size_t)f->ntried + 1, sizeof *f->why);
	f->tried[f->ntried] = xstrdup(server);
	f->why[f->ntried] = xstrdup(why);
	f->ntried++;
}

/* Start the next fan-out round: its width from the growth schedule, then
 * clamped by the per-round ceiling, the attempts left and the candidates left. */
static void next_round(struct fetchd *fd, struct fetch *f)
{
	while (f->running == 0) {
		if (f->nwaiters == 0) {            /* wound down: stop at this boundary */
			log_debug("fetch %s %s stopped: no caller left", fetchreq_op_name(f->req.op),
			          f->req.event_id);
			fetch_end(fd, f, NULL);
			return;
		}
		int w = fetchreq_fanout_width(&f->growth, f->round);
		if (w > f->width_max) w = f->width_max;
		if (w > f->attempts_max - f->attempts) w = f->attempts_max - f->attempts;
		if (w > f->ncand - f->next) w = f->ncand - f->next;
		if (w <= 0) {
			int all_timeouts = f->ntried > 0 && f->n_timeouts == f->ntried;
			if (all_timeouts) (*fd->c_timeout)++; else (*fd->c_not_found)++;
			fetch_end(fd, f, outcome_new(f, 0, all_timeouts ? "timeout" : "not_found",
			                             NULL, NULL, 0));
			return;
		}
		f->round++;
		for (int i = 0; i < w; i++) {
			struct attempt *a = transport_attempt_new(fd);
			a->f = f;
			a->s = transport_server_get(fd, f->cand[f->next++]);
			f->attempts++;
			f->running++;
			TAILQ_INSERT_TAIL(&f->attempts_list, a, f_link);
			transport_attempt_launch(fd, a);
		}
	}
}

/* One upstream attempt finished (transport already released the server's
 * throttle slot). The first valid answer wins; a failed sibling only
 * records why, and the round goes on until every sibling has failed. */
void fetch_attempt_done(struct fetchd *fd, struct attempt *a, CURLcode cc, long status)
{
	struct fetch *f = a->f;
	char why[160];
	int counts = 1, ok = 0;
	long long lat = mono_ms() - a->t0;
	/* an attempt that never ran (its server's name did not resolve) has
	 * no latency and was no upstream request */
	if (a->easy) observe_ms(fd, &h_attempt, "attempt_latency", lat);
	else lat = 0;
	TAILQ_REMOVE(&f->attempts_list, a, f_link);
	f->running--;
	if (cc != CURLE_OK) {
		if (a->too_big) snprintf(why, sizeof why, "too_large");
		else if (a->resolve_why[0]) snprintf(why, sizeof why, "resolve_failed: %.130s", a->resolve_why);
		else if (a->denied) snprintf(why, sizeof why, "address_denied: %s ([fetchd] ip_range_deny)", a->denied_why);
		else if (cc == CURLE_OPERATION_TIMEDOUT) { snprintf(why, sizeof why, "timeout"); f->n_timeouts++; }
		else snprintf(why, sizeof why, "transport: %.140s", a->errbuf[0] ? a->errbuf : curl_easy_strerror(cc));
	} else {
		ok = fetch_check_answer(fd, f, a, status, why, sizeof why, &counts) == 0;
	}
	if (ok) {
		health_note(fd, a->s, H_OK, NULL, lat);
		(*fd->c_ok)++;
		log_debug("fetch %s %s: %s answered in %lld ms", fetchreq_op_name(f->req.op),
		          f->req.event_id, a->s->name, lat);
		struct outcome *o = outcome_new(f, 1, NULL, a->s->name, a->body.data, a->body.len);
		if (f->req.room_id[0]) health_room_seen(fd, f->req.room_id, a->s->name);
		transport_attempt_free(fd, a);
		fetch_end(fd, f, o);
		return;
	}
	(*fd->c_bad_answer)++;
	log_info("fetch %s %s: %s failed: %s", fetchreq_op_name(f->req.op), f->req.event_id,
	         a->s->name, why);
	if (counts) health_note(fd, a->s, status == 410 ? H_GONE : H_FAIL, why, lat);
	tried_add(f, a->s->name, why);
	transport_attempt_free(fd, a);
	if (f->running == 0) next_round(fd, f);
}

/* The fetch is over: out of the map (so a new identical request starts a
 * fresh fetch), losers cancelled, every caller gets the same outcome. */
static void fetch_end(struct fetchd *fd, struct fetch *f, struct outcome *o)
{
	struct waiter *w;
	map_remove(fd, f);
	if (f->state == FS_ACTIVE) fd->active--;
	struct attempt *a;
	while ((a = TAILQ_FIRST(&f->attempts_list))) {
		TAILQ_REMOVE(&f->attempts_list, a, f_link);
		log_debug("fetch %s: cancelling the attempt at %s", f->req.event_id, a->s->name);
		tried_add(f, a->s->name, "cancelled");
		transport_attempt_abort(fd, a);
	}
	long long now = mono_ms();
	while ((w = TAILQ_FIRST(&f->waiters))) {
		observe_ms(fd, &h_fetch, "fetch_latency", now - w->t0);
		if (o) send_reply(fd, w->cl, w->id, o->payload, o->len);
		waiter_free(fd, w);
	}
	outcome_unref(o);
	fetch_free(fd, f);
	admit_queue(fd);
}

void fetch_admit(struct fetchd *fd)
{
	admit_queue(fd);
}

int fetch_idle(const struct fetchd *fd)
{
	return fd->active == 0 && fd->queued == 0;
}

void fetch_shutdown(struct fetchd *fd)
{
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &fd->map);
	while ((n = hmap_iter_next(&it))) {
		struct fetch *f = HMAP_ENTRY(n, struct fetch, hn);
		struct waiter *w;
		while ((w = TAILQ_FIRST(&f->waiters))) waiter_free(fd, w);
		if (f->state == FS_QUEUED) queue_remove(fd, f);
		fetch_free(fd, f);
	}
	hmap_free(&fd->map);
	fd->active = fd->queued = fd->queued_lo = 0;
}
