/* served_parse.c: served's pure parsing of what the network sends (see
 * served_parse.h). Self-contained on purpose: the fuzz harness includes it. */
#include "served_parse.h"
#include <string.h>
#include <strings.h>

int sp_digits(const char *v, uint64_t max, uint64_t *out)
{
	if (!v || !*v) return -1;
	uint64_t x = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9') return -1;
		unsigned d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10) return -1;
		x = x * 10 + d;
	}
	if (x > max) return -1;
	*out = x;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int sp_segment(const char *seg, size_t n, char *out, size_t cap)
{
	if (n == 0 || cap == 0) return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)seg[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n) return -1;
			if ((hi = hexval(seg[i + 1])) < 0 || (lo = hexval(seg[i + 2])) < 0) return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 || o + 1 >= cap) return -1;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return (int)o;
}

int sp_split(const char *p, const char **seg, size_t *len, int max)
{
	int n = 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (n == max || l == 0) return -1;
		seg[n] = p; len[n] = l; n++;
		if (!e) break;
		p = e + 1;
		if (!*p) return -1;   /* trailing slash: no such resource */
	}
	return n;
}

const char *sp_bearer(const char *h)
{
	if (!h || strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t')) return NULL;
	h += 6;
	while (*h == ' ' || *h == '\t') h++;
	return *h ? h : NULL;
}

int sp_has_body(const char *cl, const char *te)
{
	if (te) return 1;
	if (!cl) return 0;
	for (; *cl; cl++)
		if (*cl != '0' && *cl != ' ' && *cl != '\t') return 1;
	return 0;
}

int sp_recover_id_ok(const char *id, char *const *upstreams, size_t n)
{
	size_t l = strlen(id);
	if (l < 2 || l > 255 || id[0] != '$') return 0;
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f) return 0;
	const char *colon = strchr(id, ':');
	if (!colon) return 1;           /* room v3+: a hash, names no server */
	for (size_t i = 0; i < n; i++)
		if (!strcmp(colon + 1, upstreams[i])) return 1;
	return 0;
}
