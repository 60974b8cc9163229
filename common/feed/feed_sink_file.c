/* feed_sink_file.c: a directory as the feed. One file per event, named by
 * its zero-padded control version and event ID, so `ls` is the feed in
 * order. Control version = a per-directory monotonic sequence (highest name
 * + 1). Each file is written under a temporary name, fsynced and renamed;
 * the directory is fsynced once per batch, before the batch reports success.
 * The index (event ID -> control version) is one scan of the directory when
 * the first batch arrives (after the drainer holds its lease, so it is never
 * stale), then kept in memory: a retry of an ID finds its file for free. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "feed/feed_sink.h"
#include "core/buf.h"
#include "core/hmap.h"
#include "core/xalloc.h"

/* The index: event ID -> control version (core/hmap), each entry owning
 * a copy of its ID. */
struct idx_ent { struct hmap_node hn; uint64_t cv; char id[]; };
struct file_sink {
	char        dir[1024];
	int         dirfd;
	int         lockfd;
	int         loaded;
	uint64_t    max_cv;
	struct hmap idx;
	struct buf  body;
};

static struct idx_ent *idx_find_h(struct file_sink *f, const char *id, uint64_t h)
{
	HMAP_FOR_HASH(&f->idx, h, n) {
		struct idx_ent *e = HMAP_ENTRY(n, struct idx_ent, hn);
		if (strcmp(e->id, id) == 0) return e;
	}
	return NULL;
}

static struct idx_ent *idx_find(struct file_sink *f, const char *id)
{
	return idx_find_h(f, id, hmap_hash_str(id));
}

static void idx_put(struct file_sink *f, const char *id, uint64_t cv)
{
	uint64_t h = hmap_hash_str(id);
	struct idx_ent *e = idx_find_h(f, id, h);
	if (e) { if (cv < e->cv) e->cv = cv; return; }   /* keep the first (lowest) */
	size_t n = strlen(id);
	e = xmalloc(sizeof *e + n + 1);
	memcpy(e->id, id, n + 1);
	e->cv = cv;
	hmap_insert(&f->idx, &e->hn, h);
	if (cv > f->max_cv) f->max_cv = cv;
}

/* Scan the directory: build the index, drop temporaries left by a crash. */
static int file_load(struct file_sink *f, char *err, size_t errlen)
{
	DIR *d = opendir(f->dir);
	if (!d) { snprintf(err, errlen, "%.150s: %s", f->dir, strerror(errno)); return -1; }
	struct dirent *de;
	char id[512];
	uint64_t cv;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, ".tmp.", 5) == 0) { unlinkat(f->dirfd, de->d_name, 0); continue; }
		if (feed_file_parse(de->d_name, &cv, id, sizeof id) == 0)
			idx_put(f, id, cv);
	}
	closedir(d);
	f->loaded = 1;
	return 0;
}

static int file_open(struct feed_sink *s, const struct feed_opts *o, char *err, size_t errlen)
{
	if (!o->dir || !*o->dir) { snprintf(err, errlen, "file sink: no directory ([feed] dir or --dir)"); return -1; }
	struct file_sink *f = xcalloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "%s", o->dir);
	f->lockfd = -1;
	if (mkdir(f->dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "file sink: cannot create directory %s: %s", f->dir, strerror(errno));
		goto fail;
	}
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		snprintf(err, errlen, "file sink: cannot open directory %s: %s", f->dir, strerror(errno));
		goto fail;
	}
	/* Prove we can write here now, not at the first event (root ignores
	 * mode bits, so access(2) would lie). */
	f->lockfd = openat(f->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f->lockfd < 0) {
		snprintf(err, errlen, "file sink: directory %s is not writable: %s", f->dir, strerror(errno));
		close(f->dirfd);
		goto fail;
	}
	buf_init(&f->body);
	s->priv = f;
	return 0;
fail:
	free(f);
	return -1;
}

static int write_event_file(struct file_sink *f, struct feed_event *e, uint64_t cv)
{
	char tmp[600], name[600];
	snprintf(tmp, sizeof tmp, ".tmp.%s", e->event_id);
	feed_file_name(name, sizeof name, cv, e->event_id);
	buf_reset(&f->body);
	e->control_version = cv;
	feed_event_json(&f->body, e);
	buf_addc(&f->body, '\n');
	int fd = openat(f->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) goto err;
	const char *p = f->body.data; size_t n = f->body.len;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) { if (errno == EINTR) continue; goto err_close; }
		p += w; n -= (size_t)w;
	}
	if (fsync(fd) < 0) goto err_close;
	if (close(fd) < 0) { fd = -1; goto err_unlink; }
	if (renameat(f->dirfd, tmp, f->dirfd, name) < 0) { fd = -1; goto err_unlink; }
	return 0;
err_close:;
	int e0 = errno;
	close(fd);
	errno = e0;
err_unlink:
	e0 = errno;
	unlinkat(f->dirfd, tmp, 0);
	errno = e0;
err:
	snprintf(e->err, sizeof e->err, "file sink %.150s: %s", f->dir, strerror(errno));
	return -1;
}

static void file_append(struct feed_sink *s, struct feed_event *ev, size_t n)
{
	struct file_sink *f = s->priv;
	size_t i = 0, wrote = 0;
	if (!f->loaded && file_load(f, ev[0].err, sizeof ev[0].err) < 0) {
		ev[0].rc = FEED_ERR_SINK;
		i = 1;
		goto rest;
	}
	for (; i < n; i++) {
		struct feed_event *e = &ev[i];
		if (strchr(e->event_id, '/') || e->event_id[0] == '.' || strlen(e->event_id) > 255) {
			e->rc = FEED_ERR_EVENT;
			snprintf(e->err, sizeof e->err, "event ID cannot be a file name");
			i++;
			break;
		}
		struct idx_ent *x = idx_find(f, e->event_id);
		if (x) { e->control_version = x->cv; continue; }   /* a retry: same file */
		uint64_t cv = f->max_cv + 1;
		if (write_event_file(f, e, cv) < 0) { e->rc = FEED_ERR_SINK; i++; break; }
		idx_put(f, e->event_id, cv);
		e->control_version = cv;
		wrote++;
	}
	/* One directory fsync makes every rename of the batch durable before
	 * any of them is reported published. */
	if (wrote && fsync(f->dirfd) < 0) {
		for (size_t j = 0; j < n; j++)
			if (ev[j].rc == FEED_OK) {
				ev[j].rc = FEED_ERR_SINK;
				snprintf(ev[j].err, sizeof ev[j].err, "file sink %.150s: fsync: %s", f->dir, strerror(errno));
			}
	}
rest:
	for (; i < n; i++) { ev[i].rc = FEED_ERR_SINK; snprintf(ev[i].err, sizeof ev[i].err, "not attempted"); }
}

static void file_close(struct feed_sink *s)
{
	struct file_sink *f = s->priv;
	if (!f) return;
	struct hmap_iter it;
	struct hmap_node *n;
	hmap_iter_init(&it, &f->idx);
	while ((n = hmap_iter_next(&it))) free(HMAP_ENTRY(n, struct idx_ent, hn));
	hmap_free(&f->idx);
	buf_free(&f->body);
	if (f->lockfd >= 0) close(f->lockfd);
	close(f->dirfd);
	free(f);
}

const struct feed_sink_ops feed_sink_file_ops = {
	.name = "file", .help = "one file per event in [feed] dir (control version = per-directory sequence)",
	.open = file_open, .append = file_append, .close = file_close,
};
FEED_SINK_REGISTER(feed_sink_file_ops)
