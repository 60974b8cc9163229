/* curlev.c: see curlev.h. The socket-action form of libcurl's multi
 * interface: CURLMOPT_SOCKETFUNCTION registers and unregisters one event
 * per socket, CURLMOPT_TIMERFUNCTION arms one timer, and after every
 * curl_multi_socket_action the finished transfers are read off and handed
 * to the owner. */
#include "core/curlev.h"
#include "core/log.h"
#include "core/xalloc.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/event_struct.h>

/* One per socket fd curl gives us, in a table indexed by fd (sockets are
 * small integers; an entry is reused when the kernel reuses the fd).
 * Sockets of ours stay registered while their connection idles in curl's
 * cache (curl says REMOVE after each transfer and IN again on reuse): only
 * a real change of the wanted events costs an epoll_ctl; curlev_socket_close
 * unregisters them before the fd is closed. Other sockets (resolver pipes,
 * connections of handles without our open/close callbacks) are dropped at
 * REMOVE, as curl may close them behind our back. */
struct sockinfo {
	struct event ev;
	short kind;          /* registered events, 0 if none */
	int   watched;       /* curl wants events on it now */
	int   ours;          /* opened by curlev_socket_open, closed by curlev_socket_close */
};

struct curlev {
	struct event_base *base;
	CURLM             *multi;
	struct event       timer;
	curlev_done_fn    *done;
	void              *arg;
	struct sockinfo  **socks;
	size_t             nsocks;
};

static void check_multi_info(struct curlev *ce)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(ce->multi, &left))) {
		if (m->msg != CURLMSG_DONE) continue;
		CURL *e = m->easy_handle;
		CURLcode cc = m->data.result;
		void *priv = NULL;
		long status = 0;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&priv);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(ce->multi, e);
		ce->done(ce->arg, e, priv, cc, status);
	}
}

static struct sockinfo *sock_info(struct curlev *ce, curl_socket_t s)
{
	if ((size_t)s >= ce->nsocks) {
		size_t n = ce->nsocks ? ce->nsocks : 64;
		while (n <= (size_t)s) n *= 2;
		ce->socks = xreallocarray(ce->socks, n, sizeof *ce->socks);
		memset(ce->socks + ce->nsocks, 0, (n - ce->nsocks) * sizeof *ce->socks);
		ce->nsocks = n;
	}
	if (!ce->socks[s]) ce->socks[s] = xcalloc(1, sizeof **ce->socks);
	return ce->socks[s];
}

static void sock_unregister(struct sockinfo *si)
{
	if (si->kind) event_del(&si->ev);
	si->kind = 0;
}

static void sock_event_cb(evutil_socket_t s, short kind, void *arg)
{
	struct curlev *ce = arg;
	struct sockinfo *si = ce->socks[s];
	int running, action = (kind & EV_READ ? CURL_CSELECT_IN : 0) |
	                      (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
	if (!si->watched) {
		/* An idle cached connection became readable (the server closed
		 * it): stop watching; curl notices when it next checks it. */
		sock_unregister(si);
		return;
	}
	curl_multi_socket_action(ce->multi, s, action, &running);
	check_multi_info(ce);
}

static void timer_cb(evutil_socket_t s, short kind, void *arg)
{
	struct curlev *ce = arg;
	int running;
	(void)s; (void)kind;
	curl_multi_socket_action(ce->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(ce);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct curlev *ce = userp;
	(void)e; (void)sockp;
	if (s < 0) return 0;
	struct sockinfo *si = sock_info(ce, s);
	if (what == CURL_POLL_REMOVE) {
		si->watched = 0;
		/* Keep an idle socket of ours registered for reading only (a
		 * registered write interest would fire at once, forever). Others
		 * curl may close behind our back: dropped now. */
		if (!si->ours || si->kind != EV_READ) sock_unregister(si);
		return 0;
	}
	short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
	                     (what & CURL_POLL_OUT ? EV_WRITE : 0));
	si->watched = 1;
	if (si->kind == kind) return 0;            /* already registered so */
	sock_unregister(si);
	event_assign(&si->ev, ce->base, s, kind | EV_PERSIST, sock_event_cb, ce);
	event_add(&si->ev, NULL);
	si->kind = kind;
	return 0;
}

static int timer_set(CURLM *m, long timeout_ms, void *userp)
{
	struct curlev *ce = userp;
	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(&ce->timer);
	} else {
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		evtimer_add(&ce->timer, &tv);
	}
	return 0;
}

struct curlev *curlev_new(struct event_base *base, curlev_done_fn *done, void *arg)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("curl_global_init failed");
		return NULL;
	}
	CURLM *multi = curl_multi_init();
	if (!multi) {
		log_err("curl_multi_init failed");
		curl_global_cleanup();
		return NULL;
	}
	struct curlev *ce = xcalloc(1, sizeof *ce);
	ce->base = base;
	ce->multi = multi;
	ce->done = done;
	ce->arg = arg;
	evtimer_assign(&ce->timer, base, timer_cb, ce);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, ce);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_set);
	curl_multi_setopt(multi, CURLMOPT_TIMERDATA, ce);
	return ce;
}

void curlev_free(struct curlev *ce)
{
	if (!ce) return;
	curl_multi_cleanup(ce->multi);       /* closes cached connections (curlev_socket_close) */
	for (size_t i = 0; i < ce->nsocks; i++) {
		if (ce->socks[i]) sock_unregister(ce->socks[i]);
		free(ce->socks[i]);
	}
	free(ce->socks);
	evtimer_del(&ce->timer);
	free(ce);
	curl_global_cleanup();
}

CURLM *curlev_multi(struct curlev *ce)
{
	return ce->multi;
}

int curlev_add(struct curlev *ce, CURL *easy)
{
	return curl_multi_add_handle(ce->multi, easy) == CURLM_OK ? 0 : -1;
}

void curlev_remove(struct curlev *ce, CURL *easy)
{
	curl_multi_remove_handle(ce->multi, easy);
}

curl_socket_t curlev_socket_open(struct curlev *ce, const struct curl_sockaddr *a)
{
	curl_socket_t s = socket(a->family, a->socktype, a->protocol);
	if (s != CURL_SOCKET_BAD) {
		struct sockinfo *si = sock_info(ce, s);
		sock_unregister(si);          /* a stale one, should never be */
		si->watched = 0;
		si->ours = 1;
	}
	return s;
}

int curlev_socket_close(void *arg, curl_socket_t s)
{
	struct curlev *ce = arg;
	if (s >= 0 && (size_t)s < ce->nsocks && ce->socks[s]) {
		sock_unregister(ce->socks[s]);
		ce->socks[s]->watched = 0;
		ce->socks[s]->ours = 0;
	}
	return close(s);
}

struct curl_slist *curlev_header(struct curl_slist *l, const char *header)
{
	struct curl_slist *n = curl_slist_append(l, header);
	if (!n) log_panic("out of memory");
	return n;
}
