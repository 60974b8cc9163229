/* fetch_main.c: fetchd's entry point: configuration, the frame dispatch
 * (FETCH_REQ, CANCEL) and the hooks the daemon skeleton calls. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "fetch.h"
#include "log.h"

static struct fetchd G;

static struct client *client_of(struct conn *c)
{
	struct client *cl = conn_user(c);
	if (cl) return cl;
	if (!(cl = calloc(1, sizeof *cl))) log_panic("out of memory");
	cl->c = c;
	TAILQ_INIT(&cl->waiters);
	conn_set_user(c, cl);
	return cl;
}

static int parse_checks(const char *s)
{
	int v = 0;
	if (strstr(s, "event_id")) v |= FETCH_CHECK_EVENT_ID;
	if (strstr(s, "hashes")) v |= FETCH_CHECK_HASHES;
	if (strstr(s, "signatures")) v |= FETCH_CHECK_SIGNATURES;
	return v;
}

static int fetchd_init(struct daemon *d)
{
	struct fetchd *fd = &G;
	const struct config *c = &d->cfg;
	fd->d = d;
	d->priv = fd;
	if (sodium_init() < 0) { log_err("sodium_init failed"); return EXIT_TEMP; }
	fd->requests_max = (int)cfg_int(c, "fetchd", "requests_max");
	fd->queue_max = (int)cfg_int(c, "fetchd", "queue_max");
	fd->request_timeout = cfg_ms(c, "fetchd", "request_timeout");
	fd->connect_timeout = cfg_ms(c, "fetchd", "connect_timeout");
	fd->fetch_timeout = cfg_ms(c, "fetchd", "fetch_timeout");
	fd->response_max = (size_t)cfg_size(c, "fetchd", "response_max");
	fd->width_max = (int)cfg_int(c, "fetchd", "round_width_max");
	fd->attempts_max = (int)cfg_int(c, "fetchd", "attempts_max");
	fd->srv_conc = (int)cfg_int(c, "fetchd", "server_concurrency");
	fd->srv_rate = (int)cfg_int(c, "fetchd", "server_rate");
	fd->servers_max = (size_t)cfg_int(c, "fetchd", "servers_max");
	fd->backoff_window = cfg_ms(c, "fetchd", "backoff_window");
	fd->backoff_max = cfg_ms(c, "fetchd", "backoff_max");
	fd->backoff_grace = (int)cfg_int(c, "fetchd", "backoff_grace");
	fd->checks_default = parse_checks(cfg_str(c, "fetchd", "checks"));
	fd->room_version = (int)cfg_int(c, "node", "room_version");
	snprintf(fd->own, sizeof fd->own, "%s", cfg_str(c, "node", "server_name"));
	if (fd->requests_max < 1 || fd->queue_max < 0 || fd->request_timeout <= 0 ||
	    fd->fetch_timeout <= 0 || fd->width_max < 1 || fd->attempts_max < 1 ||
	    fd->srv_conc < 1 || fd->srv_rate < 0 || fd->backoff_window < 0 ||
	    fd->response_max < 1024 || fd->servers_max < 1) {
		log_err("%s: [fetchd] values out of range", d->cfg_path ? d->cfg_path : "config");
		return EXIT_CONFIG;
	}
	fd->c_requests = daemon_counter(d, "requests");
	fd->c_coalesced = daemon_counter(d, "coalesced");
	fd->c_upstream = daemon_counter(d, "upstream_requests");
	fd->c_ok = daemon_counter(d, "ok");
	fd->c_not_found = daemon_counter(d, "not_found");
	fd->c_no_cand = daemon_counter(d, "no_candidates");
	fd->c_busy = daemon_counter(d, "busy");
	fd->c_cancelled = daemon_counter(d, "cancelled");
	fd->c_timeout = daemon_counter(d, "timeout");
	fd->c_bad_answer = daemon_counter(d, "bad_answers");
	fd->c_revived = daemon_counter(d, "revived");
	fd->c_queued = daemon_counter(d, "queued");
	fd->c_reply_dropped = daemon_counter(d, "replies_dropped");
	fd->c_bad_request = daemon_counter(d, "bad_requests");
	fd->c_busy_lo = daemon_counter(d, "busy_recoveries");
	fd->c_bad_names = daemon_counter(d, "bad_server_names");
	fd->c_denied = daemon_counter(d, "denied_addresses");
	fd->c_evicted = daemon_counter(d, "servers_evicted");
	fd->c_health_pruned = daemon_counter(d, "health_pruned");
	fd->c_health_errors = daemon_counter(d, "health_write_errors");
	fd->g_servers = daemon_gauge(d, "servers");
	fd->g_active = daemon_gauge(d, "inflight");
	fd->g_queued = daemon_gauge(d, "queue");
	fd->g_waiters = daemon_gauge(d, "callers");
	fd->g_peak = daemon_gauge(d, "inflight_peak");
	TAILQ_INIT(&fd->queue);
	TAILQ_INIT(&fd->queue_lo);
	TAILQ_INIT(&fd->lru);
	fd->turn = 1;
	if (transport_init(fd) < 0) return EXIT_TEMP;
	log_info("fetchd: requests_max %d, queue_max %d, per server %d concurrent / %d per min",
	         fd->requests_max, fd->queue_max, fd->srv_conc, fd->srv_rate);
	return 0;
}

static void fetchd_frame(struct daemon *d, struct conn *c, struct frame *f)
{
	struct fetchd *fd = d->priv;
	struct client *cl = client_of(c);
	char err[256];
	switch (f->type) {
	case FT_FETCH_REQ: {
		struct fetch_req req;
		(*fd->c_requests)++;
		if (fetchreq_parse(f->payload, f->len, &req, err, sizeof err) < 0) {
			log_warnx("%s: bad fetch request %llu: %s", conn_peer(c),
			          (unsigned long long)f->id, err);
			(*fd->c_bad_request)++;
			reply_error(fd, cl, f->id, "bad_request", err);
			return;
		}
		fetch_submit(fd, cl, f->id, f->flags & FF_PROXIED, &req);
		return;
	}
	case FT_CANCEL:
		fetch_cancel(fd, cl, f->id, 1);
		return;
	case FT_HELLO:
	case FT_FETCH_RESULT:
		return;
	default:
		log_warnx("%s: unexpected %s frame ignored", conn_peer(c), frame_type_name(f->type));
	}
}

static void fetchd_close(struct daemon *d, struct conn *c)
{
	struct client *cl = conn_user(c);
	if (!cl) return;
	client_gone(d->priv, cl);
	conn_set_user(c, NULL);
	free(cl);
}

static void fetchd_turn(struct daemon *d)
{
	struct fetchd *fd = d->priv;
	if (!fd) return;
	health_flush(fd);
	fd->turn++;
	*fd->g_active = fd->active;
	*fd->g_queued = fd->queued;
	*fd->g_waiters = fd->nwaiters;
	*fd->g_servers = (int64_t)fd->nsrv;
	if (fd->stdin_eof && fetch_idle(fd)) daemon_stop(d, 0);
}

static void fetchd_stdin_eof(struct daemon *d)
{
	struct fetchd *fd = d->priv;
	fd->stdin_eof = 1;
	if (fetch_idle(fd)) daemon_stop(d, 0);
}

static void fetchd_fini(struct daemon *d)
{
	struct fetchd *fd = d->priv;
	if (!fd) return;
	/* --stdio: the skeleton frees its conn without on_close; drop the
	 * client (and its waiters) here as a socket close would have */
	if (d->stdin_conn) fetchd_close(d, d->stdin_conn);
	fetch_shutdown(fd);
	health_flush(fd);
	health_fini();
	transport_fini(fd);
}

static const struct daemon_ops fetchd_ops = {
	.name = "fetchd",
	.summary = "coalesced, failover federation fetch of raw event bytes",
	.needs_store = 1,
	.usage = "\nEnvironment: outgoing proxies by libcurl's rules, read once per server:\n"
	         "  http_proxy, https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY, no_proxy/NO_PROXY\n"
	         "  (upper-case HTTP_PROXY is ignored).\n",
	.init = fetchd_init,
	.on_frame = fetchd_frame,
	.on_close = fetchd_close,
	.on_turn = fetchd_turn,
	.on_stdin_eof = fetchd_stdin_eof,
	.fini = fetchd_fini,
};

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &fetchd_ops);
}
