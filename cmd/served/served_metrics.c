/* served_metrics.c: GET /metrics (Prometheus text format) and /healthz.
 * /metrics asks every stage's socket for FT_STATS concurrently (async
 * bufferevents on the loop, one short timeout for all), adds served's own
 * counters and the LMDB table sizes, then answers. A stage that is down or
 * slow shows as fedpipe_stage_up{stage="x"} 0; the loop is never blocked. */
#include "served.h"
#include "core/log.h"
#include "core/stages.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/bufferevent.h>

/* The other stages (the stage table in flow order, served itself left
 * out: it samples its own counters directly). */
#define NSTAGES (STAGE_COUNT - 1)

struct scrape {
	struct served *s;
	struct evhttp_request *req;
	const char *stage[NSTAGES];
	struct bufferevent *bev[NSTAGES];
	char *reply[NSTAGES];
	int pending;
	struct event *timeout;
};

static void scrape_stages(struct scrape *sc, const char *self)
{
	size_t n = 0;
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct stage *sg = stage_in_flow(i);
		if (strcmp(sg->name, self) != 0 && n < NSTAGES)
			sc->stage[n++] = sg->name;
	}
}

static void sample_stage(struct buf *out, const char *stage, const char *json, size_t n)
{
	struct json_doc d = {0};
	if (json_parse(&d, json, n, 8) < 0 || d.tok[0].type != JSON_OBJECT) {
		buf_printf(out, "fedpipe_stage_up{stage=\"%s\"} 0\n", stage);
		json_doc_free(&d);
		return;
	}
	buf_printf(out, "fedpipe_stage_up{stage=\"%s\"} 1\n", stage);
	int up = json_obj_get(&d, 0, "uptime_s");
	if (up >= 0 && d.tok[up].type == JSON_INT)
		buf_printf(out, "fedpipe_stage_uptime_seconds{stage=\"%s\"} %lld\n", stage, (long long)d.tok[up].ival);
	static const char *const kinds[2] = { "counters", "gauges" };
	for (int k = 0; k < 2; k++) {
		int o = json_obj_get(&d, 0, kinds[k]);
		if (o < 0 || d.tok[o].type != JSON_OBJECT) continue;
		for (int m = json_first(&d, o); m >= 0; m = json_next_kv(&d, o, m)) {
			char name[96];
			if (d.tok[m + 1].type != JSON_INT || json_str_copy(&d, m, name, sizeof name) <= 0) continue;
			for (char *p = name; *p; p++)
				if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) *p = '_';
			buf_printf(out, "fedpipe_%s{stage=\"%s\",name=\"%s\"} %lld\n", k ? "gauge" : "counter_total",
			           stage, name, (long long)d.tok[m + 1].ival);
		}
	}
	json_doc_free(&d);
}

static void scrape_finish(struct scrape *sc)
{
	struct served *s = sc->s;
	struct buf out, self;
	buf_init(&out);
	buf_init(&self);
	buf_adds(&out, "# HELP fedpipe_stage_up Whether the stage answered its stats request.\n"
	               "# TYPE fedpipe_stage_up gauge\n"
	               "# HELP fedpipe_stage_uptime_seconds Seconds since the stage started.\n"
	               "# TYPE fedpipe_stage_uptime_seconds gauge\n"
	               "# HELP fedpipe_counter_total A stage's counter (name label).\n"
	               "# TYPE fedpipe_counter_total counter\n"
	               "# HELP fedpipe_gauge A stage's gauge (name label).\n"
	               "# TYPE fedpipe_gauge gauge\n");
	daemon_stats_json(s->d, &self);
	sample_stage(&out, "served", self.data, self.len);
	for (size_t i = 0; i < NSTAGES; i++) {
		if (sc->reply[i]) sample_stage(&out, sc->stage[i], sc->reply[i], strlen(sc->reply[i]));
		else buf_printf(&out, "fedpipe_stage_up{stage=\"%s\"} 0\n", sc->stage[i]);
	}
	buf_adds(&out, "# HELP fedpipe_lmdb_entries Entries in each LMDB named database.\n"
	               "# TYPE fedpipe_lmdb_entries gauge\n");
	MDB_txn *t = store_begin(s->d->st, 1);
	for (int i = 0; i < DB__COUNT; i++) {
		size_t e;
		if (store_entries(t, s->d->st, i, &e) == 0)
			buf_printf(&out, "fedpipe_lmdb_entries{db=\"%s\"} %zu\n", store_db_names[i], e);
	}
	MDB_envinfo ei;
	MDB_stat es;
	if (mdb_env_info(s->d->st->env, &ei) == 0 && mdb_env_stat(s->d->st->env, &es) == 0)
		buf_printf(&out, "# HELP fedpipe_lmdb_used_bytes Bytes of the LMDB map in use.\n"
		           "# TYPE fedpipe_lmdb_used_bytes gauge\nfedpipe_lmdb_used_bytes %llu\n",
		           (unsigned long long)(ei.me_last_pgno + 1) * es.ms_psize);
	mdb_txn_abort(t);
	struct evkeyvalq *h = evhttp_request_get_output_headers(sc->req);
	struct evbuffer *eb = evbuffer_new();
	if (eb && evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4") == 0
	    && evbuffer_add(eb, out.data, out.len) == 0) {
		evhttp_send_reply(sc->req, 200, "OK", eb);
	} else {
		log_warnx("/metrics: no memory for the answer");
		evhttp_send_error(sc->req, 500, NULL);
	}
	if (eb)
		evbuffer_free(eb);
	buf_free(&out);
	buf_free(&self);
	for (size_t i = 0; i < NSTAGES; i++) {
		if (sc->bev[i]) bufferevent_free(sc->bev[i]);
		free(sc->reply[i]);
	}
	if (sc->timeout)
		event_free(sc->timeout);
	free(sc);
}

static void stage_done(struct scrape *sc, size_t i)
{
	if (i < NSTAGES && sc->bev[i]) { bufferevent_free(sc->bev[i]); sc->bev[i] = NULL; }
	if (--sc->pending == 0) scrape_finish(sc);
}

static size_t index_of(struct scrape *sc, struct bufferevent *bev)
{
	for (size_t i = 0; i < NSTAGES; i++) if (sc->bev[i] == bev) return i;
	return NSTAGES;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct scrape *sc = arg;
	size_t i = index_of(sc, bev);
	if (i == NSTAGES) return;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		if (evbuffer_get_length(in) < FRAME_HDR_LEN) return;
		unsigned char h[FRAME_HDR_LEN];
		evbuffer_copyout(in, h, sizeof h);
		struct frame f;
		const char *why;
		if (frame_hdr_decode(h, 1u << 20, &f, &why) < 0) { stage_done(sc, i); return; }
		if (evbuffer_get_length(in) < FRAME_HDR_LEN + (size_t)f.len) return;
		evbuffer_drain(in, FRAME_HDR_LEN);
		char *p = xmalloc((size_t)f.len + 1);
		if (evbuffer_remove(in, p, f.len) != (int)f.len) { free(p); stage_done(sc, i); return; }
		p[f.len] = 0;
		if (f.type == FT_STATS) { sc->reply[i] = p; stage_done(sc, i); return; }
		free(p);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct scrape *sc = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		size_t i = index_of(sc, bev);
		if (i < NSTAGES) stage_done(sc, i);
	}
}

static void timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct scrape *sc = arg;
	(void)fd; (void)ev;
	sc->pending = 1;     /* finish now with what arrived */
	for (size_t i = 0; i < NSTAGES; i++) if (sc->bev[i]) { bufferevent_free(sc->bev[i]); sc->bev[i] = NULL; }
	stage_done(sc, NSTAGES);
}

void metrics_handle(struct served *s, struct evhttp_request *req)
{
	struct scrape *sc = xcalloc(1, sizeof *sc);
	sc->s = s;
	sc->req = req;
	sc->pending = 1;     /* our own hold, released below */
	scrape_stages(sc, s->d->ops->name);
	/* the timer first: without it a silent stage would hold the answer */
	sc->timeout = evtimer_new(s->d->base, timeout_cb, sc);
	if (!sc->timeout) {
		log_warnx("/metrics: cannot make a timer (event_new failed)");
		served_error(s, req, 500, "M_UNKNOWN", "out of resources");
		free(sc);
		return;
	}
	const char *run_dir = cfg_str(&s->d->cfg, "node", "run_dir");
	for (size_t i = 0; i < NSTAGES; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		frame_stage_path(sa.sun_path, sizeof sa.sun_path, run_dir, sc->stage[i]);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) continue;
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS && errno != EAGAIN) {
			close(fd);
			continue;
		}
		struct bufferevent *bev = bufferevent_socket_new(s->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (!bev) { close(fd); continue; }
		unsigned char h[FRAME_HDR_LEN];
		frame_hdr_encode(h, 0, FT_STATS_REQ, 0, 1);
		bufferevent_setcb(bev, read_cb, NULL, event_cb, sc);
		if (bufferevent_write(bev, h, sizeof h) < 0 || bufferevent_enable(bev, EV_READ) < 0) {
			bufferevent_free(bev);     /* shows as down */
			continue;
		}
		sc->bev[i] = bev;
		sc->pending++;
	}
	struct timeval tv = { s->stats_timeout / 1000, (s->stats_timeout % 1000) * 1000 };
	if (evtimer_add(sc->timeout, &tv) < 0) {
		/* no deadline: answer with what is there now */
		log_warnx("/metrics: cannot arm the stats timer; answering without waiting");
		timeout_cb(-1, 0, sc);
		return;
	}
	stage_done(sc, NSTAGES);
}

void healthz_handle(struct served *s, struct evhttp_request *req)
{
	MDB_txn *t = store_begin(s->d->st, 1);
	size_t e;
	int ok = store_entries(t, s->d->st, DB_EVENTS, &e) == 0;
	mdb_txn_abort(t);
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"node_id\":\"%s\",\"ok\":%s,\"server_name\":", s->node_id, ok ? "true" : "false");
	json_put_string(&b, s->server_name, strlen(s->server_name));
	buf_addc(&b, '}');
	served_json(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", &b);
	buf_free(&b);
}
