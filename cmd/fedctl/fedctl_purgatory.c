/* fedctl_purgatory.c: the operator's view of purgatoryd's tables (purgatory,
 * expired, rejects) and originating events locally (create-room, send).
 * Reads go straight to LMDB; changes to held events go through purgatoryd's
 * socket (it is their only writer) unless it is not running; new or requeued
 * events enter through the inbox and are validated like any other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "fedctl.h"
#include "core/frame.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "store/pstore.h"
#include "matrix/b64.h"
#include "core/log.h"

static void put_str(struct buf *b, const char *s) { json_put_string(b, s, strlen(s)); }

static const char *opt_arg(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc - 1; i++) if (!strcmp(argv[i], name)) return argv[i + 1];
	return NULL;
}
static int has_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++) if (!strcmp(argv[i], name)) return 1;
	return 0;
}
/* the n-th argument that is neither an option nor an option's value */
static const char *pos_arg(int argc, char **argv, int n, const char *const *with_value)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] == '-') {
			for (const char *const *w = with_value; w && *w; w++)
				if (!strcmp(argv[i], *w)) { i++; break; }
			continue;
		}
		if (n-- == 0) return argv[i];
	}
	return NULL;
}

static void age_str(char *out, size_t cap, long long ms)
{
	long long s = ms / 1000;
	if (s < 120) snprintf(out, cap, "%llds", s);
	else if (s < 7200) snprintf(out, cap, "%lldm", s / 60);
	else snprintf(out, cap, "%lldh", s / 3600);
}

/* When the room's next fetch attempt is due, as purgatoryd last wrote it
 * into the row (at hold time, and whenever an attempt starts or ends). */
static void next_str(char *out, size_t cap, long long next_ms, long long now)
{
	char a[32];
	if (next_ms <= now) { snprintf(out, cap, "now"); return; }
	age_str(a, sizeof a, next_ms - now + 999);
	snprintf(out, cap, "in %s", a);
}

/* Missing IDs of a record that are still not stored. */
static int still_missing(MDB_txn *t, struct store *s, const struct hold_rec *h)
{
	int n = 0;
	for (int i = 0; i < h->nmissing; i++) n += !store_event_exists(t, s, h->missing[i]);
	return n;
}

/* ---- listings ---- */

struct ls_ctx {
	struct fedctl *fc; struct store *s; MDB_txn *t; struct json_doc d; struct hold_rec *h;
	const char *room; int expired; long long now; int n, limit;
};

static int hold_ls_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct ls_ctx *c = arg;
	char id[PDU_EVENT_ID_MAX], age[32];
	snprintf(id, sizeof id, "%.*s", (int)k->mv_size, (char *)k->mv_data);
	if (pstore_hold_decode(&c->d, v->mv_data, v->mv_size, c->h) < 0) {
		if (!c->fc->json) printf("%-46s (unreadable row)\n", id);
		return 0;
	}
	if (c->room && strcmp(c->room, c->h->room_id)) return 0;
	if (c->limit && c->n >= c->limit) return 1;
	int sm = c->expired ? c->h->nmissing : still_missing(c->t, c->s, c->h);
	if (c->fc->json) {
		struct buf b;
		buf_init(&b);
		buf_adds(&b, c->n ? ",\n{\"event_id\":" : "{\"event_id\":");
		put_str(&b, id);
		buf_adds(&b, ",\"room_id\":"); put_str(&b, c->h->room_id);
		buf_adds(&b, ",\"from\":"); put_str(&b, c->h->from);
		buf_printf(&b, ",\"first_seen_ms\":%lld,\"missing\":%d,\"attempts\":%lld",
		           (long long)c->h->first_seen_ms, sm, (long long)c->h->attempts);
		if (!c->expired) buf_printf(&b, ",\"next_try_ms\":%lld", (long long)c->h->next_try_ms);
		if (c->expired) {
			buf_printf(&b, ",\"expired_ms\":%lld,\"reason\":", (long long)c->h->expired_ms);
			put_str(&b, c->h->reason);
		}
		buf_addc(&b, '}');
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	} else {
		age_str(age, sizeof age, c->now - (c->expired ? c->h->expired_ms : c->h->first_seen_ms));
		if (c->expired)
			printf("%-46s %-28s %6s ago  %s\n", id, c->h->room_id, age, c->h->reason);
		else {
			char next[40];
			next_str(next, sizeof next, c->h->next_try_ms, c->now);
			printf("%-46s %-28s %6s  missing %d%s  tries %lld, next %s  from %s\n", id,
			       c->h->room_id, age, sm, sm ? "" : " (waits: ACL)", (long long)c->h->attempts,
			       next, c->h->from[0] ? c->h->from : "-");
		}
	}
	c->n++;
	return 0;
}

static int list_holds(struct fedctl *fc, int db, const char *room, int limit)
{
	struct ls_ctx c = { .fc = fc, .room = room, .expired = db == DB_EXPIRED, .now = now_ms(), .limit = limit };
	c.s = fedctl_store(fc, 1);
	c.h = malloc(sizeof *c.h);
	if (!c.h) return 1;
	c.t = store_begin(c.s, 1);
	if (fc->json) printf("[");
	else printf("%-46s %-28s %6s\n", "EVENT", "ROOM", db == DB_EXPIRED ? "EXPIRED" : "HELD");
	int rc = pstore_prefix_each(c.t, c.s, db, "", 0, hold_ls_cb, &c);
	if (fc->json) printf("]\n");
	else printf("%d %s\n", c.n, db == DB_EXPIRED ? "expired" : "held");
	mdb_txn_abort(c.t);
	json_doc_free(&c.d);
	free(c.h);
	return rc ? 1 : 0;
}

static int show_hold(struct fedctl *fc, int db, const char *id)
{
	struct store *s = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(s, 1);
	MDB_val v;
	int rc = 1;
	if (store_get(t, s, db, id, strlen(id), &v)) {
		fprintf(stderr, "fedctl: %s is not %s\n", id, db == DB_EXPIRED ? "in expired" : "held in purgatory");
		goto out;
	}
	if (fc->json) {
		printf("%.*s\n", (int)v.mv_size, (char *)v.mv_data);
		rc = 0;
		goto out;
	}
	struct json_doc d = { 0 };
	struct hold_rec *h = malloc(sizeof *h);
	if (!h || pstore_hold_decode(&d, v.mv_data, v.mv_size, h) < 0) {
		fprintf(stderr, "fedctl: the row of %s is unreadable\n", id);
		free(h); json_doc_free(&d);
		goto out;
	}
	char age[32];
	age_str(age, sizeof age, now_ms() - h->first_seen_ms);
	printf("event       %s\nroom        %s (version %d)\nfrom        %s\nheld since  %lld (%s ago)\n",
	       id, h->room_id, h->room_version, h->from[0] ? h->from : "-", (long long)h->first_seen_ms, age);
	if (db == DB_EXPIRED) printf("expired     %lld\nreason      %s\n", (long long)h->expired_ms, h->reason);
	printf("attempts    %lld (fetch attempts for its room)\n", (long long)h->attempts);
	if (db != DB_EXPIRED) {
		char next[40];
		next_str(next, sizeof next, h->next_try_ms, now_ms());
		printf("next try    %lld (%s)\n", (long long)h->next_try_ms, next);
	}
	printf("missing     %d\n", h->nmissing);
	for (int i = 0; i < h->nmissing; i++) {
		const char *st = store_event_exists(t, s, h->missing[i]) ? "stored" :
		                 store_get(t, s, DB_PURGATORY, h->missing[i], strlen(h->missing[i]), &v) == 0 ?
		                 "held" : "absent";
		printf("  %-46s %s\n", h->missing[i], st);
	}
	printf("pdu         %.*s\n", (int)h->pdu_len, h->pdu);
	free(h); json_doc_free(&d);
	rc = 0;
out:
	mdb_txn_abort(t);
	return rc;
}

/* A control request to purgatoryd; 0 ok, 1 refused, -1 not running. */
static int control(struct fedctl *fc, const char *op, const char *key, const char *val, int print)
{
	struct buf b;
	struct frame f;
	buf_init(&b);
	buf_adds(&b, "{\"op\":"); put_str(&b, op);
	buf_printf(&b, ",\"%s\":", key); put_str(&b, val);
	buf_addc(&b, '}');
	int r = fedctl_request(fc, "purgatoryd", FT_FETCH_REQ, b.data, b.len, &f, 5000);
	buf_free(&b);
	if (r < 0) return -1;
	int ok = strstr(f.payload, "\"ok\":true") != NULL;
	if (!ok) {
		const char *nl = strchr(f.payload, '\n');
		fprintf(stderr, "fedctl: purgatoryd refused %s %s: %.*s\n", op, val,
		        nl ? (int)(nl - f.payload) : (int)f.len, f.payload);
	} else if (print)
		printf("%.*s\n", (int)(strchr(f.payload, '\n') ? strchr(f.payload, '\n') - f.payload : f.len), f.payload);
	frame_free(&f);
	return ok ? 0 : 1;
}

/* Drop straight from LMDB: only when purgatoryd is not running (it rebuilds
 * its indexes from the table when it starts). */
static int drop_offline(struct fedctl *fc, const char *id)
{
	struct store *s = fedctl_store(fc, 0);
	MDB_txn *t = store_begin(s, 0);
	MDB_val v;
	struct json_doc d = { 0 };
	struct hold_rec *h = malloc(sizeof *h);
	int rc = 1;
	if (!h) { mdb_txn_abort(t); return 1; }
	if (store_get(t, s, DB_PURGATORY, id, strlen(id), &v)) {
		fprintf(stderr, "fedctl: %s is not held in purgatory\n", id);
		mdb_txn_abort(t);
		goto out;
	}
	if (pstore_hold_decode(&d, v.mv_data, v.mv_size, h) < 0) h->nmissing = 0;
	int e = 0;
	for (int i = 0; i < h->nmissing && !e; i++) {
		char k[2 * PDU_EVENT_ID_MAX];
		size_t kn = store_key2(k, sizeof k, h->missing[i], id);
		if (kn && (e = store_del(t, s, DB_MISSING_INDEX, k, kn)) == MDB_NOTFOUND) e = 0;
	}
	if (!e && (e = store_del(t, s, DB_PURGATORY, id, strlen(id))) == MDB_NOTFOUND) e = 0;
	if (e) mdb_txn_abort(t);
	else e = store_commit(t);
	if (e) {
		store_write_failed(s, e);
		fprintf(stderr, "fedctl: dropping %s: %s; nothing was written (try again)\n", id,
		        e == MDB_MAP_FULL ? "the store is full" : mdb_strerror(e));
	}
	rc = e ? 1 : 0;
out:
	json_doc_free(&d);
	free(h);
	return rc;
}

static int cmd_purgatory(struct fedctl *fc, int argc, char **argv)
{
	static const char *const wv[] = { "--room", "--limit", NULL };
	const char *sub = pos_arg(argc, argv, 0, wv), *arg = pos_arg(argc, argv, 1, wv);
	if (!sub || !strcmp(sub, "ls")) {
		const char *lim = opt_arg(argc, argv, "--limit");
		return list_holds(fc, DB_PURGATORY, opt_arg(argc, argv, "--room"), lim ? atoi(lim) : 0);
	}
	if (!arg) { fprintf(stderr, "usage: fedctl purgatory ls [--room R] | show ID | retry ROOM | drop ID\n"); return 100; }
	if (!strcmp(sub, "show")) return show_hold(fc, DB_PURGATORY, arg);
	if (!strcmp(sub, "retry")) {
		int r = control(fc, "retry", "room_id", arg, fc->json);
		if (r < 0) fprintf(stderr, "fedctl: purgatoryd is not running; it asks for every held room when it starts\n");
		else if (r == 0 && !fc->json) printf("room %s: fetch started\n", arg);
		return r ? 1 : 0;
	}
	if (!strcmp(sub, "drop")) {
		int saved = fc->json;
		fc->json = 1;                         /* quiet "not running": we fall back */
		int r = control(fc, "drop", "event_id", arg, saved);
		fc->json = saved;
		if (r < 0) r = drop_offline(fc, arg);
		if (r == 0 && !fc->json) printf("dropped %s\n", arg);
		return r ? 1 : 0;
	}
	fprintf(stderr, "fedctl: unknown purgatory subcommand '%s'\n", sub);
	return 100;
}
FEDCTL_COMMAND(purgatory_cmd, "purgatory", "purgatory ls [--room R]|show ID|retry ROOM|drop ID",
               "events held until their prev/auth events arrive", cmd_purgatory)

/* Send FT_EVENT frames for inbox rows to validated, if it runs (it rescans
 * the inbox anyway: this is only the fast path). */
static void notify_validated(struct fedctl *fc, const uint64_t *seqs, char **bytes,
                             const size_t *lens, size_t n)
{
	int fd = frame_connect_stage(cfg_str(&fc->cfg, "node", "run_dir"), "validated");
	if (fd < 0) {
		if (!fc->json)
			fprintf(stderr, "fedctl: validated is not running; the event waits in the inbox\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (frame_write_fd(fd, FT_EVENT, 0, seqs[i], bytes[i], lens[i]) < 0) break;
	close(fd);
}

static int cmd_expired(struct fedctl *fc, int argc, char **argv)
{
	static const char *const wv[] = { "--limit", NULL };
	const char *sub = pos_arg(argc, argv, 0, wv), *arg = pos_arg(argc, argv, 1, wv);
	if (!sub || !strcmp(sub, "ls")) {
		const char *lim = opt_arg(argc, argv, "--limit");
		return list_holds(fc, DB_EXPIRED, NULL, lim ? atoi(lim) : 0);
	}
	if (!strcmp(sub, "show") && arg) return show_hold(fc, DB_EXPIRED, arg);
	if (strcmp(sub, "requeue") || (!arg && !has_flag(argc, argv, "--all"))) {
		fprintf(stderr, "usage: fedctl expired ls | show ID | requeue ID | requeue --all\n");
		return 100;
	}
	struct store *s = fedctl_store(fc, 0);
	/* the IDs first (a read txn), then small write txns with progress */
	char (*ids)[PDU_EVENT_ID_MAX] = NULL;
	size_t n = 0, cap = 0;
	if (arg) {
		ids = malloc(sizeof *ids);
		snprintf(ids[0], PDU_EVENT_ID_MAX, "%s", arg);
		n = 1;
	} else {
		MDB_txn *t = store_begin(s, 1);
		MDB_cursor *c;
		MDB_val k, v;
		mdb_cursor_open(t, s->dbi[DB_EXPIRED], &c);
		for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (k.mv_size >= PDU_EVENT_ID_MAX) continue;
			if (n == cap) { cap = cap ? cap * 2 : 64; ids = realloc(ids, cap * sizeof *ids); }
			snprintf(ids[n++], PDU_EVENT_ID_MAX, "%.*s", (int)k.mv_size, (char *)k.mv_data);
		}
		mdb_cursor_close(c);
		mdb_txn_abort(t);
	}
	size_t done = 0, failed = 0;
	struct buf pdu;
	buf_init(&pdu);
	for (size_t i = 0; i < n; ) {
		uint64_t seqs[256];
		char *bytes[256];
		size_t lens[256], m = 0, first = i;
		MDB_txn *t = store_begin(s, 0);
		int werr = 0;
		for (; i < n && m < 256; i++) {
			int rc = pstore_requeue_expired(t, s, ids[i], &seqs[m], &pdu);
			if (rc && rc != MDB_NOTFOUND && rc != MDB_CORRUPTED) { werr = rc; break; }
			if (rc) {
				fprintf(stderr, "fedctl: cannot requeue %s: %s\n", ids[i],
				        rc == MDB_NOTFOUND ? "not in expired" : mdb_strerror(rc));
				failed++;
				continue;
			}
			bytes[m] = strdup(pdu.data);
			lens[m] = pdu.len;
			m++;
		}
		if (werr) mdb_txn_abort(t);
		else werr = store_commit(t);
		if (werr) {
			for (size_t j = 0; j < m; j++) free(bytes[j]);
			if (fedctl_write_failed(fc, werr, "requeueing expired events")) { i = first; continue; }
			buf_free(&pdu);
			free(ids);
			return 1;
		}
		notify_validated(fc, seqs, bytes, lens, m);
		for (size_t j = 0; j < m; j++) free(bytes[j]);
		done += m;
		if (n > 1) fedctl_progress("requeued", (long long)done, (long long)n);
	}
	buf_free(&pdu);
	free(ids);
	if (fc->json) printf("{\"requeued\":%zu,\"failed\":%zu}\n", done, failed);
	else printf("requeued %zu event%s%s\n", done, done == 1 ? "" : "s",
	            failed ? " (some failed)" : "");
	return failed ? 1 : 0;
}
FEDCTL_COMMAND(expired_cmd, "expired", "expired ls|show ID|requeue ID|requeue --all",
               "held events that expired (dead letters); requeue sends them back through validated", cmd_expired)

static int rejects_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct ls_ctx *c = arg;
	if (c->limit && c->n >= c->limit) return 1;
	if (c->fc->json) {
		printf("%s{\"seq\":%llu,\"record\":%.*s}", c->n ? ",\n" : "", (unsigned long long)be64_get(k->mv_data),
		       (int)v->mv_size, (char *)v->mv_data);
	} else {
		char id[PDU_EVENT_ID_MAX] = "-", reason[64] = "", from[256] = "", msg[160] = "", age[32];
		if (json_parse(&c->d, v->mv_data, v->mv_size, 8) == 0) {
			int t;
			if ((t = json_obj_get(&c->d, 0, "event_id")) >= 0 && json_str_len(&c->d, t)) json_str_copy(&c->d, t, id, sizeof id);
			if ((t = json_obj_get(&c->d, 0, "reason")) >= 0) json_str_copy(&c->d, t, reason, sizeof reason);
			if ((t = json_obj_get(&c->d, 0, "from")) >= 0) json_str_copy(&c->d, t, from, sizeof from);
			if ((t = json_obj_get(&c->d, 0, "message")) >= 0) json_str_copy(&c->d, t, msg, sizeof msg);
			t = json_obj_get(&c->d, 0, "at_ms");
			age_str(age, sizeof age, t >= 0 ? c->now - c->d.tok[t].ival : 0);
		}
		printf("%-8llu %-46s %-20s %6s ago from %s: %s\n", (unsigned long long)be64_get(k->mv_data), id,
		       reason, age, from[0] ? from : "-", msg);
	}
	c->n++;
	return 0;
}

static int cmd_rejects(struct fedctl *fc, int argc, char **argv)
{
	static const char *const wv[] = { "--limit", NULL };
	const char *sub = pos_arg(argc, argv, 0, wv);
	if (sub && strcmp(sub, "ls")) { fprintf(stderr, "usage: fedctl rejects ls [--limit N]\n"); return 100; }
	const char *lim = opt_arg(argc, argv, "--limit");
	struct ls_ctx c = { .fc = fc, .now = now_ms(), .limit = lim ? atoi(lim) : 0 };
	struct store *s = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(s, 1);
	if (fc->json) printf("[");
	int rc = pstore_prefix_each(t, s, DB_REJECTS, "", 0, rejects_cb, &c);
	if (fc->json) printf("]\n");
	else printf("%d rejected\n", c.n);
	mdb_txn_abort(t);
	json_doc_free(&c.d);
	return rc ? 1 : 0;
}
FEDCTL_COMMAND(rejects_cmd, "rejects", "rejects ls [--limit N]", "events validated rejected, with reason and origin", cmd_rejects)

/* ---- originating events ---- */

struct origin_ctx {
	struct fedctl *fc;
	struct signing_key key;
	const char *server;
	char sender[300];
};

static int origin_init(struct fedctl *fc, struct origin_ctx *o, int argc, char **argv)
{
	char err[256];
	o->fc = fc;
	if (sodium_init() < 0) { fprintf(stderr, "fedctl: libsodium failed\n"); return 111; }
	if (signing_key_load(&o->key, cfg_str(&fc->cfg, "node", "signing_key"), err, sizeof err) < 0) {
		fprintf(stderr, "fedctl: signing key: %s (fedctl keygen makes one)\n", err);
		return 100;
	}
	o->server = cfg_str(&fc->cfg, "node", "server_name");
	const char *lp = opt_arg(argc, argv, "--sender");
	snprintf(o->sender, sizeof o->sender, "@%s:%s", lp ? lp : "admin", o->server);
	return 0;
}

/* Sign ev (an event without hashes/signatures), then either print it
 * (--no-submit) or put it in the inbox and tell validated. */
static int originate(struct origin_ctx *o, const struct buf *ev, int rv, int submit, char *event_id)
{
	struct buf out;
	buf_init(&out);
	if (pdu_sign(ev->data, ev->len, rv, o->server, o->key.key_id, o->key.sk, &out, event_id) < 0) {
		fprintf(stderr, "fedctl: signing the event failed\n");
		buf_free(&out);
		return 1;
	}
	if (out.len > PDU_MAX_BYTES) {
		fprintf(stderr, "fedctl: the event is %zu bytes, over the %d-byte PDU limit\n", out.len, PDU_MAX_BYTES);
		buf_free(&out);
		return 1;
	}
	if (!submit) { printf("%s\n", out.data); buf_free(&out); return 0; }
	struct store *s = fedctl_store(o->fc, 0);
	uint64_t seq;
	for (;;) {
		MDB_txn *t = store_begin(s, 0);
		int rc = store_inbox_put(t, s, o->server, out.data, out.len, &seq);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);       /* a failed commit frees the txn */
		if (!rc) break;
		if (!fedctl_write_failed(o->fc, rc, "putting the event in the inbox")) {
			buf_free(&out);
			return 1;
		}
	}
	char *b = out.data;
	notify_validated(o->fc, &seq, &b, &out.len, 1);
	buf_free(&out);
	return 0;
}

static void rand_id(char *out, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	for (size_t i = 0; i + 1 < n; i++) out[i] = al[randombytes_uniform(sizeof al - 1)];
	out[n - 1] = 0;
}

static int cmd_create_room(struct fedctl *fc, int argc, char **argv)
{
	struct origin_ctx o;
	int rc = origin_init(fc, &o, argc, argv);
	if (rc) return rc;
	const char *rvs = opt_arg(argc, argv, "--room-version");
	int rv = rvs ? atoi(rvs) : (int)cfg_int(&fc->cfg, "node", "room_version");
	if (rv != 10 && rv != 11) { fprintf(stderr, "fedctl: room version %d is not supported (10 or 11)\n", rv); return 100; }
	int submit = !has_flag(argc, argv, "--no-submit");
	char rid[19], room[300], create[PDU_EVENT_ID_MAX], member[PDU_EVENT_ID_MAX];
	rand_id(rid, sizeof rid);
	snprintf(room, sizeof room, "!%s:%s", rid, o.server);
	long long ts = now_ms();
	struct buf ev;
	buf_init(&ev);
	/* v11 dropped content.creator: the sender is the creator */
	buf_adds(&ev, "{\"auth_events\":[],\"content\":{");
	if (rv == 10) { buf_adds(&ev, "\"creator\":"); put_str(&ev, o.sender); buf_addc(&ev, ','); }
	buf_printf(&ev, "\"room_version\":\"%d\"},\"depth\":1,\"origin\":", rv);
	put_str(&ev, o.server);
	buf_printf(&ev, ",\"origin_server_ts\":%lld,\"prev_events\":[],\"room_id\":", ts);
	put_str(&ev, room);
	buf_adds(&ev, ",\"sender\":"); put_str(&ev, o.sender);
	buf_adds(&ev, ",\"state_key\":\"\",\"type\":\"m.room.create\"}");
	if ((rc = originate(&o, &ev, rv, submit, create))) goto out;
	/* the creator's join: prev and auth = the create event */
	buf_reset(&ev);
	buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":{\"membership\":\"join\"},\"depth\":2,\"origin\":", create);
	put_str(&ev, o.server);
	buf_printf(&ev, ",\"origin_server_ts\":%lld,\"prev_events\":[\"%s\"],\"room_id\":", ts, create);
	put_str(&ev, room);
	buf_adds(&ev, ",\"sender\":"); put_str(&ev, o.sender);
	buf_adds(&ev, ",\"state_key\":"); put_str(&ev, o.sender);
	buf_adds(&ev, ",\"type\":\"m.room.member\"}");
	if ((rc = originate(&o, &ev, rv, submit, member))) goto out;
	if (fc->json) printf("{\"room_id\":\"%s\",\"create_event\":\"%s\",\"member_event\":\"%s\"}\n", room, create, member);
	else if (submit) printf("%s\n%s\n", room, create);
out:
	buf_free(&ev);
	return rc;
}
FEDCTL_COMMAND(create_room_cmd, "create-room", "create-room [--room-version N] [--sender LOCAL] [--no-submit]",
               "create a room (create + join events, signed with the node key)", cmd_create_room)

static int cmd_send(struct fedctl *fc, int argc, char **argv)
{
	static const char *const wv[] = { "--state-key", "--sender", NULL };
	const char *room = pos_arg(argc, argv, 0, wv), *type = pos_arg(argc, argv, 1, wv),
	           *content = pos_arg(argc, argv, 2, wv), *sk = opt_arg(argc, argv, "--state-key");
	if (!room || !type || !content) {
		fprintf(stderr, "usage: fedctl send ROOM TYPE JSON [--state-key K] [--sender LOCAL] [--no-submit]\n");
		return 100;
	}
	struct json_doc d = { 0 };
	if (json_parse(&d, content, strlen(content), 32) < 0 || d.tok[0].type != JSON_OBJECT) {
		fprintf(stderr, "fedctl: content is not a strict JSON object: %s at byte %u\n",
		        json_err_str(d.err), d.err_off);
		json_doc_free(&d);
		return 100;
	}
	struct buf canon;
	buf_init(&canon);
	json_canonical(&d, 0, &canon, NULL, NULL);
	json_doc_free(&d);
	struct origin_ctx o;
	int rc = origin_init(fc, &o, argc, argv);
	if (rc) { buf_free(&canon); return rc; }
	struct store *s = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(s, 1);
	int rv = 0;
	uint64_t maxd;
	char create[PDU_EVENT_ID_MAX], ext[10][PDU_EVENT_ID_MAX];
	int64_t depths[10];
	if (pstore_room_get(t, s, room, &rv, &maxd, create, sizeof create) || !create[0]) {
		fprintf(stderr, "fedctl: room %s is not known here (its create event is not stored yet)\n", room);
		mdb_txn_abort(t);
		buf_free(&canon);
		return 1;
	}
	int ne = pstore_extremities(t, s, room, ext, depths, 10);
	mdb_txn_abort(t);
	if (!ne) {
		fprintf(stderr, "fedctl: room %s has no forward extremities stored\n", room);
		buf_free(&canon);
		return 1;
	}
	int64_t depth = 0;
	for (int i = 0; i < ne; i++) if (depths[i] > depth) depth = depths[i];
	struct buf ev;
	buf_init(&ev);
	buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":", create);
	buf_add(&ev, canon.data, canon.len);
	buf_printf(&ev, ",\"depth\":%lld,\"origin\":", (long long)depth + 1);
	put_str(&ev, o.server);
	buf_printf(&ev, ",\"origin_server_ts\":%lld,\"prev_events\":[", now_ms());
	for (int i = 0; i < ne; i++) buf_printf(&ev, "%s\"%s\"", i ? "," : "", ext[i]);
	buf_adds(&ev, "],\"room_id\":"); put_str(&ev, room);
	buf_adds(&ev, ",\"sender\":"); put_str(&ev, o.sender);
	if (sk) { buf_adds(&ev, ",\"state_key\":"); put_str(&ev, sk); }
	buf_adds(&ev, ",\"type\":"); put_str(&ev, type);
	buf_addc(&ev, '}');
	char id[PDU_EVENT_ID_MAX];
	int submit = !has_flag(argc, argv, "--no-submit");
	rc = originate(&o, &ev, rv ? rv : (int)cfg_int(&fc->cfg, "node", "room_version"), submit, id);
	if (!rc && submit) {
		if (fc->json) printf("{\"event_id\":\"%s\"}\n", id);
		else printf("%s\n", id);
	}
	buf_free(&ev);
	buf_free(&canon);
	return rc;
}
FEDCTL_COMMAND(send_cmd, "send", "send ROOM TYPE JSON [--state-key K] [--sender LOCAL] [--no-submit]",
               "originate an event (prev = the room's forward extremities), signed with the node key", cmd_send)
