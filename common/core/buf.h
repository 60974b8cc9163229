/* buf.h: a growable byte buffer. Promises: data is always NUL-terminated
 * (the NUL is not counted in len); allocation failure is fatal (msg_panic
 * style: a daemon that cannot allocate a few KiB cannot continue safely). */
#ifndef FP_BUF_H
#define FP_BUF_H
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

struct buf { char *data; size_t len, cap; };

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);               /* len = 0, keeps memory */
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_add_u64be(struct buf *b, uint64_t v);
char *buf_steal(struct buf *b);              /* caller frees; b is reset */

#endif
