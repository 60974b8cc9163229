/* syncd_main.c: syncd's daemon ops and options, and its HTTP requests:
 * libcurl's multi interface on the daemon's libevent loop (core/curlev:
 * curl says which sockets and which timeout to watch, the loop tells it
 * what fired, a finished request comes back to http_done). One loop, any
 * number of peers, TLS and timeouts by libcurl. */
#include "syncd.h"
#include "core/log.h"
#include "core/curlev.h"
#include "core/resolve.h"
#include "core/xalloc.h"
#include "store/fleet.h"
#include "matrix/xmatrix.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>
#include <sodium.h>

static struct syncd syncd;

/* A request finished (it has left the multi): its peer goes on. */
static void http_done(void *arg, CURL *e, void *priv, CURLcode rc, long status)
{
	struct peer *p = priv;
	(void)arg; (void)e; (void)status;
	if (p) peer_http_done(p, rc);
}

static size_t write_cb(char *ptr, size_t size, size_t n, void *arg)
{
	struct peer *p = arg;
	size_t len = size * n;
	if (p->body.len + len > (size_t)p->sy->max_body) { p->too_large = 1; return 0; }
	buf_add(&p->body, ptr, len);
	return len;
}

/* The server a request to the peer is for (X-Matrix destination): its
 * [peer] server_name, else the name it is pinned to (this run's identity,
 * or the one stored with its node ID), else its endpoint's host[:port]. */
static void peer_destination(struct peer *p, char *out, size_t cap)
{
	struct store *st = p->sy->d->st;
	out[0] = 0;
	if (p->cfg.server_name[0]) { snprintf(out, cap, "%s", p->cfg.server_name); return; }
	if (p->server_name[0]) { snprintf(out, cap, "%s", p->server_name); return; }
	MDB_txn *t = st ? store_begin(st, 1) : NULL;
	if (t) {
		int have = fstate_get(t, st, p->cfg.name, "server_name", out, cap);
		mdb_txn_abort(t);
		if (have > 0 && out[0]) return;
	}
	out[0] = 0;
	const char *h = strstr(p->cfg.endpoint, "://");
	h = h ? h + 3 : p->cfg.endpoint;
	size_t n = strcspn(h, "/?#");
	const char *at = memchr(h, '@', n);     /* no userinfo in a server name */
	if (at) { n -= (size_t)(at + 1 - h); h = at + 1; }
	snprintf(out, cap, "%.*s", (int)n, h);
}

/* X-Matrix over the request as sent: method GET, uri from the path on
 * (an endpoint's own path prefix included), no content. */
static void peer_sign(struct peer *p, const char *url)
{
	struct syncd *sy = p->sy;
	char dest[256];
	struct buf h;
	const char *uri = strstr(url, "://");
	uri = uri ? uri + 3 : url;
	uri += strcspn(uri, "/?");
	peer_destination(p, dest, sizeof dest);
	buf_init(&h);
	buf_adds(&h, "Authorization: ");
	if (xmatrix_sign(&sy->sk, sy->own, dest, "GET", uri, NULL, 0, &h) < 0)
		log_panic("X-Matrix signing failed");
	p->hdrs = curlev_header(p->hdrs, h.data);
	buf_free(&h);
}

int syncd_http_start(struct peer *p, const char *path, long long extra_timeout_ms)
{
	struct syncd *sy = p->sy;
	if (sy->publish) {            /* peer_start holds every peer: never reached */
		log_warnx("peer %s: no request in [node] mode = publish", p->cfg.name);
		return -1;
	}
	if (!p->easy && !(p->easy = curl_easy_init())) return -1;
	CURL *e = p->easy;
	curl_easy_reset(e);
	buf_reset(&p->body);
	p->too_large = 0;
	char url[1024];
	const char *ep = p->cfg.endpoint;
	size_t el = strlen(ep);
	while (el && ep[el - 1] == '/') el--;
	snprintf(url, sizeof url, "%.*s%s", (int)el, ep, path);
	curl_slist_free_all(p->hdrs);
	p->hdrs = curlev_header(NULL, "Accept: application/json");
	if (p->cfg.key[0]) {
		char h[300];
		snprintf(h, sizeof h, "Authorization: Bearer %s", p->cfg.key);
		p->hdrs = curlev_header(p->hdrs, h);
	}
	/* Signed as well (after the bearer: a server reading the first
	 * Authorization header still finds the key it expects). */
	peer_sign(p, url);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->hdrs);
	curl_easy_setopt(e, CURLOPT_PRIVATE, p);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
	p->errbuf[0] = 0;
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "fedpipe-syncd/" FP_VERSION);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)sy->connect_timeout);
	/* In a fleet no request outlives this node's lease on the peer: if
	 * fleetd stops renewing it (its node lost NATS, fleetd died), another
	 * node takes the peer over when it runs out, and by then ours is cut. */
	long long total = sy->timeout + extra_timeout_ms;
	p->lease_cap_ms = 0;
	if (sy->fleet) {
		long long now = now_ms(), left = fleet_lease_left(sy->d->st, p->cfg.name, now);
		p->lease_until = now + left;
		if (left - 200 < total) total = p->lease_cap_ms = left - 200 > 50 ? left - 200 : 50;
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)total);
	/* Slowloris: a peer trickling bytes below 1 B/s is cut off; a
	 * long-poll is allowed its quiet time first. */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((sy->low_speed_time + extra_timeout_ms) / 1000 + 1));
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sy->max_body);
	/* The certificate must chain to a trusted CA (the peer's ca file if
	 * set) and name the endpoint's host (libcurl's defaults, stated). */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (p->cfg.ca[0]) curl_easy_setopt(e, CURLOPT_CAINFO, p->cfg.ca);
	else resolve_tls_apply(e, cfg_str(&sy->d->cfg, "node", "ca_file"));   /* besides the system's */
	/* The bearer key goes to the endpoint's host and nowhere else: no
	 * redirect is followed (a 3xx is an http_status failure), and a plain
	 * http:// endpoint with a key is reached directly, never through an
	 * environment proxy that would read the header (https only tunnels). */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
	if (p->cfg.key[0] && !strncasecmp(p->cfg.endpoint, "http://", 7)) curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (curlev_add(sy->curl, e) < 0) return -1;
	log_debug("peer %s: GET %s", p->cfg.name, url);
	return 0;
}

static int syncd_option(struct daemon *d, int opt, const char *arg)
{
	switch (opt) {
	case 'O': syncd.once = 1; return 0;
	case 'P': syncd.once_peer = arg; return 0;
	default: return -1;
	}
}

/* [node] mode = publish: every configured peer is left alone, its health
 * record saying why (fedctl peers). */
static void publish_hold(struct syncd *sy)
{
	for (size_t i = 0; i < sy->npeers; i++)
		fstate_health(sy->d->st, sy->peers[i]->cfg.name, "paused",
		              "this node's [node] mode = publish: no peer is pulled", 0);
}

static void start_peers(evutil_socket_t fd, short what, void *arg)
{
	struct syncd *sy = arg;
	if (sy->publish) {
		log_notice("[node] mode = publish: pulling from no peer (%zu configured); "
		           "mode = sync or subscribe and SIGHUP to pull", sy->npeers);
		publish_hold(sy);
		return;
	}
	for (size_t i = 0; i < sy->npeers; i++) peer_start(sy->peers[i]);
}

/* [node] mode: sync | publish | subscribe (the table allows nothing else).
 * syncd pulls in sync and subscribe alike; publish pulls from no peer. */
static void read_mode(struct syncd *sy, const struct config *c)
{
	snprintf(sy->mode, sizeof sy->mode, "%s", cfg_str(c, "node", "mode"));
	sy->publish = !strcmp(sy->mode, "publish");
}

static void read_limits(struct syncd *sy, const struct config *c)
{
	sy->interval = cfg_ms(c, "syncd", "interval");
	sy->backoff_max = cfg_ms(c, "syncd", "backoff_max");
	sy->longpoll = cfg_ms(c, "syncd", "longpoll");
	sy->connect_timeout = cfg_ms(c, "syncd", "connect_timeout");
	sy->timeout = cfg_ms(c, "syncd", "timeout");
	sy->low_speed_time = cfg_ms(c, "syncd", "low_speed_time");
	sy->max_body = cfg_size(c, "syncd", "max_body");
	sy->inbox_high = cfg_int(c, "syncd", "inbox_high");
	sy->batch = (int)cfg_int(c, "syncd", "batch");
}

static struct peer *peer_new(struct syncd *sy, const struct peer_cfg *pc)
{
	struct peer *p = xcalloc(1, sizeof *p);
	sy->peers = xreallocarray(sy->peers, sy->npeers + 1, sizeof *sy->peers);
	sy->peers[sy->npeers++] = p;
	p->sy = sy;
	p->cfg = *pc;
	p->wait_ms = sy->interval;
	buf_init(&p->body);
	return p;
}

static void peer_free(struct peer *p)
{
	peer_stop(p);
	if (p->easy) curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->hdrs);
	if (p->timer) event_free(p->timer);
	buf_free(&p->body);
	free(p);
}

static int syncd_init(struct daemon *d)
{
	struct syncd *sy = &syncd;
	d->priv = sy;
	sy->d = d;
	const struct config *c = &d->cfg;
	read_limits(sy, c);
	if (sodium_init() < 0) { log_err("sodium_init failed"); return EXIT_TEMP; }
	/* Every request to a peer is signed (X-Matrix) with this key as
	 * [node] server_name; both names are restart-only, the key file is
	 * read again at a reload (reload_signing_key). */
	snprintf(sy->own, sizeof sy->own, "%s", cfg_str(c, "node", "server_name"));
	char err[256];
	if (signing_key_load(&sy->sk, cfg_str(c, "node", "signing_key"), err, sizeof err) < 0) {
		log_err("cannot load [node] signing_key (syncd signs its requests to peers): %s", err);
		return EXIT_CONFIG;
	}
	if (sy->once && !sy->once_peer) { log_err("--once needs --peer NAME"); return EXIT_CONFIG; }
	read_mode(sy, c);
	if (sy->once && sy->publish) {
		log_err("[node] mode = publish in %s: this node pulls from no peer, so --once is refused "
		        "(exit %d); pull with mode = sync or subscribe", c->path, EXIT_CONFIG);
		return EXIT_CONFIG;
	}
	if (store_node_id(d->st, sy->node_id)) { log_err("cannot read or make the node ID"); return EXIT_TEMP; }
	if (!(sy->curl = curlev_new(d->base, http_done, sy))) return EXIT_TEMP;   /* logged */
	for (size_t i = 0; i < c->npeers; i++) {
		const struct peer_cfg *pc = &c->peers[i];
		if (sy->once_peer && strcmp(pc->name, sy->once_peer)) continue;
		if (!pc->endpoint[0]) { log_err("[peer %s] has no endpoint", pc->name); return EXIT_CONFIG; }
		if (strcmp(pc->mode, "sync") && strcmp(pc->mode, "paused") && pc->mode[0]) {
			log_err("[peer %s] mode = '%s': must be sync or paused", pc->name, pc->mode);
			return EXIT_CONFIG;
		}
		peer_new(sy, pc);
	}
	if (sy->once_peer && !sy->npeers) { log_err("no [peer %s] in the configuration", sy->once_peer); return EXIT_CONFIG; }
#define C(f, n) sy->f = daemon_counter(d, n)
	C(c_pulls, "pulls"); C(c_events, "events_pulled"); C(c_skipped, "pulls_skipped");
	C(c_failures, "failures"); C(c_longpolls, "longpolls"); C(c_resent, "inbox_resent");
	C(c_bytes, "bytes_pulled"); C(c_key_conflicts, "key_conflicts"); C(c_identity_refused, "identity_refused");
	C(c_store_full, "store_full"); C(c_store_full_waits, "store_full_waits");
	C(c_fleet_not_holder, "fleet_not_holder"); C(c_peer_forbidden, "peer_forbidden");
#undef C
	sy->fleet = cfg_str(c, "fleet", "nats_url")[0] != 0;
	sy->g_active = daemon_gauge(d, "peers_syncing");
	if (!sy->once && !d->stdio) daemon_connect(d, "validated");   /* on_connect re-sends the inbox */
	/* Start after the loop runs, so readiness is not delayed by peers. */
	if (event_base_once(d->base, -1, EV_TIMEOUT, start_peers, sy, NULL) < 0) {
		log_err("cannot schedule the peers' start");
		return EXIT_TEMP;
	}
	log_info("syncd: %zu peer(s)%s, mode %s", sy->npeers, sy->once ? " (once)" : "", sy->mode);
	return 0;
}

static void syncd_on_connect(struct daemon *d, struct conn *c)
{
	/* validated (re)connected: what is still in the inbox goes again (its
	 * own rescan would find it too; this is the fast path). */
	if (!strcmp(conn_peer(c), "stage:validated") && !syncd.once) peer_resend_inbox(&syncd);
}

static void syncd_stdin_eof(struct daemon *d) { (void)d; /* syncd reads nothing */ }

static void syncd_fini(struct daemon *d)
{
	struct syncd *sy = d->priv;
	if (!sy) return;
	for (size_t i = 0; i < sy->npeers; i++) peer_free(sy->peers[i]);
	curlev_free(sy->curl);
	sy->curl = NULL;
	free(sy->peers);
	sodium_memzero(&sy->sk, sizeof sy->sk);
}

static void syncd_stats(struct daemon *d, struct buf *b)
{
	struct syncd *sy = d->priv;
	if (!sy) return;
	buf_printf(b, ",\"mode\":\"%s\"", sy->mode);
	buf_adds(b, ",\"peers\":{");
	for (size_t i = 0; i < sy->npeers; i++) {
		struct peer *p = sy->peers[i];
		static const char *const ph[] = { "idle", "identity", "keys", "pull", "longpoll", "stopped" };
		buf_printf(b, "%s\"%s\":{\"phase\":\"%s\",\"failures\":%d,\"pulled\":%llu}", i ? "," : "",
		           p->cfg.name, ph[p->phase], p->failures, (unsigned long long)p->pulled);
	}
	buf_addc(b, '}');
}

/* SIGHUP: the signing key file is read again (after `fedctl keygen
 * --rotate`): a good new key signs every request started from now on
 * (peer_sign runs per request); an unreadable or malformed file keeps the
 * old key, said in one line. The path is restart-only (daemon.c). */
static void reload_signing_key(struct syncd *sy)
{
	const char *path = cfg_str(&sy->d->cfg, "node", "signing_key");
	char err[320], was[sizeof sy->sk.key_id];
	snprintf(was, sizeof was, "%s", sy->sk.key_id);
	int r = signing_key_reload(&sy->sk, path, err, sizeof err);
	if (r < 0)
		log_warnx("reload: [node] signing_key not reloaded, still signing with %s: %s", was, err);
	else if (r > 0)
		log_notice("reload: [node] signing_key %s: now signing with %s (was %s)", path, sy->sk.key_id, was);
}

/* SIGHUP: limits are read anew; peers are matched by name: removed ones
 * are stopped and freed, added ones started, changed ones reconfigured
 * (paused <-> sync at once). Nothing points into either configuration:
 * each peer keeps its own copy of its [peer] section. */
static void syncd_reload(struct daemon *d, const struct config *old)
{
	struct syncd *sy = d->priv;
	if (!sy) return;
	reload_signing_key(sy);
	read_limits(sy, &d->cfg);
	if (sy->once) return;
	/* [node] mode first, on the peers as they are: leaving publish starts
	 * them, entering it stops them; the peer table's changes below then
	 * start nothing while in publish (peer_start holds). */
	char was[sizeof sy->mode];
	int was_publish = sy->publish;
	snprintf(was, sizeof was, "%s", sy->mode);
	read_mode(sy, &d->cfg);
	if (strcmp(was, sy->mode)) {
		log_notice("reload: [node] mode %s -> %s%s", was, sy->mode,
		           sy->publish ? ": pulling from no peer" : was_publish ? ": peers started" : "");
		if (sy->publish) {
			for (size_t i = 0; i < sy->npeers; i++) peer_stop(sy->peers[i]);
		} else if (was_publish) {
			for (size_t i = 0; i < sy->npeers; i++) {
				struct peer *p = sy->peers[i];
				p->failures = 0;
				p->last_kind[0] = 0;
				p->wait_ms = sy->interval;
				if (cfg_peer(&d->cfg, p->cfg.name)) peer_start(p);   /* a removed one is freed below */
			}
		}
	}
	size_t kept = 0, removed = 0, added = 0;
	for (size_t i = 0; i < sy->npeers; i++) {
		struct peer *p = sy->peers[i];
		const struct peer_cfg *nc = cfg_peer(&d->cfg, p->cfg.name);
		if (!nc || !nc->endpoint[0]) {
			log_notice("reload: peer %s %s: stopped", p->cfg.name, nc ? "has no endpoint" : "removed");
			peer_free(p);
			removed++;
			continue;
		}
		sy->peers[kept++] = p;
		peer_reload(p, nc);
	}
	sy->npeers = kept;
	for (size_t i = 0; i < d->cfg.npeers; i++) {
		const struct peer_cfg *pc = &d->cfg.peers[i];
		int have = 0;
		for (size_t j = 0; j < sy->npeers && !have; j++) have = !strcmp(sy->peers[j]->cfg.name, pc->name);
		if (have) continue;
		if (!pc->endpoint[0]) { log_warnx("reload: [peer %s] has no endpoint: not started", pc->name); continue; }
		log_notice("reload: peer %s added", pc->name);
		peer_start(peer_new(sy, pc));
		added++;
	}
	for (size_t i = 0; i < sy->npeers; i++) peer_reschedule(sy->peers[i]);
	if (sy->publish && (strcmp(was, sy->mode) || added)) publish_hold(sy);
	log_info("reload: %zu peer(s) (%zu added, %zu removed), mode %s", sy->npeers, added, removed, sy->mode);
}

static const struct option longopts[] = {
	{ "once", no_argument, NULL, 'O' },
	{ "peer", required_argument, NULL, 'P' },
	{ NULL, 0, NULL, 0 }
};

static const struct daemon_ops ops = {
	.name = "syncd",
	.summary = "pull events from peers into the inbox and on to validated",
	.usage = "      --once          pull once from --peer NAME and exit (0 ok, 1 failed;\n"
	         "                      100 refused: [node] mode = publish)\n"
	         "      --peer NAME     only this peer\n",
	.longopts = longopts,
	.option = syncd_option,
	.store = &store_for_daemon,
	.init = syncd_init,
	.on_connect = syncd_on_connect,
	.on_reload = syncd_reload,
	.on_stdin_eof = syncd_stdin_eof,
	.stats = syncd_stats,
	.fini = syncd_fini,
};

int main(int argc, char **argv) { return daemon_main(argc, argv, &ops); }
