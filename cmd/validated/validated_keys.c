/* validated_keys.c: where validated's verify keys come from (--keys
 * documents, this node's own key, LMDB server_keys) and the options both
 * modes share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "validated.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/json.h"

void vkeys_init(struct vkeys *k, struct store *st)
{
	keyring_init(&k->kr);
	k->st = st;
	pthread_rwlock_init(&k->lock, NULL);
}

void vkeys_free(struct vkeys *k)
{
	keyring_free(&k->kr);
	pthread_rwlock_destroy(&k->lock);
}

static void add_own_key(struct vkeys *k, const struct config *c)
{
	struct signing_key sk;
	char err[256];
	const char *path = cfg_str(c, "node", "signing_key");

	if (!path[0] || signing_key_load(&sk, path, err, sizeof err) < 0) {
		log_debug("own signing key not loaded: %s", path[0] ? err : "none configured");
		return;
	}
	if (k->kr.n == k->kr.cap) {
		size_t cap = k->kr.cap ? k->kr.cap * 2 : 8;
		k->kr.k = xreallocarray(k->kr.k, cap, sizeof *k->kr.k);
		k->kr.cap = cap;
	}
	struct verify_key *v = &k->kr.k[k->kr.n++];
	memset(v, 0, sizeof *v);
	snprintf(v->server, sizeof v->server, "%s", cfg_str(c, "node", "server_name"));
	snprintf(v->key_id, sizeof v->key_id, "%s", sk.key_id);
	memcpy(v->pk, sk.pk, 32);
	v->valid_until_ts = INT64_MAX;
	memset(&sk, 0, sizeof sk);
	/* the node's rotated keys verify its events up to their expired_ts */
	struct old_key *old;
	size_t nold;
	if (signing_key_old_load(path, &old, &nold, err, sizeof err) < 0) {
		log_warnx("own old keys not loaded: %s", err);
		return;
	}
	for (size_t i = 0; i < nold; i++) {
		if (keyring_find(&k->kr, cfg_str(c, "node", "server_name"), old[i].key_id))
			continue;
		if (k->kr.n == k->kr.cap) {
			size_t cap = k->kr.cap ? k->kr.cap * 2 : 8;
			k->kr.k = xreallocarray(k->kr.k, cap, sizeof *k->kr.k);
			k->kr.cap = cap;
		}
		v = &k->kr.k[k->kr.n++];
		memset(v, 0, sizeof *v);
		snprintf(v->server, sizeof v->server, "%s", cfg_str(c, "node", "server_name"));
		snprintf(v->key_id, sizeof v->key_id, "%s", old[i].key_id);
		memcpy(v->pk, old[i].pk, 32);
		v->valid_until_ts = old[i].expired_ts;
		v->old = 1;
	}
	free(old);
}

void vkeys_keep_own(struct vkeys *next, const struct vkeys *prev, const struct config *c)
{
	const char *self = cfg_str(c, "node", "server_name");
	size_t kept = 0;
	for (size_t i = 0; i < prev->kr.n; i++) {
		const struct verify_key *pv = &prev->kr.k[i];
		if (strcmp(pv->server, self) != 0 || keyring_find(&next->kr, self, pv->key_id)) continue;
		if (next->kr.n == next->kr.cap) {
			size_t cap = next->kr.cap ? next->kr.cap * 2 : 8;
			next->kr.k = xreallocarray(next->kr.k, cap, sizeof *next->kr.k);
			next->kr.cap = cap;
		}
		next->kr.k[next->kr.n++] = *pv;
		kept++;
	}
	if (kept)
		log_warnx("reload: [node] signing_key %s did not give the node's keys; %zu of its keys kept",
		          cfg_str(c, "node", "signing_key"), kept);
}

int vkeys_load(struct vkeys *k, const struct config *c, const struct vopts *vo)
{
	char err[256];
	const char *cf = cfg_str(c, "validated", "keys");

	if (cf[0] && keyring_load_file(&k->kr, cf, err, sizeof err) < 0) {
		log_err("keys %s: %s", cf, err);
		return -1;
	}
	for (int i = 0; vo && i < vo->nkeys_files; i++)
		if (keyring_load_file(&k->kr, vo->keys_files[i], err, sizeof err) < 0) {
			log_err("--keys %s: %s", vo->keys_files[i], err);
			return -1;
		}
	add_own_key(k, c);
	return 0;
}

/* Memory first (the --keys files, the own keys, fetched keys the store
 * could not take); LMDB's row when memory has none, or has the same key
 * with a shorter validity (a later fetch extended it). A stored row counts
 * up to store_key_valid_until (fetched + 7 days, valid_until_ts). */
static int lookup_rec(struct vkeys *k, const char *server, const char *key_id,
                      unsigned char pk[32], int64_t *until, int *old)
{
	int rc = -1;

	pthread_rwlock_rdlock(&k->lock);
	const struct verify_key *v = keyring_find(&k->kr, server, key_id);
	if (v) {
		memcpy(pk, v->pk, 32);
		*until = v->valid_until_ts;
		*old = v->old;
		rc = 0;
	}
	pthread_rwlock_unlock(&k->lock);
	if (!k->st)
		return rc;
	/* may run in a worker thread: a shared read txn (store.h) */
	struct key_rec r;
	MDB_txn *t = store_begin_shared(k->st);
	int got = store_key_get_rec(t, k->st, server, key_id, &r) == 0;
	store_end_shared(k->st, t);
	if (!got)
		return rc;
	int64_t su = store_key_valid_until(&r);
	if (rc == 0 && (memcmp(r.pk, pk, 32) != 0 || su <= *until))
		return 0;
	memcpy(pk, r.pk, 32);
	*until = su;
	*old = (r.flags & KEY_OLD) != 0;
	return 0;
}

int vkeys_lookup(void *arg, const char *server, const char *key_id,
                 unsigned char pk[32], int64_t *valid_until_ts)
{
	int old;
	return lookup_rec(arg, server, key_id, pk, valid_until_ts, &old);
}

int vkeys_notary_key(void *arg, const char *server, const char *key_id, unsigned char pk[32])
{
	int64_t until;
	int old;
	if (lookup_rec(arg, server, key_id, pk, &until, &old) < 0 || old || until < now_ms())
		return -1;
	return 0;
}

int vkeys_usable(struct vkeys *k, const char *server)
{
	int64_t now = now_ms();
	int found = 0;
	pthread_rwlock_rdlock(&k->lock);
	for (size_t i = 0; i < k->kr.n && !found; i++)
		found = !k->kr.k[i].old && k->kr.k[i].valid_until_ts >= now
		        && strcmp(k->kr.k[i].server, server) == 0;
	pthread_rwlock_unlock(&k->lock);
	if (found || !k->st)
		return found;
	MDB_txn *t = store_begin_shared(k->st);
	found = store_key_usable(t, k->st, server, now) == 1;
	store_end_shared(k->st, t);
	return found;
}

int vkeys_refetch_helps(struct vkeys *k, const char *bytes, size_t n, const char *server)
{
	struct json_doc d = { 0 };
	int helps = 1;
	if (json_parse(&d, bytes, n, JSON_MAX_DEPTH_DEFAULT) < 0 || d.tok[0].type != JSON_OBJECT)
		goto out;
	int sigs = json_obj_get(&d, 0, "signatures");
	int srv = sigs >= 0 && d.tok[sigs].type == JSON_OBJECT ? json_obj_get(&d, sigs, server) : -1;
	if (srv < 0 || d.tok[srv].type != JSON_OBJECT)
		goto out;
	int any = 0;
	for (int t = json_first(&d, srv); t >= 0; t = json_next_kv(&d, srv, t)) {
		char id[64];
		unsigned char pk[32];
		int64_t until;
		int old;
		if (json_str_copy(&d, t, id, sizeof id) < 0 || strncmp(id, "ed25519:", 8) != 0)
			continue;
		if (lookup_rec(k, server, id, pk, &until, &old) < 0 || !old)
			goto out;      /* unknown, or a current key: its document may have moved on */
		any = 1;
	}
	helps = !any;          /* only old keys, past their expired_ts: final */
out:
	json_doc_free(&d);
	return helps;
}

void vkeys_keep(struct vkeys *k, const struct verify_key *v, int64_t fetched_ms)
{
	struct verify_key c = *v;
	if (!c.old && fetched_ms <= INT64_MAX - KEY_FETCHED_MAX_AGE_MS
	    && c.valid_until_ts > fetched_ms + KEY_FETCHED_MAX_AGE_MS)
		c.valid_until_ts = fetched_ms + KEY_FETCHED_MAX_AGE_MS;
	pthread_rwlock_wrlock(&k->lock);
	struct verify_key *have = (struct verify_key *)keyring_find(&k->kr, c.server, c.key_id);
	if (have) {
		*have = c;
	} else {
		if (k->kr.n == k->kr.cap) {
			size_t cap = k->kr.cap ? k->kr.cap * 2 : 8;
			k->kr.k = xreallocarray(k->kr.k, cap, sizeof *k->kr.k);
			k->kr.cap = cap;
		}
		k->kr.k[k->kr.n++] = c;
	}
	pthread_rwlock_unlock(&k->lock);
}

int vstore_room_version(void *arg, const char *room_id)
{
	struct store *st = arg;
	MDB_txn *t = store_begin_shared(st);
	int rv = store_room_version(t, st, room_id);
	store_end_shared(st, t);
	return rv;
}

int vopts_option(struct vopts *vo, int opt, const char *arg)
{
	char *end;
	long v;

	switch (opt) {
	case OPT_KEYS:
		if (vo->nkeys_files >= (int)(sizeof vo->keys_files / sizeof vo->keys_files[0])) {
			log_err("too many --keys");
			return -1;
		}
		vo->keys_files[vo->nkeys_files++] = arg;
		return 0;
	case OPT_RV:
		v = strtol(arg, &end, 10);
		if (*end || (v != 10 && v != 11)) {
			log_err("--room-version: 10 or 11, not '%s'", arg);
			return -1;
		}
		vo->room_version = (int)v;
		return 0;
	case OPT_NO_EID:  vo->no_event_id = 1; return 0;
	case OPT_NO_HASH: vo->no_hashes = 1; return 0;
	case OPT_NO_SIG:  vo->no_signatures = 1; return 0;
	case OPT_RAW_MAX:
		vo->raw_max = cfg_parse_size(arg);
		if (vo->raw_max <= 0) {
			log_err("--raw-max: bad size '%s'", arg);
			return -1;
		}
		return 0;
	case OPT_WORKERS:
		v = strtol(arg, &end, 10);
		if (*end || v < 1 || v > 30) {
			log_err("--workers: 1..30, not '%s'", arg);
			return -1;
		}
		vo->workers = (int)v;
		return 0;
	}
	return -1;
}

int vopts_apply(const struct config *c, const struct vopts *vo, struct val_opts *o)
{
	memset(o, 0, sizeof *o);
	o->room_version = vo->room_version ? vo->room_version
	                                   : (int)cfg_int(c, "node", "room_version");
	if (o->room_version != 10 && o->room_version != 11) {
		log_err("[node] room_version must be 10 or 11");
		return -1;
	}
	o->raw_max = (size_t)(vo->raw_max ? vo->raw_max : cfg_size(c, "validated", "raw_max"));
	o->max_depth = (int)cfg_int(c, "validated", "max_depth");
	if (cfg_bool(c, "validated", "check_event_id") && !vo->no_event_id)
		o->checks |= VAL_CHECK_EVENT_ID;
	if (cfg_bool(c, "validated", "check_hashes") && !vo->no_hashes)
		o->checks |= VAL_CHECK_HASHES;
	if (cfg_bool(c, "validated", "check_signatures") && !vo->no_signatures)
		o->checks |= VAL_CHECK_SIGNATURES;
	return 0;
}
