/* fetchreq.h: building and parsing the fetchd protocol frames.
 * FT_FETCH_REQ payload (JSON): {"op","event_id","room_id","servers":[hints],
 *   "events":[window],"earliest":[..],"limit":N,"fanout":"geometric:1,2",
 *   "max_width":N,"max_attempts":N,"checks":{"event_id","hashes","signatures"},
 *   "timeout_ms":N,"hints_only":bool}; all but "op" optional ("hints_only":
 *   ask only the servers in "servers", never the room's or those named in
 *   IDs; implied by FF_PROXIED). FF_PROXIED on the frame makes the
 *   upstream HTTP request carry X-Fed-Proxied: 1 and makes it a recovery:
 *   fetchd serves it after every other request (admission and per-server
 *   throttle). FT_CANCEL with the same id cancels it. Server names in
 *   "servers" and in IDs must be Matrix server names (common/servername.h)
 *   unless the configuration names them; others are dropped.
 * FT_RECOVER (served's cache-warm recovery, {"event_id","room_id","servers"})
 *   is taken as an "event" FETCH_REQ with FF_PROXIED; same reply.
 * FT_FETCH_RESULT payload (FF_REPLY, same id): meta line
 *   {"ok":true,"server":S,"tried":[..]} or
 *   {"ok":false,"error":"not_found|no_candidates|cancelled|busy|timeout|bad_request",
 *    "tried":[..],"why":[..]} then '\n' then the raw federation response body.
 * Ops: event, auth_event (GET /event/{id}), auth_chain (/event_auth/{room}/{id}),
 * state_ids (/state_ids/{room}?event_id=), missing_events (POST
 * /get_missing_events/{room}: latest_events = events or [event_id], earliest_events
 * = earliest), backfill (/backfill/{room}?v=events or event_id&limit=), server_keys
 * (/_matrix/key/v2/server on the server named by event_id, asked of that server;
 * POST /_matrix/key/v2/query asked of a trusted notary; "events" holds the key
 * IDs wanted). */
#ifndef FP_FETCHREQ_H
#define FP_FETCHREQ_H
#include <stddef.h>
#include "core/buf.h"
#include "core/frame.h"

enum fetch_op {
	FOP_EVENT, FOP_AUTH_EVENT, FOP_AUTH_CHAIN, FOP_STATE_IDS,
	FOP_MISSING_EVENTS, FOP_BACKFILL, FOP_SERVER_KEYS, FOP__COUNT
};
const char *fetchreq_op_name(int op);
int  fetchreq_op_parse(const char *s);            /* -1 if unknown */

/* Staged fan-out growth: width of round r (0-based) before clamps. */
enum fanout_kind { FAN_DEFAULT = 0, FAN_FIXED, FAN_LINEAR, FAN_GEOMETRIC };
struct fetch_fanout { int kind; int a, b; };   /* fixed:a | linear:a,b | geometric:a,b */
/* "fixed:N", "linear:START,STEP", "geometric:START,FACTOR" (also "sequential"). */
int  fetchreq_fanout_parse(const char *s, struct fetch_fanout *f);
void fetchreq_fanout_str(const struct fetch_fanout *f, char *out, size_t cap);
/* Width of round r (>= 1, saturating). */
int  fetchreq_fanout_width(const struct fetch_fanout *f, int r);

#define FETCH_CHECK_EVENT_ID   0x1     /* same bits as VAL_CHECK_* */
#define FETCH_CHECK_HASHES     0x2
#define FETCH_CHECK_SIGNATURES 0x4

struct fetch_req {
	int    op;
	char   event_id[256];
	char   room_id[256];
	char **servers;  size_t nservers;     /* caller hints, in order */
	char **events;   size_t nevents;      /* ID window */
	char **earliest; size_t nearliest;
	int    limit;                          /* 0: op default */
	struct fetch_fanout fanout;            /* FAN_DEFAULT: op profile */
	int    max_width, max_attempts;        /* 0: profile */
	int    checks;                         /* -1: default */
	long long timeout_ms;                  /* 0: none (the fetch's own deadline) */
	int    hints_only;                     /* only the servers in "servers" */
};

void fetchreq_init(struct fetch_req *r);
void fetchreq_free(struct fetch_req *r);
/* Parse a FETCH_REQ payload. 0, or -1 with a message in err. */
int  fetchreq_parse(const char *json, size_t n, struct fetch_req *r, char *err, size_t errlen);
/* The same with an op for a payload that names none (-1: "op" required). */
int  fetchreq_parse_op(const char *json, size_t n, int default_op, struct fetch_req *r,
                       char *err, size_t errlen);
/* Encode to JSON (appends to out). */
void fetchreq_encode(const struct fetch_req *r, struct buf *out);
/* Append a string to a list (servers/events/earliest). */
void fetchreq_list_add(char ***list, size_t *n, const char *s);
/* Split "a,b,c" into a list. */
void fetchreq_list_split(char ***list, size_t *n, const char *csv);

struct fetch_result {
	int    ok;
	char   error[32];
	char   server[256];
	char **tried; size_t ntried;
	char **why;   size_t nwhy;
	const char *body; size_t body_len;    /* points into the frame */
};
/* Meta line for a result (no newline). tried/why may be NULL. */
void fetchres_meta(struct buf *out, int ok, const char *error, const char *server,
                   char *const *tried, char *const *why, size_t ntried);
/* Parse an FT_FETCH_RESULT frame. 0 or -1. */
int  fetchres_parse(const struct frame *f, struct fetch_result *r);
void fetchres_free(struct fetch_result *r);

#endif
