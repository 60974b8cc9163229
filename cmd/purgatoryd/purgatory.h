/* purgatory.h: purgatoryd's private state. LMDB holds every fact (purgatory,
 * missing_index, events...); memory holds only indexes rebuilt at startup:
 * held events by ID and grouped by room, and each room's fetch pacing. */
#ifndef PURGATORY_H
#define PURGATORY_H
#include <stddef.h>
#include <stdint.h>
#include "core/daemon.h"
#include "store/store.h"
#include "store/purgatory.h"
#include "core/hmap.h"

struct proom;

struct held {
	struct hmap_node hn;           /* in purgatoryd->held, by id */
	struct held  *rprev, *rnext;   /* the room's list, oldest first */
	struct proom *room;
	long long     first_seen_ms;
	char          id[PDU_EVENT_ID_MAX];
};

#define RECENT_MAX 256
struct proom {
	struct hmap_node hn;           /* in purgatoryd->rooms, by id */
	struct held  *head, *tail;
	size_t        nheld;
	long long     oldest_ms;       /* <= first_seen of every held event */
	long long     due_ms;          /* no fetch attempt before this */
	long long     backoff_ms;      /* 0, or the last wait after a fruitless attempt */
	int           inflight;        /* outstanding requests: the in-progress flag */
	int           gained;          /* new PDUs obtained by the current attempt */
	int           failures;        /* fruitless attempts in a row */
	long long     attempts;
	int           fetchd_wait;     /* fetchd was down: try again when it is up */
	int           idle_wait;       /* last attempt found nothing to ask (all waits were on
	                                  held events): the next hold here pulls due_ms in */
	int           dirty;           /* attempts/due_ms changed: rewrite the held rows'
	                                  attempts and next_try_ms at the end of the turn */
	/* IDs fetched lately: not asked for again while their verdicts are due */
	int           nrecent;
	long long     recent_ms;
	char        (*recent)[PDU_EVENT_ID_MAX];
	char          id[];
};

struct preq {                      /* an outstanding request to fetchd */
	struct preq  *next;
	uint64_t      id;
	struct proom *room;
	long long     deadline_ms;
	char          op[16];
};

struct verdict {                   /* one verdict waiting for the turn's commit */
	struct verdict *next;
	uint64_t  inbox;
	int       accept, redacted, rv;
	char      event_id[PDU_EVENT_ID_MAX];
	char      reason[64];
	char     *message, *from;
	char     *body;
	size_t    body_len;
};

struct tx {                        /* one write transaction in progress */
	MDB_txn  *t;
	long long now;
	uint64_t  last_pos;
	int       stored;
	int       err;                 /* the first failed write (the txn is dead) */
	struct purg_batch b;           /* room rows written once, at the commit */
};

struct purgatoryd {
	struct daemon *d;
	long long debounce, debounce_other, backoff_min, backoff_max, max_hold, tick, fetch_timeout, fetch_retry;
	long long commit_delay;        /* [purgatoryd] commit_delay (ms; 0 = every turn) */
	int       batch_max, fetch_limit, fetch_latest_max, fetch_events_max, fetch_servers_max;
	int       default_rv;
	char      server_name[PURG_NAME_MAX];

	struct hmap held;              /* struct held by event ID */
	struct hmap rooms;             /* struct proom by room ID */
	size_t    nheld, nrooms;       /* their counts (the gauges) */

	struct verdict *vq, **vq_tail;
	size_t    nvq;

	size_t    ndirty;              /* rooms with dirty set */

	struct preq *reqs;
	uint64_t  next_req;
	int       fetchd_waiting;      /* a send failed: retry when it connects */
	int       stalled;             /* the store is full: writes wait for the tick */
	int       full_logged;         /* said so (once per episode) */
	int       recheck_pending;     /* a recheck could not be written: redo it */
	uint64_t  dropped_full;        /* verdicts left in the inbox while stalled */
	long long rejects_keep;        /* [purgatoryd] rejects_keep (ms; 0 = keep all) */
	struct event *tick_ev;
	struct event *commit_ev;       /* one-shot: the oldest queued verdict waited commit_delay */
	int       commit_armed;
	int       flush_now;           /* stdin ended: no more gathering */

	struct json_doc doc, doc2;     /* scratch parsers */
	struct pdu_info *pi;
	struct hold_rec *hr;
	struct buf scratch;

	uint64_t *c_verdicts, *c_stored, *c_held, *c_released, *c_rejected, *c_dups,
	         *c_expired, *c_batches, *c_fetch_req, *c_fetch_ok, *c_fetch_fail,
	         *c_fetched, *c_bad_frames, *c_acl_blocked,
	         *c_rejects_pruned;
	int64_t  *g_held, *g_rooms, *g_inflight;
	struct purg_idlist ready;          /* held events attempt() found satisfiable */
};

/* purgatory_main.c */
void purgatory_params(struct purgatoryd *p);
int  purgatory_acl_ok(struct purgatoryd *p, const struct pdu_info *pi);
/* Did an event with this inbox from arrive by sync? (from is a configured
 * peer's server name as syncd pinned it in federation_state, or a [peer]
 * section's own name.) Picks debounce vs debounce_other. */
int  purgatory_by_sync(struct purgatoryd *p, MDB_txn *t, const char *from);

/* purgatory_hold.c: the in-memory indexes and the held rows */
struct held  *purgatory_held_find(struct purgatoryd *p, const char *id);
struct proom *purgatory_room_find(struct purgatoryd *p, const char *room_id);
struct proom *purgatory_room_get(struct purgatoryd *p, const char *room_id);
struct held  *purgatory_held_add(struct purgatoryd *p, const char *id, const char *room_id,
                                 long long first_seen);
void purgatory_held_remove(struct purgatoryd *p, struct held *h);
/* The room's attempt count / next try changed (an attempt started or ended). */
void purgatory_room_dirty(struct purgatoryd *p, struct proom *r);
/* Write attempts and next_try_ms into the held rows of every dirty room, in x
 * (the turn's transaction); only rows whose values differ are rewritten. */
void purgatory_persist_rooms(struct purgatoryd *p, struct tx *x);
void purgatory_hold(struct purgatoryd *p, struct tx *x, const struct pdu_info *pi, int rv,
                    int redacted, const char *from, const char *pdu, size_t n,
                    char missing[][PDU_EVENT_ID_MAX], int nmissing);
/* Delete a held event's rows (purgatory + its missing_index entries). */
void purgatory_unhold(struct purgatoryd *p, struct tx *x, const char *id, const struct hold_rec *h);
int  purgatory_load(struct purgatoryd *p);
/* Forget the held events in memory and read them again from the table
 * (after a txn that changed memory could not be committed). */
void purgatory_resync(struct purgatoryd *p);
void purgatory_expire_due(struct purgatoryd *p, long long now);
int  purgatory_drop(struct purgatoryd *p, const char *id);

/* purgatory_release.c */
/* An accepted verdict: store, or hold; then release what it satisfies. */
void purgatory_accept(struct purgatoryd *p, struct tx *x, struct verdict *v, const char *from);
void purgatory_release_waiters(struct purgatoryd *p, struct tx *x, const char *stored_id);
int  purgatory_try_release(struct purgatoryd *p, struct tx *x, const char *id);
void purgatory_recheck_all(struct purgatoryd *p);
/* Release what the ids make satisfiable, in one txn: held ones whose
 * parents are all stored are stored, held ones another writer stored leave
 * purgatory; with waiters, each id counts as stored and its waiters are
 * re-checked. -1 the txn failed (retry later), else the number stored. */
long purgatory_release_ids(struct purgatoryd *p, const struct purg_idlist *ids, int waiters);

/* purgatory_store.c: the write transaction and the verdict batch */
void purgatory_tx_begin(struct purgatoryd *p, struct tx *x);
/* A write in x failed: keep the first error; the txn is dead. */
void purgatory_tx_fail(struct tx *x, int rc, const char *what);
/* Commit (or, after a failure, abort) x. 0 committed; 1 the map was grown:
 * redo the whole txn now; -1 not written (the store is full: p->stalled
 * is set and the tick retries). On 1 and -1 the in-memory indexes have
 * been rebuilt from the store (they had followed the lost txn). */
int  purgatory_tx_commit(struct purgatoryd *p, struct tx *x);
int  purgatory_verdict_frame(struct purgatoryd *p, const struct frame *f, const char **why);
void purgatory_flush(struct purgatoryd *p);
void purgatory_verdict_free(struct verdict *v);

/* purgatory_fetch.c */
void purgatory_fetch_tick(struct purgatoryd *p, long long now);
void purgatory_fetch_result(struct purgatoryd *p, const struct frame *f);
/* An operator's request (FT_PURG_CTL: retry a room, drop a held event). */
void purgatory_control(struct purgatoryd *p, struct conn *c, const struct frame *f);
void purgatory_fetchd_up(struct purgatoryd *p);
void purgatory_fetchd_down(struct purgatoryd *p);

#endif
