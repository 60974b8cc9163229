/* events.h: the accepted events and what is derived from them: events,
 * stream, rooms, room_extremities, room_servers. Only this module knows
 * their bytes (layouts below); purgatoryd writes them in the transaction
 * that accepts an event, fetchd adds the room_servers rows it sees answer.
 *   events      key event_id   val u64 stream_pos | u8 room_version |
 *                                  u8 flags (1 = stored redacted) | str room_id |
 *                                  canonical PDU bytes (rest)
 *   stream      key u64 pos    val event_id
 *   rooms       key room_id    val u8 room_version | u64 max_depth | str create_event_id
 *   room_extremities key room_id \0 event_id   val u64 depth
 *   room_servers     key room_id \0 server     val u64 last_seen_ms
 * (integers big-endian; str = u16 length + bytes) */
#ifndef FP_STORE_EVENTS_H
#define FP_STORE_EVENTS_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

/* events */
struct event_rec {
	uint64_t    pos;
	int         room_version;
	int         redacted;
	const char *room_id; size_t room_len;
	const char *pdu;     size_t pdu_len;    /* point into the txn's map */
};
/* 0, MDB_NOTFOUND, MDB_CORRUPTED (a value too short for its layout) or
 * another LMDB error. */
int  store_event_get(MDB_txn *t, struct store *s, const char *event_id, struct event_rec *r);
int  store_event_exists(MDB_txn *t, struct store *s, const char *event_id);
/* An events value: 0, or MDB_CORRUPTED if the bytes do not fit the layout. */
int  store_event_decode(const void *v, size_t n, struct event_rec *r);
/* Write the events row (no stream row: see store_stream_put). room_id is
 * at most 65535 bytes (MDB_BAD_VALSIZE otherwise). 0 or the LMDB error. */
int  store_event_put(MDB_txn *t, struct store *s, const char *event_id, uint64_t pos,
                     int room_version, int redacted, const char *room_id,
                     const void *pdu, size_t n);

/* stream: position -> event ID, appended in order. */
int  store_stream_put(MDB_txn *t, struct store *s, uint64_t pos, const char *event_id);
/* The last position, 0 if the stream is empty. */
uint64_t store_stream_head(MDB_txn *t, struct store *s);
/* A walk of the stream from position `from` (inclusive), ascending. next
 * returns 1 with pos/event_id set (event_id points into the map, id_len
 * bytes, not NUL-terminated), 0 at the end, -1 on an LMDB error. Rows that
 * do not fit the layout (a key not 8 bytes, an empty ID) are skipped. */
struct store_stream {
	struct store_iter it;
	unsigned char     from[8];
	uint64_t          pos;
	const char       *event_id; size_t id_len;
};
int  store_stream_open(struct store_stream *ss, MDB_txn *t, struct store *s, uint64_t from);
int  store_stream_next(struct store_stream *ss);
void store_stream_close(struct store_stream *ss);

/* rooms */
/* Room version from the rooms table; 0 if the room is unknown. */
int  store_room_version(MDB_txn *t, struct store *s, const char *room_id);
/* The room's record: version, max depth, create event ID (into create_id,
 * cap bytes; "" if it does not fit). 0, MDB_NOTFOUND (also for a record too
 * short for its layout) or another LMDB error. Any out pointer may be NULL. */
int  store_room_get(MDB_txn *t, struct store *s, const char *room_id, int *rv,
                    uint64_t *max_depth, char *create_id, size_t cap);
int  store_room_put(MDB_txn *t, struct store *s, const char *room_id, int rv,
                    uint64_t max_depth, const char *create_id);
/* Raise a known room's max_depth to depth if it is deeper (an unknown room
 * is left alone). 0 or the LMDB error. */
int  store_room_raise_depth(MDB_txn *t, struct store *s, const char *room_id, uint64_t depth);

/* room_extremities: put one; del one (absent is no error). 0 or the LMDB error. */
int  store_extremity_put(MDB_txn *t, struct store *s, const char *room_id,
                         const char *event_id, uint64_t depth);
int  store_extremity_del(MDB_txn *t, struct store *s, const char *room_id, const char *event_id);

/* room_servers: server was seen in the room at now_ms. With min_gap_ms > 0
 * a row newer than now_ms - min_gap_ms is left as it is (saves writes).
 * An empty server name is not written. 0 or the LMDB error. */
int  store_room_server_seen(MDB_txn *t, struct store *s, const char *room_id,
                            const char *server, long long now_ms, long long min_gap_ms);
/* The room's known servers, in key order, at most max (names of 256 bytes
 * or more are skipped); returns how many were filled, or -1 on an LMDB
 * error (those filled before it stay). */
#define STORE_SERVER_NAME_MAX 256
struct room_server { char name[STORE_SERVER_NAME_MAX]; uint64_t last_seen_ms; };
int  store_room_servers(MDB_txn *t, struct store *s, const char *room_id,
                        struct room_server *out, int max);

#endif
