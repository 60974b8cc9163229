/* outbox.h: what the feed drains (only this module knows these bytes).
 * purgatoryd appends a row per accepted event; feedpump publishes rows and
 * writes back their state, moves a row refused max_attempts times to
 * feed_dead, moves the cursor and holds the drain lease; fedctl feed
 * retry moves a dead row back and rewinds the cursor.
 *   outbox     key u64 stream_pos  val JSON {"attempts","control_version",
 *                                      "event_id","last_error","published_ms"}
 *   feed_dead  key u64 stream_pos  val the outbox JSON at the time it moved
 *   leases     key "feedpump"      val JSON {"holder","pid","renewed","until_ms"}
 *              key "feed_cursor"   val u64: the first position that may still be
 *                                      unpublished (a drain never rescans what is done)
 * A row is "published" when control_version > 0. Published rows are kept:
 * they record which control version each event got. */
#ifndef FP_STORE_OUTBOX_H
#define FP_STORE_OUTBOX_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "store/store.h"

#define OUTBOX_ERR_MAX 200      /* last_error bytes kept per row */

struct outbox_row {
	char     event_id[256];
	int64_t  attempts;
	char     last_error[OUTBOX_ERR_MAX + 1];
	uint64_t control_version;     /* 0 = not published */
	int64_t  published_ms;        /* 0 = not published */
};

/* Parse a row (null/absent members = unset; last_error cut to
 * OUTBOX_ERR_MAX bytes at a whole UTF-8 character). 0, or -1 if malformed
 * (not a JSON object, or no event_id). */
int  outbox_row_parse(const void *p, size_t n, struct outbox_row *r);
/* Canonical JSON: {"attempts","control_version","event_id","last_error","published_ms"} */
void outbox_row_encode(struct buf *out, const struct outbox_row *r);
/* The position an outbox/feed_dead key names: 0, or -1 if it is not 8 bytes. */
int  outbox_key_pos(const MDB_val *k, uint64_t *pos);
/* Write r at pos in db (DB_OUTBOX or DB_FEED_DEAD); delete pos from db
 * (MDB_NOTFOUND if absent). 0 or the LMDB error. */
int  outbox_row_put(MDB_txn *t, struct store *s, int db, uint64_t pos, const struct outbox_row *r);
int  outbox_row_del(MDB_txn *t, struct store *s, int db, uint64_t pos);
/* A new unpublished row for event_id at the end of the outbox (pos must be
 * past every row: the stream position of the event just stored). */
int  outbox_append(MDB_txn *t, struct store *s, uint64_t pos, const char *event_id);

/* The drain cursor; 0 if never set. */
uint64_t outbox_cursor_get(MDB_txn *t, struct store *s);
int  outbox_cursor_put(MDB_txn *t, struct store *s, uint64_t pos);

/* feedpump's own commits (its write-backs and its lease), with one sync
 * instead of LMDB's two: the pages are synced as always, the meta page
 * that makes them current is only written (MDB_NOMETASYNC for these
 * commits only) and becomes durable with the next sync of the file: the
 * next commit of any process in the environment (feedpump's next
 * write-back, its lease renewal every lease_ttl/3, a purgatoryd store).
 * LMDB keeps the txn atomic and consistent; a process crash cannot undo
 * it; an OS crash before that next sync can undo this one txn, which is
 * harmless for these writes: a write-back undone leaves its rows
 * unpublished (re-published after the restart, resolved by event ID
 * within the stream's duplicate window), a lease undone is a lease no
 * live process holds. outbox_meta_sync(s, 0) relaxes every commit of
 * this process until outbox_meta_sync(s, 1): only for a process whose
 * commits all run on one thread (feedpump's loop). */
void outbox_meta_sync(struct store *s, int on);
int  outbox_commit_relaxed(MDB_txn *t, struct store *s);

/* The drain lease: one drainer at a time. */
struct lease_rec {
	char      holder[160];        /* "host:pid" */
	long long pid, until_ms, renewed;
};
void outbox_lease_encode(struct buf *out, const struct lease_rec *l);
/* 0, or -1 if not a JSON object (l is then all zero). */
int  outbox_lease_decode(const void *p, size_t n, struct lease_rec *l);
/* 0 (l set), MDB_NOTFOUND or MDB_CORRUPTED (l zeroed), or an LMDB error. */
int  outbox_lease_get(MDB_txn *t, struct store *s, struct lease_rec *l);
int  outbox_lease_put(MDB_txn *t, struct store *s, const struct lease_rec *l);
int  outbox_lease_del(MDB_txn *t, struct store *s);

#endif
