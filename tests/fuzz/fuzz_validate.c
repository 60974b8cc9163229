/* fuzz_validate.c: libFuzzer harness for the validator (tier 1 + tier 2)
 * with a fixed keyring: one key of "fuzz.test" whose seed is all 7s. The
 * first input byte picks the room version and the toggles; the rest is the
 * PDU. Every verdict must be consistent (accept => no reason; reject =>
 * a reason code with a name); the verdict's meta line must be strict JSON
 * (purgatoryd refuses it otherwise); an accepted event's room_id must be
 * its whole decoded value, free of control characters (issue 13 item 7). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "matrix/validate.h"

static unsigned char pk[32];

static int key(void *arg, const char *server, const char *key_id, unsigned char out[32],
               int64_t *until)
{
	(void)arg;
	if (strcmp(server, "fuzz.test") || strcmp(key_id, "ed25519:f"))
		return -1;
	memcpy(out, pk, 32);
	*until = 1700000000000LL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct validator v;
	static struct val_result r;
	static int init;
	if (!init) {
		unsigned char seed[32], sk[64];
		if (sodium_init() < 0)
			abort();
		memset(seed, 7, sizeof seed);
		crypto_sign_seed_keypair(pk, sk, seed);
		validator_init(&v, 64);
		val_result_init(&r);
		init = 1;
	}
	if (size < 1)
		return 0;
	struct val_opts o = {0};
	o.room_version = (data[0] & 1) ? 11 : 10;
	o.checks = (data[0] >> 1) & VAL_CHECK_ALL;
	o.want_pdu = (data[0] >> 4) & 1;
	o.raw_max = 70000;
	o.key = key;
	validate_pdu(&v, &o, (const char *)data + 1, size - 1, &r);
	if (r.accept && r.reason != VR_OK)
		abort();
	if (!r.accept && (r.reason == VR_OK || !val_reason_str(r.reason)[0]))
		abort();
	static struct json_doc d;
	struct buf m;
	buf_init(&m);
	val_result_meta(&r, &m);
	if (json_parse(&d, m.data, m.len, 8) < 0) {
		fprintf(stderr, "verdict meta is not strict JSON (%s): %s\n", json_err_str(d.err), m.data);
		abort();
	}
	buf_free(&m);
	if (r.accept && !r.skipped) {
		if (json_parse(&d, (const char *)data + 1, size - 1, 64) < 0)
			abort();
		int t = json_obj_get(&d, 0, "event_id") >= 0 ? -1 : json_obj_get(&d, 0, "room_id");
		if (t >= 0 && (json_str_len(&d, t) != strlen(r.room_id) || json_str_has_ctl(&d, t)))
			abort();
	}
	return 0;
}
