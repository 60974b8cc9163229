/* test_resolve_cache.c: the well-known cache period (core/resolve.h:
 * resolve_wk_cache_ms: Cache-Control no-store / max-age, Expires in its
 * three HTTP date forms, 24 h default, clamped to [0, 48 h]), the
 * well-known body parser (resolve_wk_parse), the target URL, and the
 * server_resolution record round trip (store/resolution.h). */
#include "../lib/tap.h"
#include "core/resolve.h"
#include "store/resolution.h"
#include <string.h>

#define H   (3600LL * 1000)
#define NOW 1700000000000LL       /* Tue, 14 Nov 2023 22:13:20 GMT */

static void cache(const char *cc, const char *exp, long long want)
{
	long long got = resolve_wk_cache_ms(cc, exp, NOW);
	TAP_OK(got == want, "Cache-Control %s, Expires %s -> %lld ms (got %lld)",
	       cc ? cc : "(none)", exp ? exp : "(none)", want, got);
}

static void wk(const char *body, const char *want)
{
	char out[RESOLVE_NAME_MAX] = "", err[160] = "";
	int rc = resolve_wk_parse(body, strlen(body), out, sizeof out, err, sizeof err);
	if (want) TAP_OK(rc == 0 && !strcmp(out, want), "well-known %s -> %s (got %s%s)", body, want, out, err);
	else TAP_OK(rc < 0 && err[0], "well-known %.40s refused (%s)", body, err);
}

int main(void)
{
	cache(NULL, NULL, 24 * H);
	cache("", NULL, 24 * H);
	cache("max-age=3600", NULL, H);
	cache("public, max-age=60", NULL, 60000);
	cache("MAX-AGE=5", NULL, 5000);
	cache("max-age=\"7\"", NULL, 7000);
	cache("max-age=0", NULL, 0);
	cache("no-store", NULL, 0);
	cache("max-age=600, no-store", NULL, 0);
	cache("no-store, max-age=600", NULL, 0);
	cache("no-cache", NULL, 24 * H);             /* as Synapse: only no-store means 0 */
	cache("s-maxage=5", NULL, 24 * H);
	cache("max-age=999999", NULL, 48 * H);       /* clamped */
	cache("max-age=99999999999999999999999", NULL, 48 * H);
	cache("max-age=abc", NULL, 24 * H);
	cache("max-age=", NULL, 24 * H);
	cache(NULL, "Tue, 14 Nov 2023 23:13:20 GMT", H);
	cache(NULL, "Tuesday, 14-Nov-23 23:13:20 GMT", H);
	cache(NULL, "Tue Nov 14 23:13:20 2023", H);
	cache(NULL, "Tue, 14 Nov 2023 21:13:20 GMT", 0);   /* in the past */
	cache(NULL, "0", 0);                               /* invalid: already expired */
	cache(NULL, "Tue, 21 Nov 2023 22:13:20 GMT", 48 * H);
	cache("max-age=10", "Tue, 14 Nov 2023 23:13:20 GMT", 10000);   /* max-age wins */
	cache("public", "Tue, 14 Nov 2023 23:13:20 GMT", H);

	wk("{\"m.server\":\"example.org\"}", "example.org");
	wk("{ \"m.server\" : \"example.org:443\" , \"other\": [1, {}] }", "example.org:443");
	wk("{\"m.server\":\"[::1]:8448\"}", "[::1]:8448");
	wk("{\"m.server\":\"1.2.3.4\"}", "1.2.3.4");
	wk("", NULL);
	wk("{\"m.server\": example.org}", NULL);
	wk("[\"m.server\"]", NULL);
	wk("{}", NULL);
	wk("{\"m.server\":8448}", NULL);
	wk("{\"m.server\":\"\"}", NULL);
	wk("{\"m.server\":\"evil.org/path\"}", NULL);
	wk("{\"m.server\":\"evil.org:0\"}", NULL);
	wk("{\"m.server\":\"a.org\\u0000b.org\"}", NULL);
	wk("{\"m.server\":\"a.org\",\"m.server\":\"b.org\"}", NULL);   /* duplicate key */

	struct resolve_target t = { .host_header = "example.org:8448" };
	char url[300];
	TAP_OK(resolve_target_url(&t, url, sizeof url) == 0 && !strcmp(url, "https://example.org:8448"),
	       "target URL is https:// + Host (%s)", url);

	struct resolution r, back;
	memset(&r, 0, sizeof r);
	snprintf(r.name, sizeof r.name, "example.org");
	r.resolved_ms = NOW; r.expires_ms = NOW + 300000;
	r.wk = RESOLVE_WK_DELEGATED; r.wk_expires_ms = NOW + 24 * H;
	snprintf(r.wk_server, sizeof r.wk_server, "deleg.example.org");
	r.ntargets = 2;
	for (int i = 0; i < 2; i++) {
		struct resolve_target *x = &r.targets[i];
		snprintf(x->host_header, sizeof x->host_header, "deleg.example.org");
		snprintf(x->tls_name, sizeof x->tls_name, "deleg.example.org");
		snprintf(x->connect_host, sizeof x->connect_host, "t%d.example.net", i);
		x->port = 8448 + i;
		x->naddrs = 2;
		snprintf(x->addrs[0], RESOLVE_ADDR_MAX, "192.0.2.%d", i + 1);
		snprintf(x->addrs[1], RESOLVE_ADDR_MAX, "2001:db8::%d", i + 1);
	}
	r.nsteps = 1;
	snprintf(r.steps[0].what, sizeof r.steps[0].what, "well_known");
	snprintf(r.steps[0].query, sizeof r.steps[0].query, "https://example.org/.well-known/matrix/server");
	snprintf(r.steps[0].answer, sizeof r.steps[0].answer, "m.server \"quoted\"\n");
	r.steps[0].expires_ms = r.wk_expires_ms;
	r.steps[0].cached = 1;
	struct buf b;
	buf_init(&b);
	store_resolution_encode(&b, &r);
	TAP_OK(store_resolution_decode(b.data, b.len, &back) == 0 && !memcmp(&r, &back, sizeof r),
	       "server_resolution record round trip (%zu bytes)", b.len);
	TAP_OK(store_resolution_decode("[1]", 3, &back) < 0 && back.name[0] == 0,
	       "a record that is not an object is refused");
	buf_free(&b);
	return tap_done();
}
