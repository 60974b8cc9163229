/* syncd_peer.c: one pull loop per peer. A round: identity
 * handshake (schema supported, node ID non-empty, pinned on first success,
 * a changed ID stops the peer until `fedctl peer reset`), the peer's key
 * document (verified, stored for validated), then pulls from the durable
 * cursor unless the peer's own clock entry shows nothing past our cursor
 * (what it says of other nodes never skips a pull), then a
 * long-poll that wakes us early when the peer stores more. Each batch is one
 * LMDB txn (inbox entries + cursor + last_seen [+ the peer's clock when caught
 * up]); frames to validated only after the commit. The cursor is only ever
 * set to the `next` of an answer whose events are all in the same txn, so it
 * never skips an event. Failures back off (doubling to backoff_max) and are
 * grouped by kind: the first of a kind logs in full, repeats one line.
 * Health reason codes (fixed): ok, paused, refused, timeout, dns, tls,
 * unauthorized, http_status, bad_body, too_large, schema_unsupported,
 * identity_changed, name_mismatch, bad_key_doc, key_conflict, internal,
 * not_publishing.
 * A peer in [node] mode = subscribe serves nothing of its stream (its
 * identity says so; its events answer 403 M_FORBIDDEN "this node does not
 * publish"): not a failure; logged once per transition, counted
 * (peer_forbidden), asked again only every backoff_max, and its identity
 * saying another mode (or an events answer) resumes it, logged once.
 * In this node's own mode = publish no peer is started (peer_start).
 * Trust: the peer is the server [peer] server_name names, or
 * (unset) the one it said at first success, pinned with its node ID; a
 * later change of either stops it like a node ID change. Keys are taken
 * only for that name, and a stored key never changes. */
#include "syncd.h"
#include "matrix/b64.h"
#include "matrix/json.h"
#include "matrix/keys.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/fedstate.h"
#include "store/health.h"
#include "store/fleet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void round_start(struct peer *p);
static void pull(struct peer *p);
static void schedule(struct peer *p, long long ms);

static long long full_retry_ms(struct syncd *sy);

static void on_events(struct peer *p);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	struct syncd *sy = p->sy;
	if (p->retry_body) {
		/* The batch the full store refused is still in p->body: write it
		 * again, asking the peer nothing (full again: wait again). */
		(*sy->c_store_full_waits)++;
		on_events(p);
		return;
	}
	if (sy->full) {
		/* Store full: no request to the peer until a small write fits. */
		if (fstate_probe(p->sy->d->st, p->cfg.name)) {
			(*sy->c_store_full_waits)++;
			schedule(p, full_retry_ms(sy));
			return;
		}
		p->full_probe_ok = 1;     /* this peer may try one pull */
	}
	if (p->pull_pending) { p->pull_pending = 0; pull(p); return; }
	if (p->phase == PH_STOPPED) {
		/* Stopped on a changed identity: resume once the pin is reset. */
		char pin[64];
		MDB_txn *t = store_begin(p->sy->d->st, 1);
		int have = fstate_get(t, p->sy->d->st, p->cfg.name, "node_id", pin, sizeof pin);
		mdb_txn_abort(t);
		if (have > 0) {
			struct timeval tv = { p->sy->interval / 1000, (p->sy->interval % 1000) * 1000 };
			evtimer_add(p->timer, &tv);
			return;
		}
		log_notice("peer %s: pinned identity was reset; resuming sync", p->cfg.name);
		p->last_kind[0] = 0;
	}
	round_start(p);
}

static void schedule(struct peer *p, long long ms)
{
	if (!p->timer) p->timer = evtimer_new(p->sy->d->base, timer_cb, p);
	if (ms < 0) ms = 0;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(p->timer, &tv);
}

static void once_done(struct peer *p, int rc)
{
	log_info("peer %s: --once %s (%llu events)", p->cfg.name, rc ? "failed" : "done",
	         (unsigned long long)p->pulled);
	daemon_stop(p->sy->d, rc);
}

static void fail(struct peer *p, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct peer *p, const char *kind, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct syncd *sy = p->sy;
	(*sy->c_failures)++;
	p->failures++;
	if (p->failures > 1) p->wait_ms = p->wait_ms * 2 > sy->backoff_max ? sy->backoff_max : p->wait_ms * 2;
	if (strcmp(kind, p->last_kind)) {
		log_warnx("peer %s (%s): %s: %s; retrying in %llds", p->cfg.name, p->cfg.endpoint, kind, msg,
		          p->wait_ms / 1000);
		snprintf(p->last_kind, sizeof p->last_kind, "%s", kind);
	} else {
		log_info("peer %s: still %s (failure %d, next try in %llds)", p->cfg.name, kind, p->failures,
		         p->wait_ms / 1000);
	}
	fstate_health(sy->d->st, p->cfg.name, kind, msg, p->failures);
	p->phase = PH_IDLE;
	if (sy->once) { once_done(p, 1); return; }
	schedule(p, p->wait_ms);
}

#define NOT_PUBLISHING "not_publishing"

/* A duration for a log line: "3s", "1500ms". */
static const char *dur(long long ms, char *out, size_t cap)
{
	if (ms % 1000) snprintf(out, cap, "%lldms", ms);
	else snprintf(out, cap, "%llds", ms / 1000);
	return out;
}

/* The peer is in subscribe mode (how: what said so). */
static void not_publishing(struct peer *p, const char *how)
{
	struct syncd *sy = p->sy;
	char d[32];
	(*sy->c_peer_forbidden)++;
	p->wait_ms = sy->backoff_max;          /* at once: asking sooner cannot help */
	p->failures = 0;                       /* it answered: earlier failures are over */
	if (strcmp(p->last_kind, NOT_PUBLISHING)) {
		char msg[512];
		snprintf(msg, sizeof msg, "the peer does not publish (%s)", how);
		log_err("peer %s (%s): does not publish (%s): not pulling from it; retrying every %s "
		        "([syncd] backoff_max) until it does", p->cfg.name, p->cfg.endpoint, how,
		        dur(sy->backoff_max, d, sizeof d));
		snprintf(p->last_kind, sizeof p->last_kind, "%s", NOT_PUBLISHING);
		fstate_health(sy->d->st, p->cfg.name, NOT_PUBLISHING, msg, 0);
	} else {
		log_debug("peer %s: still not publishing; next try in %s", p->cfg.name, dur(p->wait_ms, d, sizeof d));
	}
	p->phase = PH_IDLE;
	if (sy->once) { once_done(p, 1); return; }
	schedule(p, p->wait_ms);
}

/* The peer said it publishes (again): logged once, back to the interval. */
static void publishing_again(struct peer *p, const char *how)
{
	if (strcmp(p->last_kind, NOT_PUBLISHING)) return;
	log_notice("peer %s: publishes again (%s): resuming pulls", p->cfg.name, how);
	p->last_kind[0] = 0;                   /* the next success records ok */
	p->wait_ms = p->sy->interval;
}

static void succeeded(struct peer *p)
{
	publishing_again(p, "its events answer");
	if (p->failures || !p->last_kind[0]) {
		if (p->failures) log_notice("peer %s: recovered after %d failure(s)", p->cfg.name, p->failures);
		fstate_health(p->sy->d->st, p->cfg.name, "ok", "", 0);
		snprintf(p->last_kind, sizeof p->last_kind, "ok");
	}
	p->failures = 0;
	p->wait_ms = p->sy->interval;
}

/* The store is full (MAP_FULL at the ceiling): this peer's pulls stop
 * (the failed txn advanced nothing, its input is still at the peer) and a
 * timer retries; the first of an episode logs. */
static long long full_retry_ms(struct syncd *sy)
{
	return sy->interval < 1000 ? 1000 : sy->interval > 10000 ? 10000 : sy->interval;
}

static void store_full(struct peer *p, int keep_body)
{
	struct syncd *sy = p->sy;
	if (!sy->full) {
		sy->full = 1;
		(*sy->c_store_full)++;
		log_warnx("store full: syncd stops pulling from every peer (no cursor advanced, nothing lost); "
		          "retrying every %llds", full_retry_ms(sy) / 1000);
	}
	if (keep_body && !p->retry_body) { p->retry_body = 1; p->retry_longpoll = p->phase == PH_LONGPOLL; }
	p->phase = PH_IDLE;
	p->full_probe_ok = 0;
	p->last_kind[0] = 0;      /* the next success records ok */
	fstate_health(sy->d->st, p->cfg.name, "store_full", "store full: pulls stopped", p->failures);
	if (sy->once) { once_done(p, 1); return; }
	schedule(p, full_retry_ms(sy));
}

/* A write txn failed with rc (already aborted, or a failed commit).
 * 1: the map grew, redo the whole txn now. 0: given up (store full: pulls
 * stop and retry; another error: a failure with backoff). */
static int write_failed(struct peer *p, int rc, const char *what)
{
	if (store_write_failed(p->sy->d->st, rc)) return 1;
	if (rc == MDB_MAP_FULL) store_full(p, !strcmp(what, "inbox batch"));
	else fail(p, "internal", "LMDB %s: %s", what, mdb_strerror(rc));
	return 0;
}

/* A write succeeded: a full store has room again. */
static void wrote_ok(struct peer *p)
{
	struct syncd *sy = p->sy;
	if (!sy->full) return;
	sy->full = 0;
	log_notice("store has room again: syncd resumes pulling");
}

void peer_start(struct peer *p)
{
	if (p->sy->publish) { p->phase = PH_IDLE; return; }   /* [node] mode = publish: no peer pulled */
	if (!strcmp(p->cfg.mode, "paused")) {
		log_info("peer %s is paused: not contacted", p->cfg.name);
		fstate_health(p->sy->d->st, p->cfg.name, "paused", "mode = paused", 0);
		p->phase = PH_STOPPED;
		if (p->sy->once) once_done(p, 1);
		return;
	}
	if (!p->active) { p->active = 1; (*p->sy->g_active)++; }
	round_start(p);
}

void peer_stop(struct peer *p)
{
	if (p->easy) curlev_remove(p->sy->curl, p->easy);   /* no-op if not added */
	if (p->timer) evtimer_del(p->timer);
	p->pull_pending = 0;
	p->retry_body = 0;        /* a batch the full store refused is pulled again */
	if (p->active) { p->active = 0; (*p->sy->g_active)--; }
	p->phase = PH_IDLE;
}

void peer_reload(struct peer *p, const struct peer_cfg *nc)
{
	int was_paused = !strcmp(p->cfg.mode, "paused"), paused = !strcmp(nc->mode, "paused");
	int moved = strcmp(p->cfg.endpoint, nc->endpoint) || strcmp(p->cfg.key, nc->key)
	            || strcmp(p->cfg.ca, nc->ca) || strcmp(p->cfg.server_name, nc->server_name);
	if (strcmp(p->cfg.server_name, nc->server_name)) p->keys_ok = 0;
	p->cfg = *nc;
	if (paused && !was_paused) {
		log_notice("reload: peer %s paused", p->cfg.name);
		peer_stop(p);
		peer_start(p);          /* records the paused state */
	} else if (!paused && was_paused) {
		log_notice("reload: peer %s resumed", p->cfg.name);
		p->failures = 0;
		p->last_kind[0] = 0;
		p->wait_ms = p->sy->interval;
		peer_stop(p);
		peer_start(p);
	} else if (!paused && moved) {
		/* A new endpoint, key or name: start a fresh round there now. */
		log_notice("reload: peer %s changed (endpoint, key, ca or server_name): new round", p->cfg.name);
		peer_stop(p);
		p->last_kind[0] = 0;
		p->wait_ms = p->sy->interval;
		peer_start(p);
	}
}

void peer_reschedule(struct peer *p)
{
	struct timeval left;
	if (p->phase != PH_IDLE || p->failures || !p->timer || p->pull_pending
	    || !evtimer_pending(p->timer, &left)) return;
	struct timeval now;
	event_base_gettimeofday_cached(p->sy->d->base, &now);
	long long ms = (long long)(left.tv_sec - now.tv_sec) * 1000 + (left.tv_usec - now.tv_usec) / 1000;
	if (ms > p->sy->interval) { p->wait_ms = p->sy->interval; schedule(p, p->sy->interval); }
}

/* In a fleet, a peer is pulled only while fleetd's lease row says ours
 * (store/fleet.h), checked before every request: a lost lease stops it.
 * *lp (a long-poll's time, may be NULL) is cut to end before the lease,
 * and syncd_http_start cuts every request's whole time the same way. */
static int fleet_yield(struct peer *p);
static int fleet_skip(struct peer *p, long long *lp)
{
	long long left = p->sy->fleet ? fleet_lease_left(p->sy->d->st, p->cfg.name, now_ms()) : 1;
	if (lp && p->sy->fleet && *lp > left - 500) *lp = left - 500;
	/* a request needs some of the lease left: it is cut at the lease's end */
	if (!p->sy->fleet || (left >= 300 && (!lp || *lp >= 100))) return 0;
	return fleet_yield(p);
}

/* Not (or no longer) this node's turn with the peer: idle and look again. */
static int fleet_yield(struct peer *p)
{
	(*p->sy->c_fleet_not_holder)++;
	if (p->sy->once) {
		log_err("peer %s: this node does not hold its fleet lease (fedctl fleet); not pulling", p->cfg.name);
		once_done(p, 1);
		return 1;
	}
	p->phase = PH_IDLE;
	schedule(p, 500);
	return 1;
}

static void round_start(struct peer *p)
{
	if (fleet_skip(p, NULL)) return;
	p->round_start = mono_ms();
	p->phase = PH_IDENTITY;
	if (syncd_http_start(p, "/_fed/v1/identity", 0) < 0) fail(p, "internal", "cannot start an HTTP request");
}

static const char *kind_of(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT: return "refused";
	case CURLE_OPERATION_TIMEDOUT: return "timeout";
	case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
	case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_USE_SSL_FAILED: return "tls";
	case CURLE_FILESIZE_EXCEEDED: return "too_large";
	case CURLE_GOT_NOTHING: case CURLE_RECV_ERROR: case CURLE_PARTIAL_FILE: case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING: return "bad_body";
	default: return "refused";
	}
}

/* Parse the body as one strict JSON object; on failure report bad_body. */
static int parse_body(struct peer *p, struct json_doc *d, const char *what)
{
	if (json_parse(d, p->body.data, p->body.len, JSON_MAX_DEPTH_DEFAULT) < 0 || d->tok[0].type != JSON_OBJECT) {
		fail(p, "bad_body", "%s answer is not a JSON object (%s at byte %u of %zu)", what,
		     d->err ? json_err_str(d->err) : "not an object", d->err_off, p->body.len);
		return -1;
	}
	return 0;
}

static void wait_more(struct peer *p)
{
	struct syncd *sy = p->sy;
	if (sy->once) { once_done(p, 0); return; }
	long long lp = sy->longpoll;
	if (lp > 0) {
		if (fleet_skip(p, &lp)) return;
		MDB_txn *t = store_begin(sy->d->st, 1);
		uint64_t cursor = fstate_cursor(t, sy->d->st, p->cfg.name);
		mdb_txn_abort(t);
		char path[128];
		snprintf(path, sizeof path, "/_fed/v1/events?since=%llu&limit=%d&timeout_ms=%lld",
		         (unsigned long long)cursor, sy->batch, lp);
		p->phase = PH_LONGPOLL;
		(*sy->c_longpolls)++;
		if (syncd_http_start(p, path, lp) < 0) fail(p, "internal", "cannot start an HTTP request");
		return;
	}
	p->phase = PH_IDLE;
	schedule(p, sy->interval);
}

static void decide(struct peer *p)
{
	struct syncd *sy = p->sy;
	/* Skip a pull only on what the peer says of its own stream against our
	 * cursor on it: never on what any peer asserted about another node
	 * (a clock merged from peers' claims could be poisoned to make us skip
	 * the real node forever). */
	struct vclock *mine = xmalloc(sizeof *mine), *theirs = xmalloc(sizeof *theirs);
	MDB_txn *t = store_begin(sy->d->st, 1);
	uint64_t cursor = fstate_cursor(t, sy->d->st, p->cfg.name);
	size_t inbox_rows;
	store_entries(t, sy->d->st, DB_INBOX, &inbox_rows);   /* an error reads as 0 */
	mdb_txn_abort(t);
	vclock_init(mine);
	vclock_advance(mine, p->node_id, cursor);
	vclock_self(theirs, &p->remote, p->node_id);
	enum vclock_order o = vclock_compare(theirs, mine);
	free(mine);
	free(theirs);
	if ((long long)inbox_rows > sy->inbox_high) {
		log_info("peer %s: inbox holds %zu entries (> %lld): pausing pulls", p->cfg.name,
		         inbox_rows, sy->inbox_high);
		p->phase = PH_IDLE;
		schedule(p, 1000);
		return;
	}
	if (o == VC_BEFORE || o == VC_EQUAL) {
		(*sy->c_skipped)++;
		log_debug("peer %s: clock %s ours: nothing to pull", p->cfg.name, vclock_order_str(o));
		wait_more(p);
		return;
	}
	pull(p);
}

/* The peer is refused for who it says it is: stopped until `fedctl peer
 * reset` (a changed pin) or retried with backoff (a name it may not have). */
static void refuse_identity(struct peer *p, const char *kind, int stop, const char *msg)
{
	struct syncd *sy = p->sy;
	(*sy->c_identity_refused)++;
	if (!stop) { fail(p, kind, "%s", msg); return; }
	if (strcmp(p->last_kind, kind))
		log_err("peer %s (%s): %s: refusing to sync with it. If this is on purpose, reset the pin "
		        "with: fedctl peer reset %s", p->cfg.name, p->cfg.endpoint, msg, p->cfg.name);
	char m[1200];
	snprintf(m, sizeof m, "%s; run: fedctl peer reset %s", msg, p->cfg.name);
	fstate_health(sy->d->st, p->cfg.name, kind, m, ++p->failures);
	(*sy->c_failures)++;
	p->phase = PH_STOPPED;
	snprintf(p->last_kind, sizeof p->last_kind, "%s", kind);
	if (sy->once) once_done(p, 1);
	else schedule(p, sy->interval);
}

/* A peer with no configured server_name pins the name it reports at first
 * contact; that name may not be this node's own, nor a name another peer
 * is configured as or pinned to with another node ID. 0 ok, or -1 with msg. */
static int name_claim_ok(struct peer *p, MDB_txn *t, const char *name, const char *id, char *msg, size_t cap)
{
	struct syncd *sy = p->sy;
	if (!strcmp(name, cfg_str(&sy->d->cfg, "node", "server_name"))) {
		snprintf(msg, cap, "peer claims to be %s, this node's own server name", name);
		return -1;
	}
	for (size_t i = 0; i < sy->d->cfg.npeers; i++) {
		const struct peer_cfg *q = &sy->d->cfg.peers[i];
		if (!strcmp(q->name, p->cfg.name)) continue;
		char qname[256], qid[64];
		if (!strcmp(q->server_name, name)) {
			snprintf(msg, cap, "peer claims to be %s, the configured server_name of [peer %s]", name, q->name);
			return -1;
		}
		if (fstate_get(t, sy->d->st, q->name, "server_name", qname, sizeof qname) > 0 && !strcmp(qname, name)
		    && fstate_get(t, sy->d->st, q->name, "node_id", qid, sizeof qid) > 0 && strcmp(qid, id)) {
			snprintf(msg, cap, "peer claims to be %s, which peer %s is pinned to (node %s)", name, q->name, qid);
			return -1;
		}
	}
	return 0;
}

static void on_identity(struct peer *p)
{
	struct syncd *sy = p->sy;
	struct store *st = sy->d->st;
	struct json_doc d = {0};
	int redo = 0;
	if (parse_body(p, &d, "identity") < 0) goto out;
	int sv = json_obj_get(&d, 0, "schema_version"), ni = json_obj_get(&d, 0, "node_id"),
	    sn = json_obj_get(&d, 0, "server_name"), vc = json_obj_get(&d, 0, "vclock"),
	    md = json_obj_get(&d, 0, "mode");
	if (sv < 0 || d.tok[sv].type != JSON_INT || d.tok[sv].ival != STORE_SCHEMA_VERSION) {
		fail(p, "schema_unsupported", "peer schema_version %lld, this node supports %d",
		     sv >= 0 && d.tok[sv].type == JSON_INT ? (long long)d.tok[sv].ival : -1LL, STORE_SCHEMA_VERSION);
		goto out;
	}
	char id[32], name[256];
	int il = ni >= 0 && d.tok[ni].type == JSON_STRING ? json_str_copy(&d, ni, id, sizeof id) : -1;
	if (il <= 0 || (size_t)il != strlen(id)) {
		fail(p, "bad_body", "identity has no (or an empty, overlong or NUL-holding) node_id");
		goto out;
	}
	int nl = sn >= 0 && d.tok[sn].type == JSON_STRING ? json_str_copy(&d, sn, name, sizeof name) : -1;
	if (nl <= 0 || (size_t)nl != strlen(name)) {
		fail(p, "bad_body", "identity has no (or an empty, overlong or NUL-holding) server_name");
		goto out;
	}
	/* Who the peer must be: [peer] server_name when configured, else the
	 * name pinned with its node ID at first success. */
	const char *want = p->cfg.server_name;
	char msg[1024];
	if (want[0] && strcmp(name, want)) {
		snprintf(msg, sizeof msg, "peer says it is %s, but [peer %s] server_name = %s", name, p->cfg.name, want);
		refuse_identity(p, "name_mismatch", 0, msg);
		goto out;
	}
	char pin[64], pinned_name[256];
	MDB_txn *t = store_begin(st, 0);
	int have = fstate_get(t, st, p->cfg.name, "node_id", pin, sizeof pin);
	int have_name = fstate_get(t, st, p->cfg.name, "server_name", pinned_name, sizeof pinned_name);
	if (have > 0 && strcmp(pin, id)) {
		mdb_txn_abort(t);
		snprintf(msg, sizeof msg, "node ID changed from %s to %s", pin, id);
		refuse_identity(p, "identity_changed", 1, msg);
		goto out;
	}
	if (!want[0] && have > 0 && have_name > 0 && strcmp(pinned_name, name)) {
		mdb_txn_abort(t);
		snprintf(msg, sizeof msg, "server name changed from %s to %s", pinned_name, name);
		refuse_identity(p, "identity_changed", 1, msg);
		goto out;
	}
	if (!want[0] && (have <= 0 || have_name <= 0) && name_claim_ok(p, t, name, id, msg, sizeof msg) < 0) {
		mdb_txn_abort(t);
		refuse_identity(p, "name_mismatch", 0, msg);
		goto out;
	}
	int rc = 0, pin_name = have_name <= 0 || strcmp(pinned_name, name);
	if (have <= 0) rc = fstate_put(t, st, p->cfg.name, "node_id", id, strlen(id));
	if (!rc && pin_name) rc = fstate_put(t, st, p->cfg.name, "server_name", name, strlen(name));
	if (rc || (have > 0 && !pin_name)) mdb_txn_abort(t);   /* an error, or nothing to write */
	else if (!(rc = store_commit(t))) wrote_ok(p);
	if (rc) { redo = write_failed(p, rc, "pin"); goto out; }
	if (have <= 0) log_notice("peer %s: pinned node ID %s (%s)", p->cfg.name, id, name);
	if (strcmp(p->server_name, name)) p->keys_ok = 0;
	snprintf(p->node_id, sizeof p->node_id, "%s", id);
	snprintf(p->server_name, sizeof p->server_name, "%s", name);
	vclock_init(&p->remote);
	if (vc >= 0) vclock_from_json(&p->remote, &d, vc);
	/* Its [node] mode (absent: a node from before modes; its events
	 * answer tells). subscribe: nothing to pull, and no events request. */
	char mode[16] = "";
	if (md >= 0 && d.tok[md].type == JSON_STRING) json_str_copy(&d, md, mode, sizeof mode);
	if (!strcmp(mode, "subscribe")) {
		not_publishing(p, "its identity says mode = subscribe");
		goto out;
	}
	/* (Only a known value goes into the log: the text is the peer's.) */
	if (!strcmp(mode, "sync")) publishing_again(p, "its identity says mode = sync");
	else if (!strcmp(mode, "publish")) publishing_again(p, "its identity says mode = publish");
	if (!p->keys_ok) {
		p->phase = PH_KEYS;
		if (syncd_http_start(p, "/_matrix/key/v2/server", 0) < 0) fail(p, "internal", "cannot start an HTTP request");
		goto out;
	}
	decide(p);
out:
	json_doc_free(&d);
	if (redo) on_identity(p);
}

/* A key the peer handed over differs from the one stored for the same
 * (server, key ID): logged once per pair, counted every time. */
static void key_conflict(struct peer *p, const struct verify_key *k)
{
	struct syncd *sy = p->sy;
	char pair[320];
	snprintf(pair, sizeof pair, "%s %s", k->server, k->key_id);
	(*sy->c_key_conflicts)++;
	for (unsigned i = 0; i < sy->nconflicts_logged && i < 32; i++)
		if (!strcmp(sy->conflicts_logged[i], pair)) return;
	snprintf(sy->conflicts_logged[sy->nconflicts_logged++ % 32], sizeof pair, "%s", pair);
	char pk[64];
	b64_encode(pk, k->pk, 32);
	log_err("peer %s (%s): key conflict: its key document gives %s key %s = %s, but another public key is "
	        "stored for it; document refused (a stored key never changes)", p->cfg.name, p->cfg.endpoint,
	        k->server, k->key_id, pk);
}

static void on_keys(struct peer *p)
{
	struct syncd *sy = p->sy;
	struct keyring kr;
	keyring_init(&kr);
	char err[256];
	int n = keyring_add_server_doc(&kr, p->body.data, p->body.len, err, sizeof err);
	if (n <= 0) {
		fail(p, "bad_key_doc", "key document: %s", n < 0 ? err : "no usable keys");
		keyring_free(&kr);
		return;
	}
	/* Only keys of the peer's own (configured or pinned) name are taken;
	 * a document with a key that conflicts with a stored one is refused. */
	MDB_txn *t = store_begin(sy->d->st, 0);
	int rc = 0, stored = 0, conflicts = 0;
	for (size_t i = 0; i < kr.n && !rc; i++) {
		if (strcmp(kr.k[i].server, p->server_name)) continue;
		rc = store_key_put(t, sy->d->st, kr.k[i].server, kr.k[i].key_id, kr.k[i].pk, kr.k[i].valid_until_ts);
		if (rc == STORE_KEY_CONFLICT) { key_conflict(p, &kr.k[i]); conflicts++; rc = 0; continue; }
		stored++;
	}
	keyring_free(&kr);
	if (rc) {
		mdb_txn_abort(t);
		if (write_failed(p, rc, "keys")) on_keys(p);
		return;
	}
	if (conflicts) {
		mdb_txn_abort(t);
		fail(p, "key_conflict", "key document of %s holds %d key(s) that differ from the stored ones",
		     p->server_name, conflicts);
		return;
	}
	if (!stored) { mdb_txn_abort(t); fail(p, "bad_key_doc", "key document is not for %s", p->server_name); return; }
	/* The peer's signed document beside its keys (served answers key
	 * queries with it, countersigned). */
	if ((rc = store_key_doc_put_answer(t, sy->d->st, p->server_name, p->body.data, p->body.len))) {
		mdb_txn_abort(t);
		if (write_failed(p, rc, "keys")) on_keys(p);
		return;
	}
	if ((rc = store_commit(t))) {
		if (write_failed(p, rc, "keys commit")) on_keys(p);
		return;
	}
	wrote_ok(p);
	log_info("peer %s: stored %d verify key(s) of %s", p->cfg.name, stored, p->server_name);
	p->keys_ok = 1;
	decide(p);
}

static void pull(struct peer *p)
{
	struct syncd *sy = p->sy;
	if (sy->full && !p->full_probe_ok) { store_full(p, 0); return; }   /* no request while full */
	/* Backpressure: while validated has not read what we sent, wait rather
	 * than pile frames up (over the conn's high-water mark they would be
	 * dropped and only found again by validated's slower inbox rescan). */
	struct conn *vc = sy->d->stdio ? sy->d->stdin_conn : daemon_connect(sy->d, "validated");
	if (conn_up(vc) && conn_outq(vc) > (1u << 20)) {
		p->phase = PH_IDLE;
		p->pull_pending = 1;
		schedule(p, 10);
		return;
	}
	if (fleet_skip(p, NULL)) return;
	MDB_txn *t = store_begin(sy->d->st, 1);
	uint64_t cursor = fstate_cursor(t, sy->d->st, p->cfg.name);
	mdb_txn_abort(t);
	char path[128];
	snprintf(path, sizeof path, "/_fed/v1/events?since=%llu&limit=%d", (unsigned long long)cursor, sy->batch);
	p->phase = PH_PULL;
	(*sy->c_pulls)++;
	if (syncd_http_start(p, path, 0) < 0) fail(p, "internal", "cannot start an HTTP request");
}

/* /metrics: per peer lag, from each events answer: events behind (the
 * peer's own clock entry, its head, minus our next position) and seconds
 * since we last were caught up (0 while caught up; a 1 s timer keeps it
 * growing between answers). Gauges lag_events.<peer> and lag_s.<peer>. */
static struct lagent { char name[64]; long long caught_ms; int behind; int64_t *g_s, *g_ev; } *lagtab;
static size_t nlag;

static void lag_tick(struct daemon *d, void *arg)
{
	long long now = mono_ms();
	(void)d; (void)arg;
	for (size_t i = 0; i < nlag; i++)
		*lagtab[i].g_s = lagtab[i].behind ? (now - lagtab[i].caught_ms) / 1000 : 0;
}

static void note_lag(struct peer *p, uint64_t head, uint64_t next)
{
	struct daemon *d = p->sy->d;
	long long now = mono_ms();
	struct lagent *l = NULL;
	char g[96];
	for (size_t i = 0; i < nlag && !l; i++)
		if (!strcmp(lagtab[i].name, p->cfg.name)) l = &lagtab[i];
	if (!l) {
		if (!nlag) daemon_timer(d, 1000, lag_tick, NULL);
		lagtab = xreallocarray(lagtab, nlag + 1, sizeof *lagtab);
		l = &lagtab[nlag++];
		snprintf(l->name, sizeof l->name, "%s", p->cfg.name);
		snprintf(g, sizeof g, "lag_s.%s", p->cfg.name);
		l->g_s = daemon_gauge(d, g);
		snprintf(g, sizeof g, "lag_events.%s", p->cfg.name);
		l->g_ev = daemon_gauge(d, g);
		l->caught_ms = now;
	}
	l->behind = next < head;
	if (!l->behind) l->caught_ms = now;
	*l->g_ev = l->behind ? (int64_t)(head - next) : 0;
	*l->g_s = (now - l->caught_ms) / 1000;
}

static void on_events(struct peer *p)
{
	struct syncd *sy = p->sy;
	struct store *st = sy->d->st;
	struct json_doc d = {0};
	int was_longpoll = p->retry_body ? p->retry_longpoll : p->phase == PH_LONGPOLL;
	p->retry_body = 0;
	if (parse_body(p, &d, "events") < 0) goto out;
	int ev = json_obj_get(&d, 0, "events"), nx = json_obj_get(&d, 0, "next"), vc = json_obj_get(&d, 0, "vclock");
	if (ev < 0 || d.tok[ev].type != JSON_ARRAY || nx < 0 || d.tok[nx].type != JSON_INT || d.tok[nx].ival < 0) {
		fail(p, "bad_body", "events answer lacks an events array or an integer next");
		goto out;
	}
	for (int e = json_first(&d, ev); e >= 0; e = json_next_elem(&d, ev, e))
		if (d.tok[e].type != JSON_OBJECT) { fail(p, "bad_body", "events[] holds a non-object"); goto out; }
	int n = (int)d.tok[ev].size;
	uint64_t next = (uint64_t)d.tok[nx].ival;
	struct vclock *rv = xmalloc(sizeof *rv);
	vclock_init(rv);
	if (vc >= 0) vclock_from_json(rv, &d, vc);
	/* One txn: inbox entries + cursor + last_seen (+ clock). Any error
	 * aborts it (nothing advanced); a grown map redoes it; a full store
	 * stops pulls until a retry succeeds. */
	uint64_t seqs[100], cursor;
	int k, rc;
	uint64_t head = vclock_get(rv, p->node_id);
	int caught_up = next >= head;
	for (;;) {
		MDB_txn *t = store_begin(st, 0);
		cursor = fstate_cursor(t, st, p->cfg.name);
		if (next < cursor || (n > 0 && next == cursor) || n > 100) {
			mdb_txn_abort(t);
			free(rv);
			fail(p, "bad_body", "next %llu does not follow our cursor %llu with %d events (peer store replaced?)",
			     (unsigned long long)next, (unsigned long long)cursor, n);
			goto out;
		}
		k = 0;
		rc = 0;
		for (int e = json_first(&d, ev); e >= 0 && !rc; e = json_next_elem(&d, ev, e))
			rc = store_inbox_put(t, st, p->server_name, p->body.data + d.tok[e].start,
			                     d.tok[e].end - d.tok[e].start, &seqs[k++]);
		unsigned char b8[8];
		be64_put(b8, next);
		if (!rc) rc = fstate_put(t, st, p->cfg.name, "cursor", b8, 8);
		be64_put(b8, (uint64_t)now_ms());
		if (!rc) rc = fstate_put(t, st, p->cfg.name, "last_seen", b8, 8);
		/* An answer from the peer is inbound traffic from its server: fetchd's
		 * backoff for that server no longer holds. */
		if (!rc) {
			int r2 = store_health_del(t, st, p->server_name);
			if (r2 && r2 != MDB_NOTFOUND) rc = r2;
		}
		if (!rc && caught_up && rv->n) {
			/* Caught up with the peer: what it had, we now have (in the inbox
			 * at least); its clock is advertised onward by served. */
			struct buf j;
			buf_init(&j);
			vclock_to_json(rv, &j);
			rc = fstate_put(t, st, p->cfg.name, "vclock", j.data, j.len);
			buf_free(&j);
		}
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (!rc) break;
		if (write_failed(p, rc, "inbox batch")) continue;
		free(rv);
		goto out;
	}
	wrote_ok(p);
	note_lag(p, head, next);
	p->remote = *rv;
	free(rv);
	k = 0;
	for (int e = json_first(&d, ev); e >= 0; e = json_next_elem(&d, ev, e), k++)
		daemon_emit(sy->d, "validated", FT_EVENT, 0, seqs[k], p->body.data + d.tok[e].start,
		            d.tok[e].end - d.tok[e].start);
	*sy->c_events += (uint64_t)n;
	*sy->c_bytes += p->body.len;
	p->pulled += (uint64_t)n;
	if (n) log_debug("peer %s: %d events, cursor %llu -> %llu", p->cfg.name, n,
	                 (unsigned long long)cursor, (unsigned long long)next);
	succeeded(p);
	if (n > 0 && (!caught_up || n >= sy->batch || was_longpoll)) { pull(p); goto out; }
	if (n > 0 || !was_longpoll) { wait_more(p); goto out; }
	/* An empty long-poll: the rest of the interval, then a new round. */
	p->phase = PH_IDLE;
	if (sy->once) { once_done(p, 0); goto out; }
	schedule(p, sy->interval - (mono_ms() - p->round_start));
out:
	json_doc_free(&d);
}

/* A 403 whose body is {"errcode":"M_FORBIDDEN","error":"this node does
 * not publish"}: served's answer in subscribe mode (other 403s, such as an
 * ACL refusal, stay failures). */
static int forbidden_not_publishing(struct peer *p)
{
	struct json_doc d = {0};
	char ec[32] = "", er[64] = "";
	if (json_parse(&d, p->body.data, p->body.len, 4) == 0 && d.tok[0].type == JSON_OBJECT) {
		int e = json_obj_get(&d, 0, "errcode"), m = json_obj_get(&d, 0, "error");
		if (e >= 0 && d.tok[e].type == JSON_STRING) json_str_copy(&d, e, ec, sizeof ec);
		if (m >= 0 && d.tok[m].type == JSON_STRING) json_str_copy(&d, m, er, sizeof er);
	}
	json_doc_free(&d);
	return !strcmp(ec, "M_FORBIDDEN") && !strcmp(er, "this node does not publish");
}

void peer_http_done(struct peer *p, CURLcode rc)
{
	const char *what = p->phase == PH_IDENTITY ? "identity" : p->phase == PH_KEYS ? "key document" : "events";
	if (rc != CURLE_OK) {
		if (rc == CURLE_OPERATION_TIMEDOUT && p->lease_cap_ms > 0) {
			/* cut at the lease's end: if the lease is gone, this is no
			 * failure of the peer's, only the end of our turn with it */
			long long now = now_ms(), left = fleet_lease_left(p->sy->d->st, p->cfg.name, now);
			if (left <= 0 || now + left <= p->lease_until + 50) {   /* gone, or not renewed since */
				log_notice("peer %s: %s request cut at the end of this node's fleet lease "
				           "(not renewed); another member takes the peer over", p->cfg.name, what);
				p->lease_cap_ms = 0;
				fleet_yield(p);
				return;
			}
			fail(p, "timeout", "%s: no answer within this node's fleet lease (%lld ms left at the start; "
			     "[fleet] lease_ttl bounds every request)", what, p->lease_cap_ms);
			return;
		}
		if (p->too_large) fail(p, "too_large", "%s answer over %lld bytes", what, p->sy->max_body);
		else fail(p, kind_of(rc), "%s: %s", what, p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc));
		return;
	}
	long code = 0;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code == 403 && (p->phase == PH_PULL || p->phase == PH_LONGPOLL) && forbidden_not_publishing(p)) {
		not_publishing(p, "its events answer: 403 M_FORBIDDEN, this node does not publish");
		return;
	}
	if (code != 200) {
		char snip[160];
		size_t n = p->body.len < sizeof snip - 1 ? p->body.len : sizeof snip - 1;
		for (size_t i = 0; i < n; i++) snip[i] = p->body.data[i] >= 32 && p->body.data[i] < 127 ? p->body.data[i] : '.';
		snip[n] = 0;
		fail(p, code == 401 || code == 403 ? "unauthorized" : "http_status", "%s: HTTP %ld %s", what, code, snip);
		return;
	}
	char *ct = NULL;
	curl_easy_getinfo(p->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (!ct || strncasecmp(ct, "application/json", 16)) {
		fail(p, "bad_body", "%s: content type '%s', expected application/json", what, ct ? ct : "(none)");
		return;
	}
	switch (p->phase) {
	case PH_IDENTITY: on_identity(p); break;
	case PH_KEYS: on_keys(p); break;
	case PH_PULL: case PH_LONGPOLL: on_events(p); break;
	default: break;
	}
}

/* Whatever syncd put in the inbox that is still there goes to validated
 * again (after a restart, or when validated reconnects). Until the conn's
 * queue is full; validated's own rescan covers the rest. */
void peer_resend_inbox(struct syncd *sy)
{
	struct store *st = sy->d->st;
	char names[16][256];
	int nn = 0;
	MDB_txn *t = store_begin(st, 1);
	for (size_t i = 0; i < sy->npeers && nn < 16; i++)
		if (fstate_get(t, st, sy->peers[i]->cfg.name, "server_name", names[nn], sizeof names[nn]) > 0) nn++;
	struct store_iter it;
	uint64_t sent = 0;
	if (nn && store_iter_open(&it, t, st, DB_INBOX, NULL, 0) == 0) {
		while (store_iter_next(&it) == 1) {
			struct inbox_rec r;
			uint64_t seq;
			if (store_inbox_row(&it.k, &it.v, &seq, &r)) continue;
			int ours = 0;
			for (int i = 0; i < nn && !ours; i++)
				ours = strlen(names[i]) == r.from_len && !memcmp(names[i], r.from, r.from_len);
			if (!ours) continue;
			if (daemon_emit(sy->d, "validated", FT_EVENT, 0, seq, r.bytes, r.len) < 0) break;
			sent++;
		}
	}
	if (nn) store_iter_close(&it);
	mdb_txn_abort(t);
	*sy->c_resent += sent;
	if (sent) log_info("re-sent %llu inbox entries to validated", (unsigned long long)sent);
}
