/* feedpump_main.c: the outbox drainer's options and loop hooks. Drains the
 * transactional outbox into the sink named by --sink / [feed] sink, woken by
 * FT_WAKEUP from purgatoryd and by a safety-net timer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "feedpump.h"
#include "core/log.h"
#include "feed/feed_fleet.h"

static struct feedpump feedpump;
static const char *opt_sink, *opt_dir, *opt_nats_url, *opt_subject;
static int opt_batch, opt_once;

enum { O_SINK = 2000, O_DIR, O_NATS_URL, O_BATCH, O_ONCE, O_SUBJECT };
static const struct option fp_longopts[] = {
	{ "sink", required_argument, 0, O_SINK },
	{ "dir", required_argument, 0, O_DIR },
	{ "nats-url", required_argument, 0, O_NATS_URL },
	{ "subject", required_argument, 0, O_SUBJECT },
	{ "batch", required_argument, 0, O_BATCH },
	{ "once", no_argument, 0, O_ONCE },
	{ 0, 0, 0, 0 }
};

static int fp_option(struct daemon *d, int opt, const char *arg)
{
	switch (opt) {
	case O_SINK: opt_sink = arg; return 0;
	case O_DIR: opt_dir = arg; return 0;
	case O_NATS_URL: opt_nats_url = arg; return 0;
	case O_SUBJECT: opt_subject = arg; return 0;
	case O_BATCH: opt_batch = atoi(arg); return opt_batch > 0 ? 0 : -1;
	case O_ONCE: opt_once = 1; return 0;
	}
	return -1;
}

static void interval_cb(struct daemon *d, void *arg) { fp_drain_schedule(arg, 0); }
static void renew_cb(struct daemon *d, void *arg) { fp_lease_renew(arg); }
static void closed_cb(struct daemon *d, void *arg)
{
	struct feedpump *fp = arg;
	if (!fp->stopping && feed_sink_closed(fp->sink)) {
		log_info("the sink's reader went away; stopping");
		fp->stopping = 1;
		daemon_stop(d, 0);
	}
}

/* The values read from the configuration that can change at a reload
 * (--batch on the command line wins over [feedpump] batch). -1: refused. */
static int fp_params(struct feedpump *fp, const struct config *cfg, int *batch)
{
	*batch = opt_batch ? opt_batch : (int)cfg_int(cfg, "feedpump", "batch");
	if (*batch <= 0 || *batch > 100000) { log_err("[feedpump] batch must be 1..100000"); return -1; }
	fp->max_attempts = (int)cfg_int(cfg, "feedpump", "max_attempts");
	fp->backoff_min = cfg_ms(cfg, "feedpump", "backoff_min");
	fp->backoff_max = cfg_ms(cfg, "feedpump", "backoff_max");
	fp->lease_ttl = cfg_ms(cfg, "feedpump", "lease_ttl");
	fp->interval = cfg_ms(cfg, "feedpump", "interval");
	fp->d->st->map_max = (size_t)cfg_size(cfg, "node", "map_size_max");
	return 0;
}

static void timer_set(struct event *ev, long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	if (ev) event_add(ev, &tv);
}

static int fp_init(struct daemon *d)
{
	struct feedpump *fp = &feedpump;
	const struct config *cfg = &d->cfg;
	d->priv = fp;
	fp->d = d;
	snprintf(fp->sink_name, sizeof fp->sink_name, "%s", opt_sink ? opt_sink : cfg_str(cfg, "feed", "sink"));
	feed_opts_from_config(&fp->opts, cfg);
	/* A fleet: one feed, the fleet stream on the fleet's NATS (its name
	 * makes stream, subject and consumer names: letters, digits, - and _). */
	char node_id[27] = "";
	fp->fleet = feed_fleet_on(cfg);
	if (fp->fleet) {
		const char *name = cfg_str(cfg, "fleet", "name"), *member = cfg_str(cfg, "fleet", "member");
		if (!*name || name[strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")]
		    || member[strspn(member, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")]) {
			log_err("[fleet] name \"%s\" and member \"%s\": only letters, digits, - and _ "
			        "(they name the JetStream stream, subject and consumer)", name, member);
			return EXIT_CONFIG;
		}
		if (store_node_id(d->st, node_id)) { log_err("cannot read or make the node ID"); return EXIT_TEMP; }
		feed_opts_fleet(&fp->opts, cfg, node_id);
		char kerr[512];
		if (fleet_key_load(&fp->fleet_key, cfg, kerr, sizeof kerr) < 0) {
			log_err("fleet: %s", kerr);
			return EXIT_CONFIG;
		}
		fp->opts.mac_key = &fp->fleet_key;
		if (!opt_sink) snprintf(fp->sink_name, sizeof fp->sink_name, "nats");
		log_info("fleet %s: publishing to stream %s (subject %s, %d replica(s)) on %s", name,
		         fp->opts.nats_stream, fp->opts.nats_subject, fp->opts.nats_replicas, fp->opts.nats_url);
	}
	if (opt_dir) fp->opts.dir = opt_dir;
	if (opt_nats_url) fp->opts.nats_url = opt_nats_url;
	if (opt_subject) fp->opts.nats_subject = opt_subject;
	if (d->stdio && strcmp(fp->sink_name, "stdout") == 0) {
		log_err("--stdio and --sink stdout both want standard output");
		return EXIT_CONFIG;
	}
	if (fp_params(fp, cfg, &fp->batch) < 0) return EXIT_CONFIG;
	fp->once = opt_once;
	char host[128];
	if (gethostname(host, sizeof host) < 0) snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	snprintf(fp->holder, sizeof fp->holder, "%s:%d", host, (int)getpid());

	char err[512];
	int unknown = 0;
	fp->sink = feed_sink_open(fp->sink_name, &fp->opts, &unknown, err, sizeof err);
	if (!fp->sink) {
		log_err("%s", err);
		/* A missing broker or a cluster still forming is temporary; a bad
		 * name, directory or credential is config. */
		return strcmp(fp->sink_name, "nats") == 0 && (strstr(err, "cannot connect") || strstr(err, "gave up retrying"))
		       ? EXIT_TEMP : EXIT_CONFIG;
	}
	memset(&fp->opts, 0, sizeof fp->opts);   /* pointed into the configuration */
	fp->c_published = daemon_counter(d, "published");
	fp->c_failed = daemon_counter(d, "publish_failures");
	fp->c_dead = daemon_counter(d, "dead_lettered");
	fp->c_batches = daemon_counter(d, "batches");
	fp->c_wakeups = daemon_counter(d, "wakeups");
	fp->g_cursor = daemon_gauge(d, "cursor");
	fp->g_lease = daemon_gauge(d, "lease_held");
	fp_drain_init(fp);
	fp->interval_ev = daemon_timer(d, fp->interval, interval_cb, fp);
	fp->renew_ev = daemon_timer(d, fp->lease_ttl / 3, renew_cb, fp);
	if (fp->sink->ops->closed) daemon_timer(d, 200, closed_cb, fp);
	log_info("sink %s, batch %d", fp->sink_name, fp->batch);
	if (fp->fleet && cfg_bool(cfg, "fleet", "apply") && !fp->once) fp_apply_init(fp, node_id);
	fp_drain_schedule(fp, 0);
	return 0;
}

/* SIGHUP: batch size, attempts, backoff, lease period and interval apply at
 * once; the sink itself (its kind, directory, broker) only at a restart. */
static void fp_on_reload(struct daemon *d, const struct config *old)
{
	struct feedpump *fp = d->priv;
	if (!fp) return;
	long long interval = fp->interval, ttl = fp->lease_ttl;
	int batch;
	if (fp_params(fp, &d->cfg, &batch) < 0) {
		log_warnx("reload: [feedpump] batch refused; keeping %d", fp->batch);
		batch = fp->batch;
	}
	if (batch != fp->batch) {
		log_info("reload: batch %d -> %d", fp->batch, batch);
		fp_drain_resize(fp, batch);
	}
	if (interval != fp->interval) timer_set(fp->interval_ev, fp->interval);
	if (ttl != fp->lease_ttl) {
		timer_set(fp->renew_ev, fp->lease_ttl / 3);
		fp_lease_renew(fp);               /* the new period from now */
	}
	static const char *const fixed[] = { "feed", "sink", "feed", "dir", "feed", "nats_url", "feed", "nats_subject",
		"feed", "nats_stream", "fleet", "nats_url", "fleet", "name", "fleet", "member", "fleet", "apply", NULL };
	for (int i = 0; fixed[i]; i += 2)
		if (strcmp(cfg_str(old, fixed[i], fixed[i + 1]), cfg_str(&d->cfg, fixed[i], fixed[i + 1])))
			log_notice("reload: [%s] %s changed; it applies at the next restart", fixed[i], fixed[i + 1]);
}

static void fp_on_frame(struct daemon *d, struct conn *c, struct frame *f)
{
	struct feedpump *fp = d->priv;
	switch (f->type) {
	case FT_WAKEUP:
		(*fp->c_wakeups)++;
		fp_drain_schedule(fp, 0);
		break;
	default:
		log_debug("%s: ignoring a %s frame", conn_peer(c), frame_type_name(f->type));
	}
}

static void fp_on_stdin_eof(struct daemon *d)
{
	/* --stdio: wakeups came on stdin; keep draining on the timer. */
}

static void fp_fini(struct daemon *d)
{
	struct feedpump *fp = d->priv;
	if (!fp) return;
	if (fp->slots) fp_drain_flush(fp);
	fp_apply_fini(fp);
	/* one sync: it also makes the last write-back durable */
	outbox_meta_sync(d->st, 0);
	fp_lease_release(fp);
	outbox_meta_sync(d->st, 1);
	feed_sink_close(fp->sink);
	fp->sink = NULL;
}

static const struct daemon_ops fp_ops = {
	.name = "feedpump",
	.summary = "drain the outbox, in order and exactly once, into a feed sink",
	.usage = "  --sink NAME      nop | file | stdout | nats (default [feed] sink)\n"
	         "  --dir DIR        file sink directory (default [feed] dir)\n"
	         "  --nats-url URL   NATS server (default [feed] nats_url)\n"
	         "  --subject SUBJ   JetStream subject (default [feed] nats_subject)\n"
	         "  --batch N        rows per sink call and write-back txn (default 64)\n"
	         "  --once           drain until the outbox is empty, then exit",
	.longopts = fp_longopts,
	.option = fp_option,
	.store = &store_for_daemon,
	.init = fp_init,
	.on_frame = fp_on_frame,
	.on_reload = fp_on_reload,
	.on_stdin_eof = fp_on_stdin_eof,
	.fini = fp_fini,
};

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &fp_ops);
}
