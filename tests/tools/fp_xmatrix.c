/* fp_xmatrix.c: X-Matrix from the command line, for interoperability tests.
 *   fp_xmatrix sign KEYFILE ORIGIN DESTINATION METHOD URI [BODYFILE]
 *       prints the Authorization header value (KEYFILE: Synapse format)
 *   fp_xmatrix verify PUBKEY_B64 DESTINATION METHOD URI HEADER [BODYFILE]
 *       exit 0 "ok", 1 "bad signature", 2 malformed (reason printed)
 *   fp_xmatrix parse HEADER
 *       prints origin, destination, key and sig, one per line */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "matrix/matrix.h"
#include "../lib/vectors.h"

int main(int argc, char **argv)
{
	if (sodium_init() < 0) return 2;
	char err[256];
	char *body = NULL;
	size_t blen = 0;
	if (argc >= 7 && !strcmp(argv[1], "sign")) {
		struct signing_key k;
		if (signing_key_load(&k, argv[2], err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 2; }
		if (argc > 7 && !(body = slurp(argv[7], &blen))) { perror(argv[7]); return 2; }
		struct buf h;
		buf_init(&h);
		if (xmatrix_sign(&k, argv[3], argv[4], argv[5], argv[6], body, blen, &h) < 0) {
			fprintf(stderr, "the body is not JSON\n");
			return 2;
		}
		printf("%s\n", h.data);
		buf_free(&h);
		free(body);
		return 0;
	}
	if (argc >= 7 && !strcmp(argv[1], "verify")) {
		unsigned char pk[32];
		if (b64_decode(pk, sizeof pk, argv[2], strlen(argv[2])) != 32) { printf("malformed: public key\n"); return 2; }
		struct xmatrix_auth a;
		if (xmatrix_parse(argv[6], strlen(argv[6]), &a, err, sizeof err) < 0) { printf("malformed: %s\n", err); return 2; }
		if (argc > 7 && !(body = slurp(argv[7], &blen))) { perror(argv[7]); return 2; }
		if (a.has_destination && strcmp(a.destination, argv[3])) { printf("bad destination: %s\n", a.destination); return 1; }
		int r = xmatrix_verify(&a, pk, argv[4], argv[5], argv[3], body, blen);
		free(body);
		printf("%s\n", r == 1 ? "ok" : r == 0 ? "bad signature" : "malformed: sig or body");
		return r == 1 ? 0 : r == 0 ? 1 : 2;
	}
	if (argc == 3 && !strcmp(argv[1], "parse")) {
		struct xmatrix_auth a;
		if (xmatrix_parse(argv[2], strlen(argv[2]), &a, err, sizeof err) < 0) { printf("malformed: %s\n", err); return 2; }
		printf("%s\n%s\n%s\n%s\n", a.origin, a.has_destination ? a.destination : "", a.key, a.sig);
		return 0;
	}
	fprintf(stderr, "usage: fp_xmatrix sign KEYFILE ORIGIN DEST METHOD URI [BODYFILE]\n"
	                "       fp_xmatrix verify PUBKEY_B64 DEST METHOD URI HEADER [BODYFILE]\n"
	                "       fp_xmatrix parse HEADER\n");
	return 2;
}
