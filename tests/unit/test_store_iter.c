/* test_store_iter.c: the prefix-scan iterator (store/store.h) on a real
 * LMDB file: prefix bounds (a key equal to the prefix, a longer prefix
 * sharing bytes, keys with 0xff bytes), "from", reverse, the whole table,
 * deleting while walking, and an empty prefix range. */
#include <stdlib.h>
#include <string.h>
#include "store/store.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

static int walk(MDB_txn *t, struct store *s, const char *pre, size_t pl, const char *from,
                int rev, char *out, size_t cap)
{
	struct store_iter it;
	out[0] = 0;
	if (store_iter_open(&it, t, s, DB_ROOM_SERVERS, pre, pl)) return -1;
	if (from) store_iter_from(&it, from, strlen(from) + 1);
	if (rev) store_iter_reverse(&it);
	int n = 0, r;
	while ((r = store_iter_next(&it)) == 1) {
		size_t l = strlen(out), kl = it.k.mv_size - 1;
		if (l + kl + 2 >= cap) break;
		if (n) out[l++] = ',';
		for (size_t i = 0; i < kl; i++) out[l++] = ((char *)it.k.mv_data)[i] ? ((char *)it.k.mv_data)[i] : '|';
		out[l] = 0;
		n++;
	}
	store_iter_close(&it);
	store_iter_close(&it);    /* idempotent */
	return r < 0 ? -1 : n;
}

static void put(MDB_txn *t, struct store *s, const char *a, const char *b)
{
	char k[256];
	size_t kl = store_key2(k, sizeof k, a, b);
	k[kl] = 0;
	store_put(t, s, DB_ROOM_SERVERS, k, kl + 1, "", 0, 0);
}

int main(void)
{
	struct store s;
	char dir[64], out[1024];
	tmpstore_open(&s, dir, "iter", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(walk(t, &s, NULL, 0, NULL, 0, out, sizeof out) == 0, "an empty table walks nothing");
	put(t, &s, "!a:x", "s1"); put(t, &s, "!a:x", "s2"); put(t, &s, "!a:x", "s3");
	put(t, &s, "!a:xy", "s9");               /* shares "!a:x" but not "!a:x\0" */
	put(t, &s, "!b:x", "t1");
	put(t, &s, "\xff\xff", "z1"); put(t, &s, "\xff\xff", "z2");

	TAP_OK(walk(t, &s, "!a:x", 5, NULL, 0, out, sizeof out) == 3 && !strcmp(out, "!a:x|s1,!a:x|s2,!a:x|s3"),
	       "prefix \"!a:x\\0\": its three rows only (%s)", out);
	TAP_OK(walk(t, &s, "!a:x", 4, NULL, 0, out, sizeof out) == 4, "prefix without the NUL takes \"!a:xy\" too (%s)", out);
	TAP_OK(walk(t, &s, "!a:x", 5, NULL, 1, out, sizeof out) == 3 && !strcmp(out, "!a:x|s3,!a:x|s2,!a:x|s1"),
	       "reverse (%s)", out);
	TAP_OK(walk(t, &s, "\xff\xff", 3, NULL, 1, out, sizeof out) == 2, "reverse with 0xff bytes in the prefix (%s)", out);
	TAP_OK(walk(t, &s, "\xff\xff", 3, NULL, 0, out, sizeof out) == 2, "forward with 0xff bytes (%s)", out);
	char from[16];
	size_t fl = store_key2(from, sizeof from, "!a:x", "s2");
	from[fl] = 0;
	struct store_iter it;
	store_iter_open(&it, t, &s, DB_ROOM_SERVERS, "!a:x", 5);
	store_iter_from(&it, from, fl + 1);
	int n = 0;
	while (store_iter_next(&it) == 1) n++;
	store_iter_close(&it);
	TAP_OK(n == 2, "from \"!a:x\\0s2\": s2 and s3 (%d)", n);
	TAP_OK(walk(t, &s, "!c:", 3, NULL, 0, out, sizeof out) == 0, "a prefix past every key: nothing");
	TAP_OK(walk(t, &s, "!0", 2, NULL, 1, out, sizeof out) == 0, "reverse on a prefix before every key: nothing");
	TAP_OK(walk(t, &s, NULL, 0, NULL, 0, out, sizeof out) == 7, "no prefix: the whole table (%s)", out);

	/* delete while walking: every other row of "!a:x\0" */
	store_iter_open(&it, t, &s, DB_ROOM_SERVERS, "!a:x", 5);
	int i = 0, dels = 0;
	while (store_iter_next(&it) == 1) if (i++ % 2 == 0 && store_iter_del(&it) == 0) dels++;
	store_iter_close(&it);
	TAP_OK(i == 3 && dels == 2, "deleting while walking visits every row once (%d visited, %d deleted)", i, dels);
	TAP_OK(walk(t, &s, "!a:x", 5, NULL, 0, out, sizeof out) == 1 && !strcmp(out, "!a:x|s2"), "the undeleted row stays (%s)", out);
	store_iter_open(&it, t, &s, DB_ROOM_SERVERS, NULL, 0);
	while (store_iter_next(&it) == 1) store_iter_del(&it);
	store_iter_close(&it);
	TAP_OK(walk(t, &s, NULL, 0, NULL, 0, out, sizeof out) == 0, "deleting every row while walking empties the table");
	mdb_txn_abort(t);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
