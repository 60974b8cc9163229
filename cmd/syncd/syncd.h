/* syncd.h: private header of syncd, the pull syncer: it pulls events from
 * each configured peer over HTTP (identity, key document, then pages of
 * events, long-polling when caught up) into the inbox and hands them on to
 * validated. Files: syncd_main.c (ops, options, HTTP requests through
 * core/curlev), syncd_peer.c (one state machine per peer: identity, keys,
 * pulls, backoff; a peer in subscribe mode), store/fedstate.c (federation_state records shared
 * with fedctl peers). */
#ifndef SYNCD_H
#define SYNCD_H
#include <stdint.h>
#include <curl/curl.h>
#include "core/curlev.h"
#include "core/daemon.h"
#include "store/store.h"
#include "core/vclock.h"
#include "matrix/keys.h"

enum peer_phase { PH_IDLE, PH_IDENTITY, PH_KEYS, PH_PULL, PH_LONGPOLL, PH_STOPPED };

struct peer {
	struct syncd      *sy;
	struct peer_cfg    cfg;              /* a copy: a reload frees the config */
	enum peer_phase    phase;
	int                active;           /* counted in peers_syncing */
	CURL              *easy;
	struct curl_slist *hdrs;
	struct buf         body;
	int                too_large;
	long long          lease_cap_ms;     /* > 0: this request's time was cut to the fleet lease's end */
	long long          lease_until;      /* ... that end, as the lease row said at the start */
	char               errbuf[CURL_ERROR_SIZE]; /* curl's own words for a failure */
	struct event      *timer;
	long long          wait_ms;          /* current failure backoff */
	long long          round_start;
	int                failures;
	char               last_kind[32];    /* error kind of the last failure */
	int                keys_ok;          /* key document stored this run */
	char               server_name[256];
	char               node_id[32];
	struct vclock      remote;           /* the peer's advertised clock */
	uint64_t           pulled;           /* events pulled this run */
	int                once_rc;
	int                pull_pending;     /* timer resumes a pull held back by backpressure */
	int                full_probe_ok;    /* store full, but a probe write just went through */
	int                retry_body;       /* the store was full: p->body holds a batch to write again */
	int                retry_longpoll;   /* ... which answered a long-poll */
};

struct syncd {
	struct daemon *d;
	struct curlev *curl;                 /* libcurl multi on the loop (core/curlev) */
	struct peer  **peers;                /* each its own allocation: timers and curl hold it */
	size_t         npeers;
	const char    *once_peer;            /* --once --peer NAME */
	int            once;
	long long      interval, backoff_max, longpoll, connect_timeout, timeout, low_speed_time;
	long long      max_body, inbox_high;
	int            batch;
	char           node_id[27];
	char           own[256];             /* [node] server_name: the origin we sign as */
	struct signing_key sk;               /* [node] signing_key: reread at a reload */
	uint64_t *c_pulls, *c_events, *c_skipped, *c_failures, *c_longpolls, *c_resent, *c_bytes;
	uint64_t *c_key_conflicts, *c_identity_refused, *c_store_full, *c_store_full_waits;
	int       fleet;                     /* [fleet] nats_url set: pull only leased peers */
	char      mode[16];                  /* [node] mode: sync | publish | subscribe */
	int       publish;                   /* mode = publish: no peer is pulled */
	uint64_t *c_peer_forbidden;          /* a peer said it does not publish (subscribe mode) */
	uint64_t *c_fleet_not_holder;
	int       full;                      /* the store was full: pulls stop until a write succeeds */
	/* (server, key ID) conflicts already logged: each is logged once. */
	char      conflicts_logged[32][320];
	unsigned  nconflicts_logged;
	int64_t  *g_active;
};

/* syncd_main.c */
int  syncd_http_start(struct peer *p, const char *path, long long extra_timeout_ms);

/* syncd_peer.c */
void peer_start(struct peer *p);
void peer_stop(struct peer *p);                 /* cancel its request and timer (not freed) */
void peer_reload(struct peer *p, const struct peer_cfg *nc);  /* apply a changed [peer] */
void peer_reschedule(struct peer *p);           /* an idle wait longer than the interval is cut */
void peer_http_done(struct peer *p, CURLcode rc);
void peer_resend_inbox(struct syncd *sy);

#include "store/fedstate.h"

#endif
