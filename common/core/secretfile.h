/* secretfile.h: reading a small credential file (a NATS password, the
 * fleet's shared secret). Promises: the file is opened without following a
 * symlink, refused if group or others may read it (with the chmod to run),
 * and read whole into buf up to cap bytes (a longer file is an error);
 * every failure names the file and why. */
#ifndef FP_SECRETFILE_H
#define FP_SECRETFILE_H
#include <stddef.h>

/* 0 with *len bytes in buf (not NUL-terminated), or -1 with err
 * ("<what> <path>: why"). */
int secretfile_read(const char *what, const char *path, void *buf, size_t cap, size_t *len,
                    char *err, size_t errlen);

#endif
