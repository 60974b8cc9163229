/* served_fed.c: fedpipe's own sync endpoints: /_fed/v1/identity (with the
 * node's [node] mode, in every mode) and /_fed/v1/events with long-poll
 * (refused in subscribe mode by served_dispatch; parked long-polls are
 * answered 403 when a reload makes the node subscribe). Long-poll waiters are woken by a cheap
 * poll of the stream head (one read txn + MDB_LAST, about a microsecond)
 * every longpoll_tick while anyone waits: purgatoryd is the only writer of
 * the stream and it announces commits to feedpump only, so polling LMDB
 * needs no new frame plumbing, costs nothing when nobody waits, and cannot
 * miss a commit the way a lost wakeup frame could. */
#include "served.h"
#include "store/events.h"
#include "store/fedstate.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include "matrix/b64.h"
#include <stdlib.h>
#include <string.h>
#include <errno.h>

struct waiter {
	struct evhttp_request *req;
	uint64_t since;
	int limit;
	long long deadline;
};

static uint64_t stream_head(struct served *s, MDB_txn *t)
{
	return store_stream_head(t, s->d->st);
}

/* The node's clock: its own stream head, merged with the clocks its peers
 * advertised when syncd last caught up with them (federation_state
 * "<peer>\0vclock"): what this node has, directly or through others. */
void fed_node_clock(struct served *s, MDB_txn *t, struct vclock *vc)
{
	vclock_init(vc);
	fstate_merge_clocks(t, s->d->st, vc);
	vclock_advance(vc, s->node_id, stream_head(s, t));
}

void fed_identity(struct served *s, struct evhttp_request *req)
{
	struct vclock *vc = xmalloc(sizeof *vc);
	MDB_txn *t = store_begin(s->d->st, 1);
	fed_node_clock(s, t, vc);
	mdb_txn_abort(t);
	struct buf b;
	buf_init(&b);
	char pk[64];
	b64_encode(pk, s->key.pk, 32);
	buf_adds(&b, "{\"node_id\":");
	json_put_string(&b, s->node_id, strlen(s->node_id));
	buf_printf(&b, ",\"schema_version\":%d,\"server_name\":", STORE_SCHEMA_VERSION);
	json_put_string(&b, s->server_name, strlen(s->server_name));
	buf_printf(&b, ",\"mode\":\"%s\"", node_mode_names[s->mode]);
	buf_adds(&b, ",\"vclock\":");
	vclock_to_json(vc, &b);
	buf_adds(&b, ",\"verify_keys\":{");
	json_put_string(&b, s->key.key_id, strlen(s->key.key_id));
	buf_printf(&b, ":{\"key\":\"%s\"}}}", pk);
	served_json(req, 200, "OK", &b);
	buf_free(&b);
	free(vc);
}

/* Write the answer for events after since: at most limit events and the
 * byte cap (always at least one event, so a large PDU cannot stall the
 * cursor). Returns the number of events written. */
static int events_answer(struct served *s, struct evhttp_request *req, uint64_t since, int limit)
{
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"events\":[");
	MDB_txn *t = store_begin(s->d->st, 1);
	struct store_stream ss;
	uint64_t next = since;
	int n = 0;
	if (store_stream_open(&ss, t, s->d->st, since + 1) == 0) {
		while (n < limit && store_stream_next(&ss) == 1) {
			char id[SERVED_ID_MAX];
			if (ss.id_len >= sizeof id) continue;
			memcpy(id, ss.event_id, ss.id_len);
			id[ss.id_len] = 0;
			struct event_rec r;
			if (store_event_get(t, s->d->st, id, &r)) {
				/* A stream row without its event is a store bug; skip it
				 * rather than stall every follower on it forever. */
				log_warnx("stream position %llu names %s, which is not in events",
				          (unsigned long long)ss.pos, id);
				next = ss.pos;
				continue;
			}
			if (n > 0 && b.len + r.pdu_len > s->events_max_bytes) break;
			if (n) buf_addc(&b, ',');
			buf_add(&b, r.pdu, r.pdu_len);
			next = ss.pos;
			n++;
		}
	}
	store_stream_close(&ss);
	struct vclock *vc = xmalloc(sizeof *vc);
	fed_node_clock(s, t, vc);
	mdb_txn_abort(t);
	buf_printf(&b, "],\"next\":%llu,\"vclock\":", (unsigned long long)next);
	vclock_to_json(vc, &b);
	buf_addc(&b, '}');
	free(vc);
	*s->c_events_served += (uint64_t)n;
	served_json(req, 200, "OK", &b);
	buf_free(&b);
	return n;
}

static int parse_u64(const char *v, uint64_t *out)
{
	return sp_digits(v, UINT64_MAX, out);
}

static void waiter_remove(struct served *s, int i)
{
	s->waiters[i] = s->waiters[--s->nwaiters];
	*s->g_waiters = s->nwaiters;
}

static void poll_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct served *s = arg;
	(void)fd; (void)ev;
	if (!s->nwaiters) return;
	MDB_txn *t = store_begin(s->d->st, 1);
	uint64_t head = stream_head(s, t);
	mdb_txn_abort(t);
	long long now = mono_ms();
	for (int i = 0; i < s->nwaiters;) {
		struct waiter *w = &s->waiters[i];
		if (head > w->since || now >= w->deadline) {
			struct waiter copy = *w;
			waiter_remove(s, i);
			events_answer(s, copy.req, copy.since, copy.limit);
		} else {
			i++;
		}
	}
	if (!s->nwaiters) event_del(s->poll_ev);
}

void fed_events(struct served *s, struct evhttp_request *req)
{
	struct evkeyvalq q;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *qs = evhttp_uri_get_query(u);
	TAILQ_INIT(&q);
	if (qs && evhttp_parse_query_str(qs, &q) < 0) {
		served_error(s, req, 400, "M_INVALID_PARAM", "malformed query string");
		return;
	}
	uint64_t since = 0, limit = (uint64_t)s->events_limit, timeout = 0;
	const char *v;
	if ((v = evhttp_find_header(&q, "since")) && parse_u64(v, &since) < 0) goto bad;
	if ((v = evhttp_find_header(&q, "limit")) && (parse_u64(v, &limit) < 0 || limit == 0)) goto bad;
	if ((v = evhttp_find_header(&q, "timeout_ms")) && parse_u64(v, &timeout) < 0) goto bad;
	evhttp_clear_headers(&q);
	if (limit > (uint64_t)s->events_limit) limit = (uint64_t)s->events_limit;
	if (timeout > (uint64_t)s->longpoll_max) timeout = (uint64_t)s->longpoll_max;
	if (timeout) {
		MDB_txn *t = store_begin(s->d->st, 1);
		uint64_t head = stream_head(s, t);
		mdb_txn_abort(t);
		if (head <= since && s->nwaiters < s->max_waiters && s->nwaiters < s->waiters_cap) {
			(*s->c_longpolls)++;
			s->waiters[s->nwaiters++] = (struct waiter){ req, since, (int)limit,
			                                              mono_ms() + (long long)timeout };
			*s->g_waiters = s->nwaiters;
			if (s->nwaiters == 1) {
				struct timeval tv = { s->longpoll_tick / 1000, (s->longpoll_tick % 1000) * 1000 };
				event_add(s->poll_ev, &tv);
			}
			return;
		}
	}
	events_answer(s, req, since, (int)limit);
	return;
bad:
	evhttp_clear_headers(&q);
	served_error(s, req, 400, "M_INVALID_PARAM", "since, limit and timeout_ms must be decimal digits only (limit > 0)");
}

size_t fed_waiter_size(void) { return sizeof(struct waiter); }

void fed_mode_subscribe(struct served *s)
{
	int n = s->nwaiters;
	while (s->nwaiters) {
		struct waiter w = s->waiters[0];
		waiter_remove(s, 0);
		served_not_publishing(s, w.req);
	}
	if (s->poll_ev) event_del(s->poll_ev);
	if (n) log_info("mode subscribe: %d parked long-poll(s) answered 403", n);
}

void fed_init(struct served *s)
{
	s->waiters_cap = s->max_waiters > 0 ? s->max_waiters : 1;
	s->waiters = xcalloc((size_t)s->waiters_cap, sizeof *s->waiters);
	s->poll_ev = event_new(s->d->base, -1, EV_PERSIST, poll_tick, s);
	if (!s->poll_ev) fatalx("event_new failed");
}

void fed_fini(struct served *s)
{
	/* Answer parked long-polls (empty) so their requests are freed. */
	while (s->nwaiters) {
		struct waiter w = s->waiters[0];
		waiter_remove(s, 0);
		events_answer(s, w.req, w.since, w.limit);
	}
	if (s->poll_ev) event_free(s->poll_ev);
	s->poll_ev = NULL;
	free(s->waiters);
	s->waiters = NULL;
}
