/* test_store.c: the LMDB environment: every database, schema version,
 * sequences, inbox records, keys, node ID. Real LMDB files in /tmp. */
#include "../lib/tap.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One 2 KB inbox row per txn until a write fails; returns the failing rc. */
static int fill(struct store *s, int *rows)
{
	static char blob[2048];
	for (;;) {
		MDB_txn *t = store_begin(s, 0);
		int rc = store_inbox_put(t, s, "x", blob, sizeof blob, NULL);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (rc) return rc;
		(*rows)++;
	}
}

static size_t mapsize(struct store *s)
{
	MDB_envinfo ei;
	mdb_env_info(s->env, &ei);
	return ei.me_mapsize;
}

/* Growth at MAP_FULL, the ceiling, the store-full marker, and a reopen
 * with a smaller configured size keeping the grown map. */
static void growth(void)
{
	char dir[] = "/tmp/fp-grow-XXXXXX", marker[64];
	if (!mkdtemp(dir)) return;
	snprintf(marker, sizeof marker, "%s/%s", dir, STORE_FULL_MARKER);
	struct store s;
	char err[512];
	TAP_OK(store_open(&s, dir, 256 << 10, 0, err, sizeof err) == 0, "open a 256K map: %s", err);
	s.map_max = 1 << 20;
	int rows = 0, grew = 0, rc;
	while ((rc = fill(&s, &rows)) == MDB_MAP_FULL && store_write_failed(&s, rc)) grew++;
	TAP_OK(grew == 2 && mapsize(&s) == (size_t)1 << 20, "grown twice by doubling to the ceiling (%d, %zu)", grew, mapsize(&s));
	TAP_OK(rc == MDB_MAP_FULL && s.full && access(marker, F_OK) == 0, "at the ceiling: store full, marker written");
	char info[256];
	TAP_OK(store_full_marker(dir, info, sizeof info) == 1 && strstr(info, "map_size_max=1048576"), "marker says: %s", info);
	MDB_txn *t = store_begin(&s, 1);
	TAP_OK(store_inbox_get(t, &s, 1, &(struct inbox_rec){0}) == 0, "reads still work when full");
	mdb_txn_abort(t);
	TAP_OK(rows > 200, "%d rows of 2 KB stored before the ceiling", rows);
	/* space returns: delete rows, the next write commits and ends the state */
	t = store_begin(&s, 0);
	for (uint64_t k = 1; k <= 100; k++) { unsigned char kb[8]; be64_put(kb, k); store_del(t, &s, DB_INBOX, kb, 8); }
	rc = store_commit(t);
	TAP_OK(rc == 0 && !s.full && access(marker, F_OK) != 0, "a write commit after space returned ends store full");
	store_close(&s);
	TAP_OK(store_open(&s, dir, 256 << 10, 0, err, sizeof err) == 0 && mapsize(&s) == (size_t)1 << 20,
	       "reopened with map_size 256K: the grown 1M map is kept (%zu)", mapsize(&s));
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
}

int main(void)
{
	char dir[] = "/tmp/fp-store-XXXXXX";
	if (!mkdtemp(dir)) return 1;
	struct store s;
	char err[512] = "";
	TAP_OK(store_open(&s, dir, 1 << 26, 0, err, sizeof(err)) == 0, "open creates the environment: %s", err);
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(store_next_seq(t, &s, "stream_next") == 1 && store_next_seq(t, &s, "stream_next") == 2, "sequences start at 1");
	uint64_t seq = 0;
	TAP_OK(store_inbox_put(t, &s, "beta.test", "{\"x\":1}", 7, &seq) == 0 && seq == 1, "inbox put");
	struct inbox_rec r;
	TAP_OK(store_inbox_get(t, &s, seq, &r) == 0 && r.from_len == 9 && !memcmp(r.from, "beta.test", 9) &&
	       r.len == 7 && !memcmp(r.bytes, "{\"x\":1}", 7) && r.received_ms > 0, "inbox get");
	unsigned char pk[32] = { 1, 2, 3 }, pk2[32];
	int64_t until = 0;
	TAP_OK(store_key_put(t, &s, "a.test", "ed25519:k", pk, 12345) == 0, "key put");
	TAP_OK(store_key_get(t, &s, "a.test", "ed25519:k", pk2, &until) == 0 && !memcmp(pk, pk2, 32) && until == 12345, "key get");
	TAP_OK(store_key_get(t, &s, "a.test", "ed25519:other", pk2, &until) == MDB_NOTFOUND, "unknown key not found");
	unsigned char ev[12 + 6 + 2];
	be64_put(ev, 7); ev[8] = 11; ev[9] = 1; be16_put(ev + 10, 6);
	memcpy(ev + 12, "!r:a.b", 6); memcpy(ev + 18, "{}", 2);
	TAP_OK(store_put(t, &s, DB_EVENTS, "$e1", 3, ev, sizeof(ev), 0) == 0, "event put");
	struct event_rec er;
	TAP_OK(store_event_get(t, &s, "$e1", &er) == 0 && er.pos == 7 && er.room_version == 11 && er.redacted &&
	       er.room_len == 6 && er.pdu_len == 2, "event record layout");
	TAP_OK(store_event_exists(t, &s, "$e1") && !store_event_exists(t, &s, "$e2"), "event exists");
	unsigned char room[1 + 8 + 2] = { 11 };
	TAP_OK(store_put(t, &s, DB_ROOMS, "!r:a.b", 6, room, sizeof(room), 0) == 0 &&
	       store_room_version(t, &s, "!r:a.b") == 11 && store_room_version(t, &s, "!q:a.b") == 0, "room version lookup");
	TAP_OK(store_commit(t) == 0, "commit");
	char id1[27], id2[27];
	TAP_OK(store_node_id(&s, id1) == 0 && strlen(id1) == 26, "node id is a 26-char ULID: %s", id1);
	TAP_OK(store_node_id(&s, id2) == 0 && !strcmp(id1, id2), "node id is stable");
	store_close(&s);

	TAP_OK(store_open(&s, dir, 1 << 26, 1, err, sizeof(err)) == 0, "reopen");
	t = store_begin(&s, 1);
	TAP_OK(store_inbox_get(t, &s, 1, &r) == 0, "data survives reopen");
	mdb_txn_abort(t);
	/* A future schema must be refused, not silently used. */
	t = store_begin(&s, 0);
	unsigned char v2[4] = { 0, 0, 0, 2 };
	store_put(t, &s, DB_META, "schema_version", 14, v2, 4, 0);
	store_commit(t);
	store_close(&s);
	TAP_OK(store_open(&s, dir, 1 << 26, 0, err, sizeof(err)) < 0 && strstr(err, "schema version 2"), "newer schema refused: %s", err);
	TAP_OK(store_open(&s, "/proc/nonexistent/x", 0, 0, err, sizeof(err)) < 0, "unwritable dir is an error: %s", err);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
	growth();
	return tap_done();
}
