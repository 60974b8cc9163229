/* fedctl_import.c: `fedctl import` feeds a backlog of PDUs (JSON lines) into
 * the node the durable way: into the inbox in batched transactions, then as
 * event frames to validated (which also rescans the inbox, so a validated
 * that is down loses nothing). Progress goes to stderr. */
#include "fedctl.h"
#include "core/frame.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/inbox.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 1000

struct pending { uint64_t seq; char *bytes; size_t n; };

static int cmd_import(struct fedctl *fc, int argc, char **argv)
{
	const char *path = NULL, *from = "import";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--from") && i + 1 < argc) from = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "usage: fedctl import [--from NAME] [FILE|-]\n");
			return EXIT_CONFIG;
		} else path = argv[i];
	}
	FILE *in = stdin;
	long long total = -1;
	if (path && strcmp(path, "-")) {
		in = fopen(path, "r");
		if (!in) { fprintf(stderr, "fedctl: %s: %s\n", path, strerror(errno)); return 1; }
		struct stat st;
		if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) total = st.st_size;
	}
	struct store *s = fedctl_store(fc, 0);
	int vfd = frame_connect_stage(cfg_str(&fc->cfg, "node", "run_dir"), "validated");
	if (vfd < 0)
		fprintf(stderr, "fedctl: validated is not running; the events wait in the inbox until it starts\n");
	struct pending *batch = xcalloc(BATCH, sizeof(*batch));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long long done_bytes = 0, events = 0, blank = 0, sent = 0;
	int nb = 0, rc = 0, eof = 0;
	while (!eof) {
		n = getline(&line, &cap, in);
		if (n < 0) eof = 1;
		else {
			done_bytes += n;
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
			if (n == 0) { blank++; continue; }
			batch[nb].bytes = xmemdup(line, (size_t)n);
			batch[nb].n = (size_t)n;
			nb++;
		}
		if (nb == BATCH || (eof && nb)) {
			int err;
			do {
				MDB_txn *t = store_begin(s, 0);
				err = 0;
				for (int i = 0; i < nb && !err; i++)
					err = store_inbox_put(t, s, from, batch[i].bytes, batch[i].n, &batch[i].seq);
				if (err) mdb_txn_abort(t);
				else err = store_commit(t);      /* a failed commit frees the txn */
			} while (err && fedctl_write_failed(fc, err, "writing the inbox"));
			if (err) {
				fprintf(stderr, "fedctl: %lld event(s) imported before; the rest is not\n", events);
				rc = 1;
				eof = 1;
			} else {
				events += nb;
				for (int i = 0; i < nb && vfd >= 0; i++) {
					if (frame_write_fd(vfd, FT_EVENT, 0, batch[i].seq, batch[i].bytes, batch[i].n) < 0) {
						fprintf(stderr, "fedctl: lost the connection to validated (%s); the rest waits in the inbox\n",
						        strerror(errno));
						close(vfd);
						vfd = -1;
					} else sent++;
				}
			}
			for (int i = 0; i < nb; i++) free(batch[i].bytes);
			nb = 0;
		}
		if (total > 0) fedctl_progress("import", done_bytes, total);
		else if (events % 10000 == 0) fedctl_progress("imported events", events, -1);
	}
	if (total > 0) fedctl_progress("import", total, total);
	free(line);
	free(batch);
	if (in != stdin) fclose(in);
	if (vfd >= 0) close(vfd);
	if (fc->json)
		printf("{\"imported\":%lld,\"sent_to_validated\":%lld,\"blank_lines\":%lld}\n", events, sent, blank);
	else
		printf("imported %lld event(s) into the inbox, %lld sent to validated now%s\n", events, sent,
		       sent < events ? " (validated picks up the rest from the inbox)" : "");
	return rc;
}
FEDCTL_COMMAND(import_cmd, "import", "import [--from NAME] [FILE|-]",
               "feed a backlog of PDUs (JSON lines) through the inbox to validated, with progress", cmd_import)
