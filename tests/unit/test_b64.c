/* test_b64.c: unpadded base64 against the spec vectors (vectors/matrix/
 * base64.json), both alphabets, and what the decoder must refuse. */
#include "../lib/tap.h"
#include "../lib/vectors.h"
#include "matrix/b64.h"
#include <sodium.h>
#include "matrix/json.h"
#include "core/buf.h"
#include <string.h>

static int dec_is(const char *src, const char *want, size_t wn)
{
	unsigned char out[64];
	long n = b64_decode(out, sizeof out, src, strlen(src));
	return n == (long)wn && memcmp(out, want, wn) == 0;
}

static int refused(const char *src)
{
	unsigned char out[64];
	return b64_decode(out, sizeof out, src, strlen(src)) == -1;
}

static void check_vectors(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/matrix/base64.json", tap_vectors());
	size_t flen = 0;
	char *file = slurp(path, &flen);
	TAP_OK(file != NULL, "read %s", path);
	if (file == NULL)
		return;
	struct json_doc d;
	memset(&d, 0, sizeof d);
	TAP_OK(json_parse(&d, file, flen, JSON_MAX_DEPTH_DEFAULT) == 0, "vector file parses strictly");
	int vs = json_obj_get(&d, 0, "vectors"), count = 0;
	for (int v = json_first(&d, vs); v >= 0; v = json_next_elem(&d, vs, v)) {
		char id[128], in[256], exp[512], enc[512];
		int k = json_obj_get(&d, v, "kind");
		if (json_str_copy(&d, json_obj_get(&d, v, "id"), id, sizeof id) < 0 ||
		    !json_str_eq(&d, k, "base64_encode")) {
			TAP_OK(0, "unexpected vector kind");
			continue;
		}
		int il = json_str_copy(&d, json_obj_get(&d, v, "input_ascii"), in, sizeof in);
		int el = json_str_copy(&d, json_obj_get(&d, v, "expected"), exp, sizeof exp);
		if (il < 0 || el < 0) {
			TAP_OK(0, "%s: fields missing", id);
			continue;
		}
		count++;
		size_t n = b64_encode(enc, (const unsigned char *)in, (size_t)il);
		TAP_OK(n == (size_t)el && strcmp(enc, exp) == 0 && b64_enc_len((size_t)il) == n + 1,
		       "%s encodes to \"%s\" (got \"%s\")", id, exp, enc);
		TAP_OK(dec_is(exp, in, (size_t)il), "%s decodes back", id);
	}
	TAP_OK(count == 7, "7 spec vectors seen (%d)", count);
	json_doc_free(&d);
	free(file);
}

int main(void)
{
	check_vectors();

	/* Bytes that differ between the alphabets: 0xfb 0xff -> "+/8" / "-_8". */
	const unsigned char raw[] = { 0xfb, 0xff, 0xbf, 0xfe };
	char enc[16];
	TAP_OK(b64_encode(enc, raw, 4) == 6 && strcmp(enc, "+/+//g") == 0, "standard alphabet (%s)", enc);
	TAP_OK(b64_encode_url(enc, raw, 4) == 6 && strcmp(enc, "-_-__g") == 0, "URL-safe alphabet (%s)", enc);
	TAP_OK(dec_is("+/+//g", (const char *)raw, 4), "decode standard");
	TAP_OK(dec_is("-_-__g", (const char *)raw, 4), "decode URL-safe");
	TAP_OK(dec_is("+/+//g==", (const char *)raw, 4), "decode standard with padding");
	TAP_OK(dec_is("-_-__g==", (const char *)raw, 4), "decode URL-safe with padding");
	TAP_OK(dec_is("Zm8=", "fo", 2) && dec_is("Zg==", "f", 1) && dec_is("Zm9v", "foo", 3),
	       "correct padding accepted");
	TAP_OK(dec_is("", "", 0), "empty decodes to empty");

	TAP_OK(refused("Zg="), "short padding refused");
	TAP_OK(refused("Zg==="), "extra padding refused");
	TAP_OK(refused("Zm9v="), "padding where none is due refused");
	TAP_OK(refused("Zm9v===="), "a padding block refused");
	TAP_OK(refused("=") && refused("===="), "padding alone refused");
	TAP_OK(refused("Z=g="), "padding in the middle refused");
	TAP_OK(refused("Zm9 v") && refused("Zm9v\n") && refused(" Zm9v"), "whitespace refused");
	TAP_OK(refused("Z"), "impossible length refused");
	{
		/* As Synapse (python base64) and gomatrixserverlib: unused bits in
		 * the last character are ignored, "Zh" decodes like "Zg". */
		unsigned char o[4];
		TAP_OK(b64_decode(o, sizeof(o), "Zh", 2) == 1 && o[0] == 'f', "non-zero trailing bits ignored (Zh = f)");
		TAP_OK(b64_decode(o, sizeof(o), "Zm9=", 4) == 2 && o[0] == 'f' && o[1] == 'o', "... also when padded (Zm9= = fo)");
		TAP_OK(b64_decode(o, sizeof(o), "Zm_", 3) == 2, "... and in the URL-safe alphabet");
	}
	TAP_OK(refused("+/_-"), "mixed alphabets refused");
	TAP_OK(refused("Zm9v!"), "foreign character refused");

	unsigned char small[2];
	TAP_OK(b64_decode(small, sizeof small, "Zm9v", 4) == -1, "output capacity enforced");
	TAP_OK(b64_decode(small, sizeof small, "Zm8", 3) == 2, "exact capacity is enough");

	/* Round trip every length 0..64 with every byte value showing up. */
	int ok = 1;
	unsigned char in[64], out[64];
	char e1[100], e2[100];
	for (size_t n = 0; n <= sizeof in; n++) {
		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)(n * 37 + i * 101);
		size_t l1 = b64_encode(e1, in, n), l2 = b64_encode_url(e2, in, n);
		ok &= l1 + 1 == b64_enc_len(n) && l2 == l1 && strchr(e1, '=') == NULL;
		ok &= b64_decode(out, sizeof out, e1, l1) == (long)n && memcmp(out, in, n) == 0;
		ok &= b64_decode(out, sizeof out, e2, l2) == (long)n && memcmp(out, in, n) == 0;
	}
	TAP_OK(ok, "round trip lengths 0..64 in both alphabets");

	/* The table encoders must write exactly what libsodium's encoder
	 * writes, for every length up to 300 and random bytes. */
	{
		unsigned char r[300];
		char a[420], b[420];
		int same = 1, cases = 0;
		TAP_OK(sodium_init() >= 0, "libsodium initialises");
		randombytes_buf(r, sizeof r);
		for (size_t n = 0; n <= sizeof r; n++)
			for (int url = 0; url < 2; url++) {
				size_t la = url ? b64_encode_url(a, r, n) : b64_encode(a, r, n);
				size_t lb = b64_encode_sodium(b, r, n, url);
				if (la != lb || strcmp(a, b) != 0) {
					if (same) fprintf(stderr, "# length %zu url %d: \"%s\" vs sodium \"%s\"\n", n, url, a, b);
					same = 0;
				}
				cases++;
			}
		TAP_OK(same && cases == 602, "table encoders agree with libsodium's on random bytes, lengths 0..300 (%d cases)", cases);
	}

	/* The fast table path must agree with the libsodium path wherever it
	 * answers: random strings over the characters that matter. */
	{
		static const char chars[] = "AZaz09+/-_=gQw \n";
		unsigned long x = 88172645463325252ul;
		long fast_ok = 0, agree = 1;
		for (int it = 0; it < 200000 && agree; it++) {
			char src[24];
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			size_t n = x % 20;
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13; x ^= x >> 7; x ^= x << 17;
				/* mostly alphabet characters, so many strings are valid */
				src[i] = x % 8 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[x % 62]
				               : chars[(x >> 8) % (sizeof chars - 1)];
			}
			unsigned char o1[16], o2[16];
			size_t cap = 8 + x % 9;
			long a = b64_decode_fast(o1, cap, src, n), b = b64_decode_sodium(o2, cap, src, n);
			if (a >= 0) {
				fast_ok++;
				agree = a == b && memcmp(o1, o2, (size_t)a) == 0;
			} else {
				agree = a == -2 && b64_decode(o1, cap, src, n) == b;
			}
			if (!agree)
				fprintf(stderr, "# disagree on \"%.*s\" cap %zu: fast %ld sodium %ld\n", (int)n, src, cap, a, b);
		}
		TAP_OK(agree && fast_ok > 50000, "fast decoder agrees with libsodium on 200k random strings (%ld taken by the fast path)", fast_ok);
	}
	return tap_done();
}
