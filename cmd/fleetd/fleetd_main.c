/* fleetd_main.c: fleetd, a node's member of a fleet ([fleet] nats_url):
 * it takes, renews and releases peer leases in a NATS JetStream KV bucket
 * and hands them to syncd through LMDB (store/fleet.h), so each [peer] is
 * pulled by exactly one node of the fleet at a time.
 *
 * KV bucket <name>_leases (History 5, TTL = [fleet] lease_ttl, replicas):
 *   member.<member>  heartbeat, rewritten every ttl/3: the live members;
 *                    "<wall ms> <peer>=<cursor> ...", its own cursors
 *   peer.<peer>      the holder's member name ("" = released), taken with
 *                    kvStore_Create (absent) or kvStore_Update(revision)
 *                    (released), renewed every ttl/3 with kvStore_Update on
 *                    our revision; a failed CAS means it is not ours.
 * KV bucket <name>_peers (no TTL, History 5, replicas):
 *   cursor.<peer>    decimal: the holder's committed cursor for the peer,
 *                    sealed with the fleet MAC ("<value> mac:<MAC>",
 *                    feed/fleet_mac.h; a value without it is ignored, so
 *                    no one outside the fleet can move a cursor)
 *   ident.<peer>     "<node_id> <server_name>": the pinned identity (sealed)
 *
 * Expiry: the bucket's TTL (the stream's MaxAge), not a timestamp in the
 * value. With JetStream 2.9 (no per-message TTL) MaxAge is what the server
 * itself enforces: a value is removed no earlier than TTL after the server
 * stored it, after which the key is absent and kvStore_Create succeeds for
 * exactly one taker, and the old holder's kvStore_Update(our revision)
 * fails (the subject's last sequence is no longer ours). A timestamp in the
 * value, compared with the revision's time, would compare the taker's clock
 * with the server's (and the writer's), so clock skew between machines
 * could let a lease be taken while its holder still pulls. With MaxAge the
 * holder only needs its own clock: it writes until = (when it sent the
 * CAS) + ttl - margin into LMDB, a moment before which the server cannot
 * have expired the entry, whatever the server's clock says. Replicas expire
 * independently (2.9 does not replicate MaxAge removals), but only ever
 * late, never early. The price: every key of the bucket expires, so the
 * cursors and identities live in a second bucket without TTL.
 *
 * Balance: a member takes a free lease only while it holds fewer than
 * ceil(peers / live members), or when the peer has been free for a whole
 * TTL (someone is missing); it releases leases over its share one at a
 * time (the LMDB row first, the KV value a TTL later: syncd starts no
 * request without the row and cuts its long-polls to end before the row's
 * time, so it has stopped before another node starts).
 *
 * Cursor hand-off: fleetd polls federation_state every tick and writes the
 * cursor and pins of the peers it holds to KV, but a cursor only once what
 * was pulled up to it is on the fleet feed: committed to the inbox is not
 * enough, since a node killed then takes its undecided inbox, its held
 * events and its unpublished outbox rows with it, and the next holder,
 * resuming at that cursor, would never pull them again. Per peer: (1) a
 * cursor c is noted with the inbox's last row (syncd commits both in one
 * txn); (2) once no inbox row up to that one is left (purgatoryd decided
 * each: stored, held or rejected) and nothing is held in purgatory, the
 * stream's last position is noted; (3) once every outbox row up to that
 * position is published, c goes to KV. A cursor in KV is thus never ahead
 * of the fleet feed; the next holder re-pulls at most what was in flight
 * (harmless: the store is idempotent, the stream dedupes by Nats-Msg-Id).
 * When it takes a lease
 * it first copies the KV cursor (if ahead of ours) and identity (if we
 * have none) into LMDB, then writes the lease row, in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/daemon.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/store.h"
#include "store/fedstate.h"
#include "store/fleet.h"
#include "store/outbox.h"
#include "feed/fleet_nats.h"
#include "feed/fleet_mac.h"

struct fpeer {
	char      name[64];
	char      key[80];          /* peer.<name> */
	int       held;             /* we hold it (KV revision rev) */
	uint64_t  rev;
	long long renewed;          /* mono ms of the CAS that last succeeded */
	long long releasing;        /* mono ms the release began (row deleted); 0 none */
	long long free_since;       /* mono ms we first saw it free; 0 not free */
	uint64_t  kv_cursor;        /* what we last wrote to cursor.<name> */
	int       safe_stage;       /* 0: none; 1: waiting for the inbox; 2: for the outbox */
	uint64_t  safe_cursor, safe_inbox, safe_stream;   /* the cursor on its way to KV */
	char      kv_ident[320];
};

struct fleetd {
	struct fleet_key key;       /* MACs on cursor.* and ident.* (feed/fleet_mac.h) */
	struct daemon     *d;
	struct fleet_nats  n;
	kvStore           *kv, *kvp;
	char               member[128];
	char               mkey[160];
	long long          ttl, margin, tick_ms, wait_ms, hb_at, release_delay;
	struct fpeer      *peers;
	size_t             npeers;
	int                members;
	uint64_t *c_takes, *c_renewals, *c_losses, *c_releases, *c_cas_lost, *c_nats_errors,
	         *c_cursor_puts, *c_copied, *c_kv_refused;
	int64_t  *g_held, *g_members, *g_peers;
};

static struct fleetd fleetd;

static int key_ok(const char *s)
{
	if (!*s) return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
		      || *s == '-' || *s == '_' || *s == '='))
			return 0;
	return 1;
}

/* Run fn in a write txn, with the store-full contract (1: map grown, redo). */
static int with_txn(struct fleetd *f, int (*fn)(struct fleetd *, MDB_txn *, void *), void *arg)
{
	int rc;
	for (;;) {
		MDB_txn *t = store_begin(f->d->st, 0);
		rc = fn(f, t, arg);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (!rc || store_write_failed(f->d->st, rc) != 1) break;
	}
	return rc;
}

static int del_row(struct fleetd *f, MDB_txn *t, void *arg)
{
	return fleet_lease_del(t, f->d->st, ((struct fpeer *)arg)->name);
}

static void lost(struct fleetd *f, struct fpeer *p, const char *why)
{
	if (with_txn(f, del_row, p)) log_err("peer %s: cannot delete the lease row", p->name);
	if (p->held && !p->releasing) {
		(*f->c_losses)++;
		log_notice("peer %s: lease lost (%s); syncd stops pulling it", p->name, why);
	}
	p->held = 0;
	p->releasing = 0;
	p->rev = 0;
	p->safe_stage = 0;
}

struct take_arg { struct fpeer *p; long long until; int copy; };

/* The lease row, after copying the fleet's cursor and identity when we
 * have just taken the lease. */
static int write_row(struct fleetd *f, MDB_txn *t, void *arg)
{
	struct take_arg *a = arg;
	struct store *st = f->d->st;
	const char *peer = a->p->name;
	int rc;
	if (a->copy) {
		char key[96];
		kvEntry *e = NULL;
		snprintf(key, sizeof key, "cursor.%s", peer);
		if (kvStore_Get(&e, f->kvp, key) == NATS_OK) {
			char *end, cv[32];
			const char *v = kvEntry_ValueString(e);
			unsigned long long kc = 0;
			if (fleet_kv_open(&f->key, key, v, cv, sizeof cv) < 0) {
				log_warnx("peer %s: the fleet's %s carries no valid fleet MAC (not written by a member); "
				          "ignored: resuming from our own cursor", peer, key);
				(*f->c_kv_refused)++;
			} else {
				kc = strtoull(cv, &end, 10);
				if (end == cv || *end) {
					log_warnx("peer %s: the fleet's %s is not a number; ignored", peer, key);
					kc = 0;
				}
			}
			uint64_t mine = fstate_cursor(t, st, peer);
			if (kc > mine) {
				unsigned char b[8];
				be64_put(b, kc);
				if ((rc = fstate_put(t, st, peer, "cursor", b, 8))) { kvEntry_Destroy(e); return rc; }
				log_info("peer %s: cursor %llu from the fleet (ours was %llu)", peer, kc,
				         (unsigned long long)mine);
				(*f->c_copied)++;
			}
			a->p->kv_cursor = kc;
			kvEntry_Destroy(e);
		}
		e = NULL;
		snprintf(key, sizeof key, "ident.%s", peer);
		if (kvStore_Get(&e, f->kvp, key) == NATS_OK) {
			char iv[320];
			const char *v = NULL;
			if (fleet_kv_open(&f->key, key, kvEntry_ValueString(e), iv, sizeof iv) == 0) v = iv;
			else {
				log_warnx("peer %s: the fleet's %s carries no valid fleet MAC (not written by a member); ignored",
				          peer, key);
				(*f->c_kv_refused)++;
				kvEntry_Destroy(e);
				e = NULL;
				goto ident_done;
			}
			const char *sp = strchr(v, ' ');
			char pin[64];
			if (sp && sp > v && (size_t)(sp - v) < 40 && sp[1]
			    && fstate_get(t, st, peer, "node_id", pin, sizeof pin) < 0) {
				if ((rc = fstate_put(t, st, peer, "node_id", v, (size_t)(sp - v)))
				    || (rc = fstate_put(t, st, peer, "server_name", sp + 1, strlen(sp + 1)))) {
					kvEntry_Destroy(e);
					return rc;
				}
				log_info("peer %s: pinned identity from the fleet: %s", peer, v);
			}
			else if (!sp || sp == v || (size_t)(sp - v) >= 40 || !sp[1])
				log_warnx("peer %s: the fleet's %s is malformed (want \"<node_id> <server_name>\"); ignored",
				          peer, key);
			if (v) snprintf(a->p->kv_ident, sizeof a->p->kv_ident, "%s", v);
			kvEntry_Destroy(e);
		}
	ident_done:;
	}
	return fleet_lease_put(t, st, peer, a->until, f->member);
}

/* A CAS that succeeded at mono t0 / wall w0: the lease is ours until the
 * server may expire it. */
static void got(struct fleetd *f, struct fpeer *p, uint64_t rev, long long t0, long long w0, int fresh)
{
	p->rev = rev;
	p->renewed = t0;
	p->free_since = 0;
	if (p->releasing) { p->held = 1; return; }   /* keep it alive, no row */
	struct take_arg a = { p, w0 + f->ttl - f->margin, fresh };
	if (with_txn(f, write_row, &a)) {
		log_err("peer %s: cannot write the lease row; not pulling it", p->name);
		return;
	}
	if (fresh) {
		p->safe_stage = 0;
		(*f->c_takes)++;
		log_notice("peer %s: lease taken (revision %llu)", p->name, (unsigned long long)rev);
	} else (*f->c_renewals)++;
	p->held = 1;
}

static size_t held_count(struct fleetd *f)
{
	size_t n = 0;
	for (size_t i = 0; i < f->npeers; i++) n += f->peers[i].held && !f->peers[i].releasing;
	return n;
}

static void heartbeat(struct fleetd *f, long long m)
{
	/* "<wall ms> <peer>=<cursor>...": this member's own cursor of every
	 * peer, so `fedctl fleet` shows each member's lag behind the holder. */
	char v[4096];
	size_t vn = (size_t)snprintf(v, sizeof v, "%lld", now_ms());
	MDB_txn *t = store_begin(f->d->st, 1);
	for (size_t i = 0; i < f->npeers && vn < sizeof v - 100; i++)
		vn += (size_t)snprintf(v + vn, sizeof v - vn, " %s=%llu", f->peers[i].name,
		                       (unsigned long long)fstate_cursor(t, f->d->st, f->peers[i].name));
	mdb_txn_abort(t);
	natsStatus st = kvStore_PutString(NULL, f->kv, f->mkey, v);
	if (st != NATS_OK) {
		(*f->c_nats_errors)++;
		log_warnx("heartbeat %s: %s", f->mkey, natsStatus_GetText(st));
		return;
	}
	f->hb_at = m;
	kvKeysList kl = { 0 };
	st = kvStore_Keys(&kl, f->kv, NULL);
	if (st != NATS_OK && st != NATS_NOT_FOUND) { (*f->c_nats_errors)++; return; }
	int n = 0;
	for (int i = 0; i < kl.Count; i++) n += strncmp(kl.Keys[i], "member.", 7) == 0;
	kvKeysList_Destroy(&kl);
	if (n < 1) n = 1;
	if (n != f->members) log_info("%d live member%s", n, n == 1 ? "" : "s");
	f->members = n;
	*f->g_members = n;
}

static void step(struct fleetd *f, struct fpeer *p, long long m)
{
	kvEntry *e = NULL;
	char holder[160] = "";
	uint64_t rev = 0;
	natsStatus st = kvStore_Get(&e, f->kv, p->key);
	if (st == NATS_OK) {
		rev = kvEntry_Revision(e);
		const char *v = kvEntry_ValueString(e);
		snprintf(holder, sizeof holder, "%s", v ? v : "");
		kvEntry_Destroy(e);
	} else if (st != NATS_NOT_FOUND) {
		/* Unknown: our row, if any, runs out by itself. */
		(*f->c_nats_errors)++;
		log_warnx("peer %s: reading %s: %s", p->name, p->key, natsStatus_GetText(st));
		return;
	}
	long long t0 = mono_ms(), w0 = now_ms();
	if (!strcmp(holder, f->member)) {
		if (p->releasing && m - p->releasing >= f->release_delay) {
			if (kvStore_UpdateString(NULL, f->kv, p->key, "", rev) == NATS_OK) {
				(*f->c_releases)++;
				log_notice("peer %s: lease released (over our share)", p->name);
			}
			p->held = 0; p->releasing = 0; p->rev = 0;
			return;
		}
		/* Ours: renew when due, or adopt a revision we do not know (our
		 * previous run, or a CAS whose answer timed out). */
		if (p->held && p->rev == rev && m - p->renewed < f->ttl / 3) return;
		uint64_t nrev = 0;
		st = kvStore_UpdateString(&nrev, f->kv, p->key, f->member, rev);
		if (st == NATS_OK) got(f, p, nrev, t0, w0, !p->held);
		else { (*f->c_cas_lost)++; lost(f, p, natsStatus_GetText(st)); }
		return;
	}
	if (*holder) {                       /* someone else's */
		if (p->held) lost(f, p, "held by another member");
		p->free_since = 0;
		return;
	}
	if (p->held) lost(f, p, "expired or released");
	if (!p->free_since) p->free_since = m;
	size_t share = ((size_t)f->npeers + (size_t)f->members - 1) / (size_t)f->members;
	if (held_count(f) >= share && m - p->free_since < f->ttl) return;
	uint64_t nrev = 0;
	st = rev ? kvStore_UpdateString(&nrev, f->kv, p->key, f->member, rev)
	         : kvStore_CreateString(&nrev, f->kv, p->key, f->member);
	if (st == NATS_OK) got(f, p, nrev, t0, w0, 1);
	else {
		(*f->c_cas_lost)++;
		log_debug("peer %s: another member took the lease first (%s)", p->name, natsStatus_GetText(st));
	}
}

/* The first (last = 0) or last u64 key of db; 0 if it is empty. */
static uint64_t edge_key(MDB_txn *t, struct store *st, int db, int last)
{
	struct store_iter it;
	uint64_t k = 0;
	store_iter_open(&it, t, st, db, NULL, 0);
	if (last) store_iter_reverse(&it);
	if (store_iter_next(&it) == 1 && it.k.mv_size == 8) k = be64_get(it.k.mv_data);
	store_iter_close(&it);
	return k;
}

/* Every outbox row at or below pos published (or moved to feed_dead). */
static int published_through(MDB_txn *t, struct store *st, uint64_t pos)
{
	unsigned char from[8];
	struct store_iter it;
	struct outbox_row r;
	int ok = 1;
	be64_put(from, outbox_cursor_get(t, st));
	store_iter_open(&it, t, st, DB_OUTBOX, NULL, 0);
	store_iter_from(&it, from, 8);
	while (store_iter_next(&it) == 1) {
		uint64_t at;
		if (outbox_key_pos(&it.k, &at) || at > pos) break;
		if (outbox_row_parse(it.v.mv_data, it.v.mv_size, &r) == 0 && !r.control_version) { ok = 0; break; }
	}
	if (it.rc) ok = 0;
	store_iter_close(&it);
	return ok;
}

/* The cursor of p that may go to KV now (0: none yet); see "Cursor hand-off". */
static uint64_t safe_cursor(struct fleetd *f, struct fpeer *p, MDB_txn *t, uint64_t c)
{
	struct store *st = f->d->st;
	if (!p->safe_stage && c > p->kv_cursor) {
		p->safe_cursor = c;
		p->safe_inbox = edge_key(t, st, DB_INBOX, 1);
		p->safe_stage = 1;
	}
	if (p->safe_stage == 1) {
		uint64_t first = edge_key(t, st, DB_INBOX, 0);
		size_t held = 0;
		if ((!first || first > p->safe_inbox) && !store_entries(t, st, DB_PURGATORY, &held) && !held) {
			p->safe_stream = edge_key(t, st, DB_STREAM, 1);
			p->safe_stage = 2;
		}
	}
	if (p->safe_stage == 2 && published_through(t, st, p->safe_stream)) {
		p->safe_stage = 0;
		return p->safe_cursor;
	}
	return 0;
}

/* The pins, and the cursors whose events are on the fleet feed, of the
 * peers we hold, to KV. */
static void publish(struct fleetd *f)
{
	for (size_t i = 0; i < f->npeers; i++) {
		struct fpeer *p = &f->peers[i];
		if (!p->held || p->releasing) continue;
		char id[64], sn[256], ident[320] = "";
		MDB_txn *t = store_begin(f->d->st, 1);
		uint64_t c = safe_cursor(f, p, t, fstate_cursor(t, f->d->st, p->name));
		if (fstate_get(t, f->d->st, p->name, "node_id", id, sizeof id) > 0
		    && fstate_get(t, f->d->st, p->name, "server_name", sn, sizeof sn) > 0)
			snprintf(ident, sizeof ident, "%s %s", id, sn);
		mdb_txn_abort(t);
		char key[96], v[32];
		if (c > p->kv_cursor) {
			snprintf(key, sizeof key, "cursor.%s", p->name);
			char sealed[128];
			snprintf(v, sizeof v, "%llu", (unsigned long long)c);
			fleet_kv_seal(&f->key, key, v, sealed, sizeof sealed);
			if (kvStore_PutString(NULL, f->kvp, key, sealed) == NATS_OK) {
				p->kv_cursor = c;
				(*f->c_cursor_puts)++;
			} else (*f->c_nats_errors)++;
		}
		if (*ident && strcmp(ident, p->kv_ident)) {
			snprintf(key, sizeof key, "ident.%s", p->name);
			char sealed[400];
			fleet_kv_seal(&f->key, key, ident, sealed, sizeof sealed);
			if (kvStore_PutString(NULL, f->kvp, key, sealed) == NATS_OK)
				snprintf(p->kv_ident, sizeof p->kv_ident, "%s", ident);
			else (*f->c_nats_errors)++;
		}
	}
}

static void tick(struct daemon *d, void *arg)
{
	struct fleetd *f = arg;
	long long m = mono_ms();
	if (!f->hb_at || m - f->hb_at >= f->ttl / 3) heartbeat(f, m);
	for (size_t i = 0; i < f->npeers; i++) step(f, &f->peers[i], mono_ms());
	/* Over our share: release one (the row now, the KV value a tick later). */
	size_t share = ((size_t)f->npeers + (size_t)f->members - 1) / (size_t)f->members;
	if (held_count(f) > share)
		for (size_t i = f->npeers; i-- > 0;) {
			struct fpeer *p = &f->peers[i];
			if (!p->held || p->releasing) continue;
			if (with_txn(f, del_row, p)) break;
			p->releasing = mono_ms();
			log_info("peer %s: over our share (%zu): releasing", p->name, share);
			break;
		}
	publish(f);
	*f->g_held = (int64_t)held_count(f);
}

static int fl_init(struct daemon *d)
{
	struct fleetd *f = &fleetd;
	const struct config *cfg = &d->cfg;
	d->priv = f;
	f->d = d;
	f->g_held = daemon_gauge(d, "leases_held");
	f->g_members = daemon_gauge(d, "members");
	f->g_peers = daemon_gauge(d, "peers");
#define C(v, n) f->v = daemon_counter(d, n)
	C(c_takes, "lease_takes"); C(c_renewals, "lease_renewals"); C(c_losses, "lease_losses");
	C(c_releases, "lease_releases"); C(c_cas_lost, "cas_lost"); C(c_nats_errors, "nats_errors");
	C(c_cursor_puts, "cursor_puts"); C(c_copied, "state_copied"); C(c_kv_refused, "kv_refused");
#undef C
	if (d->stdio) {
		log_err("fleetd takes no frames: --stdio is not supported (it talks to NATS and LMDB only)");
		return EXIT_CONFIG;
	}
	const char *url = cfg_str(cfg, "fleet", "nats_url");
	if (!*url) {
		log_info("no [fleet] nats_url: not in a fleet; idling (syncd pulls every peer itself)");
		return 0;
	}
	const char *name = cfg_str(cfg, "fleet", "name");
	if (!key_ok(name)) { log_err("[fleet] name %s: only letters, digits, '-', '_' and '='", name); return EXIT_CONFIG; }
	char nid[27];
	if (*cfg_str(cfg, "fleet", "member")) snprintf(f->member, sizeof f->member, "%s", cfg_str(cfg, "fleet", "member"));
	else if (store_node_id(d->st, nid)) { log_err("cannot read or make the node ID"); return EXIT_TEMP; }
	else snprintf(f->member, sizeof f->member, "%s", nid);
	if (!key_ok(f->member)) { log_err("[fleet] member %s: only letters, digits, '-', '_' and '='", f->member); return EXIT_CONFIG; }
	snprintf(f->mkey, sizeof f->mkey, "member.%.120s", f->member);
	f->ttl = cfg_ms(cfg, "fleet", "lease_ttl");
	f->margin = f->ttl / 10;
	f->tick_ms = f->ttl / 3 < 1000 ? f->ttl / 3 : 1000;
	f->wait_ms = f->ttl / 5 < 250 ? 250 : f->ttl / 5 > 2000 ? 2000 : f->ttl / 5;
	f->release_delay = f->ttl;   /* syncd's last long-poll ends within its row's lease */
	f->members = 1;
	f->peers = xcalloc(cfg->npeers ? cfg->npeers : 1, sizeof *f->peers);
	for (size_t i = 0; i < cfg->npeers; i++) {
		const struct peer_cfg *pc = &cfg->peers[i];
		if (!strcmp(pc->mode, "paused")) continue;
		if (!key_ok(pc->name)) { log_warnx("peer %s: name unusable as a KV key; not leased", pc->name); continue; }
		struct fpeer *p = &f->peers[f->npeers++];
		snprintf(p->name, sizeof p->name, "%s", pc->name);
		snprintf(p->key, sizeof p->key, "peer.%s", pc->name);
	}
	*f->g_peers = (int64_t)f->npeers;
	char err[512], bucket[256];
	if (fleet_key_load(&f->key, cfg, err, sizeof err) < 0) {
		log_err("fleet: %s", err);
		return EXIT_CONFIG;
	}
	struct nats_sec sec;
	nats_sec_from_config(&sec, cfg, "fleet");
	if (fleet_nats_connect(&f->n, url, &sec, "fedpipe-fleetd", f->wait_ms, err, sizeof err)) {
		log_err("%s", err);
		return EXIT_TEMP;
	}
	int replicas = (int)cfg_int(cfg, "fleet", "replicas");
	snprintf(bucket, sizeof bucket, "%.200s_leases", name);
	if (fleet_nats_bucket(&f->n, &f->kv, bucket, 5, f->ttl, replicas, 1, err, sizeof err)) {
		log_err("%s", err);
		return EXIT_TEMP;
	}
	snprintf(bucket, sizeof bucket, "%.200s_peers", name);
	if (fleet_nats_bucket(&f->n, &f->kvp, bucket, 5, 0, replicas, 1, err, sizeof err)) {
		log_err("%s", err);
		return EXIT_TEMP;
	}
	/* Rows a previous run left: not ours until KV says so again. */
	for (size_t i = 0; i < f->npeers; i++) with_txn(f, del_row, &f->peers[i]);
	log_info("fleet %s at %s as member %s: %zu peer%s, lease ttl %lld ms, tick %lld ms", name, url,
	         f->member, f->npeers, f->npeers == 1 ? "" : "s", f->ttl, f->tick_ms);
	daemon_timer(d, f->tick_ms, tick, f);
	tick(d, f);
	return 0;
}

static void fl_on_reload(struct daemon *d, const struct config *old)
{
	static const char *const keys[] = { "nats_url", "name", "member", "lease_ttl", "replicas", NULL };
	for (int i = 0; keys[i]; i++)
		if (strcmp(cfg_str(old, "fleet", keys[i]), cfg_str(&d->cfg, "fleet", keys[i])))
			log_notice("reload: [fleet] %s changed; it applies at the next restart", keys[i]);
	if (old->npeers != d->cfg.npeers) log_notice("reload: the [peer] list changed; fleetd applies it at the next restart");
}

static void fl_fini(struct daemon *d)
{
	struct fleetd *f = d->priv;
	if (!f || !f->kv) return;
	/* A clean stop hands our peers over at once: rows first (syncd stops),
	 * then the KV values (another member takes them at its next tick). */
	for (size_t i = 0; i < f->npeers; i++) {
		struct fpeer *p = &f->peers[i];
		with_txn(f, del_row, p);
		if (p->held && kvStore_UpdateString(NULL, f->kv, p->key, "", p->rev) == NATS_OK)
			log_info("peer %s: lease released (stopping)", p->name);
	}
	kvStore_Delete(f->kv, f->mkey);
	kvStore_Destroy(f->kv);
	if (f->kvp) kvStore_Destroy(f->kvp);
	fleet_nats_close(&f->n);
	free(f->peers);
}

static const struct daemon_ops ops = {
	.name = "fleetd",
	.summary = "hold this node's share of the fleet's peer leases (NATS JetStream KV) for syncd",
	.store = &store_for_daemon,
	.init = fl_init,
	.on_reload = fl_on_reload,
	.fini = fl_fini,
};

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &ops);
}
