/* server_keys.h: verified ed25519 keys of other servers (only this module
 * knows their bytes). Written by validated and fetchd (verified key
 * documents) and fedctl keys import.
 *   server_keys  key server \0 key_id   val 32-byte public key | u64 valid_until_ts */
#ifndef FP_STORE_SERVER_KEYS_H
#define FP_STORE_SERVER_KEYS_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

/* store_key_put never changes the public key of a stored (server, key ID):
 * a different pk is refused with STORE_KEY_CONFLICT (nothing written, the
 * txn stays usable; not an LMDB error: LMDB's are MDB_* or errno values);
 * the same pk updates valid_until_ts. Other returns: 0 or an LMDB error
 * (abort the txn). */
#define STORE_KEY_CONFLICT (-30000)
int  store_key_put(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                   const unsigned char pk[32], int64_t valid_until_ts);
/* 0, MDB_NOTFOUND, MDB_CORRUPTED (a value not 40 bytes) or an LMDB error. */
int  store_key_get(MDB_txn *t, struct store *s, const char *server, const char *key_id,
                   unsigned char pk[32], int64_t *valid_until_ts);

/* One row as a walk over DB_SERVER_KEYS sees it (server and key_id point
 * into the map, not NUL-terminated). 0, or MDB_CORRUPTED (a key without
 * its NUL, a value not 40 bytes). */
struct server_key {
	const char   *server; size_t server_len;
	const char   *key_id; size_t key_id_len;
	unsigned char pk[32];
	int64_t       valid_until_ts;
};
int  store_key_row(const MDB_val *k, const MDB_val *v, struct server_key *out);

#endif
