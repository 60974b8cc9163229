/* served_recover.c: cache-warm recovery. A miss for an event is
 * answered 404 at once; recovery runs behind it: a bounded in-process queue
 * (full: drop and count), in-memory dedup of what is queued or in flight,
 * then cross-request/cross-instance dedup by a SetNX claim with a TTL in
 * LMDB `claims` (failing open: an LMDB error never stops a recovery), or,
 * in a fleet, in the fleet's KV bucket `<name>_claims` (kvStore_Create,
 * bucket TTL [fleet] claims_ttl: one miss, one recovery in the whole fleet;
 * NATS away: the LMDB claim as without a fleet, logged once). Jobs
 * go to fetchd as FT_FETCH_REQ with FF_PROXIED, so the upstream request
 * carries X-Fed-Proxied: 1 and the upstream never re-proxies (one hop).
 * Recovered PDUs go into inbox (one txn) and on to validated as FT_EVENT;
 * purgatoryd stores them and the next request finds them.
 * Hostile-world rules: recovery asks only [served] upstreams,
 * so an ID naming another server (room v1/v2 "$x:server") is not recovered
 * (fetchd would ask that server too); one client address has at most
 * recover_per_client jobs queued or in flight; expired claims are swept a
 * bounded batch per timer turn; every write txn is aborted on any error and
 * reported to store_write_failed; with the store full, claims fail open and
 * reads go on. [node] mode = subscribe: no recovery (a miss is not even
 * reached: the event reads answer 403); a reload into it drops the queued
 * jobs (counted as dropped), before any claim is taken. */
#include "served.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/claims.h"
#include "feed/feed_claims.h"
#include "matrix/json.h"
#include <stdlib.h>
#include <string.h>

static struct buf upstream_json;     /* ["a","b"] */
static char **upstream;              /* the same names, owned copies */
static size_t nupstream;
static struct event *recover_timer, *sweep_timer;
static char sweep_from[SERVED_ID_MAX + 16];   /* resume key of the claims sweep */
static size_t sweep_from_len;

static int client_jobs(struct served *s, const char *client)
{
	int n = 0;
	for (int i = 0; i < s->rq_len; i++)
		if (!strcmp(s->rq[(s->rq_head + i) % s->rq_cap].client, client)) n++;
	for (int i = 0; i < s->ninflight; i++)
		if (!strcmp(s->inflight[i].client, client)) n++;
	return n;
}

static int queued_or_inflight(struct served *s, const char *id)
{
	for (int i = 0; i < s->rq_len; i++)
		if (!strcmp(s->rq[(s->rq_head + i) % s->rq_cap].event_id, id)) return 1;
	for (int i = 0; i < s->ninflight; i++)
		if (!strcmp(s->inflight[i].event_id, id)) return 1;
	return 0;
}

/* SetNX with TTL: 1 = claimed by us (or failing open), 0 = someone holds it.
 * Fails open: with the store full (or any LMDB error) recovery goes on
 * without cross-request dedup rather than not at all. */
static int claim(struct served *s, const char *id)
{
	if (s->fleet_claims) {
		char err[512];
		int r = fleet_claim_take(s->fleet_claims, "recover", id, err, sizeof err);
		if (r >= 0) {
			if (s->fleet_claims_down) log_notice("fleet claims: the fleet's KV answers again");
			s->fleet_claims_down = 0;
			return r;
		}
		if (!s->fleet_claims_down) log_warnx("%s; claiming in LMDB meanwhile (fail-open)", err);
		s->fleet_claims_down = 1;
	}
	char k[SERVED_ID_MAX + 16];
	int kn = snprintf(k, sizeof k, "recover:%s", id);
	for (;;) {
		MDB_txn *t = store_begin(s->d->st, 0);
		int held;
		int rc = store_claim_take(t, s->d->st, k, (size_t)kn, now_ms(), s->claim_ttl, &held);
		if (!rc && held) {
			mdb_txn_abort(t);
			return 0;
		}
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);            /* frees t, also on failure */
		if (!rc) return 1;
		if (store_write_failed(s->d->st, rc)) continue;   /* map grown: redo */
		(*s->c_rec_claim_errors)++;
		log_debug("recovery claim for %s failed (%s): recovering anyway", id, mdb_strerror(rc));
		return 1;
	}
}

/* Delete expired claims, a bounded batch per turn: a read txn looks at up
 * to SWEEP_SCAN rows from where the last turn stopped (wrapping) and notes
 * the expired ones; only if there are some, one short write txn deletes
 * them (each checked again: another instance may have claimed it since).
 * A failed delete txn (the map full: deleting copies pages too) halves the
 * batch until one goes through. */
#define SWEEP_SCAN 512
static void sweep_cb(struct daemon *d, void *arg)
{
	struct served *s = arg;
	static int batch = SWEEP_SCAN;
	static char keys[SWEEP_SCAN][SERVED_ID_MAX + 16];
	static size_t klen[SWEEP_SCAN];
	int n = 0;
	long long now = now_ms();
	MDB_txn *t = store_begin(d->st, 1);
	struct store_iter it;
	int rc = store_iter_open(&it, t, d->st, DB_CLAIMS, NULL, 0);
	if (rc) { store_iter_close(&it); mdb_txn_abort(t); return; }
	if (sweep_from_len) store_iter_from(&it, sweep_from, sweep_from_len);
	int r = 0, scanned = 0;
	while (scanned < SWEEP_SCAN && n < batch && (r = store_iter_next(&it)) == 1) {
		scanned++;
		if (!store_claim_expired(&it.v, now)) continue;
		if (it.k.mv_size > sizeof keys[0]) continue;
		memcpy(keys[n], it.k.mv_data, it.k.mv_size);
		klen[n++] = it.k.mv_size;
	}
	/* Stopped early (not at the end, no error): resume at the next row. */
	if (r == 1 && store_iter_next(&it) == 1 && it.k.mv_size <= sizeof sweep_from) {
		memcpy(sweep_from, it.k.mv_data, it.k.mv_size);
		sweep_from_len = it.k.mv_size;
	} else {
		sweep_from_len = 0;                           /* the end (or an error): wrap */
	}
	store_iter_close(&it);
	mdb_txn_abort(t);
	if (!n) return;
	t = store_begin(d->st, 0);
	int deleted = 0;
	for (int i = 0; i < n && !rc; i++) {
		int del;
		rc = store_claim_del_expired(t, d->st, keys[i], klen[i], now, &del);
		deleted += del;
	}
	if (rc) mdb_txn_abort(t);
	else rc = store_commit(t);            /* frees t, also on failure */
	if (rc) {
		if (batch > 1) batch /= 2;
		store_write_failed(d->st, rc);   /* grown or not: the next turn retries */
		sweep_from_len = 0;               /* from the start, these rows included */
		return;
	}
	if (batch < SWEEP_SCAN) batch *= 2;
	*s->c_claims_swept += (uint64_t)deleted;
}

static void pump(struct served *s)
{
	long long now = mono_ms();
	/* Expire in-flight requests fetchd never answered (it restarted...). */
	for (int i = 0; i < s->ninflight;) {
		if (now - s->inflight[i].sent_ms > s->recover_timeout) {
			log_info("recovery of %s: no answer from fetchd in time", s->inflight[i].event_id);
			(*s->c_rec_failed)++;
			s->inflight[i] = s->inflight[--s->ninflight];
		} else {
			i++;
		}
	}
	while (s->rq_len && s->ninflight < s->inflight_cap) {
		struct recover_job *j = &s->rq[s->rq_head];
		if (now - j->queued_ms > s->claim_ttl) {      /* stale: its claim ran out */
			(*s->c_rec_expired)++;
			s->rq_head = (s->rq_head + 1) % s->rq_cap;
			s->rq_len--;
			continue;
		}
		struct buf b;
		buf_init(&b);
		buf_adds(&b, "{\"event_id\":");
		json_put_string(&b, j->event_id, strlen(j->event_id));
		buf_adds(&b, ",\"op\":\"event\",\"hints_only\":true,\"servers\":");
		buf_add(&b, upstream_json.data, upstream_json.len);
		buf_printf(&b, ",\"timeout_ms\":%lld}", s->recover_timeout);
		uint64_t id = ++s->next_req_id;
		int rc = daemon_emit(s->d, "fetchd", FT_FETCH_REQ, FF_PROXIED, id, b.data, b.len);
		buf_free(&b);
		if (rc < 0) break;            /* fetchd down or busy: retry on the timer */
		(*s->c_rec_sent)++;
		j->req_id = id;
		j->sent_ms = now;
		s->inflight[s->ninflight++] = *j;
		s->rq_head = (s->rq_head + 1) % s->rq_cap;
		s->rq_len--;
		log_info("recovering %s from upstream (request %llu)", j->event_id, (unsigned long long)id);
	}
	*s->g_rq = s->rq_len;
	*s->g_inflight = s->ninflight;
}

static void timer_cb(struct daemon *d, void *arg)
{
	(void)d;
	struct served *s = arg;
	if (s->rq_len || s->ninflight) pump(s);
}

void recover_miss(struct served *s, const char *event_id, const char *client)
{
	if (!s->upstreams || s->mode == NODE_SUBSCRIBE) return;
	if (!sp_recover_id_ok(event_id, upstream, nupstream)) { (*s->c_rec_refused_id)++; return; }
	if (queued_or_inflight(s, event_id)) { (*s->c_rec_dedup_local)++; return; }
	if (s->rq_len == s->rq_cap) {
		(*s->c_rec_dropped)++;
		log_debug("recovery queue full: dropping %s", event_id);
		return;
	}
	if (client_jobs(s, client) >= s->rec_per_client) { (*s->c_rec_client_capped)++; return; }
	if (!claim(s, event_id)) { (*s->c_rec_dedup_claim)++; return; }
	struct recover_job *j = &s->rq[(s->rq_head + s->rq_len) % s->rq_cap];
	memset(j, 0, sizeof *j);
	strcpy(j->event_id, event_id);
	snprintf(j->client, sizeof j->client, "%s", client);
	j->queued_ms = mono_ms();
	s->rq_len++;
	(*s->c_rec_queued)++;
	pump(s);
}

void recover_on_frame(struct served *s, struct frame *f)
{
	int at = -1;
	for (int i = 0; i < s->ninflight; i++) if (s->inflight[i].req_id == f->id) at = i;
	if (at < 0) { log_debug("fetch result for unknown request %llu", (unsigned long long)f->id); return; }
	struct recover_job job = s->inflight[at];
	s->inflight[at] = s->inflight[--s->ninflight];
	const char *meta, *body;
	size_t ml, bl;
	struct json_doc m = {0}, d = {0};
	char server[256] = "";
	if (frame_split_meta(f, &meta, &ml, &body, &bl) < 0 || json_parse(&m, meta, ml, 8) < 0 ||
	    m.tok[0].type != JSON_OBJECT) {
		log_warnx("recovery of %s: malformed fetch result from fetchd", job.event_id);
		(*s->c_rec_failed)++;
		goto out;
	}
	int ok = json_obj_get(&m, 0, "ok");
	if (ok < 0 || m.tok[ok].type != JSON_TRUE) {
		char err[64] = "?";
		int e = json_obj_get(&m, 0, "error");
		if (e >= 0) json_str_copy(&m, e, err, sizeof err);
		log_info("recovery of %s failed: %s", job.event_id, err);
		(*s->c_rec_failed)++;
		goto out;
	}
	int sv = json_obj_get(&m, 0, "server");
	if (sv >= 0) json_str_copy(&m, sv, server, sizeof server);
	int pdus;
	if (json_parse(&d, body, bl, JSON_MAX_DEPTH_DEFAULT) < 0 || d.tok[0].type != JSON_OBJECT ||
	    (pdus = json_obj_get(&d, 0, "pdus")) < 0 || d.tok[pdus].type != JSON_ARRAY) {
		log_warnx("recovery of %s: answer from %s has no pdus array", job.event_id, server);
		(*s->c_rec_failed)++;
		goto out;
	}
	uint64_t seqs[16];
	int idx[16], n;
	for (;;) {
		MDB_txn *t = store_begin(s->d->st, 0);
		int rc = 0;
		n = 0;
		for (int e = json_first(&d, pdus); e >= 0 && n < 16; e = json_next_elem(&d, pdus, e)) {
			if (d.tok[e].type != JSON_OBJECT) continue;
			rc = store_inbox_put(t, s->d->st, server, body + d.tok[e].start,
			                     d.tok[e].end - d.tok[e].start, &seqs[n]);
			if (rc) break;
			idx[n++] = e;
		}
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);            /* frees t, also on failure */
		if (!rc) break;
		n = 0;
		if (store_write_failed(s->d->st, rc)) continue;   /* map grown: redo */
		/* Store full (or broken): the recovery is lost, not the node's
		 * data; the next miss for this event recovers it again. */
		log_err("recovery of %s: inbox write failed: %s", job.event_id, mdb_strerror(rc));
		break;
	}
	for (int i = 0; i < n; i++)
		daemon_emit(s->d, "validated", FT_EVENT, 0, seqs[i], body + d.tok[idx[i]].start,
		            d.tok[idx[i]].end - d.tok[idx[i]].start);
	*s->c_rec_pdus += (uint64_t)n;
	if (n) (*s->c_rec_ok)++; else (*s->c_rec_failed)++;
	log_info("recovered %s from %s: %d PDU(s) into the inbox", job.event_id, server, n);
out:
	json_doc_free(&m);
	json_doc_free(&d);
	pump(s);
}

/* (Re)read the recovery settings from d->cfg: at start and after SIGHUP.
 * Nothing points into the configuration afterwards (names are copied). */
void recover_apply(struct served *s)
{
	struct daemon *d = s->d;
	s->claim_ttl = cfg_ms(&d->cfg, "served", "claim_ttl");
	s->recover_timeout = cfg_ms(&d->cfg, "served", "recover_timeout");
	s->rec_per_client = (int)cfg_int(&d->cfg, "served", "recover_per_client");
	int cap = (int)cfg_int(&d->cfg, "served", "recover_queue");
	if (cap != s->rq_cap) {              /* new ring; jobs beyond the new cap are dropped */
		struct recover_job *nq = xcalloc((size_t)cap, sizeof *nq);
		int keep = s->rq_len < cap ? s->rq_len : cap;
		for (int i = 0; i < keep; i++) nq[i] = s->rq[(s->rq_head + i) % s->rq_cap];
		*s->c_rec_dropped += (uint64_t)(s->rq_len - keep);
		free(s->rq);
		s->rq = nq; s->rq_cap = cap; s->rq_head = 0; s->rq_len = keep;
	}
	int icap = (int)cfg_int(&d->cfg, "served", "recover_inflight");
	if (icap != s->inflight_cap) {       /* room for what is already in flight */
		int room = icap > s->ninflight ? icap : s->ninflight;
		struct recover_job *ni = xcalloc((size_t)room, sizeof *ni);
		if (s->ninflight) memcpy(ni, s->inflight, (size_t)s->ninflight * sizeof *ni);
		free(s->inflight);
		s->inflight = ni;
		s->inflight_cap = icap;
	}
	for (size_t i = 0; i < nupstream; i++) free(upstream[i]);
	free(upstream);
	upstream = NULL;
	nupstream = 0;
	buf_free(&upstream_json);
	buf_init(&upstream_json);
	buf_addc(&upstream_json, '[');
	const char *list = cfg_str(&d->cfg, "served", "upstreams");
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ", \t");
		if (l) {
			upstream = xreallocarray(upstream, nupstream + 1, sizeof *upstream);
			upstream[nupstream] = xmemdup(p, l);
			if (nupstream++) buf_addc(&upstream_json, ',');
			json_put_string(&upstream_json, p, l);
			p += l;
		} else {
			p++;
		}
	}
	buf_addc(&upstream_json, ']');
	s->upstreams = nupstream > 0;
	if (s->mode == NODE_SUBSCRIBE && s->rq_len) {
		log_info("mode subscribe: %d queued recovery job(s) dropped", s->rq_len);
		*s->c_rec_dropped += (uint64_t)s->rq_len;
		s->rq_head = s->rq_len = 0;
		*s->g_rq = 0;
	}
}

void recover_init(struct served *s)
{
	buf_init(&upstream_json);
	recover_apply(s);
	s->fleet_claims = fleet_claims_open(&s->d->cfg);
	char err[300];
	if (s->fleet_claims && fleet_claims_prepare(s->fleet_claims, err, sizeof err) < 0)
		log_warnx("%s; claims go to LMDB until the fleet's KV answers (fail-open)", err);
	recover_timer = daemon_timer(s->d, 1000, timer_cb, s);
	sweep_timer = daemon_timer(s->d, 1000, sweep_cb, s);
}

void recover_fini(struct served *s)
{
	if (recover_timer) event_del(recover_timer);
	if (sweep_timer) event_del(sweep_timer);
	fleet_claims_close(s->fleet_claims);
	s->fleet_claims = NULL;
	buf_free(&upstream_json);
	for (size_t i = 0; i < nupstream; i++) free(upstream[i]);
	free(upstream);
	upstream = NULL;
	nupstream = 0;
	free(s->rq);
	free(s->inflight);
	s->rq = s->inflight = NULL;
}
