/* fetchd_curl.c: the benchmark baseline for fetchd: a plain libcurl multi
 * loop fetching a list of URLs with a fixed number in flight, no
 * coalescing, no checks. Usage: fetchd_curl URLS_FILE CONCURRENCY
 * [KEYFILE ORIGIN DEST]: with a key, each request carries an X-Matrix
 * Authorization header made per request as fetchd makes it (xmatrix_sign
 * over the URL's path and query), so the loop's CPU per fetch, signed
 * against unsigned, is what signing adds to a request.
 * Prints "fetched=N failed=N elapsed_ms=T rate=R cpu_ms=C" (C: this
 * process's user + system CPU time for the loop, from getrusage).
 * fetchd_curl --sign-cost KEYFILE URLS_FILE ROUNDS: per request target of
 * the file, xmatrix_sign (canonical JSON of {method, uri, origin,
 * destination}, ed25519, base64, the header) against crypto_sign_detached
 * of the same signed bytes built beforehand; prints "sign_us=S raw_us=R
 * added_us=S-R" (medians of ROUNDS paired rounds over every target). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include <sodium.h>
#include "core/log.h"
#include "core/buf.h"
#include "matrix/keys.h"
#include "matrix/xmatrix.h"

/* The request target of a URL: from the path on. */
static const char *target_of(const char *url)
{
	const char *u = strstr(url, "://");
	u = u ? u + 3 : url;
	return u + strcspn(u, "/?");
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int sign_cost(const char *keyfile, char **urls, long n, int rounds)
{
	struct signing_key k;
	char err[256];
	struct buf b, *sb;
	unsigned char sig[64];
	if (signing_key_load(&k, keyfile, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 2; }
	sb = calloc((size_t)n, sizeof *sb);
	for (long i = 0; i < n; i++) {
		buf_init(&sb[i]);
		xmatrix_signed_bytes("GET", target_of(urls[i]), "bench.test", "fast.test", NULL, 0, &sb[i]);
	}
	buf_init(&b);
	/* Paired rounds, the two sides alternating which goes first; medians
	 * of the per-round means, so a noisy spell hits both sides. */
	double *sa = calloc((size_t)rounds, sizeof *sa), *ra = calloc((size_t)rounds, sizeof *ra);
	for (int r = 0; r < rounds; r++) {
		for (int side = 0; side < 2; side++) {
			int sign_side = (side + r) % 2;
			double t0 = now_us();
			for (long i = 0; i < n; i++) {
				if (sign_side) {
					buf_reset(&b);
					xmatrix_sign(&k, "bench.test", "fast.test", "GET", target_of(urls[i]), NULL, 0, &b);
				} else {
					crypto_sign_detached(sig, NULL, (const unsigned char *)sb[i].data, sb[i].len, k.sk);
				}
			}
			(sign_side ? sa : ra)[r] = (now_us() - t0) / (double)n;
		}
	}
	qsort(sa, (size_t)rounds, sizeof *sa, cmp_d);
	qsort(ra, (size_t)rounds, sizeof *ra, cmp_d);
	printf("sign_us=%.2f raw_us=%.2f added_us=%.2f\n", sa[rounds / 2], ra[rounds / 2],
	       sa[rounds / 2] - ra[rounds / 2]);
	free(sa);
	free(ra);
	for (long i = 0; i < n; i++) buf_free(&sb[i]);
	free(sb);
	buf_free(&b);
	return 0;
}

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p; (void)arg;
	return sz * n;
}

static long long cpu_ms(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000LL +
	       (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000;
}

int main(int argc, char **argv)
{
	int costs = argc == 5 && strcmp(argv[1], "--sign-cost") == 0;
	struct signing_key key;
	char err[256];
	const char *origin = NULL, *dest = NULL;
	if (argc != 3 && argc != 6 && !costs) {
		fprintf(stderr, "usage: fetchd_curl URLS_FILE CONCURRENCY [KEYFILE ORIGIN DEST]\n"
		                "       fetchd_curl --sign-cost KEYFILE URLS_FILE ROUNDS\n");
		return 2;
	}
	if (sodium_init() < 0) return 2;
	if (argc == 6) {
		if (signing_key_load(&key, argv[3], err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 2; }
		origin = argv[4];
		dest = argv[5];
	}
	if (costs) argv++;                 /* argv[1] KEYFILE, argv[2] URLS_FILE */
	FILE *f = fopen(argv[costs ? 2 : 1], "r");
	char line[2048];
	char **urls = NULL;
	long n = 0, next = 0, done = 0, failed = 0;
	int conc = atoi(argv[2]), running = 0;
	if (!f) { perror(argv[costs ? 2 : 1]); return 2; }
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (!*line) continue;
		urls = realloc(urls, (size_t)(n + 1) * sizeof *urls);
		urls[n++] = strdup(line);
	}
	fclose(f);
	if (costs) return sign_cost(argv[1], urls, n, atoi(argv[3]) > 0 ? atoi(argv[3]) : 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	long long t0 = mono_ms(), c0 = cpu_ms();
	for (;;) {
		while (running < conc && next < n) {
			CURL *e = curl_easy_init();
			if (origin) {
				/* a header list per request, as fetchd builds one */
				struct buf h;
				buf_init(&h);
				buf_adds(&h, "Authorization: ");
				xmatrix_sign(&key, origin, dest, "GET", target_of(urls[next]), NULL, 0, &h);
				struct curl_slist *l = curl_slist_append(NULL, h.data);
				buf_free(&h);
				curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
				curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)l);
			}
			curl_easy_setopt(e, CURLOPT_URL, urls[next++]);
			curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
			curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
			curl_multi_add_handle(m, e);
			running++;
		}
		if (!running) break;
		int still;
		curl_multi_perform(m, &still);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE) continue;
			long status = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result != CURLE_OK || status != 200) failed++;
			done++;
			char *l = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &l);
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			curl_slist_free_all((struct curl_slist *)l);
			running--;
		}
		if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	long long el = mono_ms() - t0, cpu = cpu_ms() - c0;
	printf("fetched=%ld failed=%ld elapsed_ms=%lld rate=%.0f cpu_ms=%lld\n", done, failed, el,
	       el > 0 ? done * 1000.0 / el : 0.0, cpu);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
