/* daemon.c: the shared daemon skeleton (see daemon.h): options, config,
 * signals through the loop, LMDB open after option parsing, the stage's
 * Unix socket, --stdio, framed connections with reconnect, readiness
 * (sd_notify and an s6-style fd), watchdog, per-turn hook, stats frames. */
#include "core/daemon.h"
#include "core/histo.h"
#include "core/log.h"
#include "core/sdnotify.h"
#include "core/xalloc.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define OUTQ_HIGH   (64u << 20)  /* a conn holding more than this refuses frames */
#define STDIO_PAUSE (16u << 20)  /* --stdio: stop reading input while output lags */
/* libevent reads 16 KiB at a time by default: a dozen 1 KiB events per loop
 * turn, so per-turn batches (one LMDB commit and fsync each) stay tiny. Read
 * up to this much per callback instead. */
#define READ_CHUNK  (256u << 10)
#define MAX_STATS   512     /* syncd: two lag gauges per peer */
#define MAX_HISTOS  16

enum conn_kind { CONN_ACCEPTED, CONN_STDIO, CONN_CLIENT };

struct conn {
	struct daemon *d;
	enum conn_kind kind;
	struct bufferevent *in, *out;   /* same bufferevent except in --stdio */
	char   name[64];
	char   stage[32];               /* CONN_CLIENT: the stage connected to */
	int    up;
	int    connecting;              /* CONN_CLIENT: connect in progress */
	int    closing;
	int    logged_down;
	int    own_write;               /* EV_WRITE off: flush_conns writes at turn end */
	int    dirty;                   /* on the dstate dirty list */
	size_t in_left;                 /* input bytes left after the last read callback */
	struct event *retry;
	void  *user;
	struct conn *next, *dirty_next;
};

struct stat_ent { char name[48]; int64_t v; };

struct dstate {
	struct conn *conns;
	struct conn *dirty;             /* conns with output queued this turn */
	struct evconnlistener *listener;
	char   sock_path[512];
	struct event *sig_term, *sig_int, *sig_hup, *watchdog;
	int    stop;
	int    stdin_eof;
	unsigned next_client;
	struct stat_ent counters[MAX_STATS]; int ncounters;
	struct stat_ent gauges[MAX_STATS];   int ngauges;
	/* the per-frame counters, found once (slots never move or go away) */
	uint64_t *c_frames_in, *c_frames_out, *c_frames_unsent;
	struct { char name[48]; struct histo *h; } histos[MAX_HISTOS]; int nhistos;
	long long reconnect_ms;
};

static struct dstate *DS(struct daemon *d) { return (struct dstate *)d->_ds; }

/* *slot, looked up by name the first time (the counter appears in the
 * stats at its first use, as any other). */
static uint64_t *counter_at(struct daemon *d, uint64_t **slot, const char *name)
{
	if (!*slot) *slot = daemon_counter(d, name);
	return *slot;
}

/* ---------- connections ---------- */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void out_write_cb(struct bufferevent *bev, void *arg);
static void conn_parse_frames(struct conn *c, struct bufferevent *bev, struct evbuffer *in);

static struct conn *conn_new(struct daemon *d, enum conn_kind kind, const char *name)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->kind = kind;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->next = DS(d)->conns;
	DS(d)->conns = c;
	return c;
}

static void conn_unlink(struct conn *c)
{
	struct dstate *ds = DS(c->d);
	for (struct conn **pp = &ds->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) { *pp = c->next; break; }
}

static void conn_free_bevs(struct conn *c)
{
	if (c->out && c->out != c->in) bufferevent_free(c->out);
	if (c->in) bufferevent_free(c->in);
	c->in = c->out = NULL;
}

static void conn_destroy_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	conn_free_bevs(c);
	if (c->retry) event_free(c->retry);
	free(c);
}

void conn_close(struct conn *c)
{
	if (c->closing) return;
	c->closing = 1;
	c->up = 0;
	if (c->d->ops->on_close) c->d->ops->on_close(c->d, c);
	conn_unlink(c);
	if (c->in) bufferevent_disable(c->in, EV_READ | EV_WRITE);
	/* Freed on the next turn: the caller may still be inside a callback of c. */
	if (event_base_once(c->d->base, -1, EV_TIMEOUT, conn_destroy_cb, c, NULL) < 0)
		log_panic("event_base_once failed: cannot free a closed connection");
}

int conn_up(const struct conn *c) { return c && c->up && !c->closing; }
const char *conn_peer(const struct conn *c) { return c->name; }
void conn_set_user(struct conn *c, void *u) { c->user = u; }
void *conn_user(const struct conn *c) { return c->user; }

size_t conn_outq(const struct conn *c)
{
	return c && c->out ? evbuffer_get_length(bufferevent_get_output(c->out)) : 0;
}

int conn_send(struct conn *c, int type, uint16_t flags, uint64_t id, const void *p, size_t n)
{
	/* While a client conn is connecting, frames queue in its bufferevent
	 * (lost with it if the connect fails: LMDB, not the socket, is the
	 * durable queue), so the first daemon_emit after daemon_connect works. */
	if (!c || c->closing || !(c->up || c->connecting) || !c->out || n > UINT32_MAX) return -1;
	if (c->kind != CONN_STDIO && conn_outq(c) > OUTQ_HIGH) return -1;
	unsigned char h[FRAME_HDR_LEN];
	frame_hdr_encode(h, (uint32_t)n, type, flags, id);
	struct evbuffer *ob = bufferevent_get_output(c->out);
	if (evbuffer_add(ob, h, sizeof(h)) < 0 || (n && evbuffer_add(ob, p, n) < 0)) return -1;
	if (c->kind == CONN_STDIO && c->in && conn_outq(c) > STDIO_PAUSE)
		bufferevent_disable(c->in, EV_READ);   /* resumed by out_write_cb */
	if (c->own_write && !c->dirty) {
		c->dirty = 1;
		c->dirty_next = DS(c->d)->dirty;
		DS(c->d)->dirty = c;
	}
	return 0;
}

/* Socket conns write their output themselves, once at the end of each loop
 * turn: everything a turn queued goes out in one writev, and EV_WRITE (two
 * epoll_ctl calls per burst when the bufferevent toggles it) is only turned
 * on when the socket is full; the bufferevent then finishes the job and
 * reports errors through conn_event_cb as before. */
static void flush_conns(struct daemon *d)
{
	struct dstate *ds = DS(d);
	struct conn *c;
	while ((c = ds->dirty) != NULL) {
		ds->dirty = c->dirty_next;
		c->dirty = 0;
		if (c->closing || !c->up || !c->out || !c->own_write) continue;
		struct evbuffer *ob = bufferevent_get_output(c->out);
		evutil_socket_t fd = bufferevent_getfd(c->out);
		evbuffer_unfreeze(ob, 1);       /* only the bufferevent may drain it otherwise */
		while (evbuffer_get_length(ob) > 0 && evbuffer_write(ob, fd) > 0) {}
		evbuffer_freeze(ob, 1);
		if (evbuffer_get_length(ob) > 0) bufferevent_enable(c->out, EV_WRITE);
	}
}

static void own_writes(struct conn *c)
{
	c->own_write = 1;
	bufferevent_disable(c->out, EV_WRITE);
	if (conn_outq(c) > 0 && !c->dirty) {
		c->dirty = 1;
		c->dirty_next = DS(c->d)->dirty;
		DS(c->d)->dirty = c;
	}
}

static void reply_stats(struct daemon *d, struct conn *c, uint64_t id)
{
	struct buf b;
	buf_init(&b);
	daemon_stats_json(d, &b);
	conn_send(c, FT_STATS, FF_REPLY, id, b.data, b.len);
	buf_free(&b);
}

/* libevent 2.1 reads at most 4 KiB per read callback (EVBUFFER_MAX_READ),
 * whatever max_single_read says: about three 1 KiB frames per loop turn, and
 * so an LMDB commit (fsync) per three events downstream. Pull the rest of a
 * burst now, up to READ_CHUNK, so one turn batches what has arrived. When
 * the bufferevent's own read came back short the socket is drained: no
 * further read (and no EAGAIN round trip). Plain read() into reserved
 * space, not evbuffer_read: that one asks FIONREAD first and still caps at
 * 4 KiB. EOF and errors are left for the bufferevent to see on its next read. */
size_t daemon_read_burst(struct evbuffer *in, int fd, size_t max)
{
	size_t got = 0;
	while (got < max) {
		struct evbuffer_iovec v[2];
		int nv = evbuffer_reserve_space(in, 65536, v, 2);
		if (nv <= 0) break;
		struct iovec iov[2];
		size_t want = 0;
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			want += v[i].iov_len;
		}
		ssize_t r = readv(fd, iov, nv);
		if (r <= 0) { evbuffer_commit_space(in, v, 0); break; }
		size_t left = (size_t)r;
		for (int i = 0; i < nv; i++) {
			if (v[i].iov_len > left) v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, nv);
		got += (size_t)r;
		if ((size_t)r < want) break;     /* short read: drained */
	}
	return got;
}

static void read_burst(struct conn *c, struct bufferevent *bev, struct evbuffer *in)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	if (fd < 0 || evbuffer_get_length(in) < c->in_left + 4096) return;
	evbuffer_unfreeze(in, 0);
	daemon_read_burst(in, fd, READ_CHUNK);
	evbuffer_freeze(in, 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	read_burst(c, bev, in);
	conn_parse_frames(c, bev, in);
	if (!c->closing && c->in == bev)
		c->in_left = evbuffer_get_length(in);
}

static void conn_parse_frames(struct conn *c, struct bufferevent *bev, struct evbuffer *in)
{
	struct daemon *d = c->d;
	while (!c->closing) {
		size_t avail = evbuffer_get_length(in);
		if (avail < FRAME_HDR_LEN) break;
		unsigned char h[FRAME_HDR_LEN];
		evbuffer_copyout(in, h, sizeof(h));
		struct frame f;
		const char *why;
		if (frame_hdr_decode(h, d->frame_max, &f, &why) < 0) {
			log_warnx("%s: %s; dropping the connection", c->name, why);
			(*daemon_counter(d, "bad_frames"))++;
			if (c->kind == CONN_STDIO) { daemon_stop(d, EXIT_TEMP); return; }
			conn_close(c);
			return;
		}
		if (avail < FRAME_HDR_LEN + (size_t)f.len) {
			/* Don't wake up for every segment of a large frame. */
			bufferevent_setwatermark(bev, EV_READ, FRAME_HDR_LEN + (size_t)f.len, 0);
			return;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		evbuffer_drain(in, FRAME_HDR_LEN);
		f.payload = xmalloc((size_t)f.len + 1);
		int got = evbuffer_remove(in, f.payload, f.len);
		if (got < 0 || (size_t)got != f.len)
			log_panic("%s: %u bytes counted in the input buffer could not be taken out", c->name, f.len);
		f.payload[f.len] = 0;
		(*counter_at(d, &DS(d)->c_frames_in, "frames_in"))++;
		if (f.type == FT_STATS_REQ)
			reply_stats(d, c, f.id);
		else if (d->ops->on_frame)
			d->ops->on_frame(d, c, &f);
		frame_free(&f);
	}
}

static void schedule_reconnect(struct conn *c);

static void stdio_maybe_finish(struct daemon *d)
{
	struct dstate *ds = DS(d);
	if (ds->stdin_eof && (!d->stdin_conn || conn_outq(d->stdin_conn) == 0) && !ds->stop)
		daemon_stop(d, 0);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct daemon *d = c->d;
	if (what & BEV_EVENT_CONNECTED) {
		c->up = 1;
		c->connecting = 0;
		if (c->logged_down) log_info("connected to %s again", c->stage);
		else log_debug("connected to %s", c->stage);
		c->logged_down = 0;
		own_writes(c);
		if (d->ops->on_connect) d->ops->on_connect(d, c);
		return;
	}
	if (c->kind == CONN_STDIO) {
		if (bev == c->in && (what & BEV_EVENT_EOF)) {
			DS(d)->stdin_eof = 1;
			if (d->ops->on_turn) d->ops->on_turn(d);
			if (d->ops->on_stdin_eof) d->ops->on_stdin_eof(d);
			else stdio_maybe_finish(d);
			return;
		}
		/* Output side gone (e.g. `| head`): nothing more can be delivered. */
		if (bev == c->out) {
			log_info("standard output closed; stopping");
			evbuffer_drain(bufferevent_get_output(c->out), conn_outq(c));
			daemon_stop(d, 0);
			return;
		}
		log_warnx("standard input: read error; stopping");
		daemon_stop(d, EXIT_TEMP);
		return;
	}
	if (c->kind == CONN_CLIENT) {
		int was_up = c->up;
		c->up = 0;
		c->connecting = 0;
		if (!c->logged_down) {
			if (was_up) log_warnx("lost connection to %s; will reconnect", c->stage);
			else log_info("%s is not reachable yet (%s); will keep trying", c->stage,
			              evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			c->logged_down = 1;
		}
		if (was_up && d->ops->on_close) d->ops->on_close(d, c);
		conn_free_bevs(c);
		schedule_reconnect(c);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("%s: connection error: %s", c->name, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_close(c);
}

static void out_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->kind != CONN_STDIO) {
		/* the socket took the rest: writes are ours again */
		if (c->own_write && c->out && conn_outq(c) == 0) bufferevent_disable(c->out, EV_WRITE);
		return;
	}
	if (c->in && !DS(c->d)->stdin_eof && conn_outq(c) < STDIO_PAUSE / 2)
		bufferevent_enable(c->in, EV_READ);
	if (DS(c->d)->stdin_eof && !c->d->ops->on_stdin_eof) stdio_maybe_finish(c->d);
}

static void client_try_connect(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct daemon *d = c->d;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	frame_stage_path(sa.sun_path, sizeof(sa.sun_path), cfg_str(&d->cfg, "node", "run_dir"), c->stage);
	c->in = c->out = bufferevent_socket_new(d->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->in) log_panic("bufferevent_socket_new failed");
	bufferevent_set_max_single_read(c->in, READ_CHUNK);
	bufferevent_set_max_single_write(c->in, READ_CHUNK);
	bufferevent_setcb(c->in, conn_read_cb, out_write_cb, conn_event_cb, c);
	c->own_write = 0;
	c->in_left = 0;
	c->connecting = 1;
	/* EV_WRITE sees the connect */
	if (bufferevent_enable(c->in, EV_READ | EV_WRITE) < 0
	    || bufferevent_socket_connect(c->in, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		c->connecting = 0;
		/* conn_event_cb may already have run and rescheduled. */
		if (c->in) {
			if (!c->logged_down) {
				log_info("%s is not reachable yet (%s); will keep trying", c->stage, strerror(errno));
				c->logged_down = 1;
			}
			conn_free_bevs(c);
			schedule_reconnect(c);
		}
	}
}

static void schedule_reconnect(struct conn *c)
{
	if (!c->retry) c->retry = evtimer_new(c->d->base, client_try_connect, c);
	long long ms = DS(c->d)->reconnect_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	/* a conn that never reconnects would stall the pipeline silently */
	if (!c->retry || evtimer_add(c->retry, &tv) < 0)
		log_panic("cannot arm the reconnect timer for %s", c->stage);
}

struct conn *daemon_connect(struct daemon *d, const char *stage)
{
	for (struct conn *c = DS(d)->conns; c; c = c->next)
		if (c->kind == CONN_CLIENT && !strcmp(c->stage, stage)) return c;
	char name[64];
	snprintf(name, sizeof(name), "stage:%s", stage);
	struct conn *c = conn_new(d, CONN_CLIENT, name);
	snprintf(c->stage, sizeof(c->stage), "%s", stage);
	client_try_connect(-1, 0, c);
	return c;
}

int daemon_emit(struct daemon *d, const char *next_stage, int type, uint16_t flags,
                uint64_t id, const void *p, size_t n)
{
	struct conn *c = d->stdio ? d->stdin_conn : daemon_connect(d, next_stage);
	int rc = conn_send(c, type, flags, id, p, n);
	if (rc == 0) (*counter_at(d, &DS(d)->c_frames_out, "frames_out"))++;
	else (*counter_at(d, &DS(d)->c_frames_unsent, "frames_unsent"))++;
	return rc;
}

/* [node] socket_group as a gid: 0 and *gid set, 1 when empty, -1 unknown. */
static int socket_gid(const struct daemon *d, gid_t *gid)
{
	const char *g = cfg_str(&d->cfg, "node", "socket_group");
	if (!*g) return 1;
	struct group *gr = getgrnam(g);
	if (gr) { *gid = gr->gr_gid; return 0; }
	if (strspn(g, "0123456789") == strlen(g) && strlen(g) < 10) { *gid = (gid_t)strtoul(g, NULL, 10); return 0; }
	return -1;
}

/* Local boundary: a stage socket takes connections only from our own uid,
 * root, or a member of [node] socket_group (Postfix's public/private split:
 * the socket mode keeps others out, SO_PEERCRED checks who actually came). */
static int peer_allowed(const struct daemon *d, int fd, uid_t *uid_out)
{
	struct ucred cr;
	socklen_t n = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &n) < 0) return 0;
	*uid_out = cr.uid;
	if (cr.uid == geteuid() || cr.uid == 0) return 1;
	gid_t g;
	if (socket_gid(d, &g) != 0) return 0;
	if (cr.gid == g) return 1;
	struct passwd *pw = getpwuid(cr.uid);
	if (!pw) return 0;
	gid_t groups[256];
	int ng = 256;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0) return 0;
	for (int i = 0; i < ng; i++) if (groups[i] == g) return 1;
	return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
	struct daemon *d = arg;
	uid_t uid = (uid_t)-1;
	if (!peer_allowed(d, fd, &uid)) {
		uint64_t *refused = daemon_counter(d, "socket_refused");
		if ((*refused)++ == 0 || *refused % 1000 == 0)
			log_warnx("refused a connection on %s from uid %ld (not ours, root or [node] socket_group); %llu so far",
			          DS(d)->sock_path, (long)uid, (unsigned long long)*refused);
		close(fd);
		return;
	}
	char name[64];
	snprintf(name, sizeof(name), "client#%u", ++DS(d)->next_client);
	struct conn *c = conn_new(d, CONN_ACCEPTED, name);
	c->in = c->out = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->in) { close(fd); conn_unlink(c); free(c); return; }
	c->up = 1;
	bufferevent_set_max_single_read(c->in, READ_CHUNK);
	bufferevent_set_max_single_write(c->in, READ_CHUNK);
	bufferevent_setcb(c->in, conn_read_cb, out_write_cb, conn_event_cb, c);
	if (bufferevent_enable(c->in, EV_READ) < 0) {
		log_warnx("%s: cannot watch the new connection; closing it", c->name);
		conn_free_bevs(c);
		conn_unlink(c);
		free(c);
		return;
	}
	own_writes(c);
}

static int listen_socket(struct daemon *d)
{
	struct dstate *ds = DS(d);
	const char *run_dir = cfg_str(&d->cfg, "node", "run_dir");
	if (mkdir(run_dir, 0750) < 0 && errno != EEXIST) {
		log_warn("cannot create run directory %s", run_dir);
		return EXIT_TEMP;
	}
	/* Anyone who can write the run directory can replace our socket with
	 * theirs: refuse one that others may write or that someone else owns. */
	struct stat rst;
	if (stat(run_dir, &rst) < 0 || !S_ISDIR(rst.st_mode)) {
		log_err("run directory %s is not a directory", run_dir);
		return EXIT_CONFIG;
	}
	if ((rst.st_mode & S_IWOTH) || (rst.st_uid != geteuid() && rst.st_uid != 0)) {
		log_err("run directory %s is %s (mode %04o, owner uid %ld): refusing to put sockets there; "
		        "make it owned by uid %ld and not writable by others", run_dir,
		        (rst.st_mode & S_IWOTH) ? "writable by others" : "owned by another user",
		        (unsigned)(rst.st_mode & 07777), (long)rst.st_uid, (long)geteuid());
		return EXIT_CONFIG;
	}
	gid_t sgid = 0;
	int sg = socket_gid(d, &sgid);
	if (sg < 0) {
		log_err("[node] socket_group = '%s': no such group", cfg_str(&d->cfg, "node", "socket_group"));
		return EXIT_CONFIG;
	}
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	frame_stage_path(ds->sock_path, sizeof(ds->sock_path), run_dir, d->ops->name);
	if (strlen(ds->sock_path) >= sizeof(sa.sun_path)) {
		log_err("socket path %s is too long for a Unix socket", ds->sock_path);
		return EXIT_CONFIG;
	}
	strcpy(sa.sun_path, ds->sock_path);
	/* A live socket means another instance runs: don't steal it. */
	int probe = frame_connect_stage(run_dir, d->ops->name);
	if (probe >= 0) {
		close(probe);
		log_err("another %s is already listening on %s", d->ops->name, ds->sock_path);
		ds->sock_path[0] = 0;
		return EXIT_TEMP;
	}
	unlink(ds->sock_path);
	/* The socket is born 0660: no window with a wider mode. */
	mode_t old_umask = umask(0117);
	ds->listener = evconnlistener_new_bind(d->base, accept_cb, d,
	        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (!ds->listener) {
		log_warn("cannot listen on %s", ds->sock_path);
		ds->sock_path[0] = 0;
		return EXIT_TEMP;
	}
	if (sg == 0 && chown(ds->sock_path, (uid_t)-1, sgid) < 0)
		log_warn("cannot give %s to group %s", ds->sock_path, cfg_str(&d->cfg, "node", "socket_group"));
	return 0;
}

static void setup_stdio(struct daemon *d)
{
	struct conn *c = conn_new(d, CONN_STDIO, "stdio");
	evutil_make_socket_nonblocking(0);
	evutil_make_socket_nonblocking(1);
	c->in = bufferevent_socket_new(d->base, 0, 0);
	c->out = bufferevent_socket_new(d->base, 1, 0);
	if (!c->in || !c->out) log_panic("bufferevent for stdio failed");
	bufferevent_set_max_single_read(c->in, READ_CHUNK);
	bufferevent_set_max_single_write(c->out, READ_CHUNK);
	bufferevent_setcb(c->in, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_setcb(c->out, NULL, out_write_cb, conn_event_cb, c);
	if (bufferevent_enable(c->in, EV_READ) < 0 || bufferevent_enable(c->out, EV_WRITE) < 0)
		log_panic("bufferevent for stdio failed");
	c->up = 1;
	d->stdin_conn = c;
}

/* ---------- counters, timers, signals ---------- */

static int64_t *stat_slot(struct stat_ent *tab, int *n, const char *name)
{
	for (int i = 0; i < *n; i++) if (!strcmp(tab[i].name, name)) return &tab[i].v;
	if (*n == MAX_STATS) log_panic("too many counters/gauges (adding %s)", name);
	snprintf(tab[*n].name, sizeof(tab[*n].name), "%s", name);
	tab[*n].v = 0;
	return &tab[(*n)++].v;
}

uint64_t *daemon_counter(struct daemon *d, const char *name)
{
	struct dstate *ds = DS(d);
	return (uint64_t *)stat_slot(ds->counters, &ds->ncounters, name);
}

int64_t *daemon_gauge(struct daemon *d, const char *name)
{
	struct dstate *ds = DS(d);
	return stat_slot(ds->gauges, &ds->ngauges, name);
}

struct histo *daemon_histo(struct daemon *d, const char *name, const char *unit)
{
	struct dstate *ds = DS(d);
	for (int i = 0; i < ds->nhistos; i++)
		if (!strcmp(ds->histos[i].name, name)) return ds->histos[i].h;
	if (ds->nhistos == MAX_HISTOS) log_panic("too many histograms (adding %s)", name);
	snprintf(ds->histos[ds->nhistos].name, sizeof ds->histos[0].name, "%s", name);
	struct histo *h = xcalloc(1, sizeof *h);
	h->unit = unit;
	ds->histos[ds->nhistos++].h = h;
	return h;
}

void daemon_stats_json(struct daemon *d, struct buf *b)
{
	struct dstate *ds = DS(d);
	buf_printf(b, "{\"stage\":\"%s\",\"pid\":%d,\"uptime_s\":%lld,\"counters\":{",
	           d->ops->name, (int)getpid(), (mono_ms() - d->started_ms) / 1000);
	for (int i = 0; i < ds->ncounters; i++)
		buf_printf(b, "%s\"%s\":%llu", i ? "," : "", ds->counters[i].name,
		           (unsigned long long)(uint64_t)ds->counters[i].v);
	buf_adds(b, "},\"gauges\":{");
	for (int i = 0; i < ds->ngauges; i++)
		buf_printf(b, "%s\"%s\":%lld", i ? "," : "", ds->gauges[i].name, (long long)ds->gauges[i].v);
	buf_adds(b, "}");
	if (ds->nhistos) {
		buf_adds(b, ",\"histograms\":{");
		for (int i = 0; i < ds->nhistos; i++) {
			buf_printf(b, "%s\"%s\":", i ? "," : "", ds->histos[i].name);
			histo_json(ds->histos[i].h, b);
		}
		buf_adds(b, "}");
	}
	if (d->ops->stats) d->ops->stats(d, b);
	buf_adds(b, "}");
}

struct timer_ctx { struct daemon *d; void (*cb)(struct daemon *, void *); void *arg; };

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timer_ctx *t = arg;
	t->cb(t->d, t->arg);
}

struct event *daemon_timer(struct daemon *d, long long every_ms, void (*cb)(struct daemon *, void *), void *arg)
{
	struct timer_ctx *t = xmalloc(sizeof(*t));
	t->d = d; t->cb = cb; t->arg = arg;
	struct event *ev = event_new(d->base, -1, EV_PERSIST, timer_cb, t);
	if (!ev) log_panic("event_new failed");
	struct timeval tv = { every_ms / 1000, (every_ms % 1000) * 1000 };
	if (event_add(ev, &tv) < 0) log_panic("event_add failed for a %lld ms timer", every_ms);
	return ev;
}

void daemon_stop(struct daemon *d, int exit_code)
{
	struct dstate *ds = DS(d);
	if (!ds->stop) d->exit_code = exit_code;
	ds->stop = 1;
	event_base_loopbreak(d->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	if (sig == SIGHUP) {
		struct config nc;
		char err[512];
		if (config_load(&nc, d->cfg_path, err, sizeof(err)) < 0) {
			log_warnx("reload: %s; keeping the running configuration", err);
			return;
		}
		/* What the running process is built on keeps its value until a
		 * restart (said once, loudly); everything else applies now. */
		static const char *const restart_only[][2] = {
			{ "node", "state_dir" }, { "node", "run_dir" }, { "node", "listen" },
			{ "node", "server_name" }, { "node", "signing_key" }, { "node", "map_size" }, { NULL, NULL }
		};
		for (int k = 0; restart_only[k][0]; k++)
			for (size_t i = 0; i < nc.n; i++) {
				if (strcmp(nc.p[i]->section, restart_only[k][0]) || strcmp(nc.p[i]->key, restart_only[k][1]))
					continue;
				const char *was = cfg_str(&d->cfg, restart_only[k][0], restart_only[k][1]);
				if (strcmp(nc.val[i], was)) {
					log_warnx("reload: [%s] %s changed to '%s': takes effect at the next restart (keeping '%s')",
					          restart_only[k][0], restart_only[k][1], nc.val[i], was);
					char *keep = xstrdup(was);
					free(nc.val[i]);
					nc.val[i] = keep;
				}
			}
		struct config old = d->cfg;
		d->cfg = nc;
		long long fm = cfg_size(&d->cfg, "node", "frame_max");
		d->frame_max = fm > 0 && fm < UINT32_MAX ? (uint32_t)fm : FRAME_MAX_DEFAULT;
		DS(d)->reconnect_ms = cfg_ms(&d->cfg, "node", "reconnect");
		if (d->st && d->ops->store->reload) d->ops->store->reload(d);
		log_info("configuration reloaded from %s", d->cfg.path);
		if (d->ops->on_reload) d->ops->on_reload(d, &old);
		config_free(&old);
		return;
	}
	log_info("%s received; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	daemon_stop(d, 0);
}

static void watchdog_cb(struct daemon *d, void *arg) { sdn_notify("WATCHDOG=1"); }

/* ---------- main ---------- */

static void usage(const struct daemon_ops *ops, FILE *f)
{
	fprintf(f, "usage: %s [-c CONFIG] [-d] [-v] [-n] [--stdio] [options]\n%s\n\n"
	           "  -c, --config FILE  configuration file (default /etc/fedpipe/fedpipe.conf if present)\n"
	           "  -d, --debug        stay in the foreground, log to stderr (the default)\n"
	           "  -v, --verbose      debug logging\n"
	           "  -n, --check        check the configuration and exit\n"
	           "      --stdio        filter mode: frames on stdin, frames on stdout\n"
	           "  -h, --help         this help\n"
	           "  -V, --version      print the version\n",
	        ops->name, ops->summary ? ops->summary : "");
	if (ops->usage) fprintf(f, "%s", ops->usage);
	fprintf(f, "\nExit status: 0 clean stop, 100 configuration or usage error (do not restart),\n"
	           "111 temporary failure (restart).\n");
}

int daemon_main(int argc, char **argv, const struct daemon_ops *ops)
{
	static struct daemon dd;
	static struct dstate ds;
	struct daemon *d = &dd;
	d->ops = ops;
	d->_ds = &ds;
	d->started_ms = mono_ms();
	log_init(ops->name, 0);
	signal(SIGPIPE, SIG_IGN);

	static const struct option base_opts[] = {
		{ "config", required_argument, 0, 'c' }, { "debug", no_argument, 0, 'd' },
		{ "verbose", no_argument, 0, 'v' }, { "check", no_argument, 0, 'n' },
		{ "stdio", no_argument, 0, 1000 }, { "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
	};
	size_t nb = sizeof(base_opts) / sizeof(base_opts[0]), ne = 0;
	if (ops->longopts) while (ops->longopts[ne].name) ne++;
	struct option *opts = xcalloc(nb + ne + 1, sizeof(*opts));
	memcpy(opts, base_opts, sizeof(base_opts));
	if (ne) memcpy(opts + nb, ops->longopts, ne * sizeof(*opts));
	char shortopts[64];
	snprintf(shortopts, sizeof(shortopts), "c:dvnhV%s", ops->shortopts ? ops->shortopts : "");
	int check = 0, ch;
	while ((ch = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (ch) {
		case 'c': d->cfg_path = optarg; break;
		case 'd': break;
		case 'v': d->verbose++; break;
		case 'n': check = 1; break;
		case 1000: d->stdio = 1; break;
		case 'h': usage(ops, stdout); free(opts); return 0;
		case 'V': printf("%s (fedpipe) %s\n", ops->name, FP_VERSION); free(opts); return 0;
		case '?': usage(ops, stderr); free(opts); return EXIT_CONFIG;
		default:
			if (!ops->option || ops->option(d, ch, optarg) < 0) { usage(ops, stderr); free(opts); return EXIT_CONFIG; }
		}
	}
	free(opts);
	d->argc = argc - optind;
	d->argv = argv + optind;
	log_verbose(d->verbose);
	if (!d->cfg_path && access("/etc/fedpipe/fedpipe.conf", R_OK) == 0)
		d->cfg_path = "/etc/fedpipe/fedpipe.conf";
	char err[1024];
	if (config_load(&d->cfg, d->cfg_path, err, sizeof(err)) < 0) {
		log_err("%s", err);
		config_free(&d->cfg);
		return EXIT_CONFIG;
	}
	if (check) { printf("configuration OK\n"); config_free(&d->cfg); return 0; }
	long long fm = cfg_size(&d->cfg, "node", "frame_max");
	d->frame_max = fm > 0 && fm < UINT32_MAX ? (uint32_t)fm : FRAME_MAX_DEFAULT;
	ds.reconnect_ms = cfg_ms(&d->cfg, "node", "reconnect");
	if (ds.reconnect_ms <= 0) ds.reconnect_ms = 1000;

	struct event_config *ec = event_config_new();
	if (!ec) fatalx("cannot create the event loop (event_config_new failed)");
	/* --stdio may be handed regular files, which epoll refuses. */
	if (d->stdio) event_config_avoid_method(ec, "epoll");
	d->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d->base) fatalx("cannot create the event loop");

	if (ops->store) {
		int rc = ops->store->open(d);
		if (rc) { config_free(&d->cfg); return rc; }
	}
	ds.sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	ds.sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	ds.sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	if (!ds.sig_term || !ds.sig_int || !ds.sig_hup || event_add(ds.sig_term, NULL) < 0 ||
	    event_add(ds.sig_int, NULL) < 0 || event_add(ds.sig_hup, NULL) < 0)
		fatalx("cannot watch SIGTERM, SIGINT and SIGHUP on the event loop");

	if (d->stdio) setup_stdio(d);
	if (ops->init) {
		int rc = ops->init(d);
		if (rc) return rc;
	}
	if (!d->stdio && !ops->no_listen) {
		int rc = listen_socket(d);
		if (rc) return rc;
	}
	/* Ready: environment open, socket bound. */
	sdn_notifyf("READY=1\nSTATUS=%s running\nMAINPID=%d", ops->name, (int)getpid());
	const char *rfd = getenv("FP_READY_FD");
	if (rfd && *rfd) {
		int fd = atoi(rfd);
		ssize_t w = write(fd, "\n", 1);
		(void)w;
		close(fd);
		unsetenv("FP_READY_FD");
	}
	uint64_t wd_usec = 0;
	if (sdn_watchdog_usec(&wd_usec) > 0)
		ds.watchdog = daemon_timer(d, (long long)(wd_usec / 2000), watchdog_cb, NULL);
	log_info("started%s (fedpipe %s)", d->stdio ? " in --stdio mode" : "", FP_VERSION);

	while (!ds.stop) {
		if (event_base_loop(d->base, EVLOOP_ONCE) < 0) { log_err("event loop failed"); d->exit_code = EXIT_TEMP; break; }
		if (ops->on_turn) ops->on_turn(d);
		flush_conns(d);
	}
	flush_conns(d);                 /* best effort: what the last turn queued */
	sdn_notify("STOPPING=1");
	if (ops->fini) ops->fini(d);
	/* Flush what --stdio still owes its reader (blocking, bounded by EPIPE). */
	if (d->stdin_conn && d->stdin_conn->out) {
		struct evbuffer *ob = bufferevent_get_output(d->stdin_conn->out);
		/* A bufferevent keeps the start of its output frozen (only it may
		 * drain it); unfreeze or evbuffer_write silently writes nothing. */
		evbuffer_unfreeze(ob, 1);
		int fl = fcntl(1, F_GETFL);
		if (fl >= 0) fcntl(1, F_SETFL, fl & ~O_NONBLOCK);
		while (evbuffer_get_length(ob) > 0)
			if (evbuffer_write(ob, 1) <= 0) break;
	}
	if (ds.listener) evconnlistener_free(ds.listener);
	if (ds.sock_path[0]) unlink(ds.sock_path);
	while (ds.conns) {
		struct conn *c = ds.conns;
		ds.conns = c->next;
		conn_free_bevs(c);
		if (c->retry) event_free(c->retry);
		free(c);
	}
	if (ops->store && d->st) ops->store->close(d);
	config_free(&d->cfg);
	log_info("stopped");
	return d->exit_code;
}
