/* pdu.h: Matrix PDU cryptography for room versions 10 and 11.
 * Promises: redaction follows the room version's keep-lists (v10 = the spec's
 * v9 algorithm, v11 = the v11 algorithm); the reference hash is
 * sha256(canonical(redacted event minus signatures and unsigned)) and the
 * event ID is '$' + URL-safe unpadded base64 of it; the content hash is
 * sha256(canonical(event minus unsigned, signatures, hashes)); signatures are
 * ed25519 over canonical(redacted event minus signatures and unsigned).
 * All functions take an already strictly-parsed document (json.h). */
#ifndef FP_PDU_H
#define FP_PDU_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"
#include "buf.h"

#define PDU_EVENT_ID_MAX 48     /* '$' + 43 base64 chars + NUL, rounded */
#define PDU_MAX_BYTES 65536     /* canonical form, signatures included */

enum pdu_rv { PDU_RV_10 = 10, PDU_RV_11 = 11 };

/* Redacted canonical form of event object `t`. With for_signing set, also
 * drops `signatures` and `unsigned` (the bytes that are hashed/signed for the
 * reference hash and signatures); otherwise keeps `signatures` (the bytes a
 * redacted event is stored/forwarded as). */
int  pdu_redact(const struct json_doc *d, int t, int rv, int for_signing, struct buf *out);

/* 32-byte hashes. Return 0 or -1 (not an object). */
int  pdu_reference_hash(const struct json_doc *d, int t, int rv, unsigned char out[32]);
int  pdu_content_hash(const struct json_doc *d, int t, unsigned char out[32]);
/* "$" + unpadded URL-safe base64 of the reference hash, into out[PDU_EVENT_ID_MAX]. */
int  pdu_event_id(const struct json_doc *d, int t, int rv, char *out);

/* Canonical bytes of the whole event (everything kept). */
int  pdu_canonical(const struct json_doc *d, int t, struct buf *out);

/* Take an event without hashes/signatures (or with; they are replaced/merged),
 * add hashes.sha256 and a signature by server/key_id, write the signed PDU's
 * canonical bytes to out and its event ID to event_id. sk is libsodium's
 * 64-byte secret key. Returns 0 or -1. */
int  pdu_sign(const char *json, size_t n, int rv, const char *server,
              const char *key_id, const unsigned char sk[64],
              struct buf *out, char *event_id);

/* Sign any JSON object (Matrix "Signing JSON"): adds signatures.server.key_id
 * over canonical(object minus signatures and unsigned). */
int  json_sign_object(const char *json, size_t n, const char *server,
                      const char *key_id, const unsigned char sk[64], struct buf *out);

/* Check the ed25519 signature `sig_b64` (any base64 variant) by pk over the
 * bytes msg. Returns 0 if valid, -1 otherwise. */
int  sig_verify_b64(const char *sig_b64, size_t siglen, const unsigned char *msg,
                    size_t msglen, const unsigned char pk[32]);

#endif
