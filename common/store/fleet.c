/* fleet.c: the peer lease rows fleetd writes and syncd reads (see fleet.h). */
#include <string.h>
#include "store/fleet.h"
#include "store/fedstate.h"

#define FIELD "fleet_lease"

int fleet_lease_put(MDB_txn *t, struct store *st, const char *peer, long long until_ms,
                    const char *member)
{
	unsigned char v[8 + 128];
	size_t mn = strlen(member);
	if (mn > sizeof v - 8) mn = sizeof v - 8;
	be64_put(v, (uint64_t)until_ms);
	memcpy(v + 8, member, mn);
	return fstate_put(t, st, peer, FIELD, v, 8 + mn);
}

int fleet_lease_del(MDB_txn *t, struct store *st, const char *peer)
{
	return fstate_del(t, st, peer, FIELD);
}

int fleet_lease_get(MDB_txn *t, struct store *st, const char *peer, long long *until_ms,
                    char *member, size_t cap)
{
	char v[8 + 130];
	int n = fstate_get(t, st, peer, FIELD, v, sizeof v);
	if (n < 8) return -1;
	*until_ms = (long long)be64_get((unsigned char *)v);
	if (member && cap) {
		size_t mn = (size_t)n - 8 < cap - 1 ? (size_t)n - 8 : cap - 1;
		memcpy(member, v + 8, mn);
		member[mn] = 0;
	}
	return 0;
}

long long fleet_lease_left(struct store *st, const char *peer, long long now_ms)
{
	long long until;
	MDB_txn *t = store_begin(st, 1);
	int rc = fleet_lease_get(t, st, peer, &until, NULL, 0);
	mdb_txn_abort(t);
	return rc == 0 && until > now_ms ? until - now_ms : 0;
}
