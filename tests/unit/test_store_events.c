/* test_store_events.c: store/events on a real LMDB file: the events
 * record round trip and its malformed forms, the stream walk and head,
 * rooms, extremities, and the room_servers scan fetchd selects from. */
#include <stdlib.h>
#include <string.h>
#include "store/events.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

int main(void)
{
	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "events", 1 << 24);
	MDB_txn *t = store_begin(&s, 0);

	/* events */
	struct event_rec r;
	TAP_OK(store_event_put(t, &s, "$e1", 7, 11, 1, "!r:a.b", "{\"x\":1}", 7) == 0, "event put");
	TAP_OK(store_event_get(t, &s, "$e1", &r) == 0 && r.pos == 7 && r.room_version == 11 && r.redacted &&
	       r.room_len == 6 && !memcmp(r.room_id, "!r:a.b", 6) && r.pdu_len == 7 && !memcmp(r.pdu, "{\"x\":1}", 7),
	       "event round trip");
	TAP_OK(store_event_put(t, &s, "$e2", 8, 10, 0, "", "", 0) == 0 && store_event_get(t, &s, "$e2", &r) == 0 &&
	       !r.redacted && r.room_len == 0 && r.pdu_len == 0, "event with empty room and PDU");
	TAP_OK(store_event_exists(t, &s, "$e1") && !store_event_exists(t, &s, "$nope"), "exists");
	TAP_OK(store_event_get(t, &s, "$nope", &r) == MDB_NOTFOUND, "absent event: MDB_NOTFOUND");
	unsigned char bad[20] = { 0 };
	TAP_OK(store_event_decode(bad, 11, &r) == MDB_CORRUPTED, "decode: shorter than the header");
	be16_put(bad + 10, 8);
	TAP_OK(store_event_decode(bad, 20, &r) == 0 && r.room_len == 8 && r.pdu_len == 0, "decode: room up to the end");
	be16_put(bad + 10, 9);
	TAP_OK(store_event_decode(bad, 20, &r) == MDB_CORRUPTED, "decode: room length past the end");
	store_put(t, &s, DB_EVENTS, "$bad", 4, bad, 5, 0);
	TAP_OK(store_event_get(t, &s, "$bad", &r) == MDB_CORRUPTED, "get of a malformed row: MDB_CORRUPTED");
	char *big = malloc(70000);
	memset(big, 'r', 69999); big[69999] = 0;
	TAP_OK(store_event_put(t, &s, "$big", 9, 10, 0, big, "{}", 2) == MDB_BAD_VALSIZE, "a room ID over 65535 bytes is refused");
	free(big);

	/* stream */
	TAP_OK(store_stream_head(t, &s) == 0, "empty stream: head 0");
	for (uint64_t p = 1; p <= 5; p++) {
		char id[16];
		snprintf(id, sizeof id, "$s%llu", (unsigned long long)p);
		store_stream_put(t, &s, p, id);
	}
	TAP_OK(store_stream_put(t, &s, 3, "$old") != 0, "stream is append-only");
	TAP_OK(store_stream_head(t, &s) == 5, "head");
	store_put(t, &s, DB_STREAM, "\x00\x00\x00\x00\x00\x00\x00\x03x", 9, "$junk", 5, 0);  /* key not 8 bytes */
	unsigned char k4[8];
	be64_put(k4, 4);
	store_put(t, &s, DB_STREAM, k4, 8, "", 0, 0);                                          /* empty ID */
	struct store_stream ss;
	char got[128] = "";
	TAP_OK(store_stream_open(&ss, t, &s, 2) == 0, "stream open");
	while (store_stream_next(&ss) == 1) {
		size_t l = strlen(got);
		snprintf(got + l, sizeof got - l, "%s%llu=%.*s", l ? "," : "", (unsigned long long)ss.pos,
		         (int)ss.id_len, ss.event_id);
	}
	store_stream_close(&ss);
	TAP_OK(!strcmp(got, "2=$s2,3=$s3,5=$s5"), "walk from 2 skips malformed rows (%s)", got);
	TAP_OK(store_stream_open(&ss, t, &s, 6) == 0 && store_stream_next(&ss) == 0, "walk past the head: nothing");
	store_stream_close(&ss);

	/* rooms */
	int rv = 0;
	uint64_t depth = 0;
	char cid[64];
	TAP_OK(store_room_put(t, &s, "!r:a.b", 11, 5, "$create") == 0, "room put");
	TAP_OK(store_room_get(t, &s, "!r:a.b", &rv, &depth, cid, sizeof cid) == 0 && rv == 11 && depth == 5 &&
	       !strcmp(cid, "$create"), "room round trip");
	TAP_OK(store_room_version(t, &s, "!r:a.b") == 11 && store_room_version(t, &s, "!q:a.b") == 0, "room version");
	TAP_OK(store_room_get(t, &s, "!r:a.b", NULL, NULL, cid, 4) == 0 && cid[0] == 0, "create ID too long for cap: \"\"");
	TAP_OK(store_room_raise_depth(t, &s, "!r:a.b", 3) == 0 && store_room_get(t, &s, "!r:a.b", NULL, &depth, NULL, 0) == 0 &&
	       depth == 5, "a shallower event leaves max_depth");
	TAP_OK(store_room_raise_depth(t, &s, "!r:a.b", 9) == 0 && store_room_get(t, &s, "!r:a.b", &rv, &depth, cid, sizeof cid) == 0 &&
	       depth == 9 && rv == 11 && !strcmp(cid, "$create"), "a deeper event raises it, the rest kept");
	TAP_OK(store_room_raise_depth(t, &s, "!unknown:a.b", 9) == 0 && store_room_version(t, &s, "!unknown:a.b") == 0,
	       "an unknown room is left alone");
	store_put(t, &s, DB_ROOMS, "!short:a.b", 10, "\x0b\x00", 2, 0);
	TAP_OK(store_room_get(t, &s, "!short:a.b", &rv, NULL, NULL, 0) == MDB_NOTFOUND, "a malformed room record reads as absent");
	unsigned char rb[11 + 3] = { 10 };
	be16_put(rb + 9, 50);                    /* create ID length past the end */
	store_put(t, &s, DB_ROOMS, "!cut:a.b", 8, rb, sizeof rb, 0);
	TAP_OK(store_room_get(t, &s, "!cut:a.b", &rv, NULL, cid, sizeof cid) == 0 && rv == 10 && cid[0] == 0,
	       "create ID length past the end: \"\"");

	/* extremities */
	size_t n0, n1;
	store_entries(t, &s, DB_ROOM_EXTREMITIES, &n0);
	TAP_OK(store_extremity_put(t, &s, "!r:a.b", "$e1", 4) == 0 && store_extremity_put(t, &s, "!r:a.b", "$e2", 5) == 0,
	       "extremity put");
	TAP_OK(store_extremity_del(t, &s, "!r:a.b", "$e1") == 0 && store_extremity_del(t, &s, "!r:a.b", "$e1") == 0,
	       "extremity del (again: no error)");
	store_entries(t, &s, DB_ROOM_EXTREMITIES, &n1);
	TAP_OK(n1 == n0 + 1, "one extremity left (%zu)", n1);

	/* room_servers */
	struct room_server rs[8];
	TAP_OK(store_room_servers(t, &s, "!a:x", rs, 8) == 0, "no servers yet");
	TAP_OK(store_room_server_seen(t, &s, "!a:x", "s1.test", 1000, 0) == 0 &&
	       store_room_server_seen(t, &s, "!a:x", "s2.test", 2000, 0) == 0 &&
	       store_room_server_seen(t, &s, "!a:xy", "s9.test", 3000, 0) == 0 &&
	       store_room_server_seen(t, &s, "!a:x", "", 3000, 0) == 0, "servers seen");
	char lname[300];
	memset(lname, 'n', 299); lname[299] = 0;
	store_room_server_seen(t, &s, "!a:x", lname, 4000, 0);
	int n = store_room_servers(t, &s, "!a:x", rs, 8);
	TAP_OK(n == 2 && !strcmp(rs[0].name, "s1.test") && rs[0].last_seen_ms == 1000 &&
	       !strcmp(rs[1].name, "s2.test") && rs[1].last_seen_ms == 2000,
	       "the room's servers only, a 300-byte name skipped (%d)", n);
	TAP_OK(store_room_servers(t, &s, "!a:x", rs, 1) == 1, "at most max");
	TAP_OK(store_room_server_seen(t, &s, "!a:x", "s1.test", 30000, 60000) == 0 &&
	       store_room_servers(t, &s, "!a:x", rs, 8) == 2 && rs[0].last_seen_ms == 1000, "within min_gap: not rewritten");
	TAP_OK(store_room_server_seen(t, &s, "!a:x", "s1.test", 70000, 60000) == 0 &&
	       store_room_servers(t, &s, "!a:x", rs, 8) == 2 && rs[0].last_seen_ms == 70000, "past min_gap: rewritten");
	TAP_OK(store_commit(t) == 0, "commit");
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
