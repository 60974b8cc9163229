/* store.h: the one LMDB environment and its named databases.
 * Promises: every named database is listed once (store_db_names) and opened
 * in one transaction at startup; meta holds the schema version (checked:
 * a newer or unknown version refuses to open); integer keys are big-endian
 * u64 so they sort; stale readers are cleared with mdb_reader_check; read
 * transactions are short and never span a return to the event loop.
 * Writers per table (the one owner, or who else and why):
 *   events, stream, room_extremities, rooms, outbox, purgatory,
 *   missing_index, rejects, expired ......... purgatoryd only (fedctl expired
 *                   requeue moves an expired row back to the inbox; fedctl
 *                   purgatory drop edits purgatory when purgatoryd is down;
 *                   feedpump's fleet apply stores events of the fleet feed
 *                   with purg_store_event, their outbox rows already published)
 *   inbox ......... put: syncd, purgatoryd (fetched bytes), fedctl send, served
 *                   (recovered); del: purgatoryd (in the txn that decides it)
 *   room_servers .. purgatoryd (on store), fetchd (servers seen answering)
 *   federation_state syncd (cursors, pins, clocks); fedctl peer reset; fleetd
 *                   (the fleet lease rows, and cursors/pins copied from the fleet)
 *   server_keys ... validated/fetchd (verified key documents), fedctl keys
 *   server_health . fetchd; fedctl servers wake; syncd clears a peer's row
 *                   when the peer answers (inbound traffic ends a backoff)
 *   server_resolution fetchd, fedctl resolve (each finished resolution)
 *   claims ........ served (SetNX with TTL)
 *   outbox (published columns), feed_dead, leases ... feedpump; fedctl feed
 *   applied_events  feed consumers (fedctl feed apply, feedpump's fleet apply)
 *   meta .......... whoever opens a new environment first (schema, node_id)
 *
 * Record layouts (all integers big-endian; "str" = u16 length + bytes).
 * Each table's bytes are known by one module, whose header says so:
 *   store/events.h ...... events, stream, rooms, room_extremities, room_servers
 *   store/inbox.h ....... inbox
 *   store/pstore.h ...... purgatory, missing_index, rejects, expired
 *   store/outbox.h ...... outbox, feed_dead, leases (the lease, the feed cursor)
 *   store/fedstate.h .... federation_state
 *   store/server_keys.h . server_keys
 *   store/health.h ...... server_health
 *   store/resolution.h .. server_resolution
 *   store/claims.h ...... claims
 *   store.c ............. meta
 *
 *   events      key event_id            val u64 stream_pos | u8 room_version |
 *                                           u8 flags (1 = stored redacted) | str room_id |
 *                                           canonical PDU bytes (rest)
 *   stream      key u64 pos             val event_id
 *   rooms       key room_id             val u8 room_version | u64 max_depth |
 *                                           str create_event_id
 *   room_extremities key room_id \0 event_id   val u64 depth
 *   room_servers     key room_id \0 server     val u64 last_seen_ms
 *   inbox       key u64 seq             val u64 received_ms | str from | raw bytes (rest)
 *   purgatory   key event_id            val u8 1 (format) | u8 flags (1 = redacted) | u8 nmissing |
 *                                           u32 room_version | u64 attempts | u64 next_try_ms |
 *                                           u64 first_seen_ms | u64 expired_ms | str room_id | str from |
 *                                           str reason | nmissing x str event_id | canonical PDU (rest);
 *                                           older rows: a JSON object, still read (store/purgatory.h)
 *   missing_index key missing_id \0 waiting_id  val empty
 *   rejects     key u64 seq             val JSON {"event_id","reason","message","from",
 *                                           "at_ms","bytes_b64"}
 *   expired     key event_id            val the purgatory record with reason and expired_ms set
 *   outbox      key u64 stream_pos      val JSON {"event_id","attempts","last_error",
 *                                           "control_version","published_ms"}
 *   feed_dead   key u64 stream_pos      val the outbox JSON at the time it moved
 *   applied_events key consumer \0 event_id  val u64 applied_ms
 *   federation_state key "<peer>\0<field>"   val bytes (fields: cursor, last_seen,
 *                                           node_id, vclock (the peer's, as last
 *                                           caught up), health, server_name; see
 *                                           store/fedstate.h)
 *   server_keys key server \0 key_id    val 32-byte ed25519 pk | u64 valid_until_ts | u64 fetched_ts |
 *                                           u8 flags (49 bytes; old 40-byte rows still read)
 *               key server \0 (empty key ID) val u8 'D' | u64 valid_until_ts | u64 stored_ts |
 *                                           the server's signed key document as verified
 *                                           (<= 64 KiB; a notary serves it countersigned)
 *   server_health key server            val JSON {"streak","until_ms","last_error",
 *                                           "last_ok_ms","latency_ms"}
 *   server_resolution key server    val JSON (store/resolution.h): targets, steps, expiry
 *   claims      key string              val u64 expires_ms ("recover:<event_id>")
 *   leases      key name                val JSON {"holder","pid","renewed","until_ms"}
 *               key "feed_cursor"       val u64 (the first outbox position not yet done)
 *   meta        key string              val bytes ("schema_version" = u32, "node_id" = ULID,
 *                                           "stream_next" = u64, "inbox_next" = u64)
 */
#ifndef FP_STORE_H
#define FP_STORE_H
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include <pthread.h>

#define STORE_SCHEMA_VERSION 1

enum store_db {
	DB_EVENTS, DB_STREAM, DB_ROOMS, DB_ROOM_EXTREMITIES, DB_ROOM_SERVERS,
	DB_INBOX, DB_PURGATORY, DB_MISSING_INDEX, DB_REJECTS, DB_EXPIRED,
	DB_OUTBOX, DB_FEED_DEAD, DB_APPLIED_EVENTS, DB_FEDERATION_STATE,
	DB_SERVER_KEYS, DB_SERVER_HEALTH, DB_SERVER_RESOLUTION, DB_CLAIMS, DB_LEASES, DB_META,
	DB__COUNT
};
extern const char *const store_db_names[DB__COUNT];

struct store {
	MDB_env *env;
	MDB_dbi  dbi[DB__COUNT];
	int      readonly;
	size_t   map_max;    /* [node] map_size_max: ceiling of store_write_failed's growth */
	int      full;       /* at the ceiling: writers degrade (see store_write_failed) */
	char     dir[512];   /* the environment's directory (the store-full marker lives there) */
	MDB_txn *wtxn;       /* the write txn store_begin handed out last (store_commit clears "full") */
	long long marker_checked_ms;
	/* Remapping (adopting or growing the map) must not happen while another
	 * thread of this process is inside a txn: threads that read in parallel
	 * use store_begin_shared/store_end_shared, which hold this as readers. */
	pthread_rwlock_t gate;
};

/* The marker file, in the environment's directory, that says "a writer hit
 * the ceiling": written by the writer that hits it, removed by the next
 * successful write commit of any process. fedctl status reads it. */
#define STORE_FULL_MARKER "store-full"

/* Open (creating dir and databases unless readonly). mapsize 0 = default
 * (8 GiB of address space; the file grows as used). 0 or -1 with err. */
int  store_open(struct store *s, const char *dir, size_t mapsize, int readonly,
                char *err, size_t errlen);
void store_close(struct store *s);
/* Begin a txn; a failure here means the environment is broken: fatal.
 * A map grown by another process (MDB_MAP_RESIZED) is adopted here. */
MDB_txn *store_begin(struct store *s, int readonly);
/* A read txn for code that may run in several threads at once (validated's
 * workers): end it with store_end_shared, never mdb_txn_abort. */
MDB_txn *store_begin_shared(struct store *s);
void store_end_shared(struct store *s, MDB_txn *t);
/* Commit; returns 0 or the LMDB error (logged; the txn is freed either
 * way). A successful write commit ends the "store full" state. */
int  store_commit(MDB_txn *txn);
/* Is the store-full marker present (some writer is at the ceiling)?
 * 1 yes (its first line in info), 0 no. */
int  store_full_marker(const char *dir, char *info, size_t infolen);
/* Every write path: on any error, abort the txn, then call this with the
 * error. MDB_MAP_FULL below the ceiling: the map is grown (doubling, up to
 * map_max) and 1 is returned: redo the whole txn now. At the ceiling (or
 * any other error): 0; with MDB_MAP_FULL the store enters the "store full"
 * state (one critical log line; fedctl status shows it): the caller keeps
 * its input (nothing is lost), degrades (stops pulling, answers reads) and
 * retries later. The state ends at the next successful write. */
int  store_write_failed(struct store *s, int rc);

static inline void be64_put(unsigned char *p, uint64_t v)
{ for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; } }
static inline uint64_t be64_get(const unsigned char *p)
{ uint64_t v = 0; for (int i = 0; i < 8; i++) v = (v << 8) | p[i]; return v; }
static inline void be16_put(unsigned char *p, uint16_t v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static inline uint16_t be16_get(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* Plain get/put/del on a named db (keys/values as bytes). get returns 0,
 * MDB_NOTFOUND, or another LMDB error. */
int  store_get(MDB_txn *t, struct store *s, int db, const void *k, size_t kn, MDB_val *v);
int  store_put(MDB_txn *t, struct store *s, int db, const void *k, size_t kn,
               const void *v, size_t vn, unsigned flags);
int  store_del(MDB_txn *t, struct store *s, int db, const void *k, size_t kn);
/* How many rows db holds: 0 (*n set) or the LMDB error. */
int  store_entries(MDB_txn *t, struct store *s, int db, size_t *n);
/* A two-part key "a \0 b" (set-valued and per-peer tables) into out;
 * returns its length, or 0 if it does not fit in cap. */
size_t store_key2(char *out, size_t cap, const char *a, const char *b);
/* Next value of a u64 counter kept in meta under name (starts at 1).
 * store_seq_take returns 0 or the LMDB error of the counter's put;
 * store_next_seq returns 0 on such an error (the txn is then failed). */
int      store_seq_take(MDB_txn *t, struct store *s, const char *name, uint64_t *out);
uint64_t store_next_seq(MDB_txn *t, struct store *s, const char *name);

/* One prefix-scan iterator for every table walk. Walks db's keys that
 * start with prefix (plen 0: every key), in key order, from the first such
 * key or, with store_iter_from, from the first key >= from (which must
 * itself start with the prefix). k and v point into the txn's map (valid
 * until the txn ends or the cursor moves). store_iter_next returns 1 with
 * k/v set, 0 at the end, -1 on an LMDB error (kept in it->rc). Deleting
 * the current row (store_iter_del) keeps the walk going. Always end with
 * store_iter_close (idempotent).
 *
 *   struct store_iter it;
 *   store_iter_open(&it, t, st, DB_ROOM_SERVERS, room_nul, rl + 1);
 *   while (store_iter_next(&it) == 1) use(it.k, it.v);
 *   store_iter_close(&it);
 */
struct store_iter {
	MDB_cursor *cur;
	const void *prefix; size_t plen;
	MDB_val     k, v;
	int         started, rc, reverse;
	const void *from; size_t flen;
};
int  store_iter_open(struct store_iter *it, MDB_txn *t, struct store *s, int db,
                     const void *prefix, size_t plen);
/* Start at the first key >= from instead (call before the first next). */
void store_iter_from(struct store_iter *it, const void *from, size_t flen);
/* Walk backwards from the last matching key instead (before the first next). */
void store_iter_reverse(struct store_iter *it);
int  store_iter_next(struct store_iter *it);
int  store_iter_del(struct store_iter *it);
void store_iter_close(struct store_iter *it);

/* The daemon skeleton's hook (core/daemon.h): a daemon whose ops name it
 * opens [node] state_dir read-write with map_size / map_size_max before
 * its init, and closes it after fini. */
struct daemon_store;
extern const struct daemon_store store_for_daemon;

/* meta: node ID (a ULID, made once) */
int  store_node_id(struct store *s, char out[27]);

/* The modules whose functions store.h declared before the split, so their
 * callers keep compiling; new code includes the module's header itself. */
#include "store/events.h"
#include "store/inbox.h"
#include "store/server_keys.h"

#endif
