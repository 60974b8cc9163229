/* fetch_select.c: candidate servers for a fetch. Sources in order: the
 * caller's hints, the room's known servers (LMDB room_servers, most recently
 * seen first), servers named in the IDs. Our own and ACL-denied servers are
 * removed, duplicates keep their first place; then ranked reachable >
 * deprioritized > backed off (backed off only when nothing else is left),
 * recent latency breaking ties. A recovery (FF_PROXIED) or a request with
 * "hints_only" asks only the caller's hints. A name from anywhere but the configuration
 * (a hint, an ID, a room_servers row) must be a Matrix server name
 * (matrix/servername.h) or it is no candidate: "127.0.0.1:1/x?cmd=" from an
 * ID never becomes a URL.
 * A server's keys (op server_keys, ID = the server S) come only from those
 * entitled to give them: the notaries of [node] trusted_key_servers
 * (first), then S itself. A caller's hint is a candidate only if it is one
 * of those notaries; the keys of a notary come from the notary alone. */
#include <stdlib.h>
#include <string.h>
#include "fetch.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/servername.h"
#include "store/events.h"

#define CAND_MAX 64

int fetch_server_excluded(struct fetchd *fd, const char *name)
{
	return !*name || strcmp(name, fd->own) == 0 ||
	       (!fd->acl_open && !cfg_acl_allows(&fd->d->cfg, name));
}

static int cand_has(struct fetch *f, const char *name)
{
	for (int i = 0; i < f->ncand; i++)
		if (strcmp(f->cand[i], name) == 0) return 1;
	return 0;
}

static void cand_add(struct fetchd *fd, struct fetch *f, const char *name, size_t n)
{
	char tmp[256];
	if (f->ncand >= CAND_MAX) return;
	if (n >= sizeof tmp || memchr(name, 0, n)) {
		(*fd->c_bad_names)++;
		log_debug("fetch %s: a server name of %zu bytes is no candidate", f->req.event_id, n);
		return;
	}
	memcpy(tmp, name, n);
	tmp[n] = 0;
	if (!server_name_valid(tmp, n) && !transport_server_configured(fd, tmp)) {
		(*fd->c_bad_names)++;
		log_debug("fetch %s: '%s' is not a server name: no candidate", f->req.event_id, tmp);
		return;
	}
	if (fetch_server_excluded(fd, tmp) || cand_has(f, tmp)) return;
	f->cand = xreallocarray(f->cand, (size_t)f->ncand + 1, sizeof *f->cand);
	f->cand[f->ncand++] = xstrdup(tmp);
}

/* "!opaque:server" / "$opaque:server" (pre-v4 event IDs): the server part. */
static void cand_from_id(struct fetchd *fd, struct fetch *f, const char *id)
{
	const char *colon = strchr(id, ':');
	if (colon && colon[1]) cand_add(fd, f, colon + 1, strlen(colon + 1));
}

static int cmp_seen(const void *a, const void *b)
{
	const struct room_server *x = a, *y = b;
	return x->last_seen_ms < y->last_seen_ms ? 1 : x->last_seen_ms > y->last_seen_ms ? -1 : 0;
}

static void cand_from_room(struct fetchd *fd, struct fetch *f, const char *room)
{
	struct store *st = fd->d->st;
	struct room_server s[CAND_MAX];
	MDB_txn *t = store_begin(st, 1);
	int n = store_room_servers(t, st, room, s, CAND_MAX);
	mdb_txn_abort(t);
	if (n < 0) n = 0;       /* a read error: the other sources remain */
	if (n > 1) qsort(s, (size_t)n, sizeof *s, cmp_seen);
	for (int i = 0; i < n; i++) cand_add(fd, f, s[i].name, strlen(s[i].name));
}

struct ranked { char *name; int cls; long long lat; int idx; };

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if (x->cls != y->cls) return x->cls - y->cls;
	if (x->lat != y->lat) return x->lat < y->lat ? -1 : 1;   /* untried (0) first */
	return x->idx - y->idx;
}

static void rank(struct fetchd *fd, struct fetch *f, int from)
{
	int n = f->ncand - from;
	if (n <= 0) return;
	struct server *sv_small[8], **sv = sv_small;
	struct ranked r_small[8], *r = r_small;
	long long now = now_ms();
	int usable = 0;
	if (n > 8) {                       /* the usual one or few: no allocation */
		sv = xcalloc((size_t)n, sizeof *sv);
		r = xcalloc((size_t)n, sizeof *r);
	}
	for (int i = 0; i < n; i++) sv[i] = transport_server_get(fd, f->cand[from + i]);
	health_load(fd, sv, n);
	for (int i = 0; i < n; i++) {
		r[i].name = f->cand[from + i];
		r[i].cls = health_class(fd, sv[i], now);
		r[i].lat = sv[i]->latency_ms;
		r[i].idx = i;
		if (r[i].cls < 2) usable++;
	}
	if (n > 1) qsort(r, (size_t)n, sizeof *r, cmp_ranked);
	int keep = usable ? usable : n;    /* backed-off servers only if nothing else */
	for (int i = 0; i < n; i++) {
		if (i < keep) f->cand[from + i] = r[i].name;
		else {
			log_debug("fetch %s: skipping backed-off %s", f->req.event_id, r[i].name);
			free(r[i].name);
		}
	}
	f->ncand = from + keep;
	if (sv != sv_small) { free(sv); free(r); }
}

static int fetch_key_notary(struct fetchd *fd, const char *name)
{
	return cfg_list_has(&fd->d->cfg, "node", "trusted_key_servers", name);
}

/* A hint for a key fetch: S itself or a trusted notary (not for a notary's
 * own keys); anyone else would be trust on delivery. */
static void key_hint(struct fetchd *fd, struct fetch *f, const char *name)
{
	if (strcmp(name, f->req.event_id) == 0 || (fetch_key_notary(fd, name) && !fetch_key_notary(fd, f->req.event_id))) {
		cand_add(fd, f, name, strlen(name));
		return;
	}
	(*fd->c_bad_names)++;
	log_info("fetch keys of %s: %s is neither the server nor a trusted notary: not asked",
	         f->req.event_id, name);
}

void fetch_select(struct fetchd *fd, struct fetch *f)
{
	struct fetch_req *q = &f->req;
	if (q->op == FOP_SERVER_KEYS) {
		if (!q->hints_only && !fetch_key_notary(fd, q->event_id)) {
			const char *l = cfg_str(&fd->d->cfg, "node", "trusted_key_servers");
			while (*l) {
				size_t n = strcspn(l, ", \t");
				if (n) cand_add(fd, f, l, n);
				l += n;
				l += strspn(l, ", \t");
			}
		}
		if (!q->hints_only) cand_add(fd, f, q->event_id, strlen(q->event_id));
		for (size_t i = 0; i < q->nservers; i++)
			key_hint(fd, f, q->servers[i]);
	} else if (q->hints_only || f->lo) {
		/* A recovery asks only its caller's servers (served's configured
		 * upstreams), never one an outsider named inside the ID. */
		for (size_t i = 0; i < q->nservers; i++)
			cand_add(fd, f, q->servers[i], strlen(q->servers[i]));
	} else {
		for (size_t i = 0; i < q->nservers; i++)
			cand_add(fd, f, q->servers[i], strlen(q->servers[i]));
		if (q->room_id[0]) cand_from_room(fd, f, q->room_id);
		if (q->room_id[0]) cand_from_id(fd, f, q->room_id);
		if (q->event_id[0]) cand_from_id(fd, f, q->event_id);
		for (size_t i = 0; i < q->nevents; i++) cand_from_id(fd, f, q->events[i]);
	}
	rank(fd, f, 0);
}

/* A caller that joined an in-flight fetch may know more servers: they go
 * after the ones already planned. */
void fetch_add_hints(struct fetchd *fd, struct fetch *f, char *const *hints, size_t n)
{
	int from = f->ncand;
	for (size_t i = 0; i < n; i++) {
		int known = 0;
		for (int j = 0; j < f->ntried; j++)
			if (strcmp(f->tried[j], hints[i]) == 0) known = 1;
		if (known) continue;
		if (f->req.op == FOP_SERVER_KEYS) key_hint(fd, f, hints[i]);
		else cand_add(fd, f, hints[i], strlen(hints[i]));
	}
	rank(fd, f, from);
}
