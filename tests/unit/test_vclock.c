/* test_vclock.c: vector clock merge, compare, the 256-entry cap, JSON. */
#include "../lib/tap.h"
#include "core/vclock.h"
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

	/* Trust (issue 13): a liar L claims a huge position for honest H. Our
	 * view built from self entries only still pulls from H when H moves. */
	static struct vclock liar, self, mine, h;
	vclock_init(&liar);
	vclock_advance(&liar, "L", 5);
	vclock_advance(&liar, "H", 1000000000000000ULL);
	vclock_self(&self, &liar, "L");
	TAP_OK(self.n == 1 && vclock_get(&self, "L") == 5 && vclock_get(&self, "H") == 0,
	       "vclock_self keeps only what a node says of itself");
	vclock_self(&self, &liar, "absent");
	TAP_OK(self.n == 0, "vclock_self of an absent node is empty");
	vclock_init(&h);
	vclock_advance(&h, "H", 12);
	vclock_advance(&h, "L", 1);
	vclock_init(&mine);
	vclock_advance(&mine, "H", 10);                /* our cursor on H */
	vclock_self(&self, &h, "H");
	TAP_OK(vclock_compare(&self, &mine) == VC_AFTER, "H ahead of our cursor: pull");
	c = mine;
	vclock_merge(&c, &liar);
	TAP_OK(vclock_compare(&h, &c) == VC_BEFORE, "(a clock merged with the lie would skip H: the attack)");
	vclock_advance(&mine, "H", 12);
	TAP_OK(vclock_compare(&self, &mine) == VC_EQUAL, "caught up with H: skip");
	return tap_done();
}
