/* test_store_outbox.c: store/outbox on a real LMDB file: the outbox row
 * and the drain lease (encode/decode round trips, malformed values as
 * errors), last_error cut at a whole character, rows in outbox and
 * feed_dead, append order, the drain cursor. */
#include <stdlib.h>
#include <string.h>
#include "store/outbox.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	struct outbox_row r, g;
	struct buf b;
	buf_init(&b);
	memset(&r, 0, sizeof r);
	snprintf(r.event_id, sizeof r.event_id, "$ev\"1");
	r.attempts = 3; r.control_version = 77; r.published_ms = 1234;
	snprintf(r.last_error, sizeof r.last_error, "sink said \xc3\xa9\n");
	outbox_row_encode(&b, &r);
	TAP_OK(outbox_row_parse(b.data, b.len, &g) == 0 && !strcmp(g.event_id, r.event_id) && g.attempts == 3 &&
	       g.control_version == 77 && g.published_ms == 1234 && !strcmp(g.last_error, r.last_error), "row round trip");
	memset(&r, 0, sizeof r);
	snprintf(r.event_id, sizeof r.event_id, "$ev2");
	buf_reset(&b);
	outbox_row_encode(&b, &r);
	TAP_OK(strstr(b.data, "\"control_version\":null") && strstr(b.data, "\"published_ms\":null") &&
	       strstr(b.data, "\"last_error\":null"), "unset members are null (%.*s)", (int)b.len, b.data);
	TAP_OK(outbox_row_parse(b.data, b.len, &g) == 0 && !g.control_version && !g.published_ms && !g.last_error[0],
	       "nulls read back as unset");
	const char *zeros = "{\"attempts\":0,\"control_version\":0,\"event_id\":\"$e\",\"last_error\":\"\",\"published_ms\":0}";
	TAP_OK(outbox_row_parse(zeros, strlen(zeros), &g) == 0 && !g.control_version && !strcmp(g.event_id, "$e"),
	       "0 and \"\" read as unset too");
	static const char *const bad[] = { "", "x", "[]", "{}", "{\"event_id\":\"\"}", "{\"event_id\":5}",
	                                   "{\"event_id\":\"$e\"", "{\"event_id\":\"$e\",\"event_id\":\"$f\"}", NULL };
	for (int i = 0; bad[i]; i++)
		TAP_OK(outbox_row_parse(bad[i], strlen(bad[i]), &g) == -1, "malformed row '%s': error", bad[i]);
	/* last_error over the cap: cut before a character that does not fit */
	buf_reset(&b);
	buf_adds(&b, "{\"event_id\":\"$e\",\"last_error\":\"");
	for (int i = 0; i < OUTBOX_ERR_MAX - 1; i++) buf_addc(&b, 'a');
	buf_adds(&b, "\xc3\xa9tail\"}");
	TAP_OK(outbox_row_parse(b.data, b.len, &g) == 0 && strlen(g.last_error) == OUTBOX_ERR_MAX - 1,
	       "last_error cut at a whole character (%zu bytes)", strlen(g.last_error));
	const char *nul = "{\"event_id\":\"$e\",\"last_error\":\"a\\u0000b\"}";
	TAP_OK(outbox_row_parse(nul, strlen(nul), &g) == 0 && !strcmp(g.last_error, "a?b"), "a NUL in last_error becomes '?'");

	/* The canonical row is read without a JSON parse; it must read exactly
	 * as the JSON parse reads it. The same text with a space after '{'
	 * always takes the JSON parse: compare the two. */
	static const char *const same[] = {
		"{\"attempts\":0,\"control_version\":null,\"event_id\":\"$e_0000001\",\"last_error\":null,\"published_ms\":null}",
		"{\"attempts\":12,\"control_version\":987654321,\"event_id\":\"$abc:x.org\",\"last_error\":null,\"published_ms\":1700000000000}",
		"{\"attempts\":0,\"control_version\":0,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":0}",
		"{\"attempts\":-1,\"control_version\":null,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":null}",
		"{\"attempts\":01,\"control_version\":null,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":null}",
		"{\"attempts\":null,\"control_version\":null,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":null}",
		"{\"attempts\":1,\"control_version\":1234567890123456789,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":null}",
		"{\"attempts\":1,\"control_version\":1e3,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":null}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$e\\\"q\",\"last_error\":null,\"published_ms\":3}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$\xc3\xa9\",\"last_error\":null,\"published_ms\":3}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$\xc3\",\"last_error\":null,\"published_ms\":3}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"\",\"last_error\":null,\"published_ms\":3}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$e\",\"last_error\":\"boom\",\"published_ms\":3}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":3}x",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":3",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":3,\"x\":1}",
		"{\"attempts\":1,\"control_version\":2,\"event_id\":\"$e\",\"last_error\":null,\"published_ms\":3}}",
		NULL };
	for (int i = 0; same[i]; i++) {
		struct outbox_row f, j;
		char sp[600];
		snprintf(sp, sizeof sp, "{ %s", same[i] + 1);
		int rf = outbox_row_parse(same[i], strlen(same[i]), &f), rj = outbox_row_parse(sp, strlen(sp), &j);
		TAP_OK(rf == rj && (rf < 0 || !memcmp(&f, &j, sizeof f)), "row %d reads as the JSON parse reads it (%d %d)", i, rf, rj);
	}
	{   /* every row the encoder makes, IDs up to the longest kept */
		int all = 1;
		for (int len = 1; len < (int)sizeof r.event_id; len += 7) {
			memset(&r, 0, sizeof r);
			r.event_id[0] = '$';
			for (int k = 1; k < len; k++) r.event_id[k] = (char)('!' + (k * 13) % 94);
			r.attempts = len; r.control_version = (uint64_t)len * 1000003u; r.published_ms = len % 3 ? 1700000000000LL + len : 0;
			buf_reset(&b);
			outbox_row_encode(&b, &r);
			struct outbox_row f, j;
			char sp[2048];
			snprintf(sp, sizeof sp, "{ %s", b.data + 1);
			all &= outbox_row_parse(b.data, b.len, &f) == 0 && outbox_row_parse(sp, strlen(sp), &j) == 0 &&
			       !memcmp(&f, &j, sizeof f) && !strcmp(f.event_id, r.event_id) && f.control_version == r.control_version &&
			       f.published_ms == r.published_ms && f.attempts == r.attempts;
		}
		TAP_OK(all, "encoded rows read back the same either way");
	}

	struct lease_rec l = { "host:1", 1, 5000, 4000 }, lg;
	buf_reset(&b);
	outbox_lease_encode(&b, &l);
	TAP_OK(!strncmp(b.data, "{\"holder\":\"host:1\",\"pid\":1,\"renewed\":4000,\"until_ms\":5000}", b.len),
	       "lease encoding (%.*s)", (int)b.len, b.data);
	TAP_OK(outbox_lease_decode(b.data, b.len, &lg) == 0 && !strcmp(lg.holder, "host:1") && lg.pid == 1 &&
	       lg.until_ms == 5000 && lg.renewed == 4000, "lease round trip");
	static const char *const badl[] = { "", "{", "[]", "null", "{\"holder\":1}x", NULL };
	for (int i = 0; badl[i]; i++) {
		memset(&lg, 0x55, sizeof lg);
		TAP_OK(outbox_lease_decode(badl[i], strlen(badl[i]), &lg) == -1 && !lg.holder[0] && !lg.pid && !lg.until_ms,
		       "malformed lease '%s': error, all zero", badl[i]);
	}

	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "outbox", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(outbox_append(t, &s, 1, "$a") == 0 && outbox_append(t, &s, 2, "$b") == 0, "append");
	TAP_OK(outbox_append(t, &s, 2, "$c") != 0 && outbox_append(t, &s, 1, "$c") != 0, "append never goes back");
	struct store_iter it;
	uint64_t pos;
	int n = 0, ok = 1;
	store_iter_open(&it, t, &s, DB_OUTBOX, NULL, 0);
	while (store_iter_next(&it) == 1) {
		n++;
		ok &= outbox_key_pos(&it.k, &pos) == 0 && pos == (uint64_t)n &&
		      outbox_row_parse(it.v.mv_data, it.v.mv_size, &g) == 0 && g.event_id[1] == 'a' + n - 1 && !g.control_version;
	}
	store_iter_close(&it);
	TAP_OK(n == 2 && ok, "a walk decodes position and row");
	MDB_val k7 = { 7, "1234567" };
	TAP_OK(outbox_key_pos(&k7, &pos) == -1, "a key not 8 bytes: error");
	snprintf(r.event_id, sizeof r.event_id, "$b");
	r.attempts = 5;
	TAP_OK(outbox_row_put(t, &s, DB_FEED_DEAD, 2, &r) == 0 && outbox_row_del(t, &s, DB_OUTBOX, 2) == 0 &&
	       outbox_row_del(t, &s, DB_OUTBOX, 2) == MDB_NOTFOUND, "a row moves to feed_dead");
	size_t dead;
	store_entries(t, &s, DB_FEED_DEAD, &dead);
	TAP_OK(dead == 1, "feed_dead holds it");
	TAP_OK(outbox_cursor_get(t, &s) == 0, "cursor unset: 0");
	TAP_OK(outbox_cursor_put(t, &s, 42) == 0 && outbox_cursor_get(t, &s) == 42, "cursor round trip");
	TAP_OK(outbox_lease_get(t, &s, &lg) == MDB_NOTFOUND, "no lease: MDB_NOTFOUND");
	TAP_OK(outbox_lease_put(t, &s, &l) == 0 && outbox_lease_get(t, &s, &lg) == 0 && lg.until_ms == 5000 &&
	       outbox_cursor_get(t, &s) == 42, "lease put/get (the cursor beside it untouched)");
	store_put(t, &s, DB_LEASES, "feedpump", 8, "{oops", 5, 0);
	TAP_OK(outbox_lease_get(t, &s, &lg) == MDB_CORRUPTED && !lg.holder[0], "a malformed lease: MDB_CORRUPTED");
	TAP_OK(outbox_lease_del(t, &s) == 0 && outbox_lease_get(t, &s, &lg) == MDB_NOTFOUND, "lease del");
	store_put(t, &s, DB_LEASES, "feed_cursor", 11, "abc", 3, 0);
	TAP_OK(outbox_cursor_get(t, &s) == 0, "a malformed cursor reads as 0");
	mdb_txn_abort(t);
	buf_free(&b);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
