/* fedctl_frames.c: the converter between JSON lines and frames, so humans
 * can feed and read the stages in shell pipelines:
 *   fedctl frames encode [--type event] [--id N] [--flags N]  JSON lines -> frames
 *   fedctl frames decode                                        frames -> JSON lines */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fedctl.h"
#include "matrix/b64.h"
#include "core/frame.h"
#include "core/xalloc.h"
#include "matrix/json.h"

static int type_by_name(const char *s)
{
	for (int t = 1; t <= FT__MAX; t++)
		if (!strcmp(frame_type_name(t), s))
			return t;
	int n = atoi(s);
	return n > 0 && n <= FT__MAX ? n : -1;
}

static int frames_encode(int argc, char **argv)
{
	int type = FT_EVENT;
	unsigned long long id = 0;
	unsigned flags = 0;
	int number = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc) {
			if ((type = type_by_name(argv[++i])) < 0) {
				fprintf(stderr, "fedctl frames: unknown frame type %s\n", argv[i]);
				return 100;
			}
		} else if (!strcmp(argv[i], "--id") && i + 1 < argc) {
			id = strtoull(argv[++i], NULL, 10);
			number = 1;
		} else if (!strcmp(argv[i], "--flags") && i + 1 < argc) {
			flags = (unsigned)strtoul(argv[++i], NULL, 0);
		} else {
			fprintf(stderr, "usage: fedctl frames encode [--type NAME] [--id N] [--flags N]\n");
			return 100;
		}
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	while ((got = getline(&line, &cap, stdin)) >= 0) {
		size_t n = (size_t)got;
		if (n && line[n - 1] == '\n')
			n--;
		if (n == 0)
			continue;
		if (frame_write_fd(1, type, (uint16_t)flags, id, line, n) < 0) {
			fprintf(stderr, "fedctl frames encode: stdout: %s\n", strerror(errno));
			free(line);
			return 1;
		}
		if (number)
			id++;
	}
	free(line);
	return 0;
}

/* Put bytes as embedded JSON if they are valid strict JSON, else as a
 * string (valid UTF-8) or base64. */
static void put_value(struct buf *b, const char *key, const char *p, size_t n)
{
	struct json_doc d = {0};
	buf_printf(b, ",\"%s\":", key);
	if (json_parse(&d, p, n, 512) == 0) {
		json_canonical(&d, 0, b, NULL, NULL);
	} else {
		char *s = xmalloc(n + 3);
		memcpy(s + 1, p, n);
		s[0] = s[n + 1] = '"';
		s[n + 2] = 0;
		struct json_doc ds = {0};
		int ok_str = 0;
		/* try it as a JSON string literal: valid UTF-8 without raw controls */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == '"' || p[i] == '\\') goto b64;
		ok_str = json_parse(&ds, s, n + 2, 2) == 0;
b64:
		json_doc_free(&ds);
		free(s);
		if (ok_str) {
			json_put_string(b, p, n);
		} else {
			char *e = xmalloc(b64_enc_len(n));
			b64_encode(e, (const unsigned char *)p, n);
			b->len--;                       /* replace the ':' key with key_b64 */
			while (b->len && b->data[b->len - 1] != ',') b->len--;
			buf_printf(b, "\"%s_b64\":\"%s\"", key, e);
			free(e);
		}
	}
	json_doc_free(&d);
}

static int frames_decode(void)
{
	struct frame f;
	const char *why = NULL;
	struct buf b;
	buf_init(&b);
	int rc;
	while ((rc = frame_read_fd(0, FRAME_MAX_DEFAULT, &f, &why)) == 1) {
		buf_reset(&b);
		buf_printf(&b, "{\"type\":\"%s\",\"flags\":%u,\"id\":%llu,\"len\":%u",
		           frame_type_name(f.type), f.flags, (unsigned long long)f.id, f.len);
		const char *meta, *body;
		size_t ml, bl;
		if ((f.type == FT_VERDICT || f.type == FT_FETCH_RESULT)
		    && frame_split_meta(&f, &meta, &ml, &body, &bl) == 0) {
			put_value(&b, "meta", meta, ml);
			put_value(&b, "body", body, bl);
		} else if (f.len) {
			put_value(&b, "payload", f.payload, f.len);
		}
		buf_adds(&b, "}\n");
		frame_free(&f);
		if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
			buf_free(&b);
			return 1;
		}
	}
	buf_free(&b);
	if (rc < 0) {
		fprintf(stderr, "fedctl frames decode: %s\n", why ? why : "read error");
		return 1;
	}
	return 0;
}

static int cmd_frames(struct fedctl *fc, int argc, char **argv)
{
	(void)fc;
	if (argc >= 2 && !strcmp(argv[1], "encode"))
		return frames_encode(argc, argv);
	if (argc == 2 && !strcmp(argv[1], "decode"))
		return frames_decode();
	fprintf(stderr, "usage: fedctl frames encode [--type NAME] [--id N] [--flags N] | frames decode\n");
	return 100;
}

FEDCTL_COMMAND(frames_cmd, "frames", "frames encode [--type event] [--id N] [--flags N] | frames decode",
               "convert JSON lines to frames (stdin -> stdout) and frames to JSON lines", cmd_frames)
