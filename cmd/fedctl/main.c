/* main.c: fedctl, the operator CLI. Global options, the subcommand
 * registry (areas register from their own files), and the commands that
 * belong to no stage: config, stages, status, stats. */
#include "fedctl.h"
#include "core/frame.h"
#include "core/log.h"
#include "core/buf.h"
#include "core/stages.h"
#include "matrix/json.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 64
static const struct fedctl_cmd *cmds[MAX_CMDS];
static int ncmds;

void fedctl_register(const struct fedctl_cmd *c)
{
	if (ncmds < MAX_CMDS) cmds[ncmds++] = c;
}

struct store *fedctl_store(struct fedctl *fc, int readonly)
{
	if (fc->st_open) return &fc->st;
	char err[1024];
	const char *dir = cfg_str(&fc->cfg, "node", "state_dir");
	if (store_open(&fc->st, dir, (size_t)cfg_size(&fc->cfg, "node", "map_size"), readonly, err, sizeof(err)) < 0) {
		fprintf(stderr, "fedctl: %s\n", err);
		exit(EXIT_TEMP);
	}
	fc->st.map_max = (size_t)cfg_size(&fc->cfg, "node", "map_size_max");
	fc->st_open = 1;
	return &fc->st;
}

int fedctl_write_failed(struct fedctl *fc, int rc, const char *what)
{
	if (store_write_failed(&fc->st, rc)) return 1;
	if (rc == MDB_MAP_FULL)
		fprintf(stderr, "fedctl: %s: the store is full (the LMDB map is at its ceiling, [node] "
		        "map_size_max = %zu bytes); nothing was written\n", what, fc->st.map_max);
	else
		fprintf(stderr, "fedctl: %s: LMDB: %s; nothing was written\n", what, mdb_strerror(rc));
	return 0;
}

int fedctl_request(struct fedctl *fc, const char *stage, int type, const void *p, size_t n,
                   struct frame *reply, int timeout_ms)
{
	const char *run_dir = cfg_str(&fc->cfg, "node", "run_dir");
	int fd = frame_connect_stage(run_dir, stage);
	if (fd < 0) {
		char path[512];
		frame_stage_path(path, sizeof(path), run_dir, stage);
		if (!fc->json) fprintf(stderr, "fedctl: %s is not running (%s: %s)\n", stage, path, strerror(errno));
		return -1;
	}
	uint64_t id = (uint64_t)getpid() << 16 | (uint64_t)(time(NULL) & 0xffff);
	if (frame_write_fd(fd, type, 0, id, p, n) < 0) {
		fprintf(stderr, "fedctl: sending to %s: %s\n", stage, strerror(errno));
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int r = poll(&pf, 1, timeout_ms);
		if (r <= 0) {
			fprintf(stderr, "fedctl: %s did not answer within %d ms\n", stage, timeout_ms);
			close(fd);
			return -1;
		}
		const char *why = NULL;
		r = frame_read_fd(fd, FRAME_MAX_DEFAULT * 16u, reply, &why);
		if (r <= 0) {
			fprintf(stderr, "fedctl: reading %s's answer: %s\n", stage, r == 0 ? "connection closed" : why);
			close(fd);
			return -1;
		}
		if (reply->id == id || !(reply->flags & FF_REPLY)) break;
		frame_free(reply);
	}
	close(fd);
	return 0;
}

void fedctl_progress(const char *what, long long done, long long total)
{
	static long long last;
	long long now = mono_ms();
	int tty = isatty(2);
	if (done < total && now - last < (tty ? 100 : 1000)) return;
	last = now;
	if (total > 0)
		fprintf(stderr, "%s%s: %lld/%lld (%d%%)%s", tty ? "\r" : "", what, done, total,
		        (int)(done * 100 / total), tty && done < total ? "" : "\n");
	else
		fprintf(stderr, "%s%s: %lld%s", tty ? "\r" : "", what, done, tty && done >= 0 ? "" : "\n");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fedctl [-c CONFIG] [--json] [-v] [-n] COMMAND [ARGS]\n"
	           "The fedpipe operator CLI.\n\n"
	           "  -c, --config FILE  configuration file (default /etc/fedpipe/fedpipe.conf if present)\n"
	           "      --json         machine-readable output\n"
	           "  -n, --check        check the configuration and exit\n"
	           "  -h, --help         this help;  -V, --version\n\ncommands:\n");
	for (int i = 0; i < ncmds; i++)
		fprintf(f, "  %-44s %s\n", cmds[i]->usage, cmds[i]->help);
}

/* ---- config ---- */
static int cmd_config(struct fedctl *fc, int argc, char **argv)
{
	struct config *c = &fc->cfg;
	if (fc->json) {
		struct buf b; buf_init(&b);
		buf_adds(&b, "[");
		for (size_t i = 0; i < c->n; i++) {
			buf_adds(&b, i ? ",{\"section\":" : "{\"section\":");
			json_put_string(&b, c->p[i]->section, strlen(c->p[i]->section));
			buf_adds(&b, ",\"key\":"); json_put_string(&b, c->p[i]->key, strlen(c->p[i]->key));
			buf_adds(&b, ",\"value\":"); json_put_string(&b, c->val[i], strlen(c->val[i]));
			buf_adds(&b, ",\"default\":"); json_put_string(&b, c->p[i]->def, strlen(c->p[i]->def));
			buf_adds(&b, ",\"help\":"); json_put_string(&b, c->p[i]->help, strlen(c->p[i]->help));
			char acc[200];
			param_accepted(c->p[i], acc, sizeof(acc));
			buf_adds(&b, ",\"type\":"); json_put_string(&b, param_type_name(c->p[i]->type), strlen(param_type_name(c->p[i]->type)));
			buf_adds(&b, ",\"accepted\":"); json_put_string(&b, acc, strlen(acc));
			buf_printf(&b, ",\"set\":%s}", c->set[i] ? "true" : "false");
		}
		buf_adds(&b, "]\n");
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
		return 0;
	}
	int markdown = argc > 1 && !strcmp(argv[1], "--markdown");
	const char *sec = "";
	if (markdown) printf("| section | key | default | type | meaning |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < c->n; i++) {
		const struct param *p = c->p[i];
		char range[160] = "";
		if (p->type == PT_INT || p->type == PT_SIZE || p->type == PT_DURATION)
			snprintf(range, sizeof(range), " %s..%s", p->min, p->max);
		else if ((p->type == PT_ENUM || p->type == PT_LIST) && p->allowed)
			snprintf(range, sizeof(range), " %s", p->allowed);
		if (markdown) {
			printf("| `[%s]` | `%s` | `%s` | %s%s | %s |\n", p->section, p->key, *p->def ? p->def : "",
			       param_type_name(p->type), range, p->help);
			continue;
		}
		if (strcmp(sec, p->section)) { printf("%s[%s]\n", *sec ? "\n" : "", p->section); sec = p->section; }
		printf("%-16s = %-28s # %s%s: %s%s%s%s\n", p->key, c->val[i], param_type_name(p->type), range, p->help,
		       c->set[i] ? " (default: " : "", c->set[i] ? p->def : "", c->set[i] ? ")" : "");
	}
	if (!markdown) {
		for (size_t i = 0; i < c->npeers; i++)
			printf("\n[peer %s]\nendpoint = %s\nkey      = %s\nca       = %s\nmode     = %s\n", c->peers[i].name,
			       c->peers[i].endpoint, c->peers[i].key[0] ? "(set)" : "", c->peers[i].ca, c->peers[i].mode);
		for (size_t i = 0; i < c->nservers; i++)
			printf("\n[server %s]\nendpoint = %s\n", c->servers[i].name, c->servers[i].endpoint);
	}
	return 0;
}
FEDCTL_COMMAND(config_cmd, "config", "config [--markdown]", "every parameter with its value and default", cmd_config)

/* ---- stats / status ---- */
static int get_stats(struct fedctl *fc, const char *stage, struct frame *f)
{
	return fedctl_request(fc, stage, FT_STATS_REQ, "", 0, f, 2000);
}

static int cmd_stats(struct fedctl *fc, int argc, char **argv)
{
	int any = 0, rc = 0;
	printf(fc->json ? "{" : "");
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const char *name = stage_in_flow(i)->name;
		if (argc > 1 && strcmp(argv[1], name)) continue;
		struct frame f;
		int saved = fc->json;
		fc->json = 1;  /* silence "not running" */
		int r = get_stats(fc, name, &f);
		fc->json = saved;
		if (fc->json) {
			printf("%s\"%s\":%s", any++ ? "," : "", name, r == 0 ? f.payload : "null");
		} else if (r == 0) {
			printf("%s %s\n", name, f.payload);
		} else {
			printf("%s down\n", name);
			if (argc > 1) rc = 1;
		}
		if (r == 0) frame_free(&f);
	}
	printf(fc->json ? "}\n" : "");
	return rc;
}
FEDCTL_COMMAND(stats_cmd, "stats", "stats [STAGE]", "raw stats frames of every stage (JSON)", cmd_stats)

/* Sum of the numeric members in a stats object's "counters" or "gauges" whose
 * name is one of names (comma separated). */
static long long stat_pick(const struct json_doc *d, const char *group, const char *names)
{
	int g = json_obj_get(d, 0, group);
	if (g < 0) return -1;
	long long sum = -1;
	for (int k = json_first(d, g); k >= 0; k = json_next_kv(d, g, k)) {
		char key[64];
		if (json_str_copy(d, k, key, sizeof(key)) < 0) continue;
		const char *p = names;
		size_t kl = strlen(key);
		while (*p) {
			const char *e = strchr(p, ',');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			if (l == kl && !memcmp(p, key, l) && d->tok[k + 1].type == JSON_INT)
				sum = (sum < 0 ? 0 : sum) + d->tok[k + 1].ival;
			p += l + (e ? 1 : 0);
			if (!e) break;
		}
	}
	return sum;
}

static long long table_entries(struct store *s, int db)
{
	MDB_txn *t = store_begin(s, 1);
	size_t e;
	long long n = store_entries(t, s, db, &e) == 0 ? (long long)e : -1;
	mdb_txn_abort(t);
	return n;
}

/* The "mode" member of a stage's stats frame (syncd, served: the [node]
 * mode in force) into out; 0 if it has none. */
static int stats_mode(const char *payload, size_t len, char *out, size_t cap)
{
	struct json_doc d = {0};
	int r = 0;
	if (json_parse(&d, payload, len, 16) == 0 && d.tok[0].type == JSON_OBJECT) {
		int m = json_obj_get(&d, 0, "mode");
		r = m >= 0 && json_str_copy(&d, m, out, cap) > 0;
	}
	json_doc_free(&d);
	return r;
}

static int cmd_status(struct fedctl *fc, int argc, char **argv)
{
	int down = 0;
	/* The [node] mode: as configured, and as the running stages have it
	 * (a stage not yet sent SIGHUP after an edit runs the old one). */
	const char *mode = cfg_str(&fc->cfg, "node", "mode");
	char stale[512] = "";
	size_t sl = 0;
	if (fc->json) {
		printf("{\"mode\":\"%s\",\"stages\":[", mode);   /* one of the enum's words */
	} else {
		printf("mode: %s\n", mode);
		printf("%-11s %-5s %-8s %-10s %-6s %s\n", "STAGE", "STATE", "PID", "UPTIME", "QUEUE", "COUNTERS (non-zero)");
	}
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct stage *sg = stage_in_flow(i);
		struct frame f;
		int saved = fc->json;
		fc->json = 1;
		int r = get_stats(fc, sg->name, &f);
		fc->json = saved;
		if (r < 0) {
			down++;
			if (fc->json) printf("%s{\"stage\":\"%s\",\"up\":false}", i ? "," : "", sg->name);
			else printf("%-11s %-5s\n", sg->name, "down");
			continue;
		}
		char run[16];
		if (stats_mode(f.payload, f.len, run, sizeof run) && strcmp(run, mode) && sl < sizeof stale) {
			int w = snprintf(stale + sl, sizeof stale - sl, "%s%s runs mode %s", sl ? ", " : "", sg->name, run);
			if (w > 0) sl += (size_t)w;
		}
		if (fc->json) {
			printf("%s{\"stage\":\"%s\",\"up\":true,\"stats\":%s}", i ? "," : "", sg->name, f.payload);
			frame_free(&f);
			continue;
		}
		struct json_doc d = {0};
		if (json_parse(&d, f.payload, f.len, 16) < 0) {
			printf("%-11s %-5s (unreadable stats: %s)\n", sg->name, "up", json_err_str(d.err));
		} else {
			int pt = json_obj_get(&d, 0, "pid"), ut = json_obj_get(&d, 0, "uptime_s");
			long long up = ut >= 0 ? (long long)d.tok[ut].ival : 0;
			char upt[32];
			snprintf(upt, sizeof(upt), "%lldh%02lldm%02llds", up / 3600, up / 60 % 60, up % 60);
			char keyc[160] = "";
			size_t kl = 0;
			int g = json_obj_get(&d, 0, "counters");
			for (int k = g >= 0 ? json_first(&d, g) : -1; k >= 0; k = json_next_kv(&d, g, k)) {
				char key[48];
				if (json_str_copy(&d, k, key, sizeof(key)) < 0 || !strncmp(key, "frames_", 7) ||
				    d.tok[k + 1].type != JSON_INT || d.tok[k + 1].ival == 0)
					continue;
				int w = snprintf(keyc + kl, sizeof(keyc) - kl, "%s=%lld ", key, (long long)d.tok[k + 1].ival);
				if (w < 0 || (size_t)w >= sizeof(keyc) - kl) { snprintf(keyc + kl, sizeof(keyc) - kl, "..."); break; }
				kl += (size_t)w;
			}
			long long q = stat_pick(&d, "gauges", sg->queue);
			char qs[24] = "-";
			if (q >= 0) snprintf(qs, sizeof(qs), "%lld", q);
			printf("%-11s %-5s %-8lld %-10s %-6s %s\n", sg->name, "up",
			       pt >= 0 ? (long long)d.tok[pt].ival : 0LL, upt, qs, keyc);
		}
		json_doc_free(&d);
		frame_free(&f);
	}
	/* Queue depths kept in LMDB, whether or not a stage runs. */
	struct store *s = fedctl_store(fc, 1);
	static const struct { const char *name; int db; } tabs[] = {
		{ "events", DB_EVENTS }, { "inbox", DB_INBOX }, { "held", DB_PURGATORY },
		{ "outbox", DB_OUTBOX }, { "feed_dead", DB_FEED_DEAD }, { "rejects", DB_REJECTS },
		{ "expired", DB_EXPIRED },
	};
	if (fc->json) printf("],\"tables\":{");
	else printf("\nstore:");
	for (size_t k = 0; k < sizeof(tabs) / sizeof(tabs[0]); k++) {
		long long n = table_entries(s, tabs[k].db);
		if (fc->json) printf("%s\"%s\":%lld", k ? "," : "", tabs[k].name, n);
		else printf(" %s=%lld", tabs[k].name, n);
	}
	char info[256] = "";
	int full = store_full_marker(s->dir, info, sizeof info);
	if (fc->json) printf("},\"store_full\":%s}\n", full ? "true" : "false");
	else {
		printf("\n");
		if (stale[0])
			printf("mode: the configuration says %s, but %s (send SIGHUP to apply)\n", mode, stale);
		if (full)
			printf("store full: the LMDB map is at its ceiling ([node] map_size_max); writers wait "
			       "and retry (%s)\n", info);
	}
	return down || full ? 1 : 0;
}
FEDCTL_COMMAND(status_cmd, "status", "status", "every stage: up or down, pid, uptime, queues, counters", cmd_status)

/* ---- stages ---- */
/* A space-separated list as a JSON array of strings. */
static void put_list(struct buf *b, const char *list, char sep)
{
	buf_addc(b, '[');
	for (const char *p = list; *p;) {
		const char *e = strchr(p, sep);
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (p != list) buf_addc(b, ',');
		json_put_string(b, p, l);
		p += l + (e ? 1 : 0);
	}
	buf_addc(b, ']');
}

/* The stage table, for scripts: fedsup and systemd/gen.sh read the names
 * (one per line, in start order) from here. Needs no configuration. */
static int cmd_stages(struct fedctl *fc, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: fedctl stages [--json]\n");
		return EXIT_CONFIG;
	}
	if (!fc->json) {
		for (size_t i = 0; i < STAGE_COUNT; i++)
			printf("%s\n", stage_table[i].name);
		return 0;
	}
	struct buf b;
	buf_init(&b);
	buf_addc(&b, '[');
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct stage *sg = &stage_table[i];
		buf_adds(&b, i ? ",{\"name\":" : "{\"name\":");
		json_put_string(&b, sg->name, strlen(sg->name));
		buf_adds(&b, ",\"socket\":");
		json_put_string(&b, sg->sock, strlen(sg->sock));
		buf_adds(&b, ",\"unit\":");
		json_put_string(&b, sg->unit, strlen(sg->unit));
		buf_printf(&b, ",\"start\":%zu,\"flow\":%d,\"emits\":", i, sg->flow);
		put_list(&b, sg->emits, ' ');
		buf_adds(&b, ",\"queue_gauges\":");
		put_list(&b, sg->queue, ',');
		buf_addc(&b, '}');
	}
	buf_adds(&b, "]\n");
	int rc = fwrite(b.data, 1, b.len, stdout) == b.len ? 0 : 1;
	buf_free(&b);
	return rc;
}
FEDCTL_COMMAND_NO_CONFIG(stages_cmd, "stages", "stages",
                         "every stage, in start order (--json: socket, unit, flow order, ...)", cmd_stages)

int main(int argc, char **argv)
{
	struct fedctl fc;
	memset(&fc, 0, sizeof(fc));
	log_init("fedctl", 0);
	int i = 1, check = 0;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) fc.cfg_path = argv[++i];
		else if (!strcmp(a, "--json")) fc.json = 1;
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) fc.verbose++;
		else if (!strcmp(a, "-n") || !strcmp(a, "--check")) check = 1;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
		else if (!strcmp(a, "-V") || !strcmp(a, "--version")) { printf("fedctl (fedpipe) %s\n", FP_VERSION); return 0; }
		else { fprintf(stderr, "fedctl: unknown option %s\n", a); usage(stderr); return EXIT_CONFIG; }
	}
	/* --json may also follow the subcommand. */
	int n = 0;
	for (int j = i; j < argc; j++) {
		if (!strcmp(argv[j], "--json")) { fc.json = 1; continue; }
		argv[i + n++] = argv[j];
	}
	argc = i + n;
	log_verbose(fc.verbose);
	const struct fedctl_cmd *cmd = NULL;
	for (int k = 0; i < argc && k < ncmds; k++)
		if (!strcmp(cmds[k]->name, argv[i])) cmd = cmds[k];
	if (cmd && cmd->no_config && !check)
		return cmd->run(&fc, argc - i, argv + i);
	if (!fc.cfg_path && access("/etc/fedpipe/fedpipe.conf", R_OK) == 0) fc.cfg_path = "/etc/fedpipe/fedpipe.conf";
	char err[1024];
	if (config_load(&fc.cfg, fc.cfg_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "fedctl: %s\n", err);
		return EXIT_CONFIG;
	}
	if (check) { printf("configuration OK\n"); config_free(&fc.cfg); return 0; }
	if (i >= argc) { usage(stderr); config_free(&fc.cfg); return EXIT_CONFIG; }
	if (cmd) {
		int rc = cmd->run(&fc, argc - i, argv + i);
		if (fc.st_open) store_close(&fc.st);
		config_free(&fc.cfg);
		return rc;
	}
	fprintf(stderr, "fedctl: unknown command '%s' (fedctl --help lists them)\n", argv[i]);
	config_free(&fc.cfg);
	return EXIT_CONFIG;
}
