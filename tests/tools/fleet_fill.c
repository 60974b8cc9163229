/* fleet_fill.c: test tool. Stores signed PDUs (JSON lines, e.g. from
 * served_fill --jsonl) into a node's LMDB through the store's own path for
 * an accepted event (store/purgatory: purg_store_event writes events,
 * stream, rooms, room_extremities, room_servers and the outbox row), in
 * batches, waking feedpump after each commit, so fleet tests give two nodes
 * the same real events without running the whole pipeline on each.
 * usage: fleet_fill STATE_DIR JSONL [--from N] [--to M] [--batch N]
 *        [--run-dir DIR]      (lines [N, M) of JSONL, 0-based) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/frame.h"
#include "core/log.h"
#include "store/purgatory.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fleet_fill STATE_DIR JSONL [--from N] [--to M] [--batch N] [--run-dir DIR]\n");
		return 100;
	}
	const char *dir = argv[1], *file = argv[2], *run_dir = NULL;
	long from = 0, to = -1, batch = 10;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--from")) from = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--to")) to = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--batch")) batch = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--run-dir")) run_dir = argv[i + 1];
		else { fprintf(stderr, "fleet_fill: unknown option %s\n", argv[i]); return 100; }
	}
	if (batch < 1) batch = 1;
	log_init("fleet_fill", 0);
	signal(SIGPIPE, SIG_IGN);
	FILE *f = fopen(file, "r");
	if (!f) { perror(file); return 100; }
	struct store st;
	char err[512];
	if (store_open(&st, dir, 0, 0, err, sizeof err) < 0) { fprintf(stderr, "fleet_fill: %s\n", err); return 111; }
	struct json_doc d = {0};
	static struct pdu_info pi;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long idx = 0, in_txn = 0, stored = 0;
	int wfd = -1;
	uint64_t last = 0;
	MDB_txn *t = NULL;
	for (;;) {
		len = getline(&line, &cap, f);
		int eof = len < 0 || (to >= 0 && idx >= to);
		if (!eof && idx >= from) {
			while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
			if (purg_pdu_parse(&d, line, (size_t)len, &pi, err, sizeof err) < 0) fatalx("line %ld: %s", idx, err);
			if (pdu_event_id(&d, 0, 10, pi.event_id) < 0) fatalx("line %ld: no event ID", idx);
			if (!t) t = store_begin(&st, 0);
			uint64_t pos = 0;
			int rc = purg_store_event(t, &st, &pi, 10, 0, line, (size_t)len, now_ms(), &pos);
			if (rc < 0 || rc > 1) fatalx("store: %s", mdb_strerror(rc));
			if (rc == 0) { last = pos; stored++; }
			in_txn++;
		}
		if (t && (eof || in_txn >= batch)) {
			if (store_commit(t)) fatalx("commit failed");
			t = NULL;
			in_txn = 0;
			if (run_dir) {
				if (wfd < 0) wfd = frame_connect_stage(run_dir, "feedpump");
				if (wfd >= 0) {
					char w[64];
					int n = snprintf(w, sizeof w, "{\"outbox\":%llu}", (unsigned long long)last);
					if (frame_write_fd(wfd, FT_WAKEUP, 0, 0, w, (size_t)n) < 0) { close(wfd); wfd = -1; }
				}
			}
		}
		if (eof) break;
		idx++;
	}
	free(line);
	json_doc_free(&d);
	if (wfd >= 0) close(wfd);
	store_close(&st);
	fclose(f);
	printf("%ld\n", stored);
	return 0;
}
