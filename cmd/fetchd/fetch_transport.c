/* fetch_transport.c: the federation transport. libcurl's multi interface in
 * its socket-action form, driven by the daemon's libevent loop through
 * core/curlev (curl tells it which sockets and timeouts to watch; the loop
 * tells curl what fired; a finished transfer comes back to transfer_done).
 * Also the per-server throttle (at most N concurrent and M per minute per
 * server; waiting attempts are served in arrival order, one per fetch, so
 * fetches take turns, recoveries after all others), the bounded server
 * table, the address policy for servers outside the configuration, and the
 * outgoing auth/TLS settings per server.
 *
 * A server outside the configuration ([server NAME] or a [peer] endpoint)
 * and not behind a proxy is reached by its name (core/resolve.h): before
 * its first attempt its resolution is read from LMDB server_resolution,
 * or, missing or expired, looked up (one lookup per server; its attempts
 * wait in its queue meanwhile) and stored. Requests go to the current
 * target: URL https://HOST_HEADER + path (so Host, SNI, certificate name
 * and the X-Matrix uri are the target's), the connection to the target's
 * addresses (CONNECT_TO, RESOLVE), each judged by the address policy at
 * connect time. A connect failure moves the server to its next target for
 * the next attempt; an expired resolution is looked up again before the
 * next attempt; none (no target, or a lookup error) fails every waiting
 * attempt as "resolve_failed: why", counted like any failure. Behind a
 * proxy the proxy resolves https://NAME:8448 as before. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <strings.h>
#include <unistd.h>
#include <event2/event_struct.h>
#include "fetch.h"
#include "matrix/json.h"
#include "matrix/xmatrix.h"
#include "core/log.h"
#include "core/curlev.h"
#include "core/xalloc.h"
#include "store/resolution.h"

static struct fetchd *fetchd;   /* the program state (fetch_main.c), for libcurl callbacks */

/* ---- servers ----------------------------------------------------------- */

static void strip_slash(char *s)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == '/') s[--n] = 0;
}

static void server_wake_cb(evutil_socket_t fd, short ev, void *arg);
static void server_rfail_cb(evutil_socket_t fd, short ev, void *arg);
static int  server_ready(struct fetchd *fd, struct server *s);
static void server_connect_failed(struct server *s, struct attempt *a);
static const struct timeval tv_zero;

static char *env_dup(const char *a, const char *b)
{
	const char *v = getenv(a);
	if (!v && b) v = getenv(b);
	return xstrdup(v ? v : "");
}

/* The proxy for a server, by libcurl's own rules (<scheme>_proxy, then
 * HTTPS_PROXY for https only, then all_proxy/ALL_PROXY; no_proxy/NO_PROXY),
 * read once here: left to curl, every transfer costs five getenv calls.
 * Given CURLOPT_PROXY and CURLOPT_NOPROXY, curl reads no environment. */
static void server_proxy(struct server *s)
{
	int tls = strncmp(s->base, "https://", 8) == 0;
	char *p = tls ? env_dup("https_proxy", "HTTPS_PROXY") : env_dup("http_proxy", NULL);
	if (!*p) { free(p); p = env_dup("all_proxy", "ALL_PROXY"); }
	s->proxy = p;
	s->noproxy = env_dup("no_proxy", "NO_PROXY");
}

int transport_server_configured(struct fetchd *fd, const char *name)
{
	return cfg_server(&fd->d->cfg, name) != NULL;
}

/* scheme://host:port of a URL, lower-cased, the port made explicit (the
 * scheme's default when absent). 0, or -1 if curl cannot parse it. */
static int url_origin(const char *url, char *out, size_t cap)
{
	CURLU *u = curl_url();
	char *sch = NULL, *host = NULL, *port = NULL;
	int rc = -1;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &sch, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		snprintf(out, cap, "%s://%s:%s", sch, host, port);
		for (char *p = out; *p; p++) if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
		rc = 0;
	}
	curl_free(sch); curl_free(host); curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* Does no_proxy (curl's rules: "*", host names matching as themselves or
 * as a domain suffix, IP addresses) send host directly? An entry we cannot
 * judge (a CIDR range) counts as a match: the address check then applies. */
static int noproxy_match(const char *list, const char *host)
{
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[') { host++; hl -= 2; }
	while (*list) {
		size_t k = strcspn(list, ", ");
		const char *e = list;
		if (k && *e == '.') { e++; k--; }
		if (k == 1 && *e == '*') return 1;
		if (k && memchr(e, '/', k)) return 1;
		if (k && k <= hl && strncasecmp(host + hl - k, e, k) == 0 &&
		    (k == hl || host[hl - k - 1] == '.')) return 1;
		list += strcspn(list, ", ");
		while (*list == ',' || *list == ' ') list++;
	}
	return 0;
}

/* What the configuration says about a server: URL, key, CA, whether it is
 * named there. The bearer key of a [peer] goes only to that peer's
 * endpoint: a server whose URL has the same scheme, host and port (never
 * to a server that merely shares the peer's name). */
static void server_conf(struct fetchd *fd, const char *name, char *base, char *key, char *ca,
                        int *conf)
{
	char origin[300];
	const struct server_cfg *sc = cfg_server(&fd->d->cfg, name);
	cfg_server_url(&fd->d->cfg, name, base, 256);
	strip_slash(base);
	key[0] = ca[0] = 0;
	*conf = sc != NULL;
	if (sc) {
		snprintf(key, 256, "%s", sc->key);
		snprintf(ca, 256, "%s", sc->ca);
	}
	if (url_origin(base, origin, sizeof origin) < 0) return;
	for (size_t i = 0; i < fd->d->cfg.npeers; i++) {
		char ep[300];
		const struct peer_cfg *p = &fd->d->cfg.peers[i];
		if (url_origin(p->endpoint, ep, sizeof ep) < 0 || strcmp(ep, origin) != 0) continue;
		*conf = 1;
		if (!key[0]) snprintf(key, 256, "%s", p->key);
		if (!ca[0]) snprintf(ca, 256, "%s", p->ca);
	}
}

/* Parse the base URL once: each request gets a copy with its path and
 * query set, so curl neither parses nor re-normalizes a URL string per
 * transfer (-15k instructions a fetch under callgrind, 6,000 fetches).
 * An endpoint with a path or query of its own keeps the plain string
 * form (its prefix is part of every request's path), as does one curl
 * cannot parse (curl then reports the error per request). */
static void server_parse_base(struct server *s)
{
	char *bp = NULL, *bq = NULL;
	s->base_gen++;                   /* URL objects copied from the old one are stale */
	if ((s->base_uh = curl_url()) &&
	    (curl_url_set(s->base_uh, CURLUPART_URL, s->base, 0) != CURLUE_OK ||
	     curl_url_get(s->base_uh, CURLUPART_PATH, &bp, 0) != CURLUE_OK || strcmp(bp, "/") != 0 ||
	     curl_url_get(s->base_uh, CURLUPART_QUERY, &bq, 0) != CURLUE_NO_QUERY)) {
		curl_url_cleanup(s->base_uh);
		s->base_uh = NULL;
	}
	curl_free(bp);
	curl_free(bq);
}

/* Outside the configuration and not through a proxy: connect only to
 * public addresses (open_cb), and reach it by name (resolved). Through a
 * proxy the proxy decides. */
static void server_policy(struct server *s)
{
	char *host = NULL;
	s->check_addr = !s->conf;
	if (s->check_addr && s->proxy[0]) {
		CURLU *u = curl_url();
		if (u && curl_url_set(u, CURLUPART_URL, s->base, 0) == CURLUE_OK &&
		    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
			s->check_addr = noproxy_match(s->noproxy, host);
		curl_free(host);
		curl_url_cleanup(u);
	}
	s->resolved = s->check_addr;
}

static void drop_gets(struct server *s)
{
	for (int k = 0; k < s->ngets; k++) {
		curl_easy_cleanup(s->gets[k]);
		curl_url_cleanup(s->gets_uh[k]);
	}
	s->ngets = 0;
}

static void server_unhash(struct fetchd *fd, struct server *s)
{
	hmap_remove(&fd->servers, &s->hn);
}

static void server_free(struct fetchd *fd, struct server *s)
{
	if (s->retired) {
		TAILQ_REMOVE(&fd->retired, s, lru);
	} else {
		server_unhash(fd, s);
		TAILQ_REMOVE(&fd->lru, s, lru);
		fd->nsrv--;
	}
	event_free(s->wake);
	if (s->rfail) event_free(s->rfail);
	if (s->rq) resolve_cancel(s->rq);
	free(s->targets);
	drop_gets(s);
	free(s->gets);
	free(s->gets_uh);
	free(s->gets_gen);
	curl_slist_free_all(s->hdrs);
	curl_url_cleanup(s->base_uh);
	free(s->proxy);
	free(s->noproxy);
	free(s->name);
	free(s);
}

static int server_idle(struct fetchd *fd, const struct server *s)
{
	return s->active == 0 && TAILQ_EMPTY(&s->waitq) && TAILQ_EMPTY(&s->waitq_lo) &&
	       s->used_turn != fd->turn;
}

/* Make room for one more server: the least recently used idle one without
 * backoff state goes first (it costs nothing to forget: LMDB has its
 * record, if any), else the least recently used idle one. A server in use
 * (requests running or waiting, or handed out this loop turn) is never
 * evicted: with all of them busy the table goes over servers_max for a
 * while (bounded by requests_max x round_width_max). */
static void server_evict(struct fetchd *fd, size_t keep)
{
	long long now = now_ms();
	struct server *s, *any = NULL;
	int scanned = 0;
	while (fd->nsrv > keep) {
		struct server *victim = NULL;
		any = NULL;
		scanned = 0;
		TAILQ_FOREACH(s, &fd->lru, lru) {
			if (!server_idle(fd, s)) continue;
			if (!any) any = s;
			if (s->streak == 0 && s->until_ms <= now) { victim = s; break; }
			if (++scanned >= 64) break;
		}
		if (!victim) victim = any;
		if (!victim) return;
		log_debug("server table full: forgetting %s", victim->name);
		(*fd->c_evicted)++;
		server_free(fd, victim);
	}
}

struct server *transport_server_get(struct fetchd *fd, const char *name)
{
	uint64_t h = hmap_hash_str(name);
	HMAP_FOR_HASH(&fd->servers, h, n) {
		struct server *s = HMAP_ENTRY(n, struct server, hn);
		if (strcmp(s->name, name) == 0) {
			s->used_turn = fd->turn;
			TAILQ_REMOVE(&fd->lru, s, lru);
			TAILQ_INSERT_TAIL(&fd->lru, s, lru);
			return s;
		}
	}
	server_evict(fd, fd->servers_max - 1);
	struct server *s = xcalloc(1, sizeof *s);
	s->name = xstrdup(name);
	TAILQ_INIT(&s->waitq);
	TAILQ_INIT(&s->waitq_lo);
	s->tokens = fd->srv_rate;
	s->tok_ms = mono_ms();
	s->used_turn = fd->turn;
	if (!(s->wake = evtimer_new(fd->d->base, server_wake_cb, s))) log_panic("out of memory");
	if (!(s->rfail = evtimer_new(fd->d->base, server_rfail_cb, s))) log_panic("out of memory");
	server_conf(fd, name, s->conf_base, s->key, s->ca, &s->conf);
	snprintf(s->base, sizeof s->base, "%s", s->conf_base);
	server_proxy(s);
	server_policy(s);
	server_parse_base(s);
	hmap_insert(&fd->servers, &s->hn, h);
	TAILQ_INSERT_TAIL(&fd->lru, s, lru);
	fd->nsrv++;
	return s;
}

/* ---- reload ------------------------------------------------------------ */


static void dispatch(struct fetchd *fd, struct server *s);

void transport_reload(struct fetchd *fd, int timeouts_changed, int old_rate)
{
	struct server *s, *nx;
	curl_multi_setopt(curlev_multi(fd->curl), CURLMOPT_MAXCONNECTS, (long)(fd->requests_max + 16));
	for (s = TAILQ_FIRST(&fd->lru); s; s = nx) {
		char base[256], key[256], ca[256];
		int conf;
		nx = TAILQ_NEXT(s, lru);
		server_conf(fd, s->name, base, key, ca, &conf);
		if (strcmp(base, s->conf_base) || strcmp(key, s->key) || strcmp(ca, s->ca) || conf != s->conf) {
			log_info("server %s: configuration changed (%s)", s->name, base);
			if (s->active == 0 && TAILQ_EMPTY(&s->waitq) && TAILQ_EMPTY(&s->waitq_lo)) {
				server_free(fd, s);
			} else {       /* busy: out of the table now, freed once idle */
				server_unhash(fd, s);
				TAILQ_REMOVE(&fd->lru, s, lru);
				fd->nsrv--;
				s->retired = 1;
				TAILQ_INSERT_TAIL(&fd->retired, s, lru);
			}
			continue;
		}
		/* handles set up with the old timeouts go; new ones get the new */
		if (timeouts_changed) drop_gets(s);
		if (old_rate == 0 || s->tokens > fd->srv_rate) s->tokens = fd->srv_rate;
		if (fd->srv_rate == 0) evtimer_del(s->wake);
		dispatch(fd, s);
	}
	TAILQ_FOREACH(s, &fd->retired, lru) {
		if (timeouts_changed) drop_gets(s);
		if (old_rate == 0 || s->tokens > fd->srv_rate) s->tokens = fd->srv_rate;
		dispatch(fd, s);
	}
	server_evict(fd, fd->servers_max);
}

void transport_reap(struct fetchd *fd)
{
	struct server *s, *nx;
	for (s = TAILQ_FIRST(&fd->retired); s; s = nx) {
		nx = TAILQ_NEXT(s, lru);
		if (s->active == 0 && TAILQ_EMPTY(&s->waitq) && TAILQ_EMPTY(&s->waitq_lo))
			server_free(fd, s);
	}
}

/* ---- the address policy ------------------------------------------------ */

/* Addresses a server outside the configuration may not make us connect to:
 * [fetchd] ip_range_deny (default: Synapse's federation blocklist, see
 * core/iprange.h) minus ip_range_allow; an IPv4 range covers the mapped,
 * compatible and 6to4 IPv6 spellings of its addresses. Read at start and at
 * every reload (the config checked them at load: a parse error here is a
 * bug in that check, and the old lists stay). */
int transport_policy_load(struct fetchd *fd, const struct config *c, char *err, size_t cap)
{
	struct iprange_list deny, allow;
	if (iprange_list_parse(&deny, cfg_str(c, "fetchd", "ip_range_deny"), err, cap) < 0) return -1;
	if (iprange_list_parse(&allow, cfg_str(c, "fetchd", "ip_range_allow"), err, cap) < 0) {
		iprange_list_free(&deny);
		return -1;
	}
	iprange_list_free(&fd->ip_deny);
	iprange_list_free(&fd->ip_allow);
	fd->ip_deny = deny;
	fd->ip_allow = allow;
	return 0;
}

void transport_policy_free(struct fetchd *fd)
{
	iprange_list_free(&fd->ip_deny);
	iprange_list_free(&fd->ip_allow);
}

/* Is sa refused? If so, why ("127.0.0.1 in 127.0.0.0/8") into the attempt. */
static int addr_denied(struct fetchd *fd, struct attempt *at, const struct sockaddr *sa)
{
	int why;
	if (!iprange_denied(&fd->ip_deny, &fd->ip_allow, sa, &why)) return 0;
	char a[64], r[64] = "not an IP address";
	iprange_addr_format(sa, a, sizeof a);
	if (why >= 0) iprange_format(&fd->ip_deny.r[why], r, sizeof r);
	snprintf(at->denied_why, sizeof at->denied_why, "%s in %s", a, r);
	return 1;
}

/* ---- curl <-> libevent (core/curlev) ------------------------------------ */

/* A transfer finished (it has left the multi). */
static void transfer_done(void *arg, CURL *e, void *priv, CURLcode cc, long status)
{
	struct fetchd *fd = arg;
	struct attempt *a = priv;
	(void)e;
	if (!a) return;
	a->state = AT_WAITING;     /* no longer in the multi */
	if (cc == CURLE_COULDNT_CONNECT) server_connect_failed(a->s, a);
	transport_server_release(fd, a->s);
	fetch_attempt_done(fd, a, cc, status);
}

/* arg: the attempt (set per transfer). A server outside the configuration
 * gets no connection to an address of [fetchd] ip_range_deny (unless
 * ip_range_allow names it), whatever its name resolved to ("localhost", a
 * DNS name pointing at 10.0.0.1, an IP literal, an answer that changed
 * since the last lookup): this is the address curl is about to connect to,
 * so no second lookup can differ from it. curl tries the next address, or
 * the attempt fails as address_denied. The sockets opened here stay
 * registered with the loop while their connection idles in curl's cache
 * (see core/curlev.h). */
static curl_socket_t open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fetchd *fd = fetchd;
	struct attempt *at = arg;
	if (purpose == CURLSOCKTYPE_IPCXN && at && at->s->check_addr && addr_denied(fd, at, &a->addr)) {
		at->denied = 1;
		(*fd->c_denied)++;
		return CURL_SOCKET_BAD;
	}
	return curlev_socket_open(fd->curl, a);
}

/* arg: the attempt. Called once the connection is there, new or taken from
 * curl's cache, before the request is sent. open_cb judged a new one; a
 * cached one was opened for whichever transfer came first, maybe for a
 * configured server at the same scheme, host, port and TLS settings (an
 * unconfigured name "10.0.0.5:8448" next to [server x] endpoint =
 * https://10.0.0.5:8448): its address is judged here again, so no cached
 * connection carries a request the policy refuses. */
static int prereq_cb(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	struct attempt *at = arg;
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	(void)local_ip; (void)port; (void)local_port;
	if (!at || !at->s->check_addr) return CURL_PREREQFUNC_OK;
	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) in6->sin6_family = AF_INET6;
	if (addr_denied(fetchd, at, (struct sockaddr *)&ss)) {   /* not an address at all: denied too */
		at->denied = 1;
		(*fetchd->c_denied)++;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

int transport_init(struct fetchd *fd)
{
	fetchd = fd;
	if (!(fd->curl = curlev_new(fd->d->base, transfer_done, fd))) return -1;
	curl_multi_setopt(curlev_multi(fd->curl), CURLMOPT_MAXCONNECTS, (long)(fd->requests_max + 16));
	return 0;
}

static void attempt_pool_free(struct fetchd *fd);

void transport_fini(struct fetchd *fd)
{
	while (!TAILQ_EMPTY(&fd->lru)) server_free(fd, TAILQ_FIRST(&fd->lru));
	while (!TAILQ_EMPTY(&fd->retired)) server_free(fd, TAILQ_FIRST(&fd->retired));
	hmap_free(&fd->servers);
	for (int i = 0; i < fd->npool; i++) curl_easy_cleanup(fd->easy_pool[i]);
	free(fd->easy_pool);
	fd->easy_pool = NULL;
	fd->npool = 0;
	attempt_pool_free(fd);
	curlev_free(fd->curl);          /* closes cached connections */
	fd->curl = NULL;
}

/* ---- one request ------------------------------------------------------- */

static size_t write_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t len = sz * n;
	if (a->body.len + len > fetchd->response_max) {
		a->too_big = 1;
		return 0;             /* curl aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (!a->body.len) {
		/* First chunk: size the buffer once from Content-Length (within
		 * the cap) instead of growing it 256, 512, 1024, ... (a pooled
		 * attempt's buffer may be large enough already) */
		curl_off_t cl = -1;
		curl_easy_getinfo(a->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (cl > (curl_off_t)len && (size_t)cl <= fetchd->response_max) buf_reserve(&a->body, (size_t)cl);
	}
	buf_add(&a->body, p, len);
	return len;
}

/* Percent-encode every byte but the unreserved characters (ASCII letters,
 * digits and - . _ ~), as curl_easy_escape does, without its allocation
 * per call. Lower-case hex (RFC 3986 2.1: equal to upper-case): curl's URL
 * API (7.88) lower-cases the escapes of a path or query set as a part, so
 * only these bytes are both what is signed (X-Matrix signs the target as
 * sent) and what curl sends, parsed URL or string. */
static void add_escaped(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s);
	buf_reserve(b, 3 * n);
	char *o = b->data + b->len;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = 0;
}

static void add_id_array(struct buf *b, char *const *l, size_t n, const char *fallback)
{
	buf_addc(b, '[');
	if (!n && fallback && *fallback) json_put_string(b, fallback, strlen(fallback));
	for (size_t i = 0; i < n; i++) {
		if (i) buf_addc(b, ',');
		json_put_string(b, l[i], strlen(l[i]));
	}
	buf_addc(b, ']');
}

/* URL (and POST body) for the op against a server. */
static void build_request(struct fetchd *fd, struct attempt *a, struct buf *url)
{
	const struct fetch_req *q = &a->f->req;
	buf_adds(url, a->s->base);
	switch (q->op) {
	case FOP_EVENT:
	case FOP_AUTH_EVENT:
		buf_adds(url, "/_matrix/federation/v1/event/");
		add_escaped(url, q->event_id);
		break;
	case FOP_AUTH_CHAIN:
		buf_adds(url, "/_matrix/federation/v1/event_auth/");
		add_escaped(url, q->room_id);
		buf_addc(url, '/');
		add_escaped(url, q->event_id);
		break;
	case FOP_STATE_IDS:
		buf_adds(url, "/_matrix/federation/v1/state_ids/");
		add_escaped(url, q->room_id);
		buf_adds(url, "?event_id=");
		add_escaped(url, q->event_id);
		break;
	case FOP_MISSING_EVENTS: {
		struct buf b;
		buf_init(&b);
		buf_adds(url, "/_matrix/federation/v1/get_missing_events/");
		add_escaped(url, q->room_id);
		buf_adds(&b, "{\"earliest_events\":");
		add_id_array(&b, q->earliest, q->nearliest, NULL);
		buf_adds(&b, ",\"latest_events\":");
		add_id_array(&b, q->events, q->nevents, q->event_id);
		buf_printf(&b, ",\"limit\":%d}", q->limit);
		a->post = buf_steal(&b);
		break;
	}
	case FOP_BACKFILL:
		buf_adds(url, "/_matrix/federation/v1/backfill/");
		add_escaped(url, q->room_id);
		buf_addc(url, '?');
		if (!q->nevents) { buf_adds(url, "v="); add_escaped(url, q->event_id); buf_addc(url, '&'); }
		for (size_t i = 0; i < q->nevents; i++) {
			buf_adds(url, "v=");
			add_escaped(url, q->events[i]);
			buf_addc(url, '&');
		}
		buf_printf(url, "limit=%d", q->limit);
		break;
	case FOP_SERVER_KEYS:
		/* The server's own document from the server itself; from
		 * anyone else (a notary) POST /_matrix/key/v2/query for that
		 * server: the key IDs the caller wants ("events"; none: all),
		 * each valid at least 5 minutes from now (a document about to
		 * expire is not worth having: the origin is asked instead). */
		if (strcmp(a->s->name, q->event_id) == 0) {
			buf_adds(url, "/_matrix/key/v2/server");
		} else {
			struct buf b;
			long long min = (long long)now_ms() + 5 * 60 * 1000;
			buf_init(&b);
			buf_adds(url, "/_matrix/key/v2/query");
			buf_adds(&b, "{\"server_keys\":{");
			json_put_string(&b, q->event_id, strlen(q->event_id));
			buf_addc(&b, ':');
			buf_addc(&b, '{');
			for (size_t i = 0; i < q->nevents; i++) {
				if (i) buf_addc(&b, ',');
				json_put_string(&b, q->events[i], strlen(q->events[i]));
				buf_printf(&b, ":{\"minimum_valid_until_ts\":%lld}", min);
			}
			buf_adds(&b, "}}}");
			a->post = buf_steal(&b);
		}
		break;
	}
	(void)fd;
}

/* Sign a federation request (X-Matrix, common/matrix/xmatrix): origin our
 * [node] server_name, destination the server name the request is for
 * (s->name, as the request names it, port included: never its address),
 * uri the request target as it goes on the wire (the URL from its path on:
 * any endpoint path prefix, our path, the query; percent-encoding as
 * built), content the JSON body. The key endpoints are never signed. */
static void attempt_sign(struct fetchd *fd, struct attempt *a, const char *url)
{
	struct buf *h = &a->authbuf;
	const char *uri = strstr(url, "://");
	uri = uri ? uri + 3 : url;
	uri += strcspn(uri, "/?");
	if (a->f->req.op == FOP_SERVER_KEYS) return;
	buf_reset(h);
	buf_reserve(h, 512);
	buf_adds(h, "Authorization: ");
	if (xmatrix_sign(&fd->sk, fd->own, a->s->name, a->post ? "POST" : "GET", uri,
	                 a->post, a->post ? strlen(a->post) : 0, h) < 0)
		log_panic("fetch %s: X-Matrix: our own request body is not JSON", a->f->req.event_id);
	a->auth = h->data;
}

static struct curl_slist *base_headers(const struct server *s, struct curl_slist *l)
{
	/* The bearer first: a signed request's X-Matrix header goes right
	 * after it (attempt_run), so a server reading the first Authorization
	 * header (served) still finds the key. User-Agent as a plain header:
	 * CURLOPT_USERAGENT costs an aprintf (~6,000 instructions) per
	 * transfer; a header in the list is sent as it is. */
	if (s->key[0]) {
		char h[300];
		snprintf(h, sizeof h, "Authorization: Bearer %s", s->key);
		l = curlev_header(l, h);
	}
	l = curlev_header(l, "User-Agent: fedpipe-fetchd/" FP_VERSION);
	l = curlev_header(l, "Accept: application/json");
	return l;
}

#define SERVER_GETS_MAX 64
#define ATTEMPT_POOL 128                 /* freed attempts kept for reuse */
#define ATTEMPT_BODY_KEEP (64 << 10)     /* ... with their body buffer up to this */

/* A fresh (or reset) handle: every option. */
static void easy_setup(struct fetchd *fd, struct attempt *a, CURL *e)
{
	struct server *s = a->s;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);   /* never: the key stays with its host */
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, curlev_socket_close);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, fd->curl);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)fd->request_timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)fd->connect_timeout);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The certificate must chain to a trusted CA and name the host the
	 * URL contacts (libcurl's defaults, stated: nothing turns them off;
	 * tests/integration/tls_names.sh greps for that). */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_PROXY, s->proxy);
	curl_easy_setopt(e, CURLOPT_NOPROXY, s->noproxy);
	/* [server] ca for its server; else [node] ca_file besides the system's */
	if (s->ca[0]) curl_easy_setopt(e, CURLOPT_CAINFO, s->ca);
	else resolve_tls_apply(e, fd->ca_file);
	if (a->plain_get) {
		/* The plain GET's headers are the same for every request to a
		 * server: built once, shared (curl only reads the list). */
		if (!s->hdrs) s->hdrs = base_headers(s, NULL);
		a->hdrs = s->hdrs;
	} else {
		a->hdrs = base_headers(s, NULL);
		a->own_hdrs = 1;
		if (a->f->flags & FF_PROXIED) a->hdrs = curlev_header(a->hdrs, "X-Fed-Proxied: 1");
		if (a->post) {
			a->hdrs = curlev_header(a->hdrs, "Content-Type: application/json");
			a->hdrs = curlev_header(a->hdrs, "Expect:");
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->post);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(a->post));
		}
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->hdrs);
}

static void attempt_run(struct fetchd *fd, struct attempt *a)
{
	struct server *s = a->s;
	struct buf url;
	CURL *e;
	buf_init(&url);
	build_request(fd, a, &url);
	attempt_sign(fd, a, url.data);
	a->t0 = mono_ms();
	a->plain_get = !(a->f->flags & FF_PROXIED) && !a->post;
	if (a->plain_get && s->ngets > 0) {
		/* A handle that ran a plain GET to this server before keeps all
		 * its options (no curl_easy_reset, no re-setup) but these. */
		e = s->gets[--s->ngets];
		a->uh = s->gets_uh[s->ngets];
		a->uh_gen = s->gets_gen[s->ngets];
		a->hdrs = s->hdrs;
	} else {
		e = fd->npool ? fd->easy_pool[--fd->npool] : curl_easy_init();
		if (!e) log_panic("curl_easy_init failed");
		easy_setup(fd, a, e);
	}
	a->easy = e;
	/* By name: to the current target's addresses, set on every run (a
	 * reused handle still points at the lists of its previous attempt,
	 * freed with it). */
	if (s->resolved && s->rstate == RS_READY) {
		a->tidx = s->tidx;
		if (resolve_target_apply(e, &s->targets[s->tidx], &a->lists) < 0)
			log_panic("server %s: target without an address", s->name);   /* server_adopt drops those */
	}
	/* The signature differs per request: its header goes in a list node
	 * of the attempt's own, spliced in front of the (possibly shared) list,
	 * after the bearer when there is one (a copy of that first node points
	 * at it). Set on every run: a reused handle may point at a freed node
	 * otherwise. */
	if (a->auth) {
		a->auth_node.data = a->auth;
		a->auth_node.next = a->hdrs;
		if (s->key[0]) {
			a->bearer_node.data = a->hdrs->data;
			a->auth_node.next = a->hdrs->next;
			a->bearer_node.next = &a->auth_node;
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, &a->bearer_node);
		} else {
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, &a->auth_node);
		}
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->hdrs);
	}
	/* A handle kept for plain GETs here keeps its URL object too: only
	 * the path and the query (set, or cleared) change from one request to
	 * the next, unless the base changed since (a new target). */
	if (a->uh && (!s->base_uh || a->uh_gen != s->base_gen)) {
		curl_url_cleanup(a->uh);
		a->uh = NULL;
	}
	if (s->base_uh && !a->uh && (a->uh = curl_url_dup(s->base_uh))) a->uh_gen = s->base_gen;
	if (a->uh) {
		size_t bl = strlen(s->base);
		char *path = url.data + bl, *q = strchr(path, '?');
		if (q) *q = 0;
		if (curl_url_set(a->uh, CURLUPART_PATH, path, 0) != CURLUE_OK ||
		    curl_url_set(a->uh, CURLUPART_QUERY, q ? q + 1 : NULL, 0) != CURLUE_OK) {
			curl_url_cleanup(a->uh);
			a->uh = NULL;
		}
		if (q) *q = '?';
	}
	if (a->uh) {
		curl_easy_setopt(e, CURLOPT_CURLU, a->uh);
	} else {
		curl_easy_setopt(e, CURLOPT_CURLU, NULL);
		curl_easy_setopt(e, CURLOPT_URL, url.data);
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)a);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, a);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);   /* the address policy, */
	curl_easy_setopt(e, CURLOPT_PREREQDATA, a);               /* reused connections too */
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	a->errbuf[0] = 0;
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
	log_debug("fetch %s %s -> %s", fetchreq_op_name(a->f->req.op), a->f->req.event_id, url.data);
	buf_free(&url);
	/* Fails only when out of memory or on a misused handle: both bugs. */
	if (curlev_add(fd->curl, e) < 0)
		log_panic("curl_multi_add_handle failed");
	a->state = AT_RUNNING;
	s->active++;
	(*fd->c_upstream)++;
}

/* Token bucket: srv_rate per minute, bursting up to a minute's worth. */
static int rate_take(struct fetchd *fd, struct server *s, long long *wait_ms)
{
	if (fd->srv_rate <= 0) return 1;
	long long now = mono_ms();
	s->tokens += (double)(now - s->tok_ms) * fd->srv_rate / 60000.0;
	if (s->tokens > fd->srv_rate) s->tokens = fd->srv_rate;
	s->tok_ms = now;
	if (s->tokens >= 1.0) { s->tokens -= 1.0; return 1; }
	*wait_ms = (long long)((1.0 - s->tokens) * 60000.0 / fd->srv_rate) + 1;
	return 0;
}

/* The next waiting attempt allowed to run now: any other before a
 * recovery; a recovery only while a slot stays free for the others. */
static struct attempt *next_waiting(struct fetchd *fd, struct server *s)
{
	struct attempt *a = TAILQ_FIRST(&s->waitq);
	if (a) return s->active < fd->srv_conc ? a : NULL;
	a = TAILQ_FIRST(&s->waitq_lo);
	int lo_max = fd->srv_conc > 1 ? fd->srv_conc - 1 : 1;
	return a && s->active < lo_max ? a : NULL;
}

static void dispatch(struct fetchd *fd, struct server *s)
{
	struct attempt *a;
	while ((a = next_waiting(fd, s))) {
		long long wait_ms = 0;
		if (s->resolved && !server_ready(fd, s)) {   /* looking it up, or no target */
			if (s->rstate == RS_FAILED) evtimer_add(s->rfail, &tv_zero);
			return;
		}
		if (!rate_take(fd, s, &wait_ms)) {
			struct timeval tv = { wait_ms / 1000, (wait_ms % 1000) * 1000 };
			evtimer_add(s->wake, &tv);
			return;
		}
		TAILQ_REMOVE(a->f->lo ? &s->waitq_lo : &s->waitq, a, s_link);
		attempt_run(fd, a);
	}
}

static void server_wake_cb(evutil_socket_t x, short ev, void *arg)
{
	(void)x; (void)ev;
	dispatch(fetchd, arg);
}

void transport_attempt_launch(struct fetchd *fd, struct attempt *a)
{
	a->state = AT_WAITING;
	TAILQ_INSERT_TAIL(a->f->lo ? &a->s->waitq_lo : &a->s->waitq, a, s_link);
	a->t0 = mono_ms();
	if (next_waiting(fd, a->s) == a) dispatch(fd, a->s);
	else log_debug("fetch %s: waiting for %s's throttle", a->f->req.event_id, a->s->name);
}

void transport_server_release(struct fetchd *fd, struct server *s)
{
	s->active--;
	dispatch(fd, s);
}

void transport_attempt_free(struct fetchd *fd, struct attempt *a)
{
	struct server *s = a->s;
	if (a->easy) curl_easy_setopt(a->easy, CURLOPT_ERRORBUFFER, NULL);   /* a->errbuf goes with a */
	if (a->easy && (a->lists.connect_to || a->lists.resolve)) {         /* and its lists */
		curl_easy_setopt(a->easy, CURLOPT_CONNECT_TO, NULL);
		curl_easy_setopt(a->easy, CURLOPT_RESOLVE, NULL);
	}
	resolve_lists_free(&a->lists);
	if (a->easy && a->plain_get && s->ngets < SERVER_GETS_MAX) {
		if (!s->gets) {
			s->gets = xcalloc(SERVER_GETS_MAX, sizeof *s->gets);
			s->gets_uh = xcalloc(SERVER_GETS_MAX, sizeof *s->gets_uh);
			s->gets_gen = xcalloc(SERVER_GETS_MAX, sizeof *s->gets_gen);
		}
		s->gets_uh[s->ngets] = a->uh;      /* curl is done with it: the handle left the multi */
		s->gets_gen[s->ngets] = a->uh_gen;
		s->gets[s->ngets++] = a->easy;
		a->uh = NULL;
	} else if (a->easy) {
		curl_easy_reset(a->easy);
		if (fd->npool < 64) {
			if (!fd->easy_pool) fd->easy_pool = xcalloc(64, sizeof *fd->easy_pool);
			fd->easy_pool[fd->npool++] = a->easy;
		} else {
			curl_easy_cleanup(a->easy);
		}
	}
	if (a->own_hdrs) curl_slist_free_all(a->hdrs);
	curl_url_cleanup(a->uh);      /* curl is done with it: the handle left the multi */
	free(a->post);
	/* Kept for the next attempt (no calloc, and the body and header
	 * buffers' memory reused), unless the pool is full; a large body's
	 * buffer goes (the pool holds at most ATTEMPT_POOL x ATTEMPT_BODY_KEEP). */
	if (fd->napool < ATTEMPT_POOL) {
		if (a->body.cap > ATTEMPT_BODY_KEEP) buf_free(&a->body);
		if (!fd->attempt_pool) fd->attempt_pool = xcalloc(ATTEMPT_POOL, sizeof *fd->attempt_pool);
		fd->attempt_pool[fd->napool++] = a;
		return;
	}
	buf_free(&a->authbuf);
	buf_free(&a->body);
	free(a);
}

struct attempt *transport_attempt_new(struct fetchd *fd)
{
	struct attempt *a;
	if (!fd->napool) {
		a = xcalloc(1, sizeof *a);
		buf_init(&a->body);
		buf_init(&a->authbuf);
		return a;
	}
	a = fd->attempt_pool[--fd->napool];
	struct buf body = a->body, auth = a->authbuf;
	memset(a, 0, sizeof *a);
	a->body = body;
	a->authbuf = auth;
	buf_reset(&a->body);
	buf_reset(&a->authbuf);
	return a;
}

static void attempt_pool_free(struct fetchd *fd)
{
	for (int i = 0; i < fd->napool; i++) {
		buf_free(&fd->attempt_pool[i]->body);
		buf_free(&fd->attempt_pool[i]->authbuf);
		free(fd->attempt_pool[i]);
	}
	free(fd->attempt_pool);
	fd->attempt_pool = NULL;
	fd->napool = 0;
}

void transport_attempt_abort(struct fetchd *fd, struct attempt *a)
{
	struct server *s = a->s;
	if (a->state == AT_RUNNING) {
		curlev_remove(fd->curl, a->easy);
		transport_attempt_free(fd, a);
		transport_server_release(fd, s);
	} else {
		if (!a->easy) TAILQ_REMOVE(a->f->lo ? &s->waitq_lo : &s->waitq, a, s_link);
		transport_attempt_free(fd, a);
	}
}

/* ---- reaching a server by name (core/resolve.h) ------------------------- */

/* The server's requests go to target tidx from now on. */
static void server_target(struct server *s, int i)
{
	s->tidx = i;
	if (resolve_target_url(&s->targets[i], s->base, sizeof s->base) < 0)
		snprintf(s->base, sizeof s->base, "%s", s->conf_base);   /* cannot happen: names fit */
	curl_url_cleanup(s->base_uh);
	s->base_uh = NULL;
	server_parse_base(s);
}

/* Adopt a resolution (from LMDB or a lookup): its targets with at least
 * one address, in order, or why there is none. */
static void server_adopt(struct server *s, const struct resolution *r)
{
	s->rturn = fetchd->turn;
	free(s->targets);
	s->targets = NULL;
	s->ntargets = 0;
	s->rexp_ms = r->expires_ms;
	if (r->ntargets > 0) s->targets = xcalloc((size_t)r->ntargets, sizeof *s->targets);
	for (int i = 0; i < r->ntargets; i++)
		if (r->targets[i].naddrs > 0) s->targets[s->ntargets++] = r->targets[i];
	if (s->ntargets > 0) {
		s->rstate = RS_READY;
		s->rwhy[0] = 0;
		server_target(s, 0);
		log_debug("server %s: %d target(s), first %s via %s:%d (%s)", s->name, s->ntargets,
		          s->targets[0].host_header, s->targets[0].connect_host, s->targets[0].port,
		          s->targets[0].addrs[0]);
	} else {
		s->rstate = RS_FAILED;
		snprintf(s->rwhy, sizeof s->rwhy, "%.120s", r->error[0] ? r->error :
		         r->ntargets ? "no address for any target" : "no target");
		log_info("server %s: does not resolve: %s", s->name, s->rwhy);
	}
}

/* Every waiting attempt of a server without a resolution fails with its
 * reason. The queues are taken whole first: a failure may end a fetch
 * and start queued ones, whose attempts queue here afresh (and get their
 * own run of this). */
static void server_fail_waiting(struct fetchd *fd, struct server *s)
{
	struct attempt_q l;
	struct attempt *a;
	char why[sizeof s->rwhy];
	snprintf(why, sizeof why, "%s", s->rwhy);
	s->used_turn = fd->turn;          /* not evicted while its attempts fail */
	TAILQ_INIT(&l);
	TAILQ_CONCAT(&l, &s->waitq, s_link);
	TAILQ_CONCAT(&l, &s->waitq_lo, s_link);
	while ((a = TAILQ_FIRST(&l))) {
		TAILQ_REMOVE(&l, a, s_link);
		a->state = AT_WAITING;
		snprintf(a->resolve_why, sizeof a->resolve_why, "%s", why);
		(*fd->c_resolve_failed)++;
		fetch_attempt_done(fd, a, CURLE_COULDNT_RESOLVE_HOST, 0);
	}
}

static void server_rfail_cb(evutil_socket_t x, short ev, void *arg)
{
	struct server *s = arg;
	(void)x; (void)ev;
	if (s->rstate == RS_FAILED) server_fail_waiting(fetchd, s);
	else dispatch(fetchd, s);
}

/* Called from the loop (after the lookup, or from server_rfail_cb). */
static void resolved_cb(void *arg, const struct resolution *res)
{
	struct server *s = arg;
	struct fetchd *fd = fetchd;
	s->rq = NULL;
	(*fd->c_resolutions)++;
	if (fd->nrsave == fd->caprsave) {
		fd->caprsave = fd->caprsave ? fd->caprsave * 2 : 16;
		fd->rsave = xreallocarray(fd->rsave, (size_t)fd->caprsave, sizeof *fd->rsave);
	}
	fd->rsave[fd->nrsave] = xmalloc(sizeof *res);
	*fd->rsave[fd->nrsave++] = *res;
	server_adopt(s, res);
	if (s->rstate == RS_READY) dispatch(fd, s);
	else server_fail_waiting(fd, s);
}

/* Does s have a usable resolution now? 1: yes (requests may run); 0: not
 * yet (a lookup runs, attempts wait; or RS_FAILED: waiting attempts fail
 * from the loop). Only servers reached by name. */
static int server_ready(struct fetchd *fd, struct server *s)
{
	static struct resolution r;       /* 20 KiB: off the stack; one loop */
	long long now = now_ms();
	if (s->rstate == RS_RESOLVING) return 0;
	if (s->rstate != RS_NONE && (s->rexp_ms > now || s->rturn == fd->turn))
		return s->rstate == RS_READY;
	/* none yet, or expired: LMDB (another stage, fedctl resolve or an
	 * earlier run may have it), else a lookup with the stale row as prev */
	int found = 0;
	MDB_txn *t = store_begin(fd->d->st, 1);
	int rc = store_resolution_get(t, fd->d->st, s->name, &r);
	mdb_txn_abort(t);
	if (rc == 0) found = 1;
	else if (rc != MDB_NOTFOUND) log_warnx("server_resolution %s: %s (looking it up)", s->name, mdb_strerror(rc));
	if (found && r.expires_ms > now) {
		(*fd->c_resolve_cached)++;
		server_adopt(s, &r);
		return s->rstate == RS_READY;
	}
	s->rstate = RS_RESOLVING;
	s->rq = resolve_start(fd->rs, s->name, found ? &r : NULL, resolved_cb, s);
	log_debug("server %s: resolving%s", s->name, found ? " (cached resolution expired)" : "");
	return 0;
}

/* A transfer to target a->tidx failed to connect: the next attempt goes
 * to the next target (round robin; the first again after the last). */
static void server_connect_failed(struct server *s, struct attempt *a)
{
	if (!s->resolved || s->rstate != RS_READY || s->ntargets < 2 || a->tidx != s->tidx) return;
	server_target(s, (s->tidx + 1) % s->ntargets);
	log_info("server %s: cannot connect to %s:%d, next target %s:%d", s->name,
	         s->targets[a->tidx].connect_host, s->targets[a->tidx].port,
	         s->targets[s->tidx].connect_host, s->targets[s->tidx].port);
}

/* Store the lookups finished this turn (one write txn; store-full
 * contract: a grown map redoes it; another error drops them, said once:
 * the next lookup of each name is then not saved, nothing else changes). */
void transport_resolutions_flush(struct fetchd *fd)
{
	if (!fd->nrsave) return;
	struct store *st = fd->d->st;
	int rc;
	for (;;) {
		MDB_txn *t = store_begin(st, 0);
		rc = 0;
		for (int i = 0; i < fd->nrsave && rc == 0; i++)
			rc = store_resolution_put(t, st, fd->rsave[i]);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (rc == 0 || !store_write_failed(st, rc)) break;
	}
	if (rc) {
		(*fd->c_resolve_errors)++;
		log_warnx("server_resolution: %d result(s) not stored (%s): looked up again next time",
		          fd->nrsave, mdb_strerror(rc));
	}
	for (int i = 0; i < fd->nrsave; i++) free(fd->rsave[i]);
	fd->nrsave = 0;
}

/* The well-known request goes only to addresses the policy allows. */
static int resolver_addr_allowed(void *arg, const struct sockaddr *sa)
{
	struct fetchd *fd = arg;
	int why;
	return !iprange_denied(&fd->ip_deny, &fd->ip_allow, sa, &why);
}

static void server_restart_lookup(struct fetchd *fd, struct server *s)
{
	if (s->rstate != RS_RESOLVING) return;
	s->rq = NULL;                     /* freed with the old resolver */
	s->rstate = RS_NONE;
	if (!TAILQ_EMPTY(&s->waitq) || !TAILQ_EMPTY(&s->waitq_lo)) {
		if (server_ready(fd, s)) dispatch(fd, s);
		else if (s->rstate == RS_FAILED) evtimer_add(s->rfail, &tv_zero);
	}
}

int transport_resolver_load(struct fetchd *fd, const struct config *c, char *err, size_t cap)
{
	const char *dns = cfg_str(c, "node", "resolver"), *ca = cfg_str(c, "node", "ca_file");
	if (fd->rs && !strcmp(dns, fd->dns) && !strcmp(ca, fd->ca_file)) return 0;
	if (strlen(dns) >= sizeof fd->dns || strlen(ca) >= sizeof fd->ca_file) {
		snprintf(err, cap, "[node] resolver or ca_file too long");
		return -1;
	}
	struct resolver_opts o = { .dns_server = dns, .ca_file = ca,
	                           .addr_allowed = resolver_addr_allowed, .addr_arg = fd };
	struct resolver *rs = resolver_new(fd->d->base, &o, err, cap);
	if (!rs) return -1;
	int ca_changed = fd->rs && strcmp(ca, fd->ca_file) != 0;
	struct resolver *old = fd->rs;
	fd->rs = rs;
	snprintf(fd->dns, sizeof fd->dns, "%s", dns);
	snprintf(fd->ca_file, sizeof fd->ca_file, "%s", ca);
	if (!old) return 0;
	log_notice("reload: [node] resolver '%s', ca_file '%s': new resolver; lookups running start again",
	           fd->dns, fd->ca_file);
	resolver_free(old);               /* cancels: no done calls */
	struct server *s;
	TAILQ_FOREACH(s, &fd->lru, lru) {
		if (ca_changed) drop_gets(s);  /* handles with the old CA go */
		server_restart_lookup(fd, s);
	}
	TAILQ_FOREACH(s, &fd->retired, lru) {
		if (ca_changed) drop_gets(s);
		server_restart_lookup(fd, s);
	}
	return 0;
}

void transport_resolver_free(struct fetchd *fd)
{
	resolver_free(fd->rs);
	fd->rs = NULL;
	for (int i = 0; i < fd->nrsave; i++) free(fd->rsave[i]);
	free(fd->rsave);
	fd->rsave = NULL;
	fd->nrsave = fd->caprsave = 0;
}
