/* fedctl_feed.c: `fedctl feed ...`: the outbox as the operator sees it
 * (status, dead letters, retry) and the feed consumers: tail prints events
 * as JSON lines; apply is the applier pattern users copy (feed/feed_apply:
 * applied_events, the consumer's own writes and its cursor in ONE txn of the
 * consumer's own LMDB, then ack; an event already applied is skipped but the
 * cursor still advances and the ack is still sent). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fedctl.h"
#include "feed/feed_apply.h"
#include "feed/feed_fleet.h"
#include "feed/feed_source.h"
#include "core/frame.h"
#include "matrix/json.h"
#include "core/log.h"
#include "store/outbox.h"

static void feed_usage(FILE *f)
{
	fprintf(f,
	"usage: fedctl feed status                     outbox counts, cursor, lease\n"
	"       fedctl feed dead                       rows moved to feed_dead\n"
	"       fedctl feed retry ID|POS               move a dead row back to the outbox\n"
	"       fedctl feed tail [--source file:DIR|nats:SUBJECT|local] [--since N] [--limit N] [--follow]\n"
	"       fedctl feed apply --into DIR [--source ...] [--consumer NAME] [--idle MS] [--follow]\n"
	"  common: --nats-url URL, --durable NAME (nats apply; default [feed] nats_durable)\n");
}

static int count_db(MDB_txn *t, struct store *st, int db, uint64_t *pending, uint64_t *published)
{
	struct store_iter it;
	uint64_t n = 0;
	if (store_iter_open(&it, t, st, db, NULL, 0)) return 0;
	while (store_iter_next(&it) == 1) {
		n++;
		if (pending) {
			struct outbox_row r;
			if (outbox_row_parse(it.v.mv_data, it.v.mv_size, &r) == 0 && r.control_version) (*published)++;
			else (*pending)++;
		}
	}
	store_iter_close(&it);
	return (int)n;
}

static int feed_status(struct fedctl *fc)
{
	struct store *st = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(st, 1);
	uint64_t pending = 0, published = 0;
	count_db(t, st, DB_OUTBOX, &pending, &published);
	int dead = count_db(t, st, DB_FEED_DEAD, NULL, NULL);
	uint64_t cur = outbox_cursor_get(t, st);
	struct buf lease, head;
	struct lease_rec l;
	buf_init(&lease);
	buf_init(&head);
	if (outbox_lease_get(t, st, &l) == 0) outbox_lease_encode(&lease, &l);
	else buf_adds(&lease, "null");
	/* The first pending row says why the feed is stuck, if it is. */
	struct store_iter it;
	unsigned char kb[8];
	be64_put(kb, cur);
	if (store_iter_open(&it, t, st, DB_OUTBOX, NULL, 0) == 0) {
		store_iter_from(&it, kb, 8);
		while (store_iter_next(&it) == 1) {
			struct outbox_row r;
			int ok = outbox_row_parse(it.v.mv_data, it.v.mv_size, &r) == 0;
			if (ok && r.control_version) continue;
			if (ok) outbox_row_encode(&head, &r);
			break;
		}
	}
	store_iter_close(&it);
	mdb_txn_abort(t);
	if (!head.len) buf_adds(&head, "null");
	if (fc->json)
		printf("{\"cursor\":%llu,\"dead\":%d,\"first_pending\":%.*s,\"lease\":%.*s,\"pending\":%llu,\"published\":%llu}\n",
		       (unsigned long long)cur, dead, (int)head.len, head.data, (int)lease.len, lease.data,
		       (unsigned long long)pending, (unsigned long long)published);
	else
		printf("outbox: %llu published, %llu pending, %d dead; cursor %llu\nlease: %.*s\nfirst pending: %.*s\n",
		       (unsigned long long)published, (unsigned long long)pending, dead, (unsigned long long)cur,
		       (int)lease.len, lease.data, (int)head.len, head.data);
	buf_free(&lease);
	buf_free(&head);
	return 0;
}

static int feed_dead(struct fedctl *fc)
{
	struct store *st = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(st, 1);
	struct store_iter it;
	struct buf b;
	int n = 0;
	buf_init(&b);
	if (store_iter_open(&it, t, st, DB_FEED_DEAD, NULL, 0) == 0) {
		while (store_iter_next(&it) == 1) {
			uint64_t pos;
			struct outbox_row r;
			if (outbox_key_pos(&it.k, &pos) < 0 || outbox_row_parse(it.v.mv_data, it.v.mv_size, &r) < 0)
				continue;
			if (fc->json) {
				buf_reset(&b);
				outbox_row_encode(&b, &r);
				printf("{\"pos\":%llu,\"row\":%.*s}\n", (unsigned long long)pos, (int)b.len, b.data);
			} else
				printf("%llu\t%s\tattempts=%lld\t%s\n", (unsigned long long)pos, r.event_id,
				       (long long)r.attempts, r.last_error);
			n++;
		}
	}
	store_iter_close(&it);
	mdb_txn_abort(t);
	buf_free(&b);
	if (!fc->json && n == 0) printf("no dead rows\n");
	return 0;
}

static void wake_feedpump(struct fedctl *fc, uint64_t pos)
{
	int fd = frame_connect_stage(cfg_str(&fc->cfg, "node", "run_dir"), "feedpump");
	if (fd < 0) return;       /* not running: it drains from the cursor when it starts */
	char w[64];
	int n = snprintf(w, sizeof w, "{\"outbox\":%llu}", (unsigned long long)pos);
	signal(SIGPIPE, SIG_IGN);
	frame_write_fd(fd, FT_WAKEUP, 0, 0, w, (size_t)n);
	close(fd);
}

static int feed_retry(struct fedctl *fc, const char *id)
{
	struct store *st = fedctl_store(fc, 0);
	MDB_txn *t = store_begin(st, 0);
	struct store_iter it;
	uint64_t pos = 0;
	struct outbox_row r;
	int found = 0;
	char *end;
	unsigned long long want = strtoull(id, &end, 10);
	int numeric = *id && !*end;
	if (store_iter_open(&it, t, st, DB_FEED_DEAD, NULL, 0) == 0) {
		while (store_iter_next(&it) == 1) {
			if (outbox_key_pos(&it.k, &pos) < 0 || outbox_row_parse(it.v.mv_data, it.v.mv_size, &r) < 0)
				continue;
			if ((numeric && pos == want) || strcmp(r.event_id, id) == 0) { found = 1; break; }
		}
	}
	store_iter_close(&it);
	if (!found) {
		mdb_txn_abort(t);
		fprintf(stderr, "fedctl: %s is not in feed_dead (fedctl feed dead lists them)\n", id);
		return 1;
	}
	r.attempts = 0;          /* a fresh budget; last_error stays for the record */
	int rc = outbox_row_put(t, st, DB_OUTBOX, pos, &r);
	if (!rc) rc = outbox_row_del(t, st, DB_FEED_DEAD, pos);
	/* Rewind the cursor so the drainer sees the row again. */
	if (!rc && outbox_cursor_get(t, st) > pos) rc = outbox_cursor_put(t, st, pos);
	if (rc) mdb_txn_abort(t);
	else rc = store_commit(t);            /* a failed commit frees the txn */
	if (rc) {
		if (fedctl_write_failed(fc, rc, "requeueing the dead row")) return feed_retry(fc, id);
		return 1;
	}
	wake_feedpump(fc, pos);
	if (fc->json) printf("{\"event_id\":\"%s\",\"pos\":%llu,\"requeued\":true}\n", r.event_id, (unsigned long long)pos);
	else printf("requeued outbox %llu (%s)\n", (unsigned long long)pos, r.event_id);
	return 0;
}

struct feed_args {
	const char *source, *into, *consumer, *nats_url, *durable;
	uint64_t since;
	long long limit, idle_ms;
	int follow;
};

static struct feed_source *open_source(struct fedctl *fc, struct feed_args *a, struct feed_opts *o, int durable)
{
	/* A fleet: nats sources read the fleet stream on the fleet's NATS (the
	 * durable stays [feed] nats_durable: never a node's own apply consumer) */
	int fleet = feed_fleet_on(&fc->cfg);
	if (fleet) feed_opts_fleet(o, &fc->cfg, NULL);
	else feed_opts_from_config(o, &fc->cfg);
	if (a->nats_url) o->nats_url = a->nats_url;
	o->nats_durable = durable ? (a->durable ? a->durable : cfg_str(&fc->cfg, "feed", "nats_durable")) : NULL;
	static char spec[1200];
	if (a->source) snprintf(spec, sizeof spec, "%s", a->source);
	else if (fleet) snprintf(spec, sizeof spec, "nats:%s", o->nats_subject);
	else {
		const char *sink = cfg_str(&fc->cfg, "feed", "sink");
		if (!strcmp(sink, "file")) snprintf(spec, sizeof spec, "file:%s", o->dir);
		else if (!strcmp(sink, "nats")) snprintf(spec, sizeof spec, "nats:%s", o->nats_subject);
		else snprintf(spec, sizeof spec, "local");
	}
	struct store *st = strncmp(spec, "local", 5) == 0 ? fedctl_store(fc, 1) : NULL;
	char err[512];
	struct feed_source *s = feed_source_open(spec, o, st, err, sizeof err);
	if (!s) fprintf(stderr, "fedctl: %s\n", err);
	return s;
}


static int feed_tail(struct fedctl *fc, struct feed_args *a)
{
	struct feed_opts o;
	struct feed_source *s = open_source(fc, a, &o, 0);
	if (!s) return 1;
	signal(SIGPIPE, SIG_IGN);
	uint64_t since = a->since;
	long long printed = 0;
	int rc = 0;
	struct buf line;
	buf_init(&line);
	for (;;) {
		struct feed_item *it;
		size_t n;
		char err[512];
		size_t max = 256;
		if (a->limit > 0 && (long long)max > a->limit - printed) max = (size_t)(a->limit - printed);
		if (feed_source_poll(s, since, max, a->follow ? 1000 : 200, &it, &n, err, sizeof err) < 0) {
			fprintf(stderr, "fedctl: %s\n", err);
			rc = 1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			buf_reset(&line);
			buf_add(&line, it[i].json, it[i].json_len);
			buf_addc(&line, '\n');
			if (frame_write_all(1, line.data, line.len) < 0) { feed_items_free(it, n); goto out; }  /* reader gone */
			if (it[i].cv > since) since = it[i].cv;
			printed++;
		}
		feed_items_free(it, n);
		if (a->limit > 0 && printed >= a->limit) break;
		if (n == 0 && !a->follow) break;
	}
out:
	buf_free(&line);
	feed_source_close(s);
	return rc;
}

/* ---- apply: the consumer's own LMDB in DIR ---- */

struct consumer_db { MDB_env *env; MDB_dbi applied, data, cursor; };

static int consumer_open(struct consumer_db *c, const char *dir)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) { fprintf(stderr, "fedctl: %s: %s\n", dir, strerror(errno)); return -1; }
	MDB_txn *t;
	int rc;
	if ((rc = mdb_env_create(&c->env)) || (rc = mdb_env_set_maxdbs(c->env, 8))
	    || (rc = mdb_env_set_mapsize(c->env, (size_t)1 << 32)) || (rc = mdb_env_open(c->env, dir, 0, 0644))) {
		fprintf(stderr, "fedctl: consumer store %s: %s\n", dir, mdb_strerror(rc));
		return -1;
	}
	int dead;
	mdb_reader_check(c->env, &dead);
	if ((rc = mdb_txn_begin(c->env, NULL, 0, &t))) return -1;
	if ((rc = mdb_dbi_open(t, "applied_events", MDB_CREATE, &c->applied))
	    || (rc = mdb_dbi_open(t, "data", MDB_CREATE, &c->data))
	    || (rc = mdb_dbi_open(t, "cursor", MDB_CREATE, &c->cursor))
	    || (rc = mdb_txn_commit(t))) {
		fprintf(stderr, "fedctl: consumer store %s: %s\n", dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/* The consumer's own LMDB as the applier's target: data[event_id] = the
 * feed's JSON line, the cursor under the consumer's name. */
struct consumer_tg { struct consumer_db *db; const char *name; };

static MDB_txn *ctg_begin(void *arg)
{
	struct consumer_tg *c = arg;
	MDB_txn *t;
	return mdb_txn_begin(c->db->env, NULL, 0, &t) ? NULL : t;
}

static int ctg_commit(void *arg, MDB_txn *t) { return mdb_txn_commit(t); }

static int ctg_apply(void *arg, MDB_txn *t, const struct feed_item *it, char *err, size_t errlen)
{
	struct consumer_tg *c = arg;
	MDB_val dk = { strlen(it->event_id), (void *)it->event_id }, dv = { it->json_len, it->json };
	return mdb_put(t, c->db->data, &dk, &dv, 0);
}

static int ctg_cursor_put(void *arg, MDB_txn *t, uint64_t cursor)
{
	struct consumer_tg *c = arg;
	unsigned char cb[8];
	be64_put(cb, cursor);
	MDB_val k = { strlen(c->name), (void *)c->name }, v = { 8, cb };
	return mdb_put(t, c->db->cursor, &k, &v, 0);
}

static int feed_apply(struct fedctl *fc, struct feed_args *a)
{
	if (!a->into) { fprintf(stderr, "fedctl: feed apply needs --into DIR\n"); return EXIT_CONFIG; }
	const char *consumer = a->consumer ? a->consumer : "apply";
	struct consumer_db db;
	if (consumer_open(&db, a->into) < 0) return 1;
	struct feed_opts o;
	struct feed_source *s = open_source(fc, a, &o, 1);
	if (!s) { mdb_env_close(db.env); return 1; }

	struct consumer_tg ctg = { &db, consumer };
	struct feed_apply ap = {
		.src = s, .consumer = consumer, .verbose = fc->verbose,
		.tg = { .arg = &ctg, .begin = ctg_begin, .commit = ctg_commit, .applied = db.applied,
		        .apply = ctg_apply, .cursor_put = ctg_cursor_put },
	};
	feed_apply_init(&ap);
	MDB_txn *t;
	MDB_val k = { strlen(consumer), (void *)consumer }, v;
	if (mdb_txn_begin(db.env, NULL, MDB_RDONLY, &t)) {
		fprintf(stderr, "fedctl: consumer store %s: cannot read the cursor\n", a->into);
		feed_source_close(s);
		mdb_env_close(db.env);
		return 1;
	}
	if (mdb_get(t, db.cursor, &k, &v) == 0 && v.mv_size == 8) ap.cursor = be64_get(v.mv_data);
	mdb_txn_abort(t);

	long long idle_start = mono_ms();
	int rc = 0;
	for (;;) {
		char err[512];
		int n = feed_apply_step(&ap, 64, 500, err, sizeof err);
		if (n < 0) {
			fprintf(stderr, "fedctl: %s\n", err);
			rc = 1;
			break;
		}
		if (n == 0) {
			if (!a->follow && mono_ms() - idle_start >= a->idle_ms) break;
			if (!strncmp(s->ops->name, "nats", 4)) continue;   /* the fetch already waited */
			usleep(100000);
			continue;
		}
		idle_start = mono_ms();
	}
	feed_source_close(s);
	mdb_env_close(db.env);
	if (fc->json)
		printf("{\"applied\":%lld,\"consumer\":\"%s\",\"cursor\":%llu,\"skipped\":%lld}\n",
		       ap.applied, consumer, (unsigned long long)ap.cursor, ap.skipped);
	else
		printf("applied %lld, skipped %lld (already applied), cursor %llu\n", ap.applied, ap.skipped,
		       (unsigned long long)ap.cursor);
	return rc;
}

static int cmd_feed(struct fedctl *fc, int argc, char **argv)
{
	if (argc < 2) { feed_usage(stderr); return EXIT_CONFIG; }
	const char *sub = argv[1];
	if (!strcmp(sub, "status")) return feed_status(fc);
	if (!strcmp(sub, "dead")) return feed_dead(fc);
	if (!strcmp(sub, "retry")) {
		if (argc != 3) { feed_usage(stderr); return EXIT_CONFIG; }
		return feed_retry(fc, argv[2]);
	}
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) { feed_usage(stdout); return 0; }
	struct feed_args a = { .idle_ms = 1000 };
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--follow") || !strcmp(o, "-f")) { a.follow = 1; continue; }
		if (!v) { fprintf(stderr, "fedctl feed: %s needs a value\n", o); return EXIT_CONFIG; }
		i++;
		if (!strcmp(o, "--source")) a.source = v;
		else if (!strcmp(o, "--since")) a.since = strtoull(v, NULL, 10);
		else if (!strcmp(o, "--limit")) a.limit = atoll(v);
		else if (!strcmp(o, "--into")) a.into = v;
		else if (!strcmp(o, "--consumer")) a.consumer = v;
		else if (!strcmp(o, "--nats-url")) a.nats_url = v;
		else if (!strcmp(o, "--durable")) a.durable = v;
		else if (!strcmp(o, "--idle")) a.idle_ms = v[strspn(v, "0123456789")] ? cfg_parse_ms(v) : atoll(v);   /* bare number: ms */
		else { fprintf(stderr, "fedctl feed: unknown option %s\n", o); feed_usage(stderr); return EXIT_CONFIG; }
	}
	if (!strcmp(sub, "tail")) return feed_tail(fc, &a);
	if (!strcmp(sub, "apply")) return feed_apply(fc, &a);
	fprintf(stderr, "fedctl feed: unknown subcommand %s\n", sub);
	feed_usage(stderr);
	return EXIT_CONFIG;
}

FEDCTL_COMMAND(feed_cmd, "feed", "feed status|dead|retry ID|tail|apply --into DIR",
               "the outbox feed: status, dead letters, tail and apply consumers", cmd_feed)
