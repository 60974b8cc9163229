/* test_store_fleet.c: store/fleet on a real LMDB file: the lease row fleetd
 * writes and syncd reads (held until its time, gone when deleted, apart
 * from syncd's own federation_state fields, untouched by `peer reset`). */
#include <stdlib.h>
#include <string.h>
#include "store/fleet.h"
#include "store/fedstate.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	struct store s;
	char dir[64], member[64];
	long long until = 0;
	tmpstore_open(&s, dir, "fleet", 1 << 22);
	TAP_OK(fleet_lease_left(&s, "p1", 1000) == 0, "no row: not ours");
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(fleet_lease_put(t, &s, "p1", 5000, "node-a") == 0 && store_commit(t) == 0, "a lease row is written");
	TAP_OK(fleet_lease_left(&s, "p1", 1000) == 4000, "held: 4000 ms left at 1000");
	TAP_OK(fleet_lease_left(&s, "p1", 5000) == 0, "not held at its time (expired)");
	TAP_OK(fleet_lease_left(&s, "p2", 1000) == 0, "another peer is not held");
	t = store_begin(&s, 1);
	TAP_OK(fleet_lease_get(t, &s, "p1", &until, member, sizeof member) == 0 && until == 5000
	       && !strcmp(member, "node-a"), "read back: until and member");
	TAP_OK(fstate_cursor(t, &s, "p1") == 0, "not a cursor: the row is a field of its own");
	mdb_txn_abort(t);
	int reset_touches = 0;
	for (int i = 0; fstate_fields[i]; i++) reset_touches |= !strcmp(fstate_fields[i], "fleet_lease");
	TAP_OK(!reset_touches, "`fedctl peer reset` leaves the lease row to fleetd");
	t = store_begin(&s, 0);
	TAP_OK(fleet_lease_del(t, &s, "p1") == 0 && fleet_lease_del(t, &s, "p1") == 0 && store_commit(t) == 0,
	       "deleted (twice: an absent row is no error)");
	TAP_OK(fleet_lease_left(&s, "p1", 1000) == 0, "deleted: not ours");
	t = store_begin(&s, 0);
	fstate_put(t, &s, "p3", "fleet_lease", "short", 5);
	TAP_OK(fleet_lease_get(t, &s, "p3", &until, NULL, 0) == -1, "a malformed row is no lease");
	mdb_txn_abort(t);
	TAP_OK(tmpstore_close(&s, dir) == 0, "cleanup");
	return tap_done();
}
