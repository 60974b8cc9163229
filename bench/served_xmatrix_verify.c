/* served_xmatrix_verify.c: the cost of the cryptography in one X-Matrix
 * check, for bench/served_xmatrix.sh. Prints two numbers (µs per call):
 * a raw ed25519 verify (crypto_sign_verify_detached) of the canonical
 * bytes a GET /_matrix/federation/v1/event request is signed over, and the
 * whole xmatrix_parse + xmatrix_verify served runs. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "matrix/matrix.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	if (sodium_init() < 0 || n < 1) return 1;
	struct signing_key k;
	if (signing_key_generate(&k, "bench") < 0) return 1;
	const char *uri = "/_matrix/federation/v1/event/%24LqaaLmSpqbQCtKCaVB4dXfg-Z7HvSVPgGfxkj87424o";
	struct buf h, m;
	buf_init(&h);
	buf_init(&m);
	if (xmatrix_sign(&k, "r1.test:8448", "a.test:8448", "GET", uri, NULL, 0, &h) < 0) return 1;
	if (xmatrix_signed_bytes("GET", uri, "r1.test:8448", "a.test:8448", NULL, 0, &m) < 0) return 1;
	unsigned char sig[64];
	crypto_sign_detached(sig, NULL, (const unsigned char *)m.data, m.len, k.sk);
	volatile int ok = 0;
	double t0 = now_us();
	for (int i = 0; i < n; i++)
		ok += crypto_sign_verify_detached(sig, (const unsigned char *)m.data, m.len, k.pk) == 0;
	double raw = (now_us() - t0) / n;
	t0 = now_us();
	char err[128];
	for (int i = 0; i < n; i++) {
		struct xmatrix_auth a;
		if (xmatrix_parse(h.data, h.len, &a, err, sizeof err) < 0) return 1;
		ok += xmatrix_verify(&a, k.pk, "GET", uri, "a.test:8448", NULL, 0) == 1;
	}
	double full = (now_us() - t0) / n;
	if (ok != 2 * n) { fprintf(stderr, "verification failed\n"); return 1; }
	printf("%.2f %.2f\n", raw, full);
	buf_free(&h);
	buf_free(&m);
	return 0;
}
