/* test_store_purgatory.c: the purgatory module (store/purgatory.h) on a
 * real LMDB file. The held-event record: binary round trip, the old JSON
 * rows still read (and rewritten in the binary format when their pacing
 * changes), every malformed value refused without a crash; the rows of a
 * hold (purgatory + missing_index) written, found, paced and deleted
 * together; an old JSON expired row requeued; rejects pruned by age
 * through the iterator; extremities and room servers read back. */
#include <stdlib.h>
#include <string.h>
#include "store/purgatory.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

static const char PDU[] = "{\"auth_events\":[\"$c\"],\"content\":{\"body\":\"hi\"},\"depth\":3,"
                          "\"prev_events\":[\"$p\"],\"room_id\":\"!r:x\",\"sender\":\"@u:x\","
                          "\"type\":\"m.room.message\"}";

static void sample(struct hold_rec *h)
{
	memset(h, 0, sizeof *h);
	snprintf(h->room_id, sizeof h->room_id, "!r:x");
	snprintf(h->from, sizeof h->from, "peer.test");
	h->nmissing = 2;
	snprintf(h->missing[0], PDU_EVENT_ID_MAX, "$p");
	snprintf(h->missing[1], PDU_EVENT_ID_MAX, "$c");
	h->attempts = 3;
	h->next_try_ms = 1700000000123LL;
	h->first_seen_ms = 1700000000000LL;
	h->room_version = 11;
	h->redacted = 1;
	h->pdu = PDU;
	h->pdu_len = strlen(PDU);
}

static int same(const struct hold_rec *a, const struct hold_rec *b)
{
	if (strcmp(a->room_id, b->room_id) || strcmp(a->from, b->from) || strcmp(a->reason, b->reason) ||
	    a->nmissing != b->nmissing || a->attempts != b->attempts || a->next_try_ms != b->next_try_ms ||
	    a->first_seen_ms != b->first_seen_ms || a->expired_ms != b->expired_ms ||
	    a->room_version != b->room_version || a->redacted != b->redacted ||
	    a->pdu_len != b->pdu_len || memcmp(a->pdu, b->pdu, a->pdu_len))
		return 0;
	for (int i = 0; i < a->nmissing; i++) if (strcmp(a->missing[i], b->missing[i])) return 0;
	return 1;
}

static int dec(struct json_doc *d, const char *v, size_t n, struct hold_rec *h)
{
	/* a copy of exactly n bytes, so a read past the end shows under ASan */
	char *c = malloc(n ? n : 1);
	memcpy(c, v, n);
	int r = purg_hold_decode(d, c, n, h);
	free(c);
	return r;
}

static void codec(void)
{
	struct json_doc d = { 0 };
	struct hold_rec *h = malloc(sizeof *h), *g = malloc(sizeof *g);
	struct buf b;
	buf_init(&b);
	sample(h);
	purg_hold_encode(&b, h);
	TAP_OK(b.len > 0 && (unsigned char)b.data[0] == 1, "binary record starts with its format byte");
	TAP_OK(purg_hold_decode(&d, b.data, b.len, g) == 0 && same(h, g), "binary round trip");
	TAP_OK(g->pdu >= b.data && g->pdu + g->pdu_len == b.data + b.len, "the PDU is the record's tail");

	snprintf(h->reason, sizeof h->reason, "missing_events: 2 prev/auth events never arrived");
	h->expired_ms = 1700000009999LL;
	h->attempts = -1;                   /* whatever int64 it holds comes back */
	buf_reset(&b);
	purg_hold_encode(&b, h);
	TAP_OK(purg_hold_decode(&d, b.data, b.len, g) == 0 && same(h, g), "expired record round trip");

	/* every cut before the PDU's first byte is refused */
	size_t pdu_at = b.len - h->pdu_len;
	int bad = 0;
	for (size_t n = 0; n <= pdu_at; n++) bad += dec(&d, b.data, n, g) < 0;
	TAP_OK(bad == (int)pdu_at + 1, "every truncation before the PDU refused (%d of %zu)", bad, pdu_at + 1);

	char *m = malloc(b.len);
	memcpy(m, b.data, b.len);
	m[0] = 2;
	TAP_OK(dec(&d, m, b.len, g) < 0, "unknown format byte refused");
	m[0] = 1; m[2] = PURG_DEPS_MAX + 1;
	TAP_OK(dec(&d, m, b.len, g) < 0, "more missing IDs than a PDU may have refused");
	memcpy(m, b.data, b.len);
	m[39] = (char)0xff; m[40] = (char)0xff;        /* room_id's length: past the end */
	TAP_OK(dec(&d, m, b.len, g) < 0, "a str running past the value refused");
	free(m);

	/* a room_id longer than the record's field */
	struct buf big;
	buf_init(&big);
	memset(h->room_id, 'r', sizeof h->room_id - 1);
	h->room_id[sizeof h->room_id - 1] = 0;
	purg_hold_encode(&big, h);
	big.data[39] = 1;                              /* claim 256+ bytes: does not fit */
	big.data[40] = 0;
	TAP_OK(dec(&d, big.data, big.len, g) < 0, "a room_id longer than the field refused");
	buf_free(&big);

	/* the old JSON rows */
	sample(h);
	buf_reset(&b);
	purg_hold_json(&b, h);
	TAP_OK(b.data[0] == '{' && purg_hold_decode(&d, b.data, b.len, g) == 0 && same(h, g),
	       "old JSON row read (%.40s...)", b.data);
	static const char *const junk[] = {
		"{", "{}", "{\"room_id\":\"!r:x\"}", "{\"room_id\":\"!r:x\",\"pdu\":[1]}",
		"{\"room_id\":1,\"pdu\":{}}", "{\"room_id\":\"!r:x\",\"pdu\":{}", "{\"pdu\":{}}", "", "\x01",
	};
	bad = 0;
	for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) bad += dec(&d, junk[i], strlen(junk[i]), g) < 0;
	TAP_OK(bad == (int)(sizeof junk / sizeof *junk), "malformed JSON rows refused (%d)", bad);

	buf_free(&b);
	json_doc_free(&d);
	free(h); free(g);
}

static int nrows(MDB_txn *t, struct store *s, int db)
{
	MDB_stat ms;
	mdb_stat(t, s->dbi[db], &ms);
	return (int)ms.ms_entries;
}

static void reject(MDB_txn *t, struct store *s, const char *id, long long at)
{
	purg_reject_put(t, s, id, "bad", "m", "x", "{}", 2, at);
}

/* --- the write batch: the same rows as event-by-event writes ------------- */

/* every row of db as "key=value;" (bytes as hex) */
static void dump_db(MDB_txn *t, struct store *s, int db, struct buf *out)
{
	struct store_iter it;
	static const char hx[] = "0123456789abcdef";
	if (store_iter_open(&it, t, s, db, NULL, 0)) { buf_adds(out, "(open failed)"); return; }
	while (store_iter_next(&it) == 1) {
		for (size_t i = 0; i < it.k.mv_size; i++) {
			unsigned char c = ((unsigned char *)it.k.mv_data)[i];
			buf_addc(out, hx[c >> 4]); buf_addc(out, hx[c & 15]);
		}
		buf_addc(out, '=');
		for (size_t i = 0; i < it.v.mv_size; i++) {
			unsigned char c = ((unsigned char *)it.v.mv_data)[i];
			buf_addc(out, hx[c >> 4]); buf_addc(out, hx[c & 15]);
		}
		buf_addc(out, ';');
	}
	store_iter_close(&it);
}

/* one event: id, room, depth, sender's server, prevs (space-separated), create? */
struct bev { const char *id, *room; int depth; const char *server, *prevs; int create; };

static int store_bev(struct purg_batch *b, MDB_txn *t, struct store *s, const struct bev *e,
                     long long now)
{
	char pdu[1024], prevs[512] = "";
	const char *p = e->prevs;
	while (*p) {
		size_t n = strcspn(p, " ");
		snprintf(prevs + strlen(prevs), sizeof prevs - strlen(prevs), "%s\"%.*s\"",
		         prevs[0] ? "," : "", (int)n, p);
		p += n;
		while (*p == ' ') p++;
	}
	snprintf(pdu, sizeof pdu, "{\"auth_events\":[],\"content\":{%s},\"depth\":%d,"
	         "\"prev_events\":[%s],\"room_id\":\"%s\",\"sender\":\"@u:%s\",%s\"type\":\"%s\"}",
	         e->create ? "\"room_version\":\"10\"" : "", e->depth, prevs, e->room, e->server,
	         e->create ? "\"state_key\":\"\"," : "", e->create ? "m.room.create" : "m.room.message");
	struct pdu_info *pi = calloc(1, sizeof *pi);
	struct json_doc d = { 0 };
	char err[128];
	uint64_t pos;
	int rc = purg_pdu_parse(&d, pdu, strlen(pdu), pi, err, sizeof err);
	if (rc == 0) {
		snprintf(pi->event_id, sizeof pi->event_id, "%s", e->id);
		rc = purg_store_event_b(b, t, s, pi, 10, 0, pdu, strlen(pdu), now, &pos);
	}
	json_doc_free(&d);
	free(pi);
	return rc;
}

static void batch_same(void)
{
	/* txn 1 (no batch in either store) makes rooms and extremities that
	 * txn 2 then changes: in one store event by event, in the other
	 * through a batch */
	static const struct bev t1[] = {
		{ "$a1", "!a:x", 1, "x", "", 1 },
		{ "$a2", "!a:x", 2, "x", "$a1", 0 },
		{ "$z1", "!z:x", 1, "x", "", 1 },
		{ NULL, NULL, 0, NULL, NULL, 0 } };
	static const struct bev t2[] = {
		{ "$u1", "!u:x", 4, "x", "", 0 },          /* unknown room: no depth */
		{ "$a3", "!a:x", 3, "y", "$a2", 0 },       /* deletes a txn-1 extremity */
		{ "$a4", "!a:x", 4, "x", "$a3", 0 },       /* a chain: put then del */
		{ "$a5", "!a:x", 5, "z", "$a4", 0 },
		{ "$a6", "!a:x", 6, "y", "$a5", 0 },       /* a fork ... */
		{ "$a7", "!a:x", 6, "x", "$a5", 0 },
		{ "$a8", "!a:x", 7, "x", "$a6 $a7", 0 },   /* ... merged */
		{ "$a9", "!a:x", 3, "x", "$a8", 0 },       /* shallower: no raise */
		{ "$b1", "!a:x", 8, "w", "$missing", 0 },  /* a prev never stored */
		{ "$z2", "!z:x", 9, "x", "$z1", 0 },       /* raise pending ... */
		{ "$z0", "!z:x", 1, "x", "", 1 },          /* ... then a create's put */
		{ "$z3", "!z:x", 3, "q", "$z2", 0 },       /* read again: 3 */
		{ "$u0", "!u:x", 1, "x", "", 1 },          /* the unknown room made ... */
		{ "$u2", "!u:x", 2, "x", "$u0", 0 },       /* ... and raised */
		{ NULL, NULL, 0, NULL, NULL, 0 } };
	struct store sa, sb;
	char da[64], db[64];
	tmpstore_open(&sa, da, "purgA", 1 << 22);
	tmpstore_open(&sb, db, "purgB", 1 << 22);
	struct purg_batch b;
	int ok = 1;
	MDB_txn *ta = store_begin(&sa, 0), *tb = store_begin(&sb, 0);
	for (int i = 0; t1[i].id; i++)
		ok &= store_bev(NULL, ta, &sa, &t1[i], 1000) == 0 && store_bev(NULL, tb, &sb, &t1[i], 1000) == 0;
	TAP_OK(ok && store_commit(ta) == 0 && store_commit(tb) == 0, "txn 1 in both stores");
	ta = store_begin(&sa, 0);
	tb = store_begin(&sb, 0);
	purg_batch_init(&b, tb);
	for (int i = 0; t2[i].id; i++)
		ok &= store_bev(NULL, ta, &sa, &t2[i], 200000) == 0 && store_bev(&b, tb, &sb, &t2[i], 200000) == 0;
	TAP_OK(ok, "txn 2: every event stored in both");
	TAP_OK(b.nrows > 0, "the batch holds rows until it is flushed (%zu)", b.nrows);
	TAP_OK(store_bev(&b, tb, &sb, &t2[1], 200000) == 1, "a duplicate through the batch is a no-op");
	TAP_OK(purg_batch_flush(&b, &sb) == 0 && b.nrows == 0, "flush writes and empties the batch");
	TAP_OK(store_commit(ta) == 0 && store_commit(tb) == 0, "txn 2 committed in both");
	static const int dbs[] = { DB_EVENTS, DB_STREAM, DB_ROOMS, DB_ROOM_EXTREMITIES, DB_ROOM_SERVERS, DB_OUTBOX };
	static const char *const names[] = { "events", "stream", "rooms", "room_extremities", "room_servers", "outbox" };
	ta = store_begin(&sa, 1);
	tb = store_begin(&sb, 1);
	for (int i = 0; i < 6; i++) {
		struct buf x, y;
		buf_init(&x); buf_init(&y);
		dump_db(ta, &sa, dbs[i], &x);
		dump_db(tb, &sb, dbs[i], &y);
		TAP_OK(x.len > 0 && x.len == y.len && !memcmp(x.data, y.data, x.len),
		       "batched %s rows are the event-by-event ones (%zu bytes)", names[i], x.len);
		buf_free(&x); buf_free(&y);
	}
	char ids[8][PDU_EVENT_ID_MAX];
	int64_t depths[8];
	int ne = purg_extremities(tb, &sb, "!a:x", ids, depths, 8);
	TAP_OK(ne == 2, "room !a: the chain's last event and the one with a missing prev (%d)", ne);
	uint64_t md = 0;
	TAP_OK(store_room_get(tb, &sb, "!z:x", NULL, &md, NULL, 0) == 0 && md == 3,
	       "a create's put drops the pending raise (max_depth %llu)", (unsigned long long)md);
	mdb_txn_abort(ta);
	mdb_txn_abort(tb);
	/* an aborted txn's batch is dropped, nothing written */
	tb = store_begin(&sb, 0);
	purg_batch_init(&b, tb);
	static const struct bev t3 = { "$a10", "!a:x", 20, "x", "$a9", 0 };
	TAP_OK(store_bev(&b, tb, &sb, &t3, 300000) == 0 && b.nrows > 0, "txn 3: one event batched");
	purg_batch_drop(&b);
	mdb_txn_abort(tb);
	TAP_OK(b.nrows == 0, "dropped");
	tmpstore_close(&sa, da);
	tmpstore_close(&sb, db);
}

int main(void)
{
	codec();
	batch_same();

	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "purg", 1 << 22);
	struct json_doc d = { 0 };
	struct hold_rec *h = malloc(sizeof *h), *g = malloc(sizeof *g);
	struct buf scratch, b;
	buf_init(&scratch);
	buf_init(&b);
	struct purg_idlist w = { 0 };

	/* a hold: the row and its missing_index rows, together */
	MDB_txn *t = store_begin(&s, 0);
	sample(h);
	TAP_OK(purg_hold_put(t, &s, "$e", h, &scratch) == 0, "hold put");
	TAP_OK(purg_hold_get(t, &s, DB_PURGATORY, "$e", &d, g) == 0 && same(h, g), "hold read back");
	TAP_OK(nrows(t, &s, DB_MISSING_INDEX) == 2, "one missing_index row per missing ID");
	TAP_OK(purg_waiters(t, &s, "$p", &w) == 0 && w.n == 1 && !strcmp(w.v[0], "$e"), "$e waits for $p");
	w.n = 0;
	TAP_OK(purg_waiters(t, &s, "$", &w) == 0 && w.n == 0, "a shorter ID's prefix finds nothing");

	TAP_OK(purg_hold_set_pacing(t, &s, "$e", 3, h->next_try_ms, &d, &scratch) == 1, "same pacing: nothing written");
	TAP_OK(purg_hold_set_pacing(t, &s, "$e", 4, 42, &d, &scratch) == 0, "new pacing written");
	h->attempts = 4; h->next_try_ms = 42;
	TAP_OK(purg_hold_get(t, &s, DB_PURGATORY, "$e", &d, g) == 0 && same(h, g), "pacing changed, the rest intact");
	TAP_OK(purg_hold_set_pacing(t, &s, "$none", 1, 1, &d, &scratch) == MDB_NOTFOUND, "pacing of no row: not found");

	/* an old JSON row: read, paced (rewritten binary), deleted */
	sample(h);
	buf_reset(&b);
	purg_hold_json(&b, h);
	store_put(t, &s, DB_PURGATORY, "$old", 4, b.data, b.len, 0);
	TAP_OK(purg_hold_get(t, &s, DB_PURGATORY, "$old", &d, g) == 0 && same(h, g), "old JSON purgatory row read");
	TAP_OK(purg_hold_set_pacing(t, &s, "$old", 9, 99, &d, &scratch) == 0, "old row paced");
	MDB_val v;
	store_get(t, &s, DB_PURGATORY, "$old", 4, &v);
	h->attempts = 9; h->next_try_ms = 99;
	TAP_OK(((unsigned char *)v.mv_data)[0] == 1 && purg_hold_get(t, &s, DB_PURGATORY, "$old", &d, g) == 0 &&
	       same(h, g), "... and now stored in the binary format, same fields");
	store_put(t, &s, DB_PURGATORY, "$bad", 4, "{\"x\":1}", 7, 0);
	TAP_OK(purg_hold_get(t, &s, DB_PURGATORY, "$bad", &d, g) == MDB_CORRUPTED, "unreadable row: MDB_CORRUPTED");
	TAP_OK(purg_hold_set_pacing(t, &s, "$bad", 1, 1, &d, &scratch) == MDB_CORRUPTED, "... and not paced");

	sample(h);
	TAP_OK(purg_hold_del(t, &s, "$e", h) == 0 && purg_hold_get(t, &s, DB_PURGATORY, "$e", &d, g) == MDB_NOTFOUND,
	       "unhold deletes the row");
	w.n = 0;
	TAP_OK(purg_waiters(t, &s, "$p", &w) == 0 && w.n == 0, "... and its missing_index rows");
	TAP_OK(purg_hold_del(t, &s, "$e", h) == 0, "unhold twice is fine");

	/* expired: a binary row and an old JSON row, both requeued into the inbox */
	snprintf(h->reason, sizeof h->reason, "missing_events");
	h->expired_ms = 5;
	TAP_OK(purg_expired_put(t, &s, "$x1", h, &scratch) == 0, "expired put");
	buf_reset(&b);
	purg_hold_json(&b, h);
	store_put(t, &s, DB_EXPIRED, "$x2", 3, b.data, b.len, 0);
	uint64_t seq1 = 0, seq2 = 0;
	struct buf pdu;
	buf_init(&pdu);
	TAP_OK(purg_requeue_expired(t, &s, "$x1", &seq1, &pdu) == 0 && pdu.len == strlen(PDU) &&
	       !memcmp(pdu.data, PDU, pdu.len), "binary expired row requeued with its PDU");
	int rq = purg_requeue_expired(t, &s, "$x2", &seq2, &pdu);
	TAP_OK(rq == 0 && pdu.len == strlen(PDU) &&
	       !memcmp(pdu.data, PDU, pdu.len) && seq2 > seq1, "old JSON expired row requeued with its PDU (%d, %zu, %llu>%llu)", rq, pdu.len, (unsigned long long)seq2, (unsigned long long)seq1);
	struct inbox_rec ir;
	TAP_OK(store_inbox_get(t, &s, seq2, &ir) == 0 && ir.len == strlen(PDU) && ir.from_len == 9 &&
	       !memcmp(ir.from, "peer.test", 9), "the inbox row has the PDU and its original from");
	TAP_OK(nrows(t, &s, DB_EXPIRED) == 0, "expired rows gone");
	TAP_OK(purg_requeue_expired(t, &s, "$x1", &seq1, &pdu) == MDB_NOTFOUND, "requeue twice: not found");
	buf_free(&pdu);

	/* rejects: oldest first, pruned by age, bounded per call */
	TAP_OK(purg_reject_oldest_ms(t, &s) == -1, "no rejects: oldest -1");
	reject(t, &s, "$r1", 100); reject(t, &s, "$r2", 200); reject(t, &s, "$r3", 300);
	TAP_OK(purg_reject_oldest_ms(t, &s) == 100, "oldest reject at 100");
	int del = -1;
	TAP_OK(purg_rejects_prune(t, &s, 250, 1, &del) == 0 && del == 1 && purg_reject_oldest_ms(t, &s) == 200,
	       "prune bounded by max (%d)", del);
	TAP_OK(purg_rejects_prune(t, &s, 250, 10, &del) == 0 && del == 1 && purg_reject_oldest_ms(t, &s) == 300,
	       "prune stops at the first row young enough (%d)", del);
	TAP_OK(purg_rejects_prune(t, &s, 1000, 10, &del) == 0 && del == 1 && purg_reject_oldest_ms(t, &s) == -1,
	       "prune empties the table (%d)", del);

	/* extremities and room servers (read with the iterator) */
	struct pdu_info *pi = calloc(1, sizeof *pi);
	char perr[128];
	static const char create[] = "{\"auth_events\":[],\"content\":{\"room_version\":\"10\"},\"depth\":1,"
		"\"origin\":\"o.test\",\"prev_events\":[],\"room_id\":\"!q:x\",\"sender\":\"@u:x\",\"state_key\":\"\","
		"\"type\":\"m.room.create\"}";
	static const char child[] = "{\"auth_events\":[\"$cr\"],\"content\":{},\"depth\":2,"
		"\"prev_events\":[\"$cr\"],\"room_id\":\"!q:x\",\"sender\":\"@v:y\",\"type\":\"m.room.message\"}";
	uint64_t pos;
	TAP_OK(purg_pdu_parse(&d, create, strlen(create), pi, perr, sizeof perr) == 0, "parse create: %s", perr);
	snprintf(pi->event_id, sizeof pi->event_id, "$cr");
	TAP_OK(purg_store_event(t, &s, pi, 10, 0, create, strlen(create), 1000, &pos) == 0, "store create");
	TAP_OK(purg_pdu_parse(&d, child, strlen(child), pi, perr, sizeof perr) == 0, "parse child: %s", perr);
	snprintf(pi->event_id, sizeof pi->event_id, "$ch");
	TAP_OK(purg_store_event(t, &s, pi, 10, 0, child, strlen(child), 1000, &pos) == 0, "store child");
	char ids[4][PDU_EVENT_ID_MAX];
	struct room_server srv[4];
	int64_t depths[4];
	TAP_OK(purg_extremities(t, &s, "!q:x", ids, depths, 4) == 1 && !strcmp(ids[0], "$ch") && depths[0] == 2,
	       "the child is the one forward extremity");
	int ns = store_room_servers(t, &s, "!q:x", srv, 4);
	TAP_OK(ns == 3 && !strcmp(srv[0].name, "o.test") && !strcmp(srv[1].name, "x") && !strcmp(srv[2].name, "y"),
	       "room servers: origin and both senders' servers (%d)", ns);
	TAP_OK(store_room_servers(t, &s, "!q:x", srv, 2) == 2, "room servers bounded by max");
	TAP_OK(store_room_servers(t, &s, "!q:", srv, 4) == 0, "another room's prefix finds nothing");
	TAP_OK(store_commit(t) == 0, "commit");

	free(pi); free(w.v);
	buf_free(&scratch); buf_free(&b);
	json_doc_free(&d);
	free(h); free(g);
	if (tmpstore_close(&s, dir)) return 1;
	return tap_done();
}
