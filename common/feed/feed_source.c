/* feed_source.c: the source registry and the file and local sources (the
 * nats source is in feed_source_nats.c). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "feed/feed_source.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "store/events.h"

extern const struct feed_source_ops feed_source_nats_ops;
const void *const feed_source_builtin_anchor[] = { &feed_source_nats_ops };

#define MAX_SOURCES 16
static const struct feed_source_ops *sources[MAX_SOURCES];
static int nsources;

void feed_source_register(const struct feed_source_ops *ops)
{
	for (int i = 0; i < nsources; i++)
		if (strcmp(sources[i]->name, ops->name) == 0) return;
	if (nsources < MAX_SOURCES) sources[nsources++] = ops;
}

struct feed_source *feed_source_open(const char *spec, const struct feed_opts *o,
                                     struct store *st, char *err, size_t errlen)
{
	(void)feed_source_builtin_anchor;
	const char *colon = strchr(spec, ':');
	size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
	const char *arg = colon ? colon + 1 : "";
	for (int i = 0; i < nsources; i++) {
		if (strlen(sources[i]->name) != nl || strncmp(sources[i]->name, spec, nl)) continue;
		struct feed_source *s = xcalloc(1, sizeof *s);
		s->ops = sources[i];
		if (s->ops->open(s, arg, o, st, err, errlen) < 0) { free(s); return NULL; }
		return s;
	}
	char names[256] = "";
	size_t off = 0;
	for (int i = 0; i < nsources && off < sizeof names; i++)
		off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", sources[i]->name);
	snprintf(err, errlen, "unknown feed source \"%.*s\" (available: %s)", (int)nl, spec, names);
	return NULL;
}

int feed_source_poll(struct feed_source *s, uint64_t since, size_t max, long long wait_ms,
                     struct feed_item **items, size_t *n, char *err, size_t errlen)
{
	*items = NULL; *n = 0;
	return s->ops->poll(s, since, max, wait_ms, items, n, err, errlen);
}

int feed_source_ack(struct feed_source *s, const char *event_id, char *err, size_t errlen)
{
	return s->ops->ack ? s->ops->ack(s, event_id, err, errlen) : 0;
}

void feed_source_close(struct feed_source *s)
{
	if (!s) return;
	if (s->ops->close) s->ops->close(s);
	free(s);
}

void feed_items_free(struct feed_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) free(items[i].json);
	free(items);
}

/* ---- file: a file-sink directory ---- */

struct file_src { char dir[1024]; };
struct name_cv { uint64_t cv; char *name; };

static int cmp_cv(const void *a, const void *b)
{
	const struct name_cv *x = a, *y = b;
	return x->cv < y->cv ? -1 : x->cv > y->cv;
}

static int filesrc_open(struct feed_source *s, const char *arg, const struct feed_opts *o,
                        struct store *st, char *err, size_t errlen)
{
	const char *dir = *arg ? arg : o->dir;
	if (!dir || !*dir) { snprintf(err, errlen, "file source: no directory (file:DIR or [feed] dir)"); return -1; }
	if (access(dir, R_OK | X_OK) < 0) { snprintf(err, errlen, "file source %.200s: %s", dir, strerror(errno)); return -1; }
	struct file_src *f = xcalloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "%s", dir);
	s->priv = f;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) return NULL;
	struct buf b;
	buf_init(&b);
	char tmp[8192];
	size_t r;
	while ((r = fread(tmp, 1, sizeof tmp, fp)) > 0) buf_add(&b, tmp, r);
	fclose(fp);
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r')) b.data[--b.len] = 0;
	*len = b.len;
	return buf_steal(&b);
}

static int filesrc_poll(struct feed_source *s, uint64_t since, size_t max, long long wait_ms,
                        struct feed_item **items, size_t *n, char *err, size_t errlen)
{
	struct file_src *f = s->priv;
	DIR *d = opendir(f->dir);
	if (!d) { snprintf(err, errlen, "file source %.200s: %s", f->dir, strerror(errno)); return -1; }
	struct name_cv *v = NULL;
	size_t nv = 0, cap = 0;
	struct dirent *de;
	char id[256];
	uint64_t cv;
	while ((de = readdir(d))) {
		if (feed_file_parse(de->d_name, &cv, id, sizeof id) < 0 || cv <= since) continue;
		if (nv == cap) {
			cap = cap ? cap * 2 : 256;
			v = xreallocarray(v, cap, sizeof *v);
		}
		v[nv].cv = cv;
		v[nv].name = xstrdup(de->d_name);
		nv++;
	}
	closedir(d);
	if (nv > 1) qsort(v, nv, sizeof *v, cmp_cv);   /* v is NULL when nothing is new */
	size_t take = nv < max ? nv : max;
	struct feed_item *it = take ? xcalloc(take, sizeof *it) : NULL;
	size_t got = 0;
	for (size_t i = 0; i < take; i++) {
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", f->dir, v[i].name);
		it[got].json = read_file(path, &it[got].json_len);
		if (!it[got].json) continue;      /* vanished meanwhile */
		it[got].cv = v[i].cv;
		feed_file_parse(v[i].name, &cv, it[got].event_id, sizeof it[got].event_id);
		got++;
	}
	for (size_t i = 0; i < nv; i++) free(v[i].name);
	free(v);
	*items = it; *n = got;
	return 0;
}

static void filesrc_close(struct feed_source *s) { free(s->priv); }

static const struct feed_source_ops feed_source_file_ops = {
	.name = "file", .open = filesrc_open, .poll = filesrc_poll, .close = filesrc_close,
};
FEED_SOURCE_REGISTER(feed_source_file_ops)

/* ---- local: this node's stream ---- */

static int localsrc_open(struct feed_source *s, const char *arg, const struct feed_opts *o,
                         struct store *st, char *err, size_t errlen)
{
	if (!st) { snprintf(err, errlen, "local source: the node's store is not open"); return -1; }
	s->priv = st;
	return 0;
}

static int localsrc_poll(struct feed_source *s, uint64_t since, size_t max, long long wait_ms,
                         struct feed_item **items, size_t *n, char *err, size_t errlen)
{
	struct store *st = s->priv;
	MDB_txn *t = store_begin(st, 1);
	struct store_stream ss;
	if (store_stream_open(&ss, t, st, since + 1)) {
		store_stream_close(&ss);
		mdb_txn_abort(t);
		snprintf(err, errlen, "stream cursor");
		return -1;
	}
	struct feed_item *it = xcalloc(max ? max : 1, sizeof *it);
	size_t got = 0;
	struct buf b;
	buf_init(&b);
	while (got < max && store_stream_next(&ss) == 1) {
		if (ss.id_len >= sizeof it[0].event_id) continue;
		struct feed_event e = {0};
		char id[256];
		memcpy(id, ss.event_id, ss.id_len);
		id[ss.id_len] = 0;
		struct event_rec er;
		if (store_event_get(t, st, id, &er) != 0) continue;
		e.pos = e.control_version = ss.pos;
		e.event_id = id;
		e.room_id = er.room_id; e.room_len = er.room_len;
		e.pdu = er.pdu; e.pdu_len = er.pdu_len;
		buf_reset(&b);
		feed_event_json(&b, &e);
		it[got].cv = e.pos;
		snprintf(it[got].event_id, sizeof it[got].event_id, "%s", id);
		it[got].json_len = b.len;
		it[got].json = buf_steal(&b);
		got++;
	}
	buf_free(&b);
	store_stream_close(&ss);
	mdb_txn_abort(t);
	*items = it; *n = got;
	return 0;
}

static const struct feed_source_ops feed_source_local_ops = {
	.name = "local", .open = localsrc_open, .poll = localsrc_poll,
};
FEED_SOURCE_REGISTER(feed_source_local_ops)
