/* feed_fill.c: test tool. Commits events + stream + outbox rows into a node's
 * LMDB exactly as purgatoryd stores an event (store.h layout, one txn per
 * batch), in batches over time, and sends FT_WAKEUP {"outbox":N} to
 * feedpump after each commit (dropped if it is down), so feed tests run
 * without the whole pipeline.
 * usage: feed_fill STATE_DIR COUNT [--batch N] [--delay-ms MS] [--prefix P]
 *        [--run-dir DIR] [--missing POS]   (outbox row at POS with no event) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/frame.h"
#include "core/log.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: feed_fill STATE_DIR COUNT [--batch N] [--delay-ms MS] [--prefix P] [--run-dir DIR] [--missing N]\n");
		return 100;
	}
	const char *dir = argv[1], *prefix = "e", *run_dir = NULL;
	long count = atol(argv[2]), batch = 50, delay = 0, missing = -1;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--batch")) batch = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--delay-ms")) delay = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--prefix")) prefix = argv[i + 1];
		else if (!strcmp(argv[i], "--run-dir")) run_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--missing")) missing = atol(argv[i + 1]);
		else { fprintf(stderr, "feed_fill: unknown option %s\n", argv[i]); return 100; }
	}
	if (batch < 1) batch = 1;
	log_init("feed_fill", 0);
	signal(SIGPIPE, SIG_IGN);   /* feedpump may be killed mid-wakeup */
	struct store st;
	char err[512];
	if (store_open(&st, dir, 0, 0, err, sizeof err) < 0) { fprintf(stderr, "feed_fill: %s\n", err); return 111; }
	const char *room = "!feedtest:fill.test";
	struct buf pdu, val, ob;
	buf_init(&pdu); buf_init(&val); buf_init(&ob);
	int wfd = -1;
	for (long done = 0; done < count;) {
		MDB_txn *t = store_begin(&st, 0);
		uint64_t last = 0;
		for (long j = 0; j < batch && done < count; j++, done++) {
			uint64_t pos = store_next_seq(t, &st, "stream_next");
			char id[128];
			snprintf(id, sizeof id, "$%s_%07ld", prefix, done);
			buf_reset(&pdu);
			buf_printf(&pdu, "{\"auth_events\":[],\"content\":{\"body\":\"event %ld\",\"msgtype\":\"m.text\"},"
			           "\"depth\":%ld,\"origin_server_ts\":%lld,\"prev_events\":[],\"room_id\":\"%s\","
			           "\"sender\":\"@fill:fill.test\",\"type\":\"m.room.message\"}", done, done + 1,
			           now_ms(), room);
			unsigned char kb[8];
			be64_put(kb, pos);
			int is_missing = missing >= 0 && (long)pos == missing;
			if (!is_missing) {
				buf_reset(&val);
				buf_add_u64be(&val, pos);
				buf_addc(&val, 10);   /* room version */
				buf_addc(&val, 0);    /* flags */
				unsigned char l[2];
				be16_put(l, (uint16_t)strlen(room));
				buf_add(&val, l, 2);
				buf_adds(&val, room);
				buf_add(&val, pdu.data, pdu.len);
				if (store_put(t, &st, DB_EVENTS, id, strlen(id), val.data, val.len, 0)
				    || store_put(t, &st, DB_STREAM, kb, 8, id, strlen(id), 0))
					fatalx("put event");
			}
			buf_reset(&ob);
			buf_printf(&ob, "{\"attempts\":0,\"control_version\":null,\"event_id\":\"%s\","
			           "\"last_error\":null,\"published_ms\":null}", id);
			if (store_put(t, &st, DB_OUTBOX, kb, 8, ob.data, ob.len, 0)) fatalx("put outbox");
			last = pos;
		}
		if (store_commit(t)) return 111;
		if (run_dir) {
			if (wfd < 0) wfd = frame_connect_stage(run_dir, "feedpump");
			if (wfd >= 0) {
				char w[64];
				int n = snprintf(w, sizeof w, "{\"outbox\":%llu}", (unsigned long long)last);
				if (frame_write_fd(wfd, FT_WAKEUP, 0, 0, w, (size_t)n) < 0) { close(wfd); wfd = -1; }
			}
		}
		if (delay > 0) {
			struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (wfd >= 0) close(wfd);
	store_close(&st);
	return 0;
}
