/* fleet.h: the peer lease hand-off from fleetd to syncd (only this module
 * knows its bytes). fleetd holds peer leases in NATS JetStream KV; syncd has
 * no NATS, so fleetd mirrors each lease it holds into LMDB and syncd pulls
 * a peer only while that row says held and unexpired.
 *   federation_state  key "<peer>\0fleet_lease"
 *                     val u64 until_ms (wall ms, big-endian) + member name
 * fleetd writes the row when it takes or renews a lease (until = when it
 * sent the CAS + ttl - margin: before the KV entry can expire on the
 * server), deletes it when it loses or releases the lease. The row is not
 * one of fstate_fields: `fedctl peer reset` leaves it to fleetd. */
#ifndef FP_STORE_FLEET_H
#define FP_STORE_FLEET_H
#include <stddef.h>
#include "store/store.h"

int  fleet_lease_put(MDB_txn *t, struct store *st, const char *peer, long long until_ms,
                     const char *member);
int  fleet_lease_del(MDB_txn *t, struct store *st, const char *peer);   /* absent: 0 */
/* 0 with *until_ms and member (may be NULL) filled, or -1 (no row, malformed). */
int  fleet_lease_get(MDB_txn *t, struct store *st, const char *peer, long long *until_ms,
                     char *member, size_t cap);
/* Milliseconds the peer is still ours to pull at now_ms, 0 if it is not
 * (own read txn). A long-poll must not outlast it. */
long long fleet_lease_left(struct store *st, const char *peer, long long now_ms);

#endif
