/* syncd_state.h: syncd's records in federation_state, key "<peer>\0<field>"
 * (fields: cursor u64 BE, last_seen u64 BE ms, node_id (the pinned ULID),
 * server_name, vclock JSON (the peer's clock when we last caught up), health
 * JSON {"at_ms","failures","message","reason"}). Shared by syncd and
 * `fedctl peers` / `fedctl peer reset`. */
#ifndef FP_SYNCD_STATE_H
#define FP_SYNCD_STATE_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

int  fstate_get(MDB_txn *t, struct store *st, const char *peer, const char *field,
                char *out, size_t cap);               /* length or -1 */
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

#endif
