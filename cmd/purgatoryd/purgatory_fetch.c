/* purgatory_fetch.c: asking fetchd for what held events miss. The unit of
 * pacing is the room (its held events share their missing ancestors): a
 * debounce after the first hold, one attempt at a time (in-progress =
 * outstanding requests), backoff doubling from backoff_min to backoff_max
 * after fruitless attempts, reset by progress. Fetched PDUs go into the
 * inbox (from = the answering server) and on to validated; they come back
 * as verdicts and release their waiters. Also the operator's control
 * requests (FT_PURG_CTL: retry a room, drop a held event). */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/fetchreq.h"
#include "core/log.h"
#include "core/xalloc.h"

#define ROOMS_PER_TICK 200       /* attempts started per tick, so 1,000 held rooms
                                    do not hit fetchd all in the same second */
#define SCAN_HELD_MAX  5000      /* held rows read to build one room's request */

struct idset { char (*v)[PDU_EVENT_ID_MAX]; int n, max; };

static int idset_has(const struct idset *s, const char *id)
{
	for (int i = 0; i < s->n; i++) if (!strcmp(s->v[i], id)) return 1;
	return 0;
}

static void idset_add(struct idset *s, const char *id)
{
	if (s->n < s->max && !idset_has(s, id)) snprintf(s->v[s->n++], PDU_EVENT_ID_MAX, "%s", id);
}

static int recent_has(struct proom *r, const char *id, long long now, long long ttl)
{
	if (!r->nrecent || r->recent_ms + ttl < now) return 0;
	for (int i = 0; i < r->nrecent; i++) if (!strcmp(r->recent[i], id)) return 1;
	return 0;
}

static void recent_add(struct proom *r, const char *id, long long now, long long ttl)
{
	if (!r->recent) r->recent = xcalloc(RECENT_MAX, PDU_EVENT_ID_MAX);
	if (r->recent_ms + ttl < now || r->nrecent >= RECENT_MAX) r->nrecent = 0;
	r->recent_ms = now;
	snprintf(r->recent[r->nrecent++], PDU_EVENT_ID_MAX, "%s", id);
}

static void add_server(struct purgatoryd *p, char (*sv)[PURG_NAME_MAX], int *n, const char *name)
{
	if (!name[0] || *n >= p->fetch_servers_max || !strcmp(name, p->server_name)) return;
	for (int i = 0; i < *n; i++) if (!strcmp(sv[i], name)) return;
	snprintf(sv[(*n)++], PURG_NAME_MAX, "%s", name);
}

static void finish_attempt(struct purgatoryd *p, struct proom *r, long long now)
{
	if (r->gained > 0) {
		r->failures = 0;
		r->backoff_ms = 0;
		/* the room now waits on fetched events: an arrival that is not sync */
		r->due_ms = now + p->debounce_other;
	} else {
		r->failures++;
		r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : p->backoff_min;
		if (r->backoff_ms > p->backoff_max) r->backoff_ms = p->backoff_max;
		r->due_ms = now + r->backoff_ms;
		log_info("room %s: fetch attempt %lld brought nothing; next in %lld ms",
		         r->id, r->attempts, r->backoff_ms);
	}
	r->gained = 0;
	purgatory_room_dirty(p, r);
}

static int send_req(struct purgatoryd *p, struct proom *r, struct fetch_req *fr, long long now)
{
	struct buf b;
	buf_init(&b);
	fetchreq_encode(fr, &b);
	uint64_t id = p->next_req++;
	int rc = daemon_emit(p->d, "fetchd", FT_FETCH_REQ, 0, id, b.data, b.len);
	buf_free(&b);
	if (rc < 0) return -1;
	struct preq *q = xcalloc(1, sizeof *q);
	q->id = id;
	q->room = r;
	q->deadline_ms = now + p->fetch_timeout;
	snprintf(q->op, sizeof q->op, "%s", fetchreq_op_name(fr->op));
	q->next = p->reqs;
	p->reqs = q;
	r->inflight++;
	(*p->g_inflight)++;
	(*p->c_fetch_req)++;
	return 0;
}

static void attempt(struct purgatoryd *p, struct proom *r, long long now)
{
	struct store *s = p->d->st;
	/* fetchd away: wait for it without reading the room's rows */
	if (!p->d->stdio && !conn_up(daemon_connect(p->d, "fetchd"))) {
		r->fetchd_wait = 1;
		r->due_ms = now + p->fetch_retry;
		return;
	}
	r->idle_wait = 0;
	char (*absent)[PDU_EVENT_ID_MAX] = xcalloc(PURG_DEPS_MAX, PDU_EVENT_ID_MAX);
	char (*latest)[PDU_EVENT_ID_MAX] = xcalloc(PURG_DEPS_MAX, PDU_EVENT_ID_MAX);
	char (*earliest)[PDU_EVENT_ID_MAX] = xcalloc(20, PDU_EVENT_ID_MAX);
	char (*servers)[PURG_NAME_MAX] = xcalloc(32, PURG_NAME_MAX);
	int64_t depths[20];
	struct idset ab = { absent, 0, PURG_DEPS_MAX }, la = { latest, 0, p->fetch_latest_max };
	int nserv = 0, nearly = 0, scanned = 0;
	char err[128];

	MDB_txn *t = store_begin(s, 1);
	for (struct held *h = r->head; h && scanned < SCAN_HELD_MAX; h = h->rnext, scanned++) {
		if (purg_hold_get(t, s, DB_PURGATORY, h->id, &p->doc, p->hr)) continue;
		int frontier = 0, stored = 0;
		for (int i = 0; i < p->hr->nmissing; i++) {
			const char *m = p->hr->missing[i];
			if (store_event_exists(t, s, m)) { stored++; continue; }
			if (purgatory_held_find(p, m) || recent_has(r, m, now, p->fetch_timeout)) continue;
			idset_add(&ab, m);
			frontier = 1;
		}
		/* every parent it waited for is stored now, by a writer whose word
		 * did not reach us (the fleet applier while we were down): it is
		 * released by release_ready (not here: releasing may empty and
		 * free this room) instead of waiting for a fetch of nothing */
		if (p->hr->nmissing > 0 && stored == p->hr->nmissing) purg_idlist_push(&p->ready, h->id);
		if (!frontier || la.n >= la.max) continue;
		idset_add(&la, h->id);
		add_server(p, servers, &nserv, p->hr->from);
		if (purg_pdu_parse(&p->doc2, p->hr->pdu, p->hr->pdu_len, p->pi, err, sizeof err) == 0) {
			add_server(p, servers, &nserv, p->pi->sender_server);
			add_server(p, servers, &nserv, p->pi->origin);
		}
	}
	struct room_server *rs = xcalloc(32, sizeof *rs);
	int nrs = store_room_servers(t, s, r->id, rs, 32);
	for (int i = 0; i < nrs; i++) add_server(p, servers, &nserv, rs[i].name);
	free(rs);
	nearly = purg_extremities(t, s, r->id, earliest, depths, 20);
	mdb_txn_abort(t);

	if (!ab.n) {
		/* everything held here waits on other held events (or on the ACL):
		 * nothing to ask for until something changes */
		r->due_ms = now + p->backoff_max;
		r->idle_wait = 1;
		purgatory_room_dirty(p, r);
		goto out;
	}
	r->attempts++;
	r->gained = 0;
	struct fetch_req fr;
	int use_missing = la.n > 0 && r->failures % 2 == 0;
	int sent = 0, failed = 0;
	for (int k = 0; k < (use_missing ? 1 : ab.n) && k < (use_missing ? 1 : p->fetch_events_max); k++) {
		fetchreq_init(&fr);
		snprintf(fr.room_id, sizeof fr.room_id, "%s", r->id);
		for (int i = 0; i < nserv; i++) fetchreq_list_add(&fr.servers, &fr.nservers, servers[i]);
		if (use_missing) {
			fr.op = FOP_MISSING_EVENTS;
			for (int i = 0; i < la.n; i++) fetchreq_list_add(&fr.events, &fr.nevents, latest[i]);
			for (int i = 0; i < nearly; i++) fetchreq_list_add(&fr.earliest, &fr.nearliest, earliest[i]);
			fr.limit = p->fetch_limit;
		} else {
			fr.op = FOP_EVENT;
			snprintf(fr.event_id, sizeof fr.event_id, "%s", absent[k]);
		}
		if (send_req(p, r, &fr, now) < 0) failed = 1;
		else sent++;
		fetchreq_free(&fr);
		if (failed) break;
	}
	if (!sent) {
		/* fetchd is not there: nothing lost, ask again when it is */
		r->attempts--;
		r->fetchd_wait = 1;
		r->due_ms = now + p->fetch_retry;
		log_debug("room %s: fetchd not reachable; will ask again", r->id);
	} else {
		/* the held rows say: attempt N, under way now */
		r->due_ms = now;
		purgatory_room_dirty(p, r);
		log_debug("room %s: attempt %lld, %d request(s) (%s) for %d missing events",
		          r->id, r->attempts, sent, use_missing ? "missing_events" : "event", ab.n);
	}
out:
	free(absent); free(latest); free(earliest); free(servers);
}

static void req_done(struct purgatoryd *p, struct preq *q, long long now)
{
	struct proom *r = q->room;
	(*p->g_inflight)--;
	if (--r->inflight == 0) finish_attempt(p, r, now);
	free(q);
}

/* Release what attempt() found satisfiable, after it and the room walk
 * are done with the rooms (a release may empty and free one). */
static void release_ready(struct purgatoryd *p)
{
	if (!p->ready.n) return;
	long n = purgatory_release_ids(p, &p->ready, 0);
	if (n > 0) log_info("released %ld held event(s) whose parents were stored meanwhile", n);
	p->ready.n = 0;
}

void purgatory_fetch_tick(struct purgatoryd *p, long long now)
{
	/* requests fetchd never answered */
	for (struct preq **qq = &p->reqs; *qq; ) {
		struct preq *q = *qq;
		if (q->deadline_ms > now) { qq = &q->next; continue; }
		*qq = q->next;
		(*p->c_fetch_fail)++;
		log_warnx("fetch request %llu (%s, room %s) had no answer in %lld ms",
		          (unsigned long long)q->id, q->op, q->room->id, p->fetch_timeout);
		req_done(p, q, now);
	}
	int started = 0;
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &p->rooms);
	while (started < ROOMS_PER_TICK && (n = hmap_iter_next(&it))) {
		struct proom *r = HMAP_ENTRY(n, struct proom, hn);
		if (!r->nheld || r->inflight || r->due_ms > now) continue;
		attempt(p, r, now);
		started++;
	}
	release_ready(p);
}

static int pdu_rv(struct purgatoryd *p, MDB_txn *t, const struct json_doc *d, int e, const char *room)
{
	int rv = store_room_version(t, p->d->st, room);
	if (rv > 0) return rv;
	int ty = json_obj_get(d, e, "type"), sk = json_obj_get(d, e, "state_key");
	if (ty >= 0 && json_str_eq(d, ty, "m.room.create") && sk >= 0 && json_str_eq(d, sk, "")) {
		int c = json_obj_get(d, e, "content");
		int v = c >= 0 && d->tok[c].type == JSON_OBJECT ? json_obj_get(d, c, "room_version") : -1;
		char b[16];
		if (v >= 0 && d->tok[v].type == JSON_STRING && json_str_copy(d, v, b, sizeof b) > 0)
			return atoi(b);
	}
	return p->default_rv;
}

void purgatory_fetch_result(struct purgatoryd *p, const struct frame *f)
{
	struct preq **qq = &p->reqs, *q;
	while (*qq && (*qq)->id != f->id) qq = &(*qq)->next;
	if (!(q = *qq)) {
		log_debug("fetch result %llu matches no outstanding request (late or cancelled)",
		          (unsigned long long)f->id);
		return;
	}
	*qq = q->next;
	long long now = now_ms();
	struct proom *r = q->room;
	struct fetch_result res;
	if (fetchres_parse(f, &res) < 0) {
		log_warnx("fetchd sent a malformed result for request %llu; counted as failed",
		          (unsigned long long)f->id);
		(*p->c_fetch_fail)++;
		req_done(p, q, now);
		return;
	}
	if (!res.ok) {
		(*p->c_fetch_fail)++;
		log_debug("room %s: %s fetch failed: %s", r->id, q->op, res.error);
		fetchres_free(&res);
		req_done(p, q, now);
		return;
	}
	(*p->c_fetch_ok)++;
	struct json_doc *d = &p->doc2;
	int arr = -1;
	if (json_parse(d, res.body, res.body_len, JSON_MAX_DEPTH_DEFAULT) == 0 &&
	    d->tok[0].type == JSON_OBJECT) {
		arr = json_obj_get(d, 0, "pdus");
		if (arr < 0) arr = json_obj_get(d, 0, "events");
		if (arr >= 0 && d->tok[arr].type != JSON_ARRAY) arr = -1;
	}
	if (arr < 0) {
		log_warnx("room %s: fetch answer from %s is not a federation body with pdus/events",
		          r->id, res.server);
		fetchres_free(&res);
		req_done(p, q, now);
		return;
	}
	struct { uint64_t seq; uint32_t off, len; char id[PDU_EVENT_ID_MAX]; } *got = NULL;
	int ngot = 0, cap = 0, wrc;
	struct store *s = p->d->st;
	struct tx x;
again:
	ngot = 0;
	purgatory_tx_begin(p, &x);
	for (int e = json_first(d, arr); e >= 0 && !x.err; e = json_next_elem(d, arr, e)) {
		if (d->tok[e].type != JSON_OBJECT) continue;
		char id[PDU_EVENT_ID_MAX];
		int rv = pdu_rv(p, x.t, d, e, r->id);
		if (pdu_event_id(d, e, rv, id) < 0) continue;
		if (store_event_exists(x.t, s, id) || purgatory_held_find(p, id) ||
		    recent_has(r, id, now, p->fetch_timeout))
			continue;
		int seen = 0;
		for (int i = 0; i < ngot && !seen; i++) seen = !strcmp(got[i].id, id);
		if (seen) continue;
		uint64_t seq;
		const char *bytes = res.body + d->tok[e].start;
		size_t n = d->tok[e].end - d->tok[e].start;
		int rc = store_inbox_put(x.t, s, res.server[0] ? res.server : "fetchd", bytes, n, &seq);
		if (rc) { purgatory_tx_fail(&x, rc, "inbox put (fetched)"); break; }
		if (ngot == cap) {
			cap = cap ? cap * 2 : 16;
			got = xreallocarray(got, (size_t)cap, sizeof *got);
		}
		got[ngot].seq = seq;
		got[ngot].off = d->tok[e].start;
		got[ngot].len = (uint32_t)n;
		memcpy(got[ngot].id, id, sizeof id);
		ngot++;
	}
	if ((wrc = purgatory_tx_commit(p, &x)) == 1) goto again;
	if (wrc < 0) ngot = 0;          /* not kept: the room's next attempt asks again */
	for (int i = 0; i < ngot; i++) {
		recent_add(r, got[i].id, now, p->fetch_timeout);
		daemon_emit(p->d, "validated", FT_EVENT, 0, got[i].seq, res.body + got[i].off, got[i].len);
	}
	free(got);
	r->gained += ngot;
	*p->c_fetched += (uint64_t)ngot;
	log_debug("room %s: %s from %s brought %d new events", r->id, q->op, res.server, ngot);
	fetchres_free(&res);
	req_done(p, q, now);
}

void purgatory_fetchd_up(struct purgatoryd *p)
{
	long long now = now_ms();
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &p->rooms);
	while ((n = hmap_iter_next(&it))) {
		struct proom *r = HMAP_ENTRY(n, struct proom, hn);
		if (r->fetchd_wait) { r->fetchd_wait = 0; r->due_ms = now; }
	}
}

void purgatory_fetchd_down(struct purgatoryd *p)
{
	long long now = now_ms();
	while (p->reqs) {
		struct preq *q = p->reqs;
		p->reqs = q->next;
		struct proom *r = q->room;
		(*p->g_inflight)--;
		r->inflight--;
		r->fetchd_wait = 1;
		r->due_ms = now + p->fetch_retry;   /* not the room's fault: no backoff */
		free(q);
	}
}

/* Operator requests (fedctl), FT_PURG_CTL frames (see core/frame.h):
 * {"op":"retry","room_id":R}, {"op":"drop","event_id":E} and
 * {"op":"stored","event_ids":[..]} (the fleet applier stored these). An unreadable
 * one is a bug of the sender: the connection is dropped. */
void purgatory_control(struct purgatoryd *p, struct conn *c, const struct frame *f)
{
	struct json_doc *d = &p->doc;
	char op[32] = "", arg[PURG_NAME_MAX] = "";
	struct buf b;
	int ot = -1;
	if (json_parse(d, f->payload, f->len, 8) < 0 || d->tok[0].type != JSON_OBJECT ||
	    (ot = json_obj_get(d, 0, "op")) < 0 || d->tok[ot].type != JSON_STRING ||
	    json_str_copy(d, ot, op, sizeof op) < 0) {
		log_warnx("%s: unreadable control request; dropping the connection", conn_peer(c));
		conn_close(c);
		return;
	}
	buf_init(&b);
	int t = json_obj_get(d, 0, !strcmp(op, "drop") ? "event_id" : "room_id");
	if (t >= 0 && d->tok[t].type == JSON_STRING) (void)json_str_copy(d, t, arg, sizeof arg);
	if (!strcmp(op, "retry") && arg[0]) {
		struct proom *r = purgatory_room_find(p, arg);
		if (!r || !r->nheld) buf_adds(&b, "{\"ok\":false,\"error\":\"not_found\"}");
		else {
			long long now = now_ms();
			r->failures = 0;
			r->backoff_ms = 0;
			r->nrecent = 0;
			r->due_ms = now;
			if (!r->inflight) attempt(p, r, now);
			buf_printf(&b, "{\"ok\":true,\"held\":%zu,\"inflight\":%d}", r->nheld, r->inflight);
			release_ready(p);
		}
	} else if (!strcmp(op, "stored")) {
		/* {"op":"stored","event_ids":[..]}: another writer (the fleet
		 * applier) stored these; release what waited on them now */
		int ta = json_obj_get(d, 0, "event_ids");
		struct purg_idlist ids = { 0 };
		int bad = ta < 0 || d->tok[ta].type != JSON_ARRAY;
		for (int e = bad ? -1 : json_first(d, ta); !bad && e >= 0; e = json_next_elem(d, ta, e)) {
			char id[PDU_EVENT_ID_MAX];
			if (d->tok[e].type != JSON_STRING || json_str_copy(d, e, id, sizeof id) < 0 || id[0] != '$') bad = 1;
			else purg_idlist_push(&ids, id);
		}
		if (bad) buf_adds(&b, "{\"ok\":false,\"error\":\"bad_request\"}");
		else {
			long n = ids.n ? purgatory_release_ids(p, &ids, 1) : 0;
			if (n > 0) log_info("%zu event(s) stored by %s released %ld held event(s)", ids.n, conn_peer(c), n);
			if (n < 0) buf_adds(&b, "{\"ok\":false,\"error\":\"store_full\"}");
			else buf_printf(&b, "{\"ok\":true,\"released\":%ld}", n);
		}
		free(ids.v);
	} else if (!strcmp(op, "drop") && arg[0]) {
		int rc = purgatory_drop(p, arg);
		if (rc == 0) buf_adds(&b, "{\"ok\":true}");
		else buf_printf(&b, "{\"ok\":false,\"error\":\"%s\"}", rc == -2 ? "store_full" : "not_found");
	} else
		buf_adds(&b, "{\"ok\":false,\"error\":\"bad_request\"}");
	conn_send(c, FT_PURG_CTL, FF_REPLY, f->id, b.data, b.len);
	buf_free(&b);
}
