/* vclock.c: vector clocks (see vclock.h). Small sorted arrays: a node knows
 * at most a few hundred peers, so a linear merge is cheaper than a map. */
#include "core/vclock.h"
#include <string.h>

void vclock_init(struct vclock *v) { v->n = 0; }

static int find(const struct vclock *v, const char *id, int *at)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v->e[mid].id, id);
		if (c == 0) { *at = (int)mid; return 1; }
		if (c < 0) lo = mid + 1; else hi = mid;
	}
	*at = (int)lo;
	return 0;
}

uint64_t vclock_get(const struct vclock *v, const char *id)
{
	int at;
	return find(v, id, &at) ? v->e[at].pos : 0;
}

int vclock_advance(struct vclock *v, const char *id, uint64_t pos)
{
	size_t len = strlen(id);
	if (len == 0 || len >= VCLOCK_ID_MAX) return -1;
	int at;
	if (find(v, id, &at)) {
		if (pos > v->e[at].pos) v->e[at].pos = pos;
		return 0;
	}
	if (pos == 0) return 0;    /* 0 is the same as absent */
	if (v->n == VCLOCK_MAX) {
		/* Full: evict the entry with the smallest position if ours is larger,
		 * so the cap keeps the clock's most advanced knowledge. */
		size_t min = 0;
		for (size_t i = 1; i < v->n; i++) if (v->e[i].pos < v->e[min].pos) min = i;
		if (v->e[min].pos >= pos) return -1;
		memmove(&v->e[min], &v->e[min + 1], (v->n - min - 1) * sizeof v->e[0]);
		v->n--;
		find(v, id, &at);
	}
	memmove(&v->e[at + 1], &v->e[at], (v->n - (size_t)at) * sizeof v->e[0]);
	memcpy(v->e[at].id, id, len + 1);
	v->e[at].pos = pos;
	v->n++;
	return 0;
}

void vclock_merge(struct vclock *dst, const struct vclock *src)
{
	for (size_t i = 0; i < src->n; i++) vclock_advance(dst, src->e[i].id, src->e[i].pos);
}

void vclock_self(struct vclock *dst, const struct vclock *src, const char *id)
{
	uint64_t pos = vclock_get(src, id);
	vclock_init(dst);
	vclock_advance(dst, id, pos);
}

enum vclock_order vclock_compare(const struct vclock *a, const struct vclock *b)
{
	int a_more = 0, b_more = 0;
	size_t i = 0, j = 0;
	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->e[i].id, b->e[j].id);
		uint64_t x, y;
		if (c < 0) { x = a->e[i++].pos; y = 0; }
		else if (c > 0) { x = 0; y = b->e[j++].pos; }
		else { x = a->e[i++].pos; y = b->e[j++].pos; }
		if (x > y) a_more = 1;
		if (y > x) b_more = 1;
	}
	if (a_more && b_more) return VC_CONCURRENT;
	if (a_more) return VC_AFTER;
	if (b_more) return VC_BEFORE;
	return VC_EQUAL;
}

const char *vclock_order_str(enum vclock_order o)
{
	switch (o) {
	case VC_EQUAL: return "equal";
	case VC_BEFORE: return "before";
	case VC_AFTER: return "after";
	default: return "concurrent";
	}
}

void vclock_to_json(const struct vclock *v, struct buf *out)
{
	buf_addc(out, '{');
	for (size_t i = 0; i < v->n; i++) {
		if (i) buf_addc(out, ',');
		json_put_string(out, v->e[i].id, strlen(v->e[i].id));
		buf_printf(out, ":%llu", (unsigned long long)v->e[i].pos);
	}
	buf_addc(out, '}');
}

int vclock_from_json(struct vclock *v, const struct json_doc *d, int t)
{
	if (t < 0 || d->tok[t].type != JSON_OBJECT) return -1;
	int n = 0;
	for (int k = json_first(d, t); k >= 0; k = json_next_kv(d, t, k)) {
		char id[VCLOCK_ID_MAX];
		if (d->tok[k + 1].type != JSON_INT || d->tok[k + 1].ival < 0) continue;
		if (json_str_copy(d, k, id, sizeof id) <= 0) continue;
		if (vclock_advance(v, id, (uint64_t)d->tok[k + 1].ival) == 0) n++;
	}
	return n;
}

int vclock_parse(struct vclock *v, const char *json, size_t n)
{
	struct json_doc d = {0};
	int r = -1;
	if (json_parse(&d, json, n, 4) == 0) r = vclock_from_json(v, &d, 0);
	json_doc_free(&d);
	return r;
}
