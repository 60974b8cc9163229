/* test_curlev.c: core/curlev.h against a real HTTP server (libevent's
 * evhttp on 127.0.0.1, in the same loop). Concurrent transfers each come
 * back once with their private pointer, status and body; a done callback
 * may start the next transfer; sockets opened through curlev_socket_open
 * are reused across transfers (one connect for a run of requests) and stay
 * registered with the loop, for reading only, while idle; an idle one the
 * server closes is dropped from the loop and the next transfer still
 * works; they are closed through curlev_socket_close at curlev_free. A
 * refused connection and a timeout come back as curl errors; a removed
 * transfer never comes back. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include "core/buf.h"
#include "core/curlev.h"
#include "../lib/tap.h"

static struct event_base *base;
static struct curlev *ce;
static int port;
static int n_slow_held;

/* ---- the server -------------------------------------------------------- */

static void srv_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	(void)arg;
	if (!strcmp(uri, "/slow")) { n_slow_held++; return; }   /* never answered */
	struct evbuffer *b = evbuffer_new();
	if (!strcmp(uri, "/missing")) {
		evbuffer_add_printf(b, "no");
		evhttp_send_reply(req, 404, "Not Found", b);
	} else {
		evbuffer_add_printf(b, "hello %s", uri);
		evhttp_send_reply(req, 200, "OK", b);
	}
	evbuffer_free(b);
}

/* ---- the client -------------------------------------------------------- */

struct xfer {
	CURL      *e;
	struct buf body;
	int        done;      /* times done was called */
	CURLcode   rc;
	long       status;
	int        chain;     /* start this many more on the same handle from done */
	long       connects;  /* new connections over its transfers */
};

static int n_done, n_expect, n_opened, n_closed, priv_ok = 1;
static curl_socket_t last_sock = -1;     /* the socket open_cb made last */

static size_t write_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	buf_add(&x->body, p, sz * n);
	return sz * n;
}

static curl_socket_t open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)arg; (void)purpose;
	n_opened++;
	return last_sock = curlev_socket_open(ce, a);
}

static int close_cb(void *arg, curl_socket_t s)
{
	n_closed++;
	return curlev_socket_close(arg, s);
}

static void xfer_setup(struct xfer *x, const char *path, long timeout_ms, int own_sockets)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	if (!x->e) x->e = curl_easy_init();
	buf_reset(&x->body);
	curl_easy_setopt(x->e, CURLOPT_URL, url);
	curl_easy_setopt(x->e, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->e, CURLOPT_PROXY, "");
	curl_easy_setopt(x->e, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (own_sockets) {
		curl_easy_setopt(x->e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
		curl_easy_setopt(x->e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
		curl_easy_setopt(x->e, CURLOPT_CLOSESOCKETDATA, ce);
	} else {
		curl_easy_setopt(x->e, CURLOPT_FORBID_REUSE, 1L);   /* leaves no connection behind */
	}
}

static void done_cb(void *arg, CURL *e, void *priv, CURLcode rc, long status)
{
	struct xfer *x = priv;
	long nc = 0;
	if (arg != (void *)&n_done || !x || x->e != e) { priv_ok = 0; return; }
	x->done++;
	x->rc = rc;
	x->status = status;
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
	x->connects += nc;
	if (x->chain > 0) {         /* the handle is out of the multi: reuse it now */
		x->chain--;
		xfer_setup(x, "/again", 5000, 1);
		if (curlev_add(ce, e) < 0) priv_ok = 0;
		return;
	}
	if (++n_done >= n_expect) event_base_loopbreak(base);
}

/* Run the loop until n transfers ended (or a guard timer: a hang is a
 * failure, not a wait). 0 when they all ended. */
static int run(int n)
{
	struct timeval guard = { 20, 0 };
	n_done = 0;
	n_expect = n;
	event_base_loopexit(base, &guard);
	event_base_dispatch(base);
	return n_done >= n ? 0 : -1;
}

static void spin(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* The events the loop watches on fd (the client's end: the server's events
 * are on other fds). */
struct watch_q { evutil_socket_t fd; short what; };
static int watch_cb(const struct event_base *b, const struct event *ev, void *arg)
{
	struct watch_q *q = arg;
	(void)b;
	if (event_get_fd(ev) == q->fd) q->what |= event_get_events(ev) & (EV_READ | EV_WRITE);
	return 0;
}

static short watched(curl_socket_t fd)
{
	struct watch_q q = { fd, 0 };
	event_base_foreach_event(base, watch_cb, &q);
	return q.what;
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &l) < 0) return -1;
	close(s);                  /* nobody listens there now: connections are refused */
	return ntohs(a.sin_port);
}

int main(void)
{
	base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	TAP_OK(base && http && bs, "an HTTP server on 127.0.0.1");
	if (!bs) return tap_done();
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	evhttp_set_gencb(http, srv_cb, NULL);

	ce = curlev_new(base, done_cb, &n_done);
	TAP_OK(ce && curlev_multi(ce), "curlev_new");

	/* 1. concurrent transfers, plain sockets (curl's own, closed after use) */
	enum { N = 16 };
	struct xfer xs[N];
	memset(xs, 0, sizeof xs);
	int added = 0;
	for (int i = 0; i < N; i++) {
		char path[32];
		buf_init(&xs[i].body);
		snprintf(path, sizeof path, i == N - 1 ? "/missing" : "/ok/%d", i);
		xfer_setup(&xs[i], path, 5000, 0);
		added += curlev_add(ce, xs[i].e) == 0;
	}
	TAP_OK(added == N, "%d transfers added", N);
	TAP_OK(run(N) == 0, "every transfer ended");
	int good = priv_ok;
	for (int i = 0; i < N - 1; i++) {
		char want[32];
		snprintf(want, sizeof want, "hello /ok/%d", i);
		good &= xs[i].done == 1 && xs[i].rc == CURLE_OK && xs[i].status == 200 &&
		        xs[i].body.len == strlen(want) && !memcmp(xs[i].body.data, want, xs[i].body.len);
	}
	TAP_OK(good, "each came back once with its private pointer, 200 and its own body");
	TAP_OK(xs[N - 1].done == 1 && xs[N - 1].rc == CURLE_OK && xs[N - 1].status == 404,
	       "a 404 is a finished transfer with status 404");
	for (int i = 0; i < N; i++) { curl_easy_cleanup(xs[i].e); buf_free(&xs[i].body); }

	evhttp_set_timeout(http, 1);    /* for connections accepted from now on (3.) */
	/* 2. sockets of ours: a run of transfers chained from done on one
	 * handle reuses one connection */
	struct xfer c = { 0 };
	buf_init(&c.body);
	xfer_setup(&c, "/first", 5000, 1);
	c.chain = 5;
	n_opened = n_closed = 0;
	TAP_OK(curlev_add(ce, c.e) == 0 && run(1) == 0, "six transfers chained from the done callback");
	TAP_OK(priv_ok && c.done == 6 && c.rc == CURLE_OK && c.status == 200 &&
	       c.body.len == strlen("hello /again") && !memcmp(c.body.data, "hello /again", c.body.len),
	       "each ended once, the last with its body");
	TAP_OK(n_opened == 1 && c.connects == 1, "one socket opened, one connect for six transfers (opened %d, connects %ld)",
	       n_opened, c.connects);
	TAP_OK(watched(last_sock) == EV_READ, "the idle connection's socket stays registered, for reading only");

	/* 3. the server closes the idle connection (evhttp's timeout): the
	 * next transfer still works, on a new connection */
	xfer_setup(&c, "/x", 5000, 1);
	TAP_OK(curlev_add(ce, c.e) == 0 && run(1) == 0 && c.status == 200, "a transfer (server idle timeout 1 s)");
	curl_socket_t idle = last_sock;
	spin(2500);                /* the server drops the idle connection meanwhile */
	TAP_OK(watched(idle) == 0, "the idle socket that became readable (server closed) is no longer watched");
	xfer_setup(&c, "/after-close", 5000, 1);
	c.connects = 0;
	TAP_OK(curlev_add(ce, c.e) == 0 && run(1) == 0 && c.rc == CURLE_OK && c.status == 200 &&
	       c.body.len == strlen("hello /after-close"),
	       "after the server closed the idle connection, the next transfer succeeds");
	TAP_OK(c.connects == 1 && n_opened == 2, "... on a new connection (opened %d)", n_opened);
	evhttp_set_timeout(http, 60);

	/* 4. connection refused */
	int dead = free_port();
	struct xfer r = { 0 };
	buf_init(&r.body);
	xfer_setup(&r, "/", 5000, 1);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead);
	curl_easy_setopt(r.e, CURLOPT_URL, url);
	TAP_OK(dead > 0 && curlev_add(ce, r.e) == 0 && run(1) == 0, "a transfer to a closed port ended");
	TAP_OK(r.done == 1 && r.rc == CURLE_COULDNT_CONNECT && r.status == 0,
	       "... as CURLE_COULDNT_CONNECT, status 0 (got %d: %s)", r.rc, curl_easy_strerror(r.rc));

	/* 5. a timeout: the server holds the request */
	struct xfer t = { 0 };
	buf_init(&t.body);
	xfer_setup(&t, "/slow", 300, 1);
	TAP_OK(curlev_add(ce, t.e) == 0 && run(1) == 0, "a transfer the server never answers ended");
	TAP_OK(t.done == 1 && t.rc == CURLE_OPERATION_TIMEDOUT && n_slow_held == 1,
	       "... as CURLE_OPERATION_TIMEDOUT (got %d: %s)", t.rc, curl_easy_strerror(t.rc));

	/* 6. a removed transfer never comes back; the loop stays usable */
	struct xfer g = { 0 };
	buf_init(&g.body);
	xfer_setup(&g, "/slow", 0, 1);
	TAP_OK(curlev_add(ce, g.e) == 0, "a long transfer added");
	spin(200);
	curlev_remove(ce, g.e);
	curlev_remove(ce, g.e);       /* twice: a no-op */
	xfer_setup(&c, "/later", 5000, 1);
	TAP_OK(curlev_add(ce, c.e) == 0 && run(1) == 0 && c.status == 200, "a later transfer ended");
	TAP_OK(g.done == 0 && n_slow_held == 2, "the removed one never came back");

	/* 7. free: cached connections are closed through curlev_socket_close */
	curl_easy_cleanup(c.e); curl_easy_cleanup(r.e); curl_easy_cleanup(t.e); curl_easy_cleanup(g.e);
	int before = n_closed;
	curlev_free(ce);
	TAP_OK(n_closed > before && n_closed == n_opened,
	       "curlev_free closed the cached connection through the close callback (%d opened, %d closed)",
	       n_opened, n_closed);
	buf_free(&c.body); buf_free(&r.body); buf_free(&t.body); buf_free(&g.body);
	evhttp_free(http);
	event_base_free(base);
	return tap_done();
}
