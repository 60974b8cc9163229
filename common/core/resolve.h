/* resolve.h: Matrix server name resolution (server-server API, "Resolving
 * server names") on the daemon's libevent loop: c-ares for SRV and A/AAAA,
 * core/curlev for GET https://NAME/.well-known/matrix/server. Nothing here
 * blocks the loop and curl never resolves a name itself: the well-known
 * request and every target carry the addresses c-ares found
 * (CURLOPT_RESOLVE / CURLOPT_CONNECT_TO).
 *
 * The steps, for a name without a [server NAME] section (the caller's
 * business), exactly as the spec orders them:
 *   1 IP literal: that address, port 8448 if none; Host = the name.
 *   2 hostname:port: A/AAAA; Host = name:port, certificate for hostname.
 *   3 well-known (port 443, redirects to https followed, at most 5; body at
 *     most 50 KiB; {"m.server": "host[:port]"}), cached per Cache-Control
 *     max-age / no-store / Expires: 24 h by default, 48 h at most, any
 *     failure 1 h. The delegated name goes through 1, 2 and 4 (never a
 *     second well-known); Host and certificate name = the delegated name
 *     (with its port if it has one), never an SRV target.
 *   4 SRV _matrix-fed._tcp.host, then the deprecated _matrix._tcp.host
 *     (targets by priority, then weight, heaviest first; each target's
 *     A/AAAA looked up).
 *   5 A/AAAA on port 8448.
 * Expiry of a result: the earliest of its DNS answers' TTLs (at most 24 h)
 * and its well-known entry's; a result without targets (nothing found)
 * 1 minute, or the well-known entry's if earlier. The well-known entry has
 * its own expiry and is reused by the next resolution of the same name
 * while it lasts (pass the stale result as prev), so a DNS TTL of seconds
 * does not refetch the well-known.
 *
 * How fetchd uses it (the cache is LMDB server_resolution, store/resolution.h;
 * core knows nothing of LMDB):
 *   struct resolution r;
 *   if (store_resolution_get(t, st, name, &r) == 0 && r.expires_ms > now_ms())
 *       use r.targets (no lookup);
 *   else resolve_start(rs, name, found ? &r : NULL, done, arg);
 *   done(arg, res): store_resolution_put(...) in the next write txn, then
 *   for a transfer: resolve_target_url(&res->targets[i], base, cap) gives
 *   "https://HOST[:PORT]" to put the path after, resolve_target_apply(e,
 *   &res->targets[i], &lists) sets CURLOPT_CONNECT_TO and CURLOPT_RESOLVE (call it
 *   on every transfer, before curlev_add), resolve_tls_apply(e, ca_file)
 *   the extra CA. The address policy stays fetchd's open_cb: the addresses
 *   set here are the only ones curl connects to, and it checks each at
 *   connect time. With a proxy in use, CONNECT_TO applies to the proxy's
 *   CONNECT target (curl), and the proxy resolves.
 * Promises: done is called exactly once per resolve_start that returned a
 * request, never from inside resolve_start (always from the loop), unless
 * the request is cancelled first. Requests for a name already being looked
 * up wait for that lookup (one lookup per name at a time; their prev is
 * not used) and all get its result. */
#ifndef FP_RESOLVE_H
#define FP_RESOLVE_H
#include <stddef.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <event2/event.h>

#define RESOLVE_PORT_DEFAULT   8448
#define RESOLVE_MAX_TARGETS    8
#define RESOLVE_MAX_ADDRS      8
#define RESOLVE_MAX_STEPS      12
#define RESOLVE_NAME_MAX       262      /* a server name, NUL included */
#define RESOLVE_ADDR_MAX       46       /* INET6_ADDRSTRLEN */
/* well-known cache periods (ms) */
#define RESOLVE_WK_DEFAULT_MS  (24LL * 3600 * 1000)
#define RESOLVE_WK_MAX_MS      (48LL * 3600 * 1000)
#define RESOLVE_WK_ERROR_MS    (3600LL * 1000)
#define RESOLVE_DNS_MAX_MS     (24LL * 3600 * 1000)
#define RESOLVE_FAIL_MS        (60LL * 1000)
#define RESOLVE_WK_BODY_MAX    (50 * 1024)
#define RESOLVE_WK_REDIRECTS   5

/* One place to send requests for the name. */
struct resolve_target {
	char host_header[RESOLVE_NAME_MAX]; /* the Host header value and the URL authority */
	char tls_name[RESOLVE_NAME_MAX];    /* the name whose certificate is checked, sent
	                                       as SNI (the host part of host_header, IPv6
	                                       without brackets) */
	char connect_host[RESOLVE_NAME_MAX];/* where the TCP connection goes (an SRV target,
	                                       the host itself, or an IP literal) */
	int  port;                          /* and its port */
	int  naddrs;
	char addrs[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_MAX]; /* connect_host's addresses */
};

/* One step taken, for fedctl resolve and the logs. */
struct resolve_step {
	char what[16];          /* ip_literal | explicit_port | well_known | srv |
	                           srv_deprecated | address */
	char query[300];        /* the name or URL asked */
	char answer[512];       /* what came back (or the error) */
	long long expires_ms;   /* wall ms this answer is good until (0: not cached) */
	int  cached;            /* reused from the previous resolution */
};

enum resolve_wk {
	RESOLVE_WK_NONE = 0,    /* no well-known step (ip literal, name with port) */
	RESOLVE_WK_DELEGATED,   /* m.server found: wk_server */
	RESOLVE_WK_FAILED,      /* error / 404 / bad JSON: wk_error (cached 1 h) */
};

struct resolution {
	char name[RESOLVE_NAME_MAX];
	long long resolved_ms;  /* wall ms the lookups finished */
	long long expires_ms;   /* wall ms the result is good until */
	char error[256];        /* why there is no target ("" when ntargets > 0) */
	int  wk;                /* enum resolve_wk */
	char wk_server[RESOLVE_NAME_MAX];
	char wk_error[256];
	long long wk_expires_ms;
	int  ntargets;          /* in the order to try */
	struct resolve_target targets[RESOLVE_MAX_TARGETS];
	int  nsteps;
	struct resolve_step steps[RESOLVE_MAX_STEPS];
};

struct resolver;
struct resolve_req;
typedef void resolve_done_fn(void *arg, const struct resolution *res);

struct resolver_opts {
	const char *dns_server;   /* "HOST:PORT" ([node] resolver), NULL/"": the system's */
	const char *ca_file;      /* extra CA bundle ([node] ca_file), NULL/"": none */
	long long   wk_timeout_ms;/* the well-known request (0: 10 s) */
	long long   dns_timeout_ms;/* one DNS try (0: 2 s; 3 tries) */
	/* Address policy for the well-known connection (NULL: any): 1 to
	 * allow, 0 to refuse (the step then fails with "address_denied"). */
	int (*addr_allowed)(void *arg, const struct sockaddr *sa);
	void *addr_arg;
};

/* NULL with err if c-ares or curl cannot start, or dns_server is
 * malformed (a configuration error: exit 100). Opts are copied. */
struct resolver *resolver_new(struct event_base *base, const struct resolver_opts *o,
                              char *err, size_t errlen);
/* Cancels every request still running (no done calls). Not from a done. */
void resolver_free(struct resolver *rs);

/* Resolve name (a server name; an invalid one ends with an error).
 * prev: an earlier result for the same name (may be expired) whose
 * well-known entry is reused while it lasts; NULL: none. */
struct resolve_req *resolve_start(struct resolver *rs, const char *name,
                                  const struct resolution *prev,
                                  resolve_done_fn *done, void *arg);
/* Stop a request: no done call. The handle is valid until done is called
 * (and is freed right after it returns): never cancel from done or after. */
void resolve_cancel(struct resolve_req *q);
/* Requests running (stats). */
size_t resolver_pending(const struct resolver *rs);

/* "https://" + host_header into out. -1 if it does not fit. */
int  resolve_target_url(const struct resolve_target *t, char *out, size_t cap);
/* The curl_slists a target's transfer needs while it runs (curl does not
 * copy them): keep with the transfer, free after it. */
struct resolve_lists { struct curl_slist *connect_to, *resolve; };
void resolve_lists_free(struct resolve_lists *l);    /* zeroes it */
/* CURLOPT_CONNECT_TO (the URL's host and port -> connect_host:port) and,
 * unless connect_host is an IP literal, CURLOPT_RESOLVE (connect_host:port
 * -> addrs) on e, so curl connects to exactly these addresses, sends
 * host_header as Host, and checks the certificate for tls_name (sent as
 * SNI; none for an IP). Use with the URL from resolve_target_url. l is
 * freed first (pass the same one again to reuse it). 0, or -1 if the
 * target has no address. */
int  resolve_target_apply(CURL *e, const struct resolve_target *t, struct resolve_lists *l);
/* CURLOPT_CAINFO = ca_file and CURLOPT_CAPATH = /etc/ssl/certs, so the
 * extra bundle is trusted besides the system's; nothing when ca_file is
 * empty (curl's defaults: the system's). */
void resolve_tls_apply(CURL *e, const char *ca_file);

/* The well-known cache period from a response's headers (either may be
 * NULL): Cache-Control no-store / no-cache -> 0, max-age=N -> N s (first
 * one wins over Expires), else Expires (an HTTP date) minus now, else the
 * 24 h default; clamped to [0, 48 h]. In ms. */
long long resolve_wk_cache_ms(const char *cache_control, const char *expires, long long now_ms);
/* Parse a well-known body: 0 with the m.server value (a valid server name)
 * in out, or -1 with why in err. */
int  resolve_wk_parse(const char *body, size_t n, char *out, size_t cap, char *err, size_t errlen);

#endif
