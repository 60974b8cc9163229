/* fedctl_args.h: what fedctl_purgatory.c and fedctl_room.c share: option
 * parsing over a subcommand's argv (argv[0] = the subcommand) and the fast
 * path that tells validated about new inbox rows. */
#ifndef FEDCTL_ARGS_H
#define FEDCTL_ARGS_H
#include <stdint.h>
#include <string.h>
#include "fedctl.h"
#include "core/buf.h"
#include "matrix/json.h"

static inline void put_str(struct buf *b, const char *s) { json_put_string(b, s, strlen(s)); }

static inline const char *opt_arg(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc - 1; i++) if (!strcmp(argv[i], name)) return argv[i + 1];
	return NULL;
}
static inline int has_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++) if (!strcmp(argv[i], name)) return 1;
	return 0;
}
/* the n-th argument that is neither an option nor an option's value */
static inline const char *pos_arg(int argc, char **argv, int n, const char *const *with_value)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] == '-') {
			for (const char *const *w = with_value; w && *w; w++)
				if (!strcmp(argv[i], *w)) { i++; break; }
			continue;
		}
		if (n-- == 0) return argv[i];
	}
	return NULL;
}

/* Send FT_EVENT frames for inbox rows (seqs, bytes) to validated, if it
 * runs (it rescans the inbox anyway: this is only the fast path). */
void fedctl_notify_validated(struct fedctl *fc, const uint64_t *seqs, char **bytes,
                             const size_t *lens, size_t n);

#endif
