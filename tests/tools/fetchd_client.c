/* fetchd_client.c: many concurrent callers of fetchd over its Unix socket,
 * for tests and benchmarks. N requests spread over C connections, at most W
 * outstanding; each reply is checked and counted, payloads compared.
 *   fetchd_client -s SOCK [-n N] [-c CONNS] [-w WINDOW] [-r REQ_JSON]
 *                 [-i IDS_FILE] [--proxied] [--cancel-after MS | --close-after MS]
 *                 [--timeout MS]
 * REQ_JSON may contain %ID%, replaced by the caller's ID (line i % lines of
 * IDS_FILE). Prints one summary line of key=value pairs:
 *   sent replies ok err_<code>... distinct (distinct ok payloads) median_ms
 *   p99_ms elapsed_ms rate (replies/s). Exit 0 if every request was answered. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include "core/frame.h"
#include "core/daemon.h"
#include "core/fetchreq.h"
#include "core/log.h"
#include "core/xalloc.h"

struct cconn { struct bufferevent *bev; int idx; };

static struct event_base *base;
static struct cconn *conns; static int nconns;
static long n_total, n_sent, n_replies, n_ok, window = 0, outstanding;
static char **ids; static long nids;
static const char *tmpl = "{\"op\":\"event\",\"event_id\":\"%ID%\"}";
static const char *sock_path;
static uint16_t flags;
static long long *t_sent, *lat;
#define HSET (1u << 18)
static uint64_t *hashes; static long nhash;   /* open-addressing set of payload hashes */
static struct { char code[32]; long n; } errs[16]; static int nerrs;
static long cancel_after = -1, close_after = -1;
static long long t_start;

/* Payload fingerprint for counting distinct answers ("distinct=" in the
 * summary; never stored or compared outside this process). Not hmap's
 * FNV-1a: eight bytes a step, seeded with the length (byte-wise FNV cost
 * the bench caller ~1.5 us per 1.4 KiB reply); the constants are only
 * mixing constants. The set of fingerprints is a fixed open-addressing
 * table of bare 64-bit values: no entry to link into an hmap. */
static uint64_t fingerprint(const char *p, size_t n)
{
	uint64_t h = 0x243F6A8885A308D3ULL ^ n, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ULL; }
	return h ^ (h >> 32);
}

static void send_one(void)
{
	long i = n_sent++;
	struct cconn *c = &conns[i % nconns];
	struct buf b;
	const char *id = nids ? ids[i % nids] : "";
	const char *p = strstr(tmpl, "%ID%");
	buf_init(&b);
	if (p) { buf_add(&b, tmpl, (size_t)(p - tmpl)); buf_adds(&b, id); buf_adds(&b, p + 4); }
	else buf_adds(&b, tmpl);
	unsigned char h[FRAME_HDR_LEN];
	frame_hdr_encode(h, (uint32_t)b.len, FT_FETCH_REQ, flags, (uint64_t)i + 1);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, h, sizeof h);
	evbuffer_add(out, b.data, b.len);
	buf_free(&b);
	t_sent[i] = mono_ms();
	outstanding++;
}

static void pump(void)
{
	while (n_sent < n_total && (window <= 0 || outstanding < window)) send_one();
}

static void note_err(const char *code)
{
	for (int i = 0; i < nerrs; i++)
		if (!strcmp(errs[i].code, code)) { errs[i].n++; return; }
	if (nerrs < 16) { snprintf(errs[nerrs].code, sizeof errs[nerrs].code, "%s", code); errs[nerrs++].n = 1; }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	(void)arg;
	/* libevent hands over 4 KiB per callback: take the whole burst, as the
	 * daemons do, so a turn of replies is one read, not one per 3 replies */
	evbuffer_unfreeze(in, 0);
	daemon_read_burst(in, bufferevent_getfd(bev), 1u << 20);
	evbuffer_freeze(in, 0);
	for (;;) {
		unsigned char h[FRAME_HDR_LEN];
		struct frame f;
		const char *why;
		if (evbuffer_copyout(in, h, sizeof h) < (ev_ssize_t)sizeof h) return;
		if (frame_hdr_decode(h, 256u << 20, &f, &why) < 0) {
			fprintf(stderr, "fetchd_client: bad frame: %s\n", why);
			exit(2);
		}
		if (evbuffer_get_length(in) < sizeof h + f.len) return;
		evbuffer_drain(in, sizeof h);
		f.payload = xmalloc(f.len + 1);
		evbuffer_remove(in, f.payload, f.len);
		f.payload[f.len] = 0;
		if (f.type == FT_FETCH_RESULT && f.id >= 1 && f.id <= (uint64_t)n_total) {
			struct fetch_result r;
			long i = (long)f.id - 1;
			lat[n_replies++] = mono_ms() - t_sent[i];
			outstanding--;
			if (fetchres_parse(&f, &r) == 0) {
				if (r.ok) {
					n_ok++;
					uint64_t hv = fingerprint(f.payload, f.len) | 1;   /* 0 marks a free slot */
					size_t k = hv & (HSET - 1);
					while (hashes[k] && hashes[k] != hv) k = (k + 1) & (HSET - 1);
					if (!hashes[k] && nhash < HSET / 2) { hashes[k] = hv; nhash++; }
				} else {
					note_err(r.error);
				}
				fetchres_free(&r);
			} else {
				note_err("malformed");
			}
		}
		frame_free(&f);
		if (n_replies == n_total) event_base_loopexit(base, NULL);
		else pump();
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev; (void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		fprintf(stderr, "fetchd_client: connection lost\n");
		event_base_loopexit(base, NULL);
	}
}

static void cancel_cb(evutil_socket_t s, short ev, void *arg)
{
	(void)s; (void)ev; (void)arg;
	if (close_after >= 0) {
		for (int i = 0; i < nconns; i++) bufferevent_free(conns[i].bev);
		nconns = 0;
		event_base_loopexit(base, NULL);
		return;
	}
	for (long i = 0; i < n_sent; i++) {
		unsigned char h[FRAME_HDR_LEN];
		frame_hdr_encode(h, 0, FT_CANCEL, 0, (uint64_t)i + 1);
		bufferevent_write(conns[i % nconns].bev, h, sizeof h);
	}
}

static void timeout_cb(evutil_socket_t s, short ev, void *arg)
{
	(void)s; (void)ev; (void)arg;
	fprintf(stderr, "fetchd_client: timed out with %ld of %ld replies\n", n_replies, n_total);
	event_base_loopexit(base, NULL);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "proxied", no_argument, NULL, 'P' }, { "cancel-after", required_argument, NULL, 'X' },
		{ "close-after", required_argument, NULL, 'Y' }, { "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 } };
	long timeout_ms = 120000;
	int opt;
	n_total = 1;
	nconns = 0;
	while ((opt = getopt_long(argc, argv, "s:n:c:w:r:i:", lo, NULL)) != -1) {
		switch (opt) {
		case 's': sock_path = optarg; break;
		case 'n': n_total = atol(optarg); break;
		case 'c': nconns = atoi(optarg); break;
		case 'w': window = atol(optarg); break;
		case 'r': tmpl = optarg; break;
		case 'i': {
			FILE *f = fopen(optarg, "r");
			char line[1024];
			if (!f) { perror(optarg); return 2; }
			while (fgets(line, sizeof line, f)) {
				line[strcspn(line, "\r\n")] = 0;
				if (!line[0]) continue;
				ids = xreallocarray(ids, (size_t)nids + 1, sizeof *ids);
				ids[nids++] = xstrdup(line);
			}
			fclose(f);
			break;
		}
		case 'P': flags |= FF_PROXIED; break;
		case 'X': cancel_after = atol(optarg); break;
		case 'Y': close_after = atol(optarg); break;
		case 'T': timeout_ms = atol(optarg); break;
		default:
			fprintf(stderr, "usage: fetchd_client -s SOCK [-n N] [-c CONNS] [-w WINDOW] [-r JSON] "
			        "[-i IDS] [--proxied] [--cancel-after MS|--close-after MS] [--timeout MS]\n");
			return 2;
		}
	}
	if (!sock_path || n_total < 1) { fprintf(stderr, "fetchd_client: -s SOCK needed\n"); return 2; }
	if (nconns <= 0) nconns = n_total > 1000 ? 1000 : (int)n_total;
	base = event_base_new();
	conns = xcalloc((size_t)nconns, sizeof *conns);
	t_sent = xcalloc((size_t)n_total, sizeof *t_sent);
	lat = xcalloc((size_t)n_total, sizeof *lat);
	hashes = xcalloc(HSET, sizeof *hashes);
	for (int i = 0; i < nconns; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
			perror(sock_path);
			return 2;
		}
		evutil_make_socket_nonblocking(fd);
		conns[i].bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(conns[i].bev, read_cb, NULL, event_cb, &conns[i]);
		bufferevent_enable(conns[i].bev, EV_READ | EV_WRITE);
	}
	t_start = mono_ms();
	pump();
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	event_base_once(base, -1, EV_TIMEOUT, timeout_cb, NULL, &tv);
	long ca = close_after >= 0 ? close_after : cancel_after;
	if (ca >= 0) {
		struct timeval cv = { ca / 1000, (ca % 1000) * 1000 };
		event_base_once(base, -1, EV_TIMEOUT, cancel_cb, NULL, &cv);
	}
	event_base_dispatch(base);
	long long el = mono_ms() - t_start;
	qsort(lat, (size_t)n_replies, sizeof *lat, cmp_ll);
	printf("sent=%ld replies=%ld ok=%ld distinct=%ld", n_sent, n_replies, n_ok, nhash);
	for (int i = 0; i < nerrs; i++) printf(" err_%s=%ld", errs[i].code, errs[i].n);
	printf(" median_ms=%lld p99_ms=%lld elapsed_ms=%lld rate=%.0f\n",
	       n_replies ? lat[n_replies / 2] : -1, n_replies ? lat[(n_replies * 99) / 100] : -1,
	       el, el > 0 ? n_replies * 1000.0 / el : 0.0);
	for (int i = 0; i < nconns; i++) bufferevent_free(conns[i].bev);
	event_base_free(base);
	return close_after >= 0 ? 0 : n_replies == n_total ? 0 : 1;
}
