/* fleet_mac.h: what fleet members prove to each other over NATS. Anyone
 * who can publish on the fleet subject or write its KV buckets (a NATS
 * account shared too widely, a compromised client) must not be able to
 * inject an event into every member's store or move a member's cursor past
 * events it never stored. So every fleet feed message and every cursor and
 * identity value in KV carries a MAC (keyed BLAKE2b-256) under the fleet
 * key, which only members hold:
 *   [fleet] secret_file set: derived from that file's bytes (a secret all
 *     members share; must not be readable by others);
 *   else: derived from the node's signing key seed (a fleet shares one
 *     signing key), under its own label, so the MAC key is never the
 *     signing key itself.
 * A message or value without a valid MAC is refused: counted, logged,
 * never stored or used. */
#ifndef FP_FLEET_MAC_H
#define FP_FLEET_MAC_H
#include <stddef.h>
#include "core/config.h"

#define FLEET_MAC_HEADER "Fedpipe-Fleet-Mac"
#define FLEET_MAC_LEN 43              /* 32 bytes, unpadded base64 */

struct fleet_key { unsigned char k[32]; };

/* 0, or -1 with a clear message (which file, why). */
int  fleet_key_load(struct fleet_key *k, const struct config *cfg, char *err, size_t errlen);
/* out := MAC over (label, a, b[0..blen)), FLEET_MAC_LEN chars + NUL. */
void fleet_mac(const struct fleet_key *k, const char *label, const char *a, const void *b, size_t blen,
               char out[FLEET_MAC_LEN + 1]);
/* 1 if mac is the MAC of (label, a, b), else 0 (constant time). */
int  fleet_mac_ok(const struct fleet_key *k, const char *label, const char *a, const void *b, size_t blen,
                  const char *mac);
/* A KV value for key: out := "<value> mac:<MAC of (kv, key, value)>". */
void fleet_kv_seal(const struct fleet_key *k, const char *key, const char *value, char *out, size_t outlen);
/* value := the sealed value's value if its MAC is right for key: 0; else -1
 * (no MAC, a wrong one, or too long). */
int  fleet_kv_open(const struct fleet_key *k, const char *key, const char *sealed, char *value, size_t vlen);

#endif
