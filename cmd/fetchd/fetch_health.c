/* fetch_health.c: per-server backoff kept in LMDB server_health, so it
 * survives restarts. Outcomes of a loop turn are queued and written in one
 * transaction (on_turn). delay = window x streak^2 capped at backoff_max;
 * HTTP 410 backs off for backoff_max at once; the first `grace` failures
 * only deprioritize; success clears. `fedctl servers wake` deletes the
 * record, so the streak is re-read from LMDB before every update. */
#include <stdlib.h>
#include <string.h>
#include "fetch.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/events.h"
#include "store/health.h"

struct health_upd {
	int   kind;               /* H_OK, H_FAIL, H_GONE, or -1: room seen */
	char *server;
	char *room;
	char  err[96];
	long long latency_ms;
};

static long long backoff_until(struct fetchd *fd, long long streak, int gone, long long now)
{
	if (gone) return now + fd->backoff_max;
	if (streak <= fd->backoff_grace) return 0;          /* grace: deprioritized only */
	long long d = fd->backoff_window;
	if (streak > 100000) streak = 100000;
	d = d * streak * streak;
	if (d > fd->backoff_max || d < 0) d = fd->backoff_max;
	return now + d;
}

static void queue(struct fetchd *fd, int kind, const char *server, const char *room,
                  const char *err, long long lat)
{
	if (fd->nhq == fd->capq) {
		int ncap = fd->capq ? fd->capq * 2 : 64;
		fd->hq = xreallocarray(fd->hq, (size_t)ncap, sizeof *fd->hq);
		fd->capq = ncap;
	}
	struct health_upd *u = &fd->hq[fd->nhq++];
	memset(u, 0, sizeof *u);
	u->kind = kind;
	u->server = xstrdup(server);
	if (room) u->room = xstrdup(room);
	if (err) snprintf(u->err, sizeof u->err, "%s", err);
	u->latency_ms = lat;
}

void health_note(struct fetchd *fd, struct server *s, int kind, const char *err,
                 long long latency_ms)
{
	long long now = now_ms();
	if (kind == H_OK) {
		if (latency_ms < 1) latency_ms = 1;
		s->latency_ms = s->latency_ms ? (3 * s->latency_ms + latency_ms) / 4 : latency_ms;
		if (s->streak || s->until_ms) queue(fd, kind, s->name, NULL, NULL, s->latency_ms);
		s->streak = 0;
		s->until_ms = 0;
		return;
	}
	s->streak++;
	s->until_ms = backoff_until(fd, s->streak, kind == H_GONE, now);
	queue(fd, kind, s->name, NULL, err, s->latency_ms);
}

void health_room_seen(struct fetchd *fd, const char *room, const char *server)
{
	queue(fd, -1, server, room, NULL, 0);
}

/* server_health holds at most servers_max rows besides the configured
 * servers' (whose rows are never pruned): past that, rows go, least
 * valuable first, down to 7/8 of the bound: servers that never answered
 * and are not backed off now, then those that never answered, then the
 * ones whose last answer is oldest. A flood of made-up names thus costs
 * rows that turn over, never a table that only grows; forgetting a row
 * costs at most one more try of a dead server. */
struct victim { char *name; size_t len; int cls; long long t; };

static int cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	if (x->cls != y->cls) return x->cls - y->cls;
	return x->t < y->t ? -1 : x->t > y->t ? 1 : 0;
}

static int health_prune(struct fetchd *fd, MDB_txn *t, long long now)
{
	struct store *st = fd->d->st;
	size_t entries;
	int rc = store_entries(t, st, DB_SERVER_HEALTH, &entries);
	if (rc || entries <= fd->servers_max) return rc;
	size_t n = 0, target = fd->servers_max - fd->servers_max / 8;
	struct victim *vs = xcalloc(entries, sizeof *vs);
	struct store_iter it;
	if ((rc = store_iter_open(&it, t, st, DB_SERVER_HEALTH, NULL, 0))) { free(vs); return rc; }
	while (n < entries && store_iter_next(&it) == 1) {
		char name[256];
		const char *key;
		size_t kl;
		struct health_rec h;
		store_health_row(&it.k, &it.v, &key, &kl, &h);   /* malformed: all zero, least valuable */
		if (kl >= sizeof name) continue;
		memcpy(name, key, kl);
		name[kl] = 0;
		if (transport_server_configured(fd, name)) continue;
		vs[n].cls = h.last_ok_ms ? 2 : h.until_ms > now ? 1 : 0;
		vs[n].t = h.last_ok_ms ? h.last_ok_ms : h.until_ms;
		vs[n].len = kl;
		vs[n].name = xmemdup(key, kl);
		n++;
	}
	store_iter_close(&it);
	if (n > 1) qsort(vs, n, sizeof *vs, cmp_victim);
	size_t drop = entries - target, dropped = 0;
	for (size_t i = 0; i < n && dropped < drop && rc == 0; i++) {
		rc = store_health_del(t, st, vs[i].name);
		if (rc == MDB_NOTFOUND) rc = 0;
		else if (rc == 0) dropped++;
	}
	for (size_t i = 0; i < n; i++) free(vs[i].name);
	free(vs);
	if (rc == 0) {
		*fd->c_health_pruned += dropped;
		log_debug("server_health: %zu rows pruned (%zu kept, servers_max %zu)", dropped,
		          entries - dropped, fd->servers_max);
	}
	return rc;
}

/* Selection's read transaction: reset between uses and renewed (no
 * allocation), since selection reads health once per fetch. A reset txn
 * holds no snapshot, so a map another process grew may be adopted (by
 * store_begin) while it waits. */
static MDB_txn *rtxn;

/* Every queued update in one write txn; 0 or the LMDB error (the caller
 * aborts). The cached state of each server follows what is written. */
static int health_write(struct fetchd *fd, MDB_txn *t, long long now)
{
	struct store *st = fd->d->st;
	int rc = 0, added = 0;
	for (int i = 0; i < fd->nhq && rc == 0; i++) {
		struct health_upd *u = &fd->hq[i];
		if (u->kind < 0) {
			rc = store_room_server_seen(t, st, u->room, u->server, now, 0);
			continue;
		}
		struct health_rec h;
		rc = store_health_get(t, st, u->server, &h);
		if (rc == MDB_NOTFOUND) { added = 1; rc = 0; }
		else if (rc == MDB_CORRUPTED) rc = 0;    /* rewritten whole below */
		else if (rc) break;
		if (u->latency_ms) h.latency_ms = u->latency_ms;
		if (u->kind == H_OK) {
			h.streak = 0;
			h.until_ms = 0;
			h.last_ok_ms = now;
		} else {
			h.streak++;
			h.until_ms = backoff_until(fd, h.streak, u->kind == H_GONE, now);
			snprintf(h.last_error, sizeof h.last_error, "%s", u->err);
		}
		struct server *s = transport_server_get(fd, u->server);
		s->streak = (int)h.streak;
		s->until_ms = h.until_ms;
		if (h.streak && h.until_ms)
			log_notice("server %s backed off for %lld s (streak %lld: %s)", u->server,
			           (h.until_ms - now) / 1000, h.streak, h.last_error);
		rc = store_health_put(t, st, u->server, &h);
	}
	if (rc == 0 && added) rc = health_prune(fd, t, now);
	return rc;
}

/* Health rows are best effort: a failed write (the store full, ...) is
 * aborted, reported once through store_write_failed and counted; the
 * updates are dropped (the cached state keeps them for now) and fetching
 * goes on. A map that grew is written again at once. */
void health_flush(struct fetchd *fd)
{
	static int failing;
	static long long logged_ms;
	if (!fd->nhq) return;
	struct store *st = fd->d->st;
	long long now = now_ms();
	int rc;
	for (;;) {
		MDB_txn *t = store_begin(st, 0);   /* adopts a map another process grew */
		rc = health_write(fd, t, now);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);         /* frees t either way */
		if (rc == 0 || !store_write_failed(st, rc)) break;
	}
	/* One line per change of state, at most one a minute (a store at its
	 * ceiling may let every other write through). */
	if (rc) {
		(*fd->c_health_errors)++;
		if (!failing && (!logged_ms || now - logged_ms >= 60000)) {
			log_warnx("server_health: write failed (%s); health is kept in memory only "
			          "until writes succeed again", mdb_strerror(rc));
			logged_ms = now;
		}
		failing = 1;
	} else if (failing) {
		if (now - logged_ms >= 60000) {
			log_info("server_health: writes succeed again");
			logged_ms = now;
		}
		failing = 0;
	}
	for (int i = 0; i < fd->nhq; i++) { free(fd->hq[i].server); free(fd->hq[i].room); }
	fd->nhq = 0;
}

void health_load(struct fetchd *fd, struct server **sv, int n)
{
	struct store *st = fd->d->st;
	MDB_txn *t;
	int i, stale = 0;
	if (fd->nhq) health_flush(fd);     /* this turn's outcomes first */
	/* Read once per loop turn: a burst of fetches to the same servers
	 * shares one read (health_flush keeps the cache current for our own
	 * writes; another writer, fedctl servers wake, is seen next turn). */
	for (i = 0; i < n; i++)
		if (sv[i]->h_turn != fd->turn) stale = 1;
	if (!stale) return;
	if (rtxn && mdb_txn_renew(rtxn) != 0) { mdb_txn_abort(rtxn); rtxn = NULL; }
	if (!rtxn) rtxn = store_begin(st, 1);   /* adopts a map another process grew */
	t = rtxn;
	for (i = 0; i < n; i++) {
		struct health_rec h;
		store_health_get(t, st, sv[i]->name, &h);   /* none or malformed: all zero */
		sv[i]->streak = (int)h.streak;
		sv[i]->until_ms = h.until_ms;
		if (!sv[i]->latency_ms) sv[i]->latency_ms = h.latency_ms;
		sv[i]->h_turn = fd->turn;
	}
	mdb_txn_reset(t);
}

void health_fini(void)
{
	if (rtxn) mdb_txn_abort(rtxn);
	rtxn = NULL;
}

int health_class(struct fetchd *fd, const struct server *s, long long now)
{
	(void)fd;
	if (s->until_ms > now) return 2;
	if (s->streak > 0) return 1;
	return 0;
}
