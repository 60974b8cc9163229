/* fuzz_pdu.c: libFuzzer harness for pdu.c: whatever the strict parser
 * accepts must go through event IDs (v10, v11), the content hash, redaction
 * and the deep checks without crashing, and redaction must be idempotent. */
#include "matrix/pdu.h"
#include "matrix/json.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_doc d, d2;
	static const unsigned char pk[32];
	struct buf b, b2;
	unsigned char h[32];
	char eid[PDU_EVENT_ID_MAX];

	if (json_parse(&d, (const char *)data, size, 64) < 0 || d.tok[0].type != JSON_OBJECT)
		return 0;
	buf_init(&b);
	buf_init(&b2);
	pdu_event_id(&d, 0, PDU_RV_10, eid);
	pdu_event_id(&d, 0, PDU_RV_11, eid);
	pdu_content_hash(&d, 0, h);
	pdu_check_content_hash(&d, 0, &b);
	pdu_check_signature(&d, 0, PDU_RV_11, "a", "ed25519:a", pk, &b, eid);
	json_verify_object(&d, 0, "a", "ed25519:a", pk);
	for (int rv = PDU_RV_10; rv <= PDU_RV_11; rv++) {
		buf_reset(&b);
		if (pdu_redact(&d, 0, rv, 0, &b) < 0)
			continue;
		if (json_parse(&d2, b.data, b.len, 64) < 0)
			abort();               /* our canonical output must re-parse */
		buf_reset(&b2);
		if (pdu_redact(&d2, 0, rv, 0, &b2) < 0 || b.len != b2.len || memcmp(b.data, b2.data, b.len) != 0)
			abort();               /* redacting twice changes nothing */
	}
	buf_free(&b);
	buf_free(&b2);
	return 0;
}
