/* test_xmatrix.c: X-Matrix request authentication (matrix/xmatrix.h)
 * against ../shared/vectors/matrix/xmatrix.json: the two signatures of
 * requests Synapse made (GET, and PUT with a body) are reproduced to the
 * byte, header and all, and verify; each of the eight header parses taken
 * from Synapse's, ruma's and gomatrixserverlib's tests gives the expected
 * fields. Then the refusals: tampered method/uri/body/destination, another
 * key, malformed headers (repeated name, missing sig, control byte, junk,
 * over-long value, another scheme). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include "matrix/matrix.h"
#include "matrix/xmatrix.h"
#include "../lib/tap.h"
#include "../lib/vectors.h"

static int parse_s(const char *h, struct xmatrix_auth *a, char *err)
{
	return xmatrix_parse(h, strlen(h), a, err, 200);
}

int main(void)
{
	if (sodium_init() < 0) return 1;
	char path[1024], err[200];
	size_t len;
	snprintf(path, sizeof path, "%s/matrix/xmatrix.json", tap_vectors());
	char *text = slurp(path, &len);
	struct json_doc d = { 0 };
	TAP_OK(text && json_parse(&d, text, len, 64) == 0, "load %s", path);
	if (!text) return tap_done();

	int sk = json_obj_get(&d, 0, "signing_key");
	char *seed64 = str_member(&d, sk, "seed_unpadded_b64"), *kid = str_member(&d, sk, "key_id"), *pub = str_member(&d, sk, "public_key");
	struct signing_key key;
	memset(&key, 0, sizeof key);
	unsigned char pk[32];
	TAP_OK(b64_decode(key.seed, 32, seed64, strlen(seed64)) == 32 && b64_decode(pk, 32, pub, strlen(pub)) == 32,
	       "the vector key decodes");
	crypto_sign_seed_keypair(key.pk, key.sk, key.seed);
	snprintf(key.key_id, sizeof key.key_id, "%s", kid);
	TAP_OK(memcmp(pk, key.pk, 32) == 0, "its public key is the vector's");

	int sv = json_obj_get(&d, 0, "sign");
	for (int v = json_first(&d, sv); v >= 0; v = json_next_elem(&d, sv, v)) {
		char *id = str_member(&d, v, "id"), *m = str_member(&d, v, "method"), *uri = str_member(&d, v, "uri"),
		     *o = str_member(&d, v, "origin"), *dst = str_member(&d, v, "destination"),
		     *c = str_member(&d, v, "content_text"), *sig = str_member(&d, v, "expected_sig"),
		     *hdr = str_member(&d, v, "expected_header");
		struct buf h;
		buf_init(&h);
		TAP_OK(xmatrix_sign(&key, o, dst, m, uri, c, c ? strlen(c) : 0, &h) == 0 && strstr(h.data, sig),
		       "%s: our signature is Synapse's", id);
		/* our header orders destination before key; every value the same */
		struct xmatrix_auth ours = { 0 }, theirs = { 0 };
		TAP_OK(xmatrix_parse(h.data, h.len, &ours, err, sizeof err) == 0 && parse_s(hdr, &theirs, err) == 0 &&
		       !strcmp(ours.origin, theirs.origin) && !strcmp(ours.destination, theirs.destination) &&
		       !strcmp(ours.key, theirs.key) && !strcmp(ours.sig, theirs.sig),
		       "%s: our header carries the expected header's values (%s)", id, h.data);
		TAP_OK(xmatrix_verify(&theirs, pk, m, uri, "unused", c, c ? strlen(c) : 0) == 1,
		       "%s: the expected header verifies", id);
		TAP_OK(xmatrix_verify(&theirs, pk, strcmp(m, "GET") ? "GET" : "PUT", uri, "x", c, c ? strlen(c) : 0) == 0,
		       "%s: another method does not", id);
		char uri2[1024];
		snprintf(uri2, sizeof uri2, "%s&x=1", uri);
		TAP_OK(xmatrix_verify(&theirs, pk, m, uri2, "x", c, c ? strlen(c) : 0) == 0, "%s: another uri does not", id);
		struct xmatrix_auth other = theirs;
		snprintf(other.destination, sizeof other.destination, "evil.example");
		TAP_OK(xmatrix_verify(&other, pk, m, uri, "x", c, c ? strlen(c) : 0) == 0, "%s: another destination does not", id);
		if (c) {
			TAP_OK(xmatrix_verify(&theirs, pk, m, uri, "x", "{}", 2) == 0, "%s: another body does not", id);
			TAP_OK(xmatrix_verify(&theirs, pk, m, uri, "x", NULL, 0) == 0, "%s: no body does not", id);
			TAP_OK(xmatrix_verify(&theirs, pk, m, uri, "x", "{nope", 5) == -1, "%s: a body that is not JSON: malformed", id);
		}
		buf_free(&h);
		free(id); free(m); free(uri); free(o); free(dst); free(c); free(sig); free(hdr);
	}

	int pv = json_obj_get(&d, 0, "parse");
	for (int v = json_first(&d, pv); v >= 0; v = json_next_elem(&d, pv, v)) {
		char *id = str_member(&d, v, "id"), *hdr = str_member(&d, v, "header");
		int e = json_obj_get(&d, v, "expect");
		char *o = str_member(&d, e, "origin"), *k = str_member(&d, e, "key"), *s = str_member(&d, e, "sig"), *dst = str_member(&d, e, "destination");
		struct xmatrix_auth a;
		int rc = parse_s(hdr, &a, err);
		TAP_OK(rc == 0 && !strcmp(a.origin, o) && !strcmp(a.key, k) && !strcmp(a.sig, s) &&
		       (dst ? a.has_destination && !strcmp(a.destination, dst) : !a.has_destination),
		       "%s: parsed as the reference parsers do (%s)", id, rc ? err : a.key);
		free(id); free(hdr); free(o); free(k); free(s); free(dst);
	}

	/* refusals */
	struct xmatrix_auth a;
	const char *bad[][2] = {
		{ "X-Matrix origin=a,origin=b,key=\"k\",sig=\"s\"", "a repeated origin" },
		{ "X-Matrix origin=a,key=\"k\"", "a missing sig" },
		{ "X-Matrix key=\"k\",sig=\"s\"", "a missing origin" },
		{ "X-Matrix origin=\"a\x01\",key=\"k\",sig=\"s\"", "a control byte" },
		{ "X-Matrix origin=\"a\" junk,key=\"k\",sig=\"s\"", "junk after a value" },
		{ "X-Matrix origin=\"a,key=\"k\",sig=\"s", "an unterminated quote" },
		{ "Bearer origin=a,key=k,sig=s", "another scheme" },
		{ "X-Matrixorigin=a,key=k,sig=s", "no space after the scheme" },
		{ "X-Matrix =a,key=k,sig=s", "an empty name" },
		{ "X-Matrix origin=,key=k,sig=s", "an empty token value" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		TAP_OK(parse_s(bad[i][0], &a, err) == -1, "refused: %s (%s)", bad[i][1], err);
	char longh[1200];
	snprintf(longh, sizeof longh, "X-Matrix origin=\"%0600d\",key=k,sig=s", 0);
	TAP_OK(parse_s(longh, &a, err) == -1, "refused: a 600-byte origin (%s)", err);
	TAP_OK(parse_s("x-matrix ORIGIN=a,Key=k,SIG=s,", &a, err) == 0 && !strcmp(a.origin, "a"),
	       "scheme and names in any case, a trailing comma");
	/* a header we sign with characters that need escaping round-trips */
	struct signing_key k2;
	signing_key_generate(&k2, "q");
	struct buf h;
	buf_init(&h);
	xmatrix_sign(&k2, "o\"rig\\in", "dest", "GET", "/x", NULL, 0, &h);
	TAP_OK(xmatrix_parse(h.data, h.len, &a, err, sizeof err) == 0 && !strcmp(a.origin, "o\"rig\\in") &&
	       xmatrix_verify(&a, k2.pk, "GET", "/x", "dest", NULL, 0) == 1,
	       "quotes and backslashes in a value are escaped and verify (%s)", h.data);
	TAP_OK(xmatrix_verify(&a, key.pk, "GET", "/x", "dest", NULL, 0) == 0, "another server's key does not verify");
	strcpy(a.sig, "not*base64");
	TAP_OK(xmatrix_verify(&a, k2.pk, "GET", "/x", "dest", NULL, 0) == -1, "a sig that is not base64: malformed");
	buf_free(&h);
	json_doc_free(&d);
	free(text); free(seed64); free(kid); free(pub);
	return tap_done();
}
