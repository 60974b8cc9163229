/* tax_floor.c: the durable writes of replication and nothing else, for the
 * pipeline tax's floor (bench/pipeline_tax.sh, issue 19).
 *   tax_floor DIR INPUT PAGE BATCH [pos]
 * INPUT has one "EVENT_ID<TAB>PDU" line per event. Into a fresh store at
 * DIR it does what the durability rule asks of B, with the store's own row
 * formats, and no frames, JSON parsing, verdicts or signatures:
 *   inbox:  one write txn per PAGE events (syncd's page): each raw PDU into
 *           the inbox, and the peer's cursor row;
 *   store:  one write txn per BATCH events (purgatoryd's commit), taken as
 *           soon as the inbox holds BATCH undecided rows: the events row,
 *           the stream and outbox rows, the room's depth, the stream
 *           counter, and the inbox row deleted.
 * "pos" writes the store as a layout keyed by stream position would (not
 * the layout in use, DESIGN.md's events: id -> position, room, bytes): the
 * stream row holds the record, appended, and events only id -> position.
 * It is there to measure what that design change would save.
 * Prints "floor N INBOX_CPU_S STORE_CPU_S" (user + system CPU of each phase,
 * getrusage: the fdatasync and page writes count, as they do for B). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include "store/store.h"
#include "store/inbox.h"
#include "store/events.h"
#include "store/outbox.h"

struct ev { char *id; char *pdu; size_t len; char room[256]; uint64_t seq; };

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "tax_floor: %s: %s\n", what, mdb_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 5 && !(argc == 6 && !strcmp(argv[5], "pos"))) {
		fprintf(stderr, "usage: tax_floor DIR INPUT PAGE BATCH [pos]\n");
		return 100;
	}
	int page = atoi(argv[3]), batch = atoi(argv[4]), bypos = argc == 6;
	unsigned char *rec = NULL;
	size_t reccap = 0;
	FILE *f = fopen(argv[2], "r");
	if (!f || page < 1 || batch < 1) { fprintf(stderr, "tax_floor: bad input or sizes\n"); return 100; }
	struct ev *ev = NULL;
	size_t n = 0, cap = 0, ln = 0;
	char *line = NULL;
	ssize_t got;
	while ((got = getline(&line, &ln, f)) > 0) {
		if (line[got - 1] == '\n') line[--got] = 0;
		char *tab = strchr(line, '\t');
		if (!tab) continue;
		if (n == cap) { cap = cap ? cap * 2 : 4096; ev = realloc(ev, cap * sizeof *ev); if (!ev) return 111; }
		*tab = 0;
		ev[n].id = strdup(line);
		ev[n].pdu = strdup(tab + 1);
		ev[n].len = strlen(tab + 1);
		ev[n].room[0] = 0;
		const char *r = strstr(ev[n].pdu, "\"room_id\":\"");
		if (r) {
			r += 11;
			size_t k = 0;
			while (r[k] && r[k] != '"' && k + 1 < sizeof ev[n].room) { ev[n].room[k] = r[k]; k++; }
			ev[n].room[k] = 0;
		}
		if (!ev[n].id || !ev[n].pdu) return 111;
		n++;
	}
	free(line);
	fclose(f);

	struct store st;
	char err[512];
	mkdir(argv[1], 0755);
	if (store_open(&st, argv[1], 0, 0, err, sizeof err) < 0) { fprintf(stderr, "tax_floor: %s\n", err); return 111; }
	int rc;

	/* interleaved as in B: the store takes a batch as soon as the inbox
	 * holds one, so inbox pages reuse the pages the store frees */
	double ci = 0, cs = 0;
	uint64_t pos = 0;
	size_t stored = 0;
	for (size_t i = 0; i < n || stored < n; i += page) {
		double c0 = cpu_s();
		if (i < n) {
			MDB_txn *t = store_begin(&st, 0);
			size_t end = i + page < n ? i + page : n;
			for (size_t k = i; k < end; k++)
				if ((rc = store_inbox_put(t, &st, "a", ev[k].pdu, ev[k].len, &ev[k].seq))) return fail("inbox put", rc);
			char cur[64];
			int cl = snprintf(cur, sizeof cur, "{\"cursor\":%zu}", end);
			if ((rc = store_put(t, &st, DB_FEDERATION_STATE, "a", 1, cur, (size_t)cl, 0))) return fail("cursor put", rc);
			if ((rc = store_commit(t))) return fail("inbox commit", rc);
		}
		double c1 = cpu_s();
		ci += c1 - c0;
		size_t inboxed = i + page < n ? i + page : n;
		while (inboxed - stored >= (size_t)batch || (inboxed == n && stored < n)) {
			MDB_txn *t = store_begin(&st, 0);
			size_t end = stored + batch < inboxed ? stored + batch : inboxed;
			for (size_t k = stored; k < end; k++) {
				pos++;
				if (bypos) {
					/* stream: pos -> u8 version | u8 flags | u16 room length | room | PDU */
					unsigned char pk[8];
					size_t rl = strlen(ev[k].room), rn = 4 + rl + ev[k].len;
					if (rn > reccap && !(rec = realloc(rec, reccap = rn))) return 111;
					rec[0] = 10; rec[1] = 0; rec[2] = (unsigned char)(rl >> 8); rec[3] = (unsigned char)rl;
					memcpy(rec + 4, ev[k].room, rl);
					memcpy(rec + 4 + rl, ev[k].pdu, ev[k].len);
					be64_put(pk, pos);
					if ((rc = store_put(t, &st, DB_STREAM, pk, 8, rec, rn, MDB_APPEND))) return fail("stream put", rc);
					if ((rc = store_put(t, &st, DB_EVENTS, ev[k].id, strlen(ev[k].id), pk, 8, 0))) return fail("event put", rc);
				} else {
					if ((rc = store_event_put(t, &st, ev[k].id, pos, 10, 0, ev[k].room, ev[k].pdu, ev[k].len))) return fail("event put", rc);
					if ((rc = store_stream_put(t, &st, pos, ev[k].id))) return fail("stream put", rc);
				}
				if ((rc = outbox_append(t, &st, pos, ev[k].id))) return fail("outbox put", rc);
				unsigned char key[8];
				be64_put(key, ev[k].seq);
				if ((rc = store_del(t, &st, DB_INBOX, key, 8))) return fail("inbox del", rc);
			}
			/* the room's row (version, max depth) once a txn, as purg_batch does */
			unsigned char room[11] = { 10 }, next[8];
			be64_put(room + 1, end);
			if ((rc = store_put(t, &st, DB_ROOMS, ev[end - 1].room, strlen(ev[end - 1].room), room, sizeof room, 0)))
				return fail("room put", rc);
			be64_put(next, pos + 1);
			if ((rc = store_put(t, &st, DB_META, "stream_next", 11, next, 8, 0))) return fail("meta put", rc);
			if ((rc = store_commit(t))) return fail("store commit", rc);
			stored = end;
		}
		cs += cpu_s() - c1;
	}
	printf("floor %zu %.3f %.3f\n", n, ci, cs);
	store_close(&st);
	free(rec);
	return 0;
}
