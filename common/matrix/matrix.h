/* matrix.h: the Matrix library's one public header (build/libfpmatrix.a).
 * Everything fedpipe knows of the Matrix format, usable without the rest of
 * fedpipe: strict JSON and canonical JSON (json.h), unpadded base64
 * (b64.h), the server-name grammar (servername.h), PDU hashes, event IDs,
 * redaction and signatures for room versions 10 and 11 (pdu.h), signing
 * keys and key documents (keys.h), the two-tier PDU validator
 * (validate.h), and X-Matrix request signing and parsing (xmatrix.h).
 * Depends on libsodium and jsmn only; of fedpipe's own code it carries core/buf.c (the byte buffer its encoders write to), so a
 * program links libfpmatrix.a alone (tests/unit/test_matrix_alone.c).
 * Call sodium_init() once before using it. */
#ifndef FP_MATRIX_H
#define FP_MATRIX_H
#include "matrix/b64.h"
#include "matrix/json.h"
#include "matrix/servername.h"
#include "matrix/pdu.h"
#include "matrix/keys.h"
#include "matrix/validate.h"
#include "matrix/xmatrix.h"
#endif
