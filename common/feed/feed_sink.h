/* feed_sink.h: the producer side of the feed seam. A sink publishes stored
 * events, in stream order, and stamps each with a control version (the
 * sink's own monotonic sequence: the file name's number, the JetStream
 * stream sequence, ...). Sinks are chosen by name from a registry; each
 * backend registers itself from a constructor (FEED_SINK_REGISTER), so a
 * new backend touches no caller.
 * Promises every backend keeps: the event ID is the idempotent-publish key,
 * a retry with the same ID resolves to the same control version; append
 * reports a result per event, in order; a failure is classified so the
 * drainer knows whether to blame the row (dead-letter after max attempts)
 * or the sink (retry forever with backoff). */
#ifndef FP_FEED_SINK_H
#define FP_FEED_SINK_H
#include <stddef.h>
#include <stdint.h>
#include "core/config.h"
#include "feed/nats_opts.h"

struct fleet_key;

enum feed_rc {
	FEED_OK = 0,
	FEED_ERR_SINK = 1,    /* the sink is unavailable (I/O, connection): retry, never dead-letter */
	FEED_ERR_EVENT = 2,   /* this event was refused (too big, missing bytes): counts to dead */
	FEED_ERR_CLOSED = 3,  /* the sink's reader went away (EPIPE): stop cleanly */
};

#define FEED_ERR_MAX 200      /* last_error bytes kept per outbox row */

/* Backend options resolved from the config ([feed] section) or flags. */
struct feed_opts {
	const char *dir;            /* file sink/source directory */
	const char *nats_url;
	const char *nats_subject;
	const char *nats_stream;
	const char *nats_durable;   /* source: durable consumer name (NULL: ephemeral) */
	long long   nats_timeout_ms;
	long long   nats_dup_window_ms;
	long long   nats_ack_wait_ms;
	int         nats_replicas;  /* stream replicas at creation (0 or 1: one) */
	struct nats_sec nats_sec;   /* credentials and TLS ([feed] or [fleet] nats_*) */
	/* The fleet feed: the sink adds header FLEET_MAC_HEADER = fleet_mac of
	 * (Nats-Msg-Id, body) under this key (feed/fleet_mac.h); NULL: none. */
	const struct fleet_key *mac_key;
	int         fd;             /* stdout sink: output fd (default 1) */
	/* storage for names made up rather than read (feed_opts_fleet) */
	char        subject_buf[256], durable_buf[256];
};
void feed_opts_from_config(struct feed_opts *o, const struct config *cfg);

/* One event handed to a sink, with the sink's verdict filled in. */
struct feed_event {
	uint64_t    pos;              /* stream position (the outbox key) */
	const char *event_id;         /* NUL-terminated */
	const char *room_id;  size_t room_len;
	const char *pdu;      size_t pdu_len;   /* canonical PDU bytes */
	/* results */
	int         rc;               /* enum feed_rc */
	uint64_t    control_version;
	char        err[FEED_ERR_MAX + 56];
};

struct feed_sink;
struct feed_sink_ops {
	const char *name;
	const char *help;             /* one line for --help and error messages */
	/* Open with options; 0, or -1 with a clear message in err. */
	int  (*open)(struct feed_sink *s, const struct feed_opts *o, char *err, size_t errlen);
	/* Publish ev[0..n) in order; set rc/control_version/err on each. A
	 * backend may stop at the first failure and mark the rest FEED_ERR_SINK
	 * with "not attempted". */
	void (*append)(struct feed_sink *s, struct feed_event *ev, size_t n);
	void (*close)(struct feed_sink *s);
	/* Optional: 1 once the sink's reader is gone (a closed pipe). */
	int  (*closed)(struct feed_sink *s);
	/* Optional asynchronous publishing (both or neither); a sink with them
	 * is pipelined by feedpump: several batches in flight at once, results
	 * written back oldest first. submit starts publishing ev[0..n) in order
	 * and returns at once; events it could not send are marked as append
	 * marks them, the others have rc FEED_PENDING and belong to the sink
	 * until wait released them. wait(block): wait (bounded by the sink's
	 * timeout) until every event of the span has a result, mark the rest
	 * failed, release the span, 1. wait(!block): 1 and release if every
	 * event has a result, else 0. Spans are waited for in submit order. */
	void (*submit)(struct feed_sink *s, struct feed_event *ev, size_t n);
	int  (*wait)(struct feed_sink *s, struct feed_event *ev, size_t n, int block);
};
#define FEED_PENDING (-1)
struct feed_sink {
	const struct feed_sink_ops *ops;
	void *priv;
};

void feed_sink_register(const struct feed_sink_ops *ops);
#define FEED_SINK_REGISTER(var) \
	__attribute__((constructor)) static void var##_register(void) { feed_sink_register(&var); }

/* Open the named sink. NULL with err set; *unknown = 1 if no such name
 * (err then lists the available sinks: a startup error, exit 100). */
struct feed_sink *feed_sink_open(const char *name, const struct feed_opts *o,
                                 int *unknown, char *err, size_t errlen);
void feed_sink_append(struct feed_sink *s, struct feed_event *ev, size_t n);
void feed_sink_close(struct feed_sink *s);
int  feed_sink_closed(struct feed_sink *s);
/* 1 if the sink publishes asynchronously (submit/wait). */
int  feed_sink_async(const struct feed_sink *s);
/* Asynchronous sinks: see submit/wait above. Synchronous sinks: submit is
 * append, wait returns 1. */
void feed_sink_submit(struct feed_sink *s, struct feed_event *ev, size_t n);
int  feed_sink_wait(struct feed_sink *s, struct feed_event *ev, size_t n, int block);
const char *feed_sink_name(const struct feed_sink *s);
/* "nop, file, stdout, nats" */
void feed_sink_names(char *out, size_t cap);

/* Helpers shared by sinks and sources. */
/* Copy src into dst as at most max bytes of valid UTF-8 (invalid bytes become
 * '?', truncation on a character boundary); dst has room for max+1. */
size_t feed_clip_utf8(char *dst, const char *src, size_t srclen, size_t max);
/* The feed's JSON form of one event (one line, no newline):
 * {"control_version":N,"event_id":"..","pdu":<pdu>,"room_id":"..","stream_pos":N} */
struct buf;
void feed_event_json(struct buf *out, const struct feed_event *e);
/* File name of an event in a file-feed directory: %020llu_<event_id>.json */
void feed_file_name(char *out, size_t cap, uint64_t cv, const char *event_id);
/* Parse such a name: 0 with cv and id (into idbuf), or -1. */
int  feed_file_parse(const char *name, uint64_t *cv, char *idbuf, size_t idcap);

#endif
