/* served_conn.c: the connection gate in front of evhttp.
 * served faces the internet, so what one client can hold is bounded:
 *   - max_connections / max_connections_per_ip: a connection beyond either
 *     is closed as soon as it is accepted, counted, and reported in one log
 *     line a minute at most (nginx: limit_conn; Postfix: smtpd_client_
 *     connection_count_limit);
 *   - header_timeout: a deadline for the whole header block of a request
 *     (and for an idle keep-alive connection waiting for its next one), and
 *     body_timeout for the whole body: deadlines, not per-byte timers, so a
 *     byte every 2 s no longer holds a connection (nginx's
 *     client_header_timeout / client_body_timeout are per read; ours are
 *     stricter);
 *   - accept() errors (EMFILE, ENFILE, ENOBUFS) pause the listener for a
 *     short, growing while instead of spinning on it, with one log line a
 *     minute at most;
 *   - authorization is decided from the headers: a request with a body and
 *     no valid bearer key gets its 401 and the connection is closed without
 *     reading the body.
 * We own the listening socket (an evconnlistener handed to evhttp) and the
 * per-connection bufferevent (evhttp_set_bevcb); connections are admitted
 * right after accept, in the same loop turn, before any byte is read.
 * libevent 2.1 has no public hook for a new server request (2.2 adds
 * evhttp_set_newreqcb), so evhttp_request_new is interposed below: libevent
 * calls it through its PLT, and we attach the header callback to every
 * request our server creates. If the hook is not reached (a static
 * libevent), served still works: the header deadline then covers the whole
 * request and the key is checked after the body (logged once). */
#include "served.h"
#include "core/log.h"
#include "core/xalloc.h"
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <event2/listener.h>
#include <event2/bufferevent.h>
#include <event2/http_struct.h>

enum { PH_HEADERS, PH_BODY, PH_HANDLER };

struct ipent { struct ipent *next; unsigned char a[16]; int n; };

struct cslot {
	struct evhttp_connection *evcon;
	struct ipent *ip;
	int fd, phase, idx;
	long long deadline;            /* mono ms; phases HEADERS and BODY */
};

struct ratelog { long long last; uint64_t held; };

static struct gate {
	struct served *s;
	struct evconnlistener *lev;
	struct event *admit_ev, *resume_ev, *sweep;
	struct bufferevent **pending; size_t npending, cap_pending;
	struct cslot **byfd; int nbyfd;           /* fd -> slot */
	struct cslot **active; int nactive, cap_active;
	struct ipent **ipt; unsigned ipmask;
	long long backoff;
	int hook_seen, hook_warned;
	struct ratelog rl_cap, rl_ip, rl_accept, rl_auth;
} gate;

/* At most one line a minute per kind; the count of the lines held back
 * goes with the next one. Returns 1 when this one may be logged. */
static int rl_pass(struct ratelog *r, uint64_t *held)
{
	long long now = mono_ms();
	if (r->last && now - r->last < 60000) { r->held++; return 0; }
	r->last = now;
	*held = r->held;
	r->held = 0;
	return 1;
}

static unsigned ip_hash(const unsigned char *a)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++) { h ^= a[i]; h *= 16777619u; }
	return h;
}

static void ip_key(const struct sockaddr_storage *ss, unsigned char a[16])
{
	memset(a, 0, 16);
	if (ss->ss_family == AF_INET) {
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
}

static void ip_str(const unsigned char a[16], char *out, size_t n)
{
	static const unsigned char v4[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
	if (!memcmp(a, v4, 12)) inet_ntop(AF_INET, a + 12, out, (socklen_t)n);
	else inet_ntop(AF_INET6, a, out, (socklen_t)n);
}

static struct ipent *ip_get(const unsigned char a[16])
{
	unsigned h = ip_hash(a) & gate.ipmask;
	for (struct ipent *e = gate.ipt[h]; e; e = e->next)
		if (!memcmp(e->a, a, 16)) return e;
	struct ipent *e = xcalloc(1, sizeof *e);
	memcpy(e->a, a, 16);
	e->next = gate.ipt[h];
	gate.ipt[h] = e;
	return e;
}

static void ip_put(struct ipent *e)
{
	if (--e->n > 0) return;
	struct ipent **p = &gate.ipt[ip_hash(e->a) & gate.ipmask];
	while (*p != e) p = &(*p)->next;
	*p = e->next;
	free(e);
}

static struct cslot *slot_of(struct evhttp_connection *evcon)
{
	if (!evcon) return NULL;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	int fd = bev ? (int)bufferevent_getfd(bev) : -1;
	if (fd >= 0 && fd < gate.nbyfd && gate.byfd[fd] && gate.byfd[fd]->evcon == evcon) return gate.byfd[fd];
	for (int i = 0; i < gate.nactive; i++)     /* fd already gone: look it up */
		if (gate.active[i]->evcon == evcon) return gate.active[i];
	return NULL;
}

static void slot_release(struct cslot *c)
{
	struct served *s = gate.s;
	if (c->fd >= 0 && c->fd < gate.nbyfd && gate.byfd[c->fd] == c) gate.byfd[c->fd] = NULL;
	gate.active[c->idx] = gate.active[--gate.nactive];
	gate.active[c->idx]->idx = c->idx;
	ip_put(c->ip);
	free(c);
	*s->g_conns = gate.nactive;
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	(void)arg;
	struct cslot *c = slot_of(evcon);
	if (c) slot_release(c);
}

/* Close a connection we admitted (deadline passed, ...). */
static void slot_drop(struct cslot *c)
{
	struct evhttp_connection *evcon = c->evcon;
	slot_release(c);
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	evhttp_connection_free(evcon);
}

static void refuse(struct evhttp_connection *evcon, struct ratelog *rl, uint64_t *counter,
                   const unsigned char a[16], const char *why, int limit)
{
	uint64_t held;
	(*counter)++;
	if (rl_pass(rl, &held)) {
		char ip[INET6_ADDRSTRLEN];
		ip_str(a, ip, sizeof ip);
		log_warnx("closing new connections %s (%d; latest from %s); %llu more refused since the "
		          "last report", why, limit, ip, (unsigned long long)held);
	}
	evhttp_connection_free(evcon);
}

/* Admit (or close) the connections evhttp made in this loop turn. */
static void admit(evutil_socket_t fd_, short ev, void *arg)
{
	(void)fd_; (void)ev; (void)arg;
	struct served *s = gate.s;
	long long now = mono_ms();
	for (size_t i = 0; i < gate.npending; i++) {
		struct bufferevent *bev = gate.pending[i];
		void *cbarg = NULL;
		bufferevent_getcb(bev, NULL, NULL, NULL, &cbarg);
		struct evhttp_connection *evcon = cbarg;
		int fd = (int)bufferevent_getfd(bev);
		if (!evcon || fd < 0 || evhttp_connection_get_bufferevent(evcon) != bev) {
			log_warnx("unexpected libevent state for a new connection: not tracked");
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		memset(&ss, 0, sizeof ss);
		getpeername(fd, (struct sockaddr *)&ss, &sl);
		unsigned char a[16];
		ip_key(&ss, a);
		if (gate.nactive >= s->max_conns) {
			refuse(evcon, &gate.rl_cap, s->c_conn_refused, a, "over max_connections", s->max_conns);
			continue;
		}
		struct ipent *ip = ip_get(a);
		if (ip->n >= s->max_conns_ip) {
			ip->n++;              /* ip_put below frees it if new */
			ip_put(ip);
			refuse(evcon, &gate.rl_ip, s->c_conn_refused_ip, a, "over max_connections_per_ip",
			       s->max_conns_ip);
			continue;
		}
		ip->n++;
		struct cslot *c = xcalloc(1, sizeof *c);
		c->evcon = evcon; c->ip = ip; c->fd = fd;
		c->phase = PH_HEADERS;
		c->deadline = now + s->header_timeout;
		if (fd >= gate.nbyfd) {
			int n = gate.nbyfd ? gate.nbyfd : 256;
			while (n <= fd) n *= 2;
			gate.byfd = xreallocarray(gate.byfd, (size_t)n, sizeof *gate.byfd);
			memset(gate.byfd + gate.nbyfd, 0, (size_t)(n - gate.nbyfd) * sizeof *gate.byfd);
			gate.nbyfd = n;
		}
		gate.byfd[fd] = c;
		if (gate.nactive == gate.cap_active) {
			gate.cap_active = gate.cap_active ? gate.cap_active * 2 : 256;
			gate.active = xreallocarray(gate.active, (size_t)gate.cap_active, sizeof *gate.active);
		}
		c->idx = gate.nactive;
		gate.active[gate.nactive++] = c;
		evhttp_connection_set_closecb(evcon, on_conn_close, NULL);
	}
	gate.npending = 0;
	*s->g_conns = gate.nactive;
	if (gate.backoff) gate.backoff = 0;      /* accepting again */
}

/* evhttp asks us for each accepted connection's bufferevent (no fd yet).
 * The connections accepted before this one in the same burst are complete
 * by now: admit (or close) them first, so a burst of accepts never holds
 * more than one unchecked descriptor. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	(void)arg;
	if (gate.npending) admit(-1, 0, NULL);
	struct bufferevent *bev = tls_bev(gate.s, base);
	if (!bev) return NULL;
	if (gate.npending == gate.cap_pending) {
		gate.cap_pending = gate.cap_pending ? gate.cap_pending * 2 : 64;
		gate.pending = xreallocarray(gate.pending, gate.cap_pending, sizeof *gate.pending);
	}
	gate.pending[gate.npending++] = bev;
	event_active(gate.admit_ev, EV_TIMEOUT, 1);
	return bev;
}

static void resume_accept(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	if (gate.lev) evconnlistener_enable(gate.lev);
}

static void accept_error(struct evconnlistener *lev, void *arg)
{
	(void)arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct served *s = gate.s;
	(*s->c_accept_errors)++;
	gate.backoff = gate.backoff ? gate.backoff * 2 : 50;
	if (gate.backoff > 1000) gate.backoff = 1000;
	uint64_t held;
	if (rl_pass(&gate.rl_accept, &held))
		log_warnx("accept failed: %s: pausing new connections (%d open; %llu more such errors "
		          "since the last report)", strerror(err), gate.nactive, (unsigned long long)held);
	evconnlistener_disable(lev);
	struct timeval tv = { gate.backoff / 1000, (gate.backoff % 1000) * 1000 };
	if (event_add(gate.resume_ev, &tv) < 0)
		evconnlistener_enable(lev);    /* no timer to resume it: never stay paused */
}

/* Deadlines: drop connections still reading a request past them. */
static void sweep(struct daemon *d, void *arg)
{
	(void)d;
	struct served *s = arg;
	long long now = mono_ms();
	for (int i = gate.nactive - 1; i >= 0; i--) {
		if (i >= gate.nactive) continue;
		struct cslot *c = gate.active[i];
		if (c->phase == PH_HANDLER || now < c->deadline) continue;
		(*(c->phase == PH_HEADERS ? s->c_header_timeouts : s->c_body_timeouts))++;
		slot_drop(c);
	}
}

static int has_body(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	return sp_has_body(evhttp_find_header(h, "Content-Length"), evhttp_find_header(h, "Transfer-Encoding"));
}

/* All headers are in: the body deadline starts, and the key is checked now
 * so an unauthorized body is never read. */
static int header_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct served *s = gate.s;
	gate.hook_seen = 1;
	struct cslot *c = slot_of(evhttp_request_get_connection(req));
	if (c) { c->phase = PH_BODY; c->deadline = mono_ms() + s->body_timeout; }
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	if (!has_body(req) || !path || served_early_ok(s, req, path)) return 0;
	(*s->c_unauthorized)++;
	(*s->c_early_refused)++;
	uint64_t held;
	if (rl_pass(&gate.rl_auth, &held))
		log_info("401 before the body for %s: %s (%llu more since the last report)",
		         path ? path : "?", served_auth_class(s, path) == AUTH_XMATRIX ?
		         "no X-Matrix Authorization header" : "missing or wrong bearer key",
		         (unsigned long long)held);
	static const char body[] = "{\"errcode\":\"M_UNAUTHORIZED\",\"error\":\"missing or wrong authorization\"}";
	char msg[320];
	int n = snprintf(msg, sizeof msg, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof body - 1, body);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
	int fd = bev ? (int)bufferevent_getfd(bev) : -1;
	if (fd >= 0 && !s->ssl_ctx && send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* best effort */ }
	return -1;                  /* evhttp closes the connection, body unread */
}

typedef struct evhttp_request *(*reqnew_fn)(void (*)(struct evhttp_request *, void *), void *);

struct evhttp_request *evhttp_request_new(void (*cb)(struct evhttp_request *, void *), void *arg)
{
	static reqnew_fn real;
	if (!real) {
		void *p = dlsym(RTLD_NEXT, "evhttp_request_new");
		if (!p) log_panic("dlsym(evhttp_request_new): %s", dlerror());
		memcpy(&real, &p, sizeof real);
	}
	struct evhttp_request *r = real(cb, arg);
	if (r && gate.s && gate.s->http && arg == gate.s->http) evhttp_request_set_header_cb(r, header_cb);
	return r;
}

static void on_complete(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct cslot *c = slot_of(evhttp_request_get_connection(req));
	if (c) { c->phase = PH_HEADERS; c->deadline = mono_ms() + gate.s->header_timeout; }
}

void gate_request(struct served *s, struct evhttp_request *req)
{
	if (!gate.hook_seen && !gate.hook_warned) {
		gate.hook_warned = 1;
		log_warnx("libevent's request hook is not reached: the header deadline covers whole "
		          "requests and the bearer key is checked after the body");
	}
	struct cslot *c = slot_of(evhttp_request_get_connection(req));
	if (!c) return;
	c->phase = PH_HANDLER;
	evhttp_request_set_on_complete_cb(req, on_complete, NULL);
	(void)s;
}

void gate_apply(struct served *s)
{
	struct config *cfg = &s->d->cfg;
	s->max_conns = (int)cfg_int(cfg, "served", "max_connections");
	s->max_conns_ip = (int)cfg_int(cfg, "served", "max_connections_per_ip");
	s->header_timeout = cfg_ms(cfg, "served", "header_timeout");
	s->body_timeout = cfg_ms(cfg, "served", "body_timeout");
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)s->max_conns + 64 > rl.rlim_cur)
		log_warnx("[served] max_connections = %d is not below the open file limit (%llu) less "
		          "64 for the store and stages: raise LimitNOFILE or lower it", s->max_conns,
		          (unsigned long long)rl.rlim_cur);
}

int gate_init(struct served *s, const char *listen)
{
	struct sockaddr_storage ss;
	int sl = sizeof ss;
	memset(&gate, 0, sizeof gate);
	gate.s = s;
	if (evutil_parse_sockaddr_port(listen, (struct sockaddr *)&ss, &sl) < 0) {
		log_err("[node] listen = '%s' is not HOST:PORT", listen);
		return EXIT_CONFIG;
	}
	gate_apply(s);
	gate.ipmask = 1023;
	gate.ipt = xcalloc(gate.ipmask + 1, sizeof *gate.ipt);
	gate.admit_ev = event_new(s->d->base, -1, 0, admit, NULL);
	gate.resume_ev = evtimer_new(s->d->base, resume_accept, NULL);
	if (!gate.admit_ev || !gate.resume_ev) fatalx("event_new failed");
	gate.lev = evconnlistener_new_bind(s->d->base, NULL, NULL,
	                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	                                511, (struct sockaddr *)&ss, sl);
	if (!gate.lev) {
		log_err("cannot listen on %s: %s", listen, strerror(errno));
		return EXIT_TEMP;
	}
	evconnlistener_set_error_cb(gate.lev, accept_error);
	/* Accepted sockets inherit TCP_NODELAY from the listener (Linux).
	 * Without it a keep-alive client stalls ~40 ms per large answer: the
	 * answer's last short segment waits for the client's delayed ACK. */
	int one = 1;
	setsockopt(evconnlistener_get_fd(gate.lev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	evhttp_set_bevcb(s->http, make_bev, NULL);
	if (!evhttp_bind_listener(s->http, gate.lev)) fatalx("evhttp_bind_listener failed");
	gate.sweep = daemon_timer(s->d, 200, sweep, s);
	return 0;
}

void gate_fini(struct served *s)
{
	(void)s;
	/* evhttp_free frees the listener and every connection (closecb: release). */
	if (gate.admit_ev) event_free(gate.admit_ev);
	if (gate.resume_ev) event_free(gate.resume_ev);
	gate.admit_ev = gate.resume_ev = NULL;
}

void gate_fini_after(void)
{
	while (gate.nactive) slot_release(gate.active[gate.nactive - 1]);
	free(gate.active); free(gate.byfd); free(gate.pending);
	if (gate.ipt) free(gate.ipt);
	memset(&gate, 0, sizeof gate);
}
