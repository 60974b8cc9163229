/* tap.h: the tiny test protocol every unit test speaks. Each check prints
 * "ok N - name" or "not ok N - name"; tests/run.sh counts them. A test
 * program ends with `return tap_done();` (exit 1 if anything failed). */
#ifndef FP_TAP_H
#define FP_TAP_H
#include <stdio.h>
#include <stdlib.h>
static int tap_n, tap_fail;
#define TAP_OK(cond, ...) do { tap_n++; int tap_c_ = !!(cond); \
	printf("%sok %d - ", tap_c_ ? "" : "not ", tap_n); printf(__VA_ARGS__); printf("\n"); \
	if (!tap_c_) { tap_fail++; fprintf(stderr, "  failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
	fflush(stdout); } while (0)
static inline int tap_done(void) { printf("# %d checks, %d failed\n", tap_n, tap_fail); return tap_fail ? 1 : 0; }
/* Directory holding ../shared/vectors (FP_VECTORS overrides). */
static inline const char *tap_vectors(void) { const char *v = getenv("FP_VECTORS"); return v ? v : "../shared/vectors"; }
#endif
