/* validated_jsonl.c: `validated --jsonl`, the filter for humans and shell
 * pipelines: PDUs in (one per stdin line, or one per named file, bytes
 * exactly as received), one verdict object per output line, in input order.
 * With --workers N the input is validated in batches split across N threads;
 * output order is kept. Exit: 0 ran (rejects included), 100 usage or
 * configuration error, 111 I/O error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include "validated.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/xalloc.h"

#define BATCH_PER_WORKER 256

struct item { char *p; size_t n; struct val_result r; };

/* One batch on the worker pool: each worker its own validator (and seen
 * cache), the options and the keys shared (read-only / thread-safe). */
struct jbatch {
	const struct val_opts *o;
	struct validator      *v;       /* one per worker */
	struct item           *items;
};

static void batch_validate(void *arg, int worker, size_t from, size_t to)
{
	struct jbatch *b = arg;
	for (size_t i = from; i < to; i++)
		validate_pdu(&b->v[worker], b->o, b->items[i].p, b->items[i].n, &b->items[i].r);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: validated --jsonl [-c CONFIG] [-v] [options] [FILE...]\n%s",
	        VALIDATED_USAGE_OPTS);
}

/* Read a whole file, at most cap bytes (+1 to see it is larger). */
static int read_file(const char *path, size_t cap, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t n = 0, sz = 4096;
	char *p = xmalloc(sz);
	for (;;) {
		if (n == sz) {
			if (n > cap) break;          /* over the cap: enough to say so */
			sz *= 2;
			p = xrealloc(p, sz);
		}
		size_t got = fread(p + n, 1, sz - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		free(p);
		return -1;
	}
	*out = p;
	*len = n;
	return 0;
}

static int blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

int validated_jsonl(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "jsonl", no_argument, NULL, OPT_JSONL },
		VALIDATED_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct vopts vo;
	const char *cfg_path = NULL;
	int verbose = 0, opt;
	char err[512];

	memset(&vo, 0, sizeof vo);
	log_init("validated", 0);
	while ((opt = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfg_path = optarg; break;
		case 'v': verbose = 1; log_verbose(1); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("validated %s\n", FP_VERSION); return 0;
		case OPT_JSONL: break;
		case '?': usage(stderr); return EXIT_CONFIG;
		default:
			if (vopts_option(&vo, opt, optarg) < 0)
				return EXIT_CONFIG;
		}
	}
	(void)verbose;
	if (sodium_init() < 0)
		fatalx("libsodium init failed");
	struct config cfg;
	if (config_load(&cfg, cfg_path, err, sizeof err) < 0) {
		log_err("%s", err);
		return EXIT_CONFIG;
	}
	struct val_opts o;
	if (vopts_apply(&cfg, &vo, &o) < 0) {
		config_free(&cfg);
		return EXIT_CONFIG;
	}

	/* The node's LMDB, when there is one: server_keys and room versions. */
	struct store st, *stp = NULL;
	if (cfg_path) {
		char path[1024];
		struct stat sb;
		snprintf(path, sizeof path, "%s/data.mdb", cfg_str(&cfg, "node", "state_dir"));
		if (stat(path, &sb) == 0) {
			if (store_open(&st, cfg_str(&cfg, "node", "state_dir"), 0, 1, err, sizeof err) < 0)
				log_warnx("LMDB not used: %s", err);
			else
				stp = &st;
		}
	}
	struct vkeys keys;
	vkeys_init(&keys, stp);
	if (vkeys_load(&keys, &cfg, &vo) < 0) {
		vkeys_free(&keys);
		if (stp)
			store_close(stp);
		config_free(&cfg);
		return EXIT_CONFIG;
	}
	o.key = vkeys_lookup;
	o.key_arg = &keys;
	if (stp) {
		o.rv = vstore_room_version;
		o.rv_arg = stp;
	}

	int nw = vo.workers ? vo.workers : (int)cfg_int(&cfg, "validated", "workers");
	size_t seen = (size_t)cfg_int(&cfg, "validated", "seen_cache");
	size_t cap = (size_t)nw * BATCH_PER_WORKER;
	struct jbatch jb = { &o, xcalloc((size_t)nw, sizeof *jb.v), xcalloc(cap, sizeof *jb.items) };
	struct item *items = jb.items;
	struct pool pool;
	pool_init(&pool, nw);
	for (int i = 0; i < nw; i++)
		validator_init(&jb.v[i], seen / (size_t)nw);
	for (size_t i = 0; i < cap; i++)
		val_result_init(&items[i].r);

	int files = optind < argc, rc = EXIT_OK, done = 0, fi = optind;
	char *line = NULL;
	size_t linecap = 0;
	struct buf out;
	buf_init(&out);
	while (!done) {
		size_t n = 0;
		/* gather a batch */
		while (n < cap) {
			if (files) {
				if (fi >= argc) { done = 1; break; }
				if (read_file(argv[fi], o.raw_max ? o.raw_max : VAL_RAW_MAX_DEFAULT,
				              &items[n].p, &items[n].n) < 0) {
					log_err("%s: %s", argv[fi], strerror(errno));
					rc = EXIT_TEMP;
					done = 1;
					break;
				}
				fi++;
				n++;
			} else {
				errno = 0;
				ssize_t got = getline(&line, &linecap, stdin);
				if (got < 0) {
					if (ferror(stdin)) {
						log_err("stdin: %s", strerror(errno));
						rc = EXIT_TEMP;
					}
					done = 1;
					break;
				}
				size_t len = (size_t)got;
				if (len && line[len - 1] == '\n')
					len--;
				if (blank(line, len))
					continue;
				items[n].p = xmemdup(line, len);
				items[n].n = len;
				n++;
			}
		}
		if (n == 0)
			break;
		pool_run(&pool, n, batch_validate, &jb);
		/* write the verdicts, in input order */
		buf_reset(&out);
		for (size_t i = 0; i < n; i++) {
			val_result_json(&items[i].r, &out);
			buf_addc(&out, '\n');
			free(items[i].p);
			items[i].p = NULL;
		}
		if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
			log_err("stdout: %s", strerror(errno));
			rc = EXIT_TEMP;
			break;
		}
	}
	if (verbose) {
		uint64_t hits = 0;
		for (int i = 0; i < nw; i++)
			hits += jb.v[i].n_seen_hits;
		log_info("%llu events skipped as recently verified", (unsigned long long)hits);
	}
	for (int i = 0; i < nw; i++)
		validator_free(&jb.v[i]);
	for (size_t i = 0; i < cap; i++)
		val_result_free(&items[i].r);
	pool_free(&pool);
	free(items);
	free(jb.v);
	free(line);
	buf_free(&out);
	vkeys_free(&keys);
	if (stp)
		store_close(stp);
	config_free(&cfg);
	return rc;
}
