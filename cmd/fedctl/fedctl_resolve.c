/* fedctl_resolve.c: `fedctl resolve NAME [--fresh]`: resolve a server name
 * the way fetchd does (core/resolve.h: literal, port, well-known, SRV,
 * deprecated SRV, A/AAAA on 8448), through the LMDB cache server_resolution
 * (a fresh row answers without a lookup; --fresh ignores it), and print
 * each step with its answer and expiry, then the targets. The result is
 * stored, as fetchd stores it. --probe then GETs /_matrix/federation/v1/version
 * from the targets as fetchd would (Host, SNI, certificate name, addresses). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>
#include "fedctl.h"
#include "fedctl_args.h"
#include "core/curlev.h"
#include "core/log.h"
#include "core/resolve.h"
#include "matrix/servername.h"
#include "store/resolution.h"

#define RESOLVE_USAGE "resolve NAME [--fresh] [--probe]"
#define PROBE_PATH "/_matrix/federation/v1/version"

struct rwait { struct event_base *base; struct resolution res; int done; };

/* --probe: GET /_matrix/federation/v1/version from the targets in order,
 * with the target applied as fetchd applies it (resolve_target_apply, the
 * extra CA), until one answers: proves the Host, SNI and certificate name. */
struct probe {
	struct event_base *base;
	struct curlev *ce;
	const struct resolution *res;
	const char *ca_file;
	int i;                       /* target being tried */
	struct resolve_lists lists;
	struct buf body;
	char url[RESOLVE_NAME_MAX + 64];
	char error[CURL_ERROR_SIZE + 64];
	long status;
	int done;
};

static size_t probe_write(char *p, size_t sz, size_t n, void *arg)
{
	struct probe *pr = arg;
	if (pr->body.len + sz * n > 65536) return 0;
	buf_add(&pr->body, p, sz * n);
	return sz * n;
}

static void probe_next(struct probe *pr);

static void probe_done(void *arg, CURL *e, void *priv, CURLcode cc, long status)
{
	struct probe *pr = arg;
	(void)priv;
	curl_easy_cleanup(e);
	resolve_lists_free(&pr->lists);
	pr->status = status;
	if (cc != CURLE_OK) {
		snprintf(pr->error, sizeof pr->error, "%s", curl_easy_strerror(cc));
		pr->i++;
		probe_next(pr);
		return;
	}
	pr->error[0] = 0;
	pr->done = 1;
	event_base_loopbreak(pr->base);
}

static void probe_next(struct probe *pr)
{
	if (pr->i >= pr->res->ntargets) { pr->i = pr->res->ntargets - 1; pr->done = 1; event_base_loopbreak(pr->base); return; }
	const struct resolve_target *t = &pr->res->targets[pr->i];
	CURL *e = curl_easy_init();
	resolve_target_url(t, pr->url, sizeof pr->url);
	snprintf(pr->url + strlen(pr->url), sizeof pr->url - strlen(pr->url), "%s", PROBE_PATH);
	buf_reset(&pr->body);
	curl_easy_setopt(e, CURLOPT_URL, pr->url);
	resolve_target_apply(e, t, &pr->lists);
	resolve_tls_apply(e, pr->ca_file);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, pr);
	if (curlev_add(pr->ce, e) < 0) {
		curl_easy_cleanup(e);
		snprintf(pr->error, sizeof pr->error, "curl refused the request");
		pr->done = 1;
		event_base_loopbreak(pr->base);
	}
}

static void probe_run(struct probe *pr)
{
	buf_init(&pr->body);
	pr->base = event_base_new();
	pr->ce = pr->base ? curlev_new(pr->base, probe_done, pr) : NULL;
	if (!pr->ce) { snprintf(pr->error, sizeof pr->error, "cannot start libcurl"); pr->done = 1; return; }
	probe_next(pr);
	if (!pr->done) event_base_dispatch(pr->base);
	curlev_free(pr->ce);
	event_base_free(pr->base);
}

static void on_done(void *arg, const struct resolution *res)
{
	struct rwait *w = arg;
	w->res = *res;
	w->done = 1;
	event_base_loopbreak(w->base);
}

static void on_timeout(evutil_socket_t fd, short kind, void *arg)
{
	(void)fd; (void)kind;
	event_base_loopbreak(arg);
}

static const char *when(long long ms, char *out, size_t cap)
{
	if (ms <= 0) { snprintf(out, cap, "-"); return out; }
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

static void print_json(const struct resolution *r, int cached, const struct probe *pr)
{
	static const char *const wk[] = { "none", "delegated", "failed" };
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"name\":"); put_str(&b, r->name);
	buf_printf(&b, ",\"cached\":%s,\"resolved_ms\":%lld,\"expires_ms\":%lld,\"error\":",
	           cached ? "true" : "false", r->resolved_ms, r->expires_ms);
	put_str(&b, r->error);
	buf_adds(&b, ",\"well_known\":{\"state\":"); put_str(&b, wk[r->wk]);
	buf_adds(&b, ",\"server\":"); put_str(&b, r->wk_server);
	buf_adds(&b, ",\"error\":"); put_str(&b, r->wk_error);
	buf_printf(&b, ",\"expires_ms\":%lld},\"steps\":[", r->wk_expires_ms);
	for (int i = 0; i < r->nsteps; i++) {
		const struct resolve_step *s = &r->steps[i];
		buf_adds(&b, i ? ",{\"step\":" : "{\"step\":"); put_str(&b, s->what);
		buf_adds(&b, ",\"query\":"); put_str(&b, s->query);
		buf_adds(&b, ",\"answer\":"); put_str(&b, s->answer);
		buf_printf(&b, ",\"expires_ms\":%lld,\"cached\":%s}", s->expires_ms, s->cached ? "true" : "false");
	}
	buf_adds(&b, "],\"targets\":[");
	for (int i = 0; i < r->ntargets; i++) {
		const struct resolve_target *t = &r->targets[i];
		char url[RESOLVE_NAME_MAX + 16];
		resolve_target_url(t, url, sizeof url);
		buf_adds(&b, i ? ",{\"url\":" : "{\"url\":"); put_str(&b, url);
		buf_adds(&b, ",\"host\":"); put_str(&b, t->host_header);
		buf_adds(&b, ",\"tls_name\":"); put_str(&b, t->tls_name);
		buf_adds(&b, ",\"connect_host\":"); put_str(&b, t->connect_host);
		buf_printf(&b, ",\"port\":%d,\"addresses\":[", t->port);
		for (int k = 0; k < t->naddrs; k++) { if (k) buf_addc(&b, ','); put_str(&b, t->addrs[k]); }
		buf_adds(&b, "]}");
	}
	buf_addc(&b, ']');
	if (pr) {
		buf_printf(&b, ",\"probe\":{\"target\":%d,\"url\":", pr->i);
		put_str(&b, pr->url);
		buf_printf(&b, ",\"status\":%ld,\"error\":", pr->status);
		put_str(&b, pr->error);
		buf_adds(&b, ",\"body\":");
		put_str(&b, pr->body.data ? pr->body.data : "");
		buf_addc(&b, '}');
	}
	buf_adds(&b, "}\n");
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

static void print_text(const struct resolution *r, int cached, const struct probe *pr)
{
	char a[32], e[32];
	printf("%s: %s (resolved %s), good until %s\n", r->name, cached ? "from the cache" : "looked up",
	       when(r->resolved_ms, a, sizeof a), when(r->expires_ms, e, sizeof e));
	for (int i = 0; i < r->nsteps; i++) {
		const struct resolve_step *s = &r->steps[i];
		printf("  %-14s %s\n  %14s -> %s%s%s%s\n", s->what, s->query, "", s->answer,
		       s->expires_ms ? " (until " : "", s->expires_ms ? when(s->expires_ms, e, sizeof e) : "",
		       s->expires_ms ? (s->cached ? ", cached)" : ")") : (s->cached ? " (cached)" : ""));
	}
	if (!r->ntargets) printf("no target: %s\n", r->error);
	for (int i = 0; i < r->ntargets; i++) {
		const struct resolve_target *t = &r->targets[i];
		char url[RESOLVE_NAME_MAX + 16];
		resolve_target_url(t, url, sizeof url);
		printf("target %d: %s  Host: %s  TLS name: %s  connect %s port %d [", i + 1, url,
		       t->host_header, t->tls_name, t->connect_host, t->port);
		for (int k = 0; k < t->naddrs; k++) printf("%s%s", k ? " " : "", t->addrs[k]);
		printf("]\n");
	}
	if (pr && pr->error[0]) printf("probe: %s: %s\n", pr->url, pr->error);
	else if (pr) printf("probe: %s: HTTP %ld %s\n", pr->url, pr->status, pr->body.data ? pr->body.data : "");
}

/* Print r (and probe it when asked); the exit code. */
static int show(struct fedctl *fc, const struct resolution *r, int cached, int probe)
{
	struct probe pr = { 0 };
	if (probe && r->ntargets) {
		pr.res = r;
		pr.ca_file = cfg_str(&fc->cfg, "node", "ca_file");
		probe_run(&pr);
	}
	if (fc->json) print_json(r, cached, probe && r->ntargets ? &pr : NULL);
	else print_text(r, cached, probe && r->ntargets ? &pr : NULL);
	buf_free(&pr.body);
	return !r->ntargets || (probe && (pr.error[0] || pr.status != 200));
}

static int cmd_resolve(struct fedctl *fc, int argc, char **argv)
{
	const char *name = pos_arg(argc, argv, 0, NULL);
	int fresh = has_flag(argc, argv, "--fresh"), probe = has_flag(argc, argv, "--probe");
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' && strcmp(argv[i], "--fresh") && strcmp(argv[i], "--probe")) name = NULL;
	if (!name || pos_arg(argc, argv, 1, NULL)) {
		fprintf(stderr, "usage: fedctl " RESOLVE_USAGE " [--json]\n");
		return 100;
	}
	if (!server_name_valid(name, strlen(name))) {
		fprintf(stderr, "fedctl resolve: '%s' is not a server name\n", name);
		return 100;
	}
	const struct server_cfg *sc = cfg_server(&fc->cfg, name);
	if (sc && !fc->json)
		printf("note: [server %s] is configured (endpoint %s): fetchd uses that, not this\n", name,
		       sc->endpoint[0] ? sc->endpoint : "(default)");
	struct store *st = fedctl_store(fc, 0);
	struct resolution prev;
	MDB_txn *t = store_begin(st, 1);
	int have = store_resolution_get(t, st, name, &prev) == 0;
	mdb_txn_abort(t);
	if (have && !fresh && prev.expires_ms > now_ms()) {
		return show(fc, &prev, 1, probe);
	}
	struct rwait w = { 0 };
	w.base = event_base_new();
	if (!w.base) { fprintf(stderr, "fedctl resolve: event_base_new failed\n"); return 1; }
	char err[300];
	struct resolver_opts o = {
		.dns_server = cfg_str(&fc->cfg, "node", "resolver"),
		.ca_file = cfg_str(&fc->cfg, "node", "ca_file"),
	};
	struct resolver *rs = resolver_new(w.base, &o, err, sizeof err);
	if (!rs) {
		fprintf(stderr, "fedctl resolve: %s\n", err);
		event_base_free(w.base);
		return 100;
	}
	resolve_start(rs, name, have && !fresh ? &prev : NULL, on_done, &w);
	struct event *to = evtimer_new(w.base, on_timeout, w.base);
	struct timeval tv = { 120, 0 };
	evtimer_add(to, &tv);
	event_base_dispatch(w.base);
	event_free(to);
	resolver_free(rs);
	event_base_free(w.base);
	if (!w.done) { fprintf(stderr, "fedctl resolve: %s: no answer within 120 s\n", name); return 1; }
	for (;;) {
		t = store_begin(st, 0);
		int rc = store_resolution_put(t, st, &w.res);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);
		if (!rc) break;
		if (!fedctl_write_failed(fc, rc, "caching the resolution")) break;
	}
	return show(fc, &w.res, 0, probe);
}
FEDCTL_COMMAND(resolve_cmd, "resolve", RESOLVE_USAGE,
               "resolve a server name as fetchd does (well-known, SRV, A/AAAA): each step, its answer and expiry (cached in LMDB); --probe: GET " PROBE_PATH " from the targets",
               cmd_resolve)
