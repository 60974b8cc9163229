/* feedpump.h: private header of feedpump, the outbox drainer. */
#ifndef FEEDPUMP_H
#define FEEDPUMP_H
#include <stdint.h>
#include "core/daemon.h"
#include "store/store.h"
#include "store/outbox.h"
#include "feed/feed_sink.h"
#include "feed/feed_apply.h"
#include "feed/fleet_mac.h"
#include "matrix/json.h"
#include "store/purgatory.h"

/* A sink's error is kept whole in the outbox row. */
_Static_assert(FEED_ERR_MAX == OUTBOX_ERR_MAX, "the feed's error size is the outbox row's");

struct fp_slot {
	struct feed_event *ev;
	struct outbox_row *rows;
	struct buf         arena;
	size_t             n, send;
	uint64_t           skip_to;
};

struct feedpump {
	struct daemon    *d;
	struct feed_sink *sink;
	struct feed_opts  opts;             /* for opening the sink only: it points into
	                                       the configuration, so it is cleared then */
	char              sink_name[32];
	int               batch;
	int               max_attempts;
	long long         backoff_min, backoff_max, lease_ttl, interval;
	int               once;             /* --once: drain until empty, exit */
	int               once_done;        /* --once: the last write-back released the lease */
	/* lease */
	int               have_lease;
	long long         lease_until;      /* wall ms: the lease we last committed ends */
	long long         lease_writing;    /* until_ms of the lease write not yet committed */
	char              holder[160];
	char              waiting_for[200]; /* last "why" logged while waiting */
	/* scheduling */
	struct event     *drain_ev, *interval_ev, *renew_ev;
	long long         retry_at;         /* mono ms; 0 = no backoff */
	int               stopping;
	/* batches in flight: a ring of `window` slots (1 for a synchronous
	 * sink), oldest at `head`; collection continues at next_pos */
	struct fp_slot    *slots;
	int                window, head, inflight;
	uint64_t           next_pos;
	uint64_t           cur_in;          /* the stored cursor as last read/written */
	/* [fleet]: publishing to the fleet stream; apply = the fleet feed applied
	 * into this store (feedpump_apply.c) */
	int               fleet;
	struct feed_opts  apply_opts;
	struct fleet_key  fleet_key;        /* MACs on the fleet feed (feed/fleet_mac.h) */
	struct feed_apply apply;
	char              apply_consumer[200];
	struct event     *apply_ev;
	int               apply_warned, default_rv;
	struct json_doc   apply_doc, apply_pdoc;
	struct pdu_info   apply_pi;
	struct buf        apply_ids;        /* event IDs the apply txn in progress stored (JSON strings, comma-led) */
	struct buf        apply_told;       /* ... those of committed txns, for purgatoryd's wake */
	uint64_t         *c_fleet_wakes;
	uint64_t *c_fleet_applied;
	int64_t  *g_fleet_cursor;
	/* stats */
	uint64_t *c_published, *c_failed, *c_dead, *c_batches, *c_wakeups;
	int64_t  *g_cursor, *g_lease;
};

/* feedpump_lease.c */
int  fp_lease_acquire(struct feedpump *fp);                 /* 1 held, 0 waiting */
/* in a write txn: 0 still ours (renewed), -1 lost, >0 the LMDB error of the renewal */
int  fp_lease_check_renew(struct feedpump *fp, MDB_txn *t);
void fp_lease_release(struct feedpump *fp);
/* 0 renewed (or not held, or lost), else the LMDB error (txn aborted);
 * a failed renewal past the lease's end drops it (fp_lease_held). */
int  fp_lease_renew(struct feedpump *fp);
/* The txn that fp_lease_check_renew wrote into committed: the lease runs
 * from it. */
void fp_lease_committed(struct feedpump *fp);
/* Do we still hold the lease? Not once its end has passed without a
 * committed renewal: then have_lease is dropped (batches in flight too)
 * and draining waits for fp_lease_acquire. */
int  fp_lease_held(struct feedpump *fp);

/* feedpump_drain.c */
void fp_drain_schedule(struct feedpump *fp, long long delay_ms);
void fp_drain_init(struct feedpump *fp);
void fp_drain_flush(struct feedpump *fp);   /* wait out and drop batches in flight */
/* A new batch size: the pipeline is emptied (its batches are re-read and
 * re-published: the sink is idempotent) and its slots made again. */
void fp_drain_resize(struct feedpump *fp, int batch);

/* feedpump_apply.c */
void fp_apply_init(struct feedpump *fp, const char *node_id);
void fp_apply_fini(struct feedpump *fp);

#endif
