/* validated_daemon.c: validated as a daemon (frames on <run_dir>/validated.sock,
 * verdicts to purgatoryd) and as a --stdio filter (frames in on stdin,
 * verdicts out on stdout). The inbox is the durable queue: frames are the
 * fast path, a periodic rescan re-validates entries old enough to have been
 * missed. An event signed with a key we lack waits in the inbox while fetchd
 * fetches the server's key document; only a definite fetch failure rejects it. */
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sodium.h>
#include "validated.h"
#include "core/daemon.h"
#include "core/histo.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/xalloc.h"

/* KF_DONE: fetched less than retry_ms ago: for the events that waited for
 * that document it is the truth (a key it lacks, or shows expired, is
 * final: reject); a newer event waits in the inbox for the next fetch. */
enum kf_state { KF_NONE, KF_INFLIGHT, KF_FAILED, KF_DONE };
struct keyfetch {
	char      server[256];
	int       state;
	uint64_t  req_id;
	long long until_ms;     /* KF_INFLIGHT: give up waiting; KF_FAILED: retry after */
};
struct waiting { uint64_t seq; char server[256]; };

/* With workers > 1, the events that arrive in a loop turn are validated in
 * parallel at the end of the turn on the worker pool (each worker its own
 * validator and seen cache; keys, LMDB and the room-version lookup are
 * thread-safe), then their verdicts go out in arrival order from the loop
 * thread. */
#define VD_BATCH_MAX 1024
struct vitem { uint64_t seq; uint16_t flags; char *p; size_t n; struct val_result r; };

struct validated {
	struct vopts     vo;
	struct val_opts  o;
	struct vkeys     keys;
	struct validator v;
	struct val_result r;
	struct buf       out;
	uint64_t         cursor;          /* rescan: last inbox seq handled this pass */
	long long        pass_started_ms;
	long long        rescan_age_ms, retry_ms;
	size_t           rescan_batch;
	struct keyfetch *kf;  size_t nkf, kfcap;
	struct waiting  *w;   size_t nw, wcap;
	uint64_t         next_req;
	int              nworkers;
	struct pool      pool;            /* workers > 1 */
	struct validator *wv;             /* one per worker; NULL: no pool */
	struct vitem    *batch; size_t nb;
	size_t           seen;            /* [validated] seen_cache */
	long long        rescan_every;
	struct event    *rescan_ev;
	const char      *revalidating;    /* on_key_result: the server whose events are revalidated */
};

static struct validated validated;
#define VD(d) ((struct validated *)(d)->priv)

static int known_in_store(void *arg, const char *event_id)
{
	struct daemon *d = arg;
	MDB_txn *t = store_begin_shared(d->st);     /* workers call this too */
	int rc = store_event_exists(t, d->st, event_id);
	store_end_shared(d->st, t);
	return rc == 1;
}

/* The store lookup for events arriving live (FT_EVENT frames): only while
 * it pays. The lookup exists to skip the signature check of an event that
 * is already stored; on a stream of new events (sync, a fetch of what is
 * missing) it never hits and costs a random B-tree walk per event (~10 us,
 * a tenth of validated). So after KNOWN_MISS_RUN live misses in a row only
 * every KNOWN_SAMPLE-th live event is looked up, and one hit (a re-import,
 * a second peer re-sending old events) turns the lookup on for every live
 * event again. Rescans and key-wait revalidations always look up.
 *
 * Why skipping it is safe: it only ever decides whether an event gets the
 * full check or none. A skipped lookup means the full check (never less
 * checking: the seen cache, hashes and signatures all run), and it changes
 * nothing stored: purgatoryd, the store's only writer, checks each ID in
 * the very write transaction that would store it, so an event that is
 * already there is a duplicate (a no-op that just deletes its inbox row)
 * whatever validated said. Workers race on these counters: a lost update
 * only moves when the mode flips (relaxed atomics, no torn values). */
#define KNOWN_MISS_RUN 256
#define KNOWN_SAMPLE   32
static _Atomic unsigned known_live_n, known_live_misses;
static _Atomic unsigned long long known_live_skipped;     /* stats: store_lookups_skipped */
static _Atomic int known_live_on = 1;

static int known_live(void *arg, const char *event_id)
{
	unsigned n = atomic_fetch_add_explicit(&known_live_n, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&known_live_on, memory_order_relaxed) && n % KNOWN_SAMPLE) {
		atomic_fetch_add_explicit(&known_live_skipped, 1, memory_order_relaxed);
		return 0;
	}
	int hit = known_in_store(arg, event_id);
	if (hit) {
		atomic_store_explicit(&known_live_misses, 0, memory_order_relaxed);
		atomic_store_explicit(&known_live_on, 1, memory_order_relaxed);
	} else if (atomic_fetch_add_explicit(&known_live_misses, 1, memory_order_relaxed) + 1 >= KNOWN_MISS_RUN) {
		atomic_store_explicit(&known_live_on, 0, memory_order_relaxed);
	}
	return hit;
}

static struct keyfetch *kf_find(struct validated *v, const char *server, int create)
{
	for (size_t i = 0; i < v->nkf; i++)
		if (strcmp(v->kf[i].server, server) == 0)
			return &v->kf[i];
	if (!create)
		return NULL;
	if (v->nkf == v->kfcap) {
		v->kfcap = v->kfcap ? v->kfcap * 2 : 16;
		v->kf = xreallocarray(v->kf, v->kfcap, sizeof *v->kf);
	}
	struct keyfetch *k = &v->kf[v->nkf++];
	memset(k, 0, sizeof *k);
	snprintf(k->server, sizeof k->server, "%s", server);
	return k;
}

static int waiting_has(struct validated *v, uint64_t seq)
{
	for (size_t i = 0; i < v->nw; i++)
		if (v->w[i].seq == seq)
			return 1;
	return 0;
}

static void waiting_add(struct validated *v, uint64_t seq, const char *server)
{
	if (waiting_has(v, seq))
		return;
	if (v->nw == v->wcap) {
		v->wcap = v->wcap ? v->wcap * 2 : 64;
		v->w = xreallocarray(v->w, v->wcap, sizeof *v->w);
	}
	v->w[v->nw].seq = seq;
	snprintf(v->w[v->nw].server, sizeof v->w[v->nw].server, "%s", server);
	v->nw++;
}

static int keyfetch_want(struct daemon *d, const char *server, const char *key_id);

/* The trusted notaries ([node] trusted_key_servers) lacking a usable
 * key of their own get theirs fetched (from themselves only): a notary's
 * answer counts only with a key the notary served. */
static void notary_keys_want(struct daemon *d, const char *server)
{
	const char *l = cfg_str(&d->cfg, "node", "trusted_key_servers");
	if (cfg_list_has(&d->cfg, "node", "trusted_key_servers", server))
		return;
	while (*l) {
		char name[256];
		size_t n = strcspn(l, ", \t");
		if (n && n < sizeof name) {
			memcpy(name, l, n);
			name[n] = 0;
			if (!vkeys_usable(&VD(d)->keys, name))
				keyfetch_want(d, name, NULL);
		}
		l += n;
		l += strspn(l, ", \t");
	}
}

static int notaries_count(const struct config *c)
{
	const char *l = cfg_str(c, "node", "trusted_key_servers");
	int n = 0;
	while (*l) {
		size_t k = strcspn(l, ", \t");
		if (k) n++;
		l += k;
		l += strspn(l, ", \t");
	}
	return n;
}

/* Ask fetchd for server's key document (key_id: the one wanted, named to a
 * notary in its query; NULL or "": any). 1 if a fetch is (now) in flight,
 * 0 if the server's keys definitely cannot be had, or were just fetched
 * (reject), -1 if not now (fetchd down, recent transient failure: the
 * inbox keeps the event). fetchd asks the trusted notaries, then the
 * server itself (fetch_select.c). */
static int keyfetch_want(struct daemon *d, const char *server, const char *key_id)
{
	struct validated *v = VD(d);
	struct keyfetch *k = kf_find(v, server, 1);
	long long now = mono_ms();

	if (k->state == KF_INFLIGHT && now < k->until_ms)
		return 1;
	if (k->state == KF_FAILED && now < k->until_ms)
		return 0;
	/* just fetched: final for the events that waited for that document;
	 * a newer event waits in the inbox for the next fetch (rescan) */
	if (k->state == KF_DONE && now < k->until_ms)
		return v->revalidating && strcmp(v->revalidating, server) == 0 ? 0 : -1;
	struct buf q;
	buf_init(&q);
	buf_adds(&q, "{\"op\":\"server_keys\",\"event_id\":");
	json_put_string(&q, server, strlen(server));
	buf_adds(&q, ",\"servers\":[");
	json_put_string(&q, server, strlen(server));
	buf_adds(&q, "]");
	if (key_id && key_id[0]) {
		buf_adds(&q, ",\"events\":[");
		json_put_string(&q, key_id, strlen(key_id));
		buf_adds(&q, "]");
	}
	int nn = notaries_count(&d->cfg);
	if (nn > 1)
		buf_printf(&q, ",\"max_attempts\":%d", nn + 1);
	buf_adds(&q, "}");
	k->req_id = ++v->next_req;
	int rc = daemon_emit(d, "fetchd", FT_FETCH_REQ, 0, k->req_id, q.data, q.len);
	buf_free(&q);
	if (rc < 0) {
		k->state = KF_NONE;
		log_debug("fetchd not reachable for the keys of %s; the inbox keeps the event", server);
		return -1;
	}
	(*daemon_counter(d, "key_fetches"))++;
	log_info("asked fetchd for the keys of %s", server);
	k->state = KF_INFLIGHT;
	k->until_ms = now + v->retry_ms;
	notary_keys_want(d, server);
	return 1;
}

static void emit_verdict(struct daemon *d, uint64_t seq, const char *bytes, size_t n,
                         const struct val_result *r)
{
	struct validated *v = VD(d);

	buf_reset(&v->out);
	val_result_meta(r, &v->out);
	buf_addc(&v->out, '\n');
	if (r->accept)
		buf_add(&v->out, r->pdu.data, r->pdu.len);
	else
		buf_add(&v->out, bytes, n);
	if (r->accept) {
		(*daemon_counter(d, "accepted"))++;
		if (r->redacted) (*daemon_counter(d, "redacted"))++;
	} else {
		char name[64];
		snprintf(name, sizeof name, "reject.%s", val_reason_str(r->reason));
		(*daemon_counter(d, "rejected"))++;
		(*daemon_counter(d, name))++;
		log_info("reject %s (inbox %llu): %s: %s", r->event_id[0] ? r->event_id : "-",
		         (unsigned long long)seq, val_reason_str(r->reason), r->message);
	}
	daemon_emit(d, "purgatoryd", FT_VERDICT, 0, seq, v->out.data, v->out.len);
}

/* /metrics: validation time per event, observed by whichever thread
 * validated it (relaxed atomic adds). FP_NO_HISTO (bench only) leaves the
 * clock reads out too. */
static struct histo *h_validate;

static void validate_pdu_flags(struct validator *val, const struct val_opts *base, int live,
                               uint16_t flags, const char *bytes, size_t n, struct val_result *r)
{
	struct val_opts o = *base;
	if (flags & FF_DEEP)
		o.checks = VAL_CHECK_ALL;
	if (live && o.known == known_in_store)
		o.known = known_live;
#ifndef FP_NO_HISTO
	uint64_t t0 = histo_now_us();
	validate_pdu(val, &o, bytes, n, r);
	if (h_validate) histo_observe_mt(h_validate, histo_now_us() - t0);
#else
	validate_pdu(val, &o, bytes, n, r);
#endif
}

/* After validation, on the loop thread: counters, key fetches, the verdict. */
static void finish_one(struct daemon *d, uint64_t seq, const char *bytes, size_t n,
                       const struct val_result *r)
{
	struct validated *v = VD(d);
	(*daemon_counter(d, "validated"))++;
	if (r->skipped == 1) (*daemon_counter(d, "known_stored"))++;
	if (r->skipped == 2) (*daemon_counter(d, "known_recent"))++;
	/* An unknown key, or a key past its validity (valid_until_ts, or
	 * fetched 7 days ago): ask for the server's keys again, the event
	 * waits. Only old keys past their expired_ts are final at once. */
	if (!r->accept && seq != 0 && !d->stdio
	    && (r->reason == VR_UNKNOWN_KEY
	        || (r->reason == VR_EXPIRED_KEY && vkeys_refetch_helps(&v->keys, bytes, n, r->sender_server)))) {
		int k = keyfetch_want(d, r->sender_server,
		                      r->reason == VR_UNKNOWN_KEY ? r->missing_key_id : NULL);
		if (k != 0) {
			if (k > 0)
				waiting_add(v, seq, r->sender_server);
			(*daemon_counter(d, "waiting_for_keys"))++;
			return;          /* stays in the inbox: no verdict yet */
		}
	}
	emit_verdict(d, seq, bytes, n, r);
}

static void validate_one(struct daemon *d, int live, uint64_t seq, uint16_t flags,
                         const char *bytes, size_t n)
{
	struct validated *v = VD(d);
	validate_pdu_flags(&v->v, &v->o, live, flags, bytes, n, &v->r);
	finish_one(d, seq, bytes, n, &v->r);
}

/* One worker's share of the batch (a pool_fn; runs off the loop thread). */
static void batch_validate(void *arg, int worker, size_t from, size_t to)
{
	struct validated *v = arg;
	for (size_t i = from; i < to; i++)
		validate_pdu_flags(&v->wv[worker], &v->o, 1, v->batch[i].flags, v->batch[i].p,
		                   v->batch[i].n, &v->batch[i].r);
}

static void batch_run(struct daemon *d)
{
	struct validated *v = VD(d);
	size_t n = v->nb;
	if (n == 0)
		return;
	pool_run(&v->pool, n, batch_validate, v);
	for (size_t i = 0; i < n; i++) {
		struct vitem *it = &v->batch[i];
		finish_one(d, it->seq, it->p, it->n, &it->r);
		free(it->p);
		it->p = NULL;
	}
	v->nb = 0;
}

static void batch_add(struct daemon *d, struct frame *f)
{
	struct validated *v = VD(d);
	struct vitem *it = &v->batch[v->nb++];
	it->seq = f->id;
	it->flags = f->flags;
	it->p = f->payload;          /* taken over: frame_free sees NULL */
	it->n = f->len;
	f->payload = NULL;
	if (v->nb == VD_BATCH_MAX)
		batch_run(d);
}

static void vd_turn(struct daemon *d)
{
	if (VD(d))
		batch_run(d);
}

/* Re-validate one inbox entry (its bytes copied out of the read txn first:
 * validation opens read txns of its own). */
static void revalidate_seq(struct daemon *d, uint64_t seq)
{
	struct inbox_rec ir;
	MDB_txn *t = store_begin(d->st, 1);
	if (store_inbox_get(t, d->st, seq, &ir) != 0) {
		mdb_txn_abort(t);
		return;
	}
	char *copy = xmemdup(ir.bytes, ir.len);
	size_t n = ir.len;
	mdb_txn_abort(t);
	validate_one(d, 0, seq, 0, copy, n);
	free(copy);
}

static void on_key_result(struct daemon *d, struct frame *f)
{
	struct validated *v = VD(d);
	struct keyfetch *k = NULL;
	for (size_t i = 0; i < v->nkf; i++)
		if (v->kf[i].state == KF_INFLIGHT && v->kf[i].req_id == f->id)
			k = &v->kf[i];
	if (!k) {
		log_debug("fetch result %llu matches no key fetch", (unsigned long long)f->id);
		return;
	}
	const char *meta, *body;
	size_t ml, bl;
	struct json_doc jd = {0};
	char err[256] = "", ecode[32] = "", from[256] = "";
	int ok = 0;
	if (frame_split_meta(f, &meta, &ml, &body, &bl) < 0 || json_parse(&jd, meta, ml, 8) < 0
	    || jd.tok[0].type != JSON_OBJECT) {
		log_warnx("fetchd: malformed fetch result for the keys of %s", k->server);
		snprintf(ecode, sizeof ecode, "timeout");
	} else {
		int t = json_obj_get(&jd, 0, "ok");
		ok = t >= 0 && jd.tok[t].type == JSON_TRUE;
		t = json_obj_get(&jd, 0, "error");
		if (t >= 0 && jd.tok[t].type == JSON_STRING)
			json_str_copy(&jd, t, ecode, sizeof ecode);
		t = json_obj_get(&jd, 0, "server");
		if (t >= 0 && jd.tok[t].type == JSON_STRING)
			json_str_copy(&jd, t, from, sizeof from);
	}
	json_doc_free(&jd);
	long long now = mono_ms();
	if (ok) {
		/* Checked again here, by who answered: the server itself, or a
		 * trusted notary countersigning with a key it served itself. */
		struct keyring got;
		int added;
		keyring_init(&got);
		if (strcmp(from, k->server) == 0) {
			added = keyring_add_server_doc_for(&got, body, bl, k->server, err, sizeof err);
		} else if (from[0] && cfg_list_has(&d->cfg, "node", "trusted_key_servers", from)
		           && !cfg_list_has(&d->cfg, "node", "trusted_key_servers", k->server)) {
			added = keyring_add_notary_answer(&got, body, bl, k->server, from, vkeys_notary_key,
			                                  &v->keys, err, sizeof err);
			if (added == KEYS_NOTARY_KEY_UNKNOWN)
				keyfetch_want(d, from, NULL);
		} else {
			added = -1;
			snprintf(err, sizeof err, "answered by %.100s, neither the server nor a trusted notary",
			         from[0] ? from : "(nobody)");
		}
		if (added <= 0) {
			log_warnx("keys of %s refused: %s", k->server, added < 0 ? err : "no ed25519 keys");
			(*daemon_counter(d, "keys_refused"))++;
			ok = 0;
			snprintf(ecode, sizeof ecode, "not_found");
		} else {
			int rc, stored = 0, conflicts;
			int64_t fetched = now_ms();
			do {
				MDB_txn *t = store_begin(d->st, 0);
				rc = 0;
				stored = 0;
				conflicts = 0;
				for (size_t i = 0; i < got.n && !rc; i++) {
					struct verify_key *vk = &got.k[i];
					struct key_rec kr;
					memcpy(kr.pk, vk->pk, 32);
					kr.valid_until_ts = vk->valid_until_ts;
					kr.fetched_ts = fetched;
					kr.flags = vk->old ? KEY_OLD : 0;
					rc = store_key_put_rec(t, d->st, vk->server, vk->key_id, &kr);
					if (rc == STORE_KEY_CONFLICT) {
						/* A stored (server, key ID) keeps its key: this
						 * one is dropped, never used. */
						log_warnx("keys of %s: %s is not the key stored under that ID; refused",
						          vk->server, vk->key_id);
						(*daemon_counter(d, "key_conflicts"))++;
						got.k[i] = got.k[--got.n];
						i--;
						rc = 0;
						conflicts++;
					} else if (rc == 0) {
						stored++;
					}
				}
				/* The signed document beside its keys, for what we
				 * serve as a notary (served_matrix.c: mx_key_query):
				 * never one holding a key we refused. */
				if (!rc && !conflicts)
					rc = store_key_doc_put_answer(t, d->st, k->server, body, bl);
				if (rc) mdb_txn_abort(t);
				else rc = store_commit(t);   /* a failed commit frees the txn */
			} while (rc && store_write_failed(d->st, rc));
			/* not stored (store full): the keys are kept in memory and
			 * used; they are fetched again after a restart. Memory copies
			 * of stored keys follow the newest document too. */
			for (size_t i = 0; i < got.n; i++) {
				int in_mem;
				pthread_rwlock_rdlock(&v->keys.lock);
				in_mem = keyring_find(&v->keys.kr, got.k[i].server, got.k[i].key_id) != NULL;
				pthread_rwlock_unlock(&v->keys.lock);
				if (rc || in_mem)
					vkeys_keep(&v->keys, &got.k[i], fetched);
			}
			if (rc) log_warnx("could not store the keys of %s: %s", k->server, mdb_strerror(rc));
			else log_info("stored %d key(s) of %s (from %s)", stored, k->server, from);
		}
		keyring_free(&got);
	}
	if (ok) {
		k->state = KF_DONE;
		k->until_ms = now + v->retry_ms;
	} else if (!strcmp(ecode, "not_found") || !strcmp(ecode, "no_candidates")
	           || !strcmp(ecode, "bad_request")) {
		k->state = KF_FAILED;
		k->until_ms = now + v->retry_ms;
		log_info("keys of %s cannot be fetched (%s): its events are rejected unknown_key",
		         k->server, ecode);
	} else {
		k->state = KF_FAILED;           /* transient: do not ask again at once */
		k->until_ms = now + v->retry_ms;
		log_info("key fetch for %s failed (%s); retrying later", k->server,
		         ecode[0] ? ecode : "?");
		/* The events stay in the inbox; the rescan retries after retry_ms. */
		size_t j = 0;
		for (size_t i = 0; i < v->nw; i++)
			if (strcmp(v->w[i].server, k->server) != 0)
				v->w[j++] = v->w[i];
		v->nw = j;
		k->state = KF_NONE;
		k->until_ms = 0;
		return;
	}
	/* Re-validate the events that waited for this server. */
	char server[256];
	snprintf(server, sizeof server, "%s", k->server);
	uint64_t *seqs = NULL;
	size_t ns = 0, j = 0;
	for (size_t i = 0; i < v->nw; i++) {
		if (strcmp(v->w[i].server, server) == 0) {
			seqs = xreallocarray(seqs, ns + 1, sizeof *seqs);
			seqs[ns++] = v->w[i].seq;
		} else {
			v->w[j++] = v->w[i];
		}
	}
	v->nw = j;
	v->revalidating = server;
	for (size_t i = 0; i < ns; i++)
		revalidate_seq(d, seqs[i]);
	v->revalidating = NULL;
	free(seqs);
}

static void rescan(struct daemon *d, void *arg)
{
	struct validated *v = VD(d);
	long long now = now_ms();
	(void)arg;

	if (v->cursor == 0) {
		if (mono_ms() - v->pass_started_ms < v->rescan_age_ms && v->pass_started_ms)
			return;
		v->pass_started_ms = mono_ms();
	}
	uint64_t *seqs = xcalloc(v->rescan_batch, sizeof *seqs);
	size_t ns = 0;
	int end = 1;
	MDB_txn *t = store_begin(d->st, 1);
	/* the inbox keyed by big-endian seq: walk on from the cursor */
	struct store_iter it;
	unsigned char kb[8];
	be64_put(kb, v->cursor + 1);
	store_iter_open(&it, t, d->st, DB_INBOX, NULL, 0);
	store_iter_from(&it, kb, sizeof kb);
	while (store_iter_next(&it) == 1) {
		if (ns == v->rescan_batch) { end = 0; break; }
		struct inbox_rec ir;
		uint64_t seq = it.k.mv_size == 8 ? be64_get(it.k.mv_data) : 0;
		v->cursor = seq;
		if (seq && store_inbox_parse(&it.v, &ir) == 0
		    && (long long)ir.received_ms < now - v->rescan_age_ms && !waiting_has(v, seq))
			seqs[ns++] = seq;
	}
	store_iter_close(&it);
	mdb_txn_abort(t);
	if (end)
		v->cursor = 0;
	for (size_t i = 0; i < ns; i++)
		revalidate_seq(d, seqs[i]);
	if (ns) {
		(*daemon_counter(d, "rescanned"))+= ns;
		log_debug("rescan: re-validated %zu inbox entries", ns);
	}
	free(seqs);
}

static void vd_on_frame(struct daemon *d, struct conn *c, struct frame *f)
{
	switch (f->type) {
	case FT_EVENT:
		if (VD(d)->nworkers > 1)
			batch_add(d, f);
		else
			validate_one(d, 1, f->id, f->flags, f->payload, f->len);
		break;
	case FT_FETCH_RESULT:
		on_key_result(d, f);
		break;
	case FT_HELLO:
	case FT_WAKEUP:
		break;
	default:
		log_warnx("%s: unexpected %s frame; dropping the connection", conn_peer(c),
		          frame_type_name(f->type));
		(*daemon_counter(d, "bad_frames"))++;
		if (!d->stdio)
			conn_close(c);
	}
}

static int vd_option(struct daemon *d, int opt, const char *arg)
{
	(void)d;
	return vopts_option(&validated.vo, opt, arg);
}

/* The workers (workers > 1): the pool, each worker its own validator and
 * seen cache, the batch; nothing in flight when they are built or freed
 * (between turns). */
static void workers_build(struct validated *v)
{
	if (v->nworkers <= 1)
		return;
	pool_init(&v->pool, v->nworkers);
	v->wv = xcalloc((size_t)v->nworkers, sizeof *v->wv);
	v->batch = xcalloc(VD_BATCH_MAX, sizeof *v->batch);
	for (int i = 0; i < v->nworkers; i++)
		validator_init(&v->wv[i], v->seen / (size_t)v->nworkers);
	for (size_t i = 0; i < VD_BATCH_MAX; i++)
		val_result_init(&v->batch[i].r);
}

static void workers_free(struct validated *v)
{
	if (!v->wv)
		return;
	for (int i = 0; i < v->nworkers; i++)
		validator_free(&v->wv[i]);
	for (size_t i = 0; i < VD_BATCH_MAX; i++) {
		free(v->batch[i].p);
		val_result_free(&v->batch[i].r);
	}
	pool_free(&v->pool);
	free(v->wv);
	free(v->batch);
	v->wv = NULL;
	v->batch = NULL;
	v->nb = 0;
}

static int workers_of(const struct validated *v, const struct config *c)
{
	/* 1..30 both ways: the parameter table and --workers check it. */
	return v->vo.workers ? v->vo.workers : (int)cfg_int(c, "validated", "workers");
}

/* The values read from the configuration that can change at a reload. */
static void vd_params(struct daemon *d)
{
	struct validated *v = VD(d);
	v->rescan_age_ms = cfg_ms(&d->cfg, "validated", "rescan_age");
	v->retry_ms = cfg_ms(&d->cfg, "validated", "key_fetch_retry");
	v->rescan_batch = (size_t)cfg_int(&d->cfg, "validated", "rescan_batch");
	if (v->rescan_batch == 0) v->rescan_batch = 1000;
	v->rescan_every = cfg_ms(&d->cfg, "validated", "rescan_every");
	d->st->map_max = (size_t)cfg_size(&d->cfg, "node", "map_size_max");
}

static void log_checks(struct validated *v, const char *what)
{
	log_info("%s:%s%s%s room version %d, %zu verify key(s) loaded, %d worker(s)", what,
	         (v->o.checks & VAL_CHECK_EVENT_ID) ? " event_id" : "",
	         (v->o.checks & VAL_CHECK_HASHES) ? " hashes" : "",
	         (v->o.checks & VAL_CHECK_SIGNATURES) ? " signatures" : "",
	         v->o.room_version, v->keys.kr.n, v->nworkers);
}

static int vd_init(struct daemon *d)
{
	struct validated *v = &validated;
	d->priv = v;
	h_validate = daemon_histo(d, "validate_time", "us");
	if (sodium_init() < 0)
		fatalx("libsodium init failed");
	if (vopts_apply(&d->cfg, &v->vo, &v->o) < 0)
		return EXIT_CONFIG;
	vkeys_init(&v->keys, d->st);
	if (vkeys_load(&v->keys, &d->cfg, &v->vo) < 0)
		return EXIT_CONFIG;
	v->o.key = vkeys_lookup;
	v->o.key_arg = &v->keys;
	v->o.rv = vstore_room_version;
	v->o.rv_arg = d->st;
	v->o.known = known_in_store;
	v->o.known_arg = d;
	v->o.want_pdu = 1;
	v->seen = (size_t)cfg_int(&d->cfg, "validated", "seen_cache");
	validator_init(&v->v, v->seen);
	val_result_init(&v->r);
	v->nworkers = workers_of(v, &d->cfg);
	workers_build(v);
	buf_init(&v->out);
	vd_params(d);
	if (!d->stdio) {
		rescan(d, NULL);      /* at startup: whatever the inbox holds */
		v->rescan_ev = daemon_timer(d, v->rescan_every, rescan, NULL);
	}
	log_checks(v, "checks");
	return 0;
}

/* SIGHUP: d->cfg is the new configuration. Nothing here points into a
 * configuration (val_opts holds values and callbacks; the keyring copies
 * what it loads), so applying is: recompute, swap, reset what the old
 * values shaped (seen caches remember verdicts made under the old checks). */
static void vd_on_reload(struct daemon *d, const struct config *old)
{
	struct validated *v = VD(d);
	if (!v)
		return;
	batch_run(d);                 /* nothing of the old settings in flight */
	struct val_opts o;
	if (vopts_apply(&d->cfg, &v->vo, &o) < 0) {
		log_warnx("reload: validation options refused; the previous checks stay");
	} else {
		o.key = v->o.key; o.key_arg = v->o.key_arg;
		o.rv = v->o.rv; o.rv_arg = v->o.rv_arg;
		o.known = v->o.known; o.known_arg = v->o.known_arg;
		o.want_pdu = v->o.want_pdu;
		v->o = o;
	}
	/* verify keys: the files and the own key again (fetched keys stay in
	 * LMDB, where lookups find them) */
	struct vkeys nk;
	vkeys_init(&nk, d->st);
	if (vkeys_load(&nk, &d->cfg, &v->vo) < 0) {
		log_warnx("reload: keys not loaded; the previous keys stay");
	} else {
		vkeys_keep_own(&nk, &v->keys, &d->cfg);
		pthread_rwlock_wrlock(&v->keys.lock);
		struct keyring t = v->keys.kr;
		v->keys.kr = nk.kr;
		nk.kr = t;
		pthread_rwlock_unlock(&v->keys.lock);
	}
	vkeys_free(&nk);
	workers_free(v);
	validator_free(&v->v);
	v->seen = (size_t)cfg_int(&d->cfg, "validated", "seen_cache");
	validator_init(&v->v, v->seen);
	v->nworkers = workers_of(v, &d->cfg);
	workers_build(v);
	long long every = v->rescan_every;
	vd_params(d);
	if (v->rescan_ev && every != v->rescan_every) {
		struct timeval tv = { v->rescan_every / 1000, (v->rescan_every % 1000) * 1000 };
		event_add(v->rescan_ev, &tv);
	}
	log_checks(v, "reload: checks");
}

static void vd_fini(struct daemon *d)
{
	struct validated *v = VD(d);
	if (!v)
		return;
	validator_free(&v->v);
	val_result_free(&v->r);
	workers_free(v);
	buf_free(&v->out);
	vkeys_free(&v->keys);
	free(v->kf);
	free(v->w);
}

static void vd_stats(struct daemon *d, struct buf *json)
{
	struct validated *v = VD(d);
	uint64_t hits = v->v.n_seen_hits;
	for (int i = 0; v->wv && i < v->nworkers; i++)
		hits += v->wv[i].n_seen_hits;
	buf_printf(json, ",\"waiting_for_keys\":%zu,\"seen_hits\":%llu,\"workers\":%d", v->nw,
	           (unsigned long long)hits, v->nworkers);
	buf_printf(json, ",\"store_lookups_skipped\":%llu",
	           atomic_load_explicit(&known_live_skipped, memory_order_relaxed));
}

int validated_daemon(int argc, char **argv)
{
	static const struct option longopts[] = {
		VALIDATED_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	static const struct daemon_ops ops = {
		.name = "validated",
		.summary = "two-tier Matrix PDU validator: FT_EVENT in, FT_VERDICT out",
		.usage = VALIDATED_USAGE_OPTS,
		.longopts = longopts,
		.option = vd_option,
		.store = &store_for_daemon,
		.init = vd_init,
		.on_frame = vd_on_frame,
		.on_turn = vd_turn,
		.on_reload = vd_on_reload,
		.stats = vd_stats,
		.fini = vd_fini,
	};
	return daemon_main(argc, argv, &ops);
}
