/* fuzz_frame.c: libFuzzer harness for frame.c, the frame reader every
 * stage, fedctl and --stdio pipe go through. The input is a byte stream read
 * from a file descriptor with frame_read_fd until EOF or an error, as
 * `validated --stdio` and `fedctl frames decode` read stdin. The first two
 * bytes pick the reader's maximum frame size (so "too large" is reachable
 * with small inputs). For each frame read: its header re-encodes to exactly
 * the bytes read, the payload is NUL-terminated, the reader consumed exactly
 * header + payload, meta-line payloads split consistently and their meta
 * line goes through the strict JSON parser as the daemons parse it. A
 * refused header must never have allocated. */
#include "core/frame.h"
#include "matrix/json.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static struct json_doc meta_doc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0 && (fd = memfd_create("fuzz_frame", 0)) < 0)
		abort();
	if (size < 2)
		return 0;
	uint32_t max = ((uint32_t)data[0] << 8 | data[1]) * 4u;  /* 0 .. 262140 bytes */
	if (data[0] == 0xff)
		max = FRAME_MAX_DEFAULT;
	data += 2;
	size -= 2;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
		abort();

	size_t at = 0;
	for (;;) {
		struct frame f;
		const char *why = NULL;
		memset(&f, 0, sizeof f);
		int r = frame_read_fd(fd, max, &f, &why);
		off_t pos = lseek(fd, 0, SEEK_CUR);
		if (r == 0) {                    /* clean EOF only at a frame boundary */
			if (at != size || pos != (off_t)size)
				abort();
			break;
		}
		if (r < 0) {
			if (why == NULL || why[0] == 0 || f.payload != NULL)
				abort();
			/* the header decoder agrees with the reader about refusals */
			if (size - at >= FRAME_HDR_LEN) {
				struct frame g;
				const char *w2 = NULL;
				if (frame_hdr_decode(data + at, max, &g, &w2) == 0
				    && (size_t)g.len + FRAME_HDR_LEN <= size - at)
					abort();         /* a whole good frame was there */
			}
			break;
		}
		if (r != 1 || f.payload == NULL || f.payload[f.len] != 0 || f.len > max
		    || f.type == 0 || f.type > FT__MAX)
			abort();
		if (at + FRAME_HDR_LEN + f.len > size || pos != (off_t)(at + FRAME_HDR_LEN + f.len))
			abort();
		unsigned char h[FRAME_HDR_LEN];
		frame_hdr_encode(h, f.len, f.type, f.flags, f.id);
		if (memcmp(h, data + at, FRAME_HDR_LEN) != 0 || memcmp(f.payload, data + at + FRAME_HDR_LEN, f.len) != 0)
			abort();
		if (strcmp(frame_type_name(f.type), "unknown") == 0)
			abort();
		const char *meta, *body;
		size_t ml, bl;
		if (frame_split_meta(&f, &meta, &ml, &body, &bl) == 0) {
			if (meta != f.payload || ml + 1 + bl != f.len || meta[ml] != '\n' || memchr(meta, '\n', ml))
				abort();
			if (json_parse(&meta_doc, meta, ml, 8) == 0 && meta_doc.ntok == 0)
				abort();
		} else if (memchr(f.payload, '\n', f.len)) {
			abort();
		}
		at += FRAME_HDR_LEN + f.len;
		frame_free(&f);
		if (f.payload != NULL || f.len != 0)
			abort();
	}
	return 0;
}
