/* json.h: strict JSON parsing on top of jsmn and the Matrix canonical encoder.
 * Promises: json_parse() accepts only what Matrix canonical JSON (room v6+)
 * accepts: no duplicate keys, no floats/exponents/-0, integers within
 * +-(2^53-1), valid UTF-8 (no lone surrogate escapes), nesting <= max_depth,
 * nothing but whitespace after the value. The encoder emits the canonical
 * form: keys sorted by UTF-8 bytes (memcmp), no insignificant whitespace,
 * only '"', '\\' and control characters escaped (as \b \f \n \r \t or \u00XX).
 * Tokens point into the caller's buffer; nothing is copied. */
#ifndef FP_JSON_H
#define FP_JSON_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

#define JSON_MAX_DEPTH_DEFAULT 64

enum json_type { JSON_NONE = 0, JSON_OBJECT, JSON_ARRAY, JSON_STRING,
                 JSON_INT, JSON_TRUE, JSON_FALSE, JSON_NULL };

/* Why a document was refused; stable codes map to validated's reasons. */
enum json_err {
	JSON_OK = 0,
	JSON_E_SYNTAX,      /* not JSON at all / truncated */
	JSON_E_TRAILING,    /* garbage after the value */
	JSON_E_DUPKEY,      /* duplicate key in an object */
	JSON_E_FLOAT,       /* fraction, exponent or -0 */
	JSON_E_RANGE,       /* integer outside +-(2^53-1) */
	JSON_E_UTF8,        /* invalid UTF-8 bytes or lone surrogate escape */
	JSON_E_DEPTH,       /* nesting deeper than allowed */
	JSON_E_NOMEM,       /* too many tokens */
};

struct json_tok {
	uint8_t  type;      /* enum json_type */
	uint8_t  flags;     /* JSON_TF_* */
	uint32_t start;     /* byte offset of the value (strings: after the quote) */
	uint32_t end;       /* one past the last byte (strings: before the quote) */
	uint32_t size;      /* objects: number of keys; arrays: elements */
	uint32_t next;      /* index of the token after this whole subtree */
	int64_t  ival;      /* JSON_INT value */
};

/* Containers: the bytes [start, end) are already the canonical encoding
 * (no whitespace, keys in order, no escapes anywhere inside), so the encoder
 * may copy them as they are. */
#define JSON_TF_CANON 0x1

struct json_doc {
	const char      *src;
	size_t           len;
	struct json_tok *tok;   /* tok[0] is the root; an object's children are
	                           key, value, key, value ... (keys are JSON_STRING) */
	uint32_t         ntok;
	uint32_t         cap;
	enum json_err    err;
	uint32_t         err_off;   /* byte offset where the fault was found */
};

/* Parse buf[0..len) strictly. Returns 0 or -1 with d->err/err_off set.
 * d must be zero-initialised or previously used (its token array is reused). */
int  json_parse(struct json_doc *d, const char *buf, size_t len, int max_depth);
void json_doc_free(struct json_doc *d);
const char *json_err_str(enum json_err e);

/* Navigation. Indexes are token indexes; -1 means absent. */
int  json_obj_get(const struct json_doc *d, int obj, const char *key);
/* Iterate an object: for (int k = json_first(d,o); k >= 0; k = json_next_kv(d,o,k))
 * key token k, value token k+1. For arrays json_first/json_next_elem. */
int  json_first(const struct json_doc *d, int container);
int  json_next_kv(const struct json_doc *d, int obj, int key);
int  json_next_elem(const struct json_doc *d, int arr, int elem);
/* Compare a string token's decoded value with a C string (exact bytes). */
int  json_str_eq(const struct json_doc *d, int t, const char *s);
/* Decode a string token into out (unescaped UTF-8, NUL terminated).
 * Returns decoded length or -1 if it does not fit in cap-1 bytes. */
int  json_str_copy(const struct json_doc *d, int t, char *out, size_t cap);
/* Decoded byte length of a string token. */
size_t json_str_len(const struct json_doc *d, int t);
/* 1 if the decoded value of string token t holds a control character: a
 * byte below 0x20 (NUL included, which a C-string copy would silently cut
 * at) or 0x7f. Raw control bytes never parse; these come from escapes such
 * as \u0000 or \n. 0 otherwise (and for non-strings). */
int  json_str_has_ctl(const struct json_doc *d, int t);
/* Base64 held in a JSON string (hashes, signatures, keys): the JSON escapes
 * are undone first ("\/" is '/', "\u0041" is 'A': the same value), then the
 * base64 (either alphabet, padded or not) is decoded into out. Returns the
 * decoded byte count, or -1: not a string, decoded value longer than
 * JSON_B64_MAX bytes, not base64, or more than cap bytes. */
#define JSON_B64_MAX 1024
long json_str_b64(const struct json_doc *d, int t, unsigned char *out, size_t cap);

/* Length (1..4) of the well-formed UTF-8 sequence at p (n bytes
 * available), 0 if the bytes there are not one. */
int  json_utf8_seq_len(const char *p, size_t n);

/* Canonical encoding. The filter, when given, is asked for each object
 * member at every level; return 0 to drop it. `path` is the key path from the
 * root (path[0] is the top-level key), depth entries long, each a NUL-terminated
 * decoded key. Used for redaction and for stripping signatures/unsigned. */
typedef int (*json_keep_fn)(void *arg, const char *const *path, int depth);
/* A filter may return JSON_KEEP_ALL: keep the member and everything under it
 * without being asked about its descendants (and without re-encoding a
 * subtree that is already canonical). */
#define JSON_KEEP_ALL 2
int  json_canonical(const struct json_doc *d, int t, struct buf *out,
                    json_keep_fn keep, void *arg);
/* Encode a decoded string as a canonical JSON string literal (with quotes). */
void json_put_string(struct buf *out, const char *s, size_t n);

/* Parse + re-encode: convenience for tools and tests. Returns 0 or -1. */
int  json_canonicalize(const char *in, size_t n, struct buf *out, enum json_err *err);

#endif
