/* served_recover.c: cache-warm recovery (seed 002). A miss for an event is
 * answered 404 at once; recovery runs behind it: a bounded in-process queue
 * (full: drop and count), in-memory dedup of what is queued or in flight,
 * then cross-request/cross-instance dedup by a SetNX claim with a TTL in
 * LMDB `claims` (failing open: an LMDB error never stops a recovery). Jobs
 * go to fetchd as FT_FETCH_REQ with FF_PROXIED, so the upstream request
 * carries X-Fed-Proxied: 1 and the upstream never re-proxies (one hop).
 * Recovered PDUs go into inbox (one txn) and on to validated as FT_EVENT;
 * purgatoryd stores them and the next request finds them. */
#include "served.h"
#include "log.h"
#include "json.h"
#include <stdlib.h>
#include <string.h>

static struct buf upstream_json;     /* ["a","b"] */
static struct event *recover_timer;

static int queued_or_inflight(struct served *s, const char *id)
{
	for (int i = 0; i < s->rq_len; i++)
		if (!strcmp(s->rq[(s->rq_head + i) % s->rq_cap].event_id, id)) return 1;
	for (int i = 0; i < s->ninflight; i++)
		if (!strcmp(s->inflight[i].event_id, id)) return 1;
	return 0;
}

/* SetNX with TTL: 1 = claimed by us (or failing open), 0 = someone holds it. */
static int claim(struct served *s, const char *id)
{
	char k[SERVED_ID_MAX + 16];
	int kn = snprintf(k, sizeof k, "recover:%s", id);
	long long now = now_ms();
	MDB_txn *t;
	if (mdb_txn_begin(s->d->st.env, NULL, 0, &t)) { (*s->c_rec_claim_errors)++; return 1; }
	MDB_val v;
	int rc = store_get(t, &s->d->st, DB_CLAIMS, k, (size_t)kn, &v);
	if (rc == 0 && v.mv_size == 8 && (long long)be64_get(v.mv_data) > now) {
		mdb_txn_abort(t);
		return 0;
	}
	unsigned char e[8];
	be64_put(e, (uint64_t)(now + s->claim_ttl));
	rc = store_put(t, &s->d->st, DB_CLAIMS, k, (size_t)kn, e, 8, 0);
	if (rc) mdb_txn_abort(t);
	else rc = mdb_txn_commit(t);
	if (rc) {
		log_warnx("recovery claim for %s failed (%s): recovering anyway", id, mdb_strerror(rc));
		(*s->c_rec_claim_errors)++;
		return 1;
	}
	return 1;
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
		buf_adds(&b, ",\"op\":\"event\",\"servers\":");
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

void recover_miss(struct served *s, const char *event_id)
{
	if (!s->upstreams) return;
	if (event_id[0] != '$' || strlen(event_id) > 255) return;
	if (queued_or_inflight(s, event_id)) { (*s->c_rec_dedup_local)++; return; }
	if (s->rq_len == s->rq_cap) {
		(*s->c_rec_dropped)++;
		log_debug("recovery queue full: dropping %s", event_id);
		return;
	}
	if (!claim(s, event_id)) { (*s->c_rec_dedup_claim)++; return; }
	struct recover_job *j = &s->rq[(s->rq_head + s->rq_len) % s->rq_cap];
	memset(j, 0, sizeof *j);
	strcpy(j->event_id, event_id);
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
	int idx[16], n = 0;
	MDB_txn *t = store_begin(&s->d->st, 0);
	int rc = 0;
	for (int e = json_first(&d, pdus); e >= 0 && n < 16; e = json_next_elem(&d, pdus, e)) {
		if (d.tok[e].type != JSON_OBJECT) continue;
		rc = store_inbox_put(t, &s->d->st, server, body + d.tok[e].start,
		                     d.tok[e].end - d.tok[e].start, &seqs[n]);
		if (rc) break;
		idx[n++] = e;
	}
	if (rc) { mdb_txn_abort(t); n = 0; log_err("recovery of %s: inbox put: %s", job.event_id, mdb_strerror(rc)); }
	else if (store_commit(t)) n = 0;
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

void recover_init(struct served *s)
{
	struct daemon *d = s->d;
	s->claim_ttl = cfg_ms(&d->cfg, "served", "claim_ttl");
	s->recover_timeout = cfg_ms(&d->cfg, "served", "recover_timeout");
	s->rq_cap = (int)cfg_int(&d->cfg, "served", "recover_queue");
	if (s->rq_cap < 1) s->rq_cap = 1;
	s->inflight_cap = (int)cfg_int(&d->cfg, "served", "recover_inflight");
	if (s->inflight_cap < 1) s->inflight_cap = 1;
	s->rq = calloc((size_t)s->rq_cap, sizeof *s->rq);
	s->inflight = calloc((size_t)s->inflight_cap, sizeof *s->inflight);
	if (!s->rq || !s->inflight) fatalx("out of memory");
	buf_init(&upstream_json);
	buf_addc(&upstream_json, '[');
	char list[1024];
	snprintf(list, sizeof list, "%s", cfg_str(&d->cfg, "served", "upstreams"));
	int n = 0;
	for (char *sv, *p = list; (sv = strtok_r(p, ", \t", &p)) != NULL;) {
		if (n++) buf_addc(&upstream_json, ',');
		json_put_string(&upstream_json, sv, strlen(sv));
	}
	buf_addc(&upstream_json, ']');
	s->upstreams = n > 0;
	recover_timer = daemon_timer(d, 1000, timer_cb, s);
}

void recover_fini(struct served *s)
{
	if (recover_timer) event_del(recover_timer);
	buf_free(&upstream_json);
	free(s->rq);
	free(s->inflight);
	s->rq = s->inflight = NULL;
}
