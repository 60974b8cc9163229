/* feedpump_lease.c: only one drainer, enforced by a lease in LMDB
 * (store/outbox.h: the "feedpump" row of leases). A second
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
#include "core/log.h"

static int lease_write(struct feedpump *fp, MDB_txn *t)
{
	struct lease_rec l;
	long long now = now_ms();
	memset(&l, 0, sizeof l);
	snprintf(l.holder, sizeof l.holder, "%s", fp->holder);
	l.pid = (long long)getpid();
	l.renewed = now;
	l.until_ms = fp->lease_writing = now + fp->lease_ttl;
	return outbox_lease_put(t, fp->d->st, &l);
}

/* Same host (holder "host:pid") and the pid no longer exists. */
static int holder_dead(const struct lease_rec *l)
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
	struct lease_rec l;
	long long now = now_ms();
	int have = outbox_lease_get(t, st, &l) == 0;
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
	fp_lease_committed(fp);
	fp->waiting_for[0] = 0;
	*fp->g_lease = 1;
	log_info("holding the drain lease as %s", fp->holder);
	return 1;
}

int fp_lease_check_renew(struct feedpump *fp, MDB_txn *t)
{
	struct lease_rec l;
	if (outbox_lease_get(t, fp->d->st, &l) != 0 || strcmp(l.holder, fp->holder) != 0) {
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
	struct lease_rec l;
	int rc = 0;
	if (outbox_lease_get(t, st, &l) == 0 && strcmp(l.holder, fp->holder) == 0)
		rc = outbox_lease_del(t, st);
	if (rc) mdb_txn_abort(t);         /* the lease then just expires */
	else if (store_commit(t) == 0) fp->have_lease = 0;
}

void fp_lease_committed(struct feedpump *fp)
{
	fp->lease_until = fp->lease_writing;
}

int fp_lease_held(struct feedpump *fp)
{
	if (!fp->have_lease) return 0;
	if (now_ms() < fp->lease_until) return 1;
	/* Renewals failed until the lease ran out: another feedpump may take
	 * it now, so this one publishes nothing more until it holds it again. */
	log_warnx("the drain lease ran out without a renewal; draining stops until it is held again");
	fp->have_lease = 0;
	*fp->g_lease = 0;
	fp_drain_flush(fp);
	return 0;
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
		if (!rc) { fp_lease_committed(fp); return 0; }
		if (store_write_failed(fp->d->st, rc)) continue;   /* the map grew: redo */
		if (rc != MDB_MAP_FULL)             /* full: the store said so, once */
			log_warnx("cannot renew the drain lease (%s); it ends in %lld ms unless a renewal succeeds",
			          mdb_strerror(rc), fp->lease_until - now_ms());
		fp_lease_held(fp);                  /* past its end: not ours any more */
		return rc;
	}
}
