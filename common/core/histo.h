/* histo.h: a fixed-bucket histogram for /metrics, cheap enough to observe
 * on every event. Buckets are powers of two of the observed unit (a
 * latency in microseconds, a batch size in events): bucket 0 holds v <= 1,
 * bucket i (1 <= i < HISTO_BUCKETS-1) holds 2^(i-1) < v <= 2^i, the last
 * one everything above 2^(HISTO_BUCKETS-2) (+Inf). With microseconds that
 * is 1 us .. 2^26 us (67 s). Counts are per bucket, not cumulative; the
 * count is their sum (computed when read, not stored).
 *
 * An observation is two relaxed atomic adds (the bucket, the sum) and a
 * count-leading-zeros: histo_observe_mt from worker threads, histo_observe
 * on the loop thread (relaxed load + store: no bus lock; a single writer
 * only). A reader on another thread may see a bucket and the sum a few
 * observations apart, never torn values.
 *
 * The stats frame carries it as {"unit":"us","sum":S,"b":[c0,c1,...]}
 * (trailing zero buckets left out), see histo_json; served expands it into
 * _bucket{le}, _sum and _count. */
#ifndef FP_HISTO_H
#define FP_HISTO_H
#include <stdatomic.h>
#include <stdint.h>
#include "core/buf.h"

#define HISTO_BUCKETS 28

struct histo {
	_Atomic uint64_t b[HISTO_BUCKETS];
	_Atomic uint64_t sum;
	const char *unit;            /* "us" (exposed in seconds) or "1" (a count) */
};

static inline int histo_bucket(uint64_t v)
{
	if (v <= 1) return 0;
	int i = 64 - __builtin_clzll(v - 1);
	return i < HISTO_BUCKETS - 1 ? i : HISTO_BUCKETS - 1;
}

/* Loop thread (the only writer of h). */
static inline void histo_observe(struct histo *h, uint64_t v)
{
#ifndef FP_NO_HISTO
	_Atomic uint64_t *b = &h->b[histo_bucket(v)];
	atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1, memory_order_relaxed);
	atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + v, memory_order_relaxed);
#else
	(void)h; (void)v;
#endif
}

/* Any thread, many writers. */
static inline void histo_observe_mt(struct histo *h, uint64_t v)
{
#ifndef FP_NO_HISTO
	atomic_fetch_add_explicit(&h->b[histo_bucket(v)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
#else
	(void)h; (void)v;
#endif
}

/* Monotonic microseconds, for latencies (the vDSO clock: ~20 ns). */
uint64_t histo_now_us(void);

/* The upper bound of bucket i in the histogram's unit (2^i); the last
 * bucket has none (+Inf). */
static inline uint64_t histo_le(int i) { return (uint64_t)1 << i; }

/* Append {"unit":..,"sum":S,"b":[...]} (trailing zero buckets left out). */
void histo_json(const struct histo *h, struct buf *out);

#endif
