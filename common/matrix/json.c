/* json.c: the strict JSON reader every received byte goes through, and the
 * Matrix canonical encoder every hash and signature is computed over.
 * jsmn tokenises; everything jsmn lets through is re-checked here (see below).
 *
 * Why the re-checking: jsmn (even with JSMN_STRICT) ignores where ',' and ':'
 * appear, accepts several top-level values, accepts any printable run as a
 * primitive ("1.2.3", "tru"), accepts raw control bytes and invalid UTF-8 in
 * strings, and stops silently at a NUL byte. So after jsmn we walk its tokens
 * once and check every byte of the input: each byte belongs either to a token
 * (validated by its own grammar), to a container's brackets, or to a gap
 * between tokens that must be exactly whitespace plus the one separator the
 * grammar wants there. That walk, and everything else here, is iterative:
 * nothing recurses, so depth is bounded only by max_depth, not by the stack.
 *
 * Token layout promises beyond json.h:
 *  - keys are leaves (key.next == key + 1); the value follows at key + 1;
 *  - for JSON_STRING tokens, ival holds the decoded byte length (so it equals
 *    end - start exactly when the string contains no escapes);
 *  - on failure ntok is 0.
 *
 * Keep-filter path semantics (json_canonical): keep() is asked about every
 * object member at every level, before the member's value is visited (a
 * dropped member's subtree is never looked at). path[0..depth) are the decoded
 * keys from the object where encoding started (token t) down to and including
 * the member's own key. Array elements do not add a path entry: a member of an
 * object inside "prev_events": [{...}] has path {"prev_events", "<key>"}. */
#define JSMN_STATIC
#define JSMN_STRICT
/* Parent links make jsmn's ',' and closing-bracket handling O(depth) instead
 * of a backwards scan over all tokens (quadratic on wide objects), and let us
 * rebuild the tree without a stack. */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "matrix/json.h"
#include "matrix/b64.h"
#include <stdlib.h>
#include <string.h>

#define MAX_SAFE_INT 9007199254740991LL          /* 2^53 - 1 */
#define JSON_MAX_LEN 0x7ffffff0u                 /* jsmn offsets are int */
#define SMALL_SORT 16

/* ---------------------------------------------------------------- lexing */

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static long hex4(const unsigned char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7: no
 * overlongs, no encoded surrogates, nothing above U+10FFFF), 0 if invalid. */
static int utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	int n;
	if (c < 0x80) return 1;
	if (c < 0xc2) return 0;
	if (c < 0xe0) n = 2;
	else if (c < 0xf0) { n = 3; if (c == 0xe0) lo = 0xa0; else if (c == 0xed) hi = 0x9f; }
	else if (c < 0xf5) { n = 4; if (c == 0xf0) lo = 0x90; else if (c == 0xf4) hi = 0x8f; }
	else return 0;
	if (e - p < n) return 0;
	if (p[1] < lo || p[1] > hi) return 0;
	for (int i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80) return 0;
	return n;
}

int json_utf8_seq_len(const char *p, size_t n)
{
	return n ? utf8_seq((const unsigned char *)p, (const unsigned char *)p + n) : 0;
}

/* Validate a string body; on success set *dlen to the decoded byte length.
 * On failure set *bad to the offending byte. */
static enum json_err scan_string(const unsigned char *p, const unsigned char *e,
                                 size_t *dlen, const unsigned char **bad)
{
	const unsigned char *p0 = p;
	size_t n = 0;           /* bytes the escapes save */
	while (p < e) {
		/* Most string bytes are plain ASCII: vet eight at a time. The
		 * word test is exact about "some byte is special", which is all
		 * it is used for. */
		while (e - p >= 8) {
			uint64_t x, ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
			memcpy(&x, p, 8);
			uint64_t bs = x ^ (ones * '\\');
			if (((x | ((x - ones * 0x20) & ~x) | ((bs - ones) & ~bs)) & high) != 0)
				break;
			p += 8;
		}
		if (p == e)
			break;
		unsigned char c = *p;
		if (c >= 0x20 && c < 0x80 && c != '\\') { p++; continue; }
		*bad = p;
		if (c < 0x20)
			return JSON_E_SYNTAX;
		if (c >= 0x80) {
			int l = utf8_seq(p, e);
			if (l == 0)
				return JSON_E_UTF8;
			p += l;
			continue;
		}
		if (e - p < 2)
			return JSON_E_SYNTAX;
		switch (p[1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			n += 1;
			p += 2;
			continue;
		case 'u':
			break;
		default:
			return JSON_E_SYNTAX;
		}
		long cp = e - p >= 6 ? hex4(p + 2) : -1;
		if (cp < 0)
			return JSON_E_SYNTAX;
		p += 6;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return JSON_E_UTF8;             /* low surrogate without a high one */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			long lo = (e - p >= 6 && p[0] == '\\' && p[1] == 'u') ? hex4(p + 2) : -1;
			if (lo < 0xdc00 || lo > 0xdfff)
				return JSON_E_UTF8;     /* unpaired high surrogate */
			p += 6;
			n += 12 - 4;
		} else {
			n += 6 - (cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3);
		}
	}
	*dlen = (size_t)(e - p0) - n;
	return JSON_OK;
}

/* p points at a backslash of an already validated string: decode one escape
 * (a surrogate pair counts as one) into *cp and return the byte after it. */
static const unsigned char *decode_escape(const unsigned char *p, uint32_t *cp)
{
	switch (p[1]) {
	case 'b': *cp = '\b'; return p + 2;
	case 'f': *cp = '\f'; return p + 2;
	case 'n': *cp = '\n'; return p + 2;
	case 'r': *cp = '\r'; return p + 2;
	case 't': *cp = '\t'; return p + 2;
	case 'u': break;
	default:  *cp = p[1]; return p + 2;     /* " \ / */
	}
	uint32_t v = (uint32_t)hex4(p + 2);
	if (v >= 0xd800 && v <= 0xdbff) {
		uint32_t lo = (uint32_t)hex4(p + 8);
		*cp = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
		return p + 12;
	}
	*cp = v;
	return p + 6;
}

static int utf8_put(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
	if (cp < 0x800) { o[0] = 0xc0 | cp >> 6; o[1] = 0x80 | (cp & 0x3f); return 2; }
	if (cp < 0x10000) { o[0] = 0xe0 | cp >> 12; o[1] = 0x80 | (cp >> 6 & 0x3f);
	                    o[2] = 0x80 | (cp & 0x3f); return 3; }
	o[0] = 0xf0 | cp >> 18; o[1] = 0x80 | (cp >> 12 & 0x3f);
	o[2] = 0x80 | (cp >> 6 & 0x3f); o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* Byte-at-a-time view of a validated string's decoded value, for comparing
 * escaped keys without decoding them into a buffer first. */
struct sdec { const unsigned char *p, *e; unsigned char u[4]; int ui, un; };

static void sdec_init(struct sdec *s, const struct json_doc *d, int t)
{
	s->p = (const unsigned char *)d->src + d->tok[t].start;
	s->e = (const unsigned char *)d->src + d->tok[t].end;
	s->ui = s->un = 0;
}

static int sdec_next(struct sdec *s)
{
	if (s->ui < s->un)
		return s->u[s->ui++];
	if (s->p >= s->e)
		return -1;
	if (*s->p != '\\')
		return *s->p++;
	uint32_t cp;
	s->p = decode_escape(s->p, &cp);
	s->un = utf8_put(s->u, cp);
	s->ui = 1;
	return s->u[0];
}

static int str_plain(const struct json_tok *t) { return t->ival == (int64_t)(t->end - t->start); }

/* Order of two string tokens by decoded UTF-8 bytes, shorter prefix first.
 * UTF-8 byte order is code point order, which is what canonicaljson's
 * sort_keys (Python str order) and the Matrix spec use. */
static int str_cmp(const struct json_doc *d, uint32_t a, uint32_t b)
{
	const struct json_tok *ta = &d->tok[a], *tb = &d->tok[b];
	if (str_plain(ta) && str_plain(tb)) {
		size_t la = ta->end - ta->start, lb = tb->end - tb->start;
		int r = memcmp(d->src + ta->start, d->src + tb->start, la < lb ? la : lb);
		if (r)
			return r;
		return (la > lb) - (la < lb);
	}
	struct sdec x, y;
	sdec_init(&x, d, (int)a);
	sdec_init(&y, d, (int)b);
	for (;;) {
		int cx = sdec_next(&x), cy = sdec_next(&y);
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx < 0)
			return 0;
	}
}

/* Grammar of a primitive: exactly true/false/null or an integer without
 * leading zeros; valid JSON numbers we refuse (fractions, exponents, -0) are
 * told apart from non-numbers so the reason code is right. */
static enum json_err check_primitive(const unsigned char *p, const unsigned char *e,
                                     uint8_t *type, int64_t *ival)
{
	size_t n = (size_t)(e - p);
	*ival = 0;
	if (n == 4 && memcmp(p, "true", 4) == 0) { *type = JSON_TRUE; return JSON_OK; }
	if (n == 5 && memcmp(p, "false", 5) == 0) { *type = JSON_FALSE; return JSON_OK; }
	if (n == 4 && memcmp(p, "null", 4) == 0) { *type = JSON_NULL; return JSON_OK; }
	const unsigned char *q = p;
	int neg = 0, isfloat = 0;
	if (q < e && *q == '-') { neg = 1; q++; }
	if (q == e || *q < '0' || *q > '9')
		return JSON_E_SYNTAX;
	uint64_t v = 0;
	if (*q == '0') {
		q++;
		if (q < e && *q >= '0' && *q <= '9')
			return JSON_E_SYNTAX;           /* leading zero */
	} else {
		while (q < e && *q >= '0' && *q <= '9') {
			if (v <= (uint64_t)MAX_SAFE_INT)
				v = v * 10 + (uint64_t)(*q - '0');
			q++;
		}
	}
	if (q < e && *q == '.') {
		q++;
		if (q == e || *q < '0' || *q > '9')
			return JSON_E_SYNTAX;
		while (q < e && *q >= '0' && *q <= '9') q++;
		isfloat = 1;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < e && (*q == '+' || *q == '-')) q++;
		if (q == e || *q < '0' || *q > '9')
			return JSON_E_SYNTAX;
		while (q < e && *q >= '0' && *q <= '9') q++;
		isfloat = 1;
	}
	if (q != e)
		return JSON_E_SYNTAX;
	if (isfloat || (neg && v == 0))
		return JSON_E_FLOAT;
	if (v > (uint64_t)MAX_SAFE_INT)
		return JSON_E_RANGE;
	*type = JSON_INT;
	*ival = neg ? -(int64_t)v : (int64_t)v;
	return JSON_OK;
}

/* ---------------------------------------------------------------- parsing */

static int fail(struct json_doc *d, enum json_err e, size_t off)
{
	d->err = e;
	d->err_off = (uint32_t)off;
	d->ntok = 0;
	return -1;
}

/* Gap between two tokens: whitespace, optionally exactly one sep, whitespace. */
static int gap_ok(const char *s, size_t a, size_t b, char sep, size_t *bad)
{
	if (a > b) { *bad = b; return 0; }
	while (a < b && is_ws((unsigned char)s[a])) a++;
	if (sep) {
		if (a == b || s[a] != sep) { *bad = a; return 0; }
		a++;
		while (a < b && is_ws((unsigned char)s[a])) a++;
	}
	if (a != b) { *bad = a; return 0; }
	return 1;
}

static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && is_ws((unsigned char)s[i])) i++;
	return i;
}

/* The jsmn tokens live after the json_tok array in the same allocation, so
 * json_doc needs no extra field and json_doc_free() frees both. */
static jsmntok_t *jsmn_area(struct json_doc *d)
{
	return (jsmntok_t *)(void *)((char *)d->tok + (size_t)d->cap * sizeof(struct json_tok));
}

static int grow(struct json_doc *d, uint32_t want, uint32_t keep_jsmn)
{
	if (want <= d->cap)
		return 0;
	uint32_t nc = d->cap ? d->cap : 64;
	while (nc < want) {
		if (nc > UINT32_MAX / 2)
			return -1;
		nc *= 2;
	}
	size_t per = sizeof(struct json_tok) + sizeof(jsmntok_t);
	if ((size_t)nc > SIZE_MAX / per)
		return -1;
	char *blk = malloc((size_t)nc * per);
	if (blk == NULL)
		return -1;
	if (keep_jsmn)
		memcpy(blk + (size_t)nc * sizeof(struct json_tok), jsmn_area(d),
		       (size_t)keep_jsmn * sizeof(jsmntok_t));
	free(d->tok);
	d->tok = (struct json_tok *)(void *)blk;
	d->cap = nc;
	return 0;
}

/* After jsmn refused the input: say why in our terms. A complete first value
 * followed by anything means trailing garbage; otherwise the nesting limit is
 * checked (a 10,000-deep truncated "[[[[" must read as a depth refusal),
 * else it is plain syntax (including truncation). */
static int classify_jsmn_failure(struct json_doc *d, jsmn_parser *jp, int max_depth)
{
	const jsmntok_t *jt = jsmn_area(d);
	if (jp->toknext > 0) {
		long rend = jt[0].type == JSMN_STRING ? jt[0].end + 1 : jt[0].end;
		if (jt[0].end >= 0 && (long)jp->pos >= rend)
			return fail(d, JSON_E_TRAILING, skip_ws(d->src, (size_t)rend, d->len));
	}
	const char *s = d->src;
	int depth = 0, instr = 0;
	for (size_t i = 0; i < d->len; i++) {
		char c = s[i];
		if (instr) {
			if (c == '\\') i++;
			else if (c == '"') instr = 0;
		} else if (c == '"') {
			instr = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return fail(d, JSON_E_DEPTH, i);
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return fail(d, JSON_E_SYNTAX, jp->pos < d->len ? jp->pos : d->len);
}

/* jsmn's strict mode refuses a lone top-level primitive (it wants a delimiter
 * after it), so a document that is just "1" or "true" is handled here. */
static int parse_top_primitive(struct json_doc *d, size_t i)
{
	const char *s = d->src;
	size_t j = i;
	while (j < d->len && !is_ws((unsigned char)s[j]) && s[j] != ',' && s[j] != ']'
	       && s[j] != '}' && s[j] != ':' && s[j] != '[' && s[j] != '{' && s[j] != '"')
		j++;
	if (grow(d, 1, 0) < 0)
		return fail(d, JSON_E_NOMEM, i);
	struct json_tok *t = &d->tok[0];
	enum json_err e = check_primitive((const unsigned char *)s + i,
	                                  (const unsigned char *)s + j, &t->type, &t->ival);
	if (e != JSON_OK)
		return fail(d, e, i);
	size_t k = skip_ws(s, j, d->len);
	if (k != d->len)
		return fail(d, JSON_E_TRAILING, k);
	t->start = (uint32_t)i;
	t->end = (uint32_t)j;
	t->size = 0;
	t->next = 1;
	t->flags = 0;
	d->ntok = 1;
	return 0;
}

/* Duplicate keys: pairwise for typical small objects (the decoded lengths
 * differ for most pairs, so it is a few integer compares), sort otherwise. */
static void sort_keys(const struct json_doc *d, uint32_t *k, uint32_t *tmp, uint32_t n);

static int check_dupkeys(struct json_doc *d, uint32_t o)
{
	uint32_t n = d->tok[o].size;
	uint32_t local[2 * 64], *keys = local;
	/* Keys already in strictly increasing order (any canonical input) hold
	 * no duplicates: one pass of neighbour compares settles it. */
	{
		uint32_t prev = o + 1, x = d->tok[prev + 1].next, i = 1;
		for (; i < n; i++) {
			if (str_cmp(d, prev, x) >= 0)
				break;
			prev = x;
			x = d->tok[x + 1].next;
		}
		if (i == n)
			return 0;
		d->tok[o].flags &= (uint8_t)~JSON_TF_CANON;
	}
	if (n <= SMALL_SORT) {
		uint32_t k[SMALL_SORT], x = o + 1;
		for (uint32_t i = 0; i < n; i++) {
			k[i] = x;
			x = d->tok[x + 1].next;
		}
		for (uint32_t i = 1; i < n; i++)
			for (uint32_t j = 0; j < i; j++)
				if (d->tok[k[i]].ival == d->tok[k[j]].ival && str_cmp(d, k[i], k[j]) == 0)
					return fail(d, JSON_E_DUPKEY, d->tok[k[i]].start - 1);
		return 0;
	}
	if (n > 64 && (keys = malloc(2 * (size_t)n * sizeof *keys)) == NULL)
		return fail(d, JSON_E_NOMEM, d->tok[o].start);
	uint32_t x = o + 1;
	for (uint32_t i = 0; i < n; i++) {
		keys[i] = x;
		x = d->tok[x + 1].next;
	}
	sort_keys(d, keys, keys + n, n);
	int rc = 0;
	for (uint32_t i = 1; i < n; i++)
		if (str_cmp(d, keys[i - 1], keys[i]) == 0) {
			uint32_t a = keys[i - 1] > keys[i] ? keys[i - 1] : keys[i];
			rc = fail(d, JSON_E_DUPKEY, d->tok[a].start - 1);
			break;
		}
	if (keys != local)
		free(keys);
	return rc;
}

int json_parse(struct json_doc *d, const char *buf, size_t len, int max_depth)
{
	d->src = buf;
	d->len = len;
	d->ntok = 0;
	d->err = JSON_OK;
	d->err_off = 0;
	if (max_depth <= 0)
		max_depth = JSON_MAX_DEPTH_DEFAULT;
	if (len > JSON_MAX_LEN)
		return fail(d, JSON_E_NOMEM, 0);
	size_t i0 = skip_ws(buf, 0, len);
	if (i0 == len)
		return fail(d, JSON_E_SYNTAX, len);
	unsigned char c0 = (unsigned char)buf[i0];
	if (c0 == '-' || (c0 >= '0' && c0 <= '9') || c0 == 't' || c0 == 'f' || c0 == 'n')
		return parse_top_primitive(d, i0);

	/* A token needs at least two bytes of input on average in real
	 * documents; start there and let jsmn resume after growing. */
	if (grow(d, (uint32_t)(len / 8 + 16), 0) < 0)
		return fail(d, JSON_E_NOMEM, 0);
	jsmn_parser jp;
	jsmn_init(&jp);
	int r;
	for (;;) {
		r = jsmn_parse(&jp, buf, len, jsmn_area(d), d->cap);
		if (r != JSMN_ERROR_NOMEM)
			break;
		if (grow(d, d->cap + 1, jp.toknext) < 0)
			return fail(d, JSON_E_NOMEM, jp.pos);
	}
	if (r < 0)
		return classify_jsmn_failure(d, &jp, max_depth);
	uint32_t n = jp.toknext;
	if (n == 0)
		return fail(d, JSON_E_SYNTAX, i0);

	jsmntok_t *jt = jsmn_area(d);
	struct json_tok *tk = d->tok;
	const unsigned char *s = (const unsigned char *)buf;
	size_t bad;

	/* Forward walk in document order. For containers, tk[].next temporarily
	 * holds the raw end of the last child seen (where the next gap starts)
	 * and tk[].ival their depth; jt[].size becomes the subtree-end
	 * accumulator once the token's own size has been checked. */
	for (uint32_t i = 0; i < n; i++) {
		jsmntok_t *j = &jt[i];
		struct json_tok *t = &tk[i];
		int p = j->parent;
		size_t rs = j->type == JSMN_STRING ? (size_t)j->start - 1 : (size_t)j->start;
		size_t re = j->type == JSMN_STRING ? (size_t)j->end + 1 : (size_t)j->end;
		int64_t pdepth = 0;
		int is_key = 0;
		int cont = -1;          /* the enclosing object or array */

		if (i == 0) {
			if (!gap_ok(buf, 0, rs, 0, &bad))
				return fail(d, JSON_E_SYNTAX, bad);
		} else if (p < 0) {
			size_t r0 = jt[0].type == JSMN_STRING ? (size_t)jt[0].end + 1 : (size_t)jt[0].end;
			return fail(d, JSON_E_TRAILING, skip_ws(buf, r0, len));
		} else if (jt[p].type == JSMN_OBJECT) {
			if (j->type != JSMN_STRING || j->size != 1)
				return fail(d, JSON_E_SYNTAX, re);
			if (!gap_ok(buf, tk[p].next, rs, tk[p].size ? ',' : 0, &bad))
				return fail(d, JSON_E_SYNTAX, bad);
			if (rs - tk[p].next != (tk[p].size ? 1u : 0u))
				tk[p].flags = 0;
			tk[p].size++;
			is_key = 1;
			cont = p;
		} else if (jt[p].type == JSMN_STRING) {
			int o = jt[p].parent;           /* the value of key p in object o */
			if (!gap_ok(buf, (size_t)jt[p].end + 1, rs, ':', &bad))
				return fail(d, JSON_E_SYNTAX, bad);
			if (rs != (size_t)jt[p].end + 2)
				tk[o].flags = 0;
			tk[o].next = (uint32_t)re;
			pdepth = tk[o].ival;
			cont = o;
		} else if (jt[p].type == JSMN_ARRAY) {
			if (!gap_ok(buf, tk[p].next, rs, tk[p].size ? ',' : 0, &bad))
				return fail(d, JSON_E_SYNTAX, bad);
			if (rs - tk[p].next != (tk[p].size ? 1u : 0u))
				tk[p].flags = 0;
			tk[p].size++;
			tk[p].next = (uint32_t)re;
			pdepth = tk[p].ival;
			cont = p;
		} else {
			return fail(d, JSON_E_SYNTAX, rs);
		}
		if (is_key)
			pdepth = tk[p].ival;

		t->start = (uint32_t)j->start;
		t->end = (uint32_t)j->end;
		t->size = 0;
		t->next = i + 1;
		t->ival = 0;
		t->flags = 0;
		enum json_err e;
		switch (j->type) {
		case JSMN_OBJECT:
		case JSMN_ARRAY:
			t->type = j->type == JSMN_OBJECT ? JSON_OBJECT : JSON_ARRAY;
			t->ival = pdepth + 1;
			t->flags = JSON_TF_CANON;
			if (t->ival > max_depth)
				return fail(d, JSON_E_DEPTH, rs);
			t->next = (uint32_t)j->start + 1;
			break;
		case JSMN_STRING: {
			const unsigned char *b = NULL;
			size_t dl = 0;
			if (!is_key && j->size != 0)
				return fail(d, JSON_E_SYNTAX, re);
			e = scan_string(s + j->start, s + j->end, &dl, &b);
			if (e != JSON_OK)
				return fail(d, e, (size_t)(b - s));
			t->type = JSON_STRING;
			t->ival = (int64_t)dl;
			if (cont >= 0 && dl != (size_t)(j->end - j->start))
				tk[cont].flags = 0;     /* an escape: not as canonical writes it */
			break;
		}
		case JSMN_PRIMITIVE:
			if (j->size != 0)
				return fail(d, JSON_E_SYNTAX, re);
			e = check_primitive(s + j->start, s + j->end, &t->type, &t->ival);
			if (e != JSON_OK)
				return fail(d, e, rs);
			break;
		default:
			return fail(d, JSON_E_SYNTAX, rs);
		}
		j->size = (int)(i + 1);
	}

	/* Reverse walk: children come after their parent, so one backwards
	 * pass computes every subtree end; also check each container's closing
	 * gap (only whitespace before the bracket). */
	for (uint32_t i = n; i-- > 0;) {
		jsmntok_t *j = &jt[i];
		struct json_tok *t = &tk[i];
		uint32_t nx = (uint32_t)j->size;
		if (t->type == JSON_OBJECT || t->type == JSON_ARRAY) {
			if (!gap_ok(buf, t->next, (size_t)j->end - 1, 0, &bad))
				return fail(d, JSON_E_SYNTAX, bad);
			if (t->next != (uint32_t)j->end - 1)
				t->flags = 0;
			t->ival = 0;
		}
		int p = j->parent;
		t->next = (p >= 0 && jt[p].type == JSMN_OBJECT) ? i + 1 : nx;  /* keys are leaves */
		if (p >= 0 && (uint32_t)jt[p].size < nx)
			jt[p].size = (int)nx;
	}
	size_t rend = jt[0].type == JSMN_STRING ? (size_t)jt[0].end + 1 : (size_t)jt[0].end;
	size_t k = skip_ws(buf, rend, len);
	if (k != len)
		return fail(d, JSON_E_TRAILING, k);
	d->ntok = n;
	for (uint32_t i = 0; i < n; i++)
		if (tk[i].type == JSON_OBJECT && tk[i].size > 1 && check_dupkeys(d, i) < 0)
			return -1;
	/* A container is canonical as written only if every one inside is:
	 * children follow their parents, so one backwards pass carries it up
	 * (a value's jsmn parent is its key; the key's parent is the object). */
	for (uint32_t i = n; i-- > 1;) {
		if ((tk[i].type != JSON_OBJECT && tk[i].type != JSON_ARRAY) || (tk[i].flags & JSON_TF_CANON))
			continue;
		int p = jt[i].parent;
		if (p >= 0 && jt[p].type == JSMN_STRING)
			p = jt[p].parent;
		if (p >= 0)
			tk[p].flags &= (uint8_t)~JSON_TF_CANON;
	}
	return 0;
}

void json_doc_free(struct json_doc *d)
{
	free(d->tok);
	memset(d, 0, sizeof *d);
}

const char *json_err_str(enum json_err e)
{
	switch (e) {
	case JSON_OK:         return "ok";
	case JSON_E_SYNTAX:   return "syntax";
	case JSON_E_TRAILING: return "trailing";
	case JSON_E_DUPKEY:   return "duplicate_key";
	case JSON_E_FLOAT:    return "float";
	case JSON_E_RANGE:    return "integer_range";
	case JSON_E_UTF8:     return "utf8";
	case JSON_E_DEPTH:    return "depth";
	case JSON_E_NOMEM:    return "nomem";
	}
	return "unknown";
}

/* ---------------------------------------------------------------- navigation */

static int valid_tok(const struct json_doc *d, int t) { return t >= 0 && (uint32_t)t < d->ntok; }

int json_first(const struct json_doc *d, int c)
{
	if (!valid_tok(d, c) || (d->tok[c].type != JSON_OBJECT && d->tok[c].type != JSON_ARRAY)
	    || d->tok[c].size == 0)
		return -1;
	return c + 1;
}

int json_next_kv(const struct json_doc *d, int obj, int key)
{
	if (!valid_tok(d, obj) || !valid_tok(d, key + 1))
		return -1;
	uint32_t nx = d->tok[key + 1].next;
	return nx < d->tok[obj].next ? (int)nx : -1;
}

int json_next_elem(const struct json_doc *d, int arr, int elem)
{
	if (!valid_tok(d, arr) || !valid_tok(d, elem))
		return -1;
	uint32_t nx = d->tok[elem].next;
	return nx < d->tok[arr].next ? (int)nx : -1;
}

int json_str_eq(const struct json_doc *d, int t, const char *s)
{
	if (!valid_tok(d, t) || d->tok[t].type != JSON_STRING)
		return 0;
	const struct json_tok *k = &d->tok[t];
	size_t n = strlen(s);
	if ((size_t)k->ival != n)
		return 0;
	if (str_plain(k))
		return memcmp(d->src + k->start, s, n) == 0;
	struct sdec x;
	sdec_init(&x, d, t);
	for (size_t i = 0; i < n; i++)
		if (sdec_next(&x) != (unsigned char)s[i])
			return 0;
	return 1;
}

int json_obj_get(const struct json_doc *d, int obj, const char *key)
{
	if (!valid_tok(d, obj) || d->tok[obj].type != JSON_OBJECT)
		return -1;
	/* Called for every field of every event: measure the key once and
	 * let the decoded lengths rule out most members before any compare. */
	int64_t n = (int64_t)strlen(key);
	const struct json_tok *tk = d->tok;
	uint32_t k = (uint32_t)obj + 1;
	for (uint32_t i = 0; i < tk[obj].size; i++, k = tk[k + 1].next) {
		if (tk[k].ival != n)
			continue;
		if (str_plain(&tk[k]) ? memcmp(d->src + tk[k].start, key, (size_t)n) == 0
		                      : json_str_eq(d, (int)k, key))
			return (int)k + 1;
	}
	return -1;
}

size_t json_str_len(const struct json_doc *d, int t)
{
	if (!valid_tok(d, t) || d->tok[t].type != JSON_STRING)
		return 0;
	return (size_t)d->tok[t].ival;
}

int json_str_copy(const struct json_doc *d, int t, char *out, size_t cap)
{
	if (!valid_tok(d, t) || d->tok[t].type != JSON_STRING || cap == 0)
		return -1;
	const struct json_tok *k = &d->tok[t];
	size_t n = (size_t)k->ival;
	if (n > cap - 1)
		return -1;
	if (str_plain(k)) {
		memcpy(out, d->src + k->start, n);
	} else {
		struct sdec x;
		sdec_init(&x, d, t);
		for (size_t i = 0; i < n; i++)
			out[i] = (char)sdec_next(&x);
	}
	out[n] = 0;
	return (int)n;
}

int json_str_has_ctl(const struct json_doc *d, int t)
{
	if (!valid_tok(d, t) || d->tok[t].type != JSON_STRING)
		return 0;
	const struct json_tok *k = &d->tok[t];
	if (str_plain(k))        /* no escapes: only a raw DEL can be there */
		return memchr(d->src + k->start, 0x7f, k->end - k->start) != NULL;
	struct sdec x;
	sdec_init(&x, d, t);
	for (int64_t i = 0; i < k->ival; i++) {
		int c = sdec_next(&x);
		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

long json_str_b64(const struct json_doc *d, int t, unsigned char *out, size_t cap)
{
	if (!valid_tok(d, t) || d->tok[t].type != JSON_STRING)
		return -1;
	const struct json_tok *k = &d->tok[t];
	if (k->ival > JSON_B64_MAX)
		return -1;
	if (str_plain(k))
		return b64_decode(out, cap, d->src + k->start, (size_t)k->ival);
	char tmp[JSON_B64_MAX + 1];
	int n = json_str_copy(d, t, tmp, sizeof tmp);
	return n < 0 ? -1 : b64_decode(out, cap, tmp, (size_t)n);
}

/* ---------------------------------------------------------------- encoding */

static const char hexd[] = "0123456789abcdef";

/* Escape one decoded code point the way canonicaljson (Python json with
 * ensure_ascii=False) does: '"', '\\', and C0 controls only; \u00XX in
 * lowercase hex except for the five short forms. */
static char *put_cp(char *w, uint32_t cp)
{
	if (cp >= 0x20 && cp != '"' && cp != '\\')
		return w + utf8_put((unsigned char *)w, cp);
	*w++ = '\\';
	switch (cp) {
	case '"':  *w++ = '"'; break;
	case '\\': *w++ = '\\'; break;
	case '\b': *w++ = 'b'; break;
	case '\f': *w++ = 'f'; break;
	case '\n': *w++ = 'n'; break;
	case '\r': *w++ = 'r'; break;
	case '\t': *w++ = 't'; break;
	default:
		*w++ = 'u'; *w++ = '0'; *w++ = '0';
		*w++ = hexd[cp >> 4]; *w++ = hexd[cp & 15];
	}
	return w;
}

void json_put_string(struct buf *out, const char *s, size_t n)
{
	buf_reserve(out, 6 * n + 2);
	char *w = out->data + out->len;
	*w++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			*w++ = (char)c;
		else
			w = put_cp(w, c);
	}
	*w++ = '"';
	out->len = (size_t)(w - out->data);
	out->data[out->len] = 0;
}

/* A validated string token as a canonical literal. Unescaped input can hold
 * no '"', '\\' or control byte, so it is copied verbatim. */
static char *put_str_tok(char *w, const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k = &d->tok[t];
	const unsigned char *p = (const unsigned char *)d->src + k->start;
	const unsigned char *e = (const unsigned char *)d->src + k->end;
	*w++ = '"';
	if (str_plain(k)) {
		memcpy(w, p, (size_t)(e - p));
		w += e - p;
	} else {
		while (p < e) {
			const unsigned char *q = p;
			while (q < e && *q != '\\') q++;
			memcpy(w, p, (size_t)(q - p));
			w += q - p;
			if (q == e)
				break;
			uint32_t cp;
			p = decode_escape(q, &cp);
			w = put_cp(w, cp);
		}
	}
	*w++ = '"';
	return w;
}

static char *put_int(char *w, int64_t v)
{
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	if (v < 0)
		*w++ = '-';
	do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
	while (n) *w++ = tmp[--n];
	return w;
}

static char *put_scalar(char *w, const struct json_doc *d, uint32_t t)
{
	switch (d->tok[t].type) {
	case JSON_STRING: return put_str_tok(w, d, t);
	case JSON_INT:    return put_int(w, d->tok[t].ival);
	case JSON_TRUE:   memcpy(w, "true", 4); return w + 4;
	case JSON_FALSE:  memcpy(w, "false", 5); return w + 5;
	default:          memcpy(w, "null", 4); return w + 4;
	}
}

/* A scalar, or a container already canonical as written (copied whole). */
static char *put_value(char *w, const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k = &d->tok[t];
	if (k->type == JSON_OBJECT || k->type == JSON_ARRAY) {
		memcpy(w, d->src + k->start, k->end - k->start);
		return w + (k->end - k->start);
	}
	return put_scalar(w, d, t);
}

static void sort_keys(const struct json_doc *d, uint32_t *k, uint32_t *tmp, uint32_t n)
{
	if (n <= SMALL_SORT) {
		for (uint32_t i = 1; i < n; i++) {
			uint32_t x = k[i], j = i;
			while (j > 0 && str_cmp(d, k[j - 1], x) > 0) { k[j] = k[j - 1]; j--; }
			k[j] = x;
		}
		return;
	}
	/* Bottom-up merge sort: runs of SMALL_SORT by insertion, then merges. */
	for (uint32_t b = 0; b < n; b += SMALL_SORT)
		sort_keys(d, k + b, tmp, n - b < SMALL_SORT ? n - b : SMALL_SORT);
	uint32_t *src = k, *dst = tmp;
	for (uint32_t w = SMALL_SORT; w < n; w *= 2) {
		for (uint32_t lo = 0; lo < n; lo += 2 * w) {
			uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			uint32_t a = lo, b = mid, o = lo;
			while (a < mid && b < hi)
				dst[o++] = str_cmp(d, src[a], src[b]) <= 0 ? src[a++] : src[b++];
			while (a < mid) dst[o++] = src[a++];
			while (b < hi) dst[o++] = src[b++];
		}
		uint32_t *x = src; src = dst; dst = x;
	}
	if (src != k)
		memcpy(k, src, n * sizeof *k);
}

/* One open container during encoding. Objects keep their sorted keys in the
 * key pool at [kbase, kbase + n); arrays walk their elements with cur. */
struct cframe {
	uint32_t tok, kbase, n, i, cur;
	int pdepth;     /* path entries above this container's members */
	int emitted;    /* members written so far (for commas) */
	int noask;      /* the filter said JSON_KEEP_ALL above: do not ask */
};

struct cstate {
	const struct json_doc *d;
	struct cframe *fr, frl[32];
	uint32_t nfr, capfr;
	uint32_t *pool, pooll[256];
	uint32_t npool, cappool;
	const char **path, *pathl[32];
	uint32_t cappath;
	char *pbytes, pbl[1024];        /* decoded path keys, stack-like */
	size_t cappb;
	size_t *poff, poffl[32];        /* where each level's key ends in pbytes */
};

static int grow_arr(void **p, void *local, uint32_t *cap, uint32_t want, size_t elt)
{
	if (want <= *cap)
		return 0;
	uint32_t nc = *cap * 2;
	while (nc < want) nc *= 2;
	void *np = malloc((size_t)nc * elt);
	if (np == NULL)
		return -1;
	memcpy(np, *p, (size_t)*cap * elt);
	if (*p != local)
		free(*p);
	*p = np;
	*cap = nc;
	return 0;
}

static int push_frame(struct cstate *c, uint32_t t, int pdepth, int noask)
{
	const struct json_doc *d = c->d;
	if (grow_arr((void **)&c->fr, c->frl, &c->capfr, c->nfr + 1, sizeof *c->fr) < 0)
		return -1;
	struct cframe *f = &c->fr[c->nfr++];
	f->tok = t;
	f->n = d->tok[t].size;
	f->i = 0;
	f->pdepth = pdepth;
	f->emitted = 0;
	f->noask = noask;
	f->kbase = c->npool;
	f->cur = t + 1;
	if (d->tok[t].type == JSON_OBJECT) {
		if (grow_arr((void **)&c->pool, c->pooll, &c->cappool, c->npool + 2 * f->n,
		             sizeof *c->pool) < 0)
			return -1;
		uint32_t *k = c->pool + c->npool, x = t + 1;
		for (uint32_t i = 0; i < f->n; i++) {
			k[i] = x;
			x = d->tok[x + 1].next;
		}
		if (!(d->tok[t].flags & JSON_TF_CANON))   /* else already in order */
			sort_keys(d, k, k + f->n, f->n);
		c->npool += f->n;
	}
	return 0;
}

/* Set path[level] to the decoded key and ask the filter. The key bytes are
 * kept stack-like in pbytes (level i's key starts at poff[i - 1]); when that
 * grows, the pointers of the levels above are re-derived from the offsets. */
static int ask_keep(struct cstate *c, json_keep_fn keep, void *arg, int level, uint32_t key)
{
	uint32_t want = (uint32_t)level + 1;
	if (want > c->cappath) {
		uint32_t cp = c->cappath, co = c->cappath;
		if (grow_arr((void **)&c->path, c->pathl, &cp, want, sizeof *c->path) < 0 ||
		    grow_arr((void **)&c->poff, c->poffl, &co, want, sizeof *c->poff) < 0)
			return -1;
		c->cappath = cp < co ? cp : co;
	}
	size_t off = level ? c->poff[level - 1] : 0;
	size_t klen = (size_t)c->d->tok[key].ival;
	if (off + klen + 1 > c->cappb) {
		size_t nc = c->cappb * 2;
		while (nc < off + klen + 1) nc *= 2;
		char *nb = malloc(nc);
		if (nb == NULL)
			return -1;
		memcpy(nb, c->pbytes, off);
		if (c->pbytes != c->pbl)
			free(c->pbytes);
		c->pbytes = nb;
		c->cappb = nc;
		for (int i = 0; i < level; i++)
			c->path[i] = c->pbytes + (i ? c->poff[i - 1] : 0);
	}
	char *dst = c->pbytes + off;
	json_str_copy(c->d, (int)key, dst, klen + 1);
	c->path[level] = dst;
	c->poff[level] = off + klen + 1;
	int r = keep(arg, c->path, level + 1);
	return r == JSON_KEEP_ALL ? r : r ? 1 : 0;
}

int json_canonical(const struct json_doc *d, int t, struct buf *out,
                   json_keep_fn keep, void *arg)
{
	if (!valid_tok(d, t))
		return -1;
	const struct json_tok *root = &d->tok[t];
	/* The canonical form is never longer than its source: escapes only
	 * shrink or keep their length and integers are printed as they were
	 * written (no leading zeros, no -0), so reserve once and write raw. */
	size_t ub = root->end - root->start + 2;
	buf_reserve(out, ub);
	char *base = out->data + out->len, *w = base;
	if ((root->type != JSON_OBJECT && root->type != JSON_ARRAY)
	    || (keep == NULL && (root->flags & JSON_TF_CANON))) {
		w = put_value(w, d, (uint32_t)t);
		out->len += (size_t)(w - base);
		out->data[out->len] = 0;
		return 0;
	}

	struct cstate c;
	c.d = d;
	c.fr = c.frl; c.nfr = 0; c.capfr = 32;
	c.pool = c.pooll; c.npool = 0; c.cappool = 256;
	c.path = c.pathl; c.cappath = 32;
	c.pbytes = c.pbl; c.cappb = sizeof c.pbl; c.poff = c.poffl;
	int rc = -1;
	if (push_frame(&c, (uint32_t)t, 0, keep == NULL) < 0)
		goto out;
	*w++ = root->type == JSON_OBJECT ? '{' : '[';
	while (c.nfr) {
		struct cframe *f = &c.fr[c.nfr - 1];
		uint32_t v;
		int pdepth, noask = f->noask;
		if (f->i == f->n) {
			*w++ = d->tok[f->tok].type == JSON_OBJECT ? '}' : ']';
			if (d->tok[f->tok].type == JSON_OBJECT)
				c.npool -= f->n;
			c.nfr--;
			continue;
		}
		if (d->tok[f->tok].type == JSON_OBJECT) {
			uint32_t k = c.pool[f->kbase + f->i++];
			pdepth = f->pdepth + 1;
			if (!f->noask) {
				int r = ask_keep(&c, keep, arg, f->pdepth, k);
				if (r < 0)
					goto out;
				if (r == 0)
					continue;
				noask = r == JSON_KEEP_ALL;
			}
			if (f->emitted++)
				*w++ = ',';
			w = put_str_tok(w, d, k);
			*w++ = ':';
			v = k + 1;
		} else {
			v = f->cur;
			f->cur = d->tok[v].next;
			f->i++;
			pdepth = f->pdepth;
			if (f->emitted++)
				*w++ = ',';
		}
		uint8_t ty = d->tok[v].type;
		if ((ty == JSON_OBJECT || ty == JSON_ARRAY) && !(noask && (d->tok[v].flags & JSON_TF_CANON))) {
			if (push_frame(&c, v, pdepth, noask) < 0)
				goto out;
			*w++ = ty == JSON_OBJECT ? '{' : '[';
		} else {
			w = put_value(w, d, v);
		}
	}
	rc = 0;
out:
	if (rc == 0) {
		out->len += (size_t)(w - base);
		out->data[out->len] = 0;
	}
	if (c.fr != c.frl) free(c.fr);
	if (c.pool != c.pooll) free(c.pool);
	if (c.path != c.pathl) free((void *)c.path);
	if (c.pbytes != c.pbl) free(c.pbytes);
	if (c.poff != c.poffl) free(c.poff);
	return rc;
}

int json_canonicalize(const char *in, size_t n, struct buf *out, enum json_err *err)
{
	struct json_doc d;
	memset(&d, 0, sizeof d);
	int rc = json_parse(&d, in, n, JSON_MAX_DEPTH_DEFAULT);
	if (err)
		*err = rc == 0 ? JSON_OK : d.err;
	if (rc == 0 && json_canonical(&d, 0, out, NULL, NULL) < 0) {
		if (err)
			*err = JSON_E_NOMEM;
		rc = -1;
	}
	json_doc_free(&d);
	return rc;
}
