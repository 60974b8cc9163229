/* fedctl_top.c: `fedctl top`, a live view of one node, refreshed every
 * interval: each stage up or down with its pid, uptime, restarts and queue;
 * events per second in, stored, held, rejected, fetched and published;
 * the LMDB queues; each peer's cursor, lag and last answer; fetchd's
 * success rate and p50/p99 latency; the store's size and map use.
 *
 * Data: every stage's stats frame through fedctl_request (the client
 * `fedctl status` and `fedctl stats` use), the store read-only (table
 * entries, federation_state, server_health, mdb_env_info), and fedsup's
 * state files ($run_dir/fedsup/STAGE.state: starts) for restarts. Rates
 * are differences between two samples (a counter that went down, or a new
 * pid, counts from zero).
 *
 * Output: on a terminal, a full-screen view in plain ANSI/VT100 (cursor
 * home, erase line, erase below; nothing else assumed; the size from
 * TIOCGWINSZ), the keyboard in non-canonical mode without echo; `q` quits,
 * SIGINT/SIGTERM/SIGHUP quit, SIGWINCH redraws, ^Z suspends; the terminal
 * is restored on every exit path (atexit). Not a terminal: one line of
 * key=value pairs per sample, in a fixed order, "-" for unknown values. */
#include "fedctl.h"
#include "core/frame.h"
#include "core/log.h"
#include "core/buf.h"
#include "core/stages.h"
#include "matrix/json.h"
#include "store/fedstate.h"
#include "store/health.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- percentiles: one small function over (bucket upper bounds, counts) ---- */

/* The q-quantile (0 <= q <= 1) of a histogram given as per-bucket counts
 * (not cumulative) with ascending upper bounds le[] (the last may be
 * INFINITY; a bucket's lower bound is the previous one's upper, 0 for the
 * first), interpolated linearly inside the bucket as Prometheus'
 * histogram_quantile does. A rank in the +Inf bucket gives the highest
 * finite bound. NAN when there are no observations. */
double top_quantile(const double *le, const uint64_t *cnt, size_t n, double q)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) total += cnt[i];
	if (!total) return NAN;
	double rank = q * (double)total, cum = 0;
	for (size_t i = 0; i < n; i++) {
		if (cnt[i] && cum + (double)cnt[i] >= rank) {
			double lo = i ? le[i - 1] : 0, hi = le[i];
			if (isinf(hi)) return lo;
			return lo + (hi - lo) * (rank - cum) / (double)cnt[i];
		}
		cum += (double)cnt[i];
	}
	return isinf(le[n - 1]) && n > 1 ? le[n - 2] : le[n - 1];
}

/* ---- one sample ---- */

#define TOP_MAX_BUCKETS 64
#define TOP_MAX_PEERS   32
#define TOP_MAX_LAT     512

struct top_stage {
	int              up;
	char            *payload;
	struct json_doc  d;
	long long        pid, uptime;
	/* fedsup's record of the stage: starts (-1: none) and state */
	int              starts;
	char             sup_state[16];
};

struct top_peer {
	uint64_t  cursor;
	long long last_seen;            /* wall ms, 0 = never */
	char      reason[32];
	uint64_t  caught_up_at;         /* the peer's own entry in the clock stored when we caught up (0: none) */
};

struct top_sample {
	long long        mono, wall;
	struct top_stage st[STAGE_COUNT];
	long long        tab[8];
	int              full;
	unsigned long long used, map, file;
	struct top_peer  peer[TOP_MAX_PEERS];
	/* fetchd's latency histogram (stats "histograms"), if it has one */
	int              nb;
	double           le[TOP_MAX_BUCKETS];
	uint64_t         b[TOP_MAX_BUCKETS];
	/* else the servers' smoothed latencies (server_health), sorted */
	size_t           nlat;
	long long        lat[TOP_MAX_LAT];
};

static const struct { const char *name; int db; } top_tabs[] = {
	{ "events", DB_EVENTS }, { "inbox", DB_INBOX }, { "held", DB_PURGATORY }, { "outbox", DB_OUTBOX },
	{ "feed_dead", DB_FEED_DEAD }, { "rejects", DB_REJECTS }, { "expired", DB_EXPIRED },
};
#define NTABS (sizeof top_tabs / sizeof top_tabs[0])

struct top {
	struct fedctl    *fc;
	long long         interval;
	int               tty, kbd, once;
	struct top_sample s[2];
	int               cur, nsamples;
	int               observed[STAGE_COUNT];   /* pid changes seen (no fedsup record) */
	int               sup_live;               /* a live fedsup keeps state files */
	char              lastmsg[200];           /* last line a request wrote on stderr */
	FILE             *errf;                   /* stderr's captor while the screen is ours */
	long              erroff;
	int               rows, cols;
};

static void sample_free(struct top_sample *s)
{
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		json_doc_free(&s->st[i].d);
		free(s->st[i].payload);
	}
	memset(s, 0, sizeof *s);
}

static int stage_ix(const char *name)
{
	for (size_t i = 0; i < STAGE_COUNT; i++)
		if (!strcmp(stage_in_flow(i)->name, name)) return (int)i;
	return -1;
}

/* A numeric member of a stage's stats: in group ("counters", "gauges") or
 * at the top level (group NULL). -1 if the stage is down or has none. */
static long long stat_num(const struct top_sample *s, int ix, const char *group, const char *name)
{
	if (ix < 0 || !s->st[ix].up) return -1;
	const struct json_doc *d = &s->st[ix].d;
	int g = group ? json_obj_get(d, 0, group) : 0;
	if (g < 0 || d->tok[g].type != JSON_OBJECT) return -1;
	int t = json_obj_get(d, g, name);
	return t >= 0 && d->tok[t].type == JSON_INT ? (long long)d->tok[t].ival : -1;
}

static long long stat_of(const struct top_sample *s, const char *stage, const char *group, const char *name)
{
	return stat_num(s, stage_ix(stage), group, name);
}

/* A stage's queue: the sum of its queue gauges (stages.c), looked for among
 * the gauges, then at the top level of its stats. */
static long long stage_queue(const struct top_sample *s, int ix)
{
	const char *p = stage_in_flow((size_t)ix)->queue;
	long long sum = -1;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)l, p);
		long long v = stat_num(s, ix, "gauges", name);
		if (v < 0) v = stat_num(s, ix, NULL, name);
		if (v >= 0) sum = (sum < 0 ? 0 : sum) + v;
		p += l + (e ? 1 : 0);
	}
	return sum;
}

/* fedsup's state file of a stage: "key=value" lines (starts=N, state=...). */
static void read_sup(const char *run_dir, const char *stage, struct top_stage *t)
{
	t->starts = -1;
	t->sup_state[0] = 0;
	char path[600], line[256];
	snprintf(path, sizeof path, "%s/fedsup/%s.state", run_dir, stage);
	FILE *f = fopen(path, "r");
	if (!f) return;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "starts=", 7)) t->starts = atoi(line + 7);
		else if (!strncmp(line, "state=", 6)) snprintf(t->sup_state, sizeof t->sup_state, "%.15s", line + 6);
	}
	fclose(f);
}

static int fedsup_live(const char *run_dir)
{
	char path[600];
	snprintf(path, sizeof path, "%s/fedsup/fedsup.pid", run_dir);
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	long pid = 0;
	int ok = fscanf(f, "%ld", &pid) == 1 && pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
	fclose(f);
	return ok;
}

/* fetchd's latency histogram in the compact form of its stats frame:
 * "histograms":{NAME:{"unit":"us","sum":S,"b":[c0,c1,...]}}, bucket i's
 * upper bound 2^i (the last of core/histo.h's buckets is +Inf). The one
 * named fetch_latency (a caller's request to its answer) is preferred,
 * then a name with "fetch", then "latency" (attempt_latency: one server's
 * answer), then any in microseconds. */
#define HISTO_LAST 27   /* core/histo.h: HISTO_BUCKETS - 1 */
static void read_histo(struct top_sample *s)
{
	s->nb = 0;
	int ix = stage_ix("fetchd");
	if (ix < 0 || !s->st[ix].up) return;
	const struct json_doc *d = &s->st[ix].d;
	int h = json_obj_get(d, 0, "histograms");
	if (h < 0 || d->tok[h].type != JSON_OBJECT) return;
	int pick = -1, pref = -1;
	for (int k = json_first(d, h); k >= 0; k = json_next_kv(d, h, k)) {
		char name[64];
		int u = d->tok[k + 1].type == JSON_OBJECT ? json_obj_get(d, k + 1, "unit") : -1;
		if (u < 0 || !json_str_eq(d, u, "us") || json_str_copy(d, k, name, sizeof name) < 0) continue;
		int p = !strcmp(name, "fetch_latency") ? 3 : strstr(name, "fetch") ? 2 : strstr(name, "latency") ? 1 : 0;
		if (p > pref) { pick = k + 1; pref = p; }
	}
	int b = pick >= 0 ? json_obj_get(d, pick, "b") : -1;
	if (b < 0 || d->tok[b].type != JSON_ARRAY) return;
	for (int e = json_first(d, b); e >= 0 && s->nb < TOP_MAX_BUCKETS; e = json_next_elem(d, b, e)) {
		if (d->tok[e].type != JSON_INT || d->tok[e].ival < 0) { s->nb = 0; return; }
		s->le[s->nb] = s->nb >= HISTO_LAST ? INFINITY : ldexp(1.0, s->nb);
		s->b[s->nb++] = (uint64_t)d->tok[e].ival;
	}
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static void take_sample(struct top *tp, struct top_sample *s)
{
	struct fedctl *fc = tp->fc;
	const char *run_dir = cfg_str(&fc->cfg, "node", "run_dir");
	sample_free(s);
	s->mono = mono_ms();
	s->wall = now_ms();
	int timeout = tp->interval < 1000 ? (int)tp->interval : 1000;
	tp->sup_live = fedsup_live(run_dir);
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		struct top_stage *t = &s->st[i];
		const char *name = stage_in_flow(i)->name;
		struct frame f;
		int saved = fc->json;
		fc->json = 1;                       /* no "not running" line: the view says down */
		int r = fedctl_request(fc, name, FT_STATS_REQ, "", 0, &f, timeout);
		fc->json = saved;
		if (tp->sup_live) read_sup(run_dir, name, t);
		else t->starts = -1;
		if (r < 0) continue;
		if (f.type != FT_STATS) {
			snprintf(tp->lastmsg, sizeof tp->lastmsg, "%s answered a stats request with a %s frame", name,
			         frame_type_name(f.type));
			frame_free(&f);
			continue;
		}
		t->payload = malloc(f.len + 1);
		if (t->payload) {
			memcpy(t->payload, f.payload, f.len);
			t->payload[f.len] = 0;
			if (json_parse(&t->d, t->payload, f.len, 16) == 0 && t->d.tok[0].type == JSON_OBJECT) {
				t->up = 1;
				int p = json_obj_get(&t->d, 0, "pid"), u = json_obj_get(&t->d, 0, "uptime_s");
				t->pid = p >= 0 ? (long long)t->d.tok[p].ival : 0;
				t->uptime = u >= 0 ? (long long)t->d.tok[u].ival : 0;
			} else {
				snprintf(tp->lastmsg, sizeof tp->lastmsg, "%s: unreadable stats frame", name);
			}
		}
		frame_free(&f);
	}
	read_histo(s);

	struct store *st = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(st, 1);
	for (size_t k = 0; k < NTABS; k++) {
		size_t e;
		s->tab[k] = store_entries(t, st, top_tabs[k].db, &e) == 0 ? (long long)e : -1;
	}
	for (size_t i = 0; i < fc->cfg.npeers && i < TOP_MAX_PEERS; i++) {
		const char *pn = fc->cfg.peers[i].name;
		struct top_peer *p = &s->peer[i];
		char b8[16], health[1024] = "", vc[4096] = "", pin[64] = "";
		p->cursor = fstate_cursor(t, st, pn);
		p->last_seen = fstate_get(t, st, pn, "last_seen", b8, sizeof b8) == 8 ? (long long)be64_get((unsigned char *)b8) : 0;
		snprintf(p->reason, sizeof p->reason, "%s", p->last_seen ? "ok" : "never_contacted");
		struct json_doc d = {0};
		if (fstate_get(t, st, pn, "health", health, sizeof health) > 0 && json_parse(&d, health, strlen(health), 4) == 0) {
			int r = json_obj_get(&d, 0, "reason");
			if (r >= 0) json_str_copy(&d, r, p->reason, sizeof p->reason);
		}
		if (!strcmp(fc->cfg.peers[i].mode, "paused")) snprintf(p->reason, sizeof p->reason, "paused");
		if (fstate_get(t, st, pn, "node_id", pin, sizeof pin) > 0 && fstate_get(t, st, pn, "vclock", vc, sizeof vc) > 0
		    && json_parse(&d, vc, strlen(vc), 4) == 0 && d.tok[0].type == JSON_OBJECT) {
			int c = json_obj_get(&d, 0, pin);
			if (c >= 0 && d.tok[c].type == JSON_INT && d.tok[c].ival > 0) p->caught_up_at = (uint64_t)d.tok[c].ival;
		}
		json_doc_free(&d);
	}
	if (!s->nb) {
		struct store_iter it;
		store_iter_open(&it, t, st, DB_SERVER_HEALTH, NULL, 0);
		while (store_iter_next(&it) == 1 && s->nlat < TOP_MAX_LAT) {
			const char *sv;
			size_t sl;
			struct health_rec h;
			if (store_health_row(&it.k, &it.v, &sv, &sl, &h) == 0 && h.latency_ms > 0)
				s->lat[s->nlat++] = h.latency_ms;
		}
		store_iter_close(&it);
		if (s->nlat > 1) qsort(s->lat, s->nlat, sizeof s->lat[0], cmp_ll);
	}
	MDB_envinfo ei;
	MDB_stat es;
	if (mdb_env_info(st->env, &ei) == 0 && mdb_env_stat(st->env, &es) == 0) {
		s->used = (unsigned long long)(ei.me_last_pgno + 1) * es.ms_psize;
		s->map = (unsigned long long)ei.me_mapsize;
	}
	mdb_txn_abort(t);
	char path[600], info[128];
	struct stat sb;
	snprintf(path, sizeof path, "%s/data.mdb", st->dir);
	s->file = stat(path, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
	s->full = store_full_marker(st->dir, info, sizeof info);
}

/* ---- derived values ---- */

/* Per second, from the previous sample; NAN if unknown. A counter that
 * went down, or a new pid, restarted from zero. */
static double rate_of(const struct top *tp, const char *stage, const char *group, const char *name)
{
	if (tp->nsamples < 2) return NAN;
	const struct top_sample *c = &tp->s[tp->cur], *p = &tp->s[!tp->cur];
	int ix = stage_ix(stage);
	long long v = stat_num(c, ix, group, name), w = stat_num(p, ix, group, name);
	double dt = (double)(c->mono - p->mono) / 1000.0;
	if (v < 0 || dt <= 0) return NAN;
	if (w < 0 || w > v || c->st[ix].pid != p->st[ix].pid) w = 0;
	return (double)(v - w) / dt;
}

static long long restarts(const struct top *tp, int ix)
{
	const struct top_stage *t = &tp->s[tp->cur].st[ix];
	if (t->starts >= 0) return t->starts > 0 ? t->starts - 1 : 0;
	return tp->observed[ix];
}

/* Fetch outcomes over the last interval (whole run when nothing moved):
 * ok / (ok + not_found + no_candidates + timeout + bad_answers). */
static double fetch_success(const struct top *tp)
{
	static const char *const fail[] = { "not_found", "no_candidates", "timeout", "bad_answers" };
	const struct top_sample *c = &tp->s[tp->cur];
	double ok = rate_of(tp, "fetchd", "counters", "ok"), bad = 0;
	for (size_t i = 0; i < 4; i++) { double r = rate_of(tp, "fetchd", "counters", fail[i]); if (!isnan(r)) bad += r; }
	if (!isnan(ok) && ok + bad > 0) return 100.0 * ok / (ok + bad);
	long long o = stat_of(c, "fetchd", "counters", "ok"), b = 0;
	for (size_t i = 0; i < 4; i++) { long long v = stat_of(c, "fetchd", "counters", fail[i]); if (v > 0) b += v; }
	return o >= 0 && o + b > 0 ? 100.0 * (double)o / (double)(o + b) : NAN;
}

/* p50 and p99 in ms; *src says from what. */
static void fetch_latency(const struct top *tp, double *p50, double *p99, const char **src)
{
	const struct top_sample *c = &tp->s[tp->cur], *p = &tp->s[!tp->cur];
	*p50 = *p99 = NAN;
	if (c->nb) {
		uint64_t d[TOP_MAX_BUCKETS];
		uint64_t n = 0;
		int same = tp->nsamples > 1 && p->nb && c->st[stage_ix("fetchd")].pid == p->st[stage_ix("fetchd")].pid;
		for (int i = 0; i < c->nb; i++) {
			uint64_t prev = same && i < p->nb ? p->b[i] : 0;
			d[i] = c->b[i] >= prev ? c->b[i] - prev : c->b[i];
			n += d[i];
		}
		const uint64_t *use = n ? d : c->b;
		*src = n ? "fetchd histogram, last interval" : "fetchd histogram, since start";
		*p50 = top_quantile(c->le, use, (size_t)c->nb, 0.50) / 1000.0;
		*p99 = top_quantile(c->le, use, (size_t)c->nb, 0.99) / 1000.0;
		return;
	}
	*src = "servers' smoothed latency (server_health)";
	if (!c->nlat) return;
	*p50 = (double)c->lat[(c->nlat - 1) * 50 / 100];
	*p99 = (double)c->lat[(c->nlat - 1) * 99 / 100];
}

/* Events a peer has that we have not pulled: syncd's gauge
 * lag_events.<peer> (the peer's head minus our cursor at its last answer),
 * else head - cursor when its peers stats give the head; else 0 when it is
 * long-polling (caught up) or its last answer caught us up (the clock
 * stored then is our cursor); else -1. *secs: syncd's lag_s.<peer> (seconds
 * since we were last caught up), -1 if it has none. */
static long long peer_lag(const struct top *tp, size_t i, const char **phase, long long *secs)
{
	const struct top_sample *c = &tp->s[tp->cur];
	const struct top_peer *p = &c->peer[i];
	int ix = stage_ix("syncd");
	*phase = "-";
	*secs = -1;
	if (ix < 0 || !c->st[ix].up) return -1;
	char g[128];
	snprintf(g, sizeof g, "lag_s.%s", tp->fc->cfg.peers[i].name);
	*secs = stat_num(c, ix, "gauges", g);
	snprintf(g, sizeof g, "lag_events.%s", tp->fc->cfg.peers[i].name);
	long long gauge = stat_num(c, ix, "gauges", g);
	const struct json_doc *d = &c->st[ix].d;
	int ps = json_obj_get(d, 0, "peers");
	int o = ps >= 0 && d->tok[ps].type == JSON_OBJECT ? json_obj_get(d, ps, tp->fc->cfg.peers[i].name) : -1;
	if (o < 0 || d->tok[o].type != JSON_OBJECT) return gauge;
	int ph = json_obj_get(d, o, "phase"), hd = json_obj_get(d, o, "head"), fl = json_obj_get(d, o, "failures");
	static char phs[16];
	if (ph >= 0 && json_str_copy(d, ph, phs, sizeof phs) >= 0) *phase = phs;
	if (gauge >= 0) return gauge;
	if (hd >= 0 && d->tok[hd].type == JSON_INT)
		return d->tok[hd].ival > (int64_t)p->cursor ? d->tok[hd].ival - (int64_t)p->cursor : 0;
	if (!strcmp(*phase, "longpoll")) return 0;
	if ((fl < 0 || d->tok[fl].ival == 0) && p->caught_up_at && p->caught_up_at <= p->cursor) return 0;
	return -1;
}

/* ---- formatting ---- */

static void fmt_rate(char *o, size_t cap, double r)
{
	if (isnan(r)) snprintf(o, cap, "-");
	else snprintf(o, cap, "%.1f", r);
}
static void fmt_num(char *o, size_t cap, long long v)
{
	if (v < 0) snprintf(o, cap, "-");
	else snprintf(o, cap, "%lld", v);
}
static void fmt_bytes(char *o, size_t cap, unsigned long long v)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double x = (double)v;
	int i = 0;
	while (x >= 1024 && i < 4) { x /= 1024; i++; }
	if (i) snprintf(o, cap, "%.1f %s", x, u[i]);
	else snprintf(o, cap, "%llu B", v);
}
static void fmt_age(char *o, size_t cap, long long now, long long then)
{
	if (then <= 0) { snprintf(o, cap, "never"); return; }
	long long s = (now - then) / 1000;
	if (s < 0) s = 0;
	if (s < 120) snprintf(o, cap, "%llds ago", s);
	else if (s < 7200) snprintf(o, cap, "%lldm ago", s / 60);
	else snprintf(o, cap, "%lldh ago", s / 3600);
}

/* The events rows: label, stage, counter, a store table (or -1). */
static const struct { const char *label, *stage, *counter; int tab; const char *what; } top_events[] = {
	{ "in",        "syncd",      "events_pulled", 1, "pulled from peers (inbox now)" },
	{ "validated", "validated",  "validated",    -1, "" },
	{ "stored",    "purgatoryd", "stored",        0, "(events table)" },
	{ "held",      "purgatoryd", "held",          2, "(held now)" },
	{ "rejected",  "purgatoryd", "rejected",      5, "(rejects kept)" },
	{ "fetched",   "purgatoryd", "fetched_pdus", -1, "missing events fetched" },
	{ "published", "feedpump",   "published",     3, "(outbox)" },
};
#define NEVENTS (sizeof top_events / sizeof top_events[0])

/* Only printable ASCII reaches the terminal: names come from the config,
 * reasons from the store; a control byte could drive the terminal. */
static void sanitize(char *s)
{
	for (; *s; s++) if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) *s = '?';
}

#define LINES_MAX 128
struct screen { char line[LINES_MAX][256]; int n; };

static void put(struct screen *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct screen *sc, const char *fmt, ...)
{
	if (sc->n >= LINES_MAX) return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sc->line[sc->n], sizeof sc->line[0], fmt, ap);
	va_end(ap);
	sanitize(sc->line[sc->n++]);
}

static void render(struct top *tp, struct screen *sc)
{
	const struct top_sample *c = &tp->s[tp->cur];
	struct config *cfg = &tp->fc->cfg;
	char when[32], a[32], b[32], d[32], e[32];
	time_t now = (time_t)(c->wall / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
	sc->n = 0;
	put(sc, "fedctl top  %s  %s  every %.1fs%s", cfg_str(cfg, "node", "server_name"), when,
	    (double)tp->interval / 1000.0, tp->kbd ? "  (q quits)" : "");
	put(sc, "%s", "");
	put(sc, "%-11s %-5s %-8s %-10s %-9s %-6s %s", "STAGE", "STATE", "PID", "UPTIME", "RESTARTS", "QUEUE", "FEDSUP");
	int any_observed = 0;
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct top_stage *t = &c->st[i];
		char up[64] = "-", pid[24] = "-";
		if (t->up) {
			snprintf(up, sizeof up, "%lldh%02lldm%02llds", t->uptime / 3600, t->uptime / 60 % 60, t->uptime % 60);
			snprintf(pid, sizeof pid, "%lld", t->pid);
		}
		if (t->starts < 0) any_observed = 1;
		fmt_num(a, sizeof a, t->up ? stage_queue(c, (int)i) : -1);
		snprintf(b, sizeof b, "%lld%s", restarts(tp, (int)i), t->starts < 0 ? "*" : "");
		put(sc, "%-11s %-5s %-8s %-10s %-9s %-6s %s", stage_in_flow(i)->name, t->up ? "up" : "DOWN", pid, up, b, a,
		    t->sup_state[0] ? t->sup_state : "-");
	}
	if (any_observed)
		put(sc, "%s", "  * restarts seen by this view (pid changes): no fedsup state for the stage");
	put(sc, "%s", "");
	put(sc, "%-10s %9s %12s %10s  %s", "EVENTS", "PER SEC", "SINCE START", "IN STORE", "");
	for (size_t k = 0; k < NEVENTS; k++) {
		fmt_rate(a, sizeof a, rate_of(tp, top_events[k].stage, "counters", top_events[k].counter));
		fmt_num(b, sizeof b, stat_of(c, top_events[k].stage, "counters", top_events[k].counter));
		fmt_num(d, sizeof d, top_events[k].tab >= 0 ? c->tab[top_events[k].tab] : -1);
		put(sc, "%-10s %9s %12s %10s  %s", top_events[k].label, a, b, top_events[k].tab >= 0 ? d : "", top_events[k].what);
	}
	put(sc, "%s", "");
	{
		char q[200];
		size_t l = 0;
		for (size_t k = 0; k < NTABS && l < sizeof q; k++) {
			fmt_num(a, sizeof a, c->tab[k]);
			l += (size_t)snprintf(q + l, sizeof q - l, " %s %s", top_tabs[k].name, a);
		}
		put(sc, "QUEUES    %s", q);
	}
	put(sc, "%s", "");
	put(sc, "%-12s %-16s %-9s %10s %8s %7s %9s %s", "PEER", "HEALTH", "PHASE", "CURSOR", "LAG", "LAG s", "PULLED/s", "LAST ANSWER");
	if (!cfg->npeers) put(sc, "%s", "(no [peer] sections)");
	for (size_t i = 0; i < cfg->npeers && i < TOP_MAX_PEERS; i++) {
		const struct top_peer *p = &c->peer[i];
		const char *phase;
		long long secs, lag = peer_lag(tp, i, &phase, &secs);
		char ls[24];
		fmt_num(ls, sizeof ls, secs);
		double r = NAN;
		if (tp->nsamples > 1 && c->mono > tp->s[!tp->cur].mono) {
			uint64_t was = tp->s[!tp->cur].peer[i].cursor;
			r = p->cursor >= was ? (double)(p->cursor - was) * 1000.0 / (double)(c->mono - tp->s[!tp->cur].mono) : NAN;
		}
		fmt_num(a, sizeof a, lag);
		fmt_rate(b, sizeof b, r);
		fmt_age(d, sizeof d, c->wall, p->last_seen);
		put(sc, "%-12s %-16s %-9s %10llu %8s %7s %9s %s", cfg->peers[i].name, p->reason, phase,
		    (unsigned long long)p->cursor, a, ls, b, d);
	}
	if (cfg->npeers > TOP_MAX_PEERS) put(sc, "(%zu more peers: fedctl peers)", cfg->npeers - TOP_MAX_PEERS);
	put(sc, "%s", "");
	double p50, p99, ok = fetch_success(tp);
	const char *src;
	fetch_latency(tp, &p50, &p99, &src);
	fmt_rate(a, sizeof a, rate_of(tp, "fetchd", "counters", "requests"));
	if (isnan(ok)) snprintf(b, sizeof b, "-");
	else snprintf(b, sizeof b, "%.1f%%", ok);
	if (isnan(p50)) snprintf(d, sizeof d, "-"); else snprintf(d, sizeof d, "%.1fms", p50);
	if (isnan(p99)) snprintf(e, sizeof e, "-"); else snprintf(e, sizeof e, "%.1fms", p99);
	put(sc, "FETCH      requests/s %s  success %s  p50 %s  p99 %s  (%s)", a, b, d, e, src);
	char used[24], map[24], file[24], max[24];
	fmt_bytes(used, sizeof used, c->used);
	fmt_bytes(map, sizeof map, c->map);
	fmt_bytes(file, sizeof file, c->file);
	fmt_bytes(max, sizeof max, (unsigned long long)tp->fc->st.map_max);
	put(sc, "STORE      used %s of a %s map (%.1f%%), file %s, ceiling %s%s", used, map,
	    c->map ? 100.0 * (double)c->used / (double)c->map : 0.0, file, max,
	    c->full ? "  STORE FULL (writers wait; [node] map_size_max)" : "");
	if (tp->lastmsg[0]) {
		put(sc, "%s", "");
		put(sc, "last message: %s", tp->lastmsg);
	}
}

/* One line of key=value pairs, the same keys in the same order every time. */
static void line_out(struct top *tp)
{
	const struct top_sample *c = &tp->s[tp->cur];
	struct config *cfg = &tp->fc->cfg;
	struct buf o;
	buf_init(&o);
	char when[32], a[32];
	time_t now = (time_t)(c->wall / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_printf(&o, "time=%s", when);
	int observed = 0;
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct top_stage *t = &c->st[i];
		const char *n = stage_in_flow(i)->name;
		fmt_num(a, sizeof a, t->up ? stage_queue(c, (int)i) : -1);
		buf_printf(&o, " %s=%s %s_pid=", n, t->up ? "up" : "down", n);
		if (t->up) buf_printf(&o, "%lld", t->pid); else buf_adds(&o, "-");
		buf_printf(&o, " %s_restarts=%lld %s_queue=%s", n, restarts(tp, (int)i), n, a);
		if (t->starts < 0) observed = 1;
	}
	buf_printf(&o, " restarts_from=%s", observed ? "pids" : "fedsup");
	for (size_t k = 0; k < NEVENTS; k++) {
		fmt_rate(a, sizeof a, rate_of(tp, top_events[k].stage, "counters", top_events[k].counter));
		buf_printf(&o, " %s_per_s=%s", top_events[k].label, a);
		fmt_num(a, sizeof a, stat_of(c, top_events[k].stage, "counters", top_events[k].counter));
		buf_printf(&o, " %s_count=%s", top_events[k].label, a);
	}
	for (size_t k = 0; k < NTABS; k++) {
		fmt_num(a, sizeof a, c->tab[k]);
		buf_printf(&o, " db_%s=%s", top_tabs[k].name, a);
	}
	for (size_t i = 0; i < cfg->npeers && i < TOP_MAX_PEERS; i++) {
		const char *phase, *n = cfg->peers[i].name;
		long long secs;
		char ls[24];
		fmt_num(a, sizeof a, peer_lag(tp, i, &phase, &secs));
		fmt_num(ls, sizeof ls, secs);
		buf_printf(&o, " peer_%s_health=%s peer_%s_cursor=%llu peer_%s_lag=%s peer_%s_lag_s=%s peer_%s_last_answer_ms=", n,
		           c->peer[i].reason, n, (unsigned long long)c->peer[i].cursor, n, a, n, ls, n);
		if (c->peer[i].last_seen) buf_printf(&o, "%lld", c->wall - c->peer[i].last_seen); else buf_adds(&o, "-");
	}
	double p50, p99, ok = fetch_success(tp);
	const char *src;
	fetch_latency(tp, &p50, &p99, &src);
	fmt_rate(a, sizeof a, rate_of(tp, "fetchd", "counters", "requests"));
	buf_printf(&o, " fetch_requests_per_s=%s", a);
	fmt_rate(a, sizeof a, ok);
	buf_printf(&o, " fetch_success_pct=%s", a);
	fmt_rate(a, sizeof a, p50);
	buf_printf(&o, " fetch_p50_ms=%s", a);
	fmt_rate(a, sizeof a, p99);
	buf_printf(&o, " fetch_p99_ms=%s fetch_latency_from=%s", a, c->nb ? "histogram" : "server_health");
	buf_printf(&o, " store_used_bytes=%llu store_map_bytes=%llu store_file_bytes=%llu store_map_max_bytes=%llu",
	           c->used, c->map, c->file, (unsigned long long)tp->fc->st.map_max);
	fmt_rate(a, sizeof a, c->map ? 100.0 * (double)c->used / (double)c->map : NAN);
	buf_printf(&o, " map_use_pct=%s store_full=%d\n", a, c->full);
	char *s = o.data;
	for (size_t i = 0; i + 1 < o.len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) s[i] = '?';
	fwrite(o.data, 1, o.len, stdout);
	fflush(stdout);
	buf_free(&o);
}

/* ---- the terminal ---- */

static struct termios saved_tio;
static int tio_saved, screen_ours, saved_err = -1;
static FILE *err_file;          /* stderr's captor (struct top's errf) */
static long *err_seen;          /* how much of it was read */
static int sigpipe_fd[2] = { -1, -1 };

static void term_restore(void)
{
	if (screen_ours) {
		/* below the view, cursor shown, attributes reset */
		static const char bye[] = "\033[0m\033[?25h\r\n";
		if (write(1, bye, sizeof bye - 1) < 0) { /* the terminal is gone */ }
		screen_ours = 0;
	}
	if (tio_saved) {
		tcsetattr(0, TCSAFLUSH, &saved_tio);
		tio_saved = 0;
	}
	if (saved_err >= 0) {
		fflush(stderr);
		dup2(saved_err, 2);
		close(saved_err);
		saved_err = -1;
		/* what was written since the view last looked (say, the message
		 * of an exit from inside a sample) goes to the real stderr now */
		if (err_file && err_seen && fseek(err_file, *err_seen, SEEK_SET) == 0) {
			char b[512];
			size_t n;
			while ((n = fread(b, 1, sizeof b, err_file)) > 0)
				if (write(2, b, n) < 0) break;
			*err_seen = ftell(err_file);
		}
	}
}

static void on_sig(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;
	if (sigpipe_fd[1] >= 0 && write(sigpipe_fd[1], &c, 1) < 0) { /* pipe full: a wakeup is pending */ }
	errno = e;
}

static int term_raw(void)
{
	if (tcgetattr(0, &saved_tio) < 0) return -1;
	struct termios t = saved_tio;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);   /* ISIG kept: ^C, ^Z and ^\ stay signals */
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(0, TCSAFLUSH, &t) < 0) return -1;
	tio_saved = 1;
	return 0;
}

static void term_size(struct top *tp)
{
	struct winsize ws;
	tp->rows = 24, tp->cols = 80;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		tp->rows = ws.ws_row;
		tp->cols = ws.ws_col;
	}
}

/* What requests wrote on stderr since last time: the last line is shown. */
static void catch_errors(struct top *tp)
{
	if (!tp->errf) return;
	fflush(stderr);
	if (fseek(tp->errf, tp->erroff, SEEK_SET) < 0) return;
	char line[512];
	while (fgets(line, sizeof line, tp->errf)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0]) snprintf(tp->lastmsg, sizeof tp->lastmsg, "%.199s", line);
	}
	tp->erroff = ftell(tp->errf);
	if (tp->erroff > 1 << 20) { /* keep it small */
		if (ftruncate(fileno(tp->errf), 0) == 0) tp->erroff = 0;
		rewind(tp->errf);
	}
}

static void draw(struct top *tp, int clear)
{
	struct screen *sc = malloc(sizeof *sc);
	if (!sc) return;
	render(tp, sc);
	struct buf o;
	buf_init(&o);
	buf_adds(&o, clear ? "\033[H\033[2J" : "\033[H");
	int rows = tp->rows;
	if (sc->n > rows) {             /* a short terminal (24 rows): no blank lines */
		int k = 0;
		for (int i = 0; i < sc->n; i++)
			if (sc->line[i][0]) memmove(sc->line[k++], sc->line[i], sizeof sc->line[0]);
		sc->n = k;
	}
	for (int i = 0; i < sc->n && i < rows; i++) {
		int w = (int)strlen(sc->line[i]);
		if (w > tp->cols) w = tp->cols;
		/* the last row without a newline: a newline there would scroll */
		buf_printf(&o, "%.*s\033[K%s", w, sc->line[i], i + 1 < rows && i + 1 < sc->n ? "\r\n" : "");
	}
	buf_adds(&o, "\033[J");
	size_t off = 0;
	while (off < o.len) {
		ssize_t w = write(1, o.data + off, o.len - off);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) break;
		off += (size_t)w;
	}
	buf_free(&o);
	free(sc);
}

static void print_once(struct top *tp)
{
	struct screen *sc = malloc(sizeof *sc);
	if (!sc) return;
	render(tp, sc);
	for (int i = 0; i < sc->n; i++) printf("%s\n", sc->line[i]);
	fflush(stdout);
	free(sc);
}

static void usage_top(FILE *f)
{
	fprintf(f, "usage: fedctl top [--interval DUR] [--count N] [--once]\n"
	           "  A live view of the node, refreshed every DUR (default 1s): q quits.\n"
	           "  Not on a terminal: one key=value line per refresh.\n"
	           "  --count N  stop after N refreshes;  --once  print the full view once (after\n"
	           "             one interval, so rates are known) and exit\n");
}

static int cmd_top(struct fedctl *fc, int argc, char **argv)
{
	static struct top tp;
	memset(&tp, 0, sizeof tp);
	tp.fc = fc;
	tp.interval = 1000;
	long long count = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			tp.interval = cfg_parse_ms(argv[++i]);
			if (tp.interval < 100 || tp.interval > 3600000) {
				fprintf(stderr, "fedctl top: --interval %s: a duration from 100ms to 1h, like 500ms, 2s\n", argv[i]);
				return EXIT_CONFIG;
			}
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			char *end;
			count = strtoll(argv[++i], &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "fedctl top: --count %s: a whole number >= 1\n", argv[i]);
				return EXIT_CONFIG;
			}
		} else if (!strcmp(argv[i], "--once")) {
			tp.once = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage_top(stdout);
			return 0;
		} else {
			fprintf(stderr, "fedctl top: unknown argument %s\n", argv[i]);
			usage_top(stderr);
			return EXIT_CONFIG;
		}
	}
	if (fc->cfg.npeers > TOP_MAX_PEERS)
		fprintf(stderr, "fedctl top: %zu peers; the first %d are shown\n", fc->cfg.npeers, TOP_MAX_PEERS);
	fedctl_store(fc, 1);                      /* fails here, plainly, before the screen is ours */
	tp.tty = !tp.once && isatty(1);
	if (pipe(sigpipe_fd) < 0) { perror("fedctl top: pipe"); return 1; }
	for (int k = 0; k < 2; k++) {
		fcntl(sigpipe_fd[k], F_SETFL, fcntl(sigpipe_fd[k], F_GETFL) | O_NONBLOCK);
		fcntl(sigpipe_fd[k], F_SETFD, FD_CLOEXEC);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sig;
	sigemptyset(&sa.sa_mask);
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT };
	for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
		if (tp.tty || sigs[k] == SIGINT || sigs[k] == SIGTERM || sigs[k] == SIGHUP) sigaction(sigs[k], &sa, NULL);
	/* Signals wait while a sample is taken (an interrupted poll would show
	 * a stage down) and are seen, through the pipe, in the wait below. */
	sigset_t held, open_set;
	sigemptyset(&held);
	for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaddset(&held, sigs[k]);
	atexit(term_restore);
	if (tp.tty) {
		tp.kbd = isatty(0) && term_raw() == 0;
		term_size(&tp);
		screen_ours = 1;
		static const char hide[] = "\033[?25l";
		if (write(1, hide, sizeof hide - 1) < 0) return 1;
		/* a stage's "did not answer" would scribble on the view: stderr goes
		 * to a file while the screen is ours, its last line shown */
		tp.errf = tmpfile();
		if (tp.errf) {
			fflush(stderr);
			saved_err = dup(2);
			if (saved_err < 0 || dup2(fileno(tp.errf), 2) < 0) { fclose(tp.errf); tp.errf = NULL; }
			err_file = tp.errf;
			err_seen = &tp.erroff;
		}
	}
	long long shown = 0;
	int clear = 1, quit = 0, rc = 0;
	long long next = mono_ms();
	tp.cur = 1;
	while (!quit) {
		tp.cur = !tp.cur;
		sigprocmask(SIG_BLOCK, &held, &open_set);
		take_sample(&tp, &tp.s[tp.cur]);
		if (tp.nsamples < 2) tp.nsamples++;
		if (tp.nsamples > 1)
			for (size_t i = 0; i < STAGE_COUNT; i++) {
				const struct top_stage *c = &tp.s[tp.cur].st[i], *p = &tp.s[!tp.cur].st[i];
				if (c->up && p->pid && c->pid != p->pid) tp.observed[i]++;
			}
		/* a stage seen down keeps its last pid, so down-then-up counts once */
		if (tp.nsamples > 1)
			for (size_t i = 0; i < STAGE_COUNT; i++)
				if (!tp.s[tp.cur].st[i].up) tp.s[tp.cur].st[i].pid = tp.s[!tp.cur].st[i].pid;
		catch_errors(&tp);
		if (tp.once) {
			if (tp.nsamples > 1) { print_once(&tp); sigprocmask(SIG_SETMASK, &open_set, NULL); break; }
		} else if (tp.tty) {
			draw(&tp, clear);
			clear = 0;
			shown++;
		} else {
			line_out(&tp);
			shown++;
		}
		sigprocmask(SIG_SETMASK, &open_set, NULL);
		if (count > 0 && shown >= count) break;
		next += tp.interval;
		/* wait for the next sample, a key or a signal */
		for (;;) {
			long long left = next - mono_ms();
			if (left <= 0) break;
			struct pollfd pf[2] = { { sigpipe_fd[0], POLLIN, 0 }, { 0, POLLIN, 0 } };
			int r = poll(pf, tp.kbd ? 2 : 1, (int)left);
			if (r < 0 && errno != EINTR) { quit = 1; rc = 1; break; }
			if (r <= 0) continue;
			if (pf[0].revents & POLLIN) {
				unsigned char sg[16];
				ssize_t n = read(sigpipe_fd[0], sg, sizeof sg);
				for (ssize_t k = 0; k < n; k++) {
					if (sg[k] == SIGINT || sg[k] == SIGTERM || sg[k] == SIGHUP) quit = 1;
					else if (sg[k] == SIGWINCH) { term_size(&tp); draw(&tp, 1); }
					else if (sg[k] == SIGTSTP) {
						/* ^Z: give the terminal back as it was, stop, and take it again */
						int kbd = tio_saved;
						term_restore();
						signal(SIGTSTP, SIG_DFL);
						raise(SIGTSTP);
						sigaction(SIGTSTP, &sa, NULL);
						if (kbd) term_raw();
						fflush(stderr);
						if (tp.errf) { saved_err = dup(2); dup2(fileno(tp.errf), 2); }
						screen_ours = 1;
						static const char hide[] = "\033[?25l";
						if (write(1, hide, sizeof hide - 1) < 0) { quit = 1; break; }
						term_size(&tp);
						draw(&tp, 1);
					} else if (sg[k] == SIGCONT) { term_size(&tp); draw(&tp, 1); }
				}
			}
			if (quit) break;
			if (tp.kbd && (pf[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
				char k[32];
				ssize_t n = read(0, k, sizeof k);
				if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) tp.kbd = 0;   /* no keyboard any more */
				for (ssize_t j = 0; j < n; j++) {
					if (k[j] == 'q' || k[j] == 'Q') quit = 1;
					else if (k[j] == ' ' || k[j] == 'r') next = mono_ms();   /* refresh now */
					else if (k[j] == '\f') { term_size(&tp); draw(&tp, 1); }  /* ^L */
				}
			}
			if (quit) break;
		}
		if (next < mono_ms() - tp.interval) next = mono_ms();   /* a slow sample: no burst of catch-up samples */
	}
	term_restore();
	if (tp.errf) { fclose(tp.errf); tp.errf = NULL; err_file = NULL; err_seen = NULL; }
	if (tp.lastmsg[0] && tp.tty) fprintf(stderr, "fedctl top: last message: %s\n", tp.lastmsg);
	sample_free(&tp.s[0]);
	sample_free(&tp.s[1]);
	close(sigpipe_fd[0]);
	close(sigpipe_fd[1]);
	sigpipe_fd[0] = sigpipe_fd[1] = -1;
	return rc;
}
FEDCTL_COMMAND(top_cmd, "top", "top [--interval DUR] [--count N] [--once]",
               "live view: stages, event rates, queues, peer lag, fetch latency, store", cmd_top)
