/* pool.c: fork/join over one batch (see pool.h). Threads are started per
 * batch rather than kept parked: a batch is a loop turn's worth of
 * signature checks (milliseconds), against which a thread start is noise,
 * and nothing needs waking or stopping between batches. */
#include <pthread.h>
#include <stdlib.h>
#include "core/pool.h"
#include "core/xalloc.h"

struct pool_part {
	pthread_t th;
	int       started;
	int       worker;
	size_t    from, to;
	pool_fn  *fn;
	void     *arg;
};

void pool_init(struct pool *p, int workers)
{
	p->workers = workers < 1 ? 1 : workers;
	p->part = xcalloc((size_t)p->workers, sizeof *p->part);
}

void pool_free(struct pool *p)
{
	free(p->part);
	p->part = NULL;
	p->workers = 0;
}

static void *part_run(void *arg)
{
	struct pool_part *w = arg;
	w->fn(w->arg, w->worker, w->from, w->to);
	return NULL;
}

int pool_run(struct pool *p, size_t n, pool_fn *fn, void *arg)
{
	if (n == 0)
		return 0;
	int used = (size_t)p->workers < n ? p->workers : (int)n;
	size_t per = (n + (size_t)used - 1) / (size_t)used;
	for (int i = 0; i < used; i++) {
		struct pool_part *w = &p->part[i];
		w->worker = i;
		w->from = (size_t)i * per;
		w->to = w->from + per > n ? n : w->from + per;
		w->fn = fn;
		w->arg = arg;
		w->started = i > 0 && w->from < w->to &&
		             pthread_create(&w->th, NULL, part_run, w) == 0;
	}
	part_run(&p->part[0]);
	for (int i = 1; i < used; i++) {
		if (p->part[i].started)
			pthread_join(p->part[i].th, NULL);
		else if (p->part[i].from < p->part[i].to)
			part_run(&p->part[i]);
	}
	return used;
}
