/* fetchd_fill.c: test tool: fill the LMDB environment in DIR (opened with
 * map size MAP, as the daemons have it) with filler rows until the map is
 * full: 1 KiB rows in `claims`, then tiny ones there and in server_health
 * until not even one fits; or (--free) delete them again (give a larger MAP
 * then: at a full map even a delete may not fit; the map grows to it).
 * Prints the rows written or deleted. Usage: fetchd_fill DIR MAP [--free] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	struct store st;
	char err[256], k[32], v[1024];
	long n = 0;
	if (argc < 3) { fprintf(stderr, "usage: fetchd_fill DIR MAP [--free]\n"); return 100; }
	if (store_open(&st, argv[1], (size_t)cfg_parse_size(argv[2]), 0, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 111;
	}
	memset(v, 'x', sizeof v);
	if (argc > 3 && !strcmp(argv[3], "--free")) {
		MDB_txn *t = store_begin(&st, 0);
		for (int db = 0; db < 2; db++)
			for (long i = 0;; i++) {
				int kn = snprintf(k, sizeof k, "fill:%08ld", i);
				if (store_del(t, &st, db ? DB_SERVER_HEALTH : DB_CLAIMS, k, (size_t)kn)) break;
				n++;
			}
		if (store_commit(t)) return 111;
	} else {
		static const struct { int db; size_t len; int batch; } phase[] = {
			{ DB_CLAIMS, 1024, 16 }, { DB_CLAIMS, 8, 1 }, { DB_SERVER_HEALTH, 1, 1 } };
		long at[DB__COUNT] = { 0 };
		for (int p = 0; p < 3; p++)
			for (int rc = 0, fails = 0; fails < 3;) {
				MDB_txn *t = store_begin(&st, 0);
				int i;
				for (i = 0, rc = 0; i < phase[p].batch && rc == 0; i++) {
					int kn = snprintf(k, sizeof k, "fill:%08ld", at[phase[p].db] + i);
					rc = store_put(t, &st, phase[p].db, k, (size_t)kn, v, phase[p].len, 0);
				}
				if (rc == 0) rc = mdb_txn_commit(t);
				else mdb_txn_abort(t);
				if (rc) { fails++; continue; }
				fails = 0;
				at[phase[p].db] += i;
				n += i;
			}
	}
	printf("%ld\n", n);
	store_close(&st);
	return 0;
}
