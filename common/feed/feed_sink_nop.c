/* feed_sink_nop.c: the disabled feed (single-node default). Every event is
 * accepted and stamped with its stream position, so the outbox never backs
 * up behind a feed nobody reads. */
#include "feed/feed_sink.h"

static int nop_open(struct feed_sink *s, const struct feed_opts *o, char *err, size_t errlen)
{ return 0; }

static void nop_append(struct feed_sink *s, struct feed_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ev[i].control_version = ev[i].pos;
}

const struct feed_sink_ops feed_sink_nop_ops = {
	.name = "nop", .help = "feed disabled: rows are marked published (control version = stream position)",
	.open = nop_open, .append = nop_append,
};
FEED_SINK_REGISTER(feed_sink_nop_ops)
