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
#include "matrix/json.h"
#include "core/buf.h"

#define PDU_EVENT_ID_MAX 48     /* '$' + 43 base64 chars + NUL, rounded */
#define PDU_MAX_BYTES 65536     /* canonical form, signatures included */

enum pdu_rv { PDU_RV_10 = 10, PDU_RV_11 = 11 };

/* Redacted canonical form of event object `t`. With for_signing set, also
 * drops `signatures` and `unsigned` (the bytes that are hashed/signed for the
 * reference hash and signatures); otherwise keeps `signatures` (the bytes a
 * redacted event is stored/forwarded as). */
int  pdu_redact(const struct json_doc *d, int t, int rv, int for_signing, struct buf *out);

/* 32-byte hashes. Return 0 or -1 (not an object, or a content member that is
 * not an object: such an event has no redacted form; pdu_redact says so too). */
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
int  pdu_sig_verify_b64(const char *sig_b64, size_t siglen, const unsigned char *msg,
                    size_t msglen, const unsigned char pk[32]);
/* The same for the signature held in string token s of d: JSON escapes are
 * undone before the base64 is decoded. */
int  pdu_sig_verify_tok(const struct json_doc *d, int s, const unsigned char *msg,
                    size_t msglen, const unsigned char pk[32]);

/* --- additions: deep checks sharing one scratch buffer ------------------
 * Callers must have called sodium_init() once at start. */

/* Why a deep check failed; validated maps these to its reason codes. */
enum pdu_verdict {
	PDU_OK = 0,
	PDU_E_SHAPE,          /* not an object, content not an object, bad rv */
	PDU_E_HASH_MISSING,   /* no string hashes.sha256 */
	PDU_E_HASH_MISMATCH,  /* hashes.sha256 is not the content hash */
	PDU_E_SIG_MISSING,    /* no string signatures.<server>.<key_id> */
	PDU_E_SIG_INVALID,    /* present but does not verify (or is not 64 bytes) */
};
const char *pdu_verdict_str(enum pdu_verdict v);

/* hashes.sha256 (any base64 variant, JSON escapes undone) equals the
 * content hash. scratch may be NULL; passing one reused across events
 * avoids allocations. */
enum pdu_verdict pdu_check_content_hash(const struct json_doc *d, int t, struct buf *scratch);

/* signatures.<server>.<key_id> verifies with pk over the redacted-for-signing
 * bytes. Those bytes are also what the reference hash is taken of, so when
 * event_id is non-NULL (PDU_EVENT_ID_MAX bytes) the event ID is computed from
 * the same encoding and set whenever the event has a redacted form, even if
 * the signature is missing or invalid. */
enum pdu_verdict pdu_check_signature(const struct json_doc *d, int t, int rv,
                                     const char *server, const char *key_id,
                                     const unsigned char pk[32], struct buf *scratch,
                                     char *event_id);

/* Matrix "Checking for a signature" on any JSON object: signatures.<server>.
 * <key_id> over canonical(object minus signatures and unsigned). */
enum pdu_verdict json_verify_object(const struct json_doc *d, int t, const char *server,
                                    const char *key_id, const unsigned char pk[32]);

/* SHA-256 as every hash here computes it: x86 SHA extensions when the CPU
 * has them (FP_SHA256_PORTABLE in the environment forces libsodium's). */
void pdu_sha256(unsigned char out[32], const void *p, size_t n);
/* json_canonical filter: the members the content hash covers (all but
 * unsigned, signatures, hashes). */
int  pdu_keep_hashed(void *arg, const char *const *path, int depth);

#endif
