/* test_fetchreq.c: core/fetchreq.h, the FETCH_REQ payload as fetchd reads
 * it. Every member is found whatever its place and however its name is
 * spelled in JSON (escapes decode to the same key); members it does not
 * know are ignored; null is absent; each bad member gets its own message,
 * and with several bad ones the message is the first in the fixed order
 * (op, event_id, room_id, fanout, servers, events, earliest, limit,
 * max_width, max_attempts, timeout_ms, fanout's value, hints_only, checks);
 * duplicate keys are bad JSON; an encoded request reads back the same. */
#include <string.h>
#include "core/fetchreq.h"
#include "../lib/tap.h"

static char err[256];

static int parse(const char *js, struct fetch_req *r)
{
	err[0] = 0;
	return fetchreq_parse(js, strlen(js), r, err, sizeof err);
}

static void bad(const char *js, const char *want, const char *what)
{
	struct fetch_req r;
	int rc = parse(js, &r);
	TAP_OK(rc < 0 && strcmp(err, want) == 0, "%s: refused with \"%s\" (got %d \"%s\")", what, want, rc, err);
}

int main(void)
{
	struct fetch_req r, r2;

	/* every member, in an unusual order */
	TAP_OK(parse("{\"checks\":{\"hashes\":true},\"limit\":7,\"servers\":[\"a.test\",\"b.test\"],"
	             "\"events\":[\"$e1\"],\"earliest\":[\"$e0\"],\"room_id\":\"!r:x.test\","
	             "\"fanout\":\"linear:1,2\",\"max_width\":3,\"max_attempts\":5,\"timeout_ms\":900,"
	             "\"hints_only\":true,\"event_id\":\"$e:x.test\",\"op\":\"backfill\"}", &r) == 0,
	       "a request naming every member parses (%s)", err);
	TAP_OK(r.op == FOP_BACKFILL && !strcmp(r.event_id, "$e:x.test") && !strcmp(r.room_id, "!r:x.test"),
	       "op, event_id, room_id");
	TAP_OK(r.nservers == 2 && !strcmp(r.servers[0], "a.test") && !strcmp(r.servers[1], "b.test") &&
	       r.nevents == 1 && !strcmp(r.events[0], "$e1") && r.nearliest == 1 && !strcmp(r.earliest[0], "$e0"),
	       "servers (in order), events, earliest");
	TAP_OK(r.limit == 7 && r.max_width == 3 && r.max_attempts == 5 && r.timeout_ms == 900 && r.hints_only == 1,
	       "limit, max_width, max_attempts, timeout_ms, hints_only");
	TAP_OK(r.fanout.kind == FAN_LINEAR && r.fanout.a == 1 && r.fanout.b == 2, "fanout");
	TAP_OK(r.checks == (FETCH_CHECK_EVENT_ID | FETCH_CHECK_HASHES), "checks: event_id implied, hashes added");

	/* encode, read back */
	struct buf b;
	buf_init(&b);
	fetchreq_encode(&r, &b);
	TAP_OK(fetchreq_parse(b.data, b.len, &r2, err, sizeof err) == 0 && r2.op == r.op &&
	       !strcmp(r2.event_id, r.event_id) && !strcmp(r2.room_id, r.room_id) && r2.nservers == 2 &&
	       !strcmp(r2.servers[1], "b.test") && r2.limit == 7 && r2.max_width == 3 && r2.max_attempts == 5 &&
	       r2.timeout_ms == 900 && r2.hints_only && r2.checks == r.checks && r2.fanout.kind == FAN_LINEAR,
	       "an encoded request reads back the same");
	fetchreq_free(&r2);
	buf_free(&b);
	fetchreq_free(&r);

	/* names spelled with escapes, unknown members, nulls */
	TAP_OK(parse("{\"\\u006fp\":\"event\",\"event\\u005fid\":\"$a\",\"x\":[1,{\"op\":\"state_ids\"}],"
	             "\"room_id\":null,\"limit\":null,\"servers\":null}", &r) == 0 &&
	       r.op == FOP_EVENT && !strcmp(r.event_id, "$a") && !r.room_id[0] && r.limit == 0 && r.nservers == 0,
	       "escaped names found, unknown members (and their nested keys) ignored, null is absent (%s)", err);
	TAP_OK(r.checks == -1 && r.fanout.kind == FAN_DEFAULT && !r.hints_only, "defaults when absent");
	fetchreq_free(&r);

	/* no op: the default op, or refused */
	TAP_OK(fetchreq_parse_op("{\"event_id\":\"$a\"}", 17, FOP_EVENT, &r, err, sizeof err) == 0 &&
	       r.op == FOP_EVENT, "no op: the caller's default (a recovery)");
	fetchreq_free(&r);
	bad("{\"event_id\":\"$a\"}", "unknown op ''", "no op and no default");

	/* each bad member, its message */
	bad("[1]", "not an object", "an array");
	bad("{\"op\":\"event\",\"op\":\"event\"}", "bad JSON: duplicate_key at 14", "a duplicate key");
	bad("{\"op\":\"fly\"}", "unknown op 'fly'", "an unknown op");
	bad("{\"op\":1}", "op: not a string (or too long)", "op not a string");
	bad("{\"op\":\"event\",\"event_id\":5}", "event_id: not a string (or too long)", "event_id");
	bad("{\"op\":\"event\",\"room_id\":[]}", "room_id: not a string (or too long)", "room_id");
	bad("{\"op\":\"event\",\"servers\":\"a\"}", "servers: not an array", "servers not an array");
	bad("{\"op\":\"event\",\"events\":[\"\"]}", "events: entries must be non-empty strings < 512 bytes",
	    "an empty events entry");
	bad("{\"op\":\"event\",\"earliest\":[3]}", "earliest: entries must be non-empty strings < 512 bytes",
	    "earliest entry not a string");
	bad("{\"op\":\"event\",\"limit\":100001}", "limit: not an integer in [0, 100000]", "limit");
	bad("{\"op\":\"event\",\"max_width\":1025}", "max_width: not an integer in [0, 1024]", "max_width");
	bad("{\"op\":\"event\",\"max_attempts\":-1}", "max_attempts: not an integer in [0, 100000]", "max_attempts");
	bad("{\"op\":\"event\",\"timeout_ms\":\"9\"}", "timeout_ms: not an integer in [0, 86400000]", "timeout_ms");
	bad("{\"op\":\"event\",\"fanout\":\"wide\"}",
	    "bad fanout 'wide' (fixed:N | linear:S,STEP | geometric:S,F)", "fanout");
	bad("{\"op\":\"event\",\"hints_only\":1}", "hints_only: not a boolean", "hints_only");
	bad("{\"op\":\"event\",\"checks\":[]}", "checks: not an object", "checks");
	bad("{\"op\":\"event\",\"checks\":{\"hashes\":1}}", "checks.hashes: not a boolean", "checks.hashes");

	/* several bad members: the first in the fixed order speaks */
	bad("{\"checks\":1,\"limit\":-1,\"servers\":3,\"event_id\":1,\"op\":\"event\"}",
	    "event_id: not a string (or too long)", "four bad members: event_id's message");
	bad("{\"hints_only\":2,\"timeout_ms\":-5,\"fanout\":\"x\",\"op\":\"event\"}",
	    "timeout_ms: not an integer in [0, 86400000]", "timeout_ms before fanout's value and hints_only");
	bad("{\"earliest\":1,\"fanout\":7,\"op\":\"event\"}", "fanout: not a string (or too long)",
	    "fanout (not a string) before earliest");
	return tap_done();
}
