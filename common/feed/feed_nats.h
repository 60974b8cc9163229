/* feed_nats.h: the NATS connection shared by the nats sink and source:
 * connect with bounded timeout and endless reconnects, a JetStream context,
 * and the stream ensured (created with the subject and duplicate window if
 * missing). */
#ifndef FP_FEED_NATS_H
#define FP_FEED_NATS_H
#include <nats/nats.h>
#include "feed/feed_sink.h"

struct feed_nats {
	natsConnection *nc;
	jsCtx          *js;
	natsOptions    *opts;
};
/* 0, or -1 with a clear message (URL, what failed). ack_handler may be
 * NULL. wait_stream: retry finding or creating the stream while the cluster
 * forms or recovers (up to max(30 s, 10 nats_timeout), blocking: for a
 * caller whose event loop is not running yet); 0: one attempt. */
int  feed_nats_connect(struct feed_nats *n, const struct feed_opts *o, jsPubAckHandler ack,
                       void *closure, int wait_stream, char *err, size_t errlen);
void feed_nats_close(struct feed_nats *n);
#endif
