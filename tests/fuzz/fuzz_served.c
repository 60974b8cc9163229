/* fuzz_served.c: libFuzzer harness for served's parsing of what the network
 * sends (cmd/served/served_parse.c, included whole: the fuzz build links
 * the four common/ libraries only). The input is read as a request head: "METHOD TARGET
 * VERSION" then header lines; the target's path is split and each segment
 * percent-decoded (then judged as a recovery ID), every query value is read
 * as a digits-only number, and every header value goes through the bearer
 * and body checks. Invariants: decoded segments hold no NUL and fit their
 * buffer; an accepted number is exactly its digits (leading zeros aside);
 * split segments are non-empty pieces of the path. */
#include "../../cmd/served/served_parse.c"
#include <stdio.h>
#include <stdlib.h>

static void numbers(const char *q)
{
	char *dup = strdup(q), *save = NULL;
	if (!dup) return;
	for (char *kv = strtok_r(dup, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		v = v ? v + 1 : kv;
		uint64_t x;
		if (sp_digits(v, UINT64_MAX, &x) == 0) {
			char back[32];
			snprintf(back, sizeof back, "%llu", (unsigned long long)x);
			const char *z = v;
			while (*z == '0' && z[1]) z++;
			if (strcmp(back, z)) abort();
		}
		if (sp_digits(v, 100, &x) == 0 && x > 100) abort();
	}
	free(dup);
}

static void target(const char *t)
{
	const char *seg[8];
	size_t len[8];
	char *path = strdup(t);
	if (!path) return;
	char *q = strchr(path, '?');
	if (q) { *q++ = 0; numbers(q); }
	int n = sp_split(path[0] == '/' ? path + 1 : path, seg, len, 8);
	for (int i = 0; i < n; i++) {
		if (len[i] == 0 || seg[i] < path || seg[i] + len[i] > path + strlen(path)) abort();
		char out[256];
		int l = sp_segment(seg[i], len[i], out, sizeof out);
		if (l < 0) continue;
		if ((size_t)l >= sizeof out || strlen(out) != (size_t)l) abort();
		static char *const ups[] = { "a.test", "b.test:8448", "127.0.0.1:19102" };
		if (sp_recover_id_ok(out, ups, 3)) {
			const char *c = strchr(out, ':');
			if (out[0] != '$') abort();
			if (c && strcmp(c + 1, ups[0]) && strcmp(c + 1, ups[1]) && strcmp(c + 1, ups[2])) abort();
		}
	}
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s) return 0;
	memcpy(s, data, size);
	s[size] = 0;
	char *save = NULL;
	int first = 1;
	for (char *line = strtok_r(s, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (first) {
			first = 0;
			char *sp = strchr(line, ' ');
			if (sp) {
				char *t = sp + 1, *e = strchr(t, ' ');
				if (e) *e = 0;
				target(t);
			} else {
				target(line);
			}
			continue;
		}
		char *colon = strchr(line, ':');
		const char *v = colon ? colon + 1 : line;
		while (*v == ' ') v++;
		const char *tok = sp_bearer(v);
		if (tok && (!*tok || tok < v || tok > v + strlen(v))) abort();
		sp_has_body(v, NULL);
		sp_has_body(NULL, v);
	}
	/* The whole input as one path segment too (any bytes, NULs stop it). */
	char out[256];
	sp_segment((const char *)data, size, out, sizeof out);
	free(s);
	return 0;
}
