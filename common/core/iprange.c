/* iprange.c: CIDR lists and the address policy check (see iprange.h).
 * Everything is compared as 16 IPv6 bytes; IPv4 lives at ::ffff:0:0/96, so
 * an IPv4 rule and an IPv4-mapped address meet without a special case. */
#include "core/iprange.h"
#include "core/xalloc.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

static void map_v4(unsigned char out[16], const unsigned char v4[4])
{
	memcpy(out, v4mapped, 12);
	memcpy(out + 12, v4, 4);
}

static int in_range(const struct iprange *r, const unsigned char a[16])
{
	int full = r->bits / 8, rest = r->bits % 8;
	if (memcmp(r->net, a, (size_t)full)) return 0;
	if (rest == 0) return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (r->net[full] & mask) == (a[full] & mask);
}

int iprange_parse(const char *s, size_t n, struct iprange *out, char *err, size_t errlen)
{
	char buf[64], addr[64];
	if (n == 0 || n >= sizeof buf) {
		snprintf(err, errlen, "'%.*s' is not an IP range (too %s)", (int)(n > 60 ? 60 : n), s,
		         n ? "long" : "short");
		return -1;
	}
	memcpy(buf, s, n);
	buf[n] = 0;
	const char *slash = strchr(buf, '/');
	size_t alen = slash ? (size_t)(slash - buf) : n;
	memcpy(addr, buf, alen);
	addr[alen] = 0;
	unsigned char a[16], v4[4];
	int is4;
	if (inet_pton(AF_INET, addr, v4) == 1) {
		map_v4(a, v4);
		is4 = 1;
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		is4 = 0;
	} else {
		snprintf(err, errlen, "'%s': '%s' is not an IPv4 address (a.b.c.d) or an IPv6 address",
		         buf, addr);
		return -1;
	}
	int max = is4 ? 32 : 128, bits = max;
	if (slash) {
		const char *p = slash + 1;
		size_t pl = strlen(p);
		if (pl == 0 || pl > 3 || strspn(p, "0123456789") != pl || (pl > 1 && p[0] == '0')) {
			snprintf(err, errlen, "'%s': the prefix length after '/' must be a number from 0 to %d",
			         buf, max);
			return -1;
		}
		bits = atoi(p);
		if (bits > max) {
			snprintf(err, errlen, "'%s': prefix length %d is above %d (an %s range)", buf, bits,
			         max, is4 ? "IPv4" : "IPv6");
			return -1;
		}
	}
	out->bits = (unsigned char)(is4 ? 96 + bits : bits);
	memcpy(out->net, a, 16);
	/* host bits must be zero: 10.0.0.1/8 is a typo for 10.0.0.0/8 or for
	 * 10.0.0.1/32, and ::ffff:127.0.0.0/8 would cover far more than meant */
	struct iprange t = *out;
	for (int i = t.bits; i < 128; i++) t.net[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
	if (memcmp(t.net, a, 16)) {
		char fix[64];
		iprange_format(&t, fix, sizeof fix);
		snprintf(err, errlen, "'%s': bits are set beyond the /%d prefix (the range would be %s)",
		         buf, bits, fix);
		return -1;
	}
	return 0;
}

int iprange_list_parse(struct iprange_list *l, const char *text, char *err, size_t errlen)
{
	l->r = NULL;
	l->n = 0;
	const char *q = text;
	size_t cap = 0;
	while (*q) {
		while (*q == ',' || *q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
		const char *st = q;
		while (*q && *q != ',' && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') q++;
		if (q == st) continue;
		if (l->n == cap) {
			cap = cap ? cap * 2 : 16;
			l->r = xreallocarray(l->r, cap, sizeof *l->r);
		}
		if (iprange_parse(st, (size_t)(q - st), &l->r[l->n], err, errlen) < 0) {
			iprange_list_free(l);
			return -1;
		}
		l->n++;
	}
	return 0;
}

void iprange_list_free(struct iprange_list *l)
{
	free(l->r);
	l->r = NULL;
	l->n = 0;
}

/* The forms of one address that a rule may hold: itself (IPv4 as mapped),
 * and for IPv4-compatible (::a.b.c.d) and 6to4 (2002:AABB:CCDD::/48)
 * addresses the IPv4 address inside. Returns how many (1 or 2). */
static int forms(const struct sockaddr *sa, unsigned char f[2][16])
{
	if (sa->sa_family == AF_INET) {
		map_v4(f[0], (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
		return 1;
	}
	if (sa->sa_family != AF_INET6) return 0;
	const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	static const unsigned char zero[12];
	memcpy(f[0], b, 16);
	if (!memcmp(b, zero, 12)) { map_v4(f[1], b + 12); return 2; }
	if (b[0] == 0x20 && b[1] == 0x02) { map_v4(f[1], b + 2); return 2; }
	return 1;
}

int iprange_list_match(const struct iprange_list *l, const struct sockaddr *sa)
{
	unsigned char f[2][16];
	int nf = forms(sa, f);
	/* the address as written first, so ::1 is reported as ::1/128, not
	 * as the 0.0.0.1 its IPv4-compatible reading would be */
	for (int k = 0; k < nf; k++)
		for (size_t i = 0; i < l->n; i++)
			if (in_range(&l->r[i], f[k])) return (int)i;
	return -1;
}

int iprange_denied(const struct iprange_list *deny, const struct iprange_list *allow,
                   const struct sockaddr *sa, int *why)
{
	if (why) *why = -1;
	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return 1;
	int d = iprange_list_match(deny, sa);
	if (why) *why = d;
	if (d < 0) return 0;
	return iprange_list_match(allow, sa) < 0;
}

void iprange_format(const struct iprange *r, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	if (r->bits >= 96 && !memcmp(r->net, v4mapped, 12)) {
		inet_ntop(AF_INET, r->net + 12, a, sizeof a);
		snprintf(out, cap, "%s/%d", a, r->bits - 96);
	} else {
		inet_ntop(AF_INET6, r->net, a, sizeof a);
		snprintf(out, cap, "%s/%d", a, r->bits);
	}
}

void iprange_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof a);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof a);
	snprintf(out, cap, "%s", a);
}
