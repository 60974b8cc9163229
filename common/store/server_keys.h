/* server_keys.h: verified ed25519 keys of other servers (only this module
 * knows their bytes). Written by validated (documents fetchd fetched from the
 * server itself or from a trusted notary), syncd (a [peer]'s own keys) and
 * fedctl keys import (the operator).
 *   server_keys  key server \0 key_id
 *                val 32-byte public key | u64 valid_until_ts | u64 fetched_ts | u8 flags
 * (49 bytes). Rows written before fetched_ts existed are 40 bytes (pk |
 * valid_until_ts): they still decode, with fetched_ts = 0 and no flags, so
 * their fetched + 7 days is long past and the first event they would verify
 * makes validated fetch the keys again (they may have come from whoever
 * handed them over, which is no longer enough); the refetched key rewrites
 * the row in the new format. */
#ifndef FP_STORE_SERVER_KEYS_H
#define FP_STORE_SERVER_KEYS_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

/* A fetched key verifies events up to fetched_ts + this, at most. */
#define KEY_FETCHED_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define KEY_OLD      1u   /* from old_verify_keys: valid_until_ts is its expired_ts */
#define KEY_OPERATOR 2u   /* imported by the operator: no fetched_ts + 7 days bound */

struct key_rec {
	unsigned char pk[32];
	int64_t       valid_until_ts;   /* ms */
	int64_t       fetched_ts;       /* ms; 0: unknown (an old row) */
	unsigned      flags;            /* KEY_OLD | KEY_OPERATOR */
};

/* The last origin_server_ts the key may verify: min(valid_until_ts,
 * fetched_ts + KEY_FETCHED_MAX_AGE_MS), or valid_until_ts for KEY_OPERATOR
 * and KEY_OLD keys (an old key's expired_ts is final). */
int64_t store_key_valid_until(const struct key_rec *r);

/* store_key_put* never change the public key of a stored (server, key ID):
 * a different pk is refused with STORE_KEY_CONFLICT (nothing written, the
 * txn stays usable; not an LMDB error: LMDB's are MDB_* or errno values);
 * the same pk takes the new validity, fetched_ts and flags (the newest
 * document is the truth: a refetch extends validity, a later document may
 * move the key to old_verify_keys). Other returns: 0 or an LMDB error
 * (abort the txn). */
#define STORE_KEY_CONFLICT (-30000)
int  store_key_put_rec(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                       const struct key_rec *r);
/* The same with fetched_ts = now and no flags (a fetched current key). */
int  store_key_put(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                   const unsigned char pk[32], int64_t valid_until_ts);
/* 0, MDB_NOTFOUND, MDB_CORRUPTED (a value neither 40 nor 49 bytes) or an
 * LMDB error. store_key_get's *valid_until_ts is the stored one. */
int  store_key_get_rec(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                       struct key_rec *r);
int  store_key_get(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                   unsigned char pk[32], int64_t *valid_until_ts);
/* 1 if server has a current (not KEY_OLD) key usable at now_ms
 * (store_key_valid_until >= now_ms), 0 if not, or an LMDB error (< 0 or
 * MDB_*). */
int  store_key_usable(MDB_txn *t, struct store *s, const char *server, int64_t now_ms);

/* One row as a walk over DB_SERVER_KEYS sees it (server and key_id point
 * into the map, not NUL-terminated). 0, or MDB_CORRUPTED (a key without
 * its NUL, a value neither 40 nor 49 bytes). */
struct server_key {
	const char   *server; size_t server_len;
	const char   *key_id; size_t key_id_len;
	unsigned char pk[32];
	int64_t       valid_until_ts;
	int64_t       fetched_ts;
	unsigned      flags;
};
int  store_key_row(const MDB_val *k, const MDB_val *v, struct server_key *out);

#endif
