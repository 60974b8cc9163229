/* fedctl_purgatory.c: the operator's view of purgatoryd's tables (purgatory,
 * expired, rejects). Reads go straight to LMDB; changes to held events go
 * through purgatoryd's socket (FT_PURG_CTL: it is their only writer) unless
 * it is not running; requeued events enter through the inbox and are
 * validated like any other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fedctl_args.h"
#include "core/frame.h"
#include "matrix/pdu.h"
#include "store/purgatory.h"
#include "core/log.h"
#include "core/xalloc.h"

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

/* One listing line for the row (k, v); 1 = the limit is reached: stop. */
static int hold_ls_row(struct ls_ctx *c, const MDB_val *k, const MDB_val *v)
{
	char id[PDU_EVENT_ID_MAX], age[32];
	snprintf(id, sizeof id, "%.*s", (int)k->mv_size, (char *)k->mv_data);
	if (purg_hold_decode(&c->d, v->mv_data, v->mv_size, c->h) < 0) {
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
	struct store_iter it;
	c.s = fedctl_store(fc, 1);
	c.h = xmalloc(sizeof *c.h);
	c.t = store_begin(c.s, 1);
	if (fc->json) printf("[");
	else printf("%-46s %-28s %6s\n", "EVENT", "ROOM", db == DB_EXPIRED ? "EXPIRED" : "HELD");
	int rc = store_iter_open(&it, c.t, c.s, db, NULL, 0);
	while (!rc && store_iter_next(&it) == 1 && !hold_ls_row(&c, &it.k, &it.v))
		;
	if (!rc) rc = it.rc;
	store_iter_close(&it);
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
	struct json_doc d = { 0 };
	struct hold_rec *h = xmalloc(sizeof *h);
	int rc = purg_hold_get(t, s, db, id, &d, h);
	if (rc == MDB_CORRUPTED) {
		fprintf(stderr, "fedctl: the row of %s is unreadable\n", id);
		rc = 1;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "fedctl: %s is not %s\n", id, db == DB_EXPIRED ? "in expired" : "held in purgatory");
		rc = 1;
		goto out;
	}
	if (fc->json) {
		struct buf b;
		buf_init(&b);
		purg_hold_json(&b, h);
		printf("%.*s\n", (int)b.len, b.data);
		buf_free(&b);
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
out:
	free(h);
	json_doc_free(&d);
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
	int r = fedctl_request(fc, "purgatoryd", FT_PURG_CTL, b.data, b.len, &f, 5000);
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
	struct json_doc d = { 0 };
	struct hold_rec *h = xmalloc(sizeof *h);
	int rc = 1;
	int e = purg_hold_get(t, s, DB_PURGATORY, id, &d, h);
	if (e && e != MDB_CORRUPTED) {
		fprintf(stderr, "fedctl: %s is not held in purgatory\n", id);
		mdb_txn_abort(t);
		goto out;
	}
	if (e) h->nmissing = 0;                   /* unreadable: the row goes anyway */
	e = purg_hold_del(t, s, id, h);
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
		ids = xmalloc(sizeof *ids);
		snprintf(ids[0], PDU_EVENT_ID_MAX, "%s", arg);
		n = 1;
	} else {
		MDB_txn *t = store_begin(s, 1);
		struct store_iter it;
		if (store_iter_open(&it, t, s, DB_EXPIRED, NULL, 0) == 0)
			while (store_iter_next(&it) == 1) {
				if (it.k.mv_size >= PDU_EVENT_ID_MAX) continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					ids = xreallocarray(ids, cap, sizeof *ids);
				}
				snprintf(ids[n++], PDU_EVENT_ID_MAX, "%.*s", (int)it.k.mv_size, (char *)it.k.mv_data);
			}
		store_iter_close(&it);
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
			int rc = purg_requeue_expired(t, s, ids[i], &seqs[m], &pdu);
			if (rc && rc != MDB_NOTFOUND && rc != MDB_CORRUPTED) { werr = rc; break; }
			if (rc) {
				fprintf(stderr, "fedctl: cannot requeue %s: %s\n", ids[i],
				        rc == MDB_NOTFOUND ? "not in expired" : mdb_strerror(rc));
				failed++;
				continue;
			}
			bytes[m] = xstrdup(pdu.data);
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
		fedctl_notify_validated(fc, seqs, bytes, lens, m);
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

/* One listing line for a rejects row; 1 = the limit is reached: stop. */
static int rejects_row(struct ls_ctx *c, const MDB_val *k, const MDB_val *v)
{
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
	struct store_iter it;
	if (fc->json) printf("[");
	int rc = store_iter_open(&it, t, s, DB_REJECTS, NULL, 0);
	while (!rc && store_iter_next(&it) == 1 && !rejects_row(&c, &it.k, &it.v))
		;
	if (!rc) rc = it.rc;
	store_iter_close(&it);
	if (fc->json) printf("]\n");
	else printf("%d rejected\n", c.n);
	mdb_txn_abort(t);
	json_doc_free(&c.d);
	return rc ? 1 : 0;
}
FEDCTL_COMMAND(rejects_cmd, "rejects", "rejects ls [--limit N]", "events validated rejected, with reason and origin", cmd_rejects)
