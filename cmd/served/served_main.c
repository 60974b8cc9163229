/* served_main.c: served's daemon ops, the evhttp server, routing, who may
 * ask what, bearer auth (constant time) and JSON errors. Always open:
 * /healthz, /_matrix/key/v2/server, /_matrix/key/v2/query (and below it),
 * /_matrix/federation/v1/version. Other /_matrix/federation/ paths: X-Matrix
 * (served_xauth.c) unless [served] matrix_auth = open (then the bearer key,
 * as everything else). /_fed/v1/ paths: the bearer key, or X-Matrix from a
 * configured [peer]'s server_name. Everything the network sends is checked
 * here before a handler sees it; nothing a client sends ends the process. */
#include "served.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include <errno.h>
#include <sodium.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http_struct.h>
#include <time.h>

static struct served served;

const char *const node_mode_names[] = { "sync", "publish", "subscribe" };

/* Hand req's answer (its output buffer) to evhttp, and on a plain TCP
 * connection write it at once: evhttp would only ask for the socket's
 * writability and write on the next loop turn (one more epoll_wait, two
 * more epoll changes per request). Whatever the socket does not take now
 * (a full send buffer, an error) stays in the bufferevent's output, which
 * goes on exactly as before: it writes the rest when the socket is
 * writable and reports errors. When all of it went out, write interest is
 * dropped and evhttp's "written" callback is run as the bufferevent would
 * have run it, deferred to the loop (never inside this handler): the
 * request completes, the connection waits for its next one or closes. */
void served_send(struct evhttp_request *req, int code, const char *reason)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evhttp_send_reply(req, code, reason, NULL);
	if (!bev || bufferevent_openssl_get_ssl(bev) || !(bufferevent_get_enabled(bev) & EV_WRITE)) return;
	evutil_socket_t fd = bufferevent_getfd(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	if (fd < 0 || !evbuffer_get_length(out)) return;
	/* A socket bufferevent keeps its output's drain side frozen except
	 * while it writes itself. */
	evbuffer_unfreeze(out, 1);
	int n = evbuffer_write(out, fd);
	evbuffer_freeze(out, 1);
	if (n <= 0 || evbuffer_get_length(out)) return;
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* The headers evhttp adds to an answer that lacks them (Date, and
 * Content-Length when the answer has a body), added here first: the same
 * bytes, without formatting the date for every request (it changes once a
 * second) or printing the length through snprintf. Only for HTTP/1.1;
 * evhttp does the rest (HTTP/1.0 keep-alive) as before. */
static void answer_headers(struct evhttp_request *req, int code, size_t len)
{
	static time_t date_at;
	static char date[64];
	if (req->major != 1 || req->minor < 1) return;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	time_t now = time(NULL);
	if (now != date_at || !date[0]) {
		struct tm tm;
		if (!gmtime_r(&now, &tm) || evutil_date_rfc1123(date, sizeof date, &tm) <= 0) return;
		date_at = now;
	}
	evhttp_add_header(h, "Date", date);
	if (code == 204 || code == 304 || (code >= 100 && code < 200) ||
	    evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		return;
	char n[24];
	evhttp_add_header(h, "Content-Length", served_u64(n, len));
}

char *served_u64(char out[24], uint64_t v)
{
	char *p = out + 23;
	*p = 0;
	do *--p = (char)('0' + v % 10); while (v /= 10);
	return p;
}

int served_json_send(struct evhttp_request *req, int code, const char *reason)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	if (evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json") < 0) {
		log_warnx("no memory for an HTTP answer");
		evbuffer_drain(out, evbuffer_get_length(out));    /* the error page only */
		evhttp_send_error(req, 500, "out of memory");
		return -1;
	}
	answer_headers(req, code, evbuffer_get_length(out));
	served_send(req, code, reason);
	return 0;
}

void served_json(struct evhttp_request *req, int code, const char *reason, struct buf *body)
{
	if (evbuffer_add(evhttp_request_get_output_buffer(req), body->data, body->len) < 0) {
		log_warnx("no memory for an HTTP answer (%zu bytes)", body->len);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	served_json_send(req, code, reason);
}

void served_error(struct served *s, struct evhttp_request *req, int code, const char *errcode,
                  const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"errcode\":");
	json_put_string(&b, errcode, strlen(errcode));
	buf_adds(&b, ",\"error\":");
	json_put_string(&b, msg, strlen(msg));
	buf_addc(&b, '}');
	if (code != 404) (*s->c_errors)++;
	served_json(req, code, NULL, &b);
	buf_free(&b);
}

int served_segment(const char *seg, size_t n, char *out, size_t cap)
{
	return sp_segment(seg, n, out, cap);
}

const char *served_client(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port;
	if (c) evhttp_connection_get_peer(c, &addr, &port);
	return addr && *addr ? addr : "?";
}

const char *served_query(struct evhttp_request *req, struct evkeyvalq *q, const char *key)
{
	(void)req;
	return evhttp_find_header(q, key);
}

/* Constant-time bearer check: hash both sides to fixed length first, so
 * neither the key's length nor its bytes leak through timing. */
int served_auth_ok(struct served *s, struct evhttp_request *req)
{
	if (!s->auth) return 1;
	const char *h = sp_bearer(evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"));
	if (!h) return 0;
	unsigned char got[32];
	crypto_generichash(got, sizeof got, (const unsigned char *)h, strlen(h), NULL, 0);
	return sodium_memcmp(got, s->shared_hash, sizeof got) == 0;
}

static int is_proxied(struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Fed-Proxied");
	return h && strcmp(h, "0") && *h;
}

static const char *method_name(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	default: return "OTHER";
	}
}

static void deny_bearer(struct served *s, struct evhttp_request *req)
{
	/* Anyone can send these: one log line a minute at most. */
	static long long last;
	static uint64_t held;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : "?";
	(*s->c_unauthorized)++;
	if (last && mono_ms() - last < 60000) held++;
	else {
		log_info("401 for %s %s: missing or wrong bearer key (%llu more since the last report)",
		         method_name(m), path, (unsigned long long)held);
		last = mono_ms();
		held = 0;
	}
	served_error(s, req, 401, "M_UNAUTHORIZED", "missing or wrong bearer key");
}

void served_not_publishing(struct served *s, struct evhttp_request *req)
{
	/* Peers retry (backing off): one log line a minute at most. */
	static long long last;
	static uint64_t held;
	(*s->c_mode_forbidden)++;
	if (last && mono_ms() - last < 60000) held++;
	else {
		const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
		const char *path = u ? evhttp_uri_get_path(u) : "?";
		log_info("403 for %s %s from %s: [node] mode = subscribe, this node does not publish "
		         "(%llu more since the last report)", method_name(evhttp_request_get_command(req)),
		         path, served_client(req), (unsigned long long)held);
		last = mono_ms();
		held = 0;
	}
	served_error(s, req, 403, "M_FORBIDDEN", "this node does not publish");
}

/* The Matrix federation reads that hand out events or state (GET
 * /_matrix/federation/v1/<name>/..., POST get_missing_events): refused in
 * subscribe mode, "state" included though served does not implement it
 * (a subscribe node answers 403 for every event read, not 404 for some). */
static int event_read(const char *seg, size_t n)
{
	static const char *const names[] = { "event", "event_auth", "state", "state_ids",
	                                      "get_missing_events", "backfill" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (n == strlen(names[i]) && !memcmp(seg, names[i], n)) return 1;
	return 0;
}

static const char fed_prefix[] = "/_matrix/federation/";

/* Paths anyone may ask without any authorization. */
static int always_open(const char *path)
{
	return !strcmp(path, "/healthz") || !strcmp(path, "/_matrix/key/v2/server") ||
	       !strncmp(path, "/_matrix/key/v2/query", 21) ||
	       !strcmp(path, "/_matrix/federation/v1/version") || !strcmp(path, "/.well-known/matrix/server");
}

static int has_xmatrix(struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	return h && !strncasecmp(h, "X-Matrix", 8) && (h[8] == ' ' || h[8] == '\t');
}

int served_auth_class(struct served *s, const char *path)
{
	if (always_open(path)) return AUTH_OPEN;
	if (s->matrix_auth && !strncmp(path, fed_prefix, sizeof fed_prefix - 1)) return AUTH_XMATRIX;
	if (s->fed_xmatrix && !strncmp(path, "/_fed/v1/", 9)) return AUTH_BEARER_OR_PEER;
	return AUTH_BEARER;
}

int served_early_ok(struct served *s, struct evhttp_request *req, const char *path)
{
	switch (served_auth_class(s, path)) {
	case AUTH_OPEN: return 1;
	case AUTH_XMATRIX: return has_xmatrix(req);
	case AUTH_BEARER_OR_PEER: return (s->auth && served_auth_ok(s, req)) || has_xmatrix(req);
	default: return served_auth_ok(s, req);
	}
}

static void route(struct evhttp_request *req, void *arg)
{
	struct served *s = arg;
	(*s->c_requests)++;
	gate_request(s, req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	if (!path || !*path) { served_error(s, req, 400, "M_UNRECOGNIZED", "bad request URI"); return; }
	switch (served_auth_class(s, path)) {
	case AUTH_OPEN:
		break;
	case AUTH_XMATRIX:
		xauth_check(s, req, XA_MATRIX);
		return;
	case AUTH_BEARER_OR_PEER:
		/* A [peer] names its server: no longer open without a key. */
		if (s->auth && served_auth_ok(s, req)) break;
		if (has_xmatrix(req)) { xauth_check(s, req, XA_FED); return; }
		deny_bearer(s, req);
		return;
	default:
		if (!served_auth_ok(s, req)) { deny_bearer(s, req); return; }
	}
	served_dispatch(s, req);
}

static void fed_version(struct served *s, struct evhttp_request *req)
{
	(void)s;
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"server\":{\"name\":\"fedpipe\",\"version\":");
	json_put_string(&b, FP_VERSION, strlen(FP_VERSION));
	buf_adds(&b, "}}");
	served_json(req, 200, "OK", &b);
	buf_free(&b);
}

void served_dispatch(struct served *s, struct evhttp_request *req)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(u);
	if (!strcmp(path, "/healthz")) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) goto bad_method;
		healthz_handle(s, req);
		return;
	}
	int proxied = is_proxied(req);
	if (proxied) {
		(*s->c_proxied)++;
		log_info("proxied request %s %s", method_name(m), path);
	} else {
		log_debug("%s %s", method_name(m), path);
	}
	const char *seg[6];
	size_t sl[6];
	char a[SERVED_ID_MAX], b[SERVED_ID_MAX];
	static const char fed[] = "/_matrix/federation/v1/";
	if (!strcmp(path, "/metrics")) {
		if (m != EVHTTP_REQ_GET) goto bad_method;
		metrics_handle(s, req);
	} else if (!strcmp(path, "/_fed/v1/identity")) {
		if (m != EVHTTP_REQ_GET) goto bad_method;
		fed_identity(s, req);
	} else if (!strcmp(path, "/_fed/v1/events")) {
		if (s->mode == NODE_SUBSCRIBE) { served_not_publishing(s, req); return; }
		if (m != EVHTTP_REQ_GET) goto bad_method;
		fed_events(s, req);
	} else if (!strcmp(path, "/_matrix/key/v2/server")) {
		if (m != EVHTTP_REQ_GET) goto bad_method;
		mx_server_key(s, req);
	} else if (!strncmp(path, "/_matrix/key/v2/query", 21) && (!path[21] || path[21] == '/')) {
		mx_key_query(s, req, path);
	} else if (!strcmp(path, "/_matrix/federation/v1/version")) {
		if (m != EVHTTP_REQ_GET) goto bad_method;
		fed_version(s, req);
	} else if (!strcmp(path, "/.well-known/matrix/server")) {
		if (m != EVHTTP_REQ_GET) goto bad_method;
		probe_well_known(s, req);
	} else if (!strncmp(path, fed, sizeof fed - 1)) {
		int n = sp_split(path + sizeof fed - 1, seg, sl, 6);
		if (n < 2) goto not_found;
		if (s->mode == NODE_SUBSCRIBE && event_read(seg[0], sl[0])) { served_not_publishing(s, req); return; }
#define IS(i, w) (sl[i] == strlen(w) && !memcmp(seg[i], w, sl[i]))
		int want_post = IS(0, "get_missing_events");
		if (want_post ? m != EVHTTP_REQ_POST : m != EVHTTP_REQ_GET) goto bad_method;
		if (served_segment(seg[1], sl[1], a, sizeof a) < 0) goto bad_id;
		if (IS(0, "event") && n == 2) mx_event(s, req, a, proxied);
		else if (IS(0, "event_auth") && n == 3) {
			if (served_segment(seg[2], sl[2], b, sizeof b) < 0) goto bad_id;
			mx_event_auth(s, req, a, b);
		} else if (IS(0, "state_ids") && n == 2) mx_state_ids(s, req, a);
		else if (want_post && n == 2) mx_get_missing(s, req, a);
		else if (IS(0, "backfill") && n == 2) mx_backfill(s, req, a);
		else goto not_found;
#undef IS
	} else {
		goto not_found;
	}
	return;
not_found:
	served_error(s, req, 404, "M_UNRECOGNIZED", "unrecognized request path");
	return;
bad_method:
	served_error(s, req, 405, "M_UNRECOGNIZED", "method %s not allowed here", method_name(m));
	return;
bad_id:
	served_error(s, req, 400, "M_INVALID_PARAM", "bad identifier in path");
}

/* The evhttp limits, from d->cfg (start and reload: new connections get them). */
static void http_apply(struct served *s)
{
	struct config *cfg = &s->d->cfg;
	evhttp_set_max_headers_size(s->http, (ev_ssize_t)cfg_size(cfg, "served", "max_header_size"));
	evhttp_set_max_body_size(s->http, (ev_ssize_t)cfg_size(cfg, "served", "max_body_size"));
	long long to = cfg_ms(cfg, "served", "timeout");
	struct timeval tv = { to / 1000, (to % 1000) * 1000 };
	evhttp_set_timeout_tv(s->http, &tv);
}

/* Everything served keeps from the configuration, read anew: at start and
 * after SIGHUP. Values are copied; nothing points into d->cfg afterwards. */
static void served_apply(struct served *s)
{
	struct config *cfg = &s->d->cfg;
	const char *mode = cfg_str(cfg, "node", "mode");
	enum node_mode was = s->mode;
	s->mode = !strcmp(mode, "publish") ? NODE_PUBLISH : !strcmp(mode, "subscribe") ? NODE_SUBSCRIBE : NODE_SYNC;
	if (s->http && was != s->mode) {
		log_notice("reload: [node] mode %s -> %s%s", node_mode_names[was], node_mode_names[s->mode],
		           s->mode == NODE_SUBSCRIBE ? ": the stream and the event reads answer 403, no recovery"
		           : was == NODE_SUBSCRIBE ? ": serving the stream and the event reads again" : "");
		if (s->mode == NODE_SUBSCRIBE) fed_mode_subscribe(s);
	}
	const char *sk = cfg_str(cfg, "node", "shared_key");
	s->auth = *sk != 0;
	if (s->auth)
		crypto_generichash(s->shared_hash, sizeof s->shared_hash, (const unsigned char *)sk,
		                   strlen(sk), NULL, 0);
	else
		sodium_memzero(s->shared_hash, sizeof s->shared_hash);
	s->events_limit = (int)cfg_int(cfg, "served", "events_limit");
	s->events_max_bytes = (size_t)cfg_size(cfg, "served", "events_max_bytes");
	s->longpoll_max = cfg_ms(cfg, "served", "longpoll_max");
	s->longpoll_tick = cfg_ms(cfg, "served", "longpoll_tick");
	s->stats_timeout = cfg_ms(cfg, "served", "stats_timeout");
	int mw = (int)cfg_int(cfg, "served", "longpoll_waiters");
	if (s->waiters && mw > s->max_waiters) {     /* grow; a smaller cap applies to new waiters */
		s->waiters = xreallocarray(s->waiters, (size_t)mw, fed_waiter_size());
		s->waiters_cap = mw;
	}
	s->max_waiters = mw;
	xauth_apply(s);
}

/* SIGHUP: the signing key and <signing_key>.old are read again (after
 * `fedctl keygen --rotate`): a good new key signs every key document from
 * now on (built per request) and is the one /_matrix/key/v2/server
 * publishes in verify_keys, the rotated-out ones in old_verify_keys. An
 * unreadable or malformed key file keeps the old key and the old list, said
 * in one line; an unreadable .old with a good new key: the new key, the
 * previous list, and the key just replaced added to it (expired now), so a
 * key that signed is never dropped from the document. */
static void served_key_reload(struct served *s)
{
	const char *path = cfg_str(&s->d->cfg, "node", "signing_key");
	char err[320];
	struct old_key was;
	snprintf(was.key_id, sizeof was.key_id, "%s", s->key.key_id);
	memcpy(was.pk, s->key.pk, sizeof was.pk);
	was.expired_ts = now_ms();
	int r = signing_key_reload(&s->key, path, err, sizeof err);
	if (r < 0) {
		log_warnx("reload: [node] signing_key not reloaded, still signing with %s: %s", was.key_id, err);
		return;
	}
	struct old_key *old = NULL;
	size_t nold = 0;
	if (signing_key_old_load(path, &old, &nold, err, sizeof err) == 0) {
		free(s->old_keys);
		s->old_keys = old;
		s->nold_keys = nold;
	} else {
		log_warnx("reload: the rotated-out keys not reread (%s): publishing the previous list%s%s",
		          err, r > 0 ? " and " : "", r > 0 ? was.key_id : "");
	}
	if (r > 0) {
		int listed = 0;
		for (size_t i = 0; i < s->nold_keys && !listed; i++)
			listed = !strcmp(s->old_keys[i].key_id, was.key_id);
		if (!listed) {
			s->old_keys = xreallocarray(s->old_keys, s->nold_keys + 1, sizeof *s->old_keys);
			s->old_keys[s->nold_keys++] = was;
		}
		log_notice("reload: [node] signing_key %s: now signing with %s (was %s, published as old)",
		           path, s->key.key_id, was.key_id);
	}
}

static void served_on_reload(struct daemon *d, const struct config *old)
{
	struct served *s = d->priv;
	(void)old;
	served_key_reload(s);
	if (strcmp(s->server_name, cfg_str(&d->cfg, "node", "server_name")))
		log_warnx("[node] server_name changed: takes effect at restart");
	served_apply(s);
	recover_apply(s);
	if (s->http) { http_apply(s); gate_apply(s); tls_reload(s); }
	log_info("configuration reloaded: mode %s, events_limit %d, max_connections %d (per address %d), "
	         "upstreams %s, matrix_auth %s", node_mode_names[s->mode], s->events_limit, s->max_conns,
	         s->max_conns_ip, cfg_str(&d->cfg, "served", "upstreams"), s->matrix_auth ? "xmatrix" : "open");
}

static int served_init(struct daemon *d)
{
	struct served *s = &served;
	d->priv = s;
	s->d = d;
	unsetenv("EVENT_EPOLL_USE_CHANGELIST");    /* the loop is built (main) */
	if (sodium_init() < 0) fatalx("sodium_init failed");
	snprintf(s->server_name, sizeof s->server_name, "%s", cfg_str(&d->cfg, "node", "server_name"));
	mx_init(s);
	char err[256];
	if (signing_key_load(&s->key, cfg_str(&d->cfg, "node", "signing_key"), err, sizeof err) < 0) {
		log_err("cannot load signing key: %s", err);
		return EXIT_CONFIG;
	}
	if (signing_key_old_load(cfg_str(&d->cfg, "node", "signing_key"), &s->old_keys, &s->nold_keys,
	                         err, sizeof err) < 0) {
		log_err("cannot read the rotated-out keys: %s", err);
		return EXIT_CONFIG;
	}
	if (store_node_id(d->st, s->node_id)) { log_err("cannot read or make the node ID"); return EXIT_TEMP; }
#define C(f, n) s->f = daemon_counter(d, n)
	C(c_requests, "http_requests"); C(c_errors, "http_errors"); C(c_unauthorized, "http_unauthorized");
	C(c_proxied, "proxied_requests"); C(c_event_hits, "event_hits"); C(c_event_misses, "event_misses");
	C(c_rec_queued, "recover_queued"); C(c_rec_dropped, "recover_dropped");
	C(c_rec_dedup_local, "recover_dedup_local"); C(c_rec_dedup_claim, "recover_dedup_claim");
	C(c_rec_claim_errors, "recover_claim_errors"); C(c_rec_sent, "recover_sent");
	C(c_rec_ok, "recover_ok"); C(c_rec_failed, "recover_failed"); C(c_rec_pdus, "recover_pdus");
	C(c_rec_expired, "recover_expired"); C(c_longpolls, "longpolls");
	C(c_events_served, "events_served");
	C(c_conn_refused, "conn_refused"); C(c_conn_refused_ip, "conn_refused_per_ip");
	C(c_accept_errors, "accept_errors"); C(c_header_timeouts, "header_timeouts");
	C(c_body_timeouts, "body_timeouts"); C(c_early_refused, "unauthorized_before_body");
	C(c_rec_refused_id, "recover_refused_id"); C(c_rec_client_capped, "recover_client_capped");
	C(c_claims_swept, "claims_swept"); C(c_mode_forbidden, "mode_forbidden");
#undef C
	s->g_conns = daemon_gauge(d, "http_connections");
	s->g_waiters = daemon_gauge(d, "longpoll_waiters");
	s->g_rq = daemon_gauge(d, "recover_queue");
	s->g_inflight = daemon_gauge(d, "recover_inflight");

	served_apply(s);
	if (d->stdio) {
		/* --stdio: no HTTP; served is an endpoint, not a filter. Recovery
		 * results arriving as frames are still handled. */
		recover_init(s);
		return 0;
	}
	const char *listen = cfg_str(&d->cfg, "node", "listen");
	s->http = evhttp_new(d->base);
	if (!s->http) fatalx("evhttp_new failed");
	http_apply(s);
	/* Every method reaches route() so a wrong one gets our JSON 405. */
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	                           EVHTTP_REQ_PATCH);
	evhttp_set_gencb(s->http, route, s);
	int rc = tls_init(s);
	if (rc) return rc;
	rc = gate_init(s, listen);
	if (rc) return rc;
	fed_init(s);
	recover_init(s);
	xauth_init(s);
	log_info("serving %s%s as %s (node %s, mode %s)%s; /_matrix/federation/* %s", s->ssl_ctx ? "https://" : "http://",
	         listen, s->server_name, s->node_id, node_mode_names[s->mode], s->auth ? ", bearer key required" : "",
	         s->matrix_auth ? "needs X-Matrix" : "open (matrix_auth = open)");
	if (s->mode == NODE_SUBSCRIBE)
		log_notice("[node] mode = subscribe: /_fed/v1/events and the Matrix event reads answer 403 "
		           "(this node does not publish); no cache-warm recovery");
	return 0;
}

static void served_on_frame(struct daemon *d, struct conn *c, struct frame *f)
{
	struct served *s = d->priv;
	switch (f->type) {
	case FT_FETCH_RESULT:
		if (!xauth_on_frame(s, f)) recover_on_frame(s, f);
		break;
	case FT_WAKEUP:
		break;   /* long-pollers are woken by the stream poll */
	default:
		log_debug("served: ignoring %s frame from %s", frame_type_name(f->type), conn_peer(c));
	}
}

static void served_fini(struct daemon *d)
{
	struct served *s = d->priv;
	if (!s) return;
	fed_fini(s);
	mx_fini(s);
	if (s->http) xauth_fini(s);
	recover_fini(s);
	if (s->http) {
		gate_fini(s);
		evhttp_free(s->http);
		gate_fini_after();
		tls_fini(s);
	}
	s->http = NULL;
	sodium_memzero(&s->key, sizeof s->key);
	free(s->old_keys);
	s->old_keys = NULL;
}

/* The stats frame's own member: the mode in force (fedctl status). */
static void served_stats(struct daemon *d, struct buf *b)
{
	struct served *s = d->priv;
	if (s) buf_printf(b, ",\"mode\":\"%s\"", node_mode_names[s->mode]);
}

static const struct daemon_ops ops = {
	.name = "served",
	.stats = served_stats,
	.summary = "the node's federation HTTP endpoint (Matrix reads, /_fed/v1 sync, metrics)",
	.store = &store_for_daemon,
	.init = served_init,
	.on_frame = served_on_frame,
	.on_reload = served_on_reload,
	.fini = served_fini,
};

/* served's event loop batches its epoll changes (libevent's changelist,
 * asked for through the environment: daemon_main builds the loop and
 * honours it; cleared again in served_init). evhttp turns a connection's
 * read and write interest off and on several times per request; applied
 * once per loop turn that is one epoll_ctl per request instead of four.
 * libevent's documented caveat is descriptors shared through dup(), which
 * served does not make (it retries a change on a closed-and-reused
 * descriptor as ADD). */
int main(int argc, char **argv)
{
	setenv("EVENT_EPOLL_USE_CHANGELIST", "1", 1);
	return daemon_main(argc, argv, &ops);
}
