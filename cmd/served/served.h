/* served.h: private header of served, the node's federation HTTP endpoint
 * (libevent evhttp). Files: served_main.c (ops, routing, auth, errors),
 * served_fed.c (identity, events + long-poll), served_matrix.c (Matrix reads,
 * key document, key queries as a notary), served_recover.c (cache-warm recovery), served_conn.c
 * (the connection gate: caps, deadlines, early 401), served_parse.c (pure
 * request parsing), served_metrics.c (/metrics over every stage of the
 * stage table, /healthz), served_xauth.c (X-Matrix request authentication,
 * key fetches through fetchd), served_tls.c (HTTPS: the SSL_CTX, reload),
 * served_probe.c (/.well-known/matrix/server). */
#ifndef SERVED_H
#define SERVED_H
#include <stdint.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include "core/daemon.h"
#include "store/store.h"
#include "matrix/keys.h"
#include "core/vclock.h"
#include "matrix/pdu.h"
#include "served_parse.h"

#define SERVED_ID_MAX 256      /* longest event/room ID accepted in a path */

struct waiter;                 /* a parked long-poll request */
struct recover_job { char event_id[SERVED_ID_MAX]; long long queued_ms; uint64_t req_id;
                     long long sent_ms; char client[48]; };

/* [node] mode: sync (pull and serve), publish (serve only; served as in
 * sync), subscribe (pull only: the stream and the Matrix event reads are
 * refused 403 M_FORBIDDEN "this node does not publish", no cache-warm
 * recovery). */
enum node_mode { NODE_SYNC, NODE_PUBLISH, NODE_SUBSCRIBE };
extern const char *const node_mode_names[];

struct served {
	struct daemon     *d;
	enum node_mode     mode;
	struct evhttp     *http;
	struct signing_key key;
	struct old_key *old_keys;            /* <signing_key>.old: published as old_verify_keys */
	size_t          nold_keys;
	char               server_name[256];
	char               node_id[27];
	unsigned char      shared_hash[32];   /* generichash of the bearer key */
	int                auth;
	int                events_limit;
	size_t             events_max_bytes;
	long long          longpoll_max, longpoll_tick, stats_timeout;
	/* long-poll */
	struct waiter     *waiters;
	int                nwaiters, max_waiters, waiters_cap;
	struct event      *poll_ev;
	/* recovery */
	int                upstreams;          /* any configured */
	struct recover_job *rq;                /* ring buffer of queued jobs */
	int                rq_cap, rq_head, rq_len;
	struct recover_job *inflight;
	int                inflight_cap, ninflight;
	uint64_t           next_req_id;
	long long          claim_ttl, recover_timeout;
	int                rec_per_client;
	struct fleet_claims *fleet_claims;     /* [fleet]: claims in the fleet's KV (NULL: LMDB only) */
	int                fleet_claims_down;  /* falling back to LMDB (logged once) */
	/* counters */
	uint64_t *c_requests, *c_errors, *c_unauthorized, *c_proxied, *c_event_hits,
	         *c_event_misses, *c_rec_queued, *c_rec_dropped, *c_rec_dedup_local,
	         *c_rec_dedup_claim, *c_rec_claim_errors, *c_rec_sent, *c_rec_ok,
	         *c_rec_failed, *c_rec_pdus, *c_rec_expired, *c_longpolls, *c_events_served,
	         *c_rec_refused_id, *c_rec_client_capped, *c_claims_swept, *c_mode_forbidden;
	int64_t  *g_waiters, *g_rq, *g_inflight;
	/* connection gate (served_conn.c) */
	int                max_conns, max_conns_ip;
	long long          header_timeout, body_timeout;
	uint64_t *c_conn_refused, *c_conn_refused_ip, *c_accept_errors, *c_header_timeouts,
	         *c_body_timeouts, *c_early_refused;
	int64_t  *g_conns;
	/* X-Matrix (served_xauth.c) */
	int                matrix_auth;        /* 1: xmatrix, 0: open */
	int                fed_xmatrix;        /* a [peer] names its server_name */
	long long          key_wait;
	/* GET /event/{id}: the answer's bytes before origin_server_ts */
	struct buf         ev_prefix;
	/* TLS (served_tls.c) */
	void              *ssl_ctx;            /* SSL_CTX *, NULL: plain HTTP */
};

enum { XA_MATRIX, XA_FED };

/* served_main.c */
void served_json(struct evhttp_request *req, int code, const char *reason, struct buf *body);
/* Send req's answer: its output headers and output buffer as they are. */
void served_send(struct evhttp_request *req, int code, const char *reason);
/* Send req's output buffer as a JSON answer (Content-Type, Date, Content-
 * Length added); -1 (500 sent) when out of memory. */
int  served_json_send(struct evhttp_request *req, int code, const char *reason);
/* v in decimal, in out (returned: a pointer into out). */
char *served_u64(char out[24], uint64_t v);
void served_error(struct served *s, struct evhttp_request *req, int code, const char *errcode,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Percent-decode one path segment into out; -1 if too long or it decodes to
 * something with a NUL. */
int  served_segment(const char *seg, size_t n, char *out, size_t cap);
const char *served_query(struct evhttp_request *req, struct evkeyvalq *q, const char *key);
/* 403 M_FORBIDDEN "this node does not publish" (mode = subscribe; counted,
 * logged at most once a minute). */
void served_not_publishing(struct served *s, struct evhttp_request *req);
/* Whether the request carries the node's bearer key (or none is required). */
int  served_auth_ok(struct served *s, struct evhttp_request *req);

/* How a path is authorized. */
enum { AUTH_OPEN, AUTH_BEARER, AUTH_XMATRIX, AUTH_BEARER_OR_PEER };
int  served_auth_class(struct served *s, const char *path);
/* From the headers alone: whether req may still be authorized (its body is
 * worth reading). */
int  served_early_ok(struct served *s, struct evhttp_request *req, const char *path);
/* Route an authenticated request to its handler. */
void served_dispatch(struct served *s, struct evhttp_request *req);

/* served_probe.c: GET /.well-known/matrix/server ([served] well_known; 404 unset) */
void probe_well_known(struct served *s, struct evhttp_request *req);

/* served_xauth.c: check req's X-Matrix header (kind XA_MATRIX or XA_FED)
 * and dispatch it, now or once the origin's key is fetched; or refuse it
 * (401, 403). */
void xauth_check(struct served *s, struct evhttp_request *req, int kind);
int  xauth_on_frame(struct served *s, struct frame *f);   /* 1: a key fetch's answer */
void xauth_apply(struct served *s);
void xauth_init(struct served *s);
void xauth_fini(struct served *s);

/* served_tls.c: 0 (s->ssl_ctx set, or NULL when [node] tls_cert is empty),
 * or an exit code. tls_reload: a new pair, or the old one kept (logged). */
int  tls_init(struct served *s);
void tls_reload(struct served *s);
void tls_fini(struct served *s);
/* A bufferevent for an accepted connection: TLS when configured. */
struct bufferevent *tls_bev(struct served *s, struct event_base *base);

/* served_conn.c: listener, connection caps, deadlines, auth before body */
int  gate_init(struct served *s, const char *listen);
void gate_apply(struct served *s);           /* (re)read limits from d->cfg */
void gate_request(struct served *s, struct evhttp_request *req);  /* route() saw req */
void gate_fini(struct served *s);            /* before evhttp_free */
void gate_fini_after(void);                  /* after evhttp_free */

/* served_fed.c */
void fed_identity(struct served *s, struct evhttp_request *req);
void fed_events(struct served *s, struct evhttp_request *req);
void fed_node_clock(struct served *s, MDB_txn *t, struct vclock *vc);
void fed_init(struct served *s);
/* The mode became subscribe: parked long-polls are answered 403. */
void fed_mode_subscribe(struct served *s);
size_t fed_waiter_size(void);
void fed_fini(struct served *s);

/* served_matrix.c */
void mx_init(struct served *s);         /* after server_name is set */
void mx_fini(struct served *s);
void mx_event(struct served *s, struct evhttp_request *req, const char *id, int proxied);
/* The client's address as text (for per-client limits); "?" if unknown. */
const char *served_client(struct evhttp_request *req);
void mx_event_auth(struct served *s, struct evhttp_request *req, const char *room, const char *id);
void mx_state_ids(struct served *s, struct evhttp_request *req, const char *room);
void mx_get_missing(struct served *s, struct evhttp_request *req, const char *room);
void mx_backfill(struct served *s, struct evhttp_request *req, const char *room);
void mx_server_key(struct served *s, struct evhttp_request *req);
void mx_key_query(struct served *s, struct evhttp_request *req, const char *path);

/* served_recover.c */
void recover_init(struct served *s);
void recover_apply(struct served *s);      /* (re)read settings, upstreams */
void recover_miss(struct served *s, const char *event_id, const char *client);
void recover_on_frame(struct served *s, struct frame *f);
void recover_fini(struct served *s);

/* served_metrics.c */
void metrics_handle(struct served *s, struct evhttp_request *req);
void healthz_handle(struct served *s, struct evhttp_request *req);

#endif
