/* resolve.c: see resolve.h. A c-ares channel driven by the libevent loop
 * (sock_state_cb registers one event per DNS socket, one timer follows
 * ares_timeout), a curlev of its own for the well-known request, and one
 * small state machine per request: literal / port / well-known / SRV /
 * deprecated SRV / address, each step recorded with its answer. */
#include "core/resolve.h"
#include "core/curlev.h"
#include "core/buf.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include "matrix/servername.h"
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/event_struct.h>

#define T_SRV 33
#define C_IN  1

struct dnssock { struct event ev; short kind; };

struct resolver {
	struct event_base *base;
	ares_channel       ch;
	struct event       timer;
	struct dnssock   **socks;
	size_t             nsocks;
	struct curlev     *ce;
	char              *ca_file;
	long long          wk_timeout_ms;
	int (*addr_allowed)(void *, const struct sockaddr *);
	void              *addr_arg;
	struct resolve_req *reqs;     /* every live request (doubly linked) */
	size_t             nreqs;
	struct hmap        inflight;  /* name -> the lookup running for it */
};

struct resolve_req {
	struct resolver    *rs;
	struct resolve_req *prev, *next;
	resolve_done_fn    *done;
	void               *arg;
	struct resolution   res;
	struct event        fin_ev;
	int cancelled, finished, delivered;
	int quiet;                 /* the caller cancelled: no done for it */
	/* Requests for a name already being looked up wait for that lookup
	 * (the lead, found in rs->inflight) as its followers. */
	struct hmap_node hn;
	int in_map;
	struct resolve_req *lead, *followers, *next_follower;
	int pending;               /* ares callbacks not yet called */
	/* the name the DNS steps work on (the server name or the delegated one) */
	char host[RESOLVE_NAME_MAX];   /* brackets kept for IPv6 */
	char hh[RESOLVE_NAME_MAX];     /* the Host header of its targets */
	long long dns_exp;             /* earliest DNS answer expiry (0: none) */
	int  wait;                     /* address lookups of the current phase */
	/* the well-known request */
	CURL *wk;
	struct buf wk_body;
	struct curl_slist *wk_resolve;
	char wk_url[600];
	char wk_cc[256], wk_expires[128];
	int  wk_redirects, wk_step, wk_too_big, wk_denied;
};

/* ---- c-ares on the loop ----------------------------------------------- */

/* The c-ares timer. ares_timeout walks every query in flight (c-ares
 * 1.18), so it is not asked after each DNS event while a timer is pending:
 * every query gets the same timeout, so the pending one is the earliest. At
 * least 20 ms between runs, so 1,000 names at once cost a few timer runs a
 * second (with 1,000 pending names, asking after every event took a third
 * of fetchd's CPU). */
static void rearm(struct resolver *rs)
{
	if (evtimer_pending(&rs->timer, NULL)) return;
	struct timeval tv, *t = ares_timeout(rs->ch, NULL, &tv);
	if (!t) return;
	if (t->tv_sec == 0 && t->tv_usec < 20000) t->tv_usec = 20000;
	evtimer_add(&rs->timer, t);
}

static void dns_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct resolver *rs = arg;
	ares_process_fd(rs->ch, kind & EV_READ ? fd : ARES_SOCKET_BAD,
	                kind & EV_WRITE ? fd : ARES_SOCKET_BAD);
	rearm(rs);
}

static void dns_timer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct resolver *rs = arg;
	(void)fd; (void)kind;
	ares_process_fd(rs->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(rs);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *rs = data;
	if (fd < 0) return;
	if ((size_t)fd >= rs->nsocks) {
		size_t n = rs->nsocks ? rs->nsocks : 16;
		while (n <= (size_t)fd) n *= 2;
		rs->socks = xreallocarray(rs->socks, n, sizeof *rs->socks);
		memset(rs->socks + rs->nsocks, 0, (n - rs->nsocks) * sizeof *rs->socks);
		rs->nsocks = n;
	}
	if (!rs->socks[fd]) rs->socks[fd] = xcalloc(1, sizeof **rs->socks);
	struct dnssock *s = rs->socks[fd];
	short kind = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	if (s->kind == kind) return;
	if (s->kind) event_del(&s->ev);
	s->kind = kind;
	if (!kind) return;
	event_assign(&s->ev, rs->base, fd, kind | EV_PERSIST, dns_event_cb, rs);
	event_add(&s->ev, NULL);
}

/* ---- requests: bookkeeping -------------------------------------------- */

static void q_free(struct resolve_req *q)
{
	struct resolver *rs = q->rs;
	if (q->prev) q->prev->next = q->next; else rs->reqs = q->next;
	if (q->next) q->next->prev = q->prev;
	rs->nreqs--;
	if (q->in_map) hmap_remove(&rs->inflight, &q->hn);
	event_del(&q->fin_ev);
	buf_free(&q->wk_body);
	curl_slist_free_all(q->wk_resolve);
	free(q);
}

/* Freed once nothing refers to it any more: no ares callback to come, no
 * transfer running, and done called (or the request cancelled). */
static void q_maybe_free(struct resolve_req *q)
{
	if (q->pending == 0 && !q->wk && (q->cancelled || q->delivered)) q_free(q);
}

static void fin_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct resolve_req *q = arg, *f, *next;
	(void)fd; (void)kind;
	if (q->cancelled) { q_maybe_free(q); return; }
	if (q->in_map) { hmap_remove(&q->rs->inflight, &q->hn); q->in_map = 0; }
	struct resolve_req *fs = q->followers;
	q->followers = NULL;
	q->delivered = 1;
	if (!q->quiet) q->done(q->arg, &q->res);
	/* a done may cancel a follower not yet told: it is only marked quiet */
	for (f = fs; f; f = next) {
		next = f->next_follower;
		f->delivered = 1;
		if (!f->quiet) f->done(f->arg, &q->res);
		q_free(f);
	}
	q_maybe_free(q);
}

static struct resolve_step *step_add(struct resolve_req *q, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static struct resolve_step *step_add(struct resolve_req *q, const char *what, const char *fmt, ...)
{
	static struct resolve_step spare;
	struct resolution *r = &q->res;
	if (r->nsteps >= RESOLVE_MAX_STEPS) { memset(&spare, 0, sizeof spare); return &spare; }
	struct resolve_step *s = &r->steps[r->nsteps++];
	memset(s, 0, sizeof *s);
	snprintf(s->what, sizeof s->what, "%s", what);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->query, sizeof s->query, fmt, ap);
	va_end(ap);
	return s;
}

static void note_dns_exp(struct resolve_req *q, long long exp)
{
	if (!q->dns_exp || exp < q->dns_exp) q->dns_exp = exp;
}

/* The result is complete: its expiry, then done from the loop. */
static void q_finish(struct resolve_req *q)
{
	struct resolution *r = &q->res;
	long long now = now_ms();
	if (q->finished) return;
	q->finished = 1;
	r->resolved_ms = now;
	long long exp = q->dns_exp ? q->dns_exp : now + RESOLVE_WK_MAX_MS;
	if (r->ntargets == 0) {
		if (!r->error[0]) snprintf(r->error, sizeof r->error, "no address found");
		if (exp > now + RESOLVE_FAIL_MS) exp = now + RESOLVE_FAIL_MS;
	}
	if (r->wk != RESOLVE_WK_NONE && r->wk_expires_ms < exp) exp = r->wk_expires_ms;
	r->expires_ms = exp;
	event_active(&q->fin_ev, EV_TIMEOUT, 1);
}

static void q_fail(struct resolve_req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void q_fail(struct resolve_req *q, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->res.error, sizeof q->res.error, fmt, ap);
	va_end(ap);
	q_finish(q);
}

/* host without IPv6 brackets into out; 4 or 6 if it is an IP literal
 * (IPv6 with or without its brackets), else 0. */
static int ip_literal(const char *host, char *out, size_t cap)
{
	unsigned char a[16];
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		snprintf(out, cap, "%.*s", (int)(n - 2), host + 1);
		return inet_pton(AF_INET6, out, a) == 1 ? 6 : 0;
	}
	snprintf(out, cap, "%s", host);
	if (inet_pton(AF_INET, host, a) == 1) return 4;
	return inet_pton(AF_INET6, host, a) == 1 ? 6 : 0;
}

static struct resolve_target *target_add(struct resolve_req *q)
{
	struct resolution *r = &q->res;
	if (r->ntargets >= RESOLVE_MAX_TARGETS) return NULL;
	struct resolve_target *t = &r->targets[r->ntargets++];
	memset(t, 0, sizeof *t);
	snprintf(t->host_header, sizeof t->host_header, "%s", q->hh);
	char hh_host[RESOLVE_NAME_MAX];
	int port;
	if (server_name_split(q->hh, strlen(q->hh), hh_host, sizeof hh_host, &port) == 0)
		ip_literal(hh_host, t->tls_name, sizeof t->tls_name);
	return t;
}

/* ---- address lookups (A/AAAA) ----------------------------------------- */

struct addr_job {
	struct resolve_req *q;
	int target;                 /* index into res.targets */
	struct resolve_step *step;
	void (*then)(struct resolve_req *q);
};

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct addr_job *j = arg;
	struct resolve_req *q = j->q;
	(void)timeouts;
	q->pending--;
	if (q->cancelled || status == ARES_EDESTRUCTION) {
		if (ai) ares_freeaddrinfo(ai);
		free(j);
		q_maybe_free(q);
		return;
	}
	struct resolve_target *t = &q->res.targets[j->target];
	struct buf a;
	buf_init(&a);
	int minttl = -1;
	if (status == ARES_SUCCESS && ai) {
		for (struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
			char s[RESOLVE_ADDR_MAX] = "";
			if (n->ai_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)n->ai_addr)->sin_addr, s, sizeof s);
			else if (n->ai_family == AF_INET6)
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)n->ai_addr)->sin6_addr, s, sizeof s);
			else continue;
			int dup = 0;
			for (int i = 0; i < t->naddrs; i++) dup |= !strcmp(t->addrs[i], s);
			if (dup || t->naddrs >= RESOLVE_MAX_ADDRS) continue;
			snprintf(t->addrs[t->naddrs++], RESOLVE_ADDR_MAX, "%s", s);
			buf_printf(&a, "%s%s", a.len ? " " : "", s);
			if (minttl < 0 || n->ai_ttl < minttl) minttl = n->ai_ttl;
		}
	}
	if (t->naddrs) {
		if (minttl < 0) minttl = 0;
		long long exp = now_ms() + ((long long)minttl * 1000 < RESOLVE_DNS_MAX_MS ?
		                            (long long)minttl * 1000 : RESOLVE_DNS_MAX_MS);
		note_dns_exp(q, exp);
		snprintf(j->step->answer, sizeof j->step->answer, "%s (ttl %ds)", a.data, minttl);
		j->step->expires_ms = exp;
	} else {
		snprintf(j->step->answer, sizeof j->step->answer, "no address: %s",
		         status == ARES_SUCCESS ? "empty answer" : ares_strerror(status));
	}
	buf_free(&a);
	if (ai) ares_freeaddrinfo(ai);
	void (*then)(struct resolve_req *) = j->then;
	free(j);
	if (--q->wait == 0) then(q);
}

/* Look up the A/AAAA of target i's connect_host; then(q) after the last
 * lookup of this phase. The caller holds one q->wait itself while it
 * starts lookups (a callback may run inside ares_getaddrinfo). */
static void addr_lookup(struct resolve_req *q, int i, const char *what,
                        void (*then)(struct resolve_req *))
{
	struct resolve_target *t = &q->res.targets[i];
	struct addr_job *j = xcalloc(1, sizeof *j);
	j->q = q; j->target = i; j->then = then;
	j->step = step_add(q, what, "%s", t->connect_host);
	struct ares_addrinfo_hints h = { .ai_flags = ARES_AI_NOSORT, .ai_family = AF_UNSPEC,
	                                 .ai_socktype = SOCK_STREAM };
	q->wait++;
	q->pending++;
	ares_getaddrinfo(q->rs->ch, t->connect_host, NULL, &h, addr_cb, j);
}

/* After the targets' lookups: keep those with an address. */
static void targets_done(struct resolve_req *q)
{
	struct resolution *r = &q->res;
	int k = 0;
	for (int i = 0; i < r->ntargets; i++)
		if (r->targets[i].naddrs) { if (k != i) r->targets[k] = r->targets[i]; k++; }
	if (k == 0 && !r->error[0])
		snprintf(r->error, sizeof r->error, "no address for %.200s", r->ntargets ? r->targets[0].connect_host : q->host);
	r->ntargets = k;
	q_finish(q);
}

/* One target: q->host itself on port, its A/AAAA. */
static void plain_target(struct resolve_req *q, int port, const char *what)
{
	struct resolve_target *t = target_add(q);
	snprintf(t->connect_host, sizeof t->connect_host, "%s", q->host);
	t->port = port;
	q->wait++;
	addr_lookup(q, q->res.ntargets - 1, what, targets_done);
	if (--q->wait == 0) targets_done(q);
	rearm(q->rs);
}

/* ---- SRV ---------------------------------------------------------------- */

/* The smallest TTL of the answer records (RFC 1035 4.1), -1 if none. */
static int answer_min_ttl(const unsigned char *m, int len)
{
	if (len < 12) return -1;
	int qd = m[4] << 8 | m[5], an = m[6] << 8 | m[7], off = 12, min = -1;
	for (int i = 0; i < qd; i++) {
		char *nm; long el;
		if (ares_expand_name(m + off, m, len, &nm, &el) != ARES_SUCCESS) return -1;
		ares_free_string(nm);
		off += (int)el + 4;
		if (off > len) return -1;
	}
	for (int i = 0; i < an; i++) {
		char *nm; long el;
		if (off >= len || ares_expand_name(m + off, m, len, &nm, &el) != ARES_SUCCESS) return min;
		ares_free_string(nm);
		off += (int)el;
		if (off + 10 > len) return min;
		int ttl = (int)((unsigned)m[off + 4] << 24 | (unsigned)m[off + 5] << 16 |
		                (unsigned)m[off + 6] << 8 | m[off + 7]);
		int rdlen = m[off + 8] << 8 | m[off + 9];
		if (ttl < 0) ttl = 0;
		if (min < 0 || ttl < min) min = ttl;
		off += 10 + rdlen;
	}
	return min;
}

static void srv_query(struct resolve_req *q, int deprecated);

static int srv_order(const void *a, const void *b)
{
	const struct ares_srv_reply *x = *(struct ares_srv_reply *const *)a, *y = *(struct ares_srv_reply *const *)b;
	if (x->priority != y->priority) return x->priority < y->priority ? -1 : 1;
	return x->weight > y->weight ? -1 : x->weight < y->weight;
}

struct srv_job { struct resolve_req *q; int deprecated; struct resolve_step *step; };

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct srv_job *j = arg;
	struct resolve_req *q = j->q;
	(void)timeouts;
	q->pending--;
	if (q->cancelled || status == ARES_EDESTRUCTION) { free(j); q_maybe_free(q); return; }
	struct ares_srv_reply *srv = NULL;
	if (status == ARES_SUCCESS && (status = ares_parse_srv_reply(abuf, alen, &srv)) != ARES_SUCCESS)
		srv = NULL;
	struct ares_srv_reply *list[64];
	int n = 0;
	for (struct ares_srv_reply *s = srv; s && n < 64; s = s->next)
		if (s->host && s->host[0] && strcmp(s->host, ".")) list[n++] = s;
	qsort(list, (size_t)n, sizeof *list, srv_order);
	struct resolve_step *st = j->step;
	int deprecated = j->deprecated;
	free(j);
	if (n == 0) {
		snprintf(st->answer, sizeof st->answer, "%s", status == ARES_SUCCESS ?
		         "no usable record" : ares_strerror(status));
		if (srv) ares_free_data(srv);
		if (!deprecated) srv_query(q, 1);
		else plain_target(q, RESOLVE_PORT_DEFAULT, "address");
		return;
	}
	int ttl = answer_min_ttl(abuf, alen);
	if (ttl < 0) ttl = 0;
	long long exp = now_ms() + ((long long)ttl * 1000 < RESOLVE_DNS_MAX_MS ? (long long)ttl * 1000 : RESOLVE_DNS_MAX_MS);
	note_dns_exp(q, exp);
	st->expires_ms = exp;
	struct buf a;
	buf_init(&a);
	for (int i = 0; i < n; i++)
		buf_printf(&a, "%s%u %u %u %s", i ? ", " : "", list[i]->priority, list[i]->weight,
		           list[i]->port, list[i]->host);
	snprintf(st->answer, sizeof st->answer, "%s (ttl %ds)", a.data, ttl);
	buf_free(&a);
	q->wait++;
	for (int i = 0; i < n; i++) {
		struct resolve_target *t = target_add(q);
		if (!t) break;
		snprintf(t->connect_host, sizeof t->connect_host, "%s", list[i]->host);
		size_t hl = strlen(t->connect_host);
		if (hl > 1 && t->connect_host[hl - 1] == '.') t->connect_host[hl - 1] = 0;
		t->port = list[i]->port;
		/* an SRV target that is an IP literal needs no lookup (not per RFC
		 * 2782, but seen in the wild) */
		char lit[RESOLVE_NAME_MAX];
		if (ip_literal(t->connect_host, lit, sizeof lit)) {
			snprintf(t->addrs[0], RESOLVE_ADDR_MAX, "%.45s", lit);
			t->naddrs = 1;
			continue;
		}
		addr_lookup(q, q->res.ntargets - 1, "address", targets_done);
	}
	ares_free_data(srv);
	if (--q->wait == 0) targets_done(q);
}

static void srv_query(struct resolve_req *q, int deprecated)
{
	char qn[RESOLVE_NAME_MAX + 32];
	snprintf(qn, sizeof qn, "%s.%s", deprecated ? "_matrix._tcp" : "_matrix-fed._tcp", q->host);
	struct srv_job *j = xcalloc(1, sizeof *j);
	j->q = q;
	j->deprecated = deprecated;
	j->step = step_add(q, deprecated ? "srv_deprecated" : "srv", "%s", qn);
	q->pending++;
	ares_query(q->rs->ch, qn, C_IN, T_SRV, srv_cb, j);
	rearm(q->rs);
}

/* ---- steps 1, 2 and 4 for a name (the server's or the delegated one) ---- */

static void dns_steps(struct resolve_req *q, const char *name, int after_wk)
{
	char host[RESOLVE_NAME_MAX], lit[RESOLVE_NAME_MAX];
	int port = 0;
	if (server_name_split(name, strlen(name), host, sizeof host, &port) < 0) {
		q_fail(q, "not a server name");
		return;
	}
	snprintf(q->host, sizeof q->host, "%s", host);
	snprintf(q->hh, sizeof q->hh, "%s", name);
	if (ip_literal(host, lit, sizeof lit)) {
		struct resolve_step *s = step_add(q, "ip_literal", "%s", name);
		struct resolve_target *t = target_add(q);
		snprintf(t->connect_host, sizeof t->connect_host, "%s", lit);
		t->port = port ? port : RESOLVE_PORT_DEFAULT;
		snprintf(t->addrs[0], RESOLVE_ADDR_MAX, "%.45s", lit);
		t->naddrs = 1;
		snprintf(s->answer, sizeof s->answer, "%s port %d", lit, t->port);
		q_finish(q);
		return;
	}
	if (port) {
		step_add(q, "explicit_port", "%s", name);
		snprintf(q->res.steps[q->res.nsteps - 1].answer, sizeof q->res.steps[0].answer,
		         "port %d, Host %s", port, name);
		plain_target(q, port, "address");
		return;
	}
	(void)after_wk;
	srv_query(q, 0);
}

/* ---- the well-known step ----------------------------------------------- */

static void wk_result(struct resolve_req *q)
{
	struct resolution *r = &q->res;
	if (r->wk == RESOLVE_WK_DELEGATED) dns_steps(q, r->wk_server, 1);
	else dns_steps(q, r->name, 1);
}

static void wk_failed(struct resolve_req *q, struct resolve_step *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void wk_failed(struct resolve_req *q, struct resolve_step *s, const char *fmt, ...)
{
	struct resolution *r = &q->res;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->wk_error, sizeof r->wk_error, fmt, ap);
	va_end(ap);
	r->wk = RESOLVE_WK_FAILED;
	r->wk_expires_ms = now_ms() + RESOLVE_WK_ERROR_MS;
	snprintf(s->answer, sizeof s->answer, "%s", r->wk_error);
	s->expires_ms = r->wk_expires_ms;
	wk_result(q);
}

static size_t wk_write(char *p, size_t sz, size_t n, void *arg)
{
	struct resolve_req *q = arg;
	if (q->wk_body.len + sz * n > RESOLVE_WK_BODY_MAX) { q->wk_too_big = 1; return 0; }
	buf_add(&q->wk_body, p, sz * n);
	return sz * n;
}

static void header_value(const char *p, size_t n, const char *name, char *out, size_t cap)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(p, name, k) || p[k] != ':') return;
	p += k + 1; n -= k + 1;
	while (n && (*p == ' ' || *p == '\t')) { p++; n--; }
	while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ')) n--;
	if (n >= cap) n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

static size_t wk_header(char *p, size_t sz, size_t n, void *arg)
{
	struct resolve_req *q = arg;
	size_t len = sz * n;
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) { q->wk_cc[0] = 0; q->wk_expires[0] = 0; }
	header_value(p, len, "cache-control", q->wk_cc, sizeof q->wk_cc);
	header_value(p, len, "expires", q->wk_expires, sizeof q->wk_expires);
	return len;
}

static curl_socket_t wk_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct resolve_req *q = arg;
	(void)purpose;
	if (q->rs->addr_allowed && !q->rs->addr_allowed(q->rs->addr_arg, &a->addr)) {
		q->wk_denied = 1;
		errno = EACCES;
		return CURL_SOCKET_BAD;
	}
	return curlev_socket_open(q->rs->ce, a);
}

static void wk_fetch(struct resolve_req *q);

struct wk_addr_job { struct resolve_req *q; char host[RESOLVE_NAME_MAX]; int port; };

static void wk_addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct wk_addr_job *j = arg;
	struct resolve_req *q = j->q;
	(void)timeouts;
	q->pending--;
	if (q->cancelled || status == ARES_EDESTRUCTION) {
		if (ai) ares_freeaddrinfo(ai);
		free(j);
		q_maybe_free(q);
		return;
	}
	struct resolve_step *s = &q->res.steps[q->wk_step];
	struct buf l;
	buf_init(&l);
	buf_printf(&l, "%s:%d:", j->host, j->port);
	int n = 0;
	for (struct ares_addrinfo_node *a = ai && status == ARES_SUCCESS ? ai->nodes : NULL;
	     a && n < RESOLVE_MAX_ADDRS; a = a->ai_next) {
		char t[RESOLVE_ADDR_MAX];
		if (a->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr, t, sizeof t);
		else if (a->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr, t, sizeof t);
		else continue;
		buf_printf(&l, a->ai_family == AF_INET6 ? "%s[%s]" : "%s%s", n++ ? "," : "", t);
	}
	if (ai) ares_freeaddrinfo(ai);
	if (n == 0) {
		buf_free(&l);
		char host[RESOLVE_NAME_MAX];
		snprintf(host, sizeof host, "%s", j->host);
		free(j);
		wk_failed(q, s, "no address for %s: %s", host,
		          status == ARES_SUCCESS ? "empty answer" : ares_strerror(status));
		return;
	}
	free(j);
	curl_slist_free_all(q->wk_resolve);
	q->wk_resolve = curlev_header(NULL, l.data);
	buf_free(&l);
	CURL *e = curl_easy_init();
	if (!e) { wk_failed(q, s, "curl_easy_init failed"); return; }
	buf_reset(&q->wk_body);
	q->wk_too_big = q->wk_denied = 0;
	q->wk_cc[0] = q->wk_expires[0] = 0;
	curl_easy_setopt(e, CURLOPT_URL, q->wk_url);
	curl_easy_setopt(e, CURLOPT_RESOLVE, q->wk_resolve);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);   /* followed here, through c-ares */
	curl_easy_setopt(e, CURLOPT_PROXY, "");            /* never a proxy: the policy sees the address */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)q->rs->wk_timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)q->rs->wk_timeout_ms);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "fedpipe/" FP_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wk_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, wk_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, wk_open);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, q);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, curlev_socket_close);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, q->rs->ce);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)q);
	resolve_tls_apply(e, q->rs->ca_file);
	if (curlev_add(q->rs->ce, e) < 0) {
		curl_easy_cleanup(e);
		wk_failed(q, s, "curl refused the request");
		return;
	}
	q->wk = e;
}

/* Resolve the host of q->wk_url through c-ares, then GET it. */
static void wk_fetch(struct resolve_req *q)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	struct resolve_step *s = &q->res.steps[q->wk_step];
	if (!u || curl_url_set(u, CURLUPART_URL, q->wk_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		curl_free(host);
		curl_url_cleanup(u);
		wk_failed(q, s, "bad URL %s", q->wk_url);
		return;
	}
	struct wk_addr_job *j = xcalloc(1, sizeof *j);
	j->q = q;
	snprintf(j->host, sizeof j->host, "%s", host);
	j->port = atoi(port);
	curl_free(host); curl_free(port);
	curl_url_cleanup(u);
	char lit[RESOLVE_NAME_MAX];
	const char *look = j->host;
	if (ip_literal(j->host, lit, sizeof lit)) look = lit;
	struct ares_addrinfo_hints h = { .ai_flags = ARES_AI_NOSORT, .ai_family = AF_UNSPEC,
	                                 .ai_socktype = SOCK_STREAM };
	q->pending++;
	ares_getaddrinfo(q->rs->ch, look, NULL, &h, wk_addr_cb, j);
	rearm(q->rs);
}

static void wk_done(void *arg, CURL *e, void *priv, CURLcode cc, long status)
{
	struct resolve_req *q = priv;
	(void)arg;
	q->wk = NULL;
	char *redir = NULL;
	if (cc == CURLE_OK && status >= 300 && status < 400)
		curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &redir);
	char next[sizeof q->wk_url] = "";
	if (redir) snprintf(next, sizeof next, "%s", redir);
	curl_easy_cleanup(e);
	if (q->cancelled) { q_maybe_free(q); return; }
	struct resolve_step *s = &q->res.steps[q->wk_step];
	struct resolution *r = &q->res;
	if (cc != CURLE_OK) {
		wk_failed(q, s, "%s", q->wk_too_big ? "body larger than 50 KiB" :
		          q->wk_denied ? "address_denied" : curl_easy_strerror(cc));
		return;
	}
	if (status >= 300 && status < 400) {
		if (!next[0]) { wk_failed(q, s, "HTTP %ld without Location", status); return; }
		if (strncasecmp(next, "https://", 8)) { wk_failed(q, s, "redirect to a non-https URL"); return; }
		if (++q->wk_redirects > RESOLVE_WK_REDIRECTS) { wk_failed(q, s, "more than %d redirects", RESOLVE_WK_REDIRECTS); return; }
		snprintf(q->wk_url, sizeof q->wk_url, "%s", next);
		wk_fetch(q);
		return;
	}
	if (status != 200) { wk_failed(q, s, "HTTP %ld", status); return; }
	char err[160];
	if (resolve_wk_parse(q->wk_body.data ? q->wk_body.data : "", q->wk_body.len, r->wk_server,
	                     sizeof r->wk_server, err, sizeof err) < 0) {
		wk_failed(q, s, "%s", err);
		return;
	}
	long long now = now_ms();
	r->wk = RESOLVE_WK_DELEGATED;
	r->wk_expires_ms = now + resolve_wk_cache_ms(q->wk_cc[0] ? q->wk_cc : NULL,
	                                             q->wk_expires[0] ? q->wk_expires : NULL, now);
	s->expires_ms = r->wk_expires_ms;
	snprintf(s->answer, sizeof s->answer, "m.server %s", r->wk_server);
	wk_result(q);
}

/* ---- public ------------------------------------------------------------ */

struct resolver *resolver_new(struct event_base *base, const struct resolver_opts *o,
                              char *err, size_t errlen)
{
	static int lib_init;
	if (!lib_init) {
		int rc = ares_library_init(ARES_LIB_INIT_ALL);
		if (rc != ARES_SUCCESS) { snprintf(err, errlen, "c-ares: %s", ares_strerror(rc)); return NULL; }
		lib_init = 1;
	}
	struct resolver *rs = xcalloc(1, sizeof *rs);
	rs->base = base;
	rs->wk_timeout_ms = o && o->wk_timeout_ms > 0 ? o->wk_timeout_ms : 10000;
	rs->ca_file = xstrdup(o && o->ca_file ? o->ca_file : "");
	if (o) { rs->addr_allowed = o->addr_allowed; rs->addr_arg = o->addr_arg; }
	struct ares_options ao;
	memset(&ao, 0, sizeof ao);
	ao.sock_state_cb = sock_state_cb;
	ao.sock_state_cb_data = rs;
	ao.timeout = o && o->dns_timeout_ms > 0 ? (int)o->dns_timeout_ms : 2000;
	ao.tries = 3;
	ao.flags = ARES_FLAG_NOSEARCH;    /* a server name is absolute */
	int rc = ares_init_options(&rs->ch, &ao, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
	                           ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(rs->ca_file);
		free(rs);
		return NULL;
	}
	if (o && o->dns_server && o->dns_server[0] &&
	    (rc = ares_set_servers_ports_csv(rs->ch, o->dns_server)) != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver %s: %s (want HOST:PORT)", o->dns_server, ares_strerror(rc));
		ares_destroy(rs->ch);
		free(rs->ca_file);
		free(rs);
		return NULL;
	}
	evtimer_assign(&rs->timer, base, dns_timer_cb, rs);
	if (!(rs->ce = curlev_new(base, wk_done, rs))) {
		snprintf(err, errlen, "libcurl cannot start");
		ares_destroy(rs->ch);
		free(rs->ca_file);
		free(rs);
		return NULL;
	}
	return rs;
}

void resolver_free(struct resolver *rs)
{
	if (!rs) return;
	for (struct resolve_req *q = rs->reqs, *n; q; q = n) {
		n = q->next;
		q->cancelled = q->quiet = 1;
		q->lead = q->followers = NULL;   /* all freed below, in any order */
		if (q->wk) { curlev_remove(rs->ce, q->wk); curl_easy_cleanup(q->wk); q->wk = NULL; }
	}
	ares_destroy(rs->ch);   /* pending callbacks run with ARES_EDESTRUCTION: they free */
	while (rs->reqs) q_free(rs->reqs);
	evtimer_del(&rs->timer);
	for (size_t i = 0; i < rs->nsocks; i++) {
		if (rs->socks[i] && rs->socks[i]->kind) event_del(&rs->socks[i]->ev);
		free(rs->socks[i]);
	}
	free(rs->socks);
	curlev_free(rs->ce);
	hmap_free(&rs->inflight);
	free(rs->ca_file);
	free(rs);
}

size_t resolver_pending(const struct resolver *rs) { return rs->nreqs; }

struct resolve_req *resolve_start(struct resolver *rs, const char *name,
                                  const struct resolution *prev,
                                  resolve_done_fn *done, void *arg)
{
	struct resolve_req *q = xcalloc(1, sizeof *q);
	q->rs = rs;
	q->done = done;
	q->arg = arg;
	buf_init(&q->wk_body);
	event_assign(&q->fin_ev, rs->base, -1, 0, fin_cb, q);
	q->next = rs->reqs;
	if (rs->reqs) rs->reqs->prev = q;
	rs->reqs = q;
	rs->nreqs++;
	uint64_t h = hmap_hash_str(name);
	HMAP_FOR_HASH(&rs->inflight, h, n) {
		struct resolve_req *l = HMAP_ENTRY(n, struct resolve_req, hn);
		if (strcmp(l->res.name, name)) continue;
		q->lead = l;                     /* one lookup per name at a time */
		q->next_follower = l->followers;
		l->followers = q;
		return q;
	}
	struct resolution *r = &q->res;
	snprintf(r->name, sizeof r->name, "%s", name);
	hmap_insert(&rs->inflight, &q->hn, h);
	q->in_map = 1;
	char host[RESOLVE_NAME_MAX], lit[RESOLVE_NAME_MAX];
	int port = 0;
	size_t n = strlen(name);
	if (n >= sizeof r->name || server_name_split(name, n, host, sizeof host, &port) < 0) {
		q_fail(q, "not a server name");
		return q;
	}
	if (ip_literal(host, lit, sizeof lit) || port) {
		dns_steps(q, name, 0);
		return q;
	}
	long long now = now_ms();
	if (prev && !strcmp(prev->name, name) && prev->wk != RESOLVE_WK_NONE && prev->wk_expires_ms > now) {
		r->wk = prev->wk;
		r->wk_expires_ms = prev->wk_expires_ms;
		snprintf(r->wk_server, sizeof r->wk_server, "%s", prev->wk_server);
		snprintf(r->wk_error, sizeof r->wk_error, "%s", prev->wk_error);
		struct resolve_step *s = step_add(q, "well_known", "https://%s/.well-known/matrix/server", host);
		s->cached = 1;
		s->expires_ms = r->wk_expires_ms;
		if (r->wk == RESOLVE_WK_DELEGATED) snprintf(s->answer, sizeof s->answer, "m.server %s", r->wk_server);
		else snprintf(s->answer, sizeof s->answer, "%s", r->wk_error);
		wk_result(q);
		return q;
	}
	snprintf(q->wk_url, sizeof q->wk_url, "https://%s/.well-known/matrix/server", host);
	step_add(q, "well_known", "%s", q->wk_url);
	q->wk_step = r->nsteps - 1;
	wk_fetch(q);
	return q;
}

void resolve_cancel(struct resolve_req *q)
{
	if (!q || q->quiet || q->delivered) return;
	q->quiet = 1;
	if (q->lead) return;                 /* freed with its lead's delivery */
	for (struct resolve_req *f = q->followers; f; f = f->next_follower)
		if (!f->quiet) return;           /* the lookup goes on for them */
	for (struct resolve_req *f = q->followers, *next; f; f = next) {
		next = f->next_follower;
		q_free(f);
	}
	q->followers = NULL;
	q->cancelled = 1;
	if (q->in_map) { hmap_remove(&q->rs->inflight, &q->hn); q->in_map = 0; }
	if (q->wk) { curlev_remove(q->rs->ce, q->wk); curl_easy_cleanup(q->wk); q->wk = NULL; }
	event_del(&q->fin_ev);
	q_maybe_free(q);
}

/* ---- curl helpers ------------------------------------------------------ */

int resolve_target_url(const struct resolve_target *t, char *out, size_t cap)
{
	int n = snprintf(out, cap, "https://%s", t->host_header);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

void resolve_lists_free(struct resolve_lists *l)
{
	curl_slist_free_all(l->connect_to);
	curl_slist_free_all(l->resolve);
	l->connect_to = l->resolve = NULL;
}

int resolve_target_apply(CURL *e, const struct resolve_target *t, struct resolve_lists *l)
{
	resolve_lists_free(l);
	if (t->naddrs < 1) return -1;
	char host[RESOLVE_NAME_MAX], lit[RESOLVE_NAME_MAX], line[RESOLVE_NAME_MAX * 2 + 32];
	int port = 0;
	if (server_name_split(t->host_header, strlen(t->host_header), host, sizeof host, &port) < 0)
		return -1;
	int v = ip_literal(t->connect_host, lit, sizeof lit);
	const char *cb = v == 6 ? "[" : "", *ce = v == 6 ? "]" : "";
	snprintf(line, sizeof line, "%s:%d:%s%s%s:%d", host, port ? port : 443, cb,
	         v ? lit : t->connect_host, ce, t->port);
	l->connect_to = curlev_header(NULL, line);
	if (!v) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s:%d:", t->connect_host, t->port);
		for (int i = 0; i < t->naddrs; i++)
			buf_printf(&b, strchr(t->addrs[i], ':') ? "%s[%s]" : "%s%s", i ? "," : "", t->addrs[i]);
		l->resolve = curlev_header(NULL, b.data);
		buf_free(&b);
	}
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, l->connect_to);
	curl_easy_setopt(e, CURLOPT_RESOLVE, l->resolve);
	return 0;
}

void resolve_tls_apply(CURL *e, const char *ca_file)
{
	if (!ca_file || !ca_file[0]) return;
	curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
}

/* ---- well-known parsing ------------------------------------------------- */

static int parse_http_date(const char *s, long long *out)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",   /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",   /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",        /* asctime */
	};
	for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		const char *end = strptime(s, fmts[i], &tm);
		if (!end) continue;
		while (*end == ' ') end++;
		if (*end) continue;
		*out = (long long)timegm(&tm) * 1000;
		return 0;
	}
	return -1;
}

long long resolve_wk_cache_ms(const char *cache_control, const char *expires, long long now_ms)
{
	long long ms = -1;
	if (cache_control) {
		const char *p = cache_control;
		while (*p && ms < 0) {
			while (*p == ' ' || *p == '\t' || *p == ',') p++;
			size_t n = strcspn(p, ",");
			const char *tok = p;
			p += n;
			while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t')) n--;
			if (n == 8 && !strncasecmp(tok, "no-store", 8)) { ms = 0; break; }
			if (n > 8 && !strncasecmp(tok, "max-age=", 8)) {
				const char *v = tok + 8;
				size_t vn = n - 8;
				if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') { v++; vn -= 2; }
				long long secs = 0;
				size_t i;
				for (i = 0; i < vn && v[i] >= '0' && v[i] <= '9'; i++)
					if (secs < RESOLVE_WK_MAX_MS) secs = secs * 10 + (v[i] - '0');
				if (i == vn && vn > 0) ms = secs * 1000;
			}
		}
		/* no-store anywhere wins over a max-age before it */
		for (const char *q = cache_control; (q = strcasestr(q, "no-store")); q += 8) {
			int start = q == cache_control || q[-1] == ',' || q[-1] == ' ' || q[-1] == '\t';
			char after = q[8];
			if (start && (!after || after == ',' || after == ' ' || after == '\t')) { ms = 0; break; }
		}
	}
	if (ms < 0 && expires) {
		long long at;
		/* RFC 7234: an invalid date (such as "0") means already expired */
		ms = parse_http_date(expires, &at) == 0 ? at - now_ms : 0;
		if (ms < 0) ms = 0;
	}
	if (ms < 0) ms = RESOLVE_WK_DEFAULT_MS;
	if (ms > RESOLVE_WK_MAX_MS) ms = RESOLVE_WK_MAX_MS;
	return ms;
}

int resolve_wk_parse(const char *body, size_t n, char *out, size_t cap, char *err, size_t errlen)
{
	struct json_doc d = { 0 };
	int rc = -1;
	if (json_parse(&d, body, n, 8) < 0) {
		snprintf(err, errlen, "invalid JSON: %s at byte %u", json_err_str(d.err), d.err_off);
	} else if (d.tok[0].type != JSON_OBJECT) {
		snprintf(err, errlen, "invalid JSON: not an object");
	} else {
		int t = json_obj_get(&d, 0, "m.server");
		size_t len = t >= 0 && d.tok[t].type == JSON_STRING ? json_str_len(&d, t) : 0;
		char v[RESOLVE_NAME_MAX];
		if (t < 0 || d.tok[t].type != JSON_STRING) snprintf(err, errlen, "no m.server string");
		else if (len >= sizeof v || len >= cap || json_str_copy(&d, t, v, sizeof v) < 0 ||
		         strlen(v) != len || !server_name_valid(v, len))
			snprintf(err, errlen, "m.server is not a server name");
		else { memcpy(out, v, len + 1); rc = 0; }
	}
	json_doc_free(&d);
	return rc;
}
