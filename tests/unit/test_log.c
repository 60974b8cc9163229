/* test_log.c: one log call is one line. Hostile argument bytes (newline
 * followed by a syslog prefix, CR, ESC, DEL, NUL-free ill-formed UTF-8) are
 * escaped as \xNN; well-formed UTF-8 passes unchanged. The log call runs in
 * a child whose stderr is a pipe, as under fedsup or journald. */
#include "../lib/tap.h"
#include "core/log.h"
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run fn in a child with stderr on a pipe; return what it wrote. */
static size_t capture(void (*fn)(const void *), const void *arg, char *out, size_t cap)
{
	int p[2];
	if (pipe(p) < 0)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		log_init("t", 1);
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(p[0], out + n, cap - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	out[n] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	return n;
}

static size_t count_nl(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += s[i] == '\n';
	return c;
}

static void do_err(const void *a)   { log_err("fetch %s failed", (const char *)a); }
static void do_warn(const void *a)  { errno = ENOENT; log_warn("open %s", (const char *)a); }
static void do_debug(const void *a) { log_debug("id=%s end", (const char *)a); }
static void do_two(const void *a)   { log_info("a %s", (const char *)a); log_info("b %s", (const char *)a); }
static void do_long(const void *a)  { log_err("%s", (const char *)a); }

/* Only printable ASCII, "\xNN" escapes and the UTF-8 we passed in. */
static int clean_line(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return n > 0 && s[n - 1] == '\n';
}

static void expect_escaped(const char *arg, const char *want_body, const char *name)
{
	char out[8192];
	size_t n = capture(do_err, arg, out, sizeof out);
	char want[1024];
	snprintf(want, sizeof want, "fetch %s failed\n", want_body);
	const char *body = strstr(out, "]: ");
	TAP_OK(count_nl(out, n) == 1 && clean_line(out, n) && strncmp(out, "<3>t[", 5) == 0,
	       "%s: one <3> line, no control bytes", name);
	TAP_OK(body && strcmp(body + 3, want) == 0, "%s: logged as \"%.*s\" (got \"%s\")", name,
	       (int)strlen(want) - 1, want, body ? body + 3 : out);
}

int main(void)
{
	/* The attack of issue 13: a decoded ID carrying a newline and a
	 * syslog emergency prefix. */
	expect_escaped("$x\n<0>owned:example", "$x\\x0a<0>owned:example", "newline + <0>");
	expect_escaped("a\rb", "a\\x0db", "CR");
	expect_escaped("\x1b[2Jred", "\\x1b[2Jred", "ESC");
	expect_escaped("del\x7f", "del\\x7f", "DEL");
	expect_escaped("tab\tend", "tab\\x09end", "TAB");
	expect_escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		       "well-formed UTF-8 kept");
	expect_escaped("\xc0\xaf", "\\xc0\\xaf", "overlong 2-byte '/'");
	expect_escaped("\xe0\x80\xaf", "\\xe0\\x80\\xaf", "overlong 3-byte");
	expect_escaped("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf", "overlong 4-byte");
	expect_escaped("\xc0\x8a", "\\xc0\\x8a", "overlong newline");
	expect_escaped("x\xe2\x82", "x\\xe2\\x82", "truncated 3-byte at end");
	expect_escaped("\xe2\x82x", "\\xe2\\x82x", "truncated 3-byte mid-string");
	expect_escaped("\xed\xa0\x80", "\\xed\\xa0\\x80", "surrogate U+D800");
	expect_escaped("\xed\xbf\xbf", "\\xed\\xbf\\xbf", "surrogate U+DFFF");
	expect_escaped("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "above U+10FFFF");
	expect_escaped("\x80z", "\\x80z", "stray continuation byte");
	expect_escaped("\xff\xfe", "\\xff\\xfe", "0xff 0xfe");
	expect_escaped("\xc2\x85nel", "\\xc2\\x85nel", "C1 NEL (U+0085)");
	expect_escaped("\xc2\x9b" "31m", "\\xc2\\x9b" "31m", "C1 CSI (U+009B)");
	expect_escaped("ls\xe2\x80\xa8x", "ls\\xe2\\x80\\xa8x", "U+2028 line separator");
	expect_escaped("\xc2\xa0nbsp", "\xc2\xa0nbsp", "U+00A0 kept");

	char out[16384];
	size_t n = capture(do_warn, "f\n<0>g", out, sizeof out);
	TAP_OK(count_nl(out, n) == 1 && strstr(out, "open f\\x0a<0>g: No such file or directory\n"),
	       "log_warn escapes the argument and keeps strerror (%s)", out);
	n = capture(do_debug, "\n<0>", out, sizeof out);
	TAP_OK(count_nl(out, n) == 1 && strncmp(out, "<7>", 3) == 0 && strstr(out, "id=\\x0a<0> end\n"),
	       "log_debug escapes too");
	n = capture(do_two, "x\ny", out, sizeof out);
	TAP_OK(count_nl(out, n) == 2 && strstr(out, "a x\\x0ay\n<6>"), "two calls, two lines");

	/* A long hostile argument: every byte escapes to four, the line stays
	 * within one atomic pipe write and still ends in one newline. */
	static char big[3000];
	memset(big, '\n', sizeof big - 1);
	n = capture(do_long, big, out, sizeof out);
	TAP_OK(count_nl(out, n) == 1 && out[n - 1] == '\n' && n <= 4096 && clean_line(out, n),
	       "3000 newlines: one line of %zu bytes (<= PIPE_BUF)", n);
	/* Truncation never splits an escape. */
	size_t tail = n >= 5 ? n - 5 : 0;
	TAP_OK(strncmp(out + tail, "\\x0a\n", 5) == 0, "truncated at an escape boundary");

	char e[32];
	size_t k = log_escape(e, 6, "\n\n", 2);
	TAP_OK(k == 4 && memcmp(e, "\\x0a", 4) == 0, "log_escape stops before an escape that does not fit");
	k = log_escape(e, sizeof e, "a\0b", 3);
	TAP_OK(k == 6 && memcmp(e, "a\\x00b", 6) == 0, "log_escape escapes NUL when given a length");
	return tap_done();
}
