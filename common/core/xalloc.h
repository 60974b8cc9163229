/* xalloc.h: allocation that cannot fail. Promises: each call returns
 * usable memory or does not return (log_panic "out of memory", which logs
 * and aborts: supervisors restart the stage and LMDB keeps every byte that
 * mattered). xreallocarray checks n * size for overflow. xmemdup copies n
 * bytes and adds a NUL. For the daemons and tools; the matrix library
 * reports allocation failure to its caller instead. */
#ifndef FP_XALLOC_H
#define FP_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xmemdup(const void *p, size_t n);

#endif
