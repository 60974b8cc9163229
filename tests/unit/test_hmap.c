/* test_hmap.c: core/hmap.h. Insert, find, remove and walk 100k entries
 * (several table doublings), colliding hashes on one chain, removal of the
 * node just returned while walking, and FNV-1a against published values. */
#include <stdlib.h>
#include <string.h>
#include "core/hmap.h"
#include "../lib/tap.h"

struct ent { struct hmap_node hn; int val; char key[24]; };

static struct ent *find(struct hmap *m, const char *key)
{
	uint64_t h = hmap_hash_str(key);
	HMAP_FOR_HASH(m, h, n) {
		struct ent *e = HMAP_ENTRY(n, struct ent, hn);
		if (!strcmp(e->key, key)) return e;
	}
	return NULL;
}

int main(void)
{
	/* FNV-1a 64 reference values (the algorithm's published test strings) */
	TAP_OK(hmap_hash_str("") == 0xcbf29ce484222325ull, "FNV-1a of the empty string");
	TAP_OK(hmap_hash_str("a") == 0xaf63dc4c8601ec8cull, "FNV-1a of \"a\"");
	TAP_OK(hmap_hash("foobar", 6) == 0x85944171f73967e8ull, "FNV-1a of \"foobar\"");
	TAP_OK(hmap_hash("a\0b", 3) != hmap_hash_str("a"), "hmap_hash covers bytes past a NUL");

	struct hmap m = { 0 };
	TAP_OK(find(&m, "x") == NULL && hmap_count(&m) == 0, "a zeroed map is empty");
	enum { N = 100000 };
	struct ent *es = calloc(N, sizeof *es);
	for (int i = 0; i < N; i++) {
		snprintf(es[i].key, sizeof es[i].key, "$event-%d", i);
		es[i].val = i;
		hmap_insert(&m, &es[i].hn, hmap_hash_str(es[i].key));
	}
	TAP_OK(hmap_count(&m) == N, "100000 entries counted");
	int bad = 0;
	for (int i = 0; i < N; i++) {
		char k[24];
		snprintf(k, sizeof k, "$event-%d", i);
		struct ent *e = find(&m, k);
		if (!e || e->val != i || e != &es[i]) bad++;
	}
	TAP_OK(bad == 0, "every entry found at its own address after growth (%d bad)", bad);
	TAP_OK(find(&m, "$event-100000") == NULL, "an absent key is not found");

	for (int i = 0; i < N; i += 2) hmap_remove(&m, &es[i].hn);
	TAP_OK(hmap_count(&m) == N / 2, "half removed");
	bad = 0;
	for (int i = 0; i < N; i++) if ((find(&m, es[i].key) != NULL) != (i % 2 == 1)) bad++;
	TAP_OK(bad == 0, "removed ones gone, others kept (%d bad)", bad);

	/* walk: each remaining node once, removing each as it is returned */
	struct hmap_iter it;
	hmap_iter_init(&it, &m);
	long sum = 0, seen = 0;
	for (struct hmap_node *n; (n = hmap_iter_next(&it)); ) {
		struct ent *e = HMAP_ENTRY(n, struct ent, hn);
		sum += e->val; seen++;
		hmap_remove(&m, n);
	}
	long want = 0;
	for (int i = 1; i < N; i += 2) want += i;
	TAP_OK(seen == N / 2 && sum == want, "the walk returns each node once while removing it (%ld seen)", seen);
	TAP_OK(hmap_count(&m) == 0, "empty after the walk");

	/* colliding hashes: one chain, told apart by key */
	struct ent a = { .val = 1 }, b = { .val = 2 };
	strcpy(a.key, "a"); strcpy(b.key, "b");
	hmap_insert(&m, &a.hn, 42);
	hmap_insert(&m, &b.hn, 42);
	int got = 0;
	HMAP_FOR_HASH(&m, 42, n) got += HMAP_ENTRY(n, struct ent, hn)->val;
	TAP_OK(got == 3, "two entries with one hash share a chain");
	hmap_remove(&m, &a.hn);
	got = 0;
	HMAP_FOR_HASH(&m, 42, n) got += HMAP_ENTRY(n, struct ent, hn)->val;
	TAP_OK(got == 2, "removing one leaves the other");
	hmap_free(&m);
	TAP_OK(m.tab == NULL && hmap_count(&m) == 0, "freed map is empty again");
	free(es);
	return tap_done();
}
