/* test_validate.c: validate_pdu() (common/matrix/validate.c) on events signed with
 * real ed25519 keys: verdicts and exact reason codes for tier 1 conformance,
 * tier 2 event ID / content hash / signatures, switches, seen cache, reuse. */
#include "../lib/tap.h"
#include "matrix/validate.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include <sodium.h>
#include <string.h>

#define SERVER "test.server"
#define TS 1700000000000LL
static const char *PREV = "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static struct signing_key key, other;        /* same key ID "ed25519:t1" */
static struct keyring kr_good, kr_wrong, kr_expired, kr_edge, kr_none;

/* Key lookup through a keyring built from self-signed server key documents. */
static int asked_non_ed25519;
static int lookup(void *arg, const char *server, const char *key_id, unsigned char pk[32],
                  int64_t *until)
{
	if (strncmp(key_id, "ed25519:", 8) != 0)
		asked_non_ed25519++;
	const struct verify_key *k = keyring_find(arg, server, key_id);
	if (!k)
		return -1;
	memcpy(pk, k->pk, 32);
	*until = k->valid_until_ts;
	return 0;
}

static void ring(struct keyring *kr, const struct signing_key *k, int64_t valid_for)
{
	struct buf doc;
	char err[256] = "";
	buf_init(&doc);
	keyring_init(kr);
	int ok = signing_key_doc(k, SERVER, 0, valid_for, &doc) == 0
	         && keyring_add_server_doc(kr, doc.data, doc.len, err, sizeof err) > 0;
	if (!ok) {
		printf("Bail out! key document: %s\n", err);
		exit(1);
	}
	buf_free(&doc);
}

/* Unsigned event JSON. */
static char *ev_json(const char *sender, const char *room, const char *type, int nprev,
                     int nauth, const char *content, const char *extra)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"room_id\":\"%s\",\"sender\":\"%s\",\"type\":\"%s\",\"content\":%s,"
	           "\"origin_server_ts\":%lld,\"depth\":5,\"origin\":\"" SERVER "\",\"prev_events\":[",
	           room, sender, type, content, TS);
	for (int i = 0; i < nprev; i++)
		buf_printf(&b, "%s\"%s\"", i ? "," : "", PREV);
	buf_adds(&b, "],\"auth_events\":[");
	for (int i = 0; i < nauth; i++)
		buf_printf(&b, "%s\"%s\"", i ? "," : "", PREV);
	buf_printf(&b, "]%s}", extra ? extra : "");
	return buf_steal(&b);
}

/* Sign (takes ownership of json); event ID to eid if not NULL. */
static char *sign_as(char *json, int rv, const char *server, const struct signing_key *k,
                     char *eid)
{
	struct buf out;
	char id[PDU_EVENT_ID_MAX];
	buf_init(&out);
	if (pdu_sign(json, strlen(json), rv, server, k->key_id, k->sk, &out, eid ? eid : id) < 0) {
		printf("Bail out! pdu_sign failed on %.200s\n", json);
		exit(1);
	}
	free(json);
	return buf_steal(&out);
}

static char *sign(char *json, int rv, char *eid) { return sign_as(json, rv, SERVER, &key, eid); }

static char *msg_event(const char *body, const char *extra)
{
	char content[256];
	snprintf(content, sizeof content, "{\"body\":\"%s\",\"msgtype\":\"m.text\"}", body);
	return ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 1, 2, content, extra);
}

/* Copy of s with the first `from` replaced by `to` (bails out if absent). */
static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	if (!p) {
		printf("Bail out! '%s' not in %.200s\n", from, s);
		exit(1);
	}
	struct buf b;
	buf_init(&b);
	buf_add(&b, s, (size_t)(p - s));
	buf_adds(&b, to);
	buf_adds(&b, p + strlen(from));
	return buf_steal(&b);
}

/* The `known` callback: the event stored is the one whose ID is arg. */
static int known_if_equal(void *arg, const char *id) { return strcmp(arg, id) == 0; }

/* The `rv` callback: arg points at the room version of every room. */
static int room_rv(void *arg, const char *room_id) { (void)room_id; return *(const int *)arg; }

static struct validator V;
static struct val_result R;

static struct val_opts opts(struct keyring *kr)
{
	struct val_opts o = {0};
	o.room_version = 10;
	o.checks = VAL_CHECK_ALL;
	o.key = lookup;
	o.key_arg = kr;
	return o;
}

static int run_n(const struct val_opts *o, const char *s, size_t n)
{
	int rc = validate_pdu(&V, o, s, n, &R);
	if (rc != R.accept)
		printf("# return value %d != r->accept %d\n", rc, R.accept);
	return rc == R.accept;
}
static int run(const struct val_opts *o, const char *s) { return run_n(o, s, strlen(s)); }

static void expect_reject_n(const struct val_opts *o, const char *s, size_t n,
                            enum val_reason why, const char *what)
{
	int same = run_n(o, s, n);
	TAP_OK(same && !R.accept && R.reason == why && R.message[0]
	       && strcmp(val_reason_str(R.reason), val_reason_str(why)) == 0,
	       "%s -> reject %s (got %s %s: %s)", what, val_reason_str(why),
	       R.accept ? "accept" : "reject", val_reason_str(R.reason), R.message);
}
static void expect_reject(const struct val_opts *o, const char *s, enum val_reason why,
                          const char *what) { expect_reject_n(o, s, strlen(s), why, what); }

static int accepted_plain(void)
{
	return R.accept && R.reason == VR_OK && !R.redacted && !R.skipped;
}


/* Copy of json with the string value after `prefix` rewritten with JSON
 * escapes: '/' as "\/", every other byte as "\u00XX" (the same value). */
static char *escape_value(const char *json, const char *prefix)
{
	const char *p = strstr(json, prefix);
	if (!p) {
		printf("Bail out! '%s' not in %.200s\n", prefix, json);
		exit(1);
	}
	p += strlen(prefix);
	struct buf b;
	buf_init(&b);
	buf_add(&b, json, (size_t)(p - json));
	for (; *p != '"'; p++) {
		if (*p == '/')
			buf_adds(&b, "\\/");
		else
			buf_printf(&b, "\\u%04X", (unsigned char)*p);
	}
	buf_adds(&b, p);
	return buf_steal(&b);
}

/* Issue 13 item 7: identifiers are checked on all their decoded bytes; a
 * NUL or control character in one is bad_id_char, never a shorter name
 * that happens to pass; base64 in JSON strings is decoded after the JSON
 * escapes are undone. */
static void identifier_cases(const struct val_opts *o, const char *good, const char *eid10)
{
	struct { const char *sender, *room, *type, *extra; enum val_reason why; const char *what; } c[] = {
		{ "@alice:" SERVER, "!a:" SERVER "\\u0000!b:evil.example", "m.room.message", NULL, VR_BAD_ID_CHAR,
		  "room_id '!a:server\\u0000!b:evil' (a truncated copy is a valid room ID)" },
		{ "@alice:" SERVER, "!a\\u0000:" SERVER, "m.room.message", NULL, VR_BAD_ID_CHAR, "room_id '!a\\u0000:server'" },
		{ "@alice:" SERVER, "!a:" SERVER "\\n<0>x", "m.room.message", NULL, VR_BAD_ID_CHAR, "room_id with a newline" },
		{ "@alice:" SERVER, "!a\x7f:" SERVER, "m.room.message", NULL, VR_BAD_ID_CHAR, "room_id with a raw DEL byte" },
		{ "@alice:" SERVER "\\u0000@admin:victim.example", "!room:" SERVER, "m.room.message", NULL, VR_BAD_ID_CHAR,
		  "sender '@alice:server\\u0000...'" },
		{ "@al\\u001bice:" SERVER, "!room:" SERVER, "m.room.message", NULL, VR_BAD_ID_CHAR, "sender with ESC" },
		{ "@alice:" SERVER, "!room:" SERVER, "m.room.create\\u0000x", NULL, VR_BAD_ID_CHAR,
		  "type 'm.room.create\\u0000x' (strcmp would call it a create event)" },
		{ "@alice:" SERVER, "!room:" SERVER, "m.room.topic", ",\"state_key\":\"a\\u0000b\"", VR_BAD_ID_CHAR,
		  "state_key with NUL" },
		{ "@alice:" SERVER, "!room:" SERVER, "m.room.member", ",\"state_key\":\"@bob:" SERVER "\\n\"", VR_BAD_ID_CHAR,
		  "m.room.member state_key with a newline" },
		{ "@alice:" SERVER, "!room:" SERVER, "m.room.member", ",\"state_key\":\"bob\"", VR_BAD_ID,
		  "m.room.member state_key not a user ID" },
		{ "@alice:" SERVER, "!room:" SERVER, "m.room.member", ",\"state_key\":\"@bob:" SERVER "\\u0000x\"", VR_BAD_ID_CHAR,
		  "m.room.member state_key with NUL" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char *ev = sign(ev_json(c[i].sender, c[i].room, c[i].type, 1, 1,
		                        "{\"membership\":\"join\"}", c[i].extra), 10, NULL);
		expect_reject(o, ev, c[i].why, c[i].what);
		if (c[i].why == VR_BAD_ID_CHAR && strncmp(c[i].what, "room_id", 7) == 0)
			TAP_OK(R.room_id[0] == 0, "  ... and the verdict names no room (got '%s')", R.room_id);
		free(ev);
	}
	struct { const char *extra, *what; } okc[] = {
		{ ",\"state_key\":\"a\\tb\\u007f\"", "a non-member state_key may hold TAB and DEL (any string but NUL)" },
		{ ",\"state_key\":\"\"", "empty state_key" },
	};
	for (size_t i = 0; i < sizeof okc / sizeof okc[0]; i++) {
		char *ev = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.topic", 1, 1, "{}", okc[i].extra), 10, NULL);
		TAP_OK(run(o, ev) && accepted_plain(), "%s: accepted (%s %s)", okc[i].what,
		       val_reason_str(R.reason), R.message);
		free(ev);
	}
	char *member = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.member", 1, 1,
	                            "{\"membership\":\"join\"}", ",\"state_key\":\"@alice:" SERVER "\""), 10, NULL);
	TAP_OK(run(o, member) && accepted_plain(), "m.room.member with a user ID state_key accepted");
	free(member);

	char *plain = ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 1, 1, "{}", NULL);
	char *x = sign(replace(plain, "\"origin\":\"" SERVER "\"", "\"origin\":\"" SERVER "\\u0000evil\""), 10, NULL);
	expect_reject(o, x, VR_BAD_ID_CHAR, "origin with NUL");
	free(x);
	x = sign(replace(plain, PREV, "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\\u0000"), 10, NULL);
	expect_reject(o, x, VR_BAD_ID_CHAR, "prev/auth event ID with NUL");
	free(x);
	free(plain);
	char cid[160];
	snprintf(cid, sizeof cid, "\"event_id\":\"%s\\u0000junk\",\"hashes\"", eid10);
	x = replace(good, "\"hashes\"", cid);
	expect_reject(o, x, VR_BAD_ID_CHAR, "carried event_id = the right ID + \\u0000junk");
	free(x);
	x = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.create", 0, 0,
	                 "{\"room_version\":\"10\\u0000\"}", ",\"state_key\":\"\""), 10, NULL);
	struct val_opts norv = *o;
	norv.room_version = 0;
	expect_reject(&norv, x, VR_BAD_ROOM_VERSION, "create event with room_version \"10\\u0000\"");
	free(x);

	/* base64 written with JSON escapes is the same value */
	x = escape_value(good, "\"sha256\":\"");
	TAP_OK(run(o, x) && accepted_plain() && strcmp(R.event_id, eid10) == 0,
	       "hashes.sha256 written as \\u00XX/\\/ escapes: same hash, accepted unredacted (%s %s)",
	       val_reason_str(R.reason), R.message);
	free(x);
	x = escape_value(good, "\"ed25519:t1\":\"");
	TAP_OK(run(o, x) && accepted_plain() && strcmp(R.event_id, eid10) == 0,
	       "signature written as \\u00XX/\\/ escapes: verifies (%s %s)", val_reason_str(R.reason), R.message);
	free(x);
	/* a message cut inside a multi-byte character stays valid UTF-8 (the
	 * verdict is JSON): 200-byte server + 27 two-byte characters of key ID */
	for (int pad = 0; pad < 2; pad++) {
		char srv[256], sender[300], ev_extra[512];
		memset(srv, 'h', 199 + pad);
		strcpy(srv + 199 + pad, ".x");
		snprintf(sender, sizeof sender, "@u:%s", srv);
		snprintf(ev_extra, sizeof ev_extra, ",\"signatures\":{\"%s\":{\"ed25519:"
		         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
		         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\":\"AAAA\"}}"
		         ",\"hashes\":{\"sha256\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", srv);
		x = ev_json(sender, "!room:" SERVER, "m.room.message", 1, 1, "{}", ev_extra);
		run(o, x);
		struct buf m;
		struct json_doc jd = { 0 };
		buf_init(&m);
		val_result_meta(&R, &m);
		TAP_OK(!R.accept && R.reason == VR_UNKNOWN_KEY && json_parse(&jd, m.data, m.len, 8) == 0,
		       "unknown_key message cut inside a 2-byte character (pad %d): verdict still valid JSON (%zu-byte message)",
		       pad, strlen(R.message));
		json_doc_free(&jd);
		buf_free(&m);
		free(x);
	}
	x = replace(good, "\"ed25519:t1\":\"", "\"ed25519:t1\\u0000x\":\"");
	expect_reject(o, x, VR_UNKNOWN_KEY, "signature under key ID 'ed25519:t1\\u0000x' is not key ed25519:t1");
	free(x);
}

int main(void)
{
	if (sodium_init() < 0 || signing_key_generate(&key, "t1") < 0
	    || signing_key_generate(&other, "t1") < 0) {
		printf("Bail out! libsodium\n");
		return 1;
	}
	ring(&kr_good, &key, 4102444800000LL);
	ring(&kr_wrong, &other, 4102444800000LL);
	ring(&kr_expired, &key, TS - 1);         /* valid_until = TS - 1 < origin_server_ts */
	ring(&kr_edge, &key, TS);               /* valid_until = origin_server_ts */
	keyring_init(&kr_none);
	validator_init(&V, 0);
	val_result_init(&R);
	struct val_opts o = opts(&kr_good);
	char eid10[PDU_EVENT_ID_MAX], eid11[PDU_EVENT_ID_MAX];

	/* ---- good events ---- */
	char *good = sign(msg_event("hello", NULL), 10, eid10);
	char *good11 = sign(msg_event("hello", NULL), 11, eid11);
	TAP_OK(strcmp(val_reason_str(VR_OK), "ok") == 0 && strcmp(val_reason_str(VR_BAD_SIGNATURE), "bad_signature") == 0
	       && strcmp(val_reason_str(VR__COUNT), "internal") == 0, "val_reason_str gives the stable strings");
	TAP_OK(strcmp(eid10, eid11) != 0, "v10 and v11 event IDs differ ('origin' is redacted in v11 only)");
	TAP_OK(run(&o, good) && accepted_plain() && strcmp(R.event_id, eid10) == 0 && R.room_version == 10
	       && strcmp(R.room_id, "!room:" SERVER) == 0 && strcmp(R.sender_server, SERVER) == 0,
	       "good v10 event accepted, event_id %s as pdu_sign said, room_version %d", R.event_id, R.room_version);
	o.room_version = 11;
	TAP_OK(run(&o, good11) && accepted_plain() && strcmp(R.event_id, eid11) == 0 && R.room_version == 11,
	       "good v11 event accepted, event_id as pdu_sign said, room_version %d", R.room_version);
	expect_reject(&o, good, VR_BAD_SIGNATURE, "v10-signed event validated as v11");
	o.room_version = 10;

	/* ---- content hash mismatch: accepted redacted ---- */
	char *tampered = replace(good, "\"hello\"", "\"HELLO\"");
	o.want_pdu = 1;
	TAP_OK(run(&o, tampered) && R.accept && R.reason == VR_OK && R.redacted == 1
	       && strcmp(R.event_id, eid10) == 0,
	       "tampered content -> accepted with redacted=1, same event ID (%s)", R.message);
	TAP_OK(R.pdu.len > 0 && !strstr(R.pdu.data, "HELLO") && !strstr(R.pdu.data, "body")
	       && strstr(R.pdu.data, "\"content\":{}") && strstr(R.pdu.data, "\"signatures\":{"),
	       "want_pdu on tampered content returns the redacted PDU: %.120s", R.pdu.data);
	TAP_OK(run(&o, good) && accepted_plain() && R.pdu.len == strlen(good) && strcmp(R.pdu.data, good) == 0,
	       "want_pdu on a good event returns its canonical bytes");
	o.want_pdu = 0;
	TAP_OK(run(&o, good) && R.pdu.len == 0, "without want_pdu no PDU bytes are returned");

	/* ---- signatures and keys ---- */
	char *ts_tamper = replace(good, "1700000000000", "1700000000001");
	expect_reject(&o, ts_tamper, VR_BAD_SIGNATURE, "tampered origin_server_ts");
	char *snd_tamper = replace(good, "\"@alice:", "\"@mallory:");
	expect_reject(&o, snd_tamper, VR_BAD_SIGNATURE, "tampered sender localpart");
	struct val_opts ow = opts(&kr_wrong);
	expect_reject(&ow, good, VR_BAD_SIGNATURE, "lookup returns a different public key");
	struct val_opts on = opts(&kr_none);
	expect_reject(&on, good, VR_UNKNOWN_KEY, "no key known");
	TAP_OK(strcmp(R.missing_key_id, "ed25519:t1") == 0, "unknown_key sets missing_key_id (%s)", R.missing_key_id);
	on.key = NULL;
	expect_reject(&on, good, VR_UNKNOWN_KEY, "no key lookup callback at all");
	struct val_opts oe = opts(&kr_expired);
	expect_reject(&oe, good, VR_EXPIRED_KEY, "key valid_until_ts before origin_server_ts");
	struct val_opts oedge = opts(&kr_edge);
	TAP_OK(run(&oedge, good) && accepted_plain(), "key valid_until_ts equal to origin_server_ts accepted");
	char *other_srv = sign_as(msg_event("hello", NULL), 10, "other.server", &key, NULL);
	expect_reject(&o, other_srv, VR_MISSING_SIGNATURE, "only a signature by another server");
	char *foo = sign(msg_event("hello", ",\"signatures\":{\"" SERVER "\":{\"foo:1\":\"bm90IGEgc2lnbmF0dXJl\"}}"), 10, NULL);
	TAP_OK(strstr(foo, "\"foo:1\"") && strstr(foo, "\"ed25519:t1\"") && run(&o, foo) && accepted_plain()
	       && strcmp(R.event_id, eid10) == 0 && asked_non_ed25519 == 0, "unknown algorithm 'foo:1' skipped beside a good ed25519 signature");
	char *foo_only = replace(foo, "\"ed25519:t1\"", "\"foo:2\"");
	expect_reject(&o, foo_only, VR_UNKNOWN_KEY, "only unknown-algorithm signatures");

	/* ---- tier 1: sizes and strict JSON ---- */
	o.raw_max = 100;
	expect_reject(&o, good, VR_TOO_LARGE, "raw input over val_opts.raw_max (100)");
	o.raw_max = strlen(good);
	TAP_OK(run(&o, good) && accepted_plain(), "raw input exactly at raw_max accepted");
	o.raw_max = strlen(good) - 1;
	expect_reject(&o, good, VR_TOO_LARGE, "raw input one byte over raw_max");
	o.raw_max = 0;
	char big_body[70001];
	memset(big_body, 'x', sizeof big_body - 1);
	big_body[sizeof big_body - 1] = 0;
	char *big_content = malloc(sizeof big_body + 32);
	snprintf(big_content, sizeof big_body + 32, "{\"body\":\"%s\"}", big_body);
	char *big = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 1, 1, big_content, NULL), 10, NULL);
	free(big_content);
	expect_reject(&o, big, VR_TOO_LARGE, "canonical form over 65536 bytes (raw under the cap)");
	size_t padn = strlen(good) + 70000;
	char *padded = malloc(padn + 1);
	memset(padded, ' ', 70000);
	memcpy(padded + 70000, good, strlen(good) + 1);
	TAP_OK(run_n(&o, padded, padn) && accepted_plain() && strcmp(R.event_id, eid10) == 0,
	       "raw input over 65536 bytes whose canonical form is small is accepted");
	expect_reject(&o, "not json", VR_BAD_JSON, "not JSON");
	expect_reject(&o, "[1,2]", VR_BAD_JSON, "JSON array, not an object");
	expect_reject(&o, "{\"a\":1} x", VR_BAD_JSON, "trailing garbage");
	expect_reject(&o, "{\"a\":1,\"a\":2}", VR_NOT_CANONICAL, "duplicate keys");
	expect_reject(&o, "{\"a\":1.5}", VR_NOT_CANONICAL, "float");
	expect_reject(&o, "{\"a\":9007199254740992}", VR_NOT_CANONICAL, "integer 2^53 out of range");
	expect_reject(&o, "{\"a\":9007199254740991}", VR_MISSING_FIELD, "integer 2^53-1 is in range (then missing fields)");
	expect_reject(&o, "{\"a\":\"\xff\"}", VR_BAD_UTF8, "invalid UTF-8 byte");
	expect_reject(&o, "{\"a\":\"\\ud800\"}", VR_BAD_UTF8, "lone surrogate escape");
	{
		enum { D = 10000 };
		char *deep = malloc(2 * D + 8);
		size_t k = 0;
		memcpy(deep, "{\"a\":", 5), k = 5;
		memset(deep + k, '[', D), k += D;
		memset(deep + k, ']', D), k += D;
		deep[k++] = '}';
		expect_reject_n(&o, deep, k, VR_TOO_DEEP, "10,000-deep nesting");
		free(deep);
	}

	/* ---- tier 1: fields, types, grammar, bounds ---- */
	char *nodepth = replace(good, "\"depth\":5,", "");
	expect_reject(&o, nodepth, VR_MISSING_FIELD, "missing 'depth'");
	char *nosig = replace(good, "\"signatures\"", "\"signaturez\"");
	expect_reject(&o, nosig, VR_MISSING_FIELD, "missing 'signatures'");
	char *badhash = replace(good, "\"sha256\":\"", "\"sha256\":\"AAAA");
	expect_reject(&o, badhash, VR_BAD_HASH_FORMAT, "hashes.sha256 not base64 of 32 bytes");
	char *strdepth = replace(good, "\"depth\":5", "\"depth\":\"5\"");
	expect_reject(&o, strdepth, VR_BAD_TYPE, "'depth' a string");
	char *negdepth = replace(good, "\"depth\":5", "\"depth\":-1");
	expect_reject(&o, negdepth, VR_BAD_TYPE, "negative 'depth'");
	char *strcontent = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 1, 1, "{}", NULL), 10, NULL);
	char *arrcontent = replace(strcontent, "\"content\":{}", "\"content\":[]");
	expect_reject(&o, arrcontent, VR_BAD_TYPE, "'content' an array");
	char *badsender = sign(ev_json("alice", "!room:" SERVER, "m.room.message", 1, 1, "{}", NULL), 10, NULL);
	expect_reject(&o, badsender, VR_BAD_ID, "sender 'alice' is not @x:y");
	char *badroom = sign(ev_json("@alice:" SERVER, "room:" SERVER, "m.room.message", 1, 1, "{}", NULL), 10, NULL);
	expect_reject(&o, badroom, VR_BAD_ID, "room_id 'room:test.server' is not !x:y");
	char *badprev = replace(good, PREV, "$short");
	expect_reject(&o, badprev, VR_BAD_ID, "auth_events entry not a v4+ event ID (first in canonical order)");
	char *prev20 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 20, 10, "{}", NULL), 10, NULL);
	TAP_OK(run(&o, prev20) && accepted_plain(), "20 prev_events and 10 auth_events accepted");
	char *prev21 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 21, 1, "{}", NULL), 10, NULL);
	expect_reject(&o, prev21, VR_TOO_MANY_PREV, "21 prev_events");
	char *auth11 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.message", 1, 11, "{}", NULL), 10, NULL);
	expect_reject(&o, auth11, VR_TOO_MANY_AUTH, "11 auth_events");
	char t255[257], t256[258];
	memset(t255, 'm', 255), t255[255] = 0;
	memset(t256, 'm', 256), t256[256] = 0;
	char *type255 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, t255, 1, 1, "{}", NULL), 10, NULL);
	TAP_OK(run(&o, type255) && accepted_plain(), "type of 255 bytes accepted");
	char *type256 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, t256, 1, 1, "{}", NULL), 10, NULL);
	expect_reject(&o, type256, VR_FIELD_TOO_LONG, "type of 256 bytes");

	/* ---- event ID ---- */
	/* a carried event_id is not covered by the signature: added after signing */
	char *wrongid = replace(good, "\"hashes\"", "\"event_id\":\"$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\",\"hashes\"");
	expect_reject(&o, wrongid, VR_BAD_EVENT_ID, "carried event_id that is not the reference hash");
	o.checks = VAL_CHECK_HASHES | VAL_CHECK_SIGNATURES;
	TAP_OK(run(&o, wrongid) && accepted_plain() && strcmp(R.event_id, eid10) == 0, "carried wrong event_id ignored without VAL_CHECK_EVENT_ID (%s)", R.message);
	o.checks = VAL_CHECK_ALL;
	o.expect_event_id = eid11;
	expect_reject(&o, good, VR_BAD_EVENT_ID, "expect_event_id names another event");
	o.expect_event_id = eid10;
	TAP_OK(run(&o, good) && accepted_plain(), "expect_event_id equal to the event's ID accepted");
	o.expect_event_id = NULL;

	/* ---- checks switched off ---- */
	ow.checks = VAL_CHECK_EVENT_ID | VAL_CHECK_HASHES;
	TAP_OK(run(&ow, good) && accepted_plain() && strcmp(R.event_id, eid10) == 0,
	       "VAL_CHECK_SIGNATURES off: wrong-key event accepted");
	o.checks = VAL_CHECK_EVENT_ID | VAL_CHECK_SIGNATURES;
	TAP_OK(run(&o, tampered) && accepted_plain(), "VAL_CHECK_HASHES off: tampered content accepted, not redacted");
	o.checks = VAL_CHECK_ALL;

	/* ---- room versions ---- */
	char *create9 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.create", 0, 0,
	                             "{\"room_version\":\"9\"}", ",\"state_key\":\"\""), 10, NULL);
	expect_reject(&o, create9, VR_BAD_ROOM_VERSION, "m.room.create with room_version \"9\"");
	char *create11 = sign(ev_json("@alice:" SERVER, "!room:" SERVER, "m.room.create", 0, 0,
	                              "{\"room_version\":\"11\"}", ",\"state_key\":\"\""), 11, NULL);
	TAP_OK(run(&o, create11) && accepted_plain() && R.room_version == 11,
	       "m.room.create with room_version \"11\" validated as v11 despite default 10");
	o.room_version = 9;
	expect_reject(&o, good, VR_BAD_ROOM_VERSION, "opts.room_version 9");
	o.room_version = 10;
	int rv_known = 11;
	o.rv = room_rv;
	o.rv_arg = &rv_known;
	TAP_OK(run(&o, good11) && accepted_plain() && R.room_version == 11 && strcmp(R.event_id, eid11) == 0,
	       "rv() saying 11 overrides opts.room_version 10");
	rv_known = 9;
	expect_reject(&o, good, VR_BAD_ROOM_VERSION, "rv() saying 9");
	o.rv = NULL;

	/* ---- known-event skip ---- */
	{
		struct val_opts ok = opts(&kr_none);
		ok.known = known_if_equal;
		ok.known_arg = eid10;
		uint64_t before = V.n_store_hits;
		TAP_OK(run(&ok, good) && R.accept && R.skipped == 1 && V.n_store_hits == before + 1
		       && strcmp(R.event_id, eid10) == 0,
		       "known() true skips crypto: skipped=1 with no key available (n_store_hits %llu)",
		       (unsigned long long)V.n_store_hits);
		expect_reject(&ok, prev20, VR_UNKNOWN_KEY, "known() false for another event: crypto still runs");
	}
	char c[128];
	snprintf(c, sizeof c, "\"event_id\":\"%s\",\"hashes\"", eid10);
	char *carried = replace(good, "\"hashes\"", c);
	TAP_OK(run(&o, carried) && accepted_plain() && strcmp(R.event_id, eid10) == 0,
	       "carried event_id equal to the reference hash accepted (%s %s)",
	       R.accept ? "accept" : val_reason_str(R.reason), R.message);

	/* same, with type and state_key long enough that the content-hash encoding
	 * overwrites the signatures while doc2 still reads them */
	char *longsk = sign(ev_json("@alice:" SERVER, "!room:" SERVER, t255, 1, 1, "{}",
	                            ",\"state_key\":\"@alice:" SERVER "\""), 10, eid11);
	snprintf(c, sizeof c, "\"event_id\":\"%s\",\"hashes\"", eid11);
	char *carried2 = replace(longsk, "\"hashes\"", c);
	/* regression: doc2 once pointed into scratch2, which the content-hash
	 * encoding then overwrote */
	TAP_OK(run(&o, carried2) && accepted_plain() && strcmp(R.event_id, eid11) == 0,
	       "carried event_id with a long type accepted (%s %s)",
	       R.accept ? "accept" : val_reason_str(R.reason), R.message);
	free(longsk); free(carried2);

	identifier_cases(&o, good, eid10);

	/* ---- reuse after rejections ---- */
	expect_reject(&o, "{\"a\":", VR_BAD_JSON, "truncated JSON");
	TAP_OK(run(&o, good) && accepted_plain() && strcmp(R.event_id, eid10) == 0,
	       "validator reusable: good event accepted after a rejection");

	/* ---- seen cache ---- */
	struct validator v0 = V;
	validator_init(&V, 64);
	TAP_OK(run(&o, good) && accepted_plain(), "seen cache: first validation verifies");
	TAP_OK(run(&o, good) && R.accept && R.skipped == 2 && V.n_seen_hits == 1 && strcmp(R.event_id, eid10) == 0,
	       "seen cache: second validation skipped (skipped=%d, n_seen_hits=%llu)", R.skipped,
	       (unsigned long long)V.n_seen_hits);
	char eidf[PDU_EVENT_ID_MAX];
	char *forged = sign_as(msg_event("hello", NULL), 10, SERVER, &other, eidf);
	TAP_OK(strcmp(eidf, eid10) == 0, "same event signed by another key under the same key ID has the same ID");
	expect_reject(&o, forged, VR_BAD_SIGNATURE, "seen cache: same ID, different signature block is re-verified");
	TAP_OK(V.n_seen_hits == 1 && R.skipped == 0, "seen cache: no hit counted for the different signature block");
	TAP_OK(run(&o, foo) && accepted_plain() && strcmp(R.event_id, eid10) == 0 && V.n_seen_hits == 1,
	       "seen cache: same ID with an extra signature verified, not skipped");
	TAP_OK(run(&o, tampered) && R.accept && R.redacted == 1 && R.skipped == 0 && V.n_seen_hits == 1,
	       "seen cache: same ID with tampered content is not skipped (redacted)");
	TAP_OK(run(&o, tampered) && R.accept && R.redacted == 1 && R.skipped == 0 && V.n_seen_hits == 1,
	       "seen cache: a redacted acceptance is not cached (second tampered copy redacted again)");
	validator_free(&V);
	V = v0;

	free(good); free(good11); free(tampered); free(ts_tamper); free(snd_tamper); free(other_srv);
	free(foo); free(foo_only); free(big); free(padded); free(nodepth); free(nosig); free(strdepth); free(negdepth); free(badhash);
	free(strcontent); free(arrcontent); free(badsender); free(badroom); free(badprev); free(prev20);
	free(prev21); free(auth11); free(type255); free(type256); free(wrongid); free(create9);
	free(create11); free(carried); free(forged);
	val_result_free(&R);
	validator_free(&V);
	keyring_free(&kr_good); keyring_free(&kr_wrong); keyring_free(&kr_expired); keyring_free(&kr_edge); keyring_free(&kr_none);
	return tap_done();
}
