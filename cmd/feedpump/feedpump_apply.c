/* feedpump_apply.c: [fleet] apply: this node applies the fleet feed into its
 * own store, so its served answers for every event any node stored. A
 * durable pull consumer `<name>-apply-<member>` on the fleet stream; per
 * batch ONE txn (feed/feed_apply: the applied_events guard "fleet:<name>"
 * \0 event_id and the store's own rows: events, stream, rooms,
 * room_extremities, room_servers, outbox, exactly as purgatoryd stores an
 * accepted event), then ack. An event already in events is skipped but
 * acked. No loop: the outbox row an applied event gets is written already
 * published (control_version = its fleet stream sequence), so this node's
 * drain skips it and never publishes it again. Checks on what comes off the
 * stream: a member's MAC (feed/fleet_mac.h: whoever can publish on the
 * subject without the fleet key gets nothing stored), the feed JSON parses,
 * its event_id is the message's Nats-Msg-Id and the reference hash of its
 * PDU (the room's version); anything else is refused (logged, acked, not
 * stored).
 * The apply runs on the drain's loop: a fetch waits at most FETCH_WAIT_MS,
 * an idle consumer is polled every IDLE_MS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "feedpump.h"
#include "core/log.h"
#include "feed/feed_fleet.h"
#include "matrix/json.h"
#include "matrix/pdu.h"
#include "store/events.h"
#include "store/purgatory.h"

#define FETCH_WAIT_MS 20
#define IDLE_MS 100
#define RETRY_MS 1000
#define APPLY_BATCH 256

static MDB_txn *st_begin(void *arg)
{
	struct feedpump *fp = arg;
	buf_reset(&fp->apply_ids);            /* a redone txn lists its events again */
	return store_begin(fp->d->st, 0);
}

static int st_commit(void *arg, MDB_txn *t)
{
	struct feedpump *fp = arg;
	int rc = store_commit(t);
	if (rc == 0) buf_add(&fp->apply_told, fp->apply_ids.data, fp->apply_ids.len);
	buf_reset(&fp->apply_ids);
	return rc;
}

/* Tell purgatoryd what the applier stored, so what it holds waiting for
 * those events is released now, not at its next retry. Best effort: a
 * lost word costs only time (purgatoryd's attempt finds stored parents
 * itself). Not in --stdio mode: our stdout is not purgatoryd. */
static void tell_purgatoryd(struct feedpump *fp)
{
	if (!fp->apply_told.len) return;
	if (!fp->d->stdio) {
		struct buf m;
		buf_init(&m);
		buf_adds(&m, "{\"op\":\"stored\",\"event_ids\":[");
		buf_add(&m, fp->apply_told.data + 1, fp->apply_told.len - 1);   /* past the first comma */
		buf_adds(&m, "]}");
		struct conn *c = daemon_connect(fp->d, "purgatoryd");
		if (c && conn_send(c, FT_PURG_CTL, 0, 0, m.data, m.len) == 0) (*fp->c_fleet_wakes)++;
		buf_free(&m);
	}
	buf_reset(&fp->apply_told);
}
static int st_write_failed(void *arg, int rc) { struct feedpump *fp = arg; return store_write_failed(fp->d->st, rc); }

static int st_apply(void *arg, MDB_txn *t, const struct feed_item *it, char *err, size_t errlen)
{
	struct feedpump *fp = arg;
	struct store *st = fp->d->st;
	if (it->mac < 0) {
		snprintf(err, errlen, "no valid fleet MAC (%s): not published by a member of this fleet", FLEET_MAC_HEADER);
		return FEED_APPLY_REFUSED;
	}
	int rc = store_event_exists(t, st, it->event_id);
	if (rc == 1) return FEED_APPLY_PRESENT;
	struct json_doc *d = &fp->apply_doc;
	if (json_parse(d, it->json, it->json_len, JSON_MAX_DEPTH_DEFAULT) < 0 || d->tok[0].type != JSON_OBJECT) {
		snprintf(err, errlen, "not a feed JSON object (%s at byte %u)", json_err_str(d->err), d->err_off);
		return FEED_APPLY_REFUSED;
	}
	int ti = json_obj_get(d, 0, "event_id"), tp = json_obj_get(d, 0, "pdu");
	if (ti < 0 || !json_str_eq(d, ti, it->event_id)) {
		snprintf(err, errlen, "its event_id is not its Nats-Msg-Id");
		return FEED_APPLY_REFUSED;
	}
	if (tp < 0 || d->tok[tp].type != JSON_OBJECT) {
		snprintf(err, errlen, "no pdu object");
		return FEED_APPLY_REFUSED;
	}
	const char *pdu = it->json + d->tok[tp].start;
	size_t n = d->tok[tp].end - d->tok[tp].start;
	struct pdu_info *pi = &fp->apply_pi;
	if (strlen(it->event_id) >= sizeof pi->event_id) {
		snprintf(err, errlen, "event ID too long");
		return FEED_APPLY_REFUSED;
	}
	/* the PDU's own parse (a second doc: pi's parse reuses d otherwise) */
	struct json_doc *pd = &fp->apply_pdoc;
	if (purg_pdu_parse(pd, pdu, n, pi, err, errlen) < 0) return FEED_APPLY_REFUSED;
	snprintf(pi->event_id, sizeof pi->event_id, "%s", it->event_id);
	int rv = purg_room_version_for(t, st, pi, fp->default_rv);
	char id[PDU_EVENT_ID_MAX];
	if (pdu_event_id(pd, 0, rv, id) < 0 || strcmp(id, it->event_id) != 0) {
		snprintf(err, errlen, "the PDU's reference hash (room version %d) is %s, not its event ID", rv,
		         id[0] == '$' ? id : "not computable");
		return FEED_APPLY_REFUSED;
	}
	/* stored redacted upstream: its content hash no longer matches */
	int redacted = pdu_check_content_hash(pd, 0, NULL) != PDU_OK;
	uint64_t pos = 0;
	long long now = now_ms();
	rc = purg_store_event(t, st, pi, rv, redacted, pdu, n, now, &pos);
	if (rc == 1) return FEED_APPLY_PRESENT;
	if (rc) return rc;
	/* The outbox row purg_store_event appended, marked published at the
	 * fleet stream's sequence: the drain skips it (no re-publish). */
	struct outbox_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.event_id, sizeof r.event_id, "%s", it->event_id);
	r.control_version = it->cv ? it->cv : 1;
	r.published_ms = now;
	if ((rc = outbox_row_put(t, st, DB_OUTBOX, pos, &r))) return rc;
	buf_addc(&fp->apply_ids, ',');
	json_put_string(&fp->apply_ids, it->event_id, strlen(it->event_id));
	return FEED_APPLY_DONE;
}

static void apply_cb(evutil_socket_t fd, short what, void *arg);

static void apply_schedule(struct feedpump *fp, long long ms)
{
	if (fp->stopping) return;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(fp->apply_ev, &tv);
}

static int apply_open(struct feedpump *fp)
{
	char err[512], spec[300];
	snprintf(spec, sizeof spec, "nats:%s", fp->apply_opts.nats_subject);
	fp->apply.src = feed_source_open(spec, &fp->apply_opts, NULL, err, sizeof err);
	if (!fp->apply.src) {
		if (!fp->apply_warned) log_warnx("fleet apply: %s; retrying every %d ms", err, RETRY_MS);
		fp->apply_warned = 1;
		return -1;
	}
	if (fp->apply_warned) log_notice("fleet apply: connected");
	fp->apply_warned = 0;
	return 0;
}

static void apply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct feedpump *fp = arg;
	if (fp->stopping) return;
	if (!fp->apply.src && apply_open(fp) < 0) { apply_schedule(fp, RETRY_MS); return; }
	if (fp->d->st->full) { apply_schedule(fp, RETRY_MS); return; }
	char err[512];
	long long before = fp->apply.applied;
	int n = feed_apply_step(&fp->apply, APPLY_BATCH, FETCH_WAIT_MS, err, sizeof err);
	if (n < 0) {
		if (!fp->apply_warned) log_warnx("fleet apply: %s; retrying", err);
		fp->apply_warned = 1;
		apply_schedule(fp, RETRY_MS);
		return;
	}
	if (fp->apply_warned && n > 0) { log_notice("fleet apply: flowing again"); fp->apply_warned = 0; }
	*fp->c_fleet_applied += (uint64_t)(fp->apply.applied - before);
	tell_purgatoryd(fp);
	*fp->g_fleet_cursor = (int64_t)fp->apply.cursor;
	apply_schedule(fp, n > 0 ? 0 : IDLE_MS);
}

void fp_apply_init(struct feedpump *fp, const char *node_id)
{
	const struct config *cfg = &fp->d->cfg;
	feed_opts_fleet(&fp->apply_opts, cfg, node_id);
	fp->apply_opts.mac_key = &fp->fleet_key;   /* loaded by main: every message must carry it */
	snprintf(fp->apply_consumer, sizeof fp->apply_consumer, "fleet:%s", cfg_str(cfg, "fleet", "name"));
	fp->default_rv = (int)cfg_int(cfg, "node", "room_version");
	fp->apply.tg = (struct feed_apply_target){
		.arg = fp, .begin = st_begin, .commit = st_commit, .write_failed = st_write_failed,
		.applied = fp->d->st->dbi[DB_APPLIED_EVENTS], .apply = st_apply,
	};
	fp->apply.consumer = fp->apply_consumer;
	fp->apply.verbose = 0;
	feed_apply_init(&fp->apply);
	fp->c_fleet_applied = daemon_counter(fp->d, "fleet_applied");
	fp->g_fleet_cursor = daemon_gauge(fp->d, "fleet_apply_cursor");
	fp->c_fleet_wakes = daemon_counter(fp->d, "fleet_purgatory_wakes");
	buf_init(&fp->apply_ids);
	buf_init(&fp->apply_told);
	fp->apply_ev = evtimer_new(fp->d->base, apply_cb, fp);
	if (!fp->apply_ev) fatalx("cannot create the apply timer");
	log_info("fleet apply: consumer %s on %s", fp->apply_opts.nats_durable, fp->apply_opts.nats_subject);
	apply_schedule(fp, 0);
}

void fp_apply_fini(struct feedpump *fp)
{
	if (fp->apply.src) feed_source_close(fp->apply.src);
	fp->apply.src = NULL;
	if (fp->apply_ev) event_free(fp->apply_ev);
	fp->apply_ev = NULL;
	json_doc_free(&fp->apply_doc);
	json_doc_free(&fp->apply_pdoc);
	buf_free(&fp->apply_ids);
	buf_free(&fp->apply_told);
}
