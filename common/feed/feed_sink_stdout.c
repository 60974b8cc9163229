/* feed_sink_stdout.c: JSON lines on stdout, for shell pipelines. The control
 * version is the stream position (a pipe has no sequence of its own). Each
 * line goes out with write(2) before the row can be marked published, so a
 * reader that leaves (EPIPE) never costs an event: the drainer stops
 * cleanly and the unwritten rows stay pending. When stdout is a regular
 * file (`feedpump --sink stdout >>feed.jsonl`) the batch is also
 * fdatasync'ed before any row of it is reported published, so a crash of
 * the machine cannot lose lines the outbox counts as delivered. A pipe or
 * terminal has nothing to sync: delivery there ends at the kernel's buffer. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "feed/feed_sink.h"
#include "core/frame.h"
#include "core/buf.h"

struct stdout_sink { int fd; int is_file; struct buf line; };
static struct stdout_sink the_stdout;

static int stdout_open(struct feed_sink *s, const struct feed_opts *o, char *err, size_t errlen)
{
	signal(SIGPIPE, SIG_IGN);     /* EPIPE from write() instead of a silent death */
	the_stdout.fd = o->fd > 0 ? o->fd : 1;
	struct stat st;
	the_stdout.is_file = fstat(the_stdout.fd, &st) == 0 && S_ISREG(st.st_mode);
	buf_init(&the_stdout.line);
	s->priv = &the_stdout;
	return 0;
}


static void stdout_append(struct feed_sink *s, struct feed_event *ev, size_t n)
{
	struct stdout_sink *o = s->priv;
	size_t i;
	for (i = 0; i < n; i++) {
		ev[i].control_version = ev[i].pos;
		buf_reset(&o->line);
		feed_event_json(&o->line, &ev[i]);
		buf_addc(&o->line, '\n');
		if (frame_write_all(o->fd, o->line.data, o->line.len) < 0) {
			int e = errno;
			ev[i].rc = (e == EPIPE) ? FEED_ERR_CLOSED : FEED_ERR_SINK;
			snprintf(ev[i].err, sizeof ev[i].err, "stdout: %s", strerror(e));
			break;
		}
	}
	for (i++; i < n; i++) { ev[i].rc = FEED_ERR_SINK; snprintf(ev[i].err, sizeof ev[i].err, "not attempted"); }
	if (o->is_file && n > 0 && ev[0].rc == FEED_OK && fdatasync(o->fd) < 0) {
		/* Not on disk for sure: nothing of this batch counts as published.
		 * The retry writes the lines again (the event ID is the key a
		 * reader dedups on, as with every sink). */
		int e = errno;
		for (i = 0; i < n; i++) {
			if (ev[i].rc != FEED_OK) break;
			ev[i].rc = FEED_ERR_SINK;
			snprintf(ev[i].err, sizeof ev[i].err, "stdout: fdatasync: %s", strerror(e));
		}
	}
}

static void stdout_close(struct feed_sink *s)
{
	struct stdout_sink *o = s->priv;
	buf_free(&o->line);
}

/* A pipe whose reader left reports POLLERR on the write end: notice it even
 * when there is nothing to write (`feedpump --sink stdout | head -n 5`). */
static int stdout_closed(struct feed_sink *s)
{
	struct stdout_sink *o = s->priv;
	struct pollfd p = { .fd = o->fd, .events = 0 };
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

const struct feed_sink_ops feed_sink_stdout_ops = {
	.name = "stdout", .help = "JSON lines on stdout (control version = stream position)",
	.open = stdout_open, .append = stdout_append, .close = stdout_close, .closed = stdout_closed,
};
FEED_SINK_REGISTER(feed_sink_stdout_ops)
