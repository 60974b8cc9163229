/* test_pool.c: core/pool.h. Every item of a batch is processed exactly once,
 * by the worker whose range holds it; ranges are contiguous and in worker
 * order; never more workers than items; worker 0 is the calling thread and
 * the others are other threads that really run at the same time; pool_run
 * returns only when every range is done; a pool is reusable across
 * batches of any size. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "core/pool.h"
#include "../lib/tap.h"

#define MAXW 8
#define MAXN 5000

struct run {
	atomic_int  seen[MAXN];          /* times each item was processed */
	int         owner[MAXN];         /* the worker that processed it */
	size_t      from[MAXW], to[MAXW];
	int         called[MAXW];
	pthread_t   thread[MAXW];
	atomic_int  arrived;             /* rendezvous test */
	int         met[MAXW];
};

static void count_range(void *arg, int w, size_t from, size_t to)
{
	struct run *r = arg;
	r->called[w]++;
	r->from[w] = from;
	r->to[w] = to;
	r->thread[w] = pthread_self();
	for (size_t i = from; i < to; i++) {
		atomic_fetch_add(&r->seen[i], 1);
		r->owner[i] = w;
	}
}

/* Each worker waits (up to ~20 s, a liveness bound, not a timing check)
 * until every worker of the batch has arrived: passes only if they run at
 * the same time. */
static void rendezvous(void *arg, int w, size_t from, size_t to)
{
	struct run *r = arg;
	const int want = 2;                     /* 2 items on 2 workers */
	(void)from; (void)to;
	atomic_fetch_add(&r->arrived, 1);
	struct timespec ms = { 0, 1000000 };
	for (int i = 0; i < 20000 && atomic_load(&r->arrived) < want; i++)
		nanosleep(&ms, NULL);
	r->met[w] = atomic_load(&r->arrived) >= want;
}

static int check_batch(struct pool *p, size_t n, struct run *r)
{
	memset(r, 0, sizeof *r);
	int used = pool_run(p, n, count_range, r);
	int expect = n == 0 ? 0 : ((size_t)p->workers < n ? p->workers : (int)n);
	int ok = used == expect;
	for (size_t i = 0; i < n; i++)
		ok &= atomic_load(&r->seen[i]) == 1 && r->owner[i] < used
		      && r->from[r->owner[i]] <= i && i < r->to[r->owner[i]];
	for (size_t i = n; i < MAXN; i++)
		ok &= atomic_load(&r->seen[i]) == 0;
	/* contiguous, in worker order, each worker called at most once */
	size_t next = 0;
	for (int w = 0; w < used; w++) {
		ok &= r->called[w] <= 1;
		if (r->called[w] && r->from[w] < r->to[w]) {
			ok &= r->from[w] == next;
			next = r->to[w];
		}
	}
	ok &= next == n;
	for (int w = used; w < MAXW; w++)
		ok &= r->called[w] == 0;
	if (used > 0)
		ok &= r->called[0] == 1 && pthread_equal(r->thread[0], pthread_self());
	return ok;
}

int main(void)
{
	static struct run r;
	static const int workers[] = { 1, 2, 3, 4, 8 };
	static const size_t sizes[] = { 0, 1, 2, 3, 5, 7, 8, 9, 100, 1024, 4999, 5000 };
	for (size_t a = 0; a < sizeof workers / sizeof *workers; a++) {
		struct pool p;
		pool_init(&p, workers[a]);
		int bad = 0;
		for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++)
			if (!check_batch(&p, sizes[b], &r)) {
				bad++;
				fprintf(stderr, "  workers %d, %zu items: wrong split\n", workers[a], sizes[b]);
			}
		TAP_OK(bad == 0, "%d worker(s), batches of 0..5000 items (one pool reused): each item "
		       "once, contiguous ranges in worker order, worker 0 the caller", workers[a]);
		pool_free(&p);
	}

	struct pool p;
	pool_init(&p, 0);
	TAP_OK(p.workers == 1 && check_batch(&p, 10, &r), "0 workers asked: one (the caller)");
	pool_free(&p);

	pool_init(&p, 4);
	TAP_OK(check_batch(&p, 4, &r) && !pthread_equal(r.thread[1], pthread_self())
	       && !pthread_equal(r.thread[1], r.thread[2]) && !pthread_equal(r.thread[2], r.thread[3]),
	       "4 workers, 4 items: workers 1..3 are threads of their own");
	pool_free(&p);

	pool_init(&p, 2);
	memset(&r, 0, sizeof r);
	pool_run(&p, 2, rendezvous, &r);
	TAP_OK(r.met[0] && r.met[1], "2 workers run at the same time (each saw the other arrive)");
	pool_free(&p);
	return tap_done();
}
