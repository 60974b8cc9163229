/* frame.h: framed messages over Unix sockets and pipes.
 * Wire format (network byte order), 16-byte header then payload:
 *   u32 length (payload bytes, header excluded) | u8 magic 0xFD | u8 type |
 *   u16 flags | u64 request id
 * Promises: a reader checks magic, type and length against its maximum
 * BEFORE allocating; a bad header is reported (never allocated or skipped).
 * Payloads: EVENT carries a PDU's bytes verbatim (id = inbox key, 0 if none);
 * the other types carry JSON, or a "meta line" (compact JSON object, '\n',
 * then raw bytes) where raw bytes ride along (VERDICT, FETCH_RESULT). */
#ifndef FP_FRAME_H
#define FP_FRAME_H
#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_LEN   16
#define FRAME_MAGIC     0xFD
#define FRAME_MAX_DEFAULT (4u << 20)   /* 4 MiB: a PDU is <= 64 KiB canonical, raw <= 1 MiB */

enum frame_type {
	FT_EVENT        = 1,  /* PDU bytes verbatim; id = inbox seq (0: not in inbox) */
	FT_VERDICT      = 2,  /* meta {"verdict":"accept"|"reject","event_id","reason","message",
	                         "redacted","room_id","room_version","from"} \n canonical PDU bytes */
	FT_FETCH_REQ    = 3,  /* JSON {"op","event_id","room_id","servers":[],"limit","fanout",
	                         "checks":{...},"timeout_ms","events":[...]}; id = caller's request id */
	FT_FETCH_RESULT = 4,  /* meta {"ok":bool,"error","server","tried":[...]} \n response body */
	FT_WAKEUP       = 5,  /* JSON {"outbox": N} : rows exist up to outbox seq N */
	FT_STATS_REQ    = 6,  /* empty */
	FT_STATS        = 7,  /* JSON object: stage, pid, uptime_s, counters {...}, gauges {...} */
	FT_ERROR        = 8,  /* JSON {"errcode","error"} */
	FT_CANCEL       = 9,  /* empty; cancels the caller's request with the same id */
	FT_RECOVER      = 10, /* JSON {"event_id","room_id","servers":[]} cache-warm recovery job */
	FT_HELLO        = 11, /* JSON {"stage": name} first frame a client may send */
	FT_PURG_CTL     = 12, /* an operator's request to purgatoryd, JSON {"op":"retry","room_id"}
	                         (fetch the room's missing events now, backoff reset) or
	                         {"op":"drop","event_id"} (forget a held event) or
	                         {"op":"stored","event_ids":[..]} (the fleet applier stored
	                         these: release what waits on them); the reply has
	                         the same type and id, FF_REPLY, JSON {"ok":true,...} or
	                         {"ok":false,"error":"not_found"|"store_full"|"bad_request"} */
	FT__MAX         = 12
};

#define FF_PROXIED  0x0001   /* made on behalf of another node: never re-proxy */
#define FF_REPLY    0x0002   /* a reply to a request with the same id */
#define FF_DEEP     0x0004   /* EVENT: deep checks requested even if off by default */

struct frame {
	uint32_t len;
	uint8_t  type;
	uint16_t flags;
	uint64_t id;
	char    *payload;   /* len bytes + a NUL; owned by the frame */
};

const char *frame_type_name(int type);
void frame_free(struct frame *f);

/* Encode a header into h[FRAME_HDR_LEN]. */
void frame_hdr_encode(unsigned char *h, uint32_t len, int type, uint16_t flags, uint64_t id);
/* Decode and check a header; returns 0 or -1 with *why set ("bad magic", ...). */
int  frame_hdr_decode(const unsigned char *h, uint32_t max, struct frame *f, const char **why);

/* Blocking I/O on a file descriptor (pipes, --stdio mode, fedctl).
 * frame_read_fd: 1 frame read, 0 clean EOF at a frame boundary, -1 error
 * (*why says what: "truncated frame", "frame too large (N > max)", strerror...). */
int  frame_read_fd(int fd, uint32_t max, struct frame *f, const char **why);
int  frame_write_fd(int fd, int type, uint16_t flags, uint64_t id, const void *p, size_t n);
/* write(2) all n bytes (retrying EINTR and short writes); 0 or -1 (errno). */
int  frame_write_all(int fd, const void *p, size_t n);

/* Split a meta-line payload: meta = first line (JSON), body = the rest.
 * Returns 0, or -1 if there is no '\n'. */
int  frame_split_meta(const struct frame *f, const char **meta, size_t *metalen,
                      const char **body, size_t *bodylen);

/* Connect to <run_dir>/<stage>.sock (blocking). Returns fd or -1 (errno). */
int  frame_connect_stage(const char *run_dir, const char *stage);
/* Path of a stage's socket into out. */
void frame_stage_path(char *out, size_t cap, const char *run_dir, const char *stage);

#endif
