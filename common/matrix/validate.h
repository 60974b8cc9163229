/* validate.h: the two-tier PDU validator shared by validated and fetchd.
 * Tier 1 (always): raw size cap, strict JSON, canonical size, required
 * fields and types of room versions 10/11, identifier grammar, field lengths.
 * Tier 2 (each switchable): event ID, content hash, ed25519 signature of the
 * sender's server with keys found through a caller-supplied lookup.
 * Promises: a pure function of (bytes, options, keys): no I/O, no globals
 * besides libsodium (sodium_init() once before use); every rejection carries
 * one stable reason code (val_reason_str) and a human message; a content-hash
 * mismatch is not a rejection but an acceptance of the redacted event
 * (r->redacted = 1), as the Matrix spec says. A struct validator is one
 * thread's reusable scratch space: one per worker, never shared. */
#ifndef FP_VALIDATE_H
#define FP_VALIDATE_H
#include <stddef.h>
#include <stdint.h>
#include "matrix/json.h"
#include "core/buf.h"
#include "matrix/pdu.h"

/* Stable reason codes: the strings (val_reason_str) are the contract. */
enum val_reason {
	VR_OK = 0,
	VR_TOO_LARGE,          /* raw input over the cap, or canonical form > 65536 */
	VR_BAD_JSON,           /* not JSON / trailing garbage / not an object */
	VR_NOT_CANONICAL,      /* duplicate keys, floats, out-of-range integers */
	VR_BAD_UTF8,           /* invalid UTF-8 or lone surrogate escape */
	VR_TOO_DEEP,           /* nesting over the limit */
	VR_MISSING_FIELD,      /* a required member is absent */
	VR_BAD_TYPE,           /* a member has the wrong JSON type */
	VR_BAD_ID,             /* user/room/event ID or server name grammar */
	VR_BAD_ID_CHAR,        /* NUL or another control character in an identifier */
	VR_FIELD_TOO_LONG,     /* type/state_key/sender/room_id over 255 bytes */
	VR_TOO_MANY_PREV,      /* prev_events > 20 */
	VR_TOO_MANY_AUTH,      /* auth_events > 10 */
	VR_BAD_ROOM_VERSION,   /* room version other than 10 or 11 */
	VR_BAD_EVENT_ID,       /* carried event_id is not the reference hash */
	VR_BAD_HASH_FORMAT,    /* hashes.sha256 is not base64 of 32 bytes */
	VR_BAD_SIGNATURE,      /* a signature by a known key does not verify */
	VR_MISSING_SIGNATURE,  /* the sender's server did not sign */
	VR_UNKNOWN_KEY,        /* no usable key for the sender's server */
	VR_EXPIRED_KEY,        /* only keys whose valid_until_ts < origin_server_ts */
	VR_INTERNAL,           /* should not happen (redaction impossible, ...) */
	VR__COUNT
};
const char *val_reason_str(enum val_reason r);     /* "too_large", ... */

#define VAL_CHECK_EVENT_ID   0x1
#define VAL_CHECK_HASHES     0x2
#define VAL_CHECK_SIGNATURES 0x4
#define VAL_CHECK_ALL        0x7

#define VAL_RAW_MAX_DEFAULT  (1u << 20)
#define VAL_FIELD_MAX        255
#define VAL_PREV_MAX         20
#define VAL_AUTH_MAX         10

/* Key lookup: fill pk and *valid_until_ts (ms; INT64_MAX if unbounded) for
 * server/key_id and return 0, or return -1 if unknown. */
typedef int (*val_key_fn)(void *arg, const char *server, const char *key_id,
                          unsigned char pk[32], int64_t *valid_until_ts);
/* Room version of a room from somewhere durable: 10, 11, another number, or
 * 0 if unknown. May be NULL. */
typedef int (*val_rv_fn)(void *arg, const char *room_id);

struct val_opts {
	size_t      raw_max;          /* 0: VAL_RAW_MAX_DEFAULT */
	int         max_depth;        /* 0: JSON_MAX_DEPTH_DEFAULT */
	int         room_version;     /* default when the room is unknown (10|11) */
	unsigned    checks;           /* VAL_CHECK_* */
	int         want_pdu;         /* fill r->pdu with the canonical (or redacted) PDU */
	const char *expect_event_id;  /* with VAL_CHECK_EVENT_ID: the event must be this one */
	val_key_fn  key;  void *key_arg;
	val_rv_fn   rv;   void *rv_arg;
	/* Known-event skip: called with the event ID after tier 1; return 1 if
	 * the event is already stored (verification skipped). May be NULL. */
	int       (*known)(void *arg, const char *event_id);
	void       *known_arg;
};

struct val_result {
	int      accept;                      /* 1 accept, 0 reject */
	enum val_reason reason;               /* VR_OK when accepted */
	char     message[256];
	char     event_id[PDU_EVENT_ID_MAX];  /* "" if it could not be computed */
	int      redacted;                    /* accepted in redacted form */
	int      skipped;                     /* 1 stored, 2 verified recently: no crypto */
	int      room_version;
	char     room_id[VAL_FIELD_MAX + 1];
	char     sender_server[VAL_FIELD_MAX + 1];
	char     missing_key_id[64];          /* VR_UNKNOWN_KEY: one key ID it lacked */
	struct buf pdu;                       /* want_pdu: canonical PDU bytes when accepted */
};

/* Bounded cache of recently verified events: event ID -> digest of the parts
 * the event ID does not cover (content hash + signatures). */
struct val_seen;

struct validator {
	struct json_doc doc;
	struct json_doc doc2;        /* carried event_id stripped */
	struct buf      scratch, scratch2;
	struct buf      doc2_text;     /* the event re-encoded without event_id: doc2's bytes */
	struct val_seen *seen;       /* NULL: no recently-verified skip */
	uint64_t        n_seen_hits, n_store_hits;
};

void validator_init(struct validator *v, size_t seen_cap);   /* seen_cap 0: none */
void validator_free(struct validator *v);
void val_result_init(struct val_result *r);
void val_result_free(struct val_result *r);

/* Validate one PDU. Returns r->accept. */
int  validate_pdu(struct validator *v, const struct val_opts *o, const char *bytes,
                  size_t n, struct val_result *r);

/* Identifier grammar, exposed for tests and fetchd. 1 valid, 0 not. */
int  val_server_name_ok(const char *s, size_t n);
int  val_user_id_ok(const char *s, size_t n);
int  val_room_id_ok(const char *s, size_t n);
int  val_event_id_ok(const char *s, size_t n);   /* v4+ form: '$' + 43 url-safe b64 */

/* Append the --jsonl verdict object (no newline):
 * {"event_id":..,"verdict":..,"reason":..,"message":..,"redacted":..}. */
void val_result_json(const struct val_result *r, struct buf *out);
/* FT_VERDICT meta line (no newline): the above plus room_id, room_version. */
void val_result_meta(const struct val_result *r, struct buf *out);

#endif
