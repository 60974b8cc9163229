/* pstore.h: the event store's record helpers, shared by purgatoryd (the only
 * writer of events/stream/rooms/outbox/purgatory/missing_index/rejects/
 * expired) and fedctl (which reads them, and originates or requeues events
 * through the inbox). Layouts are those of store.h; this file owns how an
 * accepted PDU becomes rows, in one caller-supplied write transaction. */
#ifndef FP_PSTORE_H
#define FP_PSTORE_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"
#include "matrix/json.h"
#include "matrix/pdu.h"
#include "core/buf.h"

#define PSTORE_DEPS_MAX 64          /* prev_events + auth_events we accept */
#define PSTORE_NAME_MAX 256

/* What the store needs from a PDU. deps = prev_events then auth_events,
 * duplicates removed. */
struct pdu_info {
	char    event_id[PDU_EVENT_ID_MAX];
	char    room_id[PSTORE_NAME_MAX];
	char    sender_server[PSTORE_NAME_MAX];
	char    origin[PSTORE_NAME_MAX];       /* "origin" member, "" if absent */
	char    type[128];
	int     is_create;                     /* m.room.create with state_key "" */
	int     create_rv;                     /* its content.room_version, else 0 */
	int64_t depth;
	int     ndeps, nprev;
	char    deps[PSTORE_DEPS_MAX][PDU_EVENT_ID_MAX];
};

/* Parse the fields above out of canonical PDU bytes (event_id is left as
 * is: the caller knows it). 0, or -1 with a reason in err. */
int  pstore_pdu_parse(struct json_doc *d, const char *pdu, size_t n, struct pdu_info *pi,
                      char *err, size_t errlen);

/* Store an accepted, satisfiable event: events, stream (stream_next), rooms
 * (create / max_depth), room_extremities (+ this, - its prevs), room_servers
 * (sender's server, origin), outbox (key = stream pos). Returns 0 stored
 * (*pos set), 1 already stored (no-op), or an LMDB error. */
int  pstore_store_event(MDB_txn *t, struct store *s, const struct pdu_info *pi, int rv,
                        int redacted, const char *pdu, size_t n, long long now,
                        uint64_t *pos);

/* Dependencies of pi not in events: copied to missing[], count returned. */
int  pstore_missing(MDB_txn *t, struct store *s, const struct pdu_info *pi,
                    char missing[][PDU_EVENT_ID_MAX]);

/* rejects: key = next "rejects_next" seq. */
int  pstore_reject_put(MDB_txn *t, struct store *s, const char *event_id, const char *reason,
                       const char *message, const char *from, const void *bytes, size_t n,
                       long long now);
/* The at_ms of the oldest reject (rows are in seq order, which is arrival
 * order): -1 if there is none. */
long long pstore_reject_oldest_ms(MDB_txn *t, struct store *s);
/* Delete rejects older than before_ms, oldest first, at most max rows
 * (bounded work per call); *deleted = how many. 0 or the LMDB error. */
int  pstore_rejects_prune(MDB_txn *t, struct store *s, long long before_ms, int max, int *deleted);

/* A purgatory (or expired, when reason != NULL) record. */
struct hold_rec {
	char     room_id[PSTORE_NAME_MAX];
	char     from[PSTORE_NAME_MAX];
	int      nmissing;
	char     missing[PSTORE_DEPS_MAX][PDU_EVENT_ID_MAX];
	int64_t  attempts, next_try_ms, first_seen_ms, expired_ms;
	int      room_version, redacted;
	char     reason[640];
	const char *pdu; size_t pdu_len;     /* points into the parsed record */
};
void pstore_hold_encode(struct buf *out, const struct hold_rec *h);  /* reason "" = purgatory */
int  pstore_hold_decode(struct json_doc *d, const char *v, size_t n, struct hold_rec *h);

/* Room forward extremities (ids and depths), at most max, deepest first. */
int  pstore_extremities(MDB_txn *t, struct store *s, const char *room_id,
                        char ids[][PDU_EVENT_ID_MAX], int64_t *depths, int max);
/* Known servers of a room (room_servers), at most max; returns count. */
int  pstore_room_servers(MDB_txn *t, struct store *s, const char *room_id,
                         char out[][PSTORE_NAME_MAX], int max);
/* rooms record: create event id and max depth; 0 or MDB_NOTFOUND. */
int  pstore_room_get(MDB_txn *t, struct store *s, const char *room_id, int *rv,
                     uint64_t *max_depth, char *create_id, size_t cap);

/* Iterate the keys of a db whose key starts with prefix[0..plen). cb returns
 * 0 to go on, 1 to stop. Returns 0 or an LMDB error. */
int  pstore_prefix_each(MDB_txn *t, struct store *s, int db, const void *prefix, size_t plen,
                        int (*cb)(void *arg, const MDB_val *k, const MDB_val *v), void *arg);

/* The room version to use for a PDU: the rooms table, else the create's own
 * content.room_version, else dflt. */
int  pstore_room_version_for(MDB_txn *t, struct store *s, const struct pdu_info *pi, int dflt);

/* Move an expired event back into the inbox (from = its original from) and
 * delete the expired row, in t. 0 (*seq set, bytes in *pdu), MDB_NOTFOUND. */
int  pstore_requeue_expired(MDB_txn *t, struct store *s, const char *event_id,
                            uint64_t *seq, struct buf *pdu);

/* Server part of "@user:server" (or "" if none) into out. */
void pstore_server_of(const char *user, size_t n, char *out, size_t cap);

#endif
