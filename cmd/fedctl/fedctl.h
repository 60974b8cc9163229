/* fedctl.h: the operator CLI's command registry. Each fedctl_<area>.c file
 * registers its subcommands from a constructor (FEDCTL_COMMAND), so adding
 * an area touches no other file. Commands get the loaded config and the
 * remaining arguments (argv[0] = the subcommand; a no_config command gets
 * fc->cfg unloaded and zeroed), and return an exit code
 * (0 ok, 1 failure, 100 usage/config error). `--json` anywhere on the
 * command line sets fc->json for machine output. */
#ifndef FEDCTL_H
#define FEDCTL_H
#include "core/config.h"
#include "store/store.h"

struct fedctl {
	struct config cfg;
	const char   *cfg_path;
	int           json;       /* --json */
	int           verbose;
	struct store  st;
	int           st_open;
};

struct fedctl_cmd {
	int no_config;            /* runs without loading a configuration */
	const char *name;         /* "purgatory", "keygen", ... */
	const char *usage;        /* "purgatory ls|show ID|retry ROOM|drop ID" */
	const char *help;         /* one line */
	int (*run)(struct fedctl *fc, int argc, char **argv);
};

void fedctl_register(const struct fedctl_cmd *c);
#define FEDCTL_COMMAND(var, ...) FEDCTL_COMMAND_(var, 0, __VA_ARGS__)
#define FEDCTL_COMMAND_NO_CONFIG(var, ...) FEDCTL_COMMAND_(var, 1, __VA_ARGS__)
#define FEDCTL_COMMAND_(var, noconf, ...) \
	static const struct fedctl_cmd var = { noconf, __VA_ARGS__ }; \
	__attribute__((constructor)) static void var##_register(void) { fedctl_register(&var); }

/* Open the node's LMDB environment (state_dir from the config) once;
 * exits 111 with a clear message if it cannot. */
struct store *fedctl_store(struct fedctl *fc, int readonly);
/* A write txn of fc's store failed with rc (the txn already aborted, or
 * freed by its failed commit): 1 = the map was grown, redo the txn; 0 =
 * give up (a clear message is on stderr; "store full" at the ceiling). */
int fedctl_write_failed(struct fedctl *fc, int rc, const char *what);
/* Send one frame to a stage's socket and wait for one reply (timeout_ms).
 * Returns 0 with *reply filled, or -1 with a message on stderr. */
struct frame;
int fedctl_request(struct fedctl *fc, const char *stage, int type, const void *p,
                   size_t n, struct frame *reply, int timeout_ms);
/* Print a progress line to stderr (\r-updated on a terminal, every ~1 s
 * otherwise) for long operations: done of total. */
void fedctl_progress(const char *what, long long done, long long total);

#endif
