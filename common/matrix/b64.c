/* b64.c: unpadded base64 for keys, hashes, signatures (standard alphabet)
 * and event IDs (URL-safe): table codecs for the common case, checked
 * against and backed by libsodium's constant-time ones. The decoder
 * is lenient where the spec says decoders should be (either alphabet,
 * padding optional but exact when present) and where Synapse and
 * gomatrixserverlib are: non-zero unused bits in the last character are
 * ignored (the spec's own test seed "...XA1" has them). */
#include "matrix/b64.h"
#include <pthread.h>
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

size_t b64_encode_sodium(char *out, const unsigned char *in, size_t n, int url)
{
	ensure_sodium();
	sodium_bin2base64(out, b64_enc_len(n), in, n,
	                  url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
	                      : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	return strlen(out);
}

/* What is encoded here is public (hashes, event IDs, signatures, public
 * keys), so encoding needs no constant-time care: a plain table encoder is
 * ~10x cheaper than libsodium's (2,300 instructions for an event ID's 32
 * bytes; fetchd computes one per answer). test_b64 checks it agrees with
 * libsodium's encoder on random inputs of every length up to 300. */
static size_t encode(char *out, const unsigned char *in, size_t n, const char *alpha)
{
	char *o = out;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		*o++ = alpha[v >> 18];
		*o++ = alpha[v >> 12 & 63];
		*o++ = alpha[v >> 6 & 63];
		*o++ = alpha[v & 63];
	}
	if (n - i == 1) {
		*o++ = alpha[in[i] >> 2];
		*o++ = alpha[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 8 | in[i + 1];
		*o++ = alpha[v >> 10];
		*o++ = alpha[v >> 4 & 63];
		*o++ = alpha[(v & 15) << 2];
	}
	*o = 0;
	return (size_t)(o - out);
}

size_t b64_encode(char *out, const unsigned char *in, size_t n)
{
	return encode(out, in, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

size_t b64_encode_url(char *out, const unsigned char *in, size_t n)
{
	return encode(out, in, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
}

/* Hashes and signatures are public, so the hot path needs no constant-time
 * decoding: a table decode of the common shape (no padding, one alphabet,
 * at most 1 KiB) gives the same bytes as the libsodium path below and is
 * ~10x faster. Anything else (padding, a stray byte) returns -2 and takes
 * the libsodium path, which has the final word. tests/unit/test_b64.c checks
 * the two agree on random and hand-made inputs. */
static unsigned char dec_tab[256];   /* 0x80: not in either alphabet */
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void dec_init(void)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (int i = 0; i < 256; i++) dec_tab[i] = 0x80;
	for (int i = 0; a[i]; i++) dec_tab[(unsigned char)a[i]] = (unsigned char)i;
	dec_tab['+'] = dec_tab['-'] = 62;
	dec_tab['/'] = dec_tab['_'] = 63;
}

long b64_decode_fast(unsigned char *out, size_t cap, const char *src, size_t n)
{
	pthread_once(&dec_once, dec_init);
	if (n > 1024 || n % 4 == 1)
		return -2;
	size_t want = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (want > cap)
		return -2;
	const unsigned char *s = (const unsigned char *)src;
	int std = 0, url = 0;
	unsigned bad = 0;
	unsigned char *o = out;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		unsigned a = dec_tab[s[i]], b = dec_tab[s[i + 1]], c = dec_tab[s[i + 2]], d = dec_tab[s[i + 3]];
		bad |= a | b | c | d;
		*o++ = (unsigned char)(a << 2 | b >> 4);
		*o++ = (unsigned char)(b << 4 | c >> 2);
		*o++ = (unsigned char)(c << 6 | d);
	}
	if (n - i >= 2) {
		unsigned a = dec_tab[s[i]], b = dec_tab[s[i + 1]], c = n - i == 3 ? dec_tab[s[i + 2]] : 0;
		bad |= a | b | c;
		*o++ = (unsigned char)(a << 2 | b >> 4);
		if (n - i == 3)
			*o++ = (unsigned char)(b << 4 | c >> 2);
	}
	if (bad & 0x80)
		return -2;
	/* '+' '/' and '-' '_' decode alike in the table; mixing them is not
	 * base64 in either alphabet (rare: look only when one is present). */
	for (size_t k = 0; k < n; k++) {
		unsigned char ch = s[k];
		if (ch < '0' || ch == '_') {
			std |= ch == '+' || ch == '/';
			url |= ch == '-' || ch == '_';
		}
	}
	if (std && url)
		return -2;
	return (long)(o - out);
}

long b64_decode(unsigned char *out, size_t cap, const char *src, size_t n)
{
	long fast = b64_decode_fast(out, cap, src, n);
	if (fast >= 0)
		return fast;
	return b64_decode_sodium(out, cap, src, n);
}

long b64_decode_sodium(unsigned char *out, size_t cap, const char *src, size_t n)
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
