/* pool.h: the one fork/join worker pool. A batch of n items is cut into
 * contiguous ranges, one per worker; worker 0 is the calling thread, the
 * others are threads started for this batch and joined before pool_run
 * returns, so when it returns every item has been processed and nothing of
 * the pool runs. Promises: ranges are disjoint, cover 0..n, and are handed
 * out in worker order (worker i gets the i-th range); a worker whose thread
 * cannot start has its range run by the calling thread (slower, never
 * wrong); the pool knows nothing of what the items are: per-worker state
 * (a validator, a cache) lives with the caller, indexed by worker.
 *
 *   struct pool p;
 *   pool_init(&p, nworkers);
 *   pool_run(&p, n, check_range, ctx);   // check_range(ctx, w, from, to)
 *   pool_free(&p);
 */
#ifndef FP_POOL_H
#define FP_POOL_H
#include <stddef.h>

/* Process items [from, to) as worker number `worker` (0..workers-1). */
typedef void pool_fn(void *arg, int worker, size_t from, size_t to);

struct pool {
	int   workers;           /* >= 1 */
	struct pool_part *part;  /* one per worker */
};

void pool_init(struct pool *p, int workers);     /* workers < 1 counts as 1 */
/* Run fn over items 0..n-1 on up to p->workers workers (never more workers
 * than items); returns once all are done. Returns the number of workers
 * that took part, so a caller can tell (and a test can check) the split. */
int  pool_run(struct pool *p, size_t n, pool_fn *fn, void *arg);
void pool_free(struct pool *p);

#endif
