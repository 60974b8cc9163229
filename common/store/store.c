/* store.c: the LMDB environment: every named database opened once, schema
 * version checked, begin/commit and the store-full state, the prefix-scan
 * iterator, counters and the node ID in meta. Each table family's records
 * live in its own module (events.c, inbox.c, outbox.c, fedstate.c,
 * server_keys.c, health.c, resolution.c, claims.c; pstore.c for purgatory). */
#include "store/store.h"
#include "core/log.h"
#include "core/daemon.h"
#include "core/xalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const store_db_names[DB__COUNT] = {
	"events", "stream", "rooms", "room_extremities", "room_servers",
	"inbox", "purgatory", "missing_index", "rejects", "expired",
	"outbox", "feed_dead", "applied_events", "federation_state",
	"server_keys", "server_health", "server_resolution", "claims", "leases", "meta"
};

static int mkdir_p(const char *dir)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/') continue;
		*p = 0;
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST) return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

static size_t map_now(struct store *s)
{
	MDB_envinfo ei;
	return mdb_env_info(s->env, &ei) == 0 ? ei.me_mapsize : 0;
}

/* Map the larger of the size recorded in the environment (the largest any
 * process has committed with) and floor. Only with no txn active in this
 * process (the gate is held, or there is one thread). Returns the size. */
static size_t adopt_map(struct store *s, size_t floor)
{
	int rc = mdb_env_set_mapsize(s->env, 0);
	if (rc == 0 && map_now(s) < floor) rc = mdb_env_set_mapsize(s->env, floor);
	if (rc) log_warnx("LMDB: cannot set the map size: %s", mdb_strerror(rc));
	return map_now(s);
}

int store_open(struct store *s, const char *dir, size_t mapsize, int readonly,
               char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->readonly = readonly;
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	pthread_rwlock_init(&s->gate, NULL);
	if (!readonly && mkdir_p(dir) < 0) {
		snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	int rc = mdb_env_create(&s->env);
	if (rc) { snprintf(err, errlen, "mdb_env_create: %s", mdb_strerror(rc)); return -1; }
	if ((rc = mdb_env_set_maxdbs(s->env, DB__COUNT + 4)) ||
	    (rc = mdb_env_set_maxreaders(s->env, 512)) ||
	    (rc = mdb_env_set_mapsize(s->env, mapsize ? mapsize : (size_t)8 << 30))) {
		snprintf(err, errlen, "cannot set up LMDB environment %s: %s", dir, mdb_strerror(rc));
		mdb_env_close(s->env);
		s->env = NULL;
		return -1;
	}
	/* NOTLS: read txns are not tied to threads (validated's workers). The
	 * environment is always opened read-write so a first reader can create
	 * the databases; "readonly" users only ever begin read txns. */
	rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0640);
	if (rc) {
		snprintf(err, errlen, "cannot open LMDB environment %s: %s", dir, mdb_strerror(rc));
		mdb_env_close(s->env);
		s->env = NULL;
		return -1;
	}
	(void)mdb_env_set_userctx(s->env, s);   /* fails only without an env */
	/* A map grown earlier (by any process) is recorded in the environment:
	 * use the larger of it and the configured size, never less. */
	size_t want = mapsize ? mapsize : (size_t)8 << 30;
	if (adopt_map(s, want) > want)
		log_info("LMDB map is %zu bytes (grown past [node] map_size earlier)", map_now(s));
	int dead = 0;
	mdb_reader_check(s->env, &dead);
	if (dead) log_info("cleared %d stale LMDB reader slot(s) in %s", dead, dir);
	MDB_txn *t;
	/* another process may grow the map between our look and this txn */
	for (int tries = 0; (rc = mdb_txn_begin(s->env, NULL, 0, &t)) == MDB_MAP_RESIZED && tries < 4; tries++)
		adopt_map(s, map_now(s));
	if (rc) { snprintf(err, errlen, "%s: begin: %s", dir, mdb_strerror(rc)); goto fail; }
	for (int i = 0; i < DB__COUNT; i++) {
		rc = mdb_dbi_open(t, store_db_names[i], MDB_CREATE, &s->dbi[i]);
		if (rc) {
			snprintf(err, errlen, "%s: open database %s: %s", dir, store_db_names[i], mdb_strerror(rc));
			mdb_txn_abort(t);
			goto fail;
		}
	}
	MDB_val k = { 14, (void *)"schema_version" }, v;
	rc = mdb_get(t, s->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		unsigned char ver[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
		v.mv_size = 4; v.mv_data = ver;
		rc = mdb_put(t, s->dbi[DB_META], &k, &v, 0);
	} else if (rc == 0) {
		const unsigned char *p = v.mv_data;
		uint32_t have = v.mv_size == 4 ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) : 0;
		if (have != STORE_SCHEMA_VERSION) {
			snprintf(err, errlen, "%s: schema version %u, this build supports %d", dir, have, STORE_SCHEMA_VERSION);
			mdb_txn_abort(t);
			goto fail;
		}
	}
	if (rc == 0) rc = mdb_txn_commit(t);
	else mdb_txn_abort(t);
	if (rc) { snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc)); goto fail; }
	return 0;
fail:
	mdb_env_close(s->env);
	s->env = NULL;
	return -1;
}

void store_close(struct store *s)
{
	if (s->env) {
		mdb_env_close(s->env);
		pthread_rwlock_destroy(&s->gate);
	}
	s->env = NULL;
}

/* Another process grew the map past ours: map what it recorded. */
static void adopt_resized(struct store *s, int shared)
{
	if (shared) pthread_rwlock_unlock(&s->gate);
	pthread_rwlock_wrlock(&s->gate);
	size_t before = map_now(s);
	size_t now = adopt_map(s, before);
	pthread_rwlock_unlock(&s->gate);
	if (shared) pthread_rwlock_rdlock(&s->gate);
	if (now != before) log_info("LMDB map grown by another process: now %zu bytes", now);
}

static MDB_txn *begin(struct store *s, int readonly, int shared)
{
	MDB_txn *t;
	int rc;
	for (int tries = 0; ; tries++) {
		rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0, &t);
		if (rc == MDB_READERS_FULL && tries < 1) {
			int dead = 0;
			mdb_reader_check(s->env, &dead);
			continue;
		}
		if (rc == MDB_MAP_RESIZED && tries < 4) {
			adopt_resized(s, shared);
			continue;
		}
		break;
	}
	if (rc) fatalx("LMDB transaction begin failed: %s", mdb_strerror(rc));
	if (!readonly) s->wtxn = t;
	return t;
}

MDB_txn *store_begin(struct store *s, int readonly)
{
	return begin(s, readonly, 0);
}

MDB_txn *store_begin_shared(struct store *s)
{
	pthread_rwlock_rdlock(&s->gate);
	return begin(s, 1, 1);
}

void store_end_shared(struct store *s, MDB_txn *t)
{
	mdb_txn_abort(t);
	pthread_rwlock_unlock(&s->gate);
}

static void marker_path(char *out, size_t cap, const char *dir)
{
	snprintf(out, cap, "%s/%s", dir, STORE_FULL_MARKER);
}

int store_full_marker(const char *dir, char *info, size_t infolen)
{
	char path[600];
	marker_path(path, sizeof path, dir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return 0;
	if (info && infolen) {
		ssize_t n = read(fd, info, infolen - 1);
		info[n > 0 ? n : 0] = 0;
		char *nl = strchr(info, '\n');
		if (nl) *nl = 0;
	}
	close(fd);
	return 1;
}

/* A write committed: there is room again. Ours is cleared at once; one
 * another process left is looked for at most once a second. */
static void space_returned(struct store *s)
{
	char path[600];
	long long now = mono_ms();
	if (!s->full && now - s->marker_checked_ms < 1000) return;
	s->marker_checked_ms = now;
	marker_path(path, sizeof path, s->dir);
	int had = unlink(path) == 0;
	if (s->full || had)
		log_notice("LMDB store has space again: writes resume");
	s->full = 0;
}

int store_commit(MDB_txn *t)
{
	MDB_env *env = mdb_txn_env(t);
	struct store *s = env ? mdb_env_get_userctx(env) : NULL;
	int write = s && s->wtxn == t;
	if (write) s->wtxn = NULL;
	int rc = mdb_txn_commit(t);
	if (rc && rc != MDB_MAP_FULL) log_err("LMDB commit failed: %s", mdb_strerror(rc));
	if (!rc && write) space_returned(s);
	return rc;
}

int store_get(MDB_txn *t, struct store *s, int db, const void *k, size_t kn, MDB_val *v)
{
	MDB_val key = { kn, (void *)k };
	return mdb_get(t, s->dbi[db], &key, v);
}

int store_put(MDB_txn *t, struct store *s, int db, const void *k, size_t kn,
              const void *v, size_t vn, unsigned flags)
{
	MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };
	return mdb_put(t, s->dbi[db], &key, &val, flags);
}

int store_del(MDB_txn *t, struct store *s, int db, const void *k, size_t kn)
{
	MDB_val key = { kn, (void *)k };
	return mdb_del(t, s->dbi[db], &key, NULL);
}

int store_entries(MDB_txn *t, struct store *s, int db, size_t *n)
{
	MDB_stat ms;
	int rc = mdb_stat(t, s->dbi[db], &ms);
	*n = rc ? 0 : ms.ms_entries;
	return rc;
}

int store_seq_take(MDB_txn *t, struct store *s, const char *name, uint64_t *out)
{
	MDB_val v;
	uint64_t next = 1;
	if (store_get(t, s, DB_META, name, strlen(name), &v) == 0 && v.mv_size == 8)
		next = be64_get(v.mv_data);
	unsigned char b[8];
	be64_put(b, next + 1);
	int rc = store_put(t, s, DB_META, name, strlen(name), b, 8, 0);
	*out = rc ? 0 : next;
	return rc;
}

uint64_t store_next_seq(MDB_txn *t, struct store *s, const char *name)
{
	uint64_t next;
	return store_seq_take(t, s, name, &next) ? 0 : next;
}

size_t store_key2(char *out, size_t cap, const char *a, const char *b)
{
	size_t an = strlen(a), bn = strlen(b);
	if (an + 1 + bn > cap) return 0;
	memcpy(out, a, an);
	out[an] = 0;
	memcpy(out + an + 1, b, bn);
	return an + 1 + bn;
}

/* ULID: 48-bit millisecond time + 80 random bits, Crockford base32. */
static void make_ulid(char out[27])
{
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char b[16];
	uint64_t ms = (uint64_t)now_ms();
	for (int i = 5; i >= 0; i--) { b[i] = ms & 0xff; ms >>= 8; }
	randombytes_buf(b + 6, 10);
	/* 128 bits -> 26 chars of 5 bits, the first char carrying 3 bits. */
	int bit = -2;   /* 26*5 = 130: two leading zero bits */
	for (int i = 0; i < 26; i++, bit += 5) {
		int v = 0;
		for (int j = 0; j < 5; j++) {
			int pos = bit + j;
			v <<= 1;
			if (pos >= 0) v |= (b[pos / 8] >> (7 - pos % 8)) & 1;
		}
		out[i] = alpha[v];
	}
	out[26] = 0;
}

int store_node_id(struct store *s, char out[27])
{
	MDB_txn *t = store_begin(s, 0);
	MDB_val v;
	int rc = store_get(t, s, DB_META, "node_id", 7, &v);
	if (rc == 0 && v.mv_size == 26) {
		memcpy(out, v.mv_data, 26);
		out[26] = 0;
		mdb_txn_abort(t);
		return 0;
	}
	if (sodium_init() < 0) log_panic("sodium_init failed");
	make_ulid(out);
	rc = store_put(t, s, DB_META, "node_id", 7, out, 26, 0);
	if (rc) { mdb_txn_abort(t); return rc; }
	return store_commit(t);
}

/* At the ceiling: say so once, and leave the marker fedctl status reads
 * (created once; its first writer's line stays until space returns). */
static void enter_full(struct store *s, size_t size)
{
	char path[600];
	marker_path(path, sizeof path, s->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd >= 0) {
		char line[200];
		int n = snprintf(line, sizeof line, "since_ms=%lld pid=%d map_size=%zu map_size_max=%zu\n",
		                 now_ms(), (int)getpid(), size, s->map_max);
		if (write(fd, line, (size_t)n) != n) log_warn("writing %s", path);
		close(fd);
	}
	if (!s->full)
		log_crit("LMDB store full: the map is at its ceiling (%zu bytes, [node] map_size_max); "
		         "writes stop and retry until space returns", size);
	s->full = 1;
}

int store_write_failed(struct store *s, int rc)
{
	if (rc != MDB_MAP_FULL || !s->env) return 0;
	if (s->wtxn) s->wtxn = NULL;        /* the caller aborted it */
	pthread_rwlock_wrlock(&s->gate);
	size_t before = map_now(s);
	/* grown by another process meanwhile: take that first */
	size_t now = adopt_map(s, before);
	if (now > before) {
		pthread_rwlock_unlock(&s->gate);
		log_info("LMDB map grown by another process: now %zu bytes", now);
		return 1;
	}
	if (now < s->map_max) {
		size_t next = now > s->map_max / 2 ? s->map_max : now * 2;
		int e = mdb_env_set_mapsize(s->env, next);
		now = map_now(s);
		pthread_rwlock_unlock(&s->gate);
		if (e == 0 && now > before) {
			log_notice("LMDB map full at %zu bytes: grown to %zu (ceiling %zu, [node] map_size_max)",
			           before, now, s->map_max);
			return 1;
		}
		log_err("growing the LMDB map to %zu bytes failed: %s", next, mdb_strerror(e));
	} else
		pthread_rwlock_unlock(&s->gate);
	enter_full(s, now);
	return 0;
}

static int daemon_store_open(struct daemon *d)
{
	char err[1024];
	struct store *s = xcalloc(1, sizeof *s);
	const char *dir = cfg_str(&d->cfg, "node", "state_dir");
	if (store_open(s, dir, (size_t)cfg_size(&d->cfg, "node", "map_size"), 0, err, sizeof(err)) < 0) {
		log_err("%s", err);
		free(s);
		return EXIT_TEMP;
	}
	s->map_max = (size_t)cfg_size(&d->cfg, "node", "map_size_max");
	d->st = s;
	return 0;
}

static void daemon_store_close(struct daemon *d)
{
	store_close(d->st);
	free(d->st);
	d->st = NULL;
}

static void daemon_store_reload(struct daemon *d)
{
	d->st->map_max = (size_t)cfg_size(&d->cfg, "node", "map_size_max");
}

const struct daemon_store store_for_daemon = { daemon_store_open, daemon_store_reload, daemon_store_close };

int store_iter_open(struct store_iter *it, MDB_txn *t, struct store *s, int db,
                    const void *prefix, size_t plen)
{
	memset(it, 0, sizeof *it);
	it->prefix = prefix;
	it->plen = plen;
	it->rc = mdb_cursor_open(t, s->dbi[db], &it->cur);
	if (it->rc) it->cur = NULL;
	return it->rc;
}

void store_iter_from(struct store_iter *it, const void *from, size_t flen)
{
	it->from = from;
	it->flen = flen;
}

void store_iter_reverse(struct store_iter *it)
{
	it->reverse = 1;
}

static int prefix_ok(const struct store_iter *it)
{
	return it->k.mv_size >= it->plen &&
	       (it->plen == 0 || memcmp(it->k.mv_data, it->prefix, it->plen) == 0);
}

/* The last key with the prefix: position past it (SET_RANGE on the prefix
 * with its last byte incremented), then step back. */
static int seek_last(struct store_iter *it)
{
	if (it->plen == 0) return mdb_cursor_get(it->cur, &it->k, &it->v, MDB_LAST);
	unsigned char up[512];
	size_t n = it->plen;
	if (n > sizeof up) return EINVAL;
	memcpy(up, it->prefix, n);
	while (n > 0 && up[n - 1] == 0xff) n--;
	int rc;
	if (n == 0) {
		rc = mdb_cursor_get(it->cur, &it->k, &it->v, MDB_LAST);
	} else {
		up[n - 1]++;
		it->k.mv_data = up; it->k.mv_size = n;
		rc = mdb_cursor_get(it->cur, &it->k, &it->v, MDB_SET_RANGE);
		if (rc == 0) rc = mdb_cursor_get(it->cur, &it->k, &it->v, MDB_PREV);
		else if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(it->cur, &it->k, &it->v, MDB_LAST);
	}
	return rc;
}

int store_iter_next(struct store_iter *it)
{
	if (!it->cur) return it->rc ? -1 : 0;
	int rc;
	if (!it->started) {
		it->started = 1;
		if (it->reverse) {
			rc = seek_last(it);
		} else if (it->from || it->plen) {
			it->k.mv_data = (void *)(it->from ? it->from : it->prefix);
			it->k.mv_size = it->from ? it->flen : it->plen;
			rc = mdb_cursor_get(it->cur, &it->k, &it->v, MDB_SET_RANGE);
		} else {
			rc = mdb_cursor_get(it->cur, &it->k, &it->v, MDB_FIRST);
		}
	} else {
		/* after store_iter_del, LMDB's MDB_NEXT yields the row that followed */
		rc = mdb_cursor_get(it->cur, &it->k, &it->v, it->reverse ? MDB_PREV : MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) return 0;
	if (rc) { it->rc = rc; return -1; }
	return prefix_ok(it) ? 1 : 0;
}

int store_iter_del(struct store_iter *it)
{
	int rc = mdb_cursor_del(it->cur, 0);
	if (rc) { it->rc = rc; return rc; }
	return 0;
}

void store_iter_close(struct store_iter *it)
{
	if (it->cur) mdb_cursor_close(it->cur);
	it->cur = NULL;
}
