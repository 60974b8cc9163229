/* purgatory_main.c: purgatoryd, the only writer of the event store. It takes
 * verdicts from validated, stores what is complete, holds what is not, asks
 * fetchd for the missing pieces and releases held events the moment they are
 * satisfiable. This file wires the daemon skeleton to the stage. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "purgatory.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/fedstate.h"

static struct purgatoryd purgatoryd;

void purgatory_params(struct purgatoryd *p)
{
	const struct config *c = &p->d->cfg;
	p->debounce = cfg_ms(c, "purgatoryd", "debounce");
	p->debounce_other = cfg_ms(c, "purgatoryd", "debounce_other");
	p->backoff_min = cfg_ms(c, "purgatoryd", "backoff_min");
	p->backoff_max = cfg_ms(c, "purgatoryd", "backoff_max");
	p->max_hold = cfg_ms(c, "purgatoryd", "max_hold");
	p->tick = cfg_ms(c, "purgatoryd", "tick");
	p->fetch_timeout = cfg_ms(c, "purgatoryd", "fetch_timeout");
	p->fetch_retry = cfg_ms(c, "purgatoryd", "fetch_retry");
	p->batch_max = (int)cfg_int(c, "purgatoryd", "batch_max");
	p->commit_delay = cfg_ms(c, "purgatoryd", "commit_delay");
	p->fetch_limit = (int)cfg_int(c, "purgatoryd", "fetch_limit");
	p->fetch_latest_max = (int)cfg_int(c, "purgatoryd", "fetch_latest_max");
	p->fetch_events_max = (int)cfg_int(c, "purgatoryd", "fetch_events_max");
	p->fetch_servers_max = (int)cfg_int(c, "purgatoryd", "fetch_servers_max");
	p->default_rv = (int)cfg_int(c, "node", "room_version");
	p->rejects_keep = cfg_ms(c, "purgatoryd", "rejects_keep");
	/* Ranges are the parameter table's (checked at load): nothing to clamp. */
	snprintf(p->server_name, sizeof p->server_name, "%s", cfg_str(c, "node", "server_name"));
	p->d->st->map_max = (size_t)cfg_size(c, "node", "map_size_max");
}

/* Authorization at release time: the sender's server and the origin must
 * both pass the node's server ACL. */
int purgatory_acl_ok(struct purgatoryd *p, const struct pdu_info *pi)
{
	const struct config *c = &p->d->cfg;
	if (pi->sender_server[0] && !cfg_acl_allows(c, pi->sender_server)) return 0;
	if (pi->origin[0] && !cfg_acl_allows(c, pi->origin)) return 0;
	return 1;
}

int purgatory_by_sync(struct purgatoryd *p, MDB_txn *t, const char *from)
{
	const struct config *c = &p->d->cfg;
	size_t fl = strlen(from);
	if (!fl || !strcmp(from, p->server_name)) return 0;
	for (size_t i = 0; i < c->npeers; i++) {
		const char *name = c->peers[i].name;
		if (!strcmp(name, from)) return 1;
		/* the server name syncd pinned for this peer at the identity handshake */
		char pinned[PURG_NAME_MAX];
		if (fstate_get(t, p->d->st, name, "server_name", pinned, sizeof pinned) == (int)fl &&
		    !memcmp(pinned, from, fl))
			return 1;
	}
	return 0;
}

#define REJECTS_PRUNE_MAX 1000   /* rows deleted per tick: bounded work */

/* rejects older than rejects_keep go, oldest first, a bounded number a tick
 * (the table is a log kept by age, not by size). */
static void prune_rejects(struct purgatoryd *p, long long now)
{
	struct store *s = p->d->st;
	if (p->rejects_keep <= 0) return;
	long long cutoff = now - p->rejects_keep;
	MDB_txn *t = store_begin(s, 1);
	long long oldest = purg_reject_oldest_ms(t, s);
	mdb_txn_abort(t);
	if (oldest < 0 || oldest >= cutoff) return;
	int n = 0, rc;
	do {
		t = store_begin(s, 0);
		rc = purg_rejects_prune(t, s, cutoff, REJECTS_PRUNE_MAX, &n);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);          /* a failed commit frees the txn */
	} while (rc && store_write_failed(s, rc));
	if (rc) {
		if (rc != MDB_MAP_FULL) log_warnx("pruning rejects: %s", mdb_strerror(rc));
		return;
	}
	*p->c_rejects_pruned += (uint64_t)n;
	log_debug("pruned %d reject(s) older than %lld ms", n, p->rejects_keep);
}

static void tick_cb(struct daemon *d, void *arg)
{
	struct purgatoryd *p = arg;
	long long now = now_ms();
	if (p->stalled) {
		/* the store was full: try the queued writes again */
		p->stalled = 0;
		if (p->vq || p->ndirty) purgatory_flush(p);
		if (p->stalled) return;
	}
	if (p->recheck_pending) purgatory_recheck_all(p);
	purgatory_expire_due(p, now);
	prune_rejects(p, now);
	/* fetching brings rows to write: not while the store is full */
	if (!p->d->st->full) purgatory_fetch_tick(p, now);
}

static int init(struct daemon *d)
{
	struct purgatoryd *p = &purgatoryd;
	d->priv = p;
	p->d = d;
	if (sodium_init() < 0) { log_err("libsodium failed to initialise"); return EXIT_TEMP; }
	purgatory_params(p);
	p->vq_tail = &p->vq;
	p->next_req = 1;
	buf_init(&p->scratch);
	p->pi = xcalloc(1, sizeof *p->pi);
	p->hr = xcalloc(1, sizeof *p->hr);
	p->c_verdicts = daemon_counter(d, "verdicts");
	p->c_stored = daemon_counter(d, "stored");
	p->c_held = daemon_counter(d, "held");
	p->c_released = daemon_counter(d, "released");
	p->c_rejected = daemon_counter(d, "rejected");
	p->c_dups = daemon_counter(d, "duplicates");
	p->c_expired = daemon_counter(d, "expired");
	p->c_batches = daemon_counter(d, "batches");
	p->c_fetch_req = daemon_counter(d, "fetch_requests");
	p->c_fetch_ok = daemon_counter(d, "fetch_ok");
	p->c_fetch_fail = daemon_counter(d, "fetch_failed");
	p->c_fetched = daemon_counter(d, "fetched_pdus");
	p->c_bad_frames = daemon_counter(d, "bad_verdicts");
	p->c_acl_blocked = daemon_counter(d, "acl_blocked");
	p->c_rejects_pruned = daemon_counter(d, "rejects_pruned");
	p->g_held = daemon_gauge(d, "held");
	p->g_rooms = daemon_gauge(d, "held_rooms");
	p->g_inflight = daemon_gauge(d, "fetch_inflight");
	if (purgatory_load(p) < 0) return EXIT_TEMP;
	p->tick_ev = daemon_timer(d, p->tick, tick_cb, p);
	return 0;
}

/* The commit timer: the oldest queued verdict has waited commit_delay. */
static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct purgatoryd *p = arg;
	(void)fd; (void)what;
	p->commit_armed = 0;
	if (p->vq || p->ndirty) purgatory_flush(p);
}

static void on_frame(struct daemon *d, struct conn *c, struct frame *f)
{
	struct purgatoryd *p = d->priv;
	const char *why = NULL;
	switch (f->type) {
	case FT_VERDICT:
		if (purgatory_verdict_frame(p, f, &why) < 0) {
			(*p->c_bad_frames)++;
			log_warnx("%s: bad verdict frame (id %llu, %u bytes): %s; dropping the connection",
			          conn_peer(c), (unsigned long long)f->id, f->len, why);
			if (c != d->stdin_conn) conn_close(c);
		}
		break;
	case FT_FETCH_RESULT:
		purgatory_fetch_result(p, f);
		break;
	case FT_PURG_CTL:
		purgatory_control(p, c, f);
		break;
	case FT_HELLO:
	case FT_WAKEUP:
		break;
	default:
		(*p->c_bad_frames)++;
		log_warnx("%s: unexpected %s frame (type %d, %u bytes); dropping the connection",
		          conn_peer(c), frame_type_name(f->type), f->type, f->len);
		if (c != d->stdin_conn) conn_close(c);
	}
}

/* End of a loop turn. With commit_delay, verdicts are gathered over
 * several turns: the batch is committed once batch_max wait or the oldest
 * has waited commit_delay (the timer), so one commit (one fdatasync, one
 * write of each touched page) carries hundreds of verdicts instead of one
 * socket read's worth. Nothing is acknowledged meanwhile: each verdict's
 * inbox row is deleted only in the transaction that stores it, so a kill
 * loses only in-memory work that validated's rescan sends again. */
static void on_turn(struct daemon *d)
{
	struct purgatoryd *p = d->priv;
	if (!p || !(p->vq || p->ndirty)) return;
	if (p->vq && p->commit_delay > 0 && p->nvq < (size_t)p->batch_max && !p->stalled &&
	    !p->flush_now) {
		if (!p->commit_armed) {
			struct timeval tv = { p->commit_delay / 1000, (p->commit_delay % 1000) * 1000 };
			if (!p->commit_ev) p->commit_ev = evtimer_new(d->base, commit_cb, p);
			if (p->commit_ev && evtimer_add(p->commit_ev, &tv) == 0) {
				p->commit_armed = 1;
				return;
			}
			/* no timer: commit now, as without a delay */
		} else
			return;
	}
	if (p->commit_armed) { evtimer_del(p->commit_ev); p->commit_armed = 0; }
	purgatory_flush(p);
}

static void on_connect(struct daemon *d, struct conn *c)
{
	if (!strcmp(conn_peer(c), "stage:fetchd")) purgatory_fetchd_up(d->priv);
}

static void on_close(struct daemon *d, struct conn *c)
{
	if (!strcmp(conn_peer(c), "stage:fetchd")) purgatory_fetchd_down(d->priv);
}

/* SIGHUP: every value is copied out of the configuration (server_name into
 * our own buffer; the ACL and peers are looked up in d->cfg, the new one,
 * each time), so applying is: read them again, re-arm the tick if it
 * changed, and re-check what is held (the ACL may allow it now). A raised
 * [node] map_size_max lets a full store grow at the next retry. */
static void on_reload(struct daemon *d, const struct config *old)
{
	struct purgatoryd *p = d->priv;
	if (!p) return;
	long long tick = p->tick;
	purgatory_params(p);
	if (tick != p->tick && p->tick_ev) {
		struct timeval tv = { p->tick / 1000, (p->tick % 1000) * 1000 };
		event_add(p->tick_ev, &tv);
	}
	log_info("reload: batch_max %d, commit_delay %lld ms, tick %lld ms, max_hold %lld ms, "
	         "rejects_keep %lld ms",
	         p->batch_max, p->commit_delay, p->tick, p->max_hold, p->rejects_keep);
	/* the ACL may have changed: held events may be releasable now */
	purgatory_recheck_all(p);
}

static void on_stdin_eof(struct daemon *d)
{
	/* flush what came in, then stop once the output is written */
	struct purgatoryd *p = d->priv;
	if (p) p->flush_now = 1;
	on_turn(d);
	daemon_stop(d, 0);
}

static void stats(struct daemon *d, struct buf *json)
{
	struct purgatoryd *p = d->priv;
	buf_printf(json, ",\"held_events\":%zu,\"held_rooms\":%zu", p->nheld, p->nrooms);
}

static void fini(struct daemon *d)
{
	struct purgatoryd *p = d->priv;
	if (p && p->commit_armed) { evtimer_del(p->commit_ev); p->commit_armed = 0; }
	if (p && (p->vq || p->ndirty)) purgatory_flush(p);
	if (p && p->commit_ev) { event_free(p->commit_ev); p->commit_ev = NULL; }
	if (p) { free(p->ready.v); p->ready = (struct purg_idlist){ 0 }; }
}

static const struct daemon_ops ops = {
	.name = "purgatoryd",
	.summary = "hold events until their prev/auth events are stored; the event store's only writer",
	.store = &store_for_daemon,
	.init = init,
	.on_frame = on_frame,
	.on_connect = on_connect,
	.on_close = on_close,
	.on_reload = on_reload,
	.on_turn = on_turn,
	.on_stdin_eof = on_stdin_eof,
	.stats = stats,
	.fini = fini,
};

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &ops);
}
