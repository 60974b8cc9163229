/* vectors.h: reading files and the public test vectors in unit tests.
 * slurp reads a whole file (NULL if it cannot); vfile_open parses
 * <vectors>/matrix/NAME with our own strict parser and finds its "vectors"
 * array (a failure is one failed check); str_member returns a decoded
 * string member (malloc'd, NULL if absent or not a string). */
#ifndef FP_TEST_VECTORS_H
#define FP_TEST_VECTORS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "matrix/json.h"
#include "tap.h"

static inline char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	struct buf b;
	buf_init(&b);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

/* A vector file parsed with our own strict parser; v = its "vectors" array. */
struct vfile { char *text; struct json_doc d; int v; };

static inline int vfile_open(struct vfile *f, const char *name)
{
	char path[1024];
	size_t len;
	memset(f, 0, sizeof *f);
	snprintf(path, sizeof path, "%s/matrix/%s", tap_vectors(), name);
	f->text = slurp(path, &len);
	if (f->text == NULL || json_parse(&f->d, f->text, len, 64) < 0) {
		TAP_OK(0, "load %s", path);
		return -1;
	}
	f->v = json_obj_get(&f->d, 0, "vectors");
	return 0;
}

static inline void vfile_close(struct vfile *f)
{
	json_doc_free(&f->d);
	free(f->text);
}

static inline char *str_member(const struct json_doc *d, int o, const char *key)
{
	int t = json_obj_get(d, o, key);
	if (t < 0 || d->tok[t].type != JSON_STRING)
		return NULL;
	size_t n = json_str_len(d, t);
	char *s = malloc(n + 1);
	if (s) json_str_copy(d, t, s, n + 1);
	return s;
}

static inline int member_is(const struct json_doc *d, int o, const char *key, const char *want)
{
	int t = json_obj_get(d, o, key);
	return t >= 0 && d->tok[t].type == JSON_STRING && json_str_eq(d, t, want);
}
#endif
