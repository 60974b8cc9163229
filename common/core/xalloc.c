/* xalloc.c: see xalloc.h. */
#include "core/xalloc.h"
#include "core/log.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void oom(size_t n)
{
	log_panic("out of memory (%zu bytes)", n);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) oom(n);
	return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) oom(SIZE_MAX);
	return xrealloc(p, n * size);
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

char *xmemdup(const void *p, size_t n)
{
	char *q = xmalloc(n + 1);
	if (n) memcpy(q, p, n);
	q[n] = 0;
	return q;
}
