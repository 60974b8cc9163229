/* test_store_fedstate.c: store/fedstate on a real LMDB file: the key
 * "<peer>\0<field>", field round trips, values that do not fit, the
 * cursor, clock merging across peers, the write probe. */
#include <stdlib.h>
#include <string.h>
#include "store/fedstate.h"
#include "core/vclock.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	char k[32];
	TAP_OK(fstate_key(k, sizeof k, "p1", "cursor") == 9 && !memcmp(k, "p1\0cursor", 9), "the key is peer NUL field");
	TAP_OK(fstate_key(k, 8, "p1", "cursor") == 0, "a key that does not fit: 0");

	struct store s;
	char dir[64], out[64];
	tmpstore_open(&s, dir, "fstate", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(fstate_get(t, &s, "p1", "node_id", out, sizeof out) == -1, "absent field: -1");
	TAP_OK(fstate_put(t, &s, "p1", "node_id", "01ABC", 5) == 0 &&
	       fstate_get(t, &s, "p1", "node_id", out, sizeof out) == 5 && !strcmp(out, "01ABC"), "round trip");
	MDB_val v;
	TAP_OK(store_get(t, &s, DB_FEDERATION_STATE, "p1\0node_id", 10, &v) == 0, "stored under the documented key");
	TAP_OK(fstate_get(t, &s, "p1", "node_id", out, 5) == -1, "a value that does not fit the buffer: -1");
	TAP_OK(fstate_cursor(t, &s, "p1") == 0, "no cursor: 0");
	unsigned char b8[8];
	be64_put(b8, 99);
	fstate_put(t, &s, "p1", "cursor", b8, 8);
	TAP_OK(fstate_cursor(t, &s, "p1") == 99, "cursor");
	fstate_put(t, &s, "p2", "cursor", "abc", 3);
	TAP_OK(fstate_cursor(t, &s, "p2") == 0, "a malformed cursor reads as 0");
	fstate_put(t, &s, "p1", "vclock", "{\"A\":3,\"B\":1}", 13);
	fstate_put(t, &s, "p2", "vclock", "{\"A\":1,\"C\":5}", 13);
	fstate_put(t, &s, "p3", "vclock", "not json", 8);
	fstate_put(t, &s, "p3", "vclockx", "{\"Z\":9}", 7);
	struct vclock *vc = malloc(sizeof *vc);
	vclock_init(vc);
	fstate_merge_clocks(t, &s, vc);
	TAP_OK(vclock_get(vc, "A") == 3 && vclock_get(vc, "B") == 1 && vclock_get(vc, "C") == 5 && vclock_get(vc, "Z") == 0,
	       "clocks merged; a malformed one and another field ignored");
	free(vc);
	for (int i = 0; fstate_fields[i]; i++) fstate_del(t, &s, "p1", fstate_fields[i]);
	TAP_OK(fstate_get(t, &s, "p1", "node_id", out, sizeof out) == -1 && fstate_cursor(t, &s, "p1") == 0 &&
	       fstate_del(t, &s, "p1", "cursor") == 0, "every field deleted (again: no error)");
	TAP_OK(store_commit(t) == 0, "commit");
	TAP_OK(fstate_probe(&s, "p1") == 0, "a small write fits");
	t = store_begin(&s, 1);
	TAP_OK(fstate_get(t, &s, "p1", "probe", out, sizeof out) == -1, "the probe leaves nothing behind");
	mdb_txn_abort(t);
	TAP_OK(fstate_health(&s, "p2", "timeout", "no answer \"x\"", 3) == 0, "health written in its own txn");
	t = store_begin(&s, 1);
	char hb[256];
	int hl = fstate_get(t, &s, "p2", "health", hb, sizeof hb);
	mdb_txn_abort(t);
	TAP_OK(hl > 0 && strstr(hb, "\"failures\":3") && strstr(hb, "\"reason\":\"timeout\"") &&
	       strstr(hb, "\"message\":\"no answer \\\"x\\\"\""), "health record (%s)", hl > 0 ? hb : "");
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
