/* histo.c: see histo.h. */
#include "core/histo.h"
#include <time.h>

uint64_t histo_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void histo_json(const struct histo *h, struct buf *out)
{
	uint64_t c[HISTO_BUCKETS];
	int last = -1;
	for (int i = 0; i < HISTO_BUCKETS; i++) {
		c[i] = atomic_load_explicit(&h->b[i], memory_order_relaxed);
		if (c[i]) last = i;
	}
	buf_printf(out, "{\"unit\":\"%s\",\"sum\":%llu,\"b\":[", h->unit ? h->unit : "1",
	           (unsigned long long)atomic_load_explicit(&h->sum, memory_order_relaxed));
	for (int i = 0; i <= last; i++)
		buf_printf(out, "%s%llu", i ? "," : "", (unsigned long long)c[i]);
	buf_adds(out, "]}");
}
