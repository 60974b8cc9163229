/* buf.c: growable byte buffer (see buf.h). The matrix library uses it and
 * links without the rest of core, so allocation failure is handled here
 * (message, abort) rather than through xalloc and the log. */
#include "core/buf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b) { b->data = NULL; b->len = b->cap = 0; }
void buf_free(struct buf *b) { free(b->data); buf_init(b); }
void buf_reset(struct buf *b) { b->len = 0; if (b->data) b->data[0] = 0; }

void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t nc = b->cap ? b->cap : 256;
	while (nc < b->len + extra + 1)
		nc *= 2;
	char *p = realloc(b->data, nc);
	if (p == NULL) {
		fprintf(stderr, "<2>out of memory growing a buffer to %zu bytes\n", nc);
		abort();
	}
	b->data = p;
	b->cap = nc;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
}

void buf_addc(struct buf *b, char c) { buf_reserve(b, 1); b->data[b->len++] = c; b->data[b->len] = 0; }
void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_add_u64be(struct buf *b, uint64_t v)
{
	unsigned char x[8];
	for (int i = 7; i >= 0; i--) { x[i] = v & 0xff; v >>= 8; }
	buf_add(b, x, 8);
}

char *buf_steal(struct buf *b)
{
	char *p = b->data;
	if (p == NULL) {
		p = calloc(1, 1);
		if (p == NULL)
			abort();
	}
	buf_init(b);
	return p;
}
