/* keys.h: signing keys and verify keys.
 * Promises: the signing key file is Synapse's format, one line
 * "ed25519 <key_version> <unpadded base64 seed>" (key ID = "ed25519:<version>");
 * a keyring holds verify keys taken only from /_matrix/key/v2/server documents
 * whose self-signature checks out, each with its valid_until_ts; unknown
 * algorithms are skipped, not errors. */
#ifndef FP_KEYS_H
#define FP_KEYS_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

struct signing_key {
	char          key_id[64];      /* "ed25519:a_XyZ" */
	unsigned char seed[32];
	unsigned char pk[32];
	unsigned char sk[64];          /* libsodium secret key (seed || pk) */
};

int  signing_key_generate(struct signing_key *k, const char *version);
int  signing_key_load(struct signing_key *k, const char *path, char *err, size_t errlen);
/* A stage's SIGHUP: read path again into *k, all or nothing. 1: a new key
 * is now in *k (the previous one wiped); 0: the file holds the same key;
 * -1 with err: *k untouched (the file unreadable or malformed, or it holds
 * another key under the same key ID: a key ID is never reused, verifiers
 * cache keys by it). */
int  signing_key_reload(struct signing_key *k, const char *path, char *err, size_t errlen);
/* Mode 0600; via "<path>.tmp" made O_EXCL|O_NOFOLLOW (an existing file or
 * symlink there is an error: EEXIST/ELOOP), fsync'ed, renamed over path,
 * directory fsync'ed: the old key is replaced only by a durable new one.
 * -1 with errno on failure (the old key untouched); -2 if the new key is
 * in place but its directory could not be fsync'ed. */
int  signing_key_save(const struct signing_key *k, const char *path);

struct verify_key {
	char          server[256];
	char          key_id[64];
	unsigned char pk[32];
	int64_t       valid_until_ts;   /* ms; old_verify_keys get their expired_ts */
	int           old;              /* from old_verify_keys */
};

struct keyring { struct verify_key *k; size_t n, cap; };

void keyring_init(struct keyring *kr);
void keyring_free(struct keyring *kr);
/* Add the keys of one /_matrix/key/v2/server document after checking it is
 * self-signed by one of its own verify_keys. Returns number of keys added or
 * -1 with a message in err. */
int  keyring_add_server_doc(struct keyring *kr, const char *json, size_t n,
                            char *err, size_t errlen);
/* The same, only if the document names server (NULL: any; else -1: "the document
 * names X, not S"): what its origin, asked for its own keys, may answer. */
int  keyring_add_server_doc_for(struct keyring *kr, const char *json, size_t n,
                                const char *server, char *err, size_t errlen);
/* A notary's answer {"server_keys":[doc, ...]} for server: each document
 * naming server must be self-signed by one of its own verify_keys AND signed
 * by notary with a key lookup returns (0 with pk, or -1 unknown: the caller
 * decides which notary keys count: those the notary itself served).
 * Documents naming other servers are ignored; at least one must name server.
 * Returns keys added (all or none), -1 refused, or KEYS_NOTARY_KEY_UNKNOWN
 * (the notary signed only with keys lookup does not know: fetch the
 * notary's own keys), with err saying why. */
#define KEYS_NOTARY_KEY_UNKNOWN (-2)
typedef int (*keys_lookup_fn)(void *arg, const char *server, const char *key_id,
                              unsigned char pk[32]);
int  keyring_add_notary_answer(struct keyring *kr, const char *json, size_t n,
                               const char *server, const char *notary,
                               keys_lookup_fn lookup, void *arg, char *err, size_t errlen);
/* A file holding a JSON array of such documents (or a single document). */
int  keyring_load_file(struct keyring *kr, const char *path, char *err, size_t errlen);
const struct verify_key *keyring_find(const struct keyring *kr, const char *server,
                                      const char *key_id);

/* This node's old keys, kept beside the signing key in "<signing_key>.old",
 * one line per key: "ed25519:<version> <unpadded base64 public key>
 * <expired_ts ms>" (written by signing_key_rotate, mode 0644: public keys). */
struct old_key {
	char          key_id[64];
	unsigned char pk[32];
	int64_t       expired_ts;
};
/* *out malloc'ed (free it), *n keys; no file: 0 keys. 0, or -1 with err. */
int  signing_key_old_load(const char *signing_key_path, struct old_key **out, size_t *n,
                          char *err, size_t errlen);
/* Durably (as signing_key_save) replace "<signing_key_path>.old". 0, -1
 * with errno (the old file untouched), -2 not known durable. */
int  signing_key_old_save(const char *signing_key_path, const struct old_key *k, size_t n);
/* fedctl keygen --rotate: a new key (version NULL: random) replaces the one
 * at path, which is appended to path.old with expired_ts = now_ms first.
 * Both durable; on failure (-1, err) the current key stays in use. 0 ok, -2
 * new key in place but its directory not synced (err says so). *newk the
 * new key. */
int  signing_key_rotate(const char *path, const char *version, int64_t now_ms,
                        struct signing_key *newk, char *err, size_t errlen);

/* Build this node's self-signed key document (valid for valid_for_ms):
 * verify_keys = k, old_verify_keys = old (skipping k's own ID and
 * duplicates; old may be NULL). signing_key_doc: no old keys. */
int  signing_key_doc(const struct signing_key *k, const char *server_name,
                    int64_t now_ms, int64_t valid_for_ms, struct buf *out);
int  signing_key_doc_old(const struct signing_key *k, const char *server_name,
                         int64_t now_ms, int64_t valid_for_ms,
                         const struct old_key *old, size_t nold, struct buf *out);

#endif
