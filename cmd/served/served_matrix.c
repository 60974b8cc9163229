/* served_matrix.c: the Matrix server-server reads other nodes' fetchd use,
 * answered from LMDB: event, event_auth, state_ids, get_missing_events,
 * backfill, the node's self-signed key document, and key queries as a
 * notary (other servers' verified documents, countersigned). Graph walks are
 * breadth-first over stored events only and bounded (WALK_MAX), so a
 * request can never make served walk an unbounded history. State at an
 * event is approximated (full state resolution is out of scope): the latest
 * (by depth) state event per (type, state_key) among the event's ancestors. */
#include "served.h"
#include "core/log.h"
#include "core/hmap.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include "store/server_keys.h"
#include <stdlib.h>
#include <string.h>

#define WALK_MAX 20000

struct item {
	char    *id;
	int64_t  depth;
	char    *type, *state_key;      /* state_key NULL: not a state event */
	const char *pdu; size_t len;    /* into the read txn's map */
};

/* A set of event IDs (core/hmap), each entry owning a copy of its ID. */
struct idset { struct hmap m; };
struct idnode { struct hmap_node hn; char id[]; };

static int idset_find(const struct idset *set, const char *id, uint64_t h)
{
	HMAP_FOR_HASH(&set->m, h, n)
		if (!strcmp(HMAP_ENTRY(n, struct idnode, hn)->id, id)) return 1;
	return 0;
}

/* Add; 1 if new, 0 if present. */
static int idset_add(struct idset *set, const char *id)
{
	uint64_t h = hmap_hash_str(id);
	if (idset_find(set, id, h)) return 0;
	size_t n = strlen(id);
	struct idnode *e = xmalloc(sizeof *e + n + 1);
	memcpy(e->id, id, n + 1);
	hmap_insert(&set->m, &e->hn, h);
	return 1;
}

static int idset_has(const struct idset *set, const char *id)
{
	return idset_find(set, id, hmap_hash_str(id));
}

static void idset_free(struct idset *set)
{
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &set->m);
	while ((n = hmap_iter_next(&it))) free(HMAP_ENTRY(n, struct idnode, hn));
	hmap_free(&set->m);
}

struct walk {
	struct served *s;
	MDB_txn *t;
	const char *room;
	struct item *found; size_t n, cap;
	struct idset seen;
	char **queue; size_t qh, qn, qcap;
};

static void push(struct walk *w, const char *id)
{
	if (w->qn == w->qcap) {
		w->qcap = w->qcap ? w->qcap * 2 : 64;
		w->queue = xreallocarray(w->queue, w->qcap, sizeof *w->queue);
	}
	w->queue[w->qn++] = xstrdup(id);
}

static char *tok_dup(const struct json_doc *d, int t)
{
	if (t < 0 || d->tok[t].type != JSON_STRING) return NULL;
	size_t n = json_str_len(d, t);
	char *s = xmalloc(n + 1);
	json_str_copy(d, t, s, n + 1);
	return s;
}

/* Breadth-first from the queued ids; follow "prev_events" and/or
 * "auth_events". include_starts: whether the first nstart ids are results.
 * stop: ids neither returned nor expanded (get_missing_events' earliest). */
static void walk_run(struct walk *w, size_t nstart, int include_starts, int prev, int auth,
                     const struct idset *stop, size_t limit)
{
	struct json_doc d = {0};
	size_t visited = 0;
	for (; w->qh < w->qn && w->n < limit && visited < WALK_MAX; w->qh++) {
		char *id = w->queue[w->qh];
		int is_start = w->qh < nstart;
		if (!idset_add(&w->seen, id) || (stop && idset_has(stop, id))) continue;
		visited++;
		struct event_rec r;
		if (strlen(id) >= SERVED_ID_MAX || store_event_get(w->t, w->s->d->st, id, &r)) continue;
		if (w->room && (r.room_len != strlen(w->room) || memcmp(r.room_id, w->room, r.room_len))) continue;
		if (json_parse(&d, r.pdu, r.pdu_len, JSON_MAX_DEPTH_DEFAULT) < 0) continue;
		if (!is_start || include_starts) {
			if (w->n == w->cap) {
				w->cap = w->cap ? w->cap * 2 : 32;
				w->found = xreallocarray(w->found, w->cap, sizeof *w->found);
			}
			struct item *it = &w->found[w->n++];
			it->id = xstrdup(id);
			int dt = json_obj_get(&d, 0, "depth");
			it->depth = dt >= 0 && d.tok[dt].type == JSON_INT ? d.tok[dt].ival : 0;
			it->type = tok_dup(&d, json_obj_get(&d, 0, "type"));
			it->state_key = tok_dup(&d, json_obj_get(&d, 0, "state_key"));
			it->pdu = r.pdu;
			it->len = r.pdu_len;
		}
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 0 ? !prev : !auth) continue;
			int a = json_obj_get(&d, 0, pass == 0 ? "prev_events" : "auth_events");
			if (a < 0 || d.tok[a].type != JSON_ARRAY) continue;
			for (int e = json_first(&d, a); e >= 0; e = json_next_elem(&d, a, e)) {
				char cid[SERVED_ID_MAX];
				if (d.tok[e].type == JSON_STRING && json_str_copy(&d, e, cid, sizeof cid) > 0 &&
				    !idset_has(&w->seen, cid))
					push(w, cid);
			}
		}
	}
	json_doc_free(&d);
}

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++) { free(w->found[i].id); free(w->found[i].type); free(w->found[i].state_key); }
	free(w->found);
	for (size_t i = 0; i < w->qn; i++) free(w->queue[i]);
	free(w->queue);
	idset_free(&w->seen);
}

static int by_depth(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void add_pdus(struct buf *b, struct walk *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (i) buf_addc(b, ',');
		buf_add(b, w->found[i].pdu, w->found[i].len);
	}
}

static void add_origin(struct served *s, struct buf *b)
{
	buf_adds(b, "\"origin\":");
	json_put_string(b, s->server_name, strlen(s->server_name));
	buf_printf(b, ",\"origin_server_ts\":%lld", now_ms());
}

/* The read transaction of GET /event/{id}: reset after each answer and
 * renewed for the next (a fresh snapshot each time, so never a stale
 * answer; no allocation, and the reader slot is kept). A renewal that
 * fails (the map grown by another process, ...) falls back to
 * store_begin, which deals with it. */
static MDB_txn *ev_txn;

static MDB_txn *ev_begin(struct served *s)
{
	MDB_txn *t = ev_txn;
	ev_txn = NULL;
	if (t && mdb_txn_renew(t) == 0) return t;
	if (t) mdb_txn_abort(t);
	return store_begin(s->d->st, 1);
}

static void ev_end(MDB_txn *t)
{
	if (ev_txn) { mdb_txn_abort(t); return; }
	mdb_txn_reset(t);
	ev_txn = t;
}

void mx_init(struct served *s)
{
	buf_init(&s->ev_prefix);
	buf_adds(&s->ev_prefix, "{\"origin\":");
	json_put_string(&s->ev_prefix, s->server_name, strlen(s->server_name));
	buf_adds(&s->ev_prefix, ",\"origin_server_ts\":");
}

void mx_fini(struct served *s)
{
	if (ev_txn) mdb_txn_abort(ev_txn);
	ev_txn = NULL;
	buf_free(&s->ev_prefix);
}

/* {"origin":S,"origin_server_ts":T,"pdus":[PDU]}: the stored canonical
 * PDU copied once, straight from the map into the answer. */
void mx_event(struct served *s, struct evhttp_request *req, const char *id, int proxied)
{
	static const char mid[] = ",\"pdus\":[", end[] = "]}";
	MDB_txn *t = ev_begin(s);
	struct event_rec r;
	if (store_event_get(t, s->d->st, id, &r) == 0) {
		(*s->c_event_hits)++;
		char tsb[24];
		const char *ts = served_u64(tsb, (uint64_t)now_ms());
		size_t tl = strlen(ts);
		size_t n = s->ev_prefix.len + tl + sizeof mid - 1 + r.pdu_len + sizeof end - 1;
		struct evbuffer *out = evhttp_request_get_output_buffer(req);
		struct evbuffer_iovec v;
		int ok = evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) == 1 && v.iov_len >= n;
		if (ok) {
			char *p = v.iov_base;
			memcpy(p, s->ev_prefix.data, s->ev_prefix.len); p += s->ev_prefix.len;
			memcpy(p, ts, tl); p += tl;
			memcpy(p, mid, sizeof mid - 1); p += sizeof mid - 1;
			memcpy(p, r.pdu, r.pdu_len); p += r.pdu_len;
			memcpy(p, end, sizeof end - 1);
			v.iov_len = n;
			ok = evbuffer_commit_space(out, &v, 1) == 0;
		}
		ev_end(t);
		if (!ok) {
			log_warnx("no memory for an HTTP answer (%zu bytes)", n);
			evbuffer_drain(out, evbuffer_get_length(out));
			evhttp_send_error(req, 500, "out of memory");
			return;
		}
		served_json_send(req, 200, "OK");
		return;
	}
	ev_end(t);
	(*s->c_event_misses)++;
	/* Answer first (cache-warm: never hold the requester), then recover. */
	served_error(s, req, 404, "M_NOT_FOUND", "event not found");
	if (proxied) log_info("proxied miss for %s: not recovering (one hop)", id);
	else recover_miss(s, id, served_client(req));
}

/* Begin w's read txn and walk from the stored event id (not a result
 * itself) along prev and/or auth edges. -1 (404 sent, txn ended) when the
 * event is not stored. */
static int walk_from(struct walk *w, struct evhttp_request *req, const char *id, int prev, int auth)
{
	w->t = store_begin(w->s->d->st, 1);
	if (!store_event_exists(w->t, w->s->d->st, id)) {
		mdb_txn_abort(w->t);
		served_error(w->s, req, 404, "M_NOT_FOUND", "event not found");
		return -1;
	}
	push(w, id);
	walk_run(w, 1, 0, prev, auth, NULL, WALK_MAX);
	return 0;
}

/* Answer 200 with {["origin" and "origin_server_ts",] field: [the walk's
 * PDUs by depth]}; ends w's read txn and frees w. */
static void walk_reply(struct evhttp_request *req, struct walk *w, const char *field, int origin)
{
	struct buf b;
	if (w->n > 1) qsort(w->found, w->n, sizeof *w->found, by_depth);   /* found is NULL when the walk found nothing */
	buf_init(&b);
	buf_addc(&b, '{');
	if (origin) {
		add_origin(w->s, &b);
		buf_addc(&b, ',');
	}
	buf_printf(&b, "\"%s\":[", field);
	add_pdus(&b, w);
	buf_adds(&b, "]}");
	mdb_txn_abort(w->t);
	walk_free(w);
	served_json(req, 200, "OK", &b);
	buf_free(&b);
}

void mx_event_auth(struct served *s, struct evhttp_request *req, const char *room, const char *id)
{
	struct walk w = { .s = s, .room = room };
	if (walk_from(&w, req, id, 0, 1) < 0) return;
	walk_reply(req, &w, "auth_chain", 0);
}

static int by_state(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->type ? x->type : "", y->type ? y->type : "");
	if (c) return c;
	c = strcmp(x->state_key, y->state_key);
	if (c) return c;
	return x->depth > y->depth ? -1 : x->depth < y->depth ? 1 : strcmp(x->id, y->id);
}

void mx_state_ids(struct served *s, struct evhttp_request *req, const char *room)
{
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	char id[SERVED_ID_MAX];
	const char *v = NULL;
	if (qs && evhttp_parse_query_str(qs, &q) == 0) v = evhttp_find_header(&q, "event_id");
	if (!v || strlen(v) >= sizeof id) {
		evhttp_clear_headers(&q);
		served_error(s, req, 400, "M_MISSING_PARAM", "event_id is required");
		return;
	}
	strcpy(id, v);
	evhttp_clear_headers(&q);
	struct walk w = { .s = s, .room = room };
	if (walk_from(&w, req, id, 1, 1) < 0) return;
	/* Keep state events only, the deepest per (type, state_key). */
	size_t k = 0;
	for (size_t i = 0; i < w.n; i++) {
		if (w.found[i].state_key) w.found[k++] = w.found[i];
		else { free(w.found[i].id); free(w.found[i].type); }
	}
	w.n = k;
	if (w.n > 1) qsort(w.found, w.n, sizeof *w.found, by_state);
	struct walk a = { .s = s, .room = room, .t = w.t };
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"auth_chain_ids\":[");
	size_t npdu = 0;
	struct buf p;
	buf_init(&p);
	for (size_t i = 0; i < w.n; i++) {
		if (i && !strcmp(w.found[i].type ? w.found[i].type : "", w.found[i - 1].type ? w.found[i - 1].type : "") &&
		    !strcmp(w.found[i].state_key, w.found[i - 1].state_key))
			continue;
		if (npdu++) buf_addc(&p, ',');
		json_put_string(&p, w.found[i].id, strlen(w.found[i].id));
		push(&a, w.found[i].id);
	}
	walk_run(&a, a.qn, 0, 0, 1, NULL, WALK_MAX);
	for (size_t i = 0; i < a.n; i++) {
		if (i) buf_addc(&b, ',');
		json_put_string(&b, a.found[i].id, strlen(a.found[i].id));
	}
	buf_adds(&b, "],\"pdu_ids\":[");
	buf_add(&b, p.data, p.len);
	buf_adds(&b, "]}");
	mdb_txn_abort(w.t);
	walk_free(&a);
	walk_free(&w);
	buf_free(&p);
	served_json(req, 200, "OK", &b);
	buf_free(&b);
}

static int read_body(struct evhttp_request *req, struct buf *out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	buf_reserve(out, n + 1);
	if (n && evbuffer_remove(in, out->data, n) != (int)n) return -1;
	out->len = n;
	out->data[n] = 0;
	return 0;
}

static int add_id_list(struct walk *w, struct idset *set, const struct json_doc *d, int arr)
{
	if (arr < 0 || d->tok[arr].type != JSON_ARRAY) return -1;
	for (int e = json_first(d, arr); e >= 0; e = json_next_elem(d, arr, e)) {
		char id[SERVED_ID_MAX];
		if (d->tok[e].type != JSON_STRING || json_str_copy(d, e, id, sizeof id) <= 0) return -1;
		if (set) idset_add(set, id);
		else push(w, id);
	}
	return 0;
}

void mx_get_missing(struct served *s, struct evhttp_request *req, const char *room)
{
	struct buf body;
	buf_init(&body);
	struct json_doc d = {0};
	if (read_body(req, &body) < 0 || json_parse(&d, body.data, body.len, 8) < 0 ||
	    d.tok[0].type != JSON_OBJECT) {
		served_error(s, req, 400, "M_NOT_JSON", "body is not a JSON object");
		goto out;
	}
	struct walk w = { .s = s, .room = room };
	struct idset earliest = {0};
	int lim = json_obj_get(&d, 0, "limit");
	int64_t limit = lim >= 0 && d.tok[lim].type == JSON_INT ? d.tok[lim].ival : 10;
	if (limit < 1) limit = 1;
	if (limit > 100) limit = 100;
	int ee = json_obj_get(&d, 0, "earliest_events"), le = json_obj_get(&d, 0, "latest_events");
	struct walk starts = { .s = s };
	if ((ee >= 0 && add_id_list(NULL, &earliest, &d, ee) < 0) || add_id_list(&starts, NULL, &d, le) < 0) {
		served_error(s, req, 400, "M_BAD_JSON", "latest_events (and earliest_events) must be arrays of event IDs");
		idset_free(&earliest);
		walk_free(&starts);
		goto out;
	}
	w.t = store_begin(s->d->st, 1);
	/* Start from the latest events' prev_events: the latest themselves are
	 * what the asker already has. */
	for (size_t i = 0; i < starts.qn; i++) push(&w, starts.queue[i]);
	walk_run(&w, starts.qn, 0, 1, 0, &earliest, (size_t)limit);
	walk_free(&starts);
	idset_free(&earliest);
	walk_reply(req, &w, "events", 0);
out:
	json_doc_free(&d);
	buf_free(&body);
}

void mx_backfill(struct served *s, struct evhttp_request *req, const char *room)
{
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (!qs || evhttp_parse_query_str(qs, &q) < 0) {
		served_error(s, req, 400, "M_MISSING_PARAM", "v and limit are required");
		return;
	}
	struct walk w = { .s = s, .room = room };
	uint64_t limit = 10;
	int bad_limit = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &q, next) {
		if (!strcmp(kv->key, "v") && strlen(kv->value) < SERVED_ID_MAX) push(&w, kv->value);
		else if (!strcmp(kv->key, "limit") && sp_digits(kv->value, UINT64_MAX, &limit) < 0) bad_limit = 1;
	}
	evhttp_clear_headers(&q);
	if (bad_limit) {
		walk_free(&w);
		served_error(s, req, 400, "M_INVALID_PARAM", "limit must be decimal digits only");
		return;
	}
	if (!w.qn) {
		walk_free(&w);
		served_error(s, req, 400, "M_MISSING_PARAM", "at least one v= event ID is required");
		return;
	}
	if (limit < 1) limit = 1;
	if (limit > 100) limit = 100;
	w.t = store_begin(s->d->st, 1);
	walk_run(&w, w.qn, 1, 1, 0, NULL, (size_t)limit);
	walk_reply(req, &w, "pdus", 1);
}

void mx_server_key(struct served *s, struct evhttp_request *req)
{
	struct buf b;
	buf_init(&b);
	if (signing_key_doc_old(&s->key, s->server_name, now_ms(),
	                        cfg_ms(&s->d->cfg, "served", "key_valid_for"), s->old_keys, s->nold_keys, &b) < 0) {
		buf_free(&b);
		served_error(s, req, 500, "M_UNKNOWN", "cannot build the key document");
		return;
	}
	served_json(req, 200, "OK", &b);
	buf_free(&b);
}

/* /_matrix/key/v2/query: fedpipe as a notary (server-server API, "Querying
 * Keys Through Another Server"), always open. GET .../query/{serverName}
 * [/{keyId}] [?minimum_valid_until_ts=N] and POST .../query with
 * {"server_keys":{S:{keyId:{"minimum_valid_until_ts":N}}}} (an empty map:
 * all of S's keys). Answer {"server_keys":[doc,...]}: for ourselves our own
 * document; for another server S the signed document stored beside its keys
 * (store/server_keys.h: as received from S, or inside a trusted notary's
 * answer), checked again now (self-signed by S, every key in it the one we
 * hold under that ID) and countersigned by this node (our signature added
 * to "signatures", S's kept). Keys imported without a document, documents
 * we cannot verify, and servers we know nothing of are left out (an empty
 * list is a valid answer). A document is returned when its valid_until_ts
 * is at least the criteria's minimum_valid_until_ts (absent: now) and, if
 * key IDs were asked, it holds one of them. */
#define KQ_SERVERS_MAX 100     /* servers per query */
#define KQ_KEYS_MAX    16      /* key IDs per server */

struct kq_want {
	char    server[256];
	int     nkeys;                     /* 0: any key */
	char    key_id[KQ_KEYS_MAX][64];
	int64_t min_vu[KQ_KEYS_MAX];       /* per key ID */
	int64_t min_any;                   /* nkeys == 0 */
};

/* Does document t (valid_until_ts vu) satisfy w? */
static int kq_match(const struct kq_want *w, const struct json_doc *d, int t, int64_t vu)
{
	if (!w->nkeys) return vu >= w->min_any;
	int vk = json_obj_get(d, t, "verify_keys"), ok = json_obj_get(d, t, "old_verify_keys");
	for (int i = 0; i < w->nkeys; i++) {
		int has = (vk >= 0 && d->tok[vk].type == JSON_OBJECT && json_obj_get(d, vk, w->key_id[i]) >= 0)
		       || (ok >= 0 && d->tok[ok].type == JSON_OBJECT && json_obj_get(d, ok, w->key_id[i]) >= 0);
		if (has && vu >= w->min_vu[i]) return 1;
	}
	return 0;
}

/* Another server's stored document, verified again and countersigned,
 * appended to out (with a comma before it unless first). 1 added, 0 not. */
static int kq_other(struct served *s, MDB_txn *t, const struct kq_want *w, struct buf *out, int first)
{
	const char *doc;
	size_t n;
	int64_t vu;
	int rc = store_key_doc_get(t, s->d->st, w->server, &doc, &n, &vu, NULL);
	if (rc) {
		if (rc != MDB_NOTFOUND) log_warnx("key query: the stored document of %s: %s", w->server, mdb_strerror(rc));
		return 0;
	}
	struct keyring kr;
	struct json_doc d = { 0 };
	char err[200];
	int added = 0;
	keyring_init(&kr);
	if (keyring_add_server_doc_for(&kr, doc, n, w->server, err, sizeof err) <= 0) {
		log_warnx("key query: the stored document of %s does not verify (%s): not served", w->server, err);
		goto out;
	}
	for (size_t i = 0; i < kr.n; i++) {
		struct key_rec r;
		if (store_key_get_rec(t, s->d->st, kr.k[i].server, kr.k[i].key_id, &r) || memcmp(r.pk, kr.k[i].pk, 32)) {
			log_warnx("key query: the stored document of %s gives %s, which is not the key we hold: not served",
			          w->server, kr.k[i].key_id);
			goto out;
		}
	}
	if (json_parse(&d, doc, n, JSON_MAX_DEPTH_DEFAULT) < 0 || !kq_match(w, &d, 0, vu)) goto out;
	struct buf signed_doc;
	buf_init(&signed_doc);
	if (json_sign_object(doc, n, s->server_name, s->key.key_id, s->key.sk, &signed_doc) == 0) {
		if (!first) buf_addc(out, ',');
		buf_add(out, signed_doc.data, signed_doc.len);
		added = 1;
	} else {
		log_warnx("key query: cannot countersign the document of %s", w->server);
	}
	buf_free(&signed_doc);
out:
	json_doc_free(&d);
	keyring_free(&kr);
	return added;
}

/* Our own document (self-signed: the notary signature is the same one). */
static int kq_self(struct served *s, const struct kq_want *w, struct buf *out, int first)
{
	struct buf b;
	struct json_doc d = { 0 };
	int added = 0;
	buf_init(&b);
	int64_t vu = now_ms() + cfg_ms(&s->d->cfg, "served", "key_valid_for");
	if (signing_key_doc_old(&s->key, s->server_name, vu - cfg_ms(&s->d->cfg, "served", "key_valid_for"),
	                        cfg_ms(&s->d->cfg, "served", "key_valid_for"), s->old_keys, s->nold_keys, &b) < 0) {
		log_warnx("key query: cannot build our key document");
	} else if (json_parse(&d, b.data, b.len, JSON_MAX_DEPTH_DEFAULT) == 0 && kq_match(w, &d, 0, vu)) {
		if (!first) buf_addc(out, ',');
		buf_add(out, b.data, b.len);
		added = 1;
	}
	json_doc_free(&d);
	buf_free(&b);
	return added;
}

/* A minimum_valid_until_ts value: a non-negative integer. */
static int kq_min(const struct json_doc *d, int crit, int64_t now, int64_t *out)
{
	*out = now;
	if (d->tok[crit].type != JSON_OBJECT) return -1;
	int m = json_obj_get(d, crit, "minimum_valid_until_ts");
	if (m < 0) return 0;
	if (d->tok[m].type != JSON_INT || d->tok[m].ival < 0) return -1;
	*out = d->tok[m].ival;
	return 0;
}

void mx_key_query(struct served *s, struct evhttp_request *req, const char *path)
{
	static const char pre[] = "/_matrix/key/v2/query";
	const char *rest = path + sizeof pre - 1;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	int64_t now = now_ms();
	struct kq_want *want = NULL;
	size_t nwant = 0;
	if (m == EVHTTP_REQ_GET && rest[0] == '/' && rest[1]) {
		want = xcalloc(1, sizeof *want);
		nwant = 1;
		const char *seg = rest + 1, *slash = strchr(seg, '/');
		size_t sl = slash ? (size_t)(slash - seg) : strlen(seg);
		if (served_segment(seg, sl, want->server, sizeof want->server) < 0 || !want->server[0]
		    || (slash && (strchr(slash + 1, '/') || !slash[1]
		                  || served_segment(slash + 1, strlen(slash + 1), want->key_id[0], sizeof want->key_id[0]) < 0))) {
			free(want);
			served_error(s, req, 400, "M_INVALID_PARAM", "bad path: /_matrix/key/v2/query/{serverName}[/{keyId}]");
			return;
		}
		int64_t min = now;
		struct evkeyvalq q;
		TAILQ_INIT(&q);
		const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
		if (qs && evhttp_parse_query_str(qs, &q) == 0) {
			const char *v = evhttp_find_header(&q, "minimum_valid_until_ts");
			uint64_t u;
			if (v && sp_digits(v, INT64_MAX, &u) < 0) {
				evhttp_clear_headers(&q);
				free(want);
				served_error(s, req, 400, "M_INVALID_PARAM", "minimum_valid_until_ts must be decimal digits only");
				return;
			}
			if (v) min = (int64_t)u;
		}
		evhttp_clear_headers(&q);
		want->nkeys = slash ? 1 : 0;
		want->min_vu[0] = want->min_any = min;
	} else if (m == EVHTTP_REQ_POST && !rest[0]) {
		struct buf body;
		buf_init(&body);
		struct json_doc d = {0};
		int sk = -1;
		const char *bad = NULL;
		if (read_body(req, &body) < 0 || json_parse(&d, body.data, body.len, 8) < 0 ||
		    d.tok[0].type != JSON_OBJECT || (sk = json_obj_get(&d, 0, "server_keys")) < 0 ||
		    d.tok[sk].type != JSON_OBJECT) {
			bad = "body must be {\"server_keys\":{SERVER:{KEY_ID:{\"minimum_valid_until_ts\":N}}}}";
		} else {
			size_t n = 0;
			for (int k = json_first(&d, sk); k >= 0; k = json_next_kv(&d, sk, k)) n++;
			if (n > KQ_SERVERS_MAX) bad = "too many servers in one query (at most 100)";
			else if (n) want = xcalloc(n, sizeof *want);
			for (int k = json_first(&d, sk); !bad && k >= 0; k = json_next_kv(&d, sk, k)) {
				struct kq_want *w = &want[nwant++];
				int ks = k + 1;
				w->min_any = now;
				if (json_str_copy(&d, k, w->server, sizeof w->server) <= 0 || json_str_has_ctl(&d, k)) {
					bad = "bad server name";
				} else if (d.tok[ks].type != JSON_OBJECT) {
					bad = "each server's value must be an object of key IDs";
				} else {
					for (int i = json_first(&d, ks); !bad && i >= 0; i = json_next_kv(&d, ks, i)) {
						if (w->nkeys == KQ_KEYS_MAX) { bad = "too many key IDs for one server (at most 16)"; break; }
						if (json_str_copy(&d, i, w->key_id[w->nkeys], sizeof w->key_id[0]) <= 0)
							bad = "bad key ID";
						else if (kq_min(&d, i + 1, now, &w->min_vu[w->nkeys]) < 0)
							bad = "minimum_valid_until_ts must be a non-negative integer in an object";
						else
							w->nkeys++;
					}
				}
			}
		}
		json_doc_free(&d);
		buf_free(&body);
		if (bad) {
			free(want);
			served_error(s, req, 400, "M_BAD_JSON", "%s", bad);
			return;
		}
	} else if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST) {
		served_error(s, req, 404, "M_UNRECOGNIZED", "unrecognized request path");
		return;
	} else {
		served_error(s, req, 405, "M_UNRECOGNIZED", "method not allowed here");
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"server_keys\":[");
	MDB_txn *t = NULL;
	int n = 0;
	for (size_t i = 0; i < nwant; i++) {
		if (!strcmp(want[i].server, s->server_name)) {
			n += kq_self(s, &want[i], &b, n == 0);
			continue;
		}
		if (!t) t = store_begin(s->d->st, 1);
		n += kq_other(s, t, &want[i], &b, n == 0);
	}
	if (t) mdb_txn_abort(t);
	buf_adds(&b, "]}");
	log_debug("key query for %zu server(s): %d document(s)", nwant, n);
	free(want);
	served_json(req, 200, "OK", &b);
	buf_free(&b);
}
