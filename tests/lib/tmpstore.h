/* tmpstore.h: a real LMDB environment in a fresh /tmp directory for a unit
 * test, and its removal. tmpstore_open fails the test (exit 1) if the
 * environment cannot be made; tmpstore_close closes it and removes the
 * directory (1 if that failed). */
#ifndef FP_TEST_TMPSTORE_H
#define FP_TEST_TMPSTORE_H
#include <stdio.h>
#include <stdlib.h>
#include "store/store.h"
#include "tap.h"

static inline void tmpstore_open(struct store *s, char dir[64], const char *name, size_t map)
{
	char err[512] = "";
	snprintf(dir, 64, "/tmp/fp-%s-XXXXXX", name);
	if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
	int ok = store_open(s, dir, map, 0, err, sizeof err) == 0;
	TAP_OK(ok, "open an environment in %s %s", dir, err);
	if (!ok) exit(1);
}

static inline int tmpstore_close(struct store *s, const char *dir)
{
	char cmd[128];
	store_close(s);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) != 0;
}
#endif
