/* log.c: stderr logging with syslog priority prefixes (see log.h).
 * One write(2) per line so lines from several processes sharing a pipe
 * (fedsup, tests) never interleave mid-line. */
#include "log.h"
#include <errno.h>
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

static void vlog(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "<%d>%s[%d]: ", pri, prog, (int)getpid());
	if (n < 0) return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0) return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2) len = sizeof(line) - 2;
	if (errstr) {
		int k = snprintf(line + len, sizeof(line) - len, ": %s", errstr);
		if (k > 0) len += (size_t)k;
		if (len > sizeof(line) - 2) len = sizeof(line) - 2;
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
