/* fedstate.h: what syncd keeps per peer, in federation_state (only this
 * module knows its keys and bytes). Written by syncd (cursors, pins,
 * clocks, health) and `fedctl peer reset`; read by `fedctl peers`, served
 * (the clocks it advertises) and purgatoryd (which server a peer is).
 *   federation_state  key "<peer>\0<field>"  val by field:
 *     cursor       u64 big-endian: the peer's stream position we have up to
 *     last_seen    u64 big-endian: wall ms of the peer's last answer
 *     node_id      the peer's node ID (a ULID), pinned at the first handshake
 *     server_name  the peer's Matrix server name, pinned likewise
 *     vclock       JSON: the peer's clock when we last caught up with it
 *     health       JSON {"at_ms","failures","message","reason"} */
#ifndef FP_STORE_FEDSTATE_H
#define FP_STORE_FEDSTATE_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

/* The key of (peer, field) into out: its length, 0 if it does not fit in cap. */
size_t fstate_key(char *out, size_t cap, const char *peer, const char *field);
/* A field's value, NUL-terminated, into out (cap bytes): its length, or -1
 * (absent, or it does not fit). */
int  fstate_get(MDB_txn *t, struct store *st, const char *peer, const char *field,
                char *out, size_t cap);
int  fstate_put(MDB_txn *t, struct store *st, const char *peer, const char *field,
                const void *v, size_t n);
int  fstate_del(MDB_txn *t, struct store *st, const char *peer, const char *field);
uint64_t fstate_cursor(MDB_txn *t, struct store *st, const char *peer);
/* Record a peer's health in its own txn; reason is a fixed code. Returns 0
 * or the LMDB error (txn aborted, store_write_failed called). */
int  fstate_health(struct store *st, const char *peer, const char *reason, const char *msg,
                   int failures);
/* Every field syncd keeps for a peer (what `fedctl peer reset` deletes). */
extern const char *const fstate_fields[];
/* Merge into vc every peer clock stored in federation_state (what each peer
 * had when we last caught up with it): served and syncd advertise this. */
struct vclock;
void fstate_merge_clocks(MDB_txn *t, struct store *st, struct vclock *vc);
/* Does a small write (a row of the peer's) fit now? Tried in a write txn
 * of its own, then aborted: LMDB allocates pages at put time. 0 if it
 * fits, else the LMDB error (MDB_MAP_FULL: the store is full). */
int  fstate_probe(struct store *st, const char *peer);

#endif
