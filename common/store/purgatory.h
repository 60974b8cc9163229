/* purgatory.h (store): the purgatory module. It alone knows the bytes of
 * the tables purgatoryd writes for events it cannot store yet or will not
 * store -- purgatory, missing_index, expired, rejects -- and how an accepted
 * PDU becomes rows of the event store (events, stream, rooms,
 * room_extremities, room_servers, outbox). Every function works inside the
 * caller's transaction, so purgatoryd commits a whole loop turn at once;
 * fedctl reads these tables and originates or requeues events through the
 * inbox. Records other than these are store.h's. */
#ifndef FP_STORE_PURGATORY_H
#define FP_STORE_PURGATORY_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"
#include "store/events.h"
#include "store/outbox.h"
#include "matrix/json.h"
#include "matrix/pdu.h"
#include "core/buf.h"
#include "core/hmap.h"

#define PURG_DEPS_MAX 64        /* prev_events + auth_events we accept */
#define PURG_NAME_MAX 256

/* What the store needs from a PDU. deps = prev_events then auth_events,
 * duplicates removed. */
struct pdu_info {
	char    event_id[PDU_EVENT_ID_MAX];
	char    room_id[PURG_NAME_MAX];
	char    sender_server[PURG_NAME_MAX];
	char    origin[PURG_NAME_MAX];         /* "origin" member, "" if absent */
	char    type[128];
	int     is_create;                     /* m.room.create with state_key "" */
	int     create_rv;                     /* its content.room_version, else 0 */
	int64_t depth;
	int     ndeps, nprev;
	char    deps[PURG_DEPS_MAX][PDU_EVENT_ID_MAX];
};

/* Parse the fields above out of canonical PDU bytes (event_id is left as
 * is: the caller knows it). 0, or -1 with a reason in err. */
int  purg_pdu_parse(struct json_doc *d, const char *pdu, size_t n, struct pdu_info *pi,
                    char *err, size_t errlen);

/* Store an accepted, satisfiable event: events, stream (stream_next), rooms
 * (create / max_depth), room_extremities (+ this, - its prevs), room_servers
 * (sender's server, origin), outbox (key = stream pos). Returns 0 stored
 * (*pos set), 1 already stored (no-op), or an LMDB error. */
int  purg_store_event(MDB_txn *t, struct store *s, const struct pdu_info *pi, int rv,
                      int redacted, const char *pdu, size_t n, long long now,
                      uint64_t *pos);

/* A write batch: the rows that purg_store_event would rewrite for every
 * event of a room -- the room's max_depth, its forward extremities (each
 * event put, then deleted by its child), the room_servers check -- kept in
 * memory for one transaction and written once by purg_batch_flush, which
 * must run in the same transaction before it commits (purgatoryd does it
 * in its commit). The end state is the one the event-by-event writes give:
 * an extremity put and deleted in the same batch is never written (its
 * event was first stored in this transaction, so no row of it existed
 * before), a depth raise is written once with the batch's highest depth,
 * and a create event's room row is written at once and drops what was
 * pending for the room (its put replaced the row anyway). Readers of these
 * tables in other transactions see only committed state, flushed. */
struct purg_batch {
	MDB_txn    *t;                  /* the txn the pending rows belong to */
	struct hmap rows;               /* struct purg_brow by kind + key */
	size_t      nrows;
};
void purg_batch_init(struct purg_batch *b, MDB_txn *t);
/* Write what is pending into b->t: 0 or the LMDB error (the txn is then
 * dead: abort it). Empties b either way. */
int  purg_batch_flush(struct purg_batch *b, struct store *s);
/* Forget what is pending (the txn was aborted). */
void purg_batch_drop(struct purg_batch *b);
/* purg_store_event with a batch (NULL: every row written at once, as
 * purg_store_event does). b->t must be t. */
int  purg_store_event_b(struct purg_batch *b, MDB_txn *t, struct store *s,
                        const struct pdu_info *pi, int rv, int redacted, const char *pdu,
                        size_t n, long long now, uint64_t *pos);

/* Dependencies of pi not in events: copied to missing[], count returned. */
int  purg_missing(MDB_txn *t, struct store *s, const struct pdu_info *pi,
                  char missing[][PDU_EVENT_ID_MAX]);

/* rejects: key = next "rejects_next" seq. */
int  purg_reject_put(MDB_txn *t, struct store *s, const char *event_id, const char *reason,
                     const char *message, const char *from, const void *bytes, size_t n,
                     long long now);
/* The at_ms of the oldest reject (rows are in seq order, which is arrival
 * order): -1 if there is none. */
long long purg_reject_oldest_ms(MDB_txn *t, struct store *s);
/* Delete rejects older than before_ms, oldest first, at most max rows
 * (bounded work per call); *deleted = how many. 0 or the LMDB error. */
int  purg_rejects_prune(MDB_txn *t, struct store *s, long long before_ms, int max, int *deleted);

/* A held event's record: one row of purgatory (reason "") or of expired
 * (reason and expired_ms set). Stored as
 *   u8 1 (format) | u8 flags (1 = redacted) | u8 nmissing | u32 room_version |
 *   u64 attempts | u64 next_try_ms | u64 first_seen_ms | u64 expired_ms |
 *   str room_id | str from | str reason | nmissing x str event_id |
 *   canonical PDU bytes (rest)
 * (integers big-endian, str = u16 length + bytes), so reading a row costs
 * no JSON parse and its PDU is parsed once, by whoever needs its fields.
 * Rows written before this format are JSON objects ({"room_id",...,
 * "pdu":{...}}, first byte '{'): the decoder reads them too, and a row is
 * written in the binary format the next time it is written at all. */
#define PURG_REASON_MAX 640
struct hold_rec {
	char     room_id[PURG_NAME_MAX];
	char     from[PURG_NAME_MAX];
	int      nmissing;
	char     missing[PURG_DEPS_MAX][PDU_EVENT_ID_MAX];
	int64_t  attempts, next_try_ms, first_seen_ms, expired_ms;
	int      room_version, redacted;
	char     reason[PURG_REASON_MAX];
	const char *pdu; size_t pdu_len;     /* points into the decoded value */
};
/* Encode h (its PDU bytes included) into out (appended). */
void purg_hold_encode(struct buf *out, const struct hold_rec *h);
/* Decode a row (either format): 0, or -1 if it is not a whole record.
 * d is scratch for old JSON rows; h->pdu points into v. */
int  purg_hold_decode(struct json_doc *d, const void *v, size_t n, struct hold_rec *h);
/* The record as one JSON object (the old row format; what fedctl --json
 * shows): {"attempts",["expired_ms",]"first_seen_ms","from","missing":[..],
 * "next_try_ms","pdu":<PDU>,["reason",]"redacted","room_id","room_version"}. */
void purg_hold_json(struct buf *out, const struct hold_rec *h);

/* Hold an event: its purgatory row (key = event_id) and one missing_index
 * row per missing ID. scratch is the caller's (reused). 0 or LMDB error. */
int  purg_hold_put(MDB_txn *t, struct store *s, const char *event_id, const struct hold_rec *h,
                   struct buf *scratch);
/* Read a held row: 0, MDB_NOTFOUND, MDB_CORRUPTED (unreadable), or an LMDB
 * error. h->pdu points into the txn's map (copy it before writing in t). */
int  purg_hold_get(MDB_txn *t, struct store *s, int db, const char *event_id,
                   struct json_doc *d, struct hold_rec *h);
/* Unhold: delete the purgatory row and the missing_index rows of h's
 * missing IDs (absent rows are fine). 0 or LMDB error. */
int  purg_hold_del(MDB_txn *t, struct store *s, const char *event_id, const struct hold_rec *h);
/* The room's fetch pacing changed: write attempts and next_try_ms into the
 * held row. 0 written, 1 already so (nothing written), MDB_NOTFOUND,
 * MDB_CORRUPTED, or an LMDB error. */
int  purg_hold_set_pacing(MDB_txn *t, struct store *s, const char *event_id, int64_t attempts,
                          int64_t next_try_ms, struct json_doc *d, struct buf *scratch);
/* A growable list of event IDs (xalloc'd; free(l->v) when done). */
struct purg_idlist { char (*v)[PDU_EVENT_ID_MAX]; size_t n, cap; };
void purg_idlist_push(struct purg_idlist *l, const char *id);
/* The held events waiting for missing_id (missing_index rows
 * "missing_id \0 waiting_id"), appended to l. 0 or LMDB error. */
int  purg_waiters(MDB_txn *t, struct store *s, const char *missing_id, struct purg_idlist *l);
/* Delete one missing_index row (missing_id waited on by waiting_id). */
int  purg_waiter_del(MDB_txn *t, struct store *s, const char *missing_id, const char *waiting_id);
/* expired: the dead-letter row of an event that was held too long. */
int  purg_expired_put(MDB_txn *t, struct store *s, const char *event_id, const struct hold_rec *h,
                      struct buf *scratch);

/* Room forward extremities (ids and depths), at most max, deepest first. */
int  purg_extremities(MDB_txn *t, struct store *s, const char *room_id,
                      char ids[][PDU_EVENT_ID_MAX], int64_t *depths, int max);

/* The room version to use for a PDU: the rooms table, else the create's own
 * content.room_version, else dflt. */
int  purg_room_version_for(MDB_txn *t, struct store *s, const struct pdu_info *pi, int dflt);

/* Move an expired event back into the inbox (from = its original from) and
 * delete the expired row, in t. 0 (*seq set, bytes in *pdu), MDB_NOTFOUND. */
int  purg_requeue_expired(MDB_txn *t, struct store *s, const char *event_id,
                          uint64_t *seq, struct buf *pdu);

/* Server part of "@user:server" (or "" if none) into out. */
void purg_server_of(const char *user, size_t n, char *out, size_t cap);

#endif
