/* servername.c: the Matrix server-name grammar (see servername.h). */
#include <string.h>
#include <arpa/inet.h>
#include "matrix/servername.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* 1-5 digits, 1..65535; *port set. */
static int port_ok(const char *p, size_t n, int *port)
{
	long v = 0;
	if (n < 1 || n > 5) return 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i])) return 0;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535) return 0;
	if (port) *port = (int)v;
	return 1;
}

/* Four decimal octets 0-255, no leading zero (inet_aton would read octal). */
static int ipv4_ok(const char *p, size_t n)
{
	int parts = 0;
	size_t i = 0;
	while (i <= n) {
		size_t j = i;
		long v = 0;
		while (j < n && is_digit(p[j])) v = v * 10 + (p[j++] - '0');
		if (j == i || j - i > 3 || v > 255 || (j - i > 1 && p[i] == '0')) return 0;
		parts++;
		if (j == n) break;
		if (p[j] != '.') return 0;
		i = j + 1;
	}
	return parts == 4;
}

static int dns_ok(const char *p, size_t n)
{
	size_t label = 0;
	int last_digits = 1;
	if (n < 1 || n > 255) return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '.') {
			if (label == 0) return 0;              /* leading dot or ".." */
			label = 0;
			last_digits = 1;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-') return 0;
		if (!is_digit(c)) last_digits = 0;
		if (++label > 63) return 0;
	}
	if (label == 0) return 0;                      /* trailing dot */
	/* an all-digit last label: only a dotted quad */
	return last_digits ? ipv4_ok(p, n) : 1;
}

static int ipv6_ok(const char *p, size_t n)
{
	char tmp[64];
	unsigned char a[16];
	if (n < 2 || n > 45) return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(p[i]) && !((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') &&
		    p[i] != ':' && p[i] != '.') return 0;
	memcpy(tmp, p, n);
	tmp[n] = 0;
	return inet_pton(AF_INET6, tmp, a) == 1;
}

int server_name_split(const char *s, size_t n, char *host, size_t hcap, int *port)
{
	size_t hl;
	int pt = 0;
	if (!s || n < 1 || n > SERVER_NAME_MAX) return -1;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (!rb || !ipv6_ok(s + 1, (size_t)(rb - s - 1))) return -1;
		hl = (size_t)(rb - s) + 1;
		if (hl < n && (s[hl] != ':' || !port_ok(s + hl + 1, n - hl - 1, &pt))) return -1;
	} else {
		const char *colon = memchr(s, ':', n);
		hl = colon ? (size_t)(colon - s) : n;
		if (!dns_ok(s, hl)) return -1;             /* a second ':' fails in port_ok */
		if (colon && !port_ok(colon + 1, n - hl - 1, &pt)) return -1;
	}
	if (host) {
		if (hl >= hcap) return -1;
		memcpy(host, s, hl);
		host[hl] = 0;
	}
	if (port) *port = pt;
	return 0;
}

int server_name_valid(const char *s, size_t n)
{
	return server_name_split(s, n, NULL, 0, NULL) == 0;
}
