/* feed_source.h: the consumer side of the feed seam. poll(since) yields
 * events with control version > since, ascending; ack(event_id) confirms an
 * event after the consumer committed its apply (a no-op for sources without
 * a broker-side cursor). Backends register by name like sinks:
 *   file:DIR      a file-sink directory (control version = the file's number)
 *   nats:SUBJECT  JetStream pull consumer (durable if opts.nats_durable is
 *                 set: ack after apply, redelivery after ack_wait)
 *   local         this node's stream (events/stream tables; cv = stream pos) */
#ifndef FP_FEED_SOURCE_H
#define FP_FEED_SOURCE_H
#include <stddef.h>
#include <stdint.h>
#include "feed/feed_sink.h"
#include "store/store.h"

struct feed_item {
	uint64_t cv;
	char     event_id[256];
	char    *json;        /* the feed's JSON line (no newline), control_version set */
	size_t   json_len;
	int      mac;         /* the fleet feed (opts mac_key set): 1 a member's valid MAC, -1 none or
	                       * a wrong one; 0 not checked */
};

struct feed_source;
struct feed_source_ops {
	const char *name;
	/* arg = what follows "name:" in the spec ("" if none); st = the node's
	 * store (read-only; NULL when not available). */
	int  (*open)(struct feed_source *s, const char *arg, const struct feed_opts *o,
	             struct store *st, char *err, size_t errlen);
	/* Fill up to max items (caller frees with feed_items_free). Waits up to
	 * wait_ms for the first one where the backend can wait. 0 or -1 + err. */
	int  (*poll)(struct feed_source *s, uint64_t since, size_t max, long long wait_ms,
	             struct feed_item **items, size_t *n, char *err, size_t errlen);
	int  (*ack)(struct feed_source *s, const char *event_id, char *err, size_t errlen);
	void (*close)(struct feed_source *s);
};
struct feed_source { const struct feed_source_ops *ops; void *priv; };

void feed_source_register(const struct feed_source_ops *ops);
#define FEED_SOURCE_REGISTER(var) \
	__attribute__((constructor)) static void var##_register(void) { feed_source_register(&var); }

/* spec "file:DIR" | "nats:SUBJECT" | "local"; NULL with err (listing the
 * available sources if the name is unknown). */
struct feed_source *feed_source_open(const char *spec, const struct feed_opts *o,
                                     struct store *st, char *err, size_t errlen);
int  feed_source_poll(struct feed_source *s, uint64_t since, size_t max, long long wait_ms,
                      struct feed_item **items, size_t *n, char *err, size_t errlen);
int  feed_source_ack(struct feed_source *s, const char *event_id, char *err, size_t errlen);
void feed_source_close(struct feed_source *s);
void feed_items_free(struct feed_item *items, size_t n);

#endif
