/* log.c: stderr logging with syslog priority prefixes (see log.h).
 * One write(2) per line, at most PIPE_BUF bytes, so lines from several
 * processes sharing a pipe (fedsup, tests) never interleave mid-line.
 * Whatever is logged may come from outside (IDs, URLs, peer answers): the
 * message body is escaped so one log call is exactly one line. */
#include "core/log.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "fedpipe";
static int verbose;

void log_init(const char *progname, int v) { if (progname) prog = progname; verbose = v; }
void log_verbose(int v) { verbose = v; }
int  log_is_verbose(void) { return verbose; }

/* Length of the well-formed UTF-8 sequence at s (1..4), 0 when the bytes
 * there are not one (stray continuation, overlong form, surrogate, above
 * U+10FFFF, truncated). *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80) { *cp = c; return 1; }
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; c &= 0x1f; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; c &= 0x0f; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; c &= 0x07; }
	else return 0;
	if (n < len) return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
	*cp = c;
	return len;
}

/* Copy the n bytes of s to dst (room: cap bytes) so the result holds no
 * control character and only well-formed UTF-8: bytes below 0x20, 0x7f,
 * C1 controls (U+0080..U+009F), U+2028/U+2029 (line breaks to some
 * readers) and every byte of an ill-formed sequence become "\xNN". Stops
 * before an item that would not fit whole. Returns the bytes written. */
size_t log_escape(char *dst, size_t cap, const char *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, i = 0;
	while (i < n) {
		unsigned cp = 0;
		size_t l = utf8_seq(s + i, n - i, &cp);
		int esc = l == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
			  cp == 0x2028 || cp == 0x2029;
		if (l == 0) l = 1;
		size_t need = esc ? 4 * l : l;
		if (o + need > cap) break;
		for (size_t k = 0; k < l; k++) {
			unsigned char b = s[i + k];
			if (esc) {
				dst[o++] = '\\'; dst[o++] = 'x';
				dst[o++] = hex[b >> 4]; dst[o++] = hex[b & 15];
			} else {
				dst[o++] = (char)b;
			}
		}
		i += l;
	}
	return o;
}

static void vlog(int pri, const char *errstr, const char *fmt, va_list ap)
{
	/* PIPE_BUF: one write of at most this much to a pipe is atomic. */
	char line[PIPE_BUF], msg[2048];
	int n = snprintf(line, sizeof(line), "<%d>%s[%d]: ", pri, prog, (int)getpid());
	if (n < 0) return;
	if ((size_t)n > sizeof(line) / 2) n = (int)(sizeof(line) / 2);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m < 0) return;
	size_t mlen = (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	size_t cap = sizeof(line) - 1;          /* room for the '\n' */
	size_t len = (size_t)n + log_escape(line + n, cap - (size_t)n, msg, mlen);
	if (errstr && len + 2 <= cap) {
		line[len++] = ':'; line[len++] = ' ';
		len += log_escape(line + len, cap - len, errstr, strlen(errstr));
	}
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

#define LOGFN(name, pri, witherr) \
	void name(const char *fmt, ...) { int e = errno; va_list ap; va_start(ap, fmt); \
		vlog(pri, witherr ? strerror(e) : NULL, fmt, ap); va_end(ap); errno = e; }
LOGFN(log_crit, 2, 0)
LOGFN(log_err, 3, 0)
LOGFN(log_warn, 4, 1)
LOGFN(log_warnx, 4, 0)
LOGFN(log_notice, 5, 0)
LOGFN(log_info, 6, 0)

void log_debug(const char *fmt, ...)
{
	if (!verbose) return;
	va_list ap; va_start(ap, fmt); vlog(7, NULL, fmt, ap); va_end(ap);
}

_Noreturn void fatal(const char *fmt, ...)
{ int e = errno; va_list ap; va_start(ap, fmt); vlog(2, strerror(e), fmt, ap); va_end(ap); exit(EXIT_TEMP); }
_Noreturn void fatalx(const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); vlog(2, NULL, fmt, ap); va_end(ap); exit(EXIT_TEMP); }
_Noreturn void fatal_config(const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); vlog(2, NULL, fmt, ap); va_end(ap); exit(EXIT_CONFIG); }
_Noreturn void log_panic(const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); vlog(0, NULL, fmt, ap); va_end(ap); abort(); }

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
