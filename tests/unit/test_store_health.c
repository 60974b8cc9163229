/* test_store_health.c: store/health, the server_health record fetchd
 * writes and fedctl reads: encode/decode round trip, malformed values
 * as errors (all zero), get/put/del on a real LMDB file. */
#include <stdlib.h>
#include <string.h>
#include "store/health.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

static int zero(const struct health_rec *h)
{
	return !h->streak && !h->until_ms && !h->last_ok_ms && !h->latency_ms && !h->last_error[0];
}

int main(void)
{
	struct health_rec h = { 3, 123456789012LL, 42, 17, "timeout: \"x\" \\ \xc3\xa9" }, g;
	struct buf b;
	buf_init(&b);
	store_health_encode(&b, &h);
	TAP_OK(!strncmp(b.data, "{\"last_error\":", 14), "encoded members in order (%.*s)", (int)b.len, b.data);
	TAP_OK(store_health_decode(b.data, b.len, &g) == 0 && g.streak == 3 && g.until_ms == 123456789012LL &&
	       g.last_ok_ms == 42 && g.latency_ms == 17 && !strcmp(g.last_error, h.last_error), "round trip");
	static const char *const bad[] = { "", "nope", "[1,2]", "{\"streak\":1", "{\"streak\":1}x", "\"s\"", NULL };
	for (int i = 0; bad[i]; i++) {
		memset(&g, 0x55, sizeof g);
		TAP_OK(store_health_decode(bad[i], strlen(bad[i]), &g) == -1 && zero(&g), "malformed '%s': error, all zero", bad[i]);
	}
	const char *typed = "{\"streak\":\"3\",\"until_ms\":1.5,\"last_error\":7,\"latency_ms\":9}";
	TAP_OK(store_health_decode(typed, strlen(typed), &g) == -1 && zero(&g),
	       "a float (not canonical JSON): error, all zero");
	const char *typed2 = "{\"streak\":\"3\",\"last_error\":7,\"latency_ms\":9}";
	TAP_OK(store_health_decode(typed2, strlen(typed2), &g) == 0 && g.streak == 0 && !g.last_error[0] &&
	       g.latency_ms == 9, "mistyped members read as 0 / \"\", the rest kept");

	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "health", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(store_health_get(t, &s, "a.test", &g) == MDB_NOTFOUND && zero(&g), "absent: MDB_NOTFOUND, zero");
	TAP_OK(store_health_put(t, &s, "a.test", &h) == 0 && store_health_get(t, &s, "a.test", &g) == 0 &&
	       g.streak == 3 && !strcmp(g.last_error, h.last_error), "put/get");
	store_put(t, &s, DB_SERVER_HEALTH, "b.test", 6, "{oops", 5, 0);
	TAP_OK(store_health_get(t, &s, "b.test", &g) == MDB_CORRUPTED && zero(&g), "a malformed row: MDB_CORRUPTED, zero");
	struct store_iter it;
	int n = 0, bad_rows = 0;
	store_iter_open(&it, t, &s, DB_SERVER_HEALTH, NULL, 0);
	while (store_iter_next(&it) == 1) {
		const char *name; size_t nl;
		if (store_health_row(&it.k, &it.v, &name, &nl, &g) < 0) bad_rows++;
		else if (nl == 6 && !memcmp(name, "a.test", 6) && g.latency_ms == 17) n++;
	}
	store_iter_close(&it);
	TAP_OK(n == 1 && bad_rows == 1, "a walk: one good row, one malformed");
	TAP_OK(store_health_del(t, &s, "a.test") == 0 && store_health_del(t, &s, "a.test") == MDB_NOTFOUND, "del, then absent");
	mdb_txn_abort(t);
	buf_free(&b);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
