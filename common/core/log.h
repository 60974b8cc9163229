/* log.h: logging to stderr with syslog priority prefixes ("<3>prog: msg"),
 * which journald and fedsup both understand. Promises: log_debug prints only
 * when verbose; fatal* exit 111 (temporary failure: restart me), fatal_config
 * exits 100 (permanent: bad configuration, do not restart), log_panic aborts
 * for broken invariants (core dump). A log call writes exactly one line:
 * control characters and ill-formed UTF-8 in the message are escaped. */
#ifndef FP_LOG_H
#define FP_LOG_H
#include <stdarg.h>
#include <stddef.h>

#define EXIT_OK        0
#define EXIT_CONFIG  100   /* permanent failure: do not restart */
#define EXIT_TEMP    111   /* temporary failure: restart */

void log_init(const char *progname, int verbose);
void log_verbose(int v);
int  log_is_verbose(void);
void log_crit(const char *fmt, ...)  __attribute__((format(printf, 1, 2)));  /* <2> */
void log_err(const char *fmt, ...)   __attribute__((format(printf, 1, 2)));  /* <3> */
void log_warn(const char *fmt, ...)  __attribute__((format(printf, 1, 2)));  /* <4> + strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* <4> */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* <5> */
void log_info(const char *fmt, ...)  __attribute__((format(printf, 1, 2)));  /* <6> */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* <7> */
_Noreturn void fatal(const char *fmt, ...)  __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal_config(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Escape n bytes of src into dst (cap bytes): control characters, C1
 * controls, U+2028/9 and ill-formed UTF-8 become "\xNN", everything else
 * is copied; stops before an item that would not fit. Returns bytes
 * written (no NUL added). Every log line's message goes through it. */
size_t log_escape(char *dst, size_t cap, const char *src, size_t n);

/* Milliseconds since the epoch, and monotonic milliseconds. */
long long now_ms(void);
long long mono_ms(void);

#endif
