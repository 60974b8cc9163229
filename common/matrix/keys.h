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
};

struct keyring { struct verify_key *k; size_t n, cap; };

void keyring_init(struct keyring *kr);
void keyring_free(struct keyring *kr);
/* Add the keys of one /_matrix/key/v2/server document after checking it is
 * self-signed by one of its own verify_keys. Returns number of keys added or
 * -1 with a message in err. */
int  keyring_add_server_doc(struct keyring *kr, const char *json, size_t n,
                            char *err, size_t errlen);
/* A file holding a JSON array of such documents (or a single document). */
int  keyring_load_file(struct keyring *kr, const char *path, char *err, size_t errlen);
const struct verify_key *keyring_find(const struct keyring *kr, const char *server,
                                      const char *key_id);

/* Build this node's self-signed key document (valid for valid_for_ms). */
int  signing_key_doc(const struct signing_key *k, const char *server_name,
                    int64_t now_ms, int64_t valid_for_ms, struct buf *out);

#endif
