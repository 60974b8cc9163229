/* b64.c: unpadded base64 for keys, hashes, signatures (standard alphabet)
 * and event IDs (URL-safe), on libsodium's constant-time codecs. The decoder
 * is lenient where the spec says decoders should be (either alphabet,
 * padding optional but exact when present) and where Synapse and
 * gomatrixserverlib are: non-zero unused bits in the last character are
 * ignored (the spec's own test seed "...XA1" has them). */
#include "b64.h"
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

/* libsodium asks for sodium_init() before use; it is idempotent and
 * thread-safe but takes a lock, so remember that it has been done. */
static atomic_int sodium_ready;

static void ensure_sodium(void)
{
	if (!atomic_load_explicit(&sodium_ready, memory_order_acquire)) {
		if (sodium_init() >= 0)
			atomic_store_explicit(&sodium_ready, 1, memory_order_release);
	}
}

size_t b64_enc_len(size_t n)
{
	return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

static size_t encode(char *out, const unsigned char *in, size_t n, int variant)
{
	ensure_sodium();
	sodium_bin2base64(out, b64_enc_len(n), in, n, variant);
	return strlen(out);
}

size_t b64_encode(char *out, const unsigned char *in, size_t n)
{
	return encode(out, in, n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

size_t b64_encode_url(char *out, const unsigned char *in, size_t n)
{
	return encode(out, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

long b64_decode(unsigned char *out, size_t cap, const char *src, size_t n)
{
	ensure_sodium();
	/* With '=' present only the padded variants can succeed, and they
	 * insist on exactly the right amount; without it, only the unpadded
	 * ones. Each variant knows one alphabet, so try both; a string mixing
	 * '+' with '_' matches neither. No ignore set: whitespace is refused. */
	int padded = n > 0 && memchr(src, '=', n) != NULL;
	const int variants[2] = {
		padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	};
	for (int i = 0; i < 2; i++) {
		size_t got = 0;
		if (sodium_base642bin(out, cap, src, n, NULL, &got, NULL, variants[i]) == 0)
			return (long)got;
	}
	/* Retry once with the last character's unused bits cleared. */
	size_t m = n;
	while (m > 0 && src[m - 1] == '=') m--;
	if (m == 0 || m % 4 == 1 || m % 4 == 0 || n > 1024) return -1;
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *alpha = std, *pos = strchr(std, src[m - 1]);
	if (src[m - 1] == 0) return -1;
	if (pos == NULL) { alpha = url; pos = strchr(url, src[m - 1]); }
	if (pos == NULL) return -1;
	int v = (int)(pos - alpha), mask = m % 4 == 2 ? 0x30 : 0x3c;
	if ((v & mask) == v) return -1;   /* bits were already clear: a real fault */
	char tmp[1024];
	memcpy(tmp, src, n);
	tmp[m - 1] = alpha[v & mask];
	for (int i = 0; i < 2; i++) {
		size_t got = 0;
		if (sodium_base642bin(out, cap, tmp, n, NULL, &got, NULL, variants[i]) == 0)
			return (long)got;
	}
	return -1;
}
