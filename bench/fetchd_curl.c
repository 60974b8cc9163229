/* fetchd_curl.c: the benchmark baseline for fetchd: a plain libcurl multi
 * loop fetching a list of URLs with a fixed number in flight, no
 * coalescing, no checks. Usage: fetchd_curl URLS_FILE CONCURRENCY
 * Prints "fetched=N failed=N elapsed_ms=T rate=R cpu_ms=C" (C: this
 * process's user + system CPU time for the loop, from getrusage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include "core/log.h"

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
	if (argc != 3) { fprintf(stderr, "usage: fetchd_curl URLS_FILE CONCURRENCY\n"); return 2; }
	FILE *f = fopen(argv[1], "r");
	char line[2048];
	char **urls = NULL;
	long n = 0, next = 0, done = 0, failed = 0;
	int conc = atoi(argv[2]), running = 0;
	if (!f) { perror(argv[1]); return 2; }
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (!*line) continue;
		urls = realloc(urls, (size_t)(n + 1) * sizeof *urls);
		urls[n++] = strdup(line);
	}
	fclose(f);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	long long t0 = mono_ms(), c0 = cpu_ms();
	for (;;) {
		while (running < conc && next < n) {
			CURL *e = curl_easy_init();
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
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
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
