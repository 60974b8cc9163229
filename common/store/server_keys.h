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
 * the row in the new format.
 * Beside them, one row per server holds the server's signed key document
 * (what a notary serves, countersigned):
 *   server_keys  key server \0 (an empty key ID: no key ID is empty)
 *                val u8 'D' | u64 valid_until_ts | u64 stored_ts | document bytes
 * (17 + at most KEY_DOC_MAX bytes), written only with documents whose
 * self-signature was checked (and, from a notary, its countersignature):
 * as received from the server itself, or the document naming it inside a
 * trusted notary's answer. The key rows never decode it (its size is
 * neither 40 nor 49) and walkers see STORE_KEY_DOC_ROW. */
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
#define STORE_KEY_DOC_ROW 1   /* store_key_row: a document row, not a key */
int  store_key_row(const MDB_val *k, const MDB_val *v, struct server_key *out);

/* --- signed key documents -------------------------------------------- */
#define KEY_DOC_MAX 65536     /* a larger document is not kept (MDB_BAD_VALSIZE) */

/* Store server's signed document (doc, n bytes, its valid_until_ts): only
 * if no document is stored, or the stored one's valid_until_ts is not
 * later (a notary handing an older document never replaces a newer one).
 * 0 (written or the stored one kept), MDB_BAD_VALSIZE (too large or an
 * unusable server name), or an LMDB error (abort the txn). The caller has
 * verified it. */
int  store_key_doc_put(MDB_txn *t, struct store *s, const char *server, const char *doc, size_t n,
                       int64_t valid_until_ts);
/* *doc points into the map (valid for the txn). 0, MDB_NOTFOUND,
 * MDB_CORRUPTED, or an LMDB error. stored_ts may be NULL. */
int  store_key_doc_get(MDB_txn *t, struct store *s, const char *server, const char **doc, size_t *n,
                       int64_t *valid_until_ts, int64_t *stored_ts);
/* In an accepted answer, json (n bytes): a bare key document naming server,
 * or a notary's {"server_keys":[doc,...]}: the document naming server with
 * the latest valid_until_ts. 0 with its bytes json[*off, *off + *len) and
 * *valid_until_ts, or -1 (none, or not JSON). Checks no signature: call it
 * on what keyring_add_server_doc_for / keyring_add_notary_answer accepted. */
int  store_key_doc_pick(const char *json, size_t n, const char *server, size_t *off, size_t *len,
                        int64_t *valid_until_ts);
/* pick then put: 0 (stored, kept, or nothing to store), or as put. */
int  store_key_doc_put_answer(MDB_txn *t, struct store *s, const char *server, const char *json,
                              size_t n);

#endif
