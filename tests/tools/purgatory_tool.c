/* purgatory_tool.c: test helper for purgatoryd.
 *   gen -k KEYFILE -s SERVER [-n N] [--rooms R] [--rv V] [--shuffle SEED] [--ids FILE]
 *       signed room chains as JSON lines (create, then N-1 messages each
 *       pointing at the previous one; auth_events = the create event)
 *   submit -c CONF [--from NAME] [--no-send] FILE|-   JSON lines -> inbox
 *       (one txn per 500 lines) + FT_EVENT to validated, like syncd would
 *   verdicts -c CONF [--loop MS] [--until-empty]   a stand-in validated: sends
 *       FT_VERDICT accept for every inbox row (re-sends until the row is gone)
 *   check -c CONF    events/stream/outbox consistency and topological order:
 *       prints "events=N stream=N outbox=N inbox=N purgatory=N expired=N
 *       rejects=N missing_index=N consistent=0|1 topo=0|1"
 *   stream -c CONF   "pos event_id" per stream row
 *   hold-json -c CONF --missing ID [--from NAME] FILE|-   hold the PDU (one
 *       JSON line) as a row in the format before the binary one (a JSON
 *       object with the PDU embedded) + its missing_index row, as a node
 *       upgraded with held events has them (purgatoryd must not run) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sodium.h>
#include "core/config.h"
#include "store/store.h"
#include "core/frame.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "store/purgatory.h"
#include "core/log.h"
#include "core/xalloc.h"

static const char *optval(int argc, char **argv, const char *name, const char *dflt)
{
	for (int i = 0; i < argc - 1; i++) if (!strcmp(argv[i], name)) return argv[i + 1];
	return dflt;
}
static int hasopt(int argc, char **argv, const char *name)
{
	for (int i = 0; i < argc; i++) if (!strcmp(argv[i], name)) return 1;
	return 0;
}

static void open_store(int argc, char **argv, struct config *cfg, struct store *st, int ro)
{
	char err[512];
	const char *c = optval(argc, argv, "-c", NULL);
	if (config_load(cfg, c, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); exit(100); }
	if (store_open(st, cfg_str(cfg, "node", "state_dir"), (size_t)cfg_size(cfg, "node", "map_size"), ro, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err); exit(111);
	}
}

static int gen(int argc, char **argv)
{
	struct signing_key k;
	char err[256];
	const char *kf = optval(argc, argv, "-k", NULL), *srv = optval(argc, argv, "-s", NULL);
	if (!kf || !srv) { fprintf(stderr, "gen: -k KEYFILE -s SERVER required\n"); return 100; }
	if (signing_key_load(&k, kf, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 1; }
	int n = atoi(optval(argc, argv, "-n", "10")), rooms = atoi(optval(argc, argv, "--rooms", "1"));
	int rv = atoi(optval(argc, argv, "--rv", "10"));
	const char *tag = optval(argc, argv, "--tag", "t");
	long seed = atol(optval(argc, argv, "--shuffle", "0"));
	const char *idf = optval(argc, argv, "--ids", NULL);
	FILE *ids = idf ? fopen(idf, "w") : NULL;
	char **lines = xcalloc((size_t)n * (size_t)rooms, sizeof *lines);
	size_t nl = 0;
	struct buf ev, out;
	buf_init(&ev); buf_init(&out);
	long long ts = 1700000000000LL;
	for (int r = 0; r < rooms; r++) {
		char room[128], create[PDU_EVENT_ID_MAX], prev[PDU_EVENT_ID_MAX];
		snprintf(room, sizeof room, "!%s%d:%s", tag, r, srv);
		for (int i = 0; i < n; i++) {
			buf_reset(&ev);
			if (i == 0)
				buf_printf(&ev, "{\"auth_events\":[],\"content\":{\"creator\":\"@u:%s\",\"room_version\":\"%d\"},"
				           "\"depth\":1,\"origin\":\"%s\",\"origin_server_ts\":%lld,\"prev_events\":[],"
				           "\"room_id\":\"%s\",\"sender\":\"@u:%s\",\"state_key\":\"\",\"type\":\"m.room.create\"}",
				           srv, rv, srv, ts++, room, srv);
			else
				buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":{\"body\":\"message %d\",\"msgtype\":\"m.text\"},"
				           "\"depth\":%d,\"origin\":\"%s\",\"origin_server_ts\":%lld,\"prev_events\":[\"%s\"],"
				           "\"room_id\":\"%s\",\"sender\":\"@u:%s\",\"type\":\"m.room.message\"}",
				           create, i, i + 1, srv, ts++, prev, room, srv);
			buf_reset(&out);
			if (pdu_sign(ev.data, ev.len, rv, srv, k.key_id, k.sk, &out, prev) < 0) {
				fprintf(stderr, "gen: pdu_sign failed\n"); return 1;
			}
			if (i == 0) memcpy(create, prev, sizeof create);
			if (ids) fprintf(ids, "%s\n", prev);
			lines[nl++] = xstrdup(out.data);
		}
	}
	if (seed) {
		srand((unsigned)seed);
		for (size_t i = nl - 1; i > 0; i--) {
			size_t j = (size_t)rand() % (i + 1);
			char *t = lines[i]; lines[i] = lines[j]; lines[j] = t;
		}
	}
	for (size_t i = 0; i < nl; i++) { printf("%s\n", lines[i]); free(lines[i]); }
	free(lines);
	if (ids) fclose(ids);
	buf_free(&ev); buf_free(&out);
	return 0;
}

static int submit(int argc, char **argv)
{
	struct config cfg;
	struct store st;
	open_store(argc, argv, &cfg, &st, 0);
	const char *from = optval(argc, argv, "--from", "peer.test");
	const char *file = argv[argc - 1];
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) { perror(file); return 1; }
	int fd = hasopt(argc, argv, "--no-send") ? -1 :
	         frame_connect_stage(cfg_str(&cfg, "node", "run_dir"), "validated");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct { uint64_t seq; char *l; size_t n; } batch[500];
	int nb = 0, total = 0;
	for (;;) {
		len = getline(&line, &cap, f);
		if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
		if (len > 0) {
			batch[nb].l = xmemdup(line, (size_t)len);
			batch[nb].n = (size_t)len;
			nb++;
		}
		if (nb == 500 || (len < 0 && nb)) {
			MDB_txn *t = store_begin(&st, 0);
			for (int i = 0; i < nb; i++)
				if (store_inbox_put(t, &st, from, batch[i].l, batch[i].n, &batch[i].seq)) {
					fprintf(stderr, "inbox put failed\n"); return 1;
				}
			if (store_commit(t)) return 1;
			for (int i = 0; i < nb; i++) {
				if (fd >= 0 && frame_write_fd(fd, FT_EVENT, 0, batch[i].seq, batch[i].l, batch[i].n) < 0) {
					close(fd); fd = -1;
				}
				free(batch[i].l);
			}
			total += nb;
			nb = 0;
		}
		if (len < 0) break;
	}
	if (fd >= 0) close(fd);
	fprintf(stderr, "submitted %d events\n", total);
	return 0;
}

static int verdicts(int argc, char **argv)
{
	struct config cfg;
	struct store st;
	open_store(argc, argv, &cfg, &st, 1);
	int loop = atoi(optval(argc, argv, "--loop", "0"));
	int rv = (int)cfg_int(&cfg, "node", "room_version");
	const char *run = cfg_str(&cfg, "node", "run_dir");
	struct json_doc d = { 0 };
	struct buf b;
	buf_init(&b);
	int fd = -1;
	for (;;) {
		int left = 0;
		if (fd < 0) fd = frame_connect_stage(run, "purgatoryd");
		MDB_txn *t = store_begin(&st, 1);
		struct store_iter it;
		store_iter_open(&it, t, &st, DB_INBOX, NULL, 0);
		while (store_iter_next(&it) == 1) {
			struct inbox_rec ir;
			char id[PDU_EVENT_ID_MAX];
			left++;
			if (store_inbox_parse(&it.v, &ir) < 0 || fd < 0) continue;
			if (json_parse(&d, ir.bytes, ir.len, 64) < 0 || pdu_event_id(&d, 0, rv, id) < 0) continue;
			buf_reset(&b);
			buf_printf(&b, "{\"event_id\":\"%s\",\"verdict\":\"accept\",\"room_version\":%d}\n", id, rv);
			buf_add(&b, ir.bytes, ir.len);
			if (frame_write_fd(fd, FT_VERDICT, 0, be64_get(it.k.mv_data), b.data, b.len) < 0) {
				close(fd); fd = -1;
			}
		}
		store_iter_close(&it);
		mdb_txn_abort(t);
		if (!loop || (hasopt(argc, argv, "--until-empty") && left == 0)) break;
		usleep((useconds_t)loop * 1000);
	}
	return 0;
}

static int check(int argc, char **argv, int print_stream)
{
	struct config cfg;
	struct store st;
	open_store(argc, argv, &cfg, &st, 1);
	MDB_txn *t = store_begin(&st, 1);
	MDB_stat ms;
	long long cnt[DB__COUNT];
	for (int i = 0; i < DB__COUNT; i++) { mdb_stat(t, st.dbi[i], &ms); cnt[i] = (long long)ms.ms_entries; }
	int consistent = 1, topo = 1;
	struct json_doc d = { 0 };
	struct pdu_info *pi = xmalloc(sizeof *pi);
	char err[200];
	struct store_iter it;
	store_iter_open(&it, t, &st, DB_STREAM, NULL, 0);
	while (store_iter_next(&it) == 1) {
		uint64_t pos = be64_get(it.k.mv_data);
		char id[PDU_EVENT_ID_MAX];
		snprintf(id, sizeof id, "%.*s", (int)it.v.mv_size, (char *)it.v.mv_data);
		if (print_stream) printf("%llu %s\n", (unsigned long long)pos, id);
		struct event_rec er;
		if (store_event_get(t, &st, id, &er) || er.pos != pos) {
			if (consistent) fprintf(stderr, "stream %llu -> %s: events row missing or other pos\n",
			                        (unsigned long long)pos, id);
			consistent = 0; continue;
		}
		MDB_val ov;
		unsigned char pk[8];
		be64_put(pk, pos);
		char want[PDU_EVENT_ID_MAX + 16];
		snprintf(want, sizeof want, "\"event_id\":\"%s\"", id);
		if (store_get(t, &st, DB_OUTBOX, pk, 8, &ov) || !memmem(ov.mv_data, ov.mv_size, want, strlen(want))) {
			if (consistent) fprintf(stderr, "outbox %llu does not name %s\n", (unsigned long long)pos, id);
			consistent = 0;
		}
		if (purg_pdu_parse(&d, er.pdu, er.pdu_len, pi, err, sizeof err) < 0) { topo = 0; continue; }
		for (int i = 0; i < pi->ndeps; i++) {
			struct event_rec pr;
			if (store_event_get(t, &st, pi->deps[i], &pr) || pr.pos >= pos) {
				if (topo) fprintf(stderr, "%s (pos %llu) stored before its dependency %s\n", id,
				                  (unsigned long long)pos, pi->deps[i]);
				topo = 0;
			}
		}
	}
	store_iter_close(&it);
	if (cnt[DB_EVENTS] != cnt[DB_STREAM] || cnt[DB_STREAM] != cnt[DB_OUTBOX]) consistent = 0;
	if (!print_stream)
		printf("events=%lld stream=%lld outbox=%lld inbox=%lld purgatory=%lld expired=%lld rejects=%lld "
		       "missing_index=%lld consistent=%d topo=%d\n", cnt[DB_EVENTS], cnt[DB_STREAM],
		       cnt[DB_OUTBOX], cnt[DB_INBOX], cnt[DB_PURGATORY], cnt[DB_EXPIRED], cnt[DB_REJECTS],
		       cnt[DB_MISSING_INDEX], consistent, topo);
	mdb_txn_abort(t);
	return 0;
}

/* An old-format purgatory row, written the way purgatoryd wrote them
 * before the binary record (purg_hold_json is that encoder). */
static int hold_json(int argc, char **argv)
{
	struct config cfg;
	struct store st;
	open_store(argc, argv, &cfg, &st, 0);
	const char *missing = optval(argc, argv, "--missing", NULL), *file = argv[argc - 1];
	if (!missing) { fprintf(stderr, "hold-json: --missing ID required\n"); return 100; }
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) { perror(file); return 1; }
	char *line = NULL;
	size_t cap = 0;
	ssize_t len = getline(&line, &cap, f);
	if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
	struct json_doc d = { 0 };
	struct pdu_info *pi = xcalloc(1, sizeof *pi);
	struct hold_rec *h = xcalloc(1, sizeof *h);
	char err[200];
	int rv = (int)cfg_int(&cfg, "node", "room_version");
	if (len <= 0 || json_parse(&d, line, (size_t)len, 64) < 0 || pdu_event_id(&d, 0, rv, pi->event_id) < 0 ||
	    purg_pdu_parse(&d, line, (size_t)len, pi, err, sizeof err) < 0) {
		fprintf(stderr, "hold-json: not a PDU\n");
		return 1;
	}
	snprintf(h->room_id, sizeof h->room_id, "%s", pi->room_id);
	snprintf(h->from, sizeof h->from, "%s", optval(argc, argv, "--from", "peer.test"));
	snprintf(h->missing[0], PDU_EVENT_ID_MAX, "%s", missing);
	h->nmissing = 1;
	h->first_seen_ms = h->next_try_ms = (int64_t)time(NULL) * 1000;
	h->room_version = rv;
	h->pdu = line;
	h->pdu_len = (size_t)len;
	struct buf b;
	buf_init(&b);
	purg_hold_json(&b, h);
	char k[2 * PDU_EVENT_ID_MAX];
	size_t kn = store_key2(k, sizeof k, missing, pi->event_id);
	MDB_txn *t = store_begin(&st, 0);
	if (store_put(t, &st, DB_PURGATORY, pi->event_id, strlen(pi->event_id), b.data, b.len, 0) ||
	    store_put(t, &st, DB_MISSING_INDEX, k, kn, "", 0, 0) || store_commit(t)) {
		fprintf(stderr, "hold-json: write failed\n");
		return 1;
	}
	printf("%s\n", pi->event_id);
	buf_free(&b);
	json_doc_free(&d);
	free(pi); free(h); free(line);
	store_close(&st);
	return 0;
}

int main(int argc, char **argv)
{
	log_init("purgatory_tool", 0);
	if (sodium_init() < 0) return 111;
	if (argc < 2) { fprintf(stderr, "usage: purgatory_tool gen|submit|verdicts|check|stream|hold-json ...\n"); return 100; }
	const char *cmd = argv[1];
	argc -= 1; argv += 1;
	if (!strcmp(cmd, "gen")) return gen(argc, argv);
	if (!strcmp(cmd, "submit")) return submit(argc, argv);
	if (!strcmp(cmd, "verdicts")) return verdicts(argc, argv);
	if (!strcmp(cmd, "check")) return check(argc, argv, 0);
	if (!strcmp(cmd, "stream")) return check(argc, argv, 1);
	if (!strcmp(cmd, "hold-json")) return hold_json(argc, argv);
	fprintf(stderr, "purgatory_tool: unknown command %s\n", cmd);
	return 100;
}
