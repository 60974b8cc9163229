/* fetch.h: fetchd's private header. One event loop owns every in-flight
 * fetch, the coalescing map, the admission queue and the per-server state;
 * nothing here is shared with another thread, so nothing is locked. */
#ifndef FETCHD_FETCH_H
#define FETCHD_FETCH_H
#include <sys/queue.h>
#include <stdint.h>
#include <curl/curl.h>
#include <event2/event_struct.h>
#include "core/daemon.h"
#include "store/store.h"
#include "core/fetchreq.h"
#include "core/hmap.h"
#include "core/iprange.h"
#include "core/resolve.h"
#include "matrix/keys.h"

struct fetch;
struct fetchd;
struct curlev;

/* A caller: one (connection, request id) interested in one fetch. */
struct waiter {
	struct fetch   *f;
	struct client  *cl;
	uint64_t        id;
	long long       t0;           /* mono ms when it asked */
	struct event   *timer;        /* its own timeout_ms, if any */
	TAILQ_ENTRY(waiter) f_link;   /* in f->waiters */
	TAILQ_ENTRY(waiter) c_link;   /* in cl->waiters */
};
TAILQ_HEAD(waiter_list, waiter);

/* One socket connection (or stdio) with its outstanding requests. */
struct client {
	struct conn        *c;
	struct waiter_list  waiters;
};

/* The answer every coalesced caller shares (ref-counted payload). */
struct outcome {
	int     refs;
	char   *payload;      /* meta line '\n' body (in the same allocation) */
	size_t  len;
};

/* Per upstream server: throttle, latency, cached health. */
struct server {
	char           *name;
	char            base[256];       /* URL prefix: cfg_server_url, or the current target's */
	char            conf_base[256];  /* what the configuration says (cfg_server_url) */
	char            key[256];        /* bearer key sent to it */
	char            ca[256];         /* CA file for https */
	struct hmap_node hn;             /* in fd->servers, by name */
	TAILQ_ENTRY(server) lru;         /* fd->lru: least recently used first */
	unsigned long   used_turn;       /* loop turn it was last handed out in */
	int             conf;            /* named by the configuration ([server], a [peer] endpoint) */
	int             check_addr;      /* connect only to public addresses (not conf, no proxy) */
	int             retired;         /* replaced at a reload: freed once idle (fd->retired) */
	int             active;          /* requests running now */
	double          tokens;          /* rate bucket */
	long long       tok_ms;
	TAILQ_HEAD(attempt_q, attempt) waitq;  /* attempts waiting for the throttle */
	struct attempt_q waitq_lo;        /* ... recoveries (FF_PROXIED): served after waitq */
	struct event   *wake;            /* rate-limit wakeup */
	long long       latency_ms;      /* EWMA of successful requests, 0 unknown */
	/* health as last read from LMDB */
	int             streak;
	long long       until_ms;
	char           *proxy;           /* from the environment, read once: "" none */
	char           *noproxy;
	CURLU          *base_uh;         /* base URL, parsed once (NULL: unparsable) */
	unsigned        base_gen;        /* bumped whenever base_uh is made anew */
	struct curl_slist *hdrs;         /* headers of a plain GET (shared) */
	CURL          **gets;            /* idle handles set up for a plain GET here */
	CURLU         **gets_uh;         /* ... each with its URL object (or NULL) */
	unsigned       *gets_gen;        /* ... made from base_uh of this generation */
	int             ngets;
	unsigned long   h_turn;          /* loop turn health was read in */
	/* Reached by name through the resolver (not conf, not through a
	 * proxy): core/resolve.h, cached in LMDB server_resolution. */
	int             resolved;
	int             rstate;          /* enum server_rstate */
	struct resolve_req *rq;          /* the lookup running for it (RS_RESOLVING) */
	struct resolve_target *targets;  /* the current resolution's, in order */
	int             ntargets, tidx;  /* ... and the one requests go to now */
	long long       rexp_ms;         /* wall ms the resolution is good until */
	unsigned long   rturn;           /* loop turn it was adopted in (good for that turn at least) */
	char            rwhy[128];       /* RS_FAILED: why */
	struct event   *rfail;           /* fails the waiting attempts (RS_FAILED) from the loop */
};

enum server_rstate { RS_NONE, RS_RESOLVING, RS_READY, RS_FAILED };

enum attempt_state { AT_WAITING, AT_RUNNING };

struct attempt {
	struct fetch   *f;
	struct server  *s;
	int             state;
	CURL           *easy;
	CURLU          *uh;              /* this request's URL, handed to curl parsed (kept with
	                                    a plain GET's handle: only path and query change) */
	unsigned        uh_gen;          /* the s->base_gen uh was copied from */
	struct curl_slist *hdrs;
	int             own_hdrs;        /* else hdrs is the server's shared list */
	char           *auth;            /* "Authorization: X-Matrix ..." (NULL: unsigned), in authbuf */
	struct buf      authbuf;         /* kept with a pooled attempt (its memory reused) */
	struct curl_slist auth_node;     /* auth, spliced into hdrs after any bearer */
	struct curl_slist bearer_node;   /* a copy of hdrs' first node (the bearer) */
	int             plain_get;       /* easy is set up for s's plain GET: back to s->gets */
	struct buf      body;
	char           *post;
	long long       t0;
	int             too_big;
	int             denied;          /* open_cb refused the address ([fetchd] ip_range_deny) */
	char            denied_why[96];  /* "127.0.0.1 in 127.0.0.0/8" */
	char            errbuf[CURL_ERROR_SIZE]; /* curl's own words for a failure (TLS names) */
	char            resolve_why[128]; /* the server's name did not resolve: why (resolve_failed) */
	struct resolve_lists lists;      /* CONNECT_TO / RESOLVE of its target while easy may use them */
	int             tidx;            /* the target it went to */
	TAILQ_ENTRY(attempt) f_link;
	TAILQ_ENTRY(attempt) s_link;
};

enum fetch_state { FS_QUEUED, FS_ACTIVE };

struct fetch {
	struct hmap_node hn;              /* in fd->map, by key */
	char           *key;  size_t keylen;
	int             state;
	uint16_t        flags;            /* FF_PROXIED */
	int             lo;               /* a recovery: after every other fetch (FETCH_LOW_PRIO) */
	struct fetch_req req;
	struct waiter_list waiters;
	int             nwaiters;
	/* candidates, ranked */
	char          **cand; int ncand, next;
	/* what was tried and why it failed */
	char          **tried; char **why; int ntried;
	int             n_timeouts;
	/* fan-out */
	struct fetch_fanout growth;
	int             width_max, attempts_max;
	int             round, attempts, running;
	TAILQ_HEAD(, attempt) attempts_list;
	struct event    deadline;         /* fetch_timeout (a common timeout) */
	int             has_deadline;
	long long       t0;
	TAILQ_ENTRY(fetch) q_link;        /* admission queue */
};

struct fetchd {
	struct daemon  *d;
	struct curlev  *curl;             /* libcurl multi on the loop (core/curlev) */
	/* coalescing map: struct fetch by key */
	struct hmap     map;
	TAILQ_HEAD(fetch_q, fetch) queue; int queued;  /* admission: queue before queue_lo */
	struct fetch_q  queue_lo;              /* recoveries (FF_PROXIED) */
	int             queued_lo;
	int             active;           /* FS_ACTIVE fetches (REQUESTS_MAX) */
	int             nwaiters;
	/* servers */
	struct hmap     servers;          /* struct server by name */
	TAILQ_HEAD(, server) lru;         /* every server, least recently used first */
	size_t          nsrv, servers_max;
	TAILQ_HEAD(, server) retired;     /* replaced at a reload, still busy (lru link) */
	/* config */
	int             requests_max, queue_max;
	long long       request_timeout, connect_timeout, fetch_timeout;
	const struct timeval *deadline_tv;   /* common timeout for fetch_timeout */
	struct timeval  deadline_plain;      /* ... when libevent has no common one left */
	size_t          response_max;
	int             width_max, attempts_max;
	int             srv_conc, srv_rate;
	long long       backoff_window, backoff_max;
	int             backoff_grace;
	int             checks_default;
	int             acl_open;         /* [acl] deny and allow both empty: every name allowed */
	int             room_version;
	char            own[256];         /* [node] server_name: the origin we sign as */
	struct iprange_list ip_deny, ip_allow;  /* [fetchd] ip_range_deny / _allow (reloaded) */
	struct signing_key sk;            /* [node] signing_key: reread at a reload */
	struct resolver *rs;              /* server name resolution ([node] resolver) */
	char            dns[256];         /* [node] resolver it was made with */
	char            ca_file[4096];    /* [node] ca_file: trusted besides the system's */
	struct resolution **rsave; int nrsave, caprsave;  /* results to store (on_turn) */
	int             stdin_eof;
	unsigned long   turn;             /* loop turns so far (from 1) */
	CURL          **easy_pool; int npool;
	struct attempt **attempt_pool; int napool;  /* freed attempts, their buffers kept */
	/* pending health updates, written in one txn per loop turn */
	struct health_upd *hq; int nhq, capq;
	/* counters */
	uint64_t *c_requests, *c_coalesced, *c_upstream, *c_ok, *c_not_found, *c_no_cand,
	         *c_busy, *c_cancelled, *c_timeout, *c_bad_answer, *c_revived, *c_queued,
	         *c_reply_dropped, *c_bad_request, *c_bad_names, *c_denied, *c_evicted,
	         *c_health_pruned, *c_health_errors, *c_busy_lo, *c_resolutions,
	         *c_resolve_cached, *c_resolve_failed, *c_resolve_errors;
	int64_t  *g_active, *g_queued, *g_waiters, *g_peak, *g_servers, *g_resolving;
};

/* Priority: a fetch made on behalf of another node (FF_PROXIED: served's
 * cache-warm recoveries) waits behind every other (purgatoryd, syncd,
 * validated's key fetches, fedctl), both for admission and in each
 * server's throttle, and may hold at most server_concurrency - 1 of a
 * server's slots, so the last one is always free for the others. */
#define FETCH_LOW_PRIO(flags) (((flags) & FF_PROXIED) != 0)

/* fetch_worker.c */
void fetch_submit(struct fetchd *fd, struct client *cl, uint64_t id, uint16_t flags,
                  struct fetch_req *req);       /* takes the req's contents */
void fetch_cancel(struct fetchd *fd, struct client *cl, uint64_t id, int reply);
void fetch_client_gone(struct fetchd *fd, struct client *cl);
void fetch_attempt_done(struct fetchd *fd, struct attempt *a, CURLcode cc, long status);
void fetch_shutdown(struct fetchd *fd);
void fetch_admit(struct fetchd *fd);             /* start queued fetches while slots are free */
int  fetch_idle(const struct fetchd *fd);
void fetch_reply_error(struct fetchd *fd, struct client *cl, uint64_t id, const char *error,
                 const char *why);

/* fetch_select.c: ranked candidates for a request (fills f->cand). */
void fetch_select(struct fetchd *fd, struct fetch *f);
void fetch_add_hints(struct fetchd *fd, struct fetch *f, char *const *hints, size_t n);
int  fetch_server_excluded(struct fetchd *fd, const char *name);

/* fetch_transport.c */
int  transport_init(struct fetchd *fd);
void transport_fini(struct fetchd *fd);
struct server *transport_server_get(struct fetchd *fd, const char *name);
int  transport_server_configured(struct fetchd *fd, const char *name);  /* [server NAME] exists */
struct attempt *transport_attempt_new(struct fetchd *fd);             /* zeroed but for buffers */
void transport_attempt_launch(struct fetchd *fd, struct attempt *a);   /* throttle, then run */
void transport_attempt_abort(struct fetchd *fd, struct attempt *a);    /* cancel, free */
void transport_attempt_free(struct fetchd *fd, struct attempt *a);
void transport_server_release(struct fetchd *fd, struct server *s);    /* a running request ended */
/* After a reload: servers whose configuration changed are rebuilt (retired
 * while busy), handles with old timeouts dropped, throttles re-run. */
void transport_reload(struct fetchd *fd, int timeouts_changed, int old_rate);
void transport_reap(struct fetchd *fd);          /* free retired servers gone idle */
/* The address policy ([fetchd] ip_range_deny / ip_range_allow) into fd: at
 * start and at each reload; -1 (old lists kept) with why in err. */
int  transport_policy_load(struct fetchd *fd, const struct config *c, char *err, size_t cap);
void transport_policy_free(struct fetchd *fd);
/* The resolver from [node] resolver and ca_file: at start (-1 with why:
 * a configuration error) and at each reload (a change makes a new one;
 * lookups running are started again on it; -1: the old one stays). */
int  transport_resolver_load(struct fetchd *fd, const struct config *c, char *err, size_t cap);
void transport_resolver_free(struct fetchd *fd);
void transport_resolutions_flush(struct fetchd *fd);   /* store finished ones (on_turn) */

/* fetch_validate.c: classify an answer. Returns 0 if it is acceptable,
 * else -1 with a short reason; *counts says whether it counts against the
 * server's health. */
int  fetch_check_answer(struct fetchd *fd, struct fetch *f, struct attempt *a,
                        long status, char *why, size_t cap, int *counts);

/* fetch_health.c */
enum health_kind { H_OK, H_FAIL, H_GONE };      /* GONE: HTTP 410 */
void health_note(struct fetchd *fd, struct server *s, int kind, const char *err,
                 long long latency_ms);
void health_flush(struct fetchd *fd);
void health_fini(void);           /* one write txn for the turn */
void health_room_seen(struct fetchd *fd, const char *room, const char *server);
void health_load(struct fetchd *fd, struct server **s, int n);   /* refresh cache */
/* Rank class: 0 reachable, 1 deprioritized, 2 backed off. */
int  health_class(struct fetchd *fd, const struct server *s, long long now);

#endif
