/* xmatrix.h: Matrix federation request authentication ("X-Matrix").
 * A request is signed over the canonical JSON of {"method", "uri",
 * "origin", "destination", "content"?}: uri is the request target exactly
 * as sent (path and query, percent-encoding untouched), content the JSON
 * body when there is one (absent otherwise). The Authorization header
 * carries origin, destination, key (the key ID) and sig (unpadded base64 of
 * the ed25519 signature).
 * Promises: xmatrix_sign writes every value quoted, names in lower case and
 * destination always; xmatrix_parse reads any header the auth-params
 * grammar allows (scheme and names case-insensitive, values a token or a
 * quoted-string with backslash escapes, optional whitespace around commas,
 * empty list elements and unknown names ignored) and refuses a repeated
 * name, a control byte, an over-long value and a missing origin, key or
 * sig; nothing is allocated; verification is one ed25519 check. */
#ifndef FP_XMATRIX_H
#define FP_XMATRIX_H
#include <stddef.h>
#include "core/buf.h"
#include "matrix/keys.h"

#define XMATRIX_FIELD_MAX 256

struct xmatrix_auth {
	char origin[XMATRIX_FIELD_MAX];
	char destination[XMATRIX_FIELD_MAX];   /* "" when absent */
	int  has_destination;
	char key[XMATRIX_FIELD_MAX];
	char sig[XMATRIX_FIELD_MAX];
};

/* Parse an Authorization header value (without "Authorization:"). 0, or -1
 * with a one-line reason in err. */
int  xmatrix_parse(const char *hdr, size_t n, struct xmatrix_auth *a, char *err, size_t errlen);

/* The canonical bytes that are signed, into out (appended). content may be
 * NULL (no body); otherwise it must be a JSON value (it is parsed strictly
 * and re-encoded canonically). 0, or -1 if content is not JSON. */
int  xmatrix_signed_bytes(const char *method, const char *uri, const char *origin,
                          const char *destination, const char *content, size_t clen,
                          struct buf *out);

/* Sign a request and append the whole header value ("X-Matrix origin=...")
 * to out. 0, or -1 (content not JSON). */
int  xmatrix_sign(const struct signing_key *k, const char *origin, const char *destination,
                  const char *method, const char *uri, const char *content, size_t clen,
                  struct buf *out);

/* Check a parsed header's signature with the origin's public key pk for
 * this request. destination: the receiver's own server name, which the
 * signed object names (when the header has none, this one is assumed).
 * 1 good, 0 bad signature, -1 malformed (sig not base64, content not JSON). */
int  xmatrix_verify(const struct xmatrix_auth *a, const unsigned char pk[32],
                    const char *method, const char *uri, const char *destination,
                    const char *content, size_t clen);

#endif
