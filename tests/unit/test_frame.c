/* test_frame.c: the frame wire format and blocking frame I/O over a pipe. */
#include "../lib/tap.h"
#include "core/frame.h"
#include <string.h>
#include <unistd.h>

int main(void)
{
	unsigned char h[FRAME_HDR_LEN];
	struct frame f;
	const char *why = NULL;
	frame_hdr_encode(h, 300, FT_VERDICT, FF_PROXIED | FF_REPLY, 0x0102030405060708ULL);
	TAP_OK(h[0] == 0 && h[1] == 0 && h[2] == 1 && h[3] == 44, "length is big-endian");
	TAP_OK(h[4] == FRAME_MAGIC && h[5] == FT_VERDICT, "magic and type");
	TAP_OK(h[8] == 1 && h[15] == 8, "request id is big-endian");
	TAP_OK(frame_hdr_decode(h, 1000, &f, &why) == 0 && f.len == 300 && f.type == FT_VERDICT &&
	       f.flags == (FF_PROXIED | FF_REPLY) && f.id == 0x0102030405060708ULL, "header round trip");
	TAP_OK(frame_hdr_decode(h, 299, &f, &why) < 0 && strstr(why, "too large"), "over the maximum refused before allocating: %s", why);
	h[4] = 0x7b;
	TAP_OK(frame_hdr_decode(h, 1000, &f, &why) < 0 && strstr(why, "magic"), "garbage refused by magic");
	frame_hdr_encode(h, 1, 77, 0, 0);
	TAP_OK(frame_hdr_decode(h, 1000, &f, &why) < 0 && strstr(why, "type"), "unknown type refused");

	int p[2];
	TAP_OK(pipe(p) == 0, "pipe");
	const char big[10000] = { 'x' };
	frame_write_fd(p[1], FT_EVENT, 0, 42, "{\"a\":1}", 7);
	frame_write_fd(p[1], FT_VERDICT, 0, 43, "{\"verdict\":\"accept\"}\nBODY", 25);
	close(p[1]);
	TAP_OK(frame_read_fd(p[0], 1000, &f, &why) == 1 && f.id == 42 && f.len == 7 && !strcmp(f.payload, "{\"a\":1}"), "read event frame");
	frame_free(&f);
	TAP_OK(frame_read_fd(p[0], 1000, &f, &why) == 1 && f.type == FT_VERDICT, "read verdict frame");
	const char *meta, *body; size_t ml, bl;
	TAP_OK(frame_split_meta(&f, &meta, &ml, &body, &bl) == 0 && ml == 20 && bl == 4 && !memcmp(body, "BODY", 4), "meta line split");
	frame_free(&f);
	TAP_OK(frame_read_fd(p[0], 1000, &f, &why) == 0, "clean EOF at a frame boundary");
	close(p[0]);

	TAP_OK(pipe(p) == 0, "pipe 2");
	frame_write_fd(p[1], FT_EVENT, 0, 1, big, sizeof(big));
	close(p[1]);
	TAP_OK(frame_read_fd(p[0], 5000, &f, &why) < 0 && strstr(why, "too large"), "reader max enforced: %s", why);
	close(p[0]);

	TAP_OK(pipe(p) == 0, "pipe 3");
	unsigned char hh[FRAME_HDR_LEN];
	frame_hdr_encode(hh, 100, FT_EVENT, 0, 1);
	write(p[1], hh, sizeof(hh));
	write(p[1], "short", 5);
	close(p[1]);
	TAP_OK(frame_read_fd(p[0], 5000, &f, &why) < 0 && strstr(why, "truncated"), "truncated payload reported: %s", why);
	close(p[0]);
	TAP_OK(!strcmp(frame_type_name(FT_FETCH_RESULT), "fetch_result") && !strcmp(frame_type_name(99), "unknown"), "type names");
	return tap_done();
}
