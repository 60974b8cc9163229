/* feedpump_lease.c: only one drainer, enforced by a lease in LMDB
 * (leases["feedpump"] = {"holder","pid","until_ms","renewed"}). A second
 * feedpump waits and says why; it takes over when the lease expires or when
 * the holder is on this host and its pid is gone (kill -9 must not cost a
 * whole lease period). Every write-back txn re-checks and renews the lease,
 * so a drainer that lost it can never write over its successor. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "feedpump.h"
#include "matrix/json.h"
#include "core/log.h"

struct lease { char holder[160]; long long pid, until_ms, renewed; };

static int lease_read(MDB_txn *t, struct store *st, struct lease *l)
{
	MDB_val v;
	memset(l, 0, sizeof *l);
	if (store_get(t, st, DB_LEASES, FEED_LEASE_KEY, strlen(FEED_LEASE_KEY), &v) != 0)
		return -1;
	struct json_doc d = {0};
	int rc = -1;
	if (json_parse(&d, v.mv_data, v.mv_size, 4) == 0 && d.tok[0].type == JSON_OBJECT) {
		int k;
		if ((k = json_obj_get(&d, 0, "holder")) >= 0 && d.tok[k].type == JSON_STRING)
			json_str_copy(&d, k, l->holder, sizeof l->holder);
		if ((k = json_obj_get(&d, 0, "pid")) >= 0 && d.tok[k].type == JSON_INT) l->pid = d.tok[k].ival;
		if ((k = json_obj_get(&d, 0, "until_ms")) >= 0 && d.tok[k].type == JSON_INT) l->until_ms = d.tok[k].ival;
		if ((k = json_obj_get(&d, 0, "renewed")) >= 0 && d.tok[k].type == JSON_INT) l->renewed = d.tok[k].ival;
		rc = 0;
	}
	json_doc_free(&d);
	return rc;
}

static int lease_write(struct feedpump *fp, MDB_txn *t)
{
	struct buf b;
	buf_init(&b);
	long long now = now_ms();
	buf_adds(&b, "{\"holder\":");
	json_put_string(&b, fp->holder, strlen(fp->holder));
	buf_printf(&b, ",\"pid\":%d,\"renewed\":%lld,\"until_ms\":%lld}", (int)getpid(), now, now + fp->lease_ttl);
	int rc = store_put(t, fp->d->st, DB_LEASES, FEED_LEASE_KEY, strlen(FEED_LEASE_KEY), b.data, b.len, 0);
	buf_free(&b);
	return rc;
}

/* Same host (holder "host:pid") and the pid no longer exists. */
static int holder_dead(const struct lease *l)
{
	char host[128];
	if (gethostname(host, sizeof host) < 0) return 0;
	host[sizeof host - 1] = 0;
	size_t hl = strlen(host);
	if (strncmp(l->holder, host, hl) != 0 || l->holder[hl] != ':' || l->pid <= 0) return 0;
	return kill((pid_t)l->pid, 0) < 0 && errno == ESRCH;
}

int fp_lease_acquire(struct feedpump *fp)
{
	struct store *st = fp->d->st;
	MDB_txn *t = store_begin(st, 0);
	struct lease l;
	long long now = now_ms();
	int have = lease_read(t, st, &l) == 0;
	char why[200] = "";
	if (have && strcmp(l.holder, fp->holder) != 0 && l.until_ms > now && !holder_dead(&l)) {
		snprintf(why, sizeof why, "%.120s (pid %lld) until %lld ms from now",
		         l.holder, l.pid, l.until_ms - now);
		mdb_txn_abort(t);
		char who[200];
		snprintf(who, sizeof who, "%.120s:%lld", l.holder, l.pid);
		if (strcmp(who, fp->waiting_for) != 0) {
			log_notice("waiting: another feedpump holds the drain lease: %s; "
			           "only one drainer may publish (takeover when it expires or its pid dies)", why);
			snprintf(fp->waiting_for, sizeof fp->waiting_for, "%s", who);
		}
		*fp->g_lease = 0;
		return 0;
	}
	if (have && strcmp(l.holder, fp->holder) != 0)
		log_notice("taking over the drain lease from %s (pid %lld): %s", l.holder, l.pid,
		           l.until_ms <= now ? "expired" : "holder process is gone");
	int rc = lease_write(fp, t);
	if (rc) mdb_txn_abort(t);
	else rc = store_commit(t);              /* a failed commit frees the txn */
	if (rc) {
		if (store_write_failed(st, rc)) return fp_lease_acquire(fp);
		if (rc != MDB_MAP_FULL)             /* full: the store said so, once */
			log_warnx("cannot write the drain lease (%s); will retry", mdb_strerror(rc));
		return 0;
	}
	fp->have_lease = 1;
	fp->waiting_for[0] = 0;
	*fp->g_lease = 1;
	log_info("holding the drain lease as %s", fp->holder);
	return 1;
}

int fp_lease_check_renew(struct feedpump *fp, MDB_txn *t)
{
	struct lease l;
	if (lease_read(t, fp->d->st, &l) != 0 || strcmp(l.holder, fp->holder) != 0) {
		log_warnx("lost the drain lease to %s (pid %lld); not writing", l.holder, l.pid);
		fp->have_lease = 0;
		*fp->g_lease = 0;
		return -1;
	}
	return lease_write(fp, t);
}

void fp_lease_release(struct feedpump *fp)
{
	if (!fp->have_lease) return;
	struct store *st = fp->d->st;
	MDB_txn *t = store_begin(st, 0);
	struct lease l;
	int rc = 0;
	if (lease_read(t, st, &l) == 0 && strcmp(l.holder, fp->holder) == 0)
		rc = store_del(t, st, DB_LEASES, FEED_LEASE_KEY, strlen(FEED_LEASE_KEY));
	if (rc) mdb_txn_abort(t);         /* the lease then just expires */
	else if (store_commit(t) == 0) fp->have_lease = 0;
}

int fp_lease_renew(struct feedpump *fp)
{
	if (!fp->have_lease) return 0;
	for (;;) {
		MDB_txn *t = store_begin(fp->d->st, 0);
		int rc = fp_lease_check_renew(fp, t);
		if (rc < 0) { mdb_txn_abort(t); return 0; }
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (!rc || !store_write_failed(fp->d->st, rc)) return rc;
	}
}
