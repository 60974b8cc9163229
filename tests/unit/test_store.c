/* test_store.c: the LMDB environment: every database, schema version,
 * sequences, inbox records, keys, node ID. Real LMDB files in /tmp. */
#include "../lib/tap.h"
#include "store.h"
#include <stdlib.h>
#include <string.h>

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
	return tap_done();
}
