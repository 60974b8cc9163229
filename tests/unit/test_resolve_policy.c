/* test_resolve_policy.c: the resolver on a real libevent loop, without a
 * DNS server (c-ares answers "localhost" from /etc/hosts): the address
 * policy hook (resolver_opts.addr_allowed) is asked for every address the
 * well-known connection would use, and a refusal fails that step with
 * "address_denied" (cached 1 h) before any connection; done is always
 * called from the loop, never from inside resolve_start; a cancelled
 * request is never reported; an invalid name is an error, not a crash. */
#include "../lib/tap.h"
#include "core/resolve.h"
#include "core/log.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static int asked, asked_loopback, allow;
static int done_calls, in_start, want = 1;
static struct resolution last;
static struct event_base *base;

static int policy(void *arg, const struct sockaddr *sa)
{
	(void)arg;
	asked++;
	if (sa->sa_family == AF_INET &&
	    ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24 == 127)
		asked_loopback++;
	return allow;
}

static void done(void *arg, const struct resolution *r)
{
	(void)arg;
	TAP_OK(!in_start, "done for %s called from the loop, not from resolve_start", r->name);
	done_calls++;
	last = *r;
	if (arg) (*(int *)arg)++;
	if (done_calls >= want) event_base_loopbreak(base);
}

static void run(struct resolver *rs, const char *name)
{
	done_calls = 0;
	in_start = 1;
	resolve_start(rs, name, NULL, done, NULL);
	in_start = 0;
	event_base_dispatch(base);
}

int main(void)
{
	log_init("test_resolve_policy", 0);
	base = event_base_new();
	char err[200];
	/* a DNS server nobody listens on: only /etc/hosts answers */
	struct resolver_opts o = { .dns_server = "127.0.0.1:9", .addr_allowed = policy,
	                           .dns_timeout_ms = 200, .wk_timeout_ms = 3000 };
	struct resolver *rs = resolver_new(base, &o, err, sizeof err);
	TAP_OK(rs != NULL, "resolver on the loop (%s)", rs ? "ok" : err);
	struct resolver_opts bad = { .dns_server = "not a server" };
	TAP_OK(resolver_new(base, &bad, err, sizeof err) == NULL && strstr(err, "HOST:PORT"),
	       "a malformed [node] resolver is refused: %s", err);

	allow = 0;
	run(rs, "localhost");
	TAP_OK(done_calls == 1, "localhost resolved once");
	TAP_OK(asked > 0 && asked == asked_loopback, "the policy was asked for the well-known's address (%d, loopback %d)",
	       asked, asked_loopback);
	TAP_OK(last.wk == RESOLVE_WK_FAILED && !strcmp(last.wk_error, "address_denied"),
	       "refused address: the well-known step fails with address_denied (%s)", last.wk_error);
	TAP_OK(last.wk_expires_ms - last.resolved_ms > 3590 * 1000LL &&
	       last.wk_expires_ms - last.resolved_ms <= 3600 * 1000LL, "... cached 1 h");
	TAP_OK(last.ntargets == 1 && !strcmp(last.targets[0].addrs[0], "127.0.0.1") &&
	       last.targets[0].port == 8448 && !strcmp(last.targets[0].host_header, "localhost"),
	       "then A on 8448 (the target's policy is the caller's, at connect time)");

	allow = 1;
	asked = 0;
	run(rs, "localhost");
	TAP_OK(asked > 0 && last.wk == RESOLVE_WK_FAILED && strcmp(last.wk_error, "address_denied"),
	       "allowed: a connection is attempted (%s)", last.wk_error);

	run(rs, "not a name!");
	TAP_OK(done_calls == 1 && last.ntargets == 0 && !strcmp(last.error, "not a server name"),
	       "an invalid name: an error from the loop (%s)", last.error);

	run(rs, "[::1]");
	TAP_OK(last.ntargets == 1 && !strcmp(last.targets[0].host_header, "[::1]") &&
	       !strcmp(last.targets[0].tls_name, "::1") && last.targets[0].port == 8448,
	       "IPv6 literal: Host [::1], TLS name ::1, port 8448");

	done_calls = 0;
	struct resolve_req *q = resolve_start(rs, "localhost", NULL, done, NULL);
	resolve_cancel(q);
	struct timeval tv = { 0, 300000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	TAP_OK(done_calls == 0 && resolver_pending(rs) == 0, "a cancelled request is never reported, and freed");

	/* one lookup per name: three requests, one well-known connection */
	int a = 0, b = 0, c = 0;
	allow = 0; asked = 0; done_calls = 0; want = 2;
	resolve_start(rs, "localhost", NULL, done, &a);
	struct resolve_req *qb = resolve_start(rs, "localhost", NULL, done, &b);
	resolve_start(rs, "localhost", NULL, done, &c);
	resolve_cancel(qb);
	event_base_dispatch(base);
	TAP_OK(asked == 1 && a == 1 && b == 0 && c == 1 && resolver_pending(rs) == 0,
	       "three requests for one name: one lookup (policy asked %d), the cancelled one untold, all freed", asked);
	/* the first caller cancels: the lookup goes on for the other */
	a = b = 0; asked = 0; done_calls = 0; want = 1;
	struct resolve_req *qa = resolve_start(rs, "localhost", NULL, done, &a);
	resolve_start(rs, "localhost", NULL, done, &b);
	resolve_cancel(qa);
	event_base_dispatch(base);
	TAP_OK(a == 0 && b == 1 && asked == 1 && resolver_pending(rs) == 0,
	       "the lead cancelled: its follower still gets the result");

	resolve_start(rs, "localhost", NULL, done, NULL);
	resolve_start(rs, "localhost", NULL, done, NULL);
	TAP_OK(resolver_pending(rs) == 2, "two requests running");
	resolver_free(rs);
	TAP_OK(1, "resolver_free with a request running");
	event_base_free(base);
	return tap_done();
}
