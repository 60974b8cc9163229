/* xmatrix.c: see xmatrix.h. */
#include "matrix/xmatrix.h"
#include "matrix/json.h"
#include "matrix/b64.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
	/* RFC 9110 token characters */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* The value at *pp (token or quoted-string) into out; advances *pp. */
static int read_value(const char **pp, const char *end, char *out, size_t cap,
                      char *err, size_t errlen)
{
	const char *p = *pp;
	size_t n = 0;
	if (p < end && *p == '"') {
		p++;
		for (;;) {
			if (p >= end) { snprintf(err, errlen, "unterminated quoted value"); return -1; }
			unsigned char c = (unsigned char)*p++;
			if (c == '"') break;
			if (c == '\\') {
				if (p >= end) { snprintf(err, errlen, "backslash at the end"); return -1; }
				c = (unsigned char)*p++;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				snprintf(err, errlen, "control byte in a value");
				return -1;
			}
			if (n + 1 >= cap) { snprintf(err, errlen, "value longer than %zu bytes", cap - 1); return -1; }
			out[n++] = (char)c;
		}
	} else {
		while (p < end && is_tchar((unsigned char)*p)) {
			if (n + 1 >= cap) { snprintf(err, errlen, "value longer than %zu bytes", cap - 1); return -1; }
			out[n++] = *p++;
		}
		/* token68-style trailing '=' padding (base64) is allowed in a token value */
		while (p < end && *p == '=') {
			if (n + 1 >= cap) { snprintf(err, errlen, "value longer than %zu bytes", cap - 1); return -1; }
			out[n++] = *p++;
		}
		if (n == 0) { snprintf(err, errlen, "empty value"); return -1; }
	}
	out[n] = 0;
	*pp = p;
	return 0;
}

int xmatrix_parse(const char *hdr, size_t n, struct xmatrix_auth *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	const char *p = hdr, *end = hdr + n;
	while (p < end && is_ows(*p)) p++;
	if ((size_t)(end - p) < 8 || strncasecmp(p, "X-Matrix", 8) != 0 || (p + 8 < end && !is_ows(p[8]))) {
		snprintf(err, errlen, "not an X-Matrix authorization");
		return -1;
	}
	p += 8;
	int seen_o = 0, seen_k = 0, seen_s = 0;
	for (;;) {
		while (p < end && (is_ows(*p) || *p == ',')) p++;   /* empty elements, OWS */
		if (p >= end) break;
		const char *name = p;
		while (p < end && is_tchar((unsigned char)*p)) p++;
		size_t nl = (size_t)(p - name);
		while (p < end && is_ows(*p)) p++;
		if (nl == 0 || p >= end || *p != '=') {
			snprintf(err, errlen, "malformed parameter at byte %zu", (size_t)(name - hdr));
			return -1;
		}
		p++;
		while (p < end && is_ows(*p)) p++;
		char val[XMATRIX_FIELD_MAX];
		if (read_value(&p, end, val, sizeof val, err, errlen) < 0) return -1;
		while (p < end && is_ows(*p)) p++;
		if (p < end && *p != ',') {
			snprintf(err, errlen, "junk after a value at byte %zu", (size_t)(p - hdr));
			return -1;
		}
		char *dst = NULL;
		int *seen = NULL;
		int dummy = 0;
		if (nl == 6 && !strncasecmp(name, "origin", 6)) { dst = a->origin; seen = &seen_o; }
		else if (nl == 3 && !strncasecmp(name, "key", 3)) { dst = a->key; seen = &seen_k; }
		else if (nl == 3 && !strncasecmp(name, "sig", 3)) { dst = a->sig; seen = &seen_s; }
		else if (nl == 11 && !strncasecmp(name, "destination", 11)) { dst = a->destination; seen = &a->has_destination; }
		else { seen = &dummy; }     /* unknown parameters are ignored */
		if (dst) {
			if (*seen) {
				snprintf(err, errlen, "parameter %.*s given twice", (int)nl, name);
				return -1;
			}
			*seen = 1;
			memcpy(dst, val, strlen(val) + 1);
		}
	}
	if (!seen_o || !seen_k || !seen_s) {
		snprintf(err, errlen, "missing %s", !seen_o ? "origin" : !seen_k ? "key" : "sig");
		return -1;
	}
	return 0;
}

int xmatrix_signed_bytes(const char *method, const char *uri, const char *origin,
                         const char *destination, const char *content, size_t clen,
                         struct buf *out)
{
	/* keys in canonical (byte) order: content, destination, method, origin, uri */
	buf_addc(out, '{');
	if (content) {
		struct json_doc d = { 0 };
		if (json_parse(&d, content, clen, JSON_MAX_DEPTH_DEFAULT) < 0) { json_doc_free(&d); return -1; }
		buf_adds(out, "\"content\":");
		int rc = json_canonical(&d, 0, out, NULL, NULL);
		json_doc_free(&d);
		if (rc < 0) return -1;
		buf_addc(out, ',');
	}
	buf_adds(out, "\"destination\":");
	json_put_string(out, destination, strlen(destination));
	buf_adds(out, ",\"method\":");
	json_put_string(out, method, strlen(method));
	buf_adds(out, ",\"origin\":");
	json_put_string(out, origin, strlen(origin));
	buf_adds(out, ",\"uri\":");
	json_put_string(out, uri, strlen(uri));
	buf_addc(out, '}');
	return 0;
}

/* A quoted-string with '"' and '\' escaped. */
static void put_quoted(struct buf *out, const char *s)
{
	buf_addc(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') buf_addc(out, '\\');
		buf_addc(out, *s);
	}
	buf_addc(out, '"');
}

int xmatrix_sign(const struct signing_key *k, const char *origin, const char *destination,
                 const char *method, const char *uri, const char *content, size_t clen,
                 struct buf *out)
{
	struct buf msg;
	buf_init(&msg);
	if (xmatrix_signed_bytes(method, uri, origin, destination, content, clen, &msg) < 0) {
		buf_free(&msg);
		return -1;
	}
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)msg.data, msg.len, k->sk);
	buf_free(&msg);
	char s64[96];
	b64_encode(s64, sig, sizeof sig);
	buf_adds(out, "X-Matrix origin=");
	put_quoted(out, origin);
	buf_adds(out, ",destination=");
	put_quoted(out, destination);
	buf_adds(out, ",key=");
	put_quoted(out, k->key_id);
	buf_adds(out, ",sig=");
	put_quoted(out, s64);
	return 0;
}

int xmatrix_verify(const struct xmatrix_auth *a, const unsigned char pk[32],
                   const char *method, const char *uri, const char *destination,
                   const char *content, size_t clen)
{
	unsigned char sig[crypto_sign_BYTES + 4];
	long sl = b64_decode(sig, sizeof sig, a->sig, strlen(a->sig));
	if (sl != crypto_sign_BYTES) return -1;
	struct buf msg;
	buf_init(&msg);
	const char *dest = a->has_destination ? a->destination : destination;
	if (xmatrix_signed_bytes(method, uri, a->origin, dest, content, clen, &msg) < 0) {
		buf_free(&msg);
		return -1;
	}
	int ok = crypto_sign_verify_detached(sig, (const unsigned char *)msg.data, msg.len, pk) == 0;
	buf_free(&msg);
	return ok;
}
