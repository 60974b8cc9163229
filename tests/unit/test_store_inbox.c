/* test_store_inbox.c: store/inbox on a real LMDB file: the record round
 * trip (sequence, sender, bytes) and every malformed form an error. */
#include <stdlib.h>
#include <string.h>
#include "store/inbox.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "inbox", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	uint64_t s1 = 0, s2 = 0, seq;
	struct inbox_rec r;
	TAP_OK(store_inbox_put(t, &s, "beta.test", "{\"a\":1}", 7, &s1) == 0 && s1 == 1, "put: seq 1");
	TAP_OK(store_inbox_put(t, &s, NULL, "", 0, &s2) == 0 && s2 == 2, "put without sender or bytes: seq 2");
	TAP_OK(store_inbox_get(t, &s, 1, &r) == 0 && r.from_len == 9 && !memcmp(r.from, "beta.test", 9) &&
	       r.len == 7 && !memcmp(r.bytes, "{\"a\":1}", 7) && r.received_ms > 0, "round trip");
	TAP_OK(store_inbox_get(t, &s, 2, &r) == 0 && r.from_len == 0 && r.len == 0, "empty sender and bytes");
	TAP_OK(store_inbox_get(t, &s, 3, &r) == MDB_NOTFOUND, "absent: MDB_NOTFOUND");

	struct store_iter it;
	int rows = 0, ok = 1;
	store_iter_open(&it, t, &s, DB_INBOX, NULL, 0);
	while (store_iter_next(&it) == 1) {
		ok &= store_inbox_row(&it.k, &it.v, &seq, &r) == 0 && seq == (uint64_t)rows + 1;
		rows++;
	}
	store_iter_close(&it);
	TAP_OK(rows == 2 && ok, "a walk decodes each row with its seq");

	MDB_val k = { 8, "\0\0\0\0\0\0\0\x09" }, v;
	v.mv_data = "\0\0\0\0\0\0\0\0\0"; v.mv_size = 9;
	TAP_OK(store_inbox_parse(&v, &r) == MDB_CORRUPTED, "shorter than the header");
	unsigned char b[12] = { 0 };
	be16_put(b + 8, 3);
	v.mv_data = b; v.mv_size = 12;
	TAP_OK(store_inbox_parse(&v, &r) == MDB_CORRUPTED, "sender length past the end");
	be16_put(b + 8, 2);
	TAP_OK(store_inbox_parse(&v, &r) == 0 && r.from_len == 2 && r.len == 0, "sender up to the end");
	TAP_OK(store_inbox_row(&k, &v, &seq, &r) == 0 && seq == 9, "row: seq from the key");
	k.mv_size = 7;
	TAP_OK(store_inbox_row(&k, &v, &seq, &r) == MDB_CORRUPTED, "row: a key not 8 bytes");
	unsigned char k5[8];
	be64_put(k5, 5);
	store_put(t, &s, DB_INBOX, k5, 8, "short", 5, 0);
	TAP_OK(store_inbox_get(t, &s, 5, &r) == MDB_CORRUPTED, "get of a malformed row: MDB_CORRUPTED");
	/* a row past the counter (a counter reset): the appending put is
	 * refused by LMDB and the plain put stores the row all the same */
	unsigned char k100[8];
	be64_put(k100, 100);
	store_put(t, &s, DB_INBOX, k100, 8, "\0\0\0\0\0\0\0\0\0\0x", 11, 0);
	uint64_t seq3 = 0;
	TAP_OK(store_inbox_put(t, &s, "c.test", "{\"e\":3}", 7, &seq3) == 0 && seq3 == 3,
	       "a put below an existing row (counter behind): stored, seq 3");
	TAP_OK(store_inbox_get(t, &s, 3, &r) == 0 && r.len == 7 && !memcmp(r.bytes, "{\"e\":3}", 7) &&
	       r.from_len == 6 && !memcmp(r.from, "c.test", 6), "... and read back whole");
	TAP_OK(store_inbox_get(t, &s, 100, &r) == 0 && r.len == 1, "... the row past it untouched");
	mdb_txn_abort(t);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
