/* feed_apply.h: the applier pattern, written once (fedctl feed apply into a
 * consumer's own LMDB, feedpump's fleet apply into the node's store). One
 * step = one poll of a feed source and ONE write txn holding, per event,
 * the applied_events guard (key consumer \0 event_id, val u64 applied_ms),
 * the target's own writes, and the consumer's cursor (if the target keeps
 * one); the events are acked only after that txn committed. An event whose
 * guard is there, or that the target already holds, is skipped but still
 * acked (a redelivery after a crash between commit and ack is a no-op); an
 * event the target refuses (bad bytes) is logged, counted and acked: it
 * can never apply, and holding it would stall the consumer. */
#ifndef FP_FEED_APPLY_H
#define FP_FEED_APPLY_H
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include "feed/feed_source.h"

enum { FEED_APPLY_DONE = 0, FEED_APPLY_PRESENT = 1, FEED_APPLY_REFUSED = -1 };

struct feed_apply_target {
	void    *arg;
	/* A write txn, or NULL. */
	MDB_txn *(*begin)(void *arg);
	/* Commit (the txn is freed either way): 0 or the LMDB error. */
	int      (*commit)(void *arg, MDB_txn *t);
	/* After a failed write (txn already aborted/freed): 1 = redo the whole
	 * txn now (map grown), 0 = give up this step. Optional (NULL: 0). */
	int      (*write_failed)(void *arg, int rc);
	MDB_dbi  applied;          /* the applied_events database in the txn's env */
	/* Write one event: FEED_APPLY_DONE, FEED_APPLY_PRESENT (the target
	 * has it: skipped), FEED_APPLY_REFUSED (err says why), or an LMDB
	 * error (> 0: the txn is aborted). */
	int      (*apply)(void *arg, MDB_txn *t, const struct feed_item *it, char *err, size_t errlen);
	/* Optional: keep the cursor (the highest control version seen) in t. */
	int      (*cursor_put)(void *arg, MDB_txn *t, uint64_t cursor);
};

struct feed_apply {
	struct feed_source      *src;
	struct feed_apply_target tg;
	const char *consumer;      /* the guard's prefix */
	uint64_t    cursor;        /* poll from here (the source's since) */
	long long   applied, skipped, refused, commits;
	long        crash_at;      /* FP_TEST_CRASH_BEFORE_ACK: _exit(3) after that many commits */
	int         verbose;
};

/* Fill in the counters and the test hook; src, tg, consumer, cursor are the
 * caller's. */
void feed_apply_init(struct feed_apply *a);
/* One poll (up to max events, waiting up to wait_ms for the first) and its
 * txn and acks. Returns the number of events handled (0: none came), -1
 * with err if the source failed, -2 with err if the write failed (nothing
 * acked: the events come again after the source's ack wait). */
int  feed_apply_step(struct feed_apply *a, size_t max, long long wait_ms, char *err, size_t errlen);

#endif
