/* fedpeer.c: a scriptable federation peer for tests and benchmarks (evhttp).
 * Behaviour per path is data: a JSON rules file
 *   {"rules":[{"path":"/_matrix/federation/v1/event/","match":"prefix"|"exact",
 *              "mode":"events"|"static"|"garbage"|"wrong"|"reset"|"hang",
 *              "status":500,"body":"...","file":"PATH","delay_ms":N,"times":N,
 *              "location":"URL" (sent as a Location header: redirects)}]}
 * (first matching rule wins; "times" limits a rule to its first N hits;
 * SIGHUP reloads the file). Without a matching rule, /event/{id} is served
 * from the loaded events (-e JSONL of signed PDUs), /_matrix/key/v2/server
 * from the key (-k), anything else is 404. It counts what it receives
 * (GET /_peer/stats) and logs one line per request and one when it answers,
 * or when the client went away first ("cancelled").
 * Also: fedpeer --make-events N -k KEY -s SERVER --room ROOM -o FILE [--ids F]
 * writes N signed m.room.message PDUs (one canonical PDU per line). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include "matrix/json.h"
#include "matrix/pdu.h"
#include "core/hmap.h"
#include "core/xalloc.h"
#include "matrix/keys.h"
#include "core/log.h"

enum mode { M_EVENTS, M_STATIC, M_GARBAGE, M_WRONG, M_RESET, M_HANG };

struct rule {
	char  path[512];
	int   prefix;
	int   mode;
	int   status;
	char *body; size_t body_len;
	char  location[512];
	long  delay_ms;
	long  times;          /* -1: unlimited */
	long  hits;
};

struct pending {
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	unsigned long id;
	char   path[512];
	struct rule r;          /* copy: the rule may be reloaded meanwhile */
	char  *rbody;           /* owned copy of r.body */
	struct event *delay, *poll;
	int    hanging;
};

struct ev { struct hmap_node hn; char id[PDU_EVENT_ID_MAX]; char *pdu; size_t len; struct ev *lnext; };

static struct event_base *base;
static struct rule *rules; static int nrules;
static const char *rules_path;
static struct hmap evmap; static size_t nevents;     /* struct ev by event ID */
static struct ev *first_ev, *last_ev;
static char server_name[256] = "peer.test";
static char *keydoc; static size_t keydoc_len;
static unsigned long n_req, n_answered, n_cancelled, n_reset, n_hung;
static unsigned long n_inflight, n_inflight_max;   /* requests not yet ended */
static int rv = 10;

static struct ev *ev_find_h(const char *id, uint64_t h)
{
	HMAP_FOR_HASH(&evmap, h, n) {
		struct ev *e = HMAP_ENTRY(n, struct ev, hn);
		if (strcmp(e->id, id) == 0) return e;
	}
	return NULL;
}

static struct ev *ev_find(const char *id)
{
	return ev_find_h(id, hmap_hash_str(id));
}

static int load_events(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	struct json_doc d = { 0 };
	if (!f) { fprintf(stderr, "fedpeer: %s: %s\n", path, strerror(errno)); return -1; }
	while ((n = getline(&line, &cap, f)) > 0) {
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
		if (!n) continue;
		struct ev *e = xcalloc(1, sizeof *e);
		if (json_parse(&d, line, (size_t)n, 64) < 0 || pdu_event_id(&d, 0, rv, e->id) < 0) {
			fprintf(stderr, "fedpeer: %s: bad PDU line skipped\n", path);
			free(e);
			continue;
		}
		e->pdu = xmemdup(line, (size_t)n);
		e->len = (size_t)n;
		uint64_t h = hmap_hash_str(e->id);
		struct ev *dup = ev_find_h(e->id, h);
		if (dup) hmap_remove(&evmap, &dup->hn);    /* a repeated ID: the last line answers */
		hmap_insert(&evmap, &e->hn, h);
		if (!first_ev) first_ev = e; else last_ev->lnext = e;
		last_ev = e;
		nevents++;
	}
	free(line);
	json_doc_free(&d);
	fclose(f);
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	struct buf b;
	char tmp[65536];
	size_t n;
	buf_init(&b);
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(&b, tmp, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

static void rules_free(void)
{
	for (int i = 0; i < nrules; i++) free(rules[i].body);
	free(rules);
	rules = NULL;
	nrules = 0;
}

static int load_rules(const char *path)
{
	size_t len;
	char *txt = slurp(path, &len);
	struct json_doc d = { 0 };
	int rc = -1;
	if (!txt) { fprintf(stderr, "fedpeer: %s: %s\n", path, strerror(errno)); return -1; }
	if (json_parse(&d, txt, len, 16) < 0) {
		fprintf(stderr, "fedpeer: %s: bad JSON (%s at %u)\n", path, json_err_str(d.err), d.err_off);
		goto out;
	}
	int arr = json_obj_get(&d, 0, "rules");
	if (arr < 0 || d.tok[arr].type != JSON_ARRAY) { fprintf(stderr, "fedpeer: no rules array\n"); goto out; }
	rules_free();
	rules = xcalloc((size_t)d.tok[arr].size + 1, sizeof *rules);
	for (int e = json_first(&d, arr); e >= 0; e = json_next_elem(&d, arr, e)) {
		struct rule *r = &rules[nrules];
		char tmp[4096];
		int t;
		memset(r, 0, sizeof *r);
		r->status = 200;
		r->times = -1;
		r->mode = M_EVENTS;
		r->prefix = 1;
		if ((t = json_obj_get(&d, e, "path")) >= 0) json_str_copy(&d, t, r->path, sizeof r->path);
		if ((t = json_obj_get(&d, e, "match")) >= 0) r->prefix = !json_str_eq(&d, t, "exact");
		if ((t = json_obj_get(&d, e, "status")) >= 0) { r->status = (int)d.tok[t].ival; r->mode = M_STATIC; }
		if ((t = json_obj_get(&d, e, "location")) >= 0) json_str_copy(&d, t, r->location, sizeof r->location);
		if ((t = json_obj_get(&d, e, "delay_ms")) >= 0) r->delay_ms = (long)d.tok[t].ival;
		if ((t = json_obj_get(&d, e, "times")) >= 0) r->times = (long)d.tok[t].ival;
		if ((t = json_obj_get(&d, e, "body")) >= 0) {
			size_t n = json_str_len(&d, t);
			r->body = xmalloc(n + 1);
			json_str_copy(&d, t, r->body, n + 1);
			r->body_len = n;
			r->mode = M_STATIC;
		}
		if ((t = json_obj_get(&d, e, "file")) >= 0) {
			json_str_copy(&d, t, tmp, sizeof tmp);
			free(r->body);
			if (!(r->body = slurp(tmp, &r->body_len))) {
				fprintf(stderr, "fedpeer: rule file %s: %s\n", tmp, strerror(errno));
				goto out;
			}
			r->mode = M_STATIC;
		}
		if ((t = json_obj_get(&d, e, "mode")) >= 0) {
			static const char *const names[] = { "events", "static", "garbage", "wrong", "reset", "hang" };
			for (int m = 0; m < 6; m++) if (json_str_eq(&d, t, names[m])) r->mode = m;
		}
		nrules++;
	}
	rc = 0;
	fprintf(stderr, "fedpeer[%s]: %d rules loaded\n", server_name, nrules);
out:
	json_doc_free(&d);
	free(txt);
	return rc;
}

static const struct rule *match_rule(const char *path)
{
	for (int i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		int m = r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0;
		if (!m || r->times == 0) continue;
		if (r->times > 0) r->times--;
		r->hits++;
		return r;
	}
	return NULL;
}

static void send_json(struct evhttp_request *req, int status, const char *body, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, body, n);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Status", b);
	evbuffer_free(b);
}

static void pending_free(struct pending *p)
{
	n_inflight--;
	if (p->delay) event_free(p->delay);
	if (p->poll) event_free(p->poll);
	free(p->rbody);
	free(p);
}

static void closecb(struct evhttp_connection *evcon, void *arg)
{
	struct pending *p = arg;
	if (!p) return;
	n_cancelled++;
	fprintf(stderr, "fedpeer[%s]: cancelled req=%lu %s (client went away)\n", server_name, p->id, p->path);
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	pending_free(p);
}

static void respond(struct pending *p)
{
	struct evhttp_request *req = p->req;
	const char *path = p->path;
	int status = 200;
	struct buf b;
	buf_init(&b);
	evhttp_connection_set_closecb(p->evcon, NULL, NULL);
	switch (p->r.mode) {
	case M_RESET: {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);
		struct linger lg = { 1, 0 };
		int fd = bev ? bufferevent_getfd(bev) : -1;
		if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		n_reset++;
		fprintf(stderr, "fedpeer[%s]: reset req=%lu %s\n", server_name, p->id, path);
		evhttp_connection_free(p->evcon);
		pending_free(p);
		buf_free(&b);
		return;
	}
	case M_STATIC:
		status = p->r.status;
		if (p->r.location[0])
			evhttp_add_header(evhttp_request_get_output_headers(req), "Location", p->r.location);
		if (p->rbody) buf_add(&b, p->rbody, p->r.body_len);
		break;
	case M_GARBAGE:
		buf_adds(&b, "<html>this is not {json");
		break;
	case M_WRONG: {
		char *id = evhttp_uridecode(strrchr(path, '/') ? strrchr(path, '/') + 1 : "", 0, NULL);
		struct ev *w = first_ev;
		while (w && id && strcmp(w->id, id) == 0) w = w->lnext;
		free(id);
		buf_printf(&b, "{\"origin\":\"%s\",\"origin_server_ts\":1,\"pdus\":[", server_name);
		if (w) buf_add(&b, w->pdu, w->len);
		else buf_adds(&b, "{\"type\":\"m.room.message\",\"content\":{\"body\":\"decoy\"},"
		                  "\"room_id\":\"!decoy:x\",\"sender\":\"@d:x\",\"depth\":1,"
		                  "\"origin_server_ts\":1,\"prev_events\":[],\"auth_events\":[],"
		                  "\"hashes\":{\"sha256\":\"x\"},\"signatures\":{}}");
		buf_adds(&b, "]}");
		break;
	}
	default: {   /* M_EVENTS */
		const char *pre = "/_matrix/federation/v1/event/";
		if (strncmp(path, pre, strlen(pre)) == 0) {
			char *id = evhttp_uridecode(path + strlen(pre), 0, NULL);
			struct ev *e = id ? ev_find(id) : NULL;
			free(id);
			if (e) {
				buf_printf(&b, "{\"origin\":\"%s\",\"origin_server_ts\":1,\"pdus\":[", server_name);
				buf_add(&b, e->pdu, e->len);
				buf_adds(&b, "]}");
				break;
			}
		} else if (strcmp(path, "/_matrix/key/v2/server") == 0 && keydoc) {
			buf_add(&b, keydoc, keydoc_len);
			break;
		}
		status = 404;
		buf_adds(&b, "{\"errcode\":\"M_NOT_FOUND\",\"error\":\"not here\"}");
	}
	}
	n_answered++;
	fprintf(stderr, "fedpeer[%s]: done req=%lu %s status=%d bytes=%zu\n", server_name, p->id,
	        path, status, b.len);
	send_json(req, status, b.data, b.len);
	buf_free(&b);
	pending_free(p);
}

/* Has the client closed its end? (evhttp does not read while we owe it a
 * response, so peek at the socket.) */
static int fetch_client_gone(struct pending *p)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);
	int fd = bev ? bufferevent_getfd(bev) : -1;
	char c;
	if (fd < 0) return 1;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void poll_cb(evutil_socket_t s, short ev, void *arg)
{
	struct pending *p = arg;
	(void)s; (void)ev;
	if (!fetch_client_gone(p)) return;
	struct evhttp_connection *evcon = p->evcon;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	n_cancelled++;
	fprintf(stderr, "fedpeer[%s]: cancelled req=%lu %s (client went away)\n", server_name, p->id, p->path);
	pending_free(p);
	evhttp_connection_free(evcon);
}

static void delay_cb(evutil_socket_t s, short ev, void *arg)
{
	struct pending *p = arg;
	(void)s; (void)ev;
	if (fetch_client_gone(p)) { poll_cb(-1, 0, p); return; }
	if (p->r.mode == M_HANG) return;   /* never answers; poll notices the close */
	respond(p);
}

static void stats_cb(struct evhttp_request *req)
{
	char b[512];
	int n = snprintf(b, sizeof b, "{\"requests\":%lu,\"answered\":%lu,\"cancelled\":%lu,"
	                 "\"reset\":%lu,\"hung\":%lu,\"inflight\":%lu,\"inflight_max\":%lu,"
	                 "\"events\":%zu}", n_req, n_answered, n_cancelled, n_reset, n_hung,
	                 n_inflight, n_inflight_max, nevents);
	send_json(req, 200, b, (size_t)n);
}

static void req_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : "/";
	const char *q = u ? evhttp_uri_get_query(u) : NULL;
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	/* Each Authorization header: the bearer one is logged as auth=, an
	 * X-Matrix one as xmatrix=<origin> (else -): fetchd sends both. */
	const char *auth = NULL, *xm = NULL;
	for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Authorization") != 0) continue;
		if (strncasecmp(kv->value, "X-Matrix ", 9) == 0) { if (!xm) xm = kv->value; }
		else if (!auth) auth = kv->value;
	}
	char xorig[128] = "-";
	if (xm) {
		const char *o = strstr(xm, "origin=");
		if (o) {
			o += 7;
			if (*o == '"') o++;
			snprintf(xorig, sizeof xorig, "%.*s", (int)strcspn(o, "\",\r\n"), o);
		}
	}
	const char *prox = evhttp_find_header(h, "X-Fed-Proxied");
	const char *ua = evhttp_find_header(h, "User-Agent");
	const char *hosthdr = evhttp_find_header(h, "Host");
	(void)arg;
	if (!path) path = "/";
	if (strncmp(path, "/_peer/stats", 12) == 0) { stats_cb(req); return; }
	struct pending *p = xcalloc(1, sizeof *p);
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->id = ++n_req;
	if (++n_inflight > n_inflight_max) n_inflight_max = n_inflight;
	snprintf(p->path, sizeof p->path, "%s", path);
	const struct rule *r = match_rule(path);
	if (r) {
		p->r = *r;
		if (r->body) p->rbody = xmemdup(r->body, r->body_len);
	} else {
		p->r.mode = M_EVENTS;
	}
	p->r.body = NULL;
	/* An absolute-form request (we are someone's HTTP proxy) names its
	 * target: logged as target=host:port, else target=-. */
	const char *thost = u ? evhttp_uri_get_host(u) : NULL;
	int tport = u ? evhttp_uri_get_port(u) : -1;
	fprintf(stderr, "fedpeer[%s]: req=%lu %s %s%s%s auth=%s xmatrix=%s proxied=%s mode=%d delay=%ld host=%s target=%s%s%.0d ua=%s\n",
	        server_name, p->id,
	        evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET", path,
	        q ? "?" : "", q ? q : "", auth ? auth : "-", xorig, prox ? prox : "0", p->r.mode,
	        p->r.delay_ms, hosthdr ? hosthdr : "-", thost ? thost : "-", thost && tport > 0 ? ":" : "",
	        thost && tport > 0 ? tport : 0, ua ? ua : "-");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t bl = evbuffer_get_length(in);
		const char *bb = (const char *)evbuffer_pullup(in, -1);
		fprintf(stderr, "fedpeer[%s]: req=%lu body=%.*s\n", server_name, p->id,
		        (int)(bl > 1000 ? 1000 : bl), bb ? bb : "");
	}
	if (p->r.delay_ms <= 0 && p->r.mode != M_HANG) { respond(p); return; }
	if (p->r.mode == M_HANG) n_hung++;
	evhttp_connection_set_closecb(p->evcon, closecb, p);
	struct timeval tv = { p->r.delay_ms / 1000, (p->r.delay_ms % 1000) * 1000 };
	struct timeval pv = { 0, 20000 };
	p->delay = evtimer_new(base, delay_cb, p);
	p->poll = event_new(base, -1, EV_PERSIST, poll_cb, p);
	evtimer_add(p->delay, &tv);
	evtimer_add(p->poll, &pv);
}

static void hup_cb(evutil_socket_t s, short ev, void *arg)
{
	(void)s; (void)ev; (void)arg;
	if (rules_path) load_rules(rules_path);
}

static void term_cb(evutil_socket_t s, short ev, void *arg)
{
	(void)s; (void)ev; (void)arg;
	event_base_loopexit(base, NULL);
}

static int make_events(long n, const char *keyfile, const char *room, const char *out,
                       const char *ids)
{
	struct signing_key k;
	char err[256];
	FILE *f = fopen(out, "w"), *fi = ids ? fopen(ids, "w") : NULL;
	if (!f || (ids && !fi)) { perror(out); return 1; }
	if (signing_key_load(&k, keyfile, err, sizeof err) < 0) {
		fprintf(stderr, "fedpeer: %s\n", err);
		return 1;
	}
	struct buf ev, pdu;
	buf_init(&ev); buf_init(&pdu);
	for (long i = 0; i < n; i++) {
		char id[PDU_EVENT_ID_MAX];
		buf_reset(&ev); buf_reset(&pdu);
		buf_printf(&ev, "{\"auth_events\":[],\"content\":{\"body\":\"message %ld\",\"msgtype\":\"m.text\"},"
		           "\"depth\":%ld,\"origin_server_ts\":%lld,\"prev_events\":[],\"room_id\":\"%s\","
		           "\"sender\":\"@bench:%s\",\"type\":\"m.room.message\"}", i, i + 1,
		           1700000000000LL + i, room, server_name);
		if (pdu_sign(ev.data, ev.len, rv, server_name, k.key_id, k.sk, &pdu, id) < 0) {
			fprintf(stderr, "fedpeer: pdu_sign failed\n");
			return 1;
		}
		fwrite(pdu.data, 1, pdu.len, f);
		fputc('\n', f);
		if (fi) fprintf(fi, "%s\n", id);
	}
	buf_free(&ev); buf_free(&pdu);
	fclose(f);
	if (fi) fclose(fi);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: fedpeer -p PORT [-r RULES.json] [-e EVENTS.jsonl] [-k KEYFILE] [-s SERVER]\n"
	        "       fedpeer --make-events N -k KEYFILE -s SERVER --room ROOM -o FILE [--ids FILE]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "make-events", required_argument, NULL, 'M' }, { "room", required_argument, NULL, 'R' },
		{ "ids", required_argument, NULL, 'I' }, { "room-version", required_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 } };
	int port = 0, opt;
	long make = -1;
	const char *events = NULL, *keyfile = NULL, *room = "!bench:peer.test", *out = NULL, *ids = NULL;
	if (sodium_init() < 0) return 1;
	setvbuf(stderr, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "p:r:e:k:s:o:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'r': rules_path = optarg; break;
		case 'e': events = optarg; break;
		case 'k': keyfile = optarg; break;
		case 's': snprintf(server_name, sizeof server_name, "%s", optarg); break;
		case 'o': out = optarg; break;
		case 'M': make = atol(optarg); break;
		case 'R': room = optarg; break;
		case 'I': ids = optarg; break;
		case 'V': rv = atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (make >= 0) {
		if (!keyfile || !out) { usage(); return 2; }
		return make_events(make, keyfile, room, out, ids);
	}
	if (port <= 0) { usage(); return 2; }
	signal(SIGPIPE, SIG_IGN);
	if (events && load_events(events) < 0) return 1;
	if (rules_path && load_rules(rules_path) < 0) return 1;
	if (keyfile) {
		struct signing_key k;
		char err[256];
		struct buf b;
		buf_init(&b);
		if (signing_key_load(&k, keyfile, err, sizeof err) < 0 ||
		    signing_key_doc(&k, server_name, now_ms(), 86400000LL * 7, &b) < 0) {
			fprintf(stderr, "fedpeer: key %s: %s\n", keyfile, err);
			return 1;
		}
		keydoc_len = b.len;
		keydoc = buf_steal(&b);
	}
	base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	if (!base || !http) return 1;
	evhttp_set_gencb(http, req_cb, NULL);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_timeout(http, 3600);
	if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) < 0) {
		fprintf(stderr, "fedpeer: cannot bind 127.0.0.1:%d\n", port);
		return 1;
	}
	struct event *hup = evsignal_new(base, SIGHUP, hup_cb, NULL);
	struct event *term = evsignal_new(base, SIGTERM, term_cb, NULL);
	struct event *intr = evsignal_new(base, SIGINT, term_cb, NULL);
	event_add(hup, NULL); event_add(term, NULL); event_add(intr, NULL);
	fprintf(stderr, "fedpeer[%s]: listening on 127.0.0.1:%d, %zu events\n", server_name, port, nevents);
	event_base_dispatch(base);
	event_free(hup); event_free(term); event_free(intr);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
