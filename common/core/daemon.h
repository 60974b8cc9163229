/* daemon.h: the one skeleton every fedpipe daemon runs in (Postfix style:
 * a daemon's main() is a few lines handing its ops to daemon_main()).
 * Promises: options -c CONFIG, -d (foreground; the default when not under
 * a supervisor), -v, -n (check config, print "configuration OK", exit 0),
 * --stdio, --help, --version, plus the daemon's own long options; exit codes
 * 0 / 100 (bad config) / 111 (temporary); SIGTERM/SIGINT end the loop
 * cleanly through the loop itself; SIGHUP loads and checks the config anew
 * (a bad one is refused and the running one kept), then calls
 * on_reload(d, old) with d->cfg already the new one and old freed right after
 * the hook returns: nothing may keep pointers into a configuration across a
 * reload (copy what you keep, or look it up by name again); the LMDB environment is opened after option parsing (never
 * before a fork); readiness is announced only after the environment is open
 * and the socket is bound: sd_notify READY=1 (NOTIFY_SOCKET), and a newline
 * written to the fd named by env FP_READY_FD (s6 style, used by fedsup);
 * watchdog pings when WATCHDOG_USEC is set; STATS_REQ frames are answered
 * generically with the stage's counters and gauges. */
#ifndef FP_DAEMON_H
#define FP_DAEMON_H
#include <getopt.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include "core/config.h"
#include "core/frame.h"
#include "core/buf.h"

struct daemon;
struct conn;
struct store;

/* How the skeleton opens and closes the LMDB environment without knowing
 * it: the store library supplies one (store_for_daemon, store/store.h).
 * open returns 0 or an exit code, having logged why; reload applies the
 * reloadable store keys after SIGHUP. */
struct daemon_store {
	int  (*open)(struct daemon *d);
	void (*reload)(struct daemon *d);
	void (*close)(struct daemon *d);
};

struct daemon_ops {
	const char *name;            /* stage name: socket <run_dir>/<name>.sock */
	const char *summary;         /* one line for --help */
	const char *usage;           /* extra option lines for --help (may be NULL) */
	const struct option *longopts;   /* extra long options (may be NULL) */
	const char *shortopts;       /* extra short options (may be NULL) */
	/* Called for each extra option; return 0, or -1 for a usage error (exit 100). */
	int  (*option)(struct daemon *d, int opt, const char *arg);
	const struct daemon_store *store;  /* &store_for_daemon: open the LMDB
	                                    * environment read-write before init */
	int   no_listen;             /* daemon mode: do not bind <name>.sock */
	/* After config + store, before readiness. Return 0, or an exit code. */
	int  (*init)(struct daemon *d);
	/* A complete frame arrived on c (ownership of f stays with the caller). */
	void (*on_frame)(struct daemon *d, struct conn *c, struct frame *f);
	void (*on_connect)(struct daemon *d, struct conn *c);   /* outgoing conn up */
	void (*on_close)(struct daemon *d, struct conn *c);     /* any conn gone */
	/* After SIGHUP: d->cfg is the new, checked configuration; old is freed
	 * when this returns. Apply what changed (peers, limits, ACL). */
	void (*on_reload)(struct daemon *d, const struct config *old);
	void (*on_turn)(struct daemon *d);   /* end of each loop turn: flush batches */
	void (*on_stdin_eof)(struct daemon *d);  /* --stdio: input ended (default: stop) */
	void (*stats)(struct daemon *d, struct buf *json);  /* extra members: ,"k":v */
	void (*fini)(struct daemon *d);
};

struct daemon {
	const struct daemon_ops *ops;
	struct config   cfg;
	const char     *cfg_path;
	struct event_base *base;
	struct store   *st;          /* set when ops->store */
	int             stdio;       /* --stdio mode */
	int             verbose;
	int             argc;        /* non-option arguments */
	char          **argv;
	struct conn    *stdin_conn;  /* --stdio: frames in on 0, replies out on 1 */
	uint32_t        frame_max;
	long long       started_ms;
	void           *priv;        /* the stage's own state */
	int             exit_code;
	void           *_ds;         /* daemon.c's private state */
};

int  daemon_main(int argc, char **argv, const struct daemon_ops *ops);
void daemon_stop(struct daemon *d, int exit_code);   /* end the loop */

/* Connections. A conn is either accepted on our socket, stdin/stdout in
 * --stdio mode, or an outgoing client conn to another stage that reconnects
 * by itself (every reconnect_ms) and calls on_connect when up. */
struct conn *daemon_connect(struct daemon *d, const char *stage);
int   conn_up(const struct conn *c);
/* Queue a frame; returns 0, or -1 if the conn is down or its output queue is
 * over the high-water mark (the caller keeps the data; LMDB is the queue).
 * A client conn accepts frames while its connect is in progress too; they
 * are lost if that connect fails, so anything that matters must also be
 * recoverable from LMDB (the inbox, the outbox, a retry timer). */
int   conn_send(struct conn *c, int type, uint16_t flags, uint64_t id,
                const void *p, size_t n);
size_t conn_outq(const struct conn *c);     /* bytes queued, not yet written */
const char *conn_peer(const struct conn *c);/* "stage:<name>" / "client#N" / "stdio" */
void  conn_set_user(struct conn *c, void *u);
void *conn_user(const struct conn *c);
void  conn_close(struct conn *c);           /* drop an accepted conn */

/* Where a stage's output goes: in --stdio mode stdout, otherwise the named
 * next stage's socket (an auto-reconnecting conn made on first use). */
int   daemon_emit(struct daemon *d, const char *next_stage, int type, uint16_t flags,
                  uint64_t id, const void *p, size_t n);

/* Counters and gauges reported in the stats frame and /metrics. */
uint64_t *daemon_counter(struct daemon *d, const char *name);
int64_t  *daemon_gauge(struct daemon *d, const char *name);
/* A histogram (core/histo.h) by name, made on first use with its unit
 * ("us": a latency, exposed in seconds; "1": a count such as a batch
 * size); lives as long as the daemon. The stats frame carries the
 * histograms as "histograms":{"name":{"unit":..,"sum":..,"b":[..]}}.
 * Names, like counter and gauge names, may end in ".<label value>" (a
 * peer, a reason): served's metric table maps the prefix to a family and
 * the suffix to its label. */
struct histo;
struct histo *daemon_histo(struct daemon *d, const char *name, const char *unit);
void  daemon_stats_json(struct daemon *d, struct buf *out);

/* Read what fd has (up to max bytes) into in with plain readv calls of up to
 * 64 KiB, stopping at a short read: libevent 2.1's own reads stop at 4 KiB.
 * For a bufferevent's input, unfreeze its end around the call. Returns the
 * bytes read; EOF and errors are left for the next read to see. */
struct evbuffer;
size_t daemon_read_burst(struct evbuffer *in, int fd, size_t max);

/* A repeating timer on the daemon's loop. */
struct event *daemon_timer(struct daemon *d, long long every_ms,
                           void (*cb)(struct daemon *, void *), void *arg);

#endif
