/* fetch_main.c: fetchd's entry point: configuration, the frame dispatch
 * (FETCH_REQ, CANCEL) and the hooks the daemon skeleton calls. */
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sodium.h>
#include "fetch.h"
#include "core/log.h"
#include "core/xalloc.h"

static struct fetchd fetchd;

static struct client *client_of(struct conn *c)
{
	struct client *cl = conn_user(c);
	if (cl) return cl;
	cl = xcalloc(1, sizeof *cl);
	cl->c = c;
	TAILQ_INIT(&cl->waiters);
	conn_set_user(c, cl);
	return cl;
}

/* "event_id hashes signatures" (comma or space separated, any subset);
 * -1 on an unknown word. */
static int parse_checks(const char *s)
{
	static const struct { const char *w; int bit; } words[] = {
		{ "event_id", FETCH_CHECK_EVENT_ID }, { "hashes", FETCH_CHECK_HASHES },
		{ "signatures", FETCH_CHECK_SIGNATURES } };
	int v = 0;
	while (*s) {
		size_t k = strcspn(s, ", "), i;
		for (i = 0; k && i < 3; i++)
			if (strlen(words[i].w) == k && strncmp(s, words[i].w, k) == 0) break;
		if (k && i == 3) return -1;
		if (k) v |= words[i].bit;
		s += k;
		while (*s == ',' || *s == ' ') s++;
	}
	return v;
}

/* fetchd's parameters, read afresh at start and at every reload (nothing
 * points into the configuration: names are copied). */
struct params {
	int       requests_max, queue_max, width_max, attempts_max, srv_conc, srv_rate;
	int       backoff_grace, checks, room_version;
	long long request_timeout, connect_timeout, fetch_timeout, backoff_window, backoff_max;
	size_t    response_max, servers_max;
	char      own[256];
};

static int params_read(const struct config *c, struct params *p, char *err, size_t cap)
{
	long long smax = cfg_int(c, "fetchd", "servers_max");
	p->requests_max = (int)cfg_int(c, "fetchd", "requests_max");
	p->queue_max = (int)cfg_int(c, "fetchd", "queue_max");
	p->request_timeout = cfg_ms(c, "fetchd", "request_timeout");
	p->connect_timeout = cfg_ms(c, "fetchd", "connect_timeout");
	p->fetch_timeout = cfg_ms(c, "fetchd", "fetch_timeout");
	p->response_max = (size_t)cfg_size(c, "fetchd", "response_max");
	p->width_max = (int)cfg_int(c, "fetchd", "round_width_max");
	p->attempts_max = (int)cfg_int(c, "fetchd", "attempts_max");
	p->srv_conc = (int)cfg_int(c, "fetchd", "server_concurrency");
	p->srv_rate = (int)cfg_int(c, "fetchd", "server_rate");
	p->servers_max = smax > 0 ? (size_t)smax : 0;
	p->backoff_window = cfg_ms(c, "fetchd", "backoff_window");
	p->backoff_max = cfg_ms(c, "fetchd", "backoff_max");
	p->backoff_grace = (int)cfg_int(c, "fetchd", "backoff_grace");
	p->checks = parse_checks(cfg_str(c, "fetchd", "checks"));
	p->room_version = (int)cfg_int(c, "node", "room_version");
	snprintf(p->own, sizeof p->own, "%s", cfg_str(c, "node", "server_name"));
	if (p->checks < 0) {
		snprintf(err, cap, "[fetchd] checks: '%s': expected any of event_id, hashes, signatures",
		         cfg_str(c, "fetchd", "checks"));
		return -1;
	}
	if (p->requests_max < 1 || p->queue_max < 0 || p->request_timeout <= 0 ||
	    p->fetch_timeout <= 0 || p->width_max < 1 || p->attempts_max < 1 ||
	    p->srv_conc < 1 || p->srv_rate < 0 || p->backoff_window < 0 ||
	    p->response_max < 1024 || p->servers_max < 1) {
		snprintf(err, cap, "[fetchd] values out of range");
		return -1;
	}
	return 0;
}

static void params_apply(struct fetchd *fd, const struct params *p)
{
	fd->requests_max = p->requests_max;
	fd->queue_max = p->queue_max;
	fd->request_timeout = p->request_timeout;
	fd->connect_timeout = p->connect_timeout;
	fd->fetch_timeout = p->fetch_timeout;
	fd->response_max = p->response_max;
	fd->width_max = p->width_max;
	fd->attempts_max = p->attempts_max;
	fd->srv_conc = p->srv_conc;
	fd->srv_rate = p->srv_rate;
	fd->servers_max = p->servers_max;
	fd->backoff_window = p->backoff_window;
	fd->backoff_max = p->backoff_max;
	fd->backoff_grace = p->backoff_grace;
	fd->checks_default = p->checks;
	fd->room_version = p->room_version;
	snprintf(fd->own, sizeof fd->own, "%s", p->own);
}

/* [acl] deny and allow both empty (the usual case): every server name
 * passes cfg_acl_allows, so selection need not ask it per candidate.
 * Read at start and at every reload, whatever else the reload keeps. */
static void acl_load(struct fetchd *fd)
{
	fd->acl_open = !*cfg_str(&fd->d->cfg, "acl", "deny") && !*cfg_str(&fd->d->cfg, "acl", "allow");
}

static int fetchd_init(struct daemon *d)
{
	struct fetchd *fd = &fetchd;
	struct params p;
	char err[256];
	fd->d = d;
	d->priv = fd;
	/* libcurl mallocs a 16 KiB receive buffer per transfer and frees it
	 * when the transfer is done; with the heap's top above glibc's trim
	 * threshold (128 KiB, or what it adapted to) nearly every such free gave
	 * memory back with brk and the next transfer asked for it again: 4.5%
	 * of fetchd's CPU under bench/fetchd.sh (perf). Free memory is given
	 * back past 16 MiB at the top of the heap instead. */
#ifdef M_TRIM_THRESHOLD
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
	if (sodium_init() < 0) { log_err("sodium_init failed"); return EXIT_TEMP; }
	if (params_read(&d->cfg, &p, err, sizeof err) < 0) {
		log_err("%s: %s", d->cfg_path ? d->cfg_path : "config", err);
		return EXIT_CONFIG;
	}
	params_apply(fd, &p);
	acl_load(fd);
	if (transport_policy_load(fd, &d->cfg, err, sizeof err) < 0) {
		log_err("%s: [fetchd] ip_range_deny/ip_range_allow: %s", d->cfg_path ? d->cfg_path : "config", err);
		return EXIT_CONFIG;
	}
	/* Every /_matrix/federation request is signed (X-Matrix) with this
	 * key as [node] server_name; both names are restart-only (daemon.c
	 * keeps them at a reload); the key file is read again at a reload
	 * (reload_signing_key). */
	if (signing_key_load(&fd->sk, cfg_str(&d->cfg, "node", "signing_key"), err, sizeof err) < 0) {
		log_err("cannot load [node] signing_key (fetchd signs its federation requests): %s", err);
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
	fd->c_resolutions = daemon_counter(d, "resolutions");
	fd->c_resolve_cached = daemon_counter(d, "resolutions_cached");
	fd->c_resolve_failed = daemon_counter(d, "resolve_failed");
	fd->c_resolve_errors = daemon_counter(d, "resolution_write_errors");
	fd->g_servers = daemon_gauge(d, "servers");
	fd->g_resolving = daemon_gauge(d, "resolving");
	fd->g_active = daemon_gauge(d, "inflight");
	fd->g_queued = daemon_gauge(d, "queue");
	fd->g_waiters = daemon_gauge(d, "callers");
	fd->g_peak = daemon_gauge(d, "inflight_peak");
	TAILQ_INIT(&fd->queue);
	TAILQ_INIT(&fd->queue_lo);
	TAILQ_INIT(&fd->lru);
	TAILQ_INIT(&fd->retired);
	fd->turn = 1;
	if (transport_init(fd) < 0) return EXIT_TEMP;
	/* Servers outside the configuration are reached by name: [node]
	 * resolver (DNS server) and ca_file (trusted besides the system's,
	 * every outgoing TLS connection); a reload with either changed makes
	 * a new resolver. */
	if (transport_resolver_load(fd, &d->cfg, err, sizeof err) < 0) {
		log_err("%s: [node] resolver: %s", d->cfg_path ? d->cfg_path : "config", err);
		return EXIT_CONFIG;
	}
	log_info("fetchd: requests_max %d, queue_max %d, per server %d concurrent / %d per min; "
	         "signing as %s with %s", fd->requests_max, fd->queue_max, fd->srv_conc, fd->srv_rate,
	         fd->own, fd->sk.key_id);
	return 0;
}

static void fetchd_frame(struct daemon *d, struct conn *c, struct frame *f)
{
	struct fetchd *fd = d->priv;
	struct client *cl = client_of(c);
	char err[256];
	switch (f->type) {
	case FT_FETCH_REQ:
	case FT_RECOVER: {              /* a recovery: an event fetch made for another node */
		struct fetch_req req;
		int rec = f->type == FT_RECOVER;
		(*fd->c_requests)++;
		if (fetchreq_parse_op(f->payload, f->len, rec ? FOP_EVENT : -1, &req, err, sizeof err) < 0) {
			log_warnx("%s: bad fetch request %llu: %s", conn_peer(c),
			          (unsigned long long)f->id, err);
			(*fd->c_bad_request)++;
			fetch_reply_error(fd, cl, f->id, "bad_request", err);
			return;
		}
		fetch_submit(fd, cl, f->id, (f->flags & FF_PROXIED) | (rec ? FF_PROXIED : 0), &req);
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

/* SIGHUP: the signing key file is read again (after `fedctl keygen
 * --rotate`): a good new key replaces the old one at once, every request
 * dispatched from now on is signed with it (a request is signed when it
 * is sent, attempt_run); an unreadable or malformed file keeps the old key,
 * said in one line. The path itself is restart-only (daemon.c). */
static void reload_signing_key(struct fetchd *fd)
{
	const char *path = cfg_str(&fd->d->cfg, "node", "signing_key");
	char err[320], was[sizeof fd->sk.key_id];
	snprintf(was, sizeof was, "%s", fd->sk.key_id);
	int r = signing_key_reload(&fd->sk, path, err, sizeof err);
	if (r < 0)
		log_warnx("reload: [node] signing_key not reloaded, still signing with %s: %s", was, err);
	else if (r > 0)
		log_notice("reload: [node] signing_key %s: now signing with %s (was %s)", path, fd->sk.key_id, was);
}

/* SIGHUP: the new limits apply at once (waiting fetches are admitted,
 * waiting requests dispatched under the new throttle); servers whose URL,
 * key or CA changed are rebuilt (one with requests in flight finishes
 * those as it started them and is freed afterwards); handles set up with
 * old timeouts are dropped. Out-of-range values: the old ones stay. */
static void fetchd_reload(struct daemon *d, const struct config *old)
{
	struct fetchd *fd = d->priv;
	struct params p;
	char err[256];
	(void)old;
	if (!fd) return;
	acl_load(fd);
	reload_signing_key(fd);
	if (params_read(&d->cfg, &p, err, sizeof err) < 0) {
		log_warnx("reload: %s; fetchd keeps its previous limits", err);
		return;
	}
	int timeouts = p.request_timeout != fd->request_timeout ||
	               p.connect_timeout != fd->connect_timeout;
	int deadline = p.fetch_timeout != fd->fetch_timeout;
	int old_rate = fd->srv_rate;
	params_apply(fd, &p);
	if (transport_policy_load(fd, &d->cfg, err, sizeof err) < 0)
		log_warnx("reload: [fetchd] ip_range_deny/ip_range_allow: %s; the previous address policy stays", err);
	if (transport_resolver_load(fd, &d->cfg, err, sizeof err) < 0)
		log_warnx("reload: [node] resolver / ca_file: %s; the previous resolver stays", err);
	if (deadline) fd->deadline_tv = NULL;    /* fetches already running keep theirs */
	transport_reload(fd, timeouts, old_rate);
	fetch_admit(fd);
	log_info("fetchd: reloaded: requests_max %d, queue_max %d, per server %d concurrent / %d per min, "
	         "servers_max %zu", fd->requests_max, fd->queue_max, fd->srv_conc, fd->srv_rate,
	         fd->servers_max);
}

static void fetchd_close(struct daemon *d, struct conn *c)
{
	struct client *cl = conn_user(c);
	if (!cl) return;
	fetch_client_gone(d->priv, cl);
	conn_set_user(c, NULL);
	free(cl);
}

static void fetchd_turn(struct daemon *d)
{
	struct fetchd *fd = d->priv;
	if (!fd) return;
	health_flush(fd);
	transport_resolutions_flush(fd);
	transport_reap(fd);
	fd->turn++;
	*fd->g_active = fd->active;
	*fd->g_queued = fd->queued;
	*fd->g_waiters = fd->nwaiters;
	*fd->g_servers = (int64_t)fd->nsrv;
	*fd->g_resolving = fd->rs ? (int64_t)resolver_pending(fd->rs) : 0;
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
	transport_resolutions_flush(fd);
	transport_fini(fd);               /* cancels the servers' lookups, */
	transport_resolver_free(fd);      /* then the resolver */
	transport_policy_free(fd);
	sodium_memzero(&fd->sk, sizeof fd->sk);
}

static const struct daemon_ops fetchd_ops = {
	.name = "fetchd",
	.summary = "coalesced, failover federation fetch of raw event bytes",
	.store = &store_for_daemon,
	.usage = "\nEnvironment: outgoing proxies by libcurl's rules, read once per server:\n"
	         "  http_proxy, https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY, no_proxy/NO_PROXY\n"
	         "  (upper-case HTTP_PROXY is ignored).\n",
	.init = fetchd_init,
	.on_frame = fetchd_frame,
	.on_close = fetchd_close,
	.on_turn = fetchd_turn,
	.on_reload = fetchd_reload,
	.on_stdin_eof = fetchd_stdin_eof,
	.fini = fetchd_fini,
};

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &fetchd_ops);
}
