/* test_vclock.c: vector clock merge, compare, the 256-entry cap, JSON. */
#include "../lib/tap.h"
#include "vclock.h"
#include <stdio.h>
#include <string.h>

int main(void)
{
	static struct vclock a, b, c;
	vclock_init(&a); vclock_init(&b);
	TAP_OK(vclock_compare(&a, &b) == VC_EQUAL, "empty clocks are equal");
	vclock_advance(&a, "A", 3);
	TAP_OK(vclock_compare(&a, &b) == VC_AFTER, "a ahead: after");
	TAP_OK(vclock_compare(&b, &a) == VC_BEFORE, "b behind: before");
	vclock_advance(&b, "A", 3);
	TAP_OK(vclock_compare(&a, &b) == VC_EQUAL, "same entries: equal (not concurrent)");
	vclock_advance(&b, "B", 1);
	vclock_advance(&a, "C", 2);
	TAP_OK(vclock_compare(&a, &b) == VC_CONCURRENT, "each has what the other lacks: concurrent");
	vclock_advance(&a, "A", 1);
	TAP_OK(vclock_get(&a, "A") == 3, "advance never goes back");
	c = a; vclock_merge(&c, &b);
	TAP_OK(vclock_get(&c, "A") == 3 && vclock_get(&c, "B") == 1 && vclock_get(&c, "C") == 2,
	       "merge takes the max per entry");
	TAP_OK(vclock_compare(&c, &a) == VC_AFTER && vclock_compare(&c, &b) == VC_AFTER,
	       "merge dominates both");
	vclock_advance(&b, "Z", 0);
	TAP_OK(vclock_get(&b, "Z") == 0 && b.n == 2, "zero is absent");
	TAP_OK(vclock_advance(&b, "", 5) == -1, "empty id refused");

	vclock_init(&a);
	char id[32];
	for (int i = 0; i < 300; i++) { snprintf(id, sizeof id, "N%03d", i); vclock_advance(&a, id, (uint64_t)i + 1); }
	TAP_OK(a.n == VCLOCK_MAX, "capped at 256 entries (%zu)", a.n);
	TAP_OK(vclock_get(&a, "N299") == 300 && vclock_get(&a, "N000") == 0, "cap keeps the most advanced entries");
	int sorted = 1;
	for (size_t i = 1; i < a.n; i++) if (strcmp(a.e[i - 1].id, a.e[i].id) >= 0) sorted = 0;
	TAP_OK(sorted, "entries stay sorted");

	struct buf j; buf_init(&j);
	vclock_to_json(&c, &j);
	TAP_OK(!strcmp(j.data, "{\"A\":3,\"B\":1,\"C\":2}"), "json: %s", j.data);
	vclock_init(&b);
	TAP_OK(vclock_parse(&b, j.data, j.len) == 3 && vclock_compare(&b, &c) == VC_EQUAL, "json round trip");
	TAP_OK(vclock_parse(&b, "[1]", 3) == -1, "non-object refused");
	vclock_init(&b);
	TAP_OK(vclock_parse(&b, "{\"x\":-1,\"y\":\"s\",\"z\":4}", 22) == 1 && vclock_get(&b, "z") == 4,
	       "bad entries skipped");
	buf_free(&j);
	return tap_done();
}
