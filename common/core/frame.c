/* frame.c: the frame wire format and blocking frame I/O (see frame.h).
 * The event-loop side lives in daemon.c; this file is what pipes, fedctl
 * and tests use. */
#include "core/frame.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *const type_names[FT__MAX + 1] = {
	"?", "event", "verdict", "fetch_req", "fetch_result", "wakeup",
	"stats_req", "stats", "error", "cancel", "recover", "hello", "purg_ctl"
};

const char *frame_type_name(int type)
{
	return (type > 0 && type <= FT__MAX) ? type_names[type] : "unknown";
}

void frame_free(struct frame *f)
{
	free(f->payload);
	f->payload = NULL;
	f->len = 0;
}

void frame_hdr_encode(unsigned char *h, uint32_t len, int type, uint16_t flags, uint64_t id)
{
	h[0] = (unsigned char)(len >> 24); h[1] = (unsigned char)(len >> 16);
	h[2] = (unsigned char)(len >> 8);  h[3] = (unsigned char)len;
	h[4] = FRAME_MAGIC;
	h[5] = (unsigned char)type;
	h[6] = (unsigned char)(flags >> 8); h[7] = (unsigned char)flags;
	for (int i = 15; i >= 8; i--) { h[i] = (unsigned char)(id & 0xff); id >>= 8; }
}

int frame_hdr_decode(const unsigned char *h, uint32_t max, struct frame *f, const char **why)
{
	static char msg[96];
	f->len = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
	f->type = h[5];
	f->flags = (uint16_t)((h[6] << 8) | h[7]);
	f->id = 0;
	for (int i = 8; i < 16; i++) f->id = (f->id << 8) | h[i];
	f->payload = NULL;
	if (h[4] != FRAME_MAGIC) { *why = "bad frame magic (not a fedpipe frame stream)"; return -1; }
	if (f->type == 0 || f->type > FT__MAX) { *why = "unknown frame type"; return -1; }
	if (f->len > max) {
		snprintf(msg, sizeof(msg), "frame too large (%u > %u bytes)", f->len, max);
		*why = msg;
		return -1;
	}
	return 0;
}

/* Read exactly n bytes; returns n, 0 on EOF before any byte, -1 otherwise. */
static ssize_t read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) return -1;
		if (r == 0) return got == 0 ? 0 : -2;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int frame_read_fd(int fd, uint32_t max, struct frame *f, const char **why)
{
	unsigned char h[FRAME_HDR_LEN];
	ssize_t r = read_full(fd, h, sizeof(h));
	if (r == 0) return 0;
	if (r == -2) { *why = "truncated frame header"; return -1; }
	if (r < 0) { *why = strerror(errno); return -1; }
	if (frame_hdr_decode(h, max, f, why) < 0) return -1;
	f->payload = malloc((size_t)f->len + 1);
	if (f->payload == NULL) { *why = "out of memory"; return -1; }
	r = f->len ? read_full(fd, f->payload, f->len) : 0;
	if (f->len && r != (ssize_t)f->len) {
		*why = r < 0 && r != -2 ? strerror(errno) : "truncated frame payload";
		frame_free(f);
		return -1;
	}
	f->payload[f->len] = 0;
	return 1;
}

int frame_write_all(int fd, const void *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)p + done, n - done);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) return -1;
		done += (size_t)w;
	}
	return 0;
}

int frame_write_fd(int fd, int type, uint16_t flags, uint64_t id, const void *p, size_t n)
{
	unsigned char h[FRAME_HDR_LEN];
	if (n > UINT32_MAX) { errno = EMSGSIZE; return -1; }
	frame_hdr_encode(h, (uint32_t)n, type, flags, id);
	if (n <= 4096) {
		unsigned char tmp[FRAME_HDR_LEN + 4096];
		memcpy(tmp, h, sizeof(h));
		if (n) memcpy(tmp + sizeof(h), p, n);
		return frame_write_all(fd, tmp, sizeof(h) + n);
	}
	if (frame_write_all(fd, h, sizeof(h)) < 0) return -1;
	return frame_write_all(fd, p, n);
}

int frame_split_meta(const struct frame *f, const char **meta, size_t *metalen,
                     const char **body, size_t *bodylen)
{
	const char *nl = f->payload ? memchr(f->payload, '\n', f->len) : NULL;
	if (nl == NULL) return -1;
	*meta = f->payload;
	*metalen = (size_t)(nl - f->payload);
	*body = nl + 1;
	*bodylen = f->len - *metalen - 1;
	return 0;
}

void frame_stage_path(char *out, size_t cap, const char *run_dir, const char *stage)
{
	snprintf(out, cap, "%s/%s.sock", run_dir, stage);
}

int frame_connect_stage(const char *run_dir, const char *stage)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	char path[sizeof(sa.sun_path) + 64];
	frame_stage_path(path, sizeof(path), run_dir, stage);
	if (strlen(path) >= sizeof(sa.sun_path)) { errno = ENAMETOOLONG; return -1; }
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno; close(fd); errno = e; return -1;
	}
	return fd;
}
