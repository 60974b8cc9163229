/* served_xauth.c: X-Matrix request authentication (server-server API,
 * "Request Authentication") for /_matrix/federation/ paths ([served]
 * matrix_auth = xmatrix) and for /_fed/v1/ paths from a configured [peer]'s
 * server name.
 * A request's Authorization header is parsed (matrix/xmatrix.h), its
 * destination (when present) must be our server_name, its origin a valid
 * server name; the origin's key for the header's key ID comes from LMDB
 * server_keys, valid now (valid_until_ts in the future: an expired or
 * old_verify_keys key never verifies a request). A key we do not hold is
 * asked of fetchd (op server_keys, as validated does): one fetch per origin
 * however many requests wait for it; the requests wait at most key_wait.
 * The answer must be a self-signed document whose server_name is the
 * origin (from the origin), or a trusted notary's answer whose documents
 * for the origin are self-signed and countersigned with a key the notary
 * served itself; its keys are stored (a different key under a stored ID is
 * refused: store_key_put's STORE_KEY_CONFLICT) and the waiting requests
 * verified again. A fetch that failed is not repeated for that origin for
 * FAIL_HOLD_MS (fetchd backs off too), nor one that succeeded for
 * REFETCH_MS: requests naming a key ID we do not hold get 401 at once in
 * between (a stream of made-up key IDs costs the origin one fetch per
 * REFETCH_MS, not one per request).
 * An origin the [acl] section denies gets 403 before any key lookup (fetchd
 * never contacts a denied server; a denied name costs no fetch).
 * Every refusal is 401 M_UNAUTHORIZED with one log line saying why (at most
 * LOG_PER_S a second, the rest counted); 403 is M_FORBIDDEN. */
#include "served.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "core/fetchreq.h"
#include "matrix/json.h"
#include "matrix/servername.h"
#include "matrix/xmatrix.h"
#include "store/server_keys.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL_HOLD_MS 10000     /* a failed key fetch is not repeated sooner */
#define REFETCH_MS   10000     /* nor a good one (a key ID not in it: 401) */
#define WAITERS_MAX  4096      /* requests parked for keys, all origins */
#define FETCHES_MAX  1024      /* origins tracked at once */
#define LOG_PER_S    20

enum { KF_IDLE, KF_INFLIGHT, KF_FAILED, KF_FETCHED };

struct kfetch {
	char      origin[XMATRIX_FIELD_MAX];
	int       state;
	uint64_t  req_id;
	long long until;           /* mono ms: INFLIGHT gives up / FAILED holds */
};

struct xwaiter {
	struct evhttp_request *req;
	int kind;
	long long deadline;
	struct xmatrix_auth a;
};

static struct xstate {
	struct kfetch *f; size_t nf, capf;
	struct xwaiter *w; size_t nw, capw;
	struct event *tick;
	long long log_sec; unsigned log_n; uint64_t log_held;
	uint64_t *c_fail, *c_ok, *c_fetches, *c_forbidden, *c_key_conflicts;
	int64_t *g_wait;
} xs;

static const char *method_of(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

/* One log line per refusal, at most LOG_PER_S a second (anyone can send
 * these); the count held back goes with the next line. */
static void refuse(struct served *s, struct evhttp_request *req, int code, const char *origin,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(struct served *s, struct evhttp_request *req, int code, const char *origin,
                   const char *fmt, ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	long long sec = mono_ms() / 1000;
	if (sec != xs.log_sec) { xs.log_sec = sec; xs.log_n = 0; }
	if (xs.log_n++ < LOG_PER_S) {
		char held[64] = "";
		if (xs.log_held) snprintf(held, sizeof held, " (%llu such lines held back before)",
		                          (unsigned long long)xs.log_held);
		xs.log_held = 0;
		const char *uri = evhttp_request_get_uri(req);
		log_info("%d for %s %.200s from %s (origin %.200s): %s%s", code, method_of(req),
		         uri ? uri : "?", served_client(req), origin && *origin ? origin : "-", why, held);
	} else {
		xs.log_held++;
	}
	if (code == 403) {
		(*xs.c_forbidden)++;
		served_error(s, req, 403, "M_FORBIDDEN", "%s", why);
	} else {
		(*xs.c_fail)++;
		(*s->c_unauthorized)++;
		served_error(s, req, 401, "M_UNAUTHORIZED", "%s", why);
	}
}

static struct kfetch *kf_find(const char *origin, int create)
{
	for (size_t i = 0; i < xs.nf; i++)
		if (!strcmp(xs.f[i].origin, origin)) return &xs.f[i];
	if (!create) return NULL;
	long long now = mono_ms();
	if (xs.nf == FETCHES_MAX) {                /* reuse an idle or settled slot */
		for (size_t i = 0; i < xs.nf; i++)
			if (xs.f[i].state != KF_INFLIGHT && (xs.f[i].state == KF_IDLE || now >= xs.f[i].until)) {
				xs.f[i] = xs.f[--xs.nf];
				break;
			}
		if (xs.nf == FETCHES_MAX) return NULL;
	}
	if (xs.nf == xs.capf) {
		xs.capf = xs.capf ? xs.capf * 2 : 16;
		xs.f = xreallocarray(xs.f, xs.capf, sizeof *xs.f);
	}
	struct kfetch *k = &xs.f[xs.nf++];
	memset(k, 0, sizeof *k);
	snprintf(k->origin, sizeof k->origin, "%s", origin);
	return k;
}

/* The origin's key for key_id, valid now: 1 found (pk set), 0 not held. */
static int key_lookup(struct served *s, const char *origin, const char *key_id,
                      const struct keyring *extra, unsigned char pk[32])
{
	if (!strcmp(origin, s->server_name) && !strcmp(key_id, s->key.key_id)) {
		memcpy(pk, s->key.pk, 32);
		return 1;
	}
	int64_t until = 0;
	const struct verify_key *vk = extra ? keyring_find(extra, origin, key_id) : NULL;
	if (vk) {
		memcpy(pk, vk->pk, 32);
		until = vk->valid_until_ts;
	} else {
		MDB_txn *t = store_begin(s->d->st, 1);
		int rc = store_key_get(t, s->d->st, origin, key_id, pk, &until);
		mdb_txn_abort(t);
		if (rc) return 0;
	}
	return until > now_ms();
}

/* Verify a parsed header whose key we may hold; then dispatch or refuse.
 * Returns 0 when the key is not held (nothing answered). */
static int finish(struct served *s, struct evhttp_request *req, int kind,
                  const struct xmatrix_auth *a, const struct keyring *extra)
{
	unsigned char pk[32];
	if (!key_lookup(s, a->origin, a->key, extra, pk)) return 0;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t blen = in ? evbuffer_get_length(in) : 0;
	const char *body = blen ? (const char *)evbuffer_pullup(in, -1) : NULL;
	const char *uri = evhttp_request_get_uri(req);
	int r = xmatrix_verify(a, pk, method_of(req), uri ? uri : "", s->server_name, body,
	                       body ? blen : 0);
	if (r < 0) {
		refuse(s, req, 401, a->origin, "malformed X-Matrix authorization: the signature is not "
		       "base64 or the body is not JSON");
		return 1;
	}
	if (r == 0) {
		refuse(s, req, 401, a->origin, "bad signature (key %s)", a->key);
		return 1;
	}
	(*xs.c_ok)++;
	served_dispatch(s, req);
	return 1;
}

static void tick_arm(struct served *s)
{
	(void)s;
	if (xs.nw && !evtimer_pending(xs.tick, NULL)) {
		struct timeval tv = { 0, 100 * 1000 };
		evtimer_add(xs.tick, &tv);
	}
}

static void waiter_take(size_t i, struct xwaiter *out)
{
	*out = xs.w[i];
	xs.w[i] = xs.w[--xs.nw];
	*xs.g_wait = (int64_t)xs.nw;
}

static void on_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct served *s = arg;
	(void)fd; (void)ev;
	long long now = mono_ms();
	for (size_t i = 0; i < xs.nw;) {
		if (now < xs.w[i].deadline) { i++; continue; }
		struct xwaiter w;
		waiter_take(i, &w);
		refuse(s, w.req, 401, w.a.origin, "unknown key %s: no key document within key_wait",
		       w.a.key);
	}
	for (size_t i = 0; i < xs.nf; i++)          /* a lost answer must not wedge the origin */
		if (xs.f[i].state == KF_INFLIGHT && now >= xs.f[i].until) xs.f[i].state = KF_IDLE;
	tick_arm(s);
}

/* Ask fetchd for origin's key document. 1 in flight, 0 cannot (refuse). */
static int fetch_want(struct served *s, const char *origin, const char *key_id, const char **why)
{
	struct kfetch *k = kf_find(origin, 1);
	long long now = mono_ms();
	if (!k) { *why = "too many origins with key fetches"; return 0; }
	if (k->state == KF_INFLIGHT && now < k->until) return 1;
	if (k->state == KF_FAILED && now < k->until) { *why = "its key document could not be had recently"; return 0; }
	if (k->state == KF_FETCHED && now < k->until) { *why = "not in its key document, fetched moments ago"; return 0; }
	struct buf q;
	buf_init(&q);
	buf_adds(&q, "{\"op\":\"server_keys\",\"event_id\":");
	json_put_string(&q, origin, strlen(origin));
	buf_adds(&q, ",\"servers\":[");
	json_put_string(&q, origin, strlen(origin));
	/* the key ID wanted: what a notary is asked for (fetch_transport.c) */
	buf_addc(&q, ']');
	if (key_id[0]) {
		buf_adds(&q, ",\"events\":[");
		json_put_string(&q, key_id, strlen(key_id));
		buf_addc(&q, ']');
	}
	buf_printf(&q, ",\"timeout_ms\":%lld}", s->key_wait);
	k->req_id = ++s->next_req_id;
	int rc = daemon_emit(s->d, "fetchd", FT_FETCH_REQ, 0, k->req_id, q.data, q.len);
	buf_free(&q);
	if (rc < 0) {
		k->state = KF_IDLE;
		*why = "fetchd is not reachable to fetch its key";
		return 0;
	}
	(*xs.c_fetches)++;
	log_info("asked fetchd for the keys of %s", origin);
	k->state = KF_INFLIGHT;
	k->until = now + s->key_wait + 1000;
	return 1;
}

void xauth_check(struct served *s, struct evhttp_request *req, int kind)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!h) {
		refuse(s, req, 401, NULL, "no X-Matrix Authorization header");
		return;
	}
	struct xwaiter w = { .req = req, .kind = kind };
	char err[200];
	if (xmatrix_parse(h, strlen(h), &w.a, err, sizeof err) < 0) {
		refuse(s, req, 401, NULL, "malformed X-Matrix Authorization header: %s", err);
		return;
	}
	if (w.a.has_destination && strcmp(w.a.destination, s->server_name)) {
		refuse(s, req, 401, w.a.origin, "wrong destination %.200s (we are %s)", w.a.destination,
		       s->server_name);
		return;
	}
	if (!server_name_valid(w.a.origin, strlen(w.a.origin))) {
		refuse(s, req, 401, NULL, "origin is not a valid server name");
		return;
	}
	/* Before any key lookup: fetchd never contacts a denied server, and a
	 * denied name must not cost a key fetch. */
	if (kind == XA_MATRIX && !cfg_acl_allows(&s->d->cfg, w.a.origin)) {
		refuse(s, req, 403, w.a.origin, "server %s is denied by the [acl] section", w.a.origin);
		return;
	}
	if (kind == XA_FED) {
		int peer = 0;
		for (size_t i = 0; i < s->d->cfg.npeers; i++)
			if (!strcmp(s->d->cfg.peers[i].server_name, w.a.origin)) peer = 1;
		if (!peer) {
			refuse(s, req, 401, w.a.origin, "origin is not the server_name of a configured [peer]");
			return;
		}
	}
	if (finish(s, req, kind, &w.a, NULL)) return;
	const char *why = "";
	if (xs.nw >= WAITERS_MAX) {
		refuse(s, req, 401, w.a.origin, "unknown key %s: too many requests already wait for keys",
		       w.a.key);
		return;
	}
	if (!fetch_want(s, w.a.origin, w.a.key, &why)) {
		refuse(s, req, 401, w.a.origin, "unknown key %s: %s", w.a.key, why);
		return;
	}
	w.deadline = mono_ms() + s->key_wait;
	if (xs.nw == xs.capw) {
		xs.capw = xs.capw ? xs.capw * 2 : 64;
		xs.w = xreallocarray(xs.w, xs.capw, sizeof *xs.w);
	}
	xs.w[xs.nw++] = w;
	*xs.g_wait = (int64_t)xs.nw;
	tick_arm(s);
}

/* Store the keys of origin from a verified answer (kr, from body); conflicts
 * are dropped from kr. The signed document goes beside them (what served
 * answers as a notary) unless it held a refused key. Returns the number
 * stored. */
static int store_keys(struct served *s, const char *origin, struct keyring *kr,
                      const char *body, size_t body_len)
{
	int rc, n, conflicts;
	do {
		MDB_txn *t = store_begin(s->d->st, 0);
		rc = 0;
		n = 0;
		conflicts = 0;
		for (size_t i = 0; i < kr->n && !rc; i++) {
			struct verify_key *vk = &kr->k[i];
			rc = store_key_put(t, s->d->st, vk->server, vk->key_id, vk->pk, vk->valid_until_ts);
			if (rc == STORE_KEY_CONFLICT) {
				log_warnx("keys of %s: %s is not the key stored under that ID; refused", origin,
				          vk->key_id);
				(*xs.c_key_conflicts)++;
				kr->k[i] = kr->k[--kr->n];
				i--;
				rc = 0;
				conflicts++;
			} else if (!rc) {
				n++;
			}
		}
		if (!rc && !conflicts)
			rc = store_key_doc_put_answer(t, s->d->st, origin, body, body_len);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
	} while (rc && store_write_failed(s->d->st, rc));
	if (rc) log_warnx("could not store the keys of %s: %s (used for the waiting requests only)",
	                  origin, mdb_strerror(rc));
	return rc ? 0 : n;
}

/* A notary's key counts if it is stored, current (not an old key) and usable
 * now: fetched from the notary itself (fetchd asks a notary for its own keys
 * only of the notary). */
static int notary_key(void *arg, const char *server, const char *key_id, unsigned char pk[32])
{
	struct served *s = arg;
	struct key_rec r;
	MDB_txn *t = store_begin(s->d->st, 1);
	int rc = store_key_get_rec(t, s->d->st, server, key_id, &r);
	mdb_txn_abort(t);
	if (rc || (r.flags & KEY_OLD) || store_key_valid_until(&r) < now_ms()) return -1;
	memcpy(pk, r.pk, 32);
	return 0;
}

int xauth_on_frame(struct served *s, struct frame *f)
{
	struct kfetch *k = NULL;
	for (size_t i = 0; i < xs.nf; i++)
		if (xs.f[i].state == KF_INFLIGHT && xs.f[i].req_id == f->id) k = &xs.f[i];
	if (!k) return 0;
	char origin[XMATRIX_FIELD_MAX];
	snprintf(origin, sizeof origin, "%s", k->origin);
	struct fetch_result r;
	struct keyring kr;
	keyring_init(&kr);
	char why[600] = "";
	const char *body = NULL;     /* into f */
	size_t body_len = 0;
	if (fetchres_parse(f, &r) < 0) {
		snprintf(why, sizeof why, "malformed fetch result from fetchd");
	} else {
		if (!r.ok) {
			snprintf(why, sizeof why, "fetchd could not get it (%s)", r.error[0] ? r.error : "?");
		} else {
			/* Who answered decides what counts (issue 15 "Where keys
			 * may come from"): the origin itself, a document naming it,
			 * self-signed; a trusted notary, {"server_keys":[...]} whose
			 * documents naming the origin are self-signed and signed by
			 * the notary with a key the notary served itself. */
			char err[300];
			int added, other = 0;
			const char *from = r.server;
			if (!strcmp(from, origin)) {
				added = keyring_add_server_doc_for(&kr, r.body, r.body_len, origin, err, sizeof err);
			} else if (from[0] && cfg_list_has(&s->d->cfg, "node", "trusted_key_servers", from)
			           && !cfg_list_has(&s->d->cfg, "node", "trusted_key_servers", origin)) {
				added = keyring_add_notary_answer(&kr, r.body, r.body_len, origin, from, notary_key, s,
				                                  err, sizeof err);
			} else {
				added = -1;
				snprintf(err, sizeof err, "answered by %.100s, neither %.100s nor a trusted notary",
				         from[0] ? from : "(nobody)", origin);
			}
			for (size_t i = 0; i < kr.n; i++)
				if (strcmp(kr.k[i].server, origin)) other = 1;
			if (added < 0)
				snprintf(why, sizeof why, "bad key document: %s", err);
			else if (other || !kr.n)
				snprintf(why, sizeof why, "the key document is not %s's own (names another server)",
				         origin);
			body = r.body;
			body_len = r.body_len;
		}
		fetchres_free(&r);
	}
	if (why[0]) {
		keyring_free(&kr);
		keyring_init(&kr);
		log_warnx("keys of %s refused: %s", origin, why);
		k->state = KF_FAILED;
		k->until = mono_ms() + FAIL_HOLD_MS;
	} else {
		int n = store_keys(s, origin, &kr, body, body_len);
		log_info("stored %d key(s) of %s", n, origin);
		k->state = KF_FETCHED;
		k->until = mono_ms() + REFETCH_MS;
	}
	/* Settle every request that waited for this origin. */
	for (size_t i = 0; i < xs.nw;) {
		if (strcmp(xs.w[i].a.origin, origin)) { i++; continue; }
		struct xwaiter w;
		waiter_take(i, &w);
		if (!finish(s, w.req, w.kind, &w.a, &kr))
			refuse(s, w.req, 401, w.a.origin, "unknown key %s%s%s", w.a.key, why[0] ? ": " : "",
			       why[0] ? why : " (not in the origin's key document)");
	}
	keyring_free(&kr);
	return 1;
}

void xauth_apply(struct served *s)
{
	struct config *cfg = &s->d->cfg;
	s->matrix_auth = strcmp(cfg_str(cfg, "served", "matrix_auth"), "open") != 0;
	s->key_wait = cfg_ms(cfg, "served", "key_wait");
	s->fed_xmatrix = 0;
	for (size_t i = 0; i < cfg->npeers; i++)
		if (cfg->peers[i].server_name[0]) s->fed_xmatrix = 1;
}

void xauth_init(struct served *s)
{
	memset(&xs, 0, sizeof xs);
	xs.c_fail = daemon_counter(s->d, "xmatrix_refused");
	xs.c_ok = daemon_counter(s->d, "xmatrix_ok");
	xs.c_fetches = daemon_counter(s->d, "xmatrix_key_fetches");
	xs.c_forbidden = daemon_counter(s->d, "acl_forbidden");
	xs.c_key_conflicts = daemon_counter(s->d, "key_conflicts");
	xs.g_wait = daemon_gauge(s->d, "xmatrix_key_waiters");
	xs.tick = evtimer_new(s->d->base, on_tick, s);
	if (!xs.tick) fatalx("evtimer_new failed");
}

void xauth_fini(struct served *s)
{
	while (xs.nw) {
		struct xwaiter w;
		waiter_take(0, &w);
		refuse(s, w.req, 401, w.a.origin, "shutting down");
	}
	if (xs.tick) event_free(xs.tick);
	free(xs.w);
	free(xs.f);
	memset(&xs, 0, sizeof xs);
}
