/* validate.c: the two-tier PDU validator (tier 1 conformance, tier 2 event
 * ID / content hash / signatures) and the recently-verified cache that lets a
 * duplicate skip the signature check. One parse, then at most three canonical
 * encodings: redacted-for-signing (event ID + signature), content-hash form,
 * and the whole event (only when the caller wants the PDU or the raw input is
 * larger than the canonical limit). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "matrix/validate.h"
#include "matrix/b64.h"

static const char *const reason_names[VR__COUNT] = {
	[VR_OK] = "ok",
	[VR_TOO_LARGE] = "too_large",
	[VR_BAD_JSON] = "bad_json",
	[VR_NOT_CANONICAL] = "not_canonical",
	[VR_BAD_UTF8] = "bad_utf8",
	[VR_TOO_DEEP] = "too_deep",
	[VR_MISSING_FIELD] = "missing_field",
	[VR_BAD_TYPE] = "bad_type",
	[VR_BAD_ID] = "bad_id",
	[VR_BAD_ID_CHAR] = "bad_id_char",
	[VR_FIELD_TOO_LONG] = "field_too_long",
	[VR_TOO_MANY_PREV] = "too_many_prev",
	[VR_TOO_MANY_AUTH] = "too_many_auth",
	[VR_BAD_ROOM_VERSION] = "bad_room_version",
	[VR_BAD_EVENT_ID] = "bad_event_id",
	[VR_BAD_HASH_FORMAT] = "bad_hash_format",
	[VR_BAD_SIGNATURE] = "bad_signature",
	[VR_MISSING_SIGNATURE] = "missing_signature",
	[VR_UNKNOWN_KEY] = "unknown_key",
	[VR_EXPIRED_KEY] = "expired_key",
	[VR_INTERNAL] = "internal",
};

const char *val_reason_str(enum val_reason r)
{
	return (unsigned)r < VR__COUNT ? reason_names[r] : "internal";
}

/* --- recently verified events: 4-way set-associative, LRU within a set ---- */

#define SEEN_WAYS 4
struct seen_ent {
	unsigned char id[32];      /* reference hash */
	unsigned char dig[16];     /* content hash + signatures digest */
	uint32_t      stamp;       /* 0 = empty */
	uint8_t       checks;
};
struct val_seen {
	struct seen_ent *e;
	size_t           nsets;
	uint32_t         clock;
};

static struct val_seen *seen_new(size_t cap)
{
	struct val_seen *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->nsets = cap / SEEN_WAYS ? cap / SEEN_WAYS : 1;
	s->e = calloc(s->nsets * SEEN_WAYS, sizeof *s->e);
	if (!s->e)
		abort();
	return s;
}

static struct seen_ent *seen_set(struct val_seen *s, const unsigned char id[32])
{
	uint64_t h;
	memcpy(&h, id, sizeof h);
	return &s->e[(h % s->nsets) * SEEN_WAYS];
}

static int seen_hit(struct val_seen *s, const unsigned char id[32],
                    const unsigned char dig[16], unsigned checks)
{
	struct seen_ent *set = seen_set(s, id);
	for (int i = 0; i < SEEN_WAYS; i++) {
		struct seen_ent *e = &set[i];
		if (e->stamp && memcmp(e->id, id, 32) == 0) {
			if (memcmp(e->dig, dig, 16) != 0 || (e->checks & checks) != checks)
				return 0;
			e->stamp = ++s->clock ? s->clock : ++s->clock;
			return 1;
		}
	}
	return 0;
}

static void seen_add(struct val_seen *s, const unsigned char id[32],
                     const unsigned char dig[16], unsigned checks)
{
	struct seen_ent *set = seen_set(s, id), *victim = &set[0];
	for (int i = 0; i < SEEN_WAYS; i++) {
		if (set[i].stamp && memcmp(set[i].id, id, 32) == 0) {
			victim = &set[i];
			break;
		}
		if (set[i].stamp < victim->stamp)
			victim = &set[i];
	}
	memcpy(victim->id, id, 32);
	memcpy(victim->dig, dig, 16);
	victim->checks = (uint8_t)checks;
	victim->stamp = ++s->clock ? s->clock : ++s->clock;
}

void validator_init(struct validator *v, size_t seen_cap)
{
	memset(v, 0, sizeof *v);
	buf_init(&v->scratch);
	buf_init(&v->scratch2);
	buf_init(&v->doc2_text);
	if (seen_cap)
		v->seen = seen_new(seen_cap);
}

void validator_free(struct validator *v)
{
	json_doc_free(&v->doc);
	json_doc_free(&v->doc2);
	buf_free(&v->scratch);
	buf_free(&v->scratch2);
	buf_free(&v->doc2_text);
	if (v->seen) {
		free(v->seen->e);
		free(v->seen);
	}
	memset(v, 0, sizeof *v);
}

void val_result_init(struct val_result *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->pdu);
}

void val_result_free(struct val_result *r)
{
	buf_free(&r->pdu);
}

/* --- identifier grammar ---------------------------------------------------- */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* server_name = hostname [ ":" port ]; hostname = IPv4 / "[" IPv6 "]" / dns-name */
int val_server_name_ok(const char *s, size_t n)
{
	size_t i = 0, host_end;

	if (n == 0 || n > VAL_FIELD_MAX)
		return 0;
	if (s[0] == '[') {
		size_t j = 1;
		while (j < n && (is_hex((unsigned char)s[j]) || s[j] == ':' || s[j] == '.'))
			j++;
		if (j >= n || s[j] != ']' || j - 1 < 2 || j - 1 > 45)
			return 0;
		host_end = j + 1;
	} else {
		while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
			i++;
		if (i == 0)
			return 0;
		host_end = i;
	}
	if (host_end == n)
		return 1;
	if (s[host_end] != ':')
		return 0;
	size_t p = host_end + 1, digits = n - p;
	if (digits < 1 || digits > 5)
		return 0;
	unsigned long port = 0;
	for (; p < n; p++) {
		if (!is_digit((unsigned char)s[p]))
			return 0;
		port = port * 10 + (unsigned long)(s[p] - '0');
	}
	return port <= 65535;
}

/* sigil + localpart (printable ASCII, no ':') + ':' + server_name */
static int sigil_id_ok(const char *s, size_t n, char sigil)
{
	size_t i;
	if (n < 4 || n > VAL_FIELD_MAX || s[0] != sigil)
		return 0;
	for (i = 1; i < n && s[i] != ':'; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	if (i == 1 || i >= n)
		return 0;
	return val_server_name_ok(s + i + 1, n - i - 1);
}

int val_user_id_ok(const char *s, size_t n) { return sigil_id_ok(s, n, '@'); }
int val_room_id_ok(const char *s, size_t n) { return sigil_id_ok(s, n, '!'); }

int val_event_id_ok(const char *s, size_t n)
{
	if (n != 44 || s[0] != '$')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/* --- helpers ---------------------------------------------------------------- */

#define TOK(d, i) ((d)->tok[(i)])

static int reject(struct val_result *r, enum val_reason why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A message quotes pieces of the input (a key ID, a claimed event ID) and
 * may be cut at its size or a %.Ns precision inside a multi-byte character;
 * it travels in JSON verdicts, which must be valid UTF-8 (purgatoryd refuses
 * the whole verdict otherwise): bytes of a cut character are dropped. */
static void utf8_scrub(char *s)
{
	size_t n = strlen(s), o = 0;
	for (size_t i = 0; i < n;) {
		int l = json_utf8_seq_len(s + i, n - i);
		if (l == 0) { i++; continue; }
		memmove(s + o, s + i, (size_t)l);
		o += (size_t)l;
		i += (size_t)l;
	}
	s[o] = 0;
}

static int reject(struct val_result *r, enum val_reason why, const char *fmt, ...)
{
	va_list ap;
	r->accept = 0;
	r->reason = why;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
	utf8_scrub(r->message);
	buf_reset(&r->pdu);
	return 0;
}

static enum val_reason json_reason(enum json_err e)
{
	switch (e) {
	case JSON_E_DUPKEY: case JSON_E_FLOAT: case JSON_E_RANGE: return VR_NOT_CANONICAL;
	case JSON_E_UTF8:   return VR_BAD_UTF8;
	case JSON_E_DEPTH:  return VR_TOO_DEEP;
	case JSON_E_NOMEM:  return VR_TOO_LARGE;
	default:            return VR_BAD_JSON;
	}
}

static const char *type_name(int t)
{
	switch (t) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY:  return "an array";
	case JSON_STRING: return "a string";
	case JSON_INT:    return "an integer";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	case JSON_NULL:   return "null";
	}
	return "nothing";
}

/* Fetch a required member of the given type; on failure fills r. */
static int need(const struct json_doc *d, int root, const char *key, int type,
                struct val_result *r)
{
	int t = json_obj_get(d, root, key);
	if (t < 0) {
		reject(r, VR_MISSING_FIELD, "missing required field '%s'", key);
		return -1;
	}
	if (TOK(d, t).type != type) {
		reject(r, VR_BAD_TYPE, "'%s' must be %s, not %s", key, type_name(type),
		       type_name(TOK(d, t).type));
		return -1;
	}
	return t;
}

static int keep_not_event_id(void *arg, const char *const *path, int depth)
{
	(void)arg;
	return depth != 1 || strcmp(path[0], "event_id") != 0 ? JSON_KEEP_ALL : 0;
}

/* Checks an array of event IDs. */
static int check_id_list(const struct json_doc *d, int arr, const char *key, int max,
                         enum val_reason too_many, struct val_result *r)
{
	if ((int)TOK(d, arr).size > max)
		return reject(r, too_many, "'%s' has %u entries (at most %d)", key,
		              TOK(d, arr).size, max), -1;
	int i = 0;
	for (int e = json_first(d, arr); e >= 0; e = json_next_elem(d, arr, e), i++) {
		char id[64];
		if (TOK(d, e).type != JSON_STRING)
			return reject(r, VR_BAD_TYPE, "'%s[%d]' must be a string", key, i), -1;
		if (json_str_has_ctl(d, e))
			return reject(r, VR_BAD_ID_CHAR, "'%s[%d]' contains a control character",
			              key, i), -1;
		int len = json_str_copy(d, e, id, sizeof id);
		if (len < 0 || !val_event_id_ok(id, (size_t)len))
			return reject(r, VR_BAD_ID, "'%s[%d]' is not a room v10/v11 event ID", key, i), -1;
	}
	return 0;
}

/* A string member of at most 255 bytes, copied out; returns its decoded
 * length, which every later check must use: a copy holding "\u0000" reads
 * shorter to strlen than it is. */
static int short_string(const struct json_doc *d, int t, const char *key, char *out,
                        struct val_result *r)
{
	if (json_str_len(d, t) > VAL_FIELD_MAX)
		return reject(r, VR_FIELD_TOO_LONG, "'%s' is %zu bytes (at most %d)", key,
		              json_str_len(d, t), VAL_FIELD_MAX), -1;
	int n = json_str_copy(d, t, out, VAL_FIELD_MAX + 1);
	if (n < 0)
		return reject(r, VR_FIELD_TOO_LONG, "'%s' is too long", key), -1;
	return n;
}

/* An identifier is named by all its bytes, and the rest of the node keys
 * on C strings: NUL (which would cut the name short) or any other control
 * character in one is refused outright. */
static int no_ctl(const struct json_doc *d, int t, const char *key, struct val_result *r)
{
	if (json_str_has_ctl(d, t))
		return reject(r, VR_BAD_ID_CHAR, "'%s' contains a control character (NUL or "
		              "below 0x20, or 0x7f)", key), -1;
	return 0;
}

/* --- the validator ------------------------------------------------------------- */

struct tier1 {
	int root, content, hash_tok, sigs, origin_ts_tok;
	int64_t origin_ts;
	unsigned char claimed_hash[32];
	char sender[VAL_FIELD_MAX + 1];
	char type[VAL_FIELD_MAX + 1];
};

static int tier1_fields(const struct json_doc *d, struct tier1 *f, struct val_result *r)
{
	int root = f->root, t, room_len, sender_len;

	if ((t = need(d, root, "room_id", JSON_STRING, r)) < 0) return -1;
	if (no_ctl(d, t, "room_id", r) < 0) return -1;
	if ((room_len = short_string(d, t, "room_id", r->room_id, r)) < 0) return -1;
	if ((t = need(d, root, "sender", JSON_STRING, r)) < 0) return -1;
	if (no_ctl(d, t, "sender", r) < 0) return -1;
	if ((sender_len = short_string(d, t, "sender", f->sender, r)) < 0) return -1;
	if ((t = need(d, root, "type", JSON_STRING, r)) < 0) return -1;
	if (no_ctl(d, t, "type", r) < 0) return -1;
	if (short_string(d, t, "type", f->type, r) < 0) return -1;
	t = json_obj_get(d, root, "origin");        /* deprecated, optional: a server name */
	if (t >= 0 && TOK(d, t).type == JSON_STRING && no_ctl(d, t, "origin", r) < 0) return -1;
	if ((f->content = need(d, root, "content", JSON_OBJECT, r)) < 0) return -1;
	if ((t = need(d, root, "origin_server_ts", JSON_INT, r)) < 0) return -1;
	f->origin_ts = TOK(d, t).ival;
	if ((t = need(d, root, "depth", JSON_INT, r)) < 0) return -1;
	if (TOK(d, t).ival < 0)
		return reject(r, VR_BAD_TYPE, "'depth' must not be negative"), -1;
	int prev = need(d, root, "prev_events", JSON_ARRAY, r);
	if (prev < 0) return -1;
	int auth = need(d, root, "auth_events", JSON_ARRAY, r);
	if (auth < 0) return -1;
	int hashes = need(d, root, "hashes", JSON_OBJECT, r);
	if (hashes < 0) return -1;
	if ((f->sigs = need(d, root, "signatures", JSON_OBJECT, r)) < 0) return -1;
	t = json_obj_get(d, root, "state_key");
	if (t >= 0) {
		char sk[VAL_FIELD_MAX + 1];
		if (TOK(d, t).type != JSON_STRING)
			return reject(r, VR_BAD_TYPE, "'state_key' must be a string, not %s",
			              type_name(TOK(d, t).type)), -1;
		int skn = short_string(d, t, "state_key", sk, r);
		if (skn < 0) return -1;
		/* Any string may be a state key, but not one with a NUL: state
		 * is keyed on (type, state_key) as C strings. A member event's
		 * state key is a user ID. */
		if (memchr(sk, 0, (size_t)skn))
			return reject(r, VR_BAD_ID_CHAR, "'state_key' contains NUL"), -1;
		if (strcmp(f->type, "m.room.member") == 0) {
			if (no_ctl(d, t, "state_key", r) < 0) return -1;
			if (!val_user_id_ok(sk, (size_t)skn))
				return reject(r, VR_BAD_ID, "m.room.member 'state_key' is not a user ID "
				              "(@local:server)"), -1;
		}
	}
	/* hashes.sha256 */
	f->hash_tok = json_obj_get(d, hashes, "sha256");
	if (f->hash_tok < 0)
		return reject(r, VR_MISSING_FIELD, "missing required field 'hashes.sha256'"), -1;
	if (TOK(d, f->hash_tok).type != JSON_STRING)
		return reject(r, VR_BAD_TYPE, "'hashes.sha256' must be a string"), -1;
	{
		/* base64 inside JSON: unescaped first, then decoded */
		unsigned char tmp[40];
		if (json_str_len(d, f->hash_tok) > 48
		    || json_str_b64(d, f->hash_tok, tmp, sizeof tmp) != 32)
			return reject(r, VR_BAD_HASH_FORMAT,
			              "'hashes.sha256' is not base64 of a 32-byte hash"), -1;
		memcpy(f->claimed_hash, tmp, 32);
	}
	/* signatures: object of objects of strings */
	for (int k = json_first(d, f->sigs); k >= 0; k = json_next_kv(d, f->sigs, k)) {
		int o = k + 1;
		if (TOK(d, o).type != JSON_OBJECT)
			return reject(r, VR_BAD_TYPE, "'signatures' members must be objects"), -1;
		for (int kk = json_first(d, o); kk >= 0; kk = json_next_kv(d, o, kk))
			if (TOK(d, kk + 1).type != JSON_STRING)
				return reject(r, VR_BAD_TYPE, "signatures must be strings"), -1;
	}
	/* identifier grammar and list bounds */
	if (!val_user_id_ok(f->sender, (size_t)sender_len))
		return reject(r, VR_BAD_ID, "'sender' is not a user ID (@local:server)"), -1;
	if (!val_room_id_ok(r->room_id, (size_t)room_len))
		return reject(r, VR_BAD_ID, "'room_id' is not a room ID (!id:server)"), -1;
	if (check_id_list(d, prev, "prev_events", VAL_PREV_MAX, VR_TOO_MANY_PREV, r) < 0)
		return -1;
	if (check_id_list(d, auth, "auth_events", VAL_AUTH_MAX, VR_TOO_MANY_AUTH, r) < 0)
		return -1;
	snprintf(r->sender_server, sizeof r->sender_server, "%s", strchr(f->sender, ':') + 1);
	return 0;
}

static int room_version_of(const struct json_doc *d, const struct tier1 *f,
                           const struct val_opts *o, struct val_result *r)
{
	int rv = o->rv ? o->rv(o->rv_arg, r->room_id) : 0;
	if (rv == 0 && strcmp(f->type, "m.room.create") == 0) {
		int t = json_obj_get(d, f->content, "room_version");
		char s[16];
		int sl;
		if (t >= 0 && TOK(d, t).type == JSON_STRING && (sl = json_str_copy(d, t, s, sizeof s)) > 0) {
			char *end;
			long v = strtol(s, &end, 10);
			rv = (end != s + sl || v <= 0 || v > 1000) ? -1 : (int)v;
		} else if (t >= 0) {
			rv = -1;
		} else {
			rv = 1;    /* a create event without room_version means v1 */
		}
	}
	if (rv == 0)
		rv = o->room_version ? o->room_version : 10;
	if (rv != 10 && rv != 11) {
		reject(r, VR_BAD_ROOM_VERSION, "room version %s is not supported (10 or 11 only)",
		       rv < 0 ? "(unparsable)" : rv == 1 ? "1" : "other than 10/11");
		return -1;
	}
	return rv;
}

/* Sender's server must have produced a valid signature with a usable key. */
static enum val_reason check_signatures(const struct json_doc *d, const struct tier1 *f,
                                        const struct val_opts *o, const struct buf *msg,
                                        struct val_result *r)
{
	int srv = json_obj_get(d, f->sigs, r->sender_server);
	if (srv < 0) {
		reject(r, VR_MISSING_SIGNATURE, "no signature by the sender's server %s",
		       r->sender_server);
		return VR_MISSING_SIGNATURE;
	}
	int good = 0, expired = 0;
	for (int k = json_first(d, srv); k >= 0; k = json_next_kv(d, srv, k)) {
		char key_id[64];
		unsigned char pk[32];
		int64_t until = INT64_MAX;
		int kl = json_str_copy(d, k, key_id, sizeof key_id);
		if (kl < 0 || strncmp(key_id, "ed25519:", 8) != 0)
			continue;                         /* unknown algorithm: skipped */
		if (memchr(key_id, 0, (size_t)kl))
			continue;   /* "ed25519:a\u0000x" is not key ed25519:a: no key of ours */
		if (!o->key || o->key(o->key_arg, r->sender_server, key_id, pk, &until) < 0) {
			if (!r->missing_key_id[0])
				snprintf(r->missing_key_id, sizeof r->missing_key_id, "%s", key_id);
			continue;
		}
		if (until < f->origin_ts) {
			expired = 1;
			continue;
		}
		if (pdu_sig_verify_tok(d, k + 1, (const unsigned char *)msg->data, msg->len, pk) < 0) {
			reject(r, VR_BAD_SIGNATURE, "signature %s of %s does not verify", key_id,
			       r->sender_server);
			return VR_BAD_SIGNATURE;
		}
		good = 1;
	}
	if (good) {
		r->missing_key_id[0] = 0;
		return VR_OK;
	}
	if (expired) {
		reject(r, VR_EXPIRED_KEY, "the signing key of %s had expired at origin_server_ts",
		       r->sender_server);
		return VR_EXPIRED_KEY;
	}
	reject(r, VR_UNKNOWN_KEY, "no known ed25519 key of %s%s%s", r->sender_server,
	       r->missing_key_id[0] ? " for " : "", r->missing_key_id);
	return VR_UNKNOWN_KEY;
}

int validate_pdu(struct validator *v, const struct val_opts *o, const char *bytes,
                 size_t n, struct val_result *r)
{
	size_t raw_max = o->raw_max ? o->raw_max : VAL_RAW_MAX_DEFAULT;
	int depth = o->max_depth > 0 ? o->max_depth : JSON_MAX_DEPTH_DEFAULT;
	struct json_doc *d = &v->doc;
	struct tier1 f;
	char claimed_id[128] = "";
	unsigned char ref[32], chash[32];

	buf_reset(&r->pdu);
	r->accept = 0;
	r->reason = VR_OK;
	r->message[0] = r->event_id[0] = r->room_id[0] = r->sender_server[0] = 0;
	r->missing_key_id[0] = 0;
	r->redacted = r->skipped = r->room_version = 0;
	memset(&f, 0, sizeof f);

	/* ---- tier 1 ---- */
	if (n > raw_max)
		return reject(r, VR_TOO_LARGE, "input is %zu bytes (at most %zu)", n, raw_max);
	if (json_parse(d, bytes, n, depth) < 0)
		return reject(r, json_reason(d->err), "%s at byte %u", json_err_str(d->err),
		              d->err_off);
	if (d->ntok == 0 || TOK(d, 0).type != JSON_OBJECT)
		return reject(r, VR_BAD_JSON, "a PDU must be a JSON object");
	f.root = 0;

	/* v10/v11 PDUs do not carry their ID; if one does, it is checked against
	 * the reference hash of the event without it (the hash cannot cover itself). */
	int eid = json_obj_get(d, 0, "event_id");
	if (eid >= 0) {
		if (TOK(d, eid).type != JSON_STRING || json_str_copy(d, eid, claimed_id, sizeof claimed_id) < 0)
			return reject(r, VR_BAD_TYPE, "'event_id' must be a short string");
		if (json_str_has_ctl(d, eid))
			return reject(r, VR_BAD_ID_CHAR, "'event_id' contains a control character");
		/* doc2's tokens point into doc2_text, which must outlive every
		 * later use of doc2 in this call (scratch2 is reused below). */
		buf_reset(&v->doc2_text);
		if (json_canonical(d, 0, &v->doc2_text, keep_not_event_id, NULL) < 0
		    || json_parse(&v->doc2, v->doc2_text.data, v->doc2_text.len, depth) < 0)
			return reject(r, VR_INTERNAL, "cannot re-encode the event without event_id");
		d = &v->doc2;
	}

	if (n > PDU_MAX_BYTES || o->want_pdu || d == &v->doc2) {
		if (pdu_canonical(d, 0, &r->pdu) < 0)
			return reject(r, VR_INTERNAL, "cannot encode the event");
		if (r->pdu.len > PDU_MAX_BYTES)
			return reject(r, VR_TOO_LARGE, "canonical event is %zu bytes (at most %d)",
			              r->pdu.len, PDU_MAX_BYTES);
		if (!o->want_pdu)
			buf_reset(&r->pdu);
	}
	if (tier1_fields(d, &f, r) < 0)
		return 0;
	int rv = room_version_of(d, &f, o, r);
	if (rv < 0)
		return 0;
	r->room_version = rv;

	/* ---- event ID: always computed (it names the verdict) ---- */
	buf_reset(&v->scratch);
	if (pdu_redact(d, 0, rv, 1, &v->scratch) < 0)
		return reject(r, VR_INTERNAL, "event has no redacted form");
	pdu_sha256(ref, v->scratch.data, v->scratch.len);
	r->event_id[0] = '$';
	b64_encode_url(r->event_id + 1, ref, 32);
	if (o->checks & VAL_CHECK_EVENT_ID) {
		if (claimed_id[0] && strcmp(claimed_id, r->event_id) != 0)
			return reject(r, VR_BAD_EVENT_ID, "event_id %.60s is not the reference hash %s",
			              claimed_id, r->event_id);
		if (o->expect_event_id && o->expect_event_id[0]
		    && strcmp(o->expect_event_id, r->event_id) != 0)
			return reject(r, VR_BAD_EVENT_ID, "event is %s, not the requested %.60s",
			              r->event_id, o->expect_event_id);
	}

	/* ---- known events skip the crypto ---- */
	if (o->known && o->known(o->known_arg, r->event_id)) {
		v->n_store_hits++;
		r->skipped = 1;
		r->accept = 1;
		return 1;
	}
	unsigned checks = o->checks & (VAL_CHECK_HASHES | VAL_CHECK_SIGNATURES);
	unsigned char dig[32];
	if (checks || v->seen) {
		buf_reset(&v->scratch2);
		if (json_canonical(d, 0, &v->scratch2, pdu_keep_hashed, NULL) < 0)
			return reject(r, VR_INTERNAL, "cannot encode the event");
		pdu_sha256(chash, v->scratch2.data, v->scratch2.len);
	}
	if (v->seen) {
		crypto_generichash_state st;
		const struct json_tok *s = &TOK(d, f.sigs);
		crypto_generichash_init(&st, NULL, 0, 16);
		crypto_generichash_update(&st, chash, 32);
		crypto_generichash_update(&st, (const unsigned char *)d->src + s->start, s->end - s->start);
		crypto_generichash_final(&st, dig, 16);
		if (seen_hit(v->seen, ref, dig, checks)) {
			v->n_seen_hits++;
			r->skipped = 2;
			r->accept = 1;
			return 1;
		}
	}

	/* ---- tier 2 ---- */
	if ((o->checks & VAL_CHECK_SIGNATURES)
	    && check_signatures(d, &f, o, &v->scratch, r) != VR_OK)
		return 0;
	if ((o->checks & VAL_CHECK_HASHES) && sodium_memcmp(chash, f.claimed_hash, 32) != 0) {
		r->redacted = 1;
		snprintf(r->message, sizeof r->message,
		         "content hash mismatch: accepted in redacted form");
		if (o->want_pdu) {
			buf_reset(&r->pdu);
			if (pdu_redact(d, 0, rv, 0, &r->pdu) < 0)
				return reject(r, VR_INTERNAL, "event has no redacted form");
		}
	} else if (v->seen) {
		seen_add(v->seen, ref, dig, checks);
	}
	r->accept = 1;
	return 1;
}

/* --- verdict encodings -------------------------------------------------------- */

static void put_str_or_null(struct buf *b, const char *s)
{
	if (s && *s)
		json_put_string(b, s, strlen(s));
	else
		buf_adds(b, "null");
}

void val_result_json(const struct val_result *r, struct buf *out)
{
	buf_adds(out, "{\"event_id\":");
	put_str_or_null(out, r->event_id);
	buf_adds(out, r->accept ? ",\"verdict\":\"accept\",\"reason\":" : ",\"verdict\":\"reject\",\"reason\":");
	put_str_or_null(out, r->accept ? NULL : val_reason_str(r->reason));
	buf_adds(out, ",\"message\":");
	put_str_or_null(out, r->message);
	buf_printf(out, ",\"redacted\":%s}", r->redacted ? "true" : "false");
}

void val_result_meta(const struct val_result *r, struct buf *out)
{
	val_result_json(r, out);
	out->len--;                    /* reopen the object */
	out->data[out->len] = 0;
	buf_adds(out, ",\"room_id\":");
	put_str_or_null(out, r->room_id);
	buf_printf(out, ",\"room_version\":%d", r->room_version);
	if (r->skipped)
		buf_printf(out, ",\"known\":true");
	buf_addc(out, '}');
}
