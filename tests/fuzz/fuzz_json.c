/* fuzz_json.c: libFuzzer harness for the strict parser and canonical encoder.
 * Whatever parses must canonicalise, the canonical form must parse again and
 * re-encode to the same bytes (a fixed point), also with the parser's
 * canonical-as-written flags cleared; anything else aborts. */
#include "matrix/json.h"
#include "core/buf.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reused across runs, as the daemons reuse theirs: exercises token-array
 * reuse after both successes and failures. */
static struct json_doc d1, d2;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (json_parse(&d1, (const char *)data, size, JSON_MAX_DEPTH_DEFAULT) < 0) {
		if (d1.err == JSON_OK || d1.ntok != 0 || d1.err_off > size)
			abort();
		return 0;
	}
	struct buf c1, c2;
	buf_init(&c1);
	buf_init(&c2);
	if (json_canonical(&d1, 0, &c1, NULL, NULL) < 0)
		abort();
	if (c1.len > size)              /* canonical form never grows */
		abort();
	if (json_parse(&d2, c1.data, c1.len, JSON_MAX_DEPTH_DEFAULT) < 0) {
		fprintf(stderr, "canonical output refused (%s at %u): %s\n",
		        json_err_str(d2.err), d2.err_off, c1.data);
		abort();
	}
	if (json_canonical(&d2, 0, &c2, NULL, NULL) < 0 || c1.len != c2.len ||
	    memcmp(c1.data, c2.data, c1.len) != 0) {
		fprintf(stderr, "not a fixed point:\n%s\n%s\n", c1.data, c2.data);
		abort();
	}
	/* The encoder copies containers flagged canonical-as-written: with
	 * every flag cleared the full re-encoding must give the same bytes. */
	for (uint32_t i = 0; i < d1.ntok; i++)
		d1.tok[i].flags = 0;
	buf_reset(&c2);
	if (json_canonical(&d1, 0, &c2, NULL, NULL) < 0 || c1.len != c2.len ||
	    memcmp(c1.data, c2.data, c1.len) != 0) {
		fprintf(stderr, "as-written shortcut differs:\n%s\n%s\n", c1.data, c2.data);
		abort();
	}
	buf_free(&c1);
	buf_free(&c2);
	return 0;
}
