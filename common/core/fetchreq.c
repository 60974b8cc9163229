/* fetchreq.c: FETCH_REQ / FETCH_RESULT payloads (see fetchreq.h), shared by
 * fetchd, fedctl and any stage that asks fetchd for bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/xalloc.h"
#include "core/fetchreq.h"
#include "matrix/json.h"

static const char *const op_names[FOP__COUNT] = {
	"event", "auth_event", "auth_chain", "state_ids", "missing_events", "backfill",
	"server_keys"
};

const char *fetchreq_op_name(int op)
{
	return op >= 0 && op < FOP__COUNT ? op_names[op] : "?";
}

int fetchreq_op_parse(const char *s)
{
	for (int i = 0; i < FOP__COUNT; i++)
		if (strcmp(s, op_names[i]) == 0) return i;
	return -1;
}

int fetchreq_fanout_parse(const char *s, struct fetch_fanout *f)
{
	int a = 0, b = 0, n = 0;
	memset(f, 0, sizeof *f);
	if (strcmp(s, "sequential") == 0) { f->kind = FAN_FIXED; f->a = 1; return 0; }
	if (strncmp(s, "fixed:", 6) == 0) {
		if (sscanf(s + 6, "%d%n", &a, &n) != 1 || s[6 + n] || a < 1 || a > 1024) return -1;
		f->kind = FAN_FIXED; f->a = a; return 0;
	}
	if (strncmp(s, "linear:", 7) == 0) {
		if (sscanf(s + 7, "%d,%d%n", &a, &b, &n) != 2 || s[7 + n] || a < 1 || a > 1024 ||
		    b < 0 || b > 1024) return -1;
		f->kind = FAN_LINEAR; f->a = a; f->b = b; return 0;
	}
	if (strncmp(s, "geometric:", 10) == 0) {
		if (sscanf(s + 10, "%d,%d%n", &a, &b, &n) != 2 || s[10 + n] || a < 1 || a > 1024 ||
		    b < 1 || b > 64) return -1;
		f->kind = FAN_GEOMETRIC; f->a = a; f->b = b; return 0;
	}
	return -1;
}

void fetchreq_fanout_str(const struct fetch_fanout *f, char *out, size_t cap)
{
	switch (f->kind) {
	case FAN_FIXED:     snprintf(out, cap, "fixed:%d", f->a); break;
	case FAN_LINEAR:    snprintf(out, cap, "linear:%d,%d", f->a, f->b); break;
	case FAN_GEOMETRIC: snprintf(out, cap, "geometric:%d,%d", f->a, f->b); break;
	default:            snprintf(out, cap, "default"); break;
	}
}

int fetchreq_fanout_width(const struct fetch_fanout *f, int r)
{
	long long w = 1;
	switch (f->kind) {
	case FAN_FIXED:  w = f->a; break;
	case FAN_LINEAR: w = f->a + (long long)f->b * r; break;
	case FAN_GEOMETRIC:
		w = f->a;
		for (int i = 0; i < r && w < 1024; i++) w *= f->b;
		break;
	default: w = 1;
	}
	if (w < 1) w = 1;
	if (w > 1024) w = 1024;
	return (int)w;
}

void fetchreq_init(struct fetch_req *r)
{
	memset(r, 0, sizeof *r);
	r->checks = -1;
}

static void list_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++) free(l[i]);
	free(l);
}

void fetchreq_free(struct fetch_req *r)
{
	list_free(r->servers, r->nservers);
	list_free(r->events, r->nevents);
	list_free(r->earliest, r->nearliest);
	fetchreq_init(r);
}

void fetchreq_list_add(char ***list, size_t *n, const char *s)
{
	char **l = xreallocarray(*list, *n + 1, sizeof *l);
	l[(*n)++] = xstrdup(s);
	*list = l;
}

void fetchreq_list_split(char ***list, size_t *n, const char *csv)
{
	const char *p = csv;
	while (*p) {
		size_t k = strcspn(p, ", ");
		if (k) {
			char tmp[512];
			if (k >= sizeof tmp) k = sizeof tmp - 1;
			memcpy(tmp, p, k); tmp[k] = 0;
			fetchreq_list_add(list, n, tmp);
		}
		p += k;
		while (*p == ',' || *p == ' ') p++;
	}
}

/* The value token t (-1: absent) of member key, as a list / string /
 * integer in range (absent or null: left as it is). */
static int tok_list(const struct json_doc *d, int t, const char *key, char ***list,
                    size_t *n, char *err, size_t errlen)
{
	if (t < 0 || d->tok[t].type == JSON_NULL) return 0;
	if (d->tok[t].type != JSON_ARRAY) { snprintf(err, errlen, "%s: not an array", key); return -1; }
	if (d->tok[t].size > 4096) { snprintf(err, errlen, "%s: too many entries", key); return -1; }
	for (int e = json_first(d, t); e >= 0; e = json_next_elem(d, t, e)) {
		char tmp[512];
		if (d->tok[e].type != JSON_STRING || json_str_copy(d, e, tmp, sizeof tmp) < 1) {
			snprintf(err, errlen, "%s: entries must be non-empty strings < 512 bytes", key);
			return -1;
		}
		fetchreq_list_add(list, n, tmp);
	}
	return 0;
}

static int tok_str(const struct json_doc *d, int t, const char *key, char *out, size_t cap,
                   char *err, size_t errlen)
{
	if (t < 0 || d->tok[t].type == JSON_NULL) return 0;
	if (d->tok[t].type != JSON_STRING || json_str_copy(d, t, out, cap) < 0) {
		snprintf(err, errlen, "%s: not a string (or too long)", key);
		return -1;
	}
	return 0;
}

static int tok_int(const struct json_doc *d, int t, const char *key, long long lo,
                   long long hi, long long *out, char *err, size_t errlen)
{
	if (t < 0 || d->tok[t].type == JSON_NULL) return 0;
	if (d->tok[t].type != JSON_INT || d->tok[t].ival < lo || d->tok[t].ival > hi) {
		snprintf(err, errlen, "%s: not an integer in [%lld, %lld]", key, lo, hi);
		return -1;
	}
	*out = d->tok[t].ival;
	return 0;
}

static int get_list(const struct json_doc *d, int obj, const char *key, char ***list,
                    size_t *n, char *err, size_t errlen)
{
	return tok_list(d, json_obj_get(d, obj, key), key, list, n, err, errlen);
}

static int get_str(const struct json_doc *d, int obj, const char *key, char *out, size_t cap,
                   char *err, size_t errlen)
{
	return tok_str(d, json_obj_get(d, obj, key), key, out, cap, err, errlen);
}

/* A FETCH_REQ's members, found in one walk over the object (fetchd parses
 * one request per fetch; a lookup per member name walked it 13 times).
 * Keys are unique (json_parse refuses duplicates); others are ignored. */
enum { RK_OP, RK_EVENT_ID, RK_ROOM_ID, RK_FANOUT, RK_SERVERS, RK_EVENTS, RK_EARLIEST,
       RK_LIMIT, RK_MAX_WIDTH, RK_MAX_ATTEMPTS, RK_TIMEOUT_MS, RK_HINTS_ONLY, RK_CHECKS,
       RK__COUNT };
static const struct { const char *name; size_t len; } req_keys[RK__COUNT] = {
	[RK_OP] = { "op", 2 }, [RK_EVENT_ID] = { "event_id", 8 }, [RK_ROOM_ID] = { "room_id", 7 },
	[RK_FANOUT] = { "fanout", 6 }, [RK_SERVERS] = { "servers", 7 }, [RK_EVENTS] = { "events", 6 },
	[RK_EARLIEST] = { "earliest", 8 }, [RK_LIMIT] = { "limit", 5 },
	[RK_MAX_WIDTH] = { "max_width", 9 }, [RK_MAX_ATTEMPTS] = { "max_attempts", 12 },
	[RK_TIMEOUT_MS] = { "timeout_ms", 10 }, [RK_HINTS_ONLY] = { "hints_only", 10 },
	[RK_CHECKS] = { "checks", 6 },
};

static void req_members(const struct json_doc *d, int v[RK__COUNT])
{
	for (int i = 0; i < RK__COUNT; i++) v[i] = -1;
	for (int k = json_first(d, 0); k >= 0; k = json_next_kv(d, 0, k)) {
		size_t n = json_str_len(d, k);
		for (int i = 0; i < RK__COUNT; i++)
			if (req_keys[i].len == n && json_str_eq(d, k, req_keys[i].name)) { v[i] = k + 1; break; }
	}
}

/* The token array is kept between calls (per thread): fetchd parses one
 * request per fetch, and a fresh allocation each time was a tenth of the
 * parse. Requests are small; a large one's array is let go afterwards. */
static _Thread_local struct json_doc req_doc;

int fetchreq_parse(const char *json, size_t n, struct fetch_req *r, char *err, size_t errlen)
{
	return fetchreq_parse_op(json, n, -1, r, err, errlen);
}

int fetchreq_parse_op(const char *json, size_t n, int default_op, struct fetch_req *r,
                      char *err, size_t errlen)
{
	struct json_doc d = req_doc;
	char opname[32] = "", fan[64] = "";
	long long v;
	int rc = -1;
	fetchreq_init(r);
	if (json_parse(&d, json, n, 8) < 0) {
		snprintf(err, errlen, "bad JSON: %s at %u", json_err_str(d.err), d.err_off);
		goto out;
	}
	if (d.tok[0].type != JSON_OBJECT) { snprintf(err, errlen, "not an object"); goto out; }
	int m[RK__COUNT];
	req_members(&d, m);
	if (tok_str(&d, m[RK_OP], "op", opname, sizeof opname, err, errlen) < 0) goto out;
	if (!opname[0] && default_op >= 0 && default_op < FOP__COUNT) r->op = default_op;
	else if ((r->op = fetchreq_op_parse(opname)) < 0) {
		snprintf(err, errlen, "unknown op '%s'", opname);
		goto out;
	}
	if (tok_str(&d, m[RK_EVENT_ID], "event_id", r->event_id, sizeof r->event_id, err, errlen) < 0 ||
	    tok_str(&d, m[RK_ROOM_ID], "room_id", r->room_id, sizeof r->room_id, err, errlen) < 0 ||
	    tok_str(&d, m[RK_FANOUT], "fanout", fan, sizeof fan, err, errlen) < 0 ||
	    tok_list(&d, m[RK_SERVERS], "servers", &r->servers, &r->nservers, err, errlen) < 0 ||
	    tok_list(&d, m[RK_EVENTS], "events", &r->events, &r->nevents, err, errlen) < 0 ||
	    tok_list(&d, m[RK_EARLIEST], "earliest", &r->earliest, &r->nearliest, err, errlen) < 0)
		goto out;
	v = 0; if (tok_int(&d, m[RK_LIMIT], "limit", 0, 100000, &v, err, errlen) < 0) goto out;
	r->limit = (int)v;
	v = 0; if (tok_int(&d, m[RK_MAX_WIDTH], "max_width", 0, 1024, &v, err, errlen) < 0) goto out;
	r->max_width = (int)v;
	v = 0; if (tok_int(&d, m[RK_MAX_ATTEMPTS], "max_attempts", 0, 100000, &v, err, errlen) < 0) goto out;
	r->max_attempts = (int)v;
	v = 0; if (tok_int(&d, m[RK_TIMEOUT_MS], "timeout_ms", 0, 86400000LL, &v, err, errlen) < 0) goto out;
	r->timeout_ms = v;
	if (fan[0] && strcmp(fan, "default") && fetchreq_fanout_parse(fan, &r->fanout) < 0) {
		snprintf(err, errlen, "bad fanout '%s' (fixed:N | linear:S,STEP | geometric:S,F)", fan);
		goto out;
	}
	int h = m[RK_HINTS_ONLY];
	if (h >= 0 && d.tok[h].type != JSON_NULL) {
		if (d.tok[h].type != JSON_TRUE && d.tok[h].type != JSON_FALSE) {
			snprintf(err, errlen, "hints_only: not a boolean");
			goto out;
		}
		r->hints_only = d.tok[h].type == JSON_TRUE;
	}
	int c = m[RK_CHECKS];
	if (c >= 0 && d.tok[c].type != JSON_NULL) {
		static const struct { const char *k; int bit; } names[] = {
			{ "event_id", FETCH_CHECK_EVENT_ID }, { "hashes", FETCH_CHECK_HASHES },
			{ "signatures", FETCH_CHECK_SIGNATURES } };
		if (d.tok[c].type != JSON_OBJECT) { snprintf(err, errlen, "checks: not an object"); goto out; }
		r->checks = FETCH_CHECK_EVENT_ID;
		for (size_t i = 0; i < 3; i++) {
			int t = json_obj_get(&d, c, names[i].k);
			if (t < 0) continue;
			if (d.tok[t].type == JSON_TRUE) r->checks |= names[i].bit;
			else if (d.tok[t].type == JSON_FALSE) r->checks &= ~names[i].bit;
			else { snprintf(err, errlen, "checks.%s: not a boolean", names[i].k); goto out; }
		}
	}
	rc = 0;
out:
	if (d.cap > 4096) json_doc_free(&d);
	req_doc = d;
	if (rc < 0) fetchreq_free(r);
	return rc;
}

static void put_list(struct buf *out, const char *key, char *const *l, size_t n)
{
	buf_adds(out, ",\"");
	buf_adds(out, key);
	buf_adds(out, "\":[");
	for (size_t i = 0; i < n; i++) {
		if (i) buf_addc(out, ',');
		json_put_string(out, l[i], strlen(l[i]));
	}
	buf_addc(out, ']');
}

void fetchreq_encode(const struct fetch_req *r, struct buf *out)
{
	buf_adds(out, "{\"op\":");
	json_put_string(out, fetchreq_op_name(r->op), strlen(fetchreq_op_name(r->op)));
	if (r->event_id[0]) {
		buf_adds(out, ",\"event_id\":");
		json_put_string(out, r->event_id, strlen(r->event_id));
	}
	if (r->room_id[0]) {
		buf_adds(out, ",\"room_id\":");
		json_put_string(out, r->room_id, strlen(r->room_id));
	}
	if (r->nservers) put_list(out, "servers", r->servers, r->nservers);
	if (r->nevents) put_list(out, "events", r->events, r->nevents);
	if (r->nearliest) put_list(out, "earliest", r->earliest, r->nearliest);
	if (r->limit) buf_printf(out, ",\"limit\":%d", r->limit);
	if (r->fanout.kind != FAN_DEFAULT) {
		char f[64];
		fetchreq_fanout_str(&r->fanout, f, sizeof f);
		buf_printf(out, ",\"fanout\":\"%s\"", f);
	}
	if (r->max_width) buf_printf(out, ",\"max_width\":%d", r->max_width);
	if (r->max_attempts) buf_printf(out, ",\"max_attempts\":%d", r->max_attempts);
	if (r->checks >= 0)
		buf_printf(out, ",\"checks\":{\"event_id\":%s,\"hashes\":%s,\"signatures\":%s}",
		           r->checks & FETCH_CHECK_EVENT_ID ? "true" : "false",
		           r->checks & FETCH_CHECK_HASHES ? "true" : "false",
		           r->checks & FETCH_CHECK_SIGNATURES ? "true" : "false");
	if (r->timeout_ms) buf_printf(out, ",\"timeout_ms\":%lld", r->timeout_ms);
	if (r->hints_only) buf_adds(out, ",\"hints_only\":true");
	buf_addc(out, '}');
}

void fetchres_meta(struct buf *out, int ok, const char *error, const char *server,
                   char *const *tried, char *const *why, size_t ntried)
{
	buf_adds(out, ok ? "{\"ok\":true" : "{\"ok\":false");
	if (!ok && error) {
		buf_adds(out, ",\"error\":");
		json_put_string(out, error, strlen(error));
	}
	if (server && *server) {
		buf_adds(out, ",\"server\":");
		json_put_string(out, server, strlen(server));
	}
	put_list(out, "tried", tried, tried ? ntried : 0);
	if (why) put_list(out, "why", why, ntried);
	buf_addc(out, '}');
}

int fetchres_parse(const struct frame *f, struct fetch_result *r)
{
	const char *meta, *body;
	size_t mlen, blen;
	struct json_doc d = { 0 };
	char err[128];
	int rc = -1;
	memset(r, 0, sizeof *r);
	if (f->type != FT_FETCH_RESULT || frame_split_meta(f, &meta, &mlen, &body, &blen) < 0)
		return -1;
	if (json_parse(&d, meta, mlen, 8) < 0 || d.tok[0].type != JSON_OBJECT) goto out;
	int t = json_obj_get(&d, 0, "ok");
	if (t < 0) goto out;
	r->ok = d.tok[t].type == JSON_TRUE;
	if (get_str(&d, 0, "error", r->error, sizeof r->error, err, sizeof err) < 0 ||
	    get_str(&d, 0, "server", r->server, sizeof r->server, err, sizeof err) < 0 ||
	    get_list(&d, 0, "tried", &r->tried, &r->ntried, err, sizeof err) < 0 ||
	    get_list(&d, 0, "why", &r->why, &r->nwhy, err, sizeof err) < 0)
		goto out;
	r->body = body;
	r->body_len = blen;
	rc = 0;
out:
	json_doc_free(&d);
	if (rc < 0) fetchres_free(r);
	return rc;
}

void fetchres_free(struct fetch_result *r)
{
	list_free(r->tried, r->ntried);
	list_free(r->why, r->nwhy);
	r->tried = r->why = NULL;
	r->ntried = r->nwhy = 0;
}
