/* fp_canon: canonical JSON filter for interop tests. Reads one JSON document
 * per line on stdin and writes its canonical form per line, or "ERR <code>"
 * (json_err_str) when the strict parser refuses it. */
#include "matrix/json.h"
#include "core/buf.h"
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	struct buf out;
	struct json_doc d = { 0 };
	buf_init(&out);
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		/* Only the line feed is the separator; '\r' is JSON whitespace. */
		if (n > 0 && line[n - 1] == '\n')
			n--;
		buf_reset(&out);
		if (json_parse(&d, line, (size_t)n, JSON_MAX_DEPTH_DEFAULT) < 0) {
			printf("ERR %s\n", json_err_str(d.err));
			continue;
		}
		if (json_canonical(&d, 0, &out, NULL, NULL) < 0) {
			printf("ERR %s\n", json_err_str(JSON_E_NOMEM));
			continue;
		}
		fwrite(out.data, 1, out.len, stdout);
		putchar('\n');
	}
	json_doc_free(&d);
	buf_free(&out);
	free(line);
	return ferror(stdout) ? 1 : 0;
}
