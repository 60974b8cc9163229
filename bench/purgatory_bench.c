/* purgatory_bench.c: drives a running purgatoryd with verdict frames (no
 * validated in the way: the bench is about the store) and watches LMDB.
 *   store CONF N ROOMS        N in-order events in ROOMS chains; prints
 *                             "store N SECONDS BATCHES" when all are stored
 *   raw DIR N ROOMS BATCH     the same bytes put into a scratch LMDB, one txn
 *                             per BATCH; prints "raw N SECONDS"
 *   release CONF PID          ~100,000 events held in 1,000 rooms, then one
 *                             missing event with 1 waiter and one with 1,000
 *                             waiters arrive (3 samples each); prints
 *                             "held N SECONDS RSS_DELTA_KB" and
 *                             "release1 US" / "release1000 US" (medians)
 * Event IDs are synthetic: purgatoryd trusts validated's event_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>
#include "core/config.h"
#include "store/store.h"
#include "core/frame.h"
#include "core/buf.h"
#include "core/log.h"

static struct config cfg;
static struct store st;
static int fd = -1;
static struct buf fb;

static void eid(char *out, const char *tag, int room, int i)
{
	char t[24];
	snprintf(t, sizeof t, "%.2s%dx%d", tag, room % 100000, i % 1000000);
	size_t l = strlen(t);
	out[0] = '$';
	memset(out + 1, '0', 43 - l);          /* leading zeros: no collisions */
	memcpy(out + 1 + 43 - l, t, l);
	out[44] = 0;
}

/* PDU bytes; prev/auth may be NULL */
static void pdu(struct buf *b, const char *room, int depth, const char *type, const char *prev,
                const char *auth)
{
	buf_reset(b);
	buf_printf(b, "{\"auth_events\":[%s%s%s],\"content\":{\"body\":\"benchmark message body %d of a room\","
	           "\"msgtype\":\"m.text\"},\"depth\":%d,\"hashes\":{\"sha256\":\"%043d\"},\"origin\":\"bench.test\","
	           "\"origin_server_ts\":1700000000000,\"prev_events\":[%s%s%s],\"room_id\":\"%s\","
	           "\"sender\":\"@u:bench.test\",\"signatures\":{\"bench.test\":{\"ed25519:a\":\"%086d\"}},%s"
	           "\"type\":\"%s\"}",
	           auth ? "\"" : "", auth ? auth : "", auth ? "\"" : "", depth, depth, 0,
	           prev ? "\"" : "", prev ? prev : "", prev ? "\"" : "", room, 0,
	           strcmp(type, "m.room.create") ? "" : "\"state_key\":\"\",", type);
}

static void send_verdict(const char *id, const struct buf *p)
{
	buf_reset(&fb);
	buf_printf(&fb, "{\"event_id\":\"%s\",\"room_version\":10,\"verdict\":\"accept\"}\n", id);
	buf_add(&fb, p->data, p->len);
	if (frame_write_fd(fd, FT_VERDICT, 0, 0, fb.data, fb.len) < 0) { perror("write"); exit(1); }
}

static long long count(int db)
{
	MDB_txn *t = store_begin(&st, 1);
	MDB_stat ms;
	mdb_stat(t, st.dbi[db], &ms);
	mdb_txn_abort(t);
	return (long long)ms.ms_entries;
}

static long long tus(void);
static void wait_count(int db, long long want)
{
	long long deadline = tus() + 300LL * 1000000;
	while (count(db) < want) {
		if (tus() > deadline) {
			fprintf(stderr, "purgatory_bench: %s has %lld rows, wanted %lld; giving up\n",
			        store_db_names[db], count(db), want);
			exit(1);
		}
		usleep(200);
	}
}

static void setup(const char *conf)
{
	char err[512];
	if (config_load(&cfg, conf, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); exit(100); }
	if (store_open(&st, cfg_str(&cfg, "node", "state_dir"), 0, 1, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err); exit(111);
	}
	fd = frame_connect_stage(cfg_str(&cfg, "node", "run_dir"), "purgatoryd");
	if (fd < 0) { perror("connect purgatoryd"); exit(111); }
}

static double secs(long long a, long long b) { return (double)(b - a) / 1e6; }
static long long tus(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* the i-th event of the interleaved in-order workload */
static void store_event(struct buf *b, char *id, int n, int rooms, int k)
{
	int room = k % rooms, i = k / rooms;
	char r[64], prev[48], create[48];
	snprintf(r, sizeof r, "!s%d:bench.test", room);
	eid(id, "s", room, i);
	eid(create, "s", room, 0);
	if (i == 0) pdu(b, r, 1, "m.room.create", NULL, NULL);
	else { eid(prev, "s", room, i - 1); pdu(b, r, i + 1, "m.room.message", prev, create); }
}

static int cmd_store(const char *conf, int n, int rooms)
{
	setup(conf);
	struct buf b; char id[48];
	buf_init(&b); buf_init(&fb);
	long long base = count(DB_EVENTS);
	long long t0 = tus();
	for (int k = 0; k < n; k++) { store_event(&b, id, n, rooms, k); send_verdict(id, &b); }
	wait_count(DB_EVENTS, base + n);
	long long t1 = tus();
	printf("store %d %.6f\n", n, secs(t0, t1));
	return 0;
}

static int cmd_raw(const char *dir, int n, int rooms, int batch)
{
	char err[512];
	mkdir(dir, 0755);
	if (store_open(&st, dir, 0, 0, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 111; }
	struct buf b; char id[48];
	buf_init(&b);
	long long t0 = tus();
	MDB_txn *t = NULL;
	for (int k = 0; k < n; k++) {
		if (!t) t = store_begin(&st, 0);
		store_event(&b, id, n, rooms, k);
		if (store_put(t, &st, DB_EVENTS, id, strlen(id), b.data, b.len, 0)) { fprintf(stderr, "put\n"); return 1; }
		if ((k + 1) % batch == 0) { store_commit(t); t = NULL; }
	}
	if (t) store_commit(t);
	long long t1 = tus();
	printf("raw %d %.6f\n", n, secs(t0, t1));
	return 0;
}

static long rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	while (fgets(line, sizeof line, f)) if (!strncmp(line, "RssAnon:", 8)) kb = atol(line + 8);
	fclose(f);
	return kb;
}

static int cmp_ll(const void *a, const void *b)
{ long long x = *(const long long *)a, y = *(const long long *)b; return x < y ? -1 : x > y; }

static int cmd_release(const char *conf, int pid)
{
	setup(conf);
	struct buf b; char id[48], create[48], miss[48], prev[48], r[64];
	buf_init(&b); buf_init(&fb);
	enum { ROOMS = 1000, PER = 100, SAMPLES = 3 };
	/* creates first: stored */
	long long ev0 = count(DB_EVENTS);
	for (int room = 0; room < ROOMS; room++) {
		snprintf(r, sizeof r, "!h%d:bench.test", room);
		eid(create, "h", room, 0);
		pdu(&b, r, 1, "m.room.create", NULL, NULL);
		send_verdict(create, &b);
	}
	wait_count(DB_EVENTS, ev0 + ROOMS);
	long rss0 = rss_kb(pid);
	long long held0 = count(DB_PURGATORY), t0 = tus();
	long long nheld = 0;
	/* rooms 0..2: one waiter on a missing event; rooms 3..5: 1,000 waiters;
	 * the rest: chains of PER whose first message is missing */
	for (int room = 0; room < ROOMS; room++) {
		snprintf(r, sizeof r, "!h%d:bench.test", room);
		eid(create, "h", room, 0);
		eid(miss, "h", room, 1);
		int waiters = room < SAMPLES ? 1 : room < 2 * SAMPLES ? 1000 : PER;
		for (int i = 0; i < waiters; i++) {
			int chain = room >= 2 * SAMPLES;
			if (chain && i > 0) eid(prev, "h", room, i + 1);
			else memcpy(prev, miss, sizeof prev);
			eid(id, "h", room, i + 2);
			pdu(&b, r, i + 3, "m.room.message", prev, create);
			send_verdict(id, &b);
			nheld++;
		}
	}
	wait_count(DB_PURGATORY, held0 + nheld);
	long long t1 = tus();
	sleep(1);
	long rss1 = rss_kb(pid);
	printf("held %lld %.6f %ld\n", nheld, secs(t0, t1), rss1 - rss0);
	long long s1[SAMPLES], s1000[SAMPLES];
	for (int k = 0; k < 2 * SAMPLES; k++) {
		int room = k;
		snprintf(r, sizeof r, "!h%d:bench.test", room);
		eid(create, "h", room, 0);
		eid(miss, "h", room, 1);
		pdu(&b, r, 2, "m.room.message", create, create);
		long long before = count(DB_EVENTS);
		long long want = before + 1 + (k < SAMPLES ? 1 : 1000);
		long long a = tus();
		send_verdict(miss, &b);
		wait_count(DB_EVENTS, want);
		long long z = tus();
		if (k < SAMPLES) s1[k] = z - a; else s1000[k - SAMPLES] = z - a;
	}
	qsort(s1, SAMPLES, sizeof s1[0], cmp_ll);
	qsort(s1000, SAMPLES, sizeof s1000[0], cmp_ll);
	printf("release1 %lld\nrelease1000 %lld\n", s1[SAMPLES / 2], s1000[SAMPLES / 2]);
	return 0;
}

int main(int argc, char **argv)
{
	log_init("purgatory_bench", 0);
	if (argc >= 5 && !strcmp(argv[1], "store")) return cmd_store(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc >= 6 && !strcmp(argv[1], "raw")) return cmd_raw(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc >= 4 && !strcmp(argv[1], "release")) return cmd_release(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: purgatory_bench store CONF N ROOMS | raw DIR N ROOMS BATCH | release CONF PID\n");
	return 100;
}
