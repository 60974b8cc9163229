/* test_histo.c: core/histo.h. Bucket edges (v <= 2^i lands in bucket i, the
 * last bucket is +Inf), the stats-frame JSON (trailing zero buckets left
 * out), and many threads observing at once lose nothing (relaxed atomics). */
#include <pthread.h>
#include <string.h>
#include "core/histo.h"
#include "../lib/tap.h"

static struct histo shared;
enum { THREADS = 4, PER = 100000 };

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER; i++) histo_observe_mt(&shared, (uint64_t)(i % 1000));
	return NULL;
}

int main(void)
{
	TAP_OK(histo_bucket(0) == 0 && histo_bucket(1) == 0, "0 and 1 land in bucket 0 (le 1)");
	TAP_OK(histo_bucket(2) == 1 && histo_bucket(3) == 2 && histo_bucket(4) == 2 && histo_bucket(5) == 3,
	       "2 -> le 2, 3 and 4 -> le 4, 5 -> le 8");
	int edges_ok = 1;
	for (int i = 1; i < HISTO_BUCKETS - 1; i++)
		edges_ok &= histo_bucket(histo_le(i)) == i && histo_bucket(histo_le(i) + 1) == i + 1;
	TAP_OK(edges_ok, "every edge 2^i is in bucket i, 2^i + 1 in bucket i + 1");
	TAP_OK(histo_bucket(UINT64_MAX) == HISTO_BUCKETS - 1, "huge values land in +Inf");
	TAP_OK(histo_le(HISTO_BUCKETS - 2) == (1ull << 26), "the last finite edge is 2^26 (67 s in us)");

	struct histo h = { .unit = "us" };
	struct buf b;
	buf_init(&b);
	histo_json(&h, &b);
	TAP_OK(b.len == strlen("{\"unit\":\"us\",\"sum\":0,\"b\":[]}") && !memcmp(b.data, "{\"unit\":\"us\",\"sum\":0,\"b\":[]}", b.len),
	       "empty histogram JSON");
	histo_observe(&h, 1);
	histo_observe(&h, 3);
	histo_observe(&h, 4);
	buf_reset(&b);
	histo_json(&h, &b);
	const char *want = "{\"unit\":\"us\",\"sum\":8,\"b\":[1,0,2]}";
	TAP_OK(b.len == strlen(want) && !memcmp(b.data, want, b.len), "JSON: sum and per-bucket counts, trailing zeros cut");
	buf_free(&b);

	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
	uint64_t n = 0, sum = 0;
	for (int i = 0; i < HISTO_BUCKETS; i++) n += shared.b[i];
	for (int i = 0; i < PER; i++) sum += (uint64_t)(i % 1000);
	TAP_OK(n == (uint64_t)THREADS * PER, "%d threads x %d observations: all counted", THREADS, PER);
	TAP_OK(shared.sum == sum * THREADS, "and the sum is exact");
	return tap_done();
}
