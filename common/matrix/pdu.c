/* pdu.c: the cryptographic identity of a Matrix PDU (room versions 10, 11):
 * redaction as a keep-filter over the canonical encoder, content and
 * reference hashes, event IDs, signing and signature checks (see pdu.h). */
#include "matrix/pdu.h"
#include "matrix/b64.h"
#include <sodium.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PDU_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/* --- SHA-256 ------------------------------------------------------------
 * Deep validation hashes every event twice and must stay under a tenth of
 * an ed25519 verify. libsodium's portable SHA-256 costs ~3.2 us per KiB
 * here (two passes alone ~6.5 us against a ~55 us verify); the x86 SHA
 * extensions do the same in ~0.5 us, so use them when the CPU has them
 * and keep libsodium as the reference and fallback. The round structure is
 * the one Intel documents for SHA-NI; unit tests compare it to libsodium
 * over every length around the block boundaries. */
#ifdef PDU_SHA_NI
__attribute__((target("sha,sse4.1")))
static void sha_ni_blocks(uint32_t st[8], const unsigned char *p, size_t nblk)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	static const uint32_t K[64] = {
		0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
		0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
		0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
		0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
		0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
		0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
		0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
		0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
	};
	/* state as the instructions want it: ABEF and CDGH */
	__m128i t = _mm_loadu_si128((const __m128i *)&st[0]);     /* DCBA */
	__m128i s1 = _mm_loadu_si128((const __m128i *)&st[4]);    /* HGFE */
	t = _mm_shuffle_epi32(t, 0xB1);                           /* CDAB */
	s1 = _mm_shuffle_epi32(s1, 0x1B);                         /* EFGH */
	__m128i s0 = _mm_alignr_epi8(t, s1, 8);                   /* ABEF */
	s1 = _mm_blend_epi16(s1, t, 0xF0);                        /* CDGH */

	while (nblk--) {
		__m128i a0 = s0, c0 = s1, m, w[4];
		for (int i = 0; i < 4; i++)
			w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
		/* four rounds per group g; the schedule for group g+1 is finished
		 * (msg2) and the one for g+3 started (msg1) between them */
		for (int g = 0; g < 16; g++) {
			m = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&K[4 * g]));
			s1 = _mm_sha256rnds2_epu32(s1, s0, m);
			if (g >= 3 && g <= 14) {
				__m128i tmp = _mm_alignr_epi8(w[g & 3], w[(g + 3) & 3], 4);
				w[(g + 1) & 3] = _mm_add_epi32(w[(g + 1) & 3], tmp);
				w[(g + 1) & 3] = _mm_sha256msg2_epu32(w[(g + 1) & 3], w[g & 3]);
			}
			m = _mm_shuffle_epi32(m, 0x0E);
			s0 = _mm_sha256rnds2_epu32(s0, s1, m);
			if (g >= 1 && g <= 12)
				w[(g + 3) & 3] = _mm_sha256msg1_epu32(w[(g + 3) & 3], w[g & 3]);
		}
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, c0);
		p += 64;
	}
	t = _mm_shuffle_epi32(s0, 0x1B);                          /* FEBA */
	s1 = _mm_shuffle_epi32(s1, 0xB1);                         /* DCHG */
	s0 = _mm_blend_epi16(t, s1, 0xF0);                        /* DCBA */
	s1 = _mm_alignr_epi8(s1, t, 8);                           /* HGFE */
	_mm_storeu_si128((__m128i *)&st[0], s0);
	_mm_storeu_si128((__m128i *)&st[4], s1);
}

static void sha_ni(unsigned char out[32], const unsigned char *p, size_t n)
{
	uint32_t st[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	unsigned char tail[128];
	size_t full = n / 64, rest = n % 64, tl;
	uint64_t bits = (uint64_t)n * 8;

	sha_ni_blocks(st, p, full);
	memcpy(tail, p + full * 64, rest);
	tail[rest] = 0x80;
	tl = rest < 56 ? 64 : 128;
	memset(tail + rest + 1, 0, tl - rest - 1);
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha_ni_blocks(st, tail, tl / 64);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(st[i] >> 24);
		out[4 * i + 1] = (unsigned char)(st[i] >> 16);
		out[4 * i + 2] = (unsigned char)(st[i] >> 8);
		out[4 * i + 3] = (unsigned char)st[i];
	}
}
#endif

/* 1: SHA extensions, 0: libsodium, -1: not decided yet. Deciding twice
 * from two threads is harmless (both store the same answer); atomic so
 * that it is also well-defined. */
static atomic_int sha_impl = -1;

void pdu_sha256(unsigned char out[32], const void *p, size_t n)
{
#ifdef PDU_SHA_NI
	int impl = atomic_load_explicit(&sha_impl, memory_order_relaxed);
	if (impl < 0) {
		unsigned a, b, c, dx, sse41 = 0, sha = 0;
		if (__get_cpuid(1, &a, &b, &c, &dx))
			sse41 = (c >> 19) & 1;          /* also implies SSSE3 */
		if (__get_cpuid_count(7, 0, &a, &b, &c, &dx))
			sha = (b >> 29) & 1;
		impl = sse41 && sha && getenv("FP_SHA256_PORTABLE") == NULL;
		atomic_store_explicit(&sha_impl, impl, memory_order_relaxed);
	}
	if (impl == 1) {
		sha_ni(out, p, n);
		return;
	}
#endif
	crypto_hash_sha256(out, p, n);
}

/* --- redaction ------------------------------------------------------------ */

enum ev_type { EV_OTHER, EV_MEMBER, EV_CREATE, EV_JOIN_RULES, EV_POWER_LEVELS,
               EV_HISTORY_VISIBILITY, EV_REDACTION };

struct redact_rules {
	int rv;
	int for_signing;
	enum ev_type type;
	int tpi_is_object;   /* content.third_party_invite is an object */
};

static int str_in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Room v10 redacts with the v9 algorithm: top-level event_id, type, room_id,
 * sender, state_key, content, hashes, signatures, depth, prev_events,
 * prev_state, auth_events, origin, origin_server_ts, membership. v11
 * (MSC2174/2176/3821/3989) stops protecting origin, membership and
 * prev_state. This runs for every top-level member of every event, hence a
 * switch rather than a list scan. */
static int top_key_kept(const char *k, int v11)
{
	switch (k[0]) {
	case 'a': return strcmp(k, "auth_events") == 0;
	case 'c': return strcmp(k, "content") == 0;
	case 'd': return strcmp(k, "depth") == 0;
	case 'e': return strcmp(k, "event_id") == 0;
	case 'h': return strcmp(k, "hashes") == 0;
	case 'm': return !v11 && strcmp(k, "membership") == 0;
	case 'o': return strcmp(k, "origin_server_ts") == 0 || (!v11 && strcmp(k, "origin") == 0);
	case 'p': return strcmp(k, "prev_events") == 0 || (!v11 && strcmp(k, "prev_state") == 0);
	case 'r': return strcmp(k, "room_id") == 0;
	case 's': return strcmp(k, "sender") == 0 || strcmp(k, "state_key") == 0
	                 || strcmp(k, "signatures") == 0;
	case 't': return strcmp(k, "type") == 0;
	}
	return 0;
}

static const char *const member_keys[] = { "membership", "join_authorised_via_users_server", NULL };
static const char *const create_v10[] = { "creator", NULL };
static const char *const join_rules_keys[] = { "join_rule", "allow", NULL };
static const char *const power_v10[] = { "ban", "events", "events_default", "kick",
	"redact", "state_default", "users", "users_default", NULL };
static const char *const power_v11[] = { "ban", "events", "events_default", "invite",
	"kick", "redact", "state_default", "users", "users_default", NULL };
static const char *const history_keys[] = { "history_visibility", NULL };

static int content_key_kept(const struct redact_rules *r, const char *k)
{
	int v11 = r->rv == PDU_RV_11;

	switch (r->type) {
	case EV_MEMBER:
		if (str_in(k, member_keys))
			return 1;
		/* v11 keeps only third_party_invite.signed, and only when there is
		 * an object to look into (Synapse drops a malformed one) */
		return v11 && r->tpi_is_object && strcmp(k, "third_party_invite") == 0;
	case EV_CREATE:
		return v11 || str_in(k, create_v10);
	case EV_JOIN_RULES:
		return str_in(k, join_rules_keys);
	case EV_POWER_LEVELS:
		return str_in(k, v11 ? power_v11 : power_v10);
	case EV_HISTORY_VISIBILITY:
		return str_in(k, history_keys);
	case EV_REDACTION:
		return v11 && strcmp(k, "redacts") == 0;
	case EV_OTHER:
		break;
	}
	/* m.room.aliases lost its protected "aliases" in room v6 (MSC2432) */
	return 0;
}

static int redact_keep(void *arg, const char *const *path, int depth)
{
	const struct redact_rules *r = arg;

	/* Only content's members are looked into; everything else kept is
	 * kept whole (JSON_KEEP_ALL: the encoder stops asking below it). */
	if (depth == 1) {
		if (r->for_signing && path[0][0] == 's' && strcmp(path[0], "signatures") == 0)
			return 0;
		if (!top_key_kept(path[0], r->rv == PDU_RV_11))
			return 0;
		return strcmp(path[0], "content") == 0 ? 1 : JSON_KEEP_ALL;
	}
	if (strcmp(path[0], "content") != 0)
		return JSON_KEEP_ALL;
	if (depth == 2) {
		if (!content_key_kept(r, path[1]))
			return 0;
		return r->type == EV_MEMBER && strcmp(path[1], "third_party_invite") == 0 ? 1 : JSON_KEEP_ALL;
	}
	if (depth == 3 && r->type == EV_MEMBER && strcmp(path[1], "third_party_invite") == 0)
		return strcmp(path[2], "signed") == 0 ? JSON_KEEP_ALL : 0;
	return JSON_KEEP_ALL;
}

static enum ev_type event_type(const struct json_doc *d, int t)
{
	static const struct { const char *name; enum ev_type type; } types[] = {
		{ "m.room.member", EV_MEMBER }, { "m.room.create", EV_CREATE },
		{ "m.room.join_rules", EV_JOIN_RULES }, { "m.room.power_levels", EV_POWER_LEVELS },
		{ "m.room.history_visibility", EV_HISTORY_VISIBILITY },
		{ "m.room.redaction", EV_REDACTION },
	};
	int ty = json_obj_get(d, t, "type");

	if (ty < 0 || d->tok[ty].type != JSON_STRING)
		return EV_OTHER;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (json_str_eq(d, ty, types[i].name))
			return types[i].type;
	return EV_OTHER;
}

/* Shape every function here needs: an object whose content, if present, is
 * an object (a PDU with any other content has no redacted form; Synapse
 * refuses it the same way). */
static int rules_for(const struct json_doc *d, int t, int rv, int for_signing,
                     struct redact_rules *r)
{
	if (t < 0 || (uint32_t)t >= d->ntok || d->tok[t].type != JSON_OBJECT)
		return -1;
	if (rv != PDU_RV_10 && rv != PDU_RV_11)
		return -1;
	int c = json_obj_get(d, t, "content");
	if (c >= 0 && d->tok[c].type != JSON_OBJECT)
		return -1;
	r->rv = rv;
	r->for_signing = for_signing;
	r->type = event_type(d, t);
	r->tpi_is_object = 0;
	if (c >= 0 && r->type == EV_MEMBER) {
		int tpi = json_obj_get(d, c, "third_party_invite");
		r->tpi_is_object = tpi >= 0 && d->tok[tpi].type == JSON_OBJECT;
	}
	return 0;
}

int pdu_redact(const struct json_doc *d, int t, int rv, int for_signing, struct buf *out)
{
	struct redact_rules r;

	if (rules_for(d, t, rv, for_signing, &r) < 0)
		return -1;
	return json_canonical(d, t, out, redact_keep, &r);
}

int pdu_keep_hashed(void *arg, const char *const *path, int depth)
{
	(void)arg;
	if (depth != 1)
		return JSON_KEEP_ALL;
	switch (path[0][0]) {
	case 'u': return strcmp(path[0], "unsigned") ? JSON_KEEP_ALL : 0;
	case 's': return strcmp(path[0], "signatures") ? JSON_KEEP_ALL : 0;
	case 'h': return strcmp(path[0], "hashes") ? JSON_KEEP_ALL : 0;
	}
	return JSON_KEEP_ALL;
}

static int keep_not_signed(void *arg, const char *const *path, int depth)
{
	(void)arg;
	if (depth != 1)
		return JSON_KEEP_ALL;
	switch (path[0][0]) {
	case 'u': return strcmp(path[0], "unsigned") ? JSON_KEEP_ALL : 0;
	case 's': return strcmp(path[0], "signatures") ? JSON_KEEP_ALL : 0;
	}
	return JSON_KEEP_ALL;
}

/* --- hashes and IDs ------------------------------------------------------- */

static int content_hash_into(const struct json_doc *d, int t, struct buf *scratch,
                             unsigned char out[32])
{
	struct redact_rules r;

	if (rules_for(d, t, PDU_RV_10, 0, &r) < 0)
		return -1;
	buf_reset(scratch);
	if (json_canonical(d, t, scratch, pdu_keep_hashed, NULL) < 0)
		return -1;
	pdu_sha256(out, scratch->data, scratch->len);
	return 0;
}

static int reference_hash_into(const struct json_doc *d, int t, int rv, struct buf *scratch,
                               unsigned char out[32])
{
	buf_reset(scratch);
	if (pdu_redact(d, t, rv, 1, scratch) < 0)
		return -1;
	pdu_sha256(out, scratch->data, scratch->len);
	return 0;
}

static void event_id_of(const unsigned char ref[32], char *out)
{
	out[0] = '$';
	b64_encode_url(out + 1, ref, 32);
}

int pdu_content_hash(const struct json_doc *d, int t, unsigned char out[32])
{
	struct buf b;
	buf_init(&b);
	int rc = content_hash_into(d, t, &b, out);
	buf_free(&b);
	return rc;
}

int pdu_reference_hash(const struct json_doc *d, int t, int rv, unsigned char out[32])
{
	struct buf b;
	buf_init(&b);
	int rc = reference_hash_into(d, t, rv, &b, out);
	buf_free(&b);
	return rc;
}

int pdu_event_id(const struct json_doc *d, int t, int rv, char *out)
{
	unsigned char ref[32];

	if (pdu_reference_hash(d, t, rv, ref) < 0)
		return -1;
	event_id_of(ref, out);
	return 0;
}

int pdu_canonical(const struct json_doc *d, int t, struct buf *out)
{
	return json_canonical(d, t, out, NULL, NULL);
}

/* --- signatures ------------------------------------------------------------ */

int pdu_sig_verify_b64(const char *sig_b64, size_t siglen, const unsigned char *msg,
                   size_t msglen, const unsigned char pk[32])
{
	unsigned char sig[crypto_sign_BYTES + 8];

	if (siglen > 2 * crypto_sign_BYTES)
		return -1;
	if (b64_decode(sig, sizeof sig, sig_b64, siglen) != crypto_sign_BYTES)
		return -1;
	return crypto_sign_verify_detached(sig, msg, msglen, pk) == 0 ? 0 : -1;
}

/* The signature string at signatures.server.key_id, or -1. */
static int find_signature(const struct json_doc *d, int t, const char *server, const char *key_id)
{
	int s = json_obj_get(d, t, "signatures");
	if (s < 0 || d->tok[s].type != JSON_OBJECT)
		return -1;
	s = json_obj_get(d, s, server);
	if (s < 0 || d->tok[s].type != JSON_OBJECT)
		return -1;
	s = json_obj_get(d, s, key_id);
	if (s < 0 || d->tok[s].type != JSON_STRING)
		return -1;
	return s;
}

/* A signature string is base64 inside JSON: it may be written with escapes
 * ("\/", "\u0041") and is the same value, so it is unescaped before it is
 * base64-decoded (json_str_b64). */
int pdu_sig_verify_tok(const struct json_doc *d, int s, const unsigned char *msg, size_t msglen,
                   const unsigned char pk[32])
{
	unsigned char sig[crypto_sign_BYTES + 8];

	if (json_str_len(d, s) > 2 * crypto_sign_BYTES
	    || json_str_b64(d, s, sig, sizeof sig) != crypto_sign_BYTES)
		return -1;
	return crypto_sign_verify_detached(sig, msg, msglen, pk) == 0 ? 0 : -1;
}

static int verify_sig_tok(const struct json_doc *d, int s, const struct buf *msg,
                          const unsigned char pk[32])
{
	return pdu_sig_verify_tok(d, s, (const unsigned char *)msg->data, msg->len, pk);
}

const char *pdu_verdict_str(enum pdu_verdict v)
{
	switch (v) {
	case PDU_OK:              return "ok";
	case PDU_E_SHAPE:         return "not an event object";
	case PDU_E_HASH_MISSING:  return "no hashes.sha256";
	case PDU_E_HASH_MISMATCH: return "content hash mismatch";
	case PDU_E_SIG_MISSING:   return "no such signature";
	case PDU_E_SIG_INVALID:   return "signature does not verify";
	}
	return "?";
}

enum pdu_verdict pdu_check_content_hash(const struct json_doc *d, int t, struct buf *scratch)
{
	struct buf own;
	unsigned char want[32 + 8], got[32];
	enum pdu_verdict v;

	if (t < 0 || (uint32_t)t >= d->ntok || d->tok[t].type != JSON_OBJECT)
		return PDU_E_SHAPE;
	int h = json_obj_get(d, t, "hashes");
	if (h >= 0 && d->tok[h].type == JSON_OBJECT)
		h = json_obj_get(d, h, "sha256");
	else
		h = -1;
	if (h < 0 || d->tok[h].type != JSON_STRING)
		return PDU_E_HASH_MISSING;
	if (json_str_len(d, h) > 64 || json_str_b64(d, h, want, sizeof want) != 32)
		return PDU_E_HASH_MISMATCH;
	if (scratch == NULL) {
		buf_init(&own);
		scratch = &own;
	}
	if (content_hash_into(d, t, scratch, got) < 0)
		v = PDU_E_SHAPE;
	else
		v = sodium_memcmp(want, got, 32) == 0 ? PDU_OK : PDU_E_HASH_MISMATCH;
	if (scratch == &own)
		buf_free(&own);
	return v;
}

enum pdu_verdict pdu_check_signature(const struct json_doc *d, int t, int rv,
                                     const char *server, const char *key_id,
                                     const unsigned char pk[32], struct buf *scratch,
                                     char *event_id)
{
	struct buf own;
	unsigned char ref[32];
	enum pdu_verdict v;

	if (scratch == NULL) {
		buf_init(&own);
		scratch = &own;
	}
	buf_reset(scratch);
	if (pdu_redact(d, t, rv, 1, scratch) < 0) {
		v = PDU_E_SHAPE;
		goto out;
	}
	if (event_id) {
		pdu_sha256(ref, scratch->data, scratch->len);
		event_id_of(ref, event_id);
	}
	int s = find_signature(d, t, server, key_id);
	if (s < 0)
		v = PDU_E_SIG_MISSING;
	else
		v = verify_sig_tok(d, s, scratch, pk) == 0 ? PDU_OK : PDU_E_SIG_INVALID;
out:
	if (scratch == &own)
		buf_free(&own);
	return v;
}

enum pdu_verdict json_verify_object(const struct json_doc *d, int t, const char *server,
                                    const char *key_id, const unsigned char pk[32])
{
	struct buf b;
	enum pdu_verdict v;

	if (t < 0 || (uint32_t)t >= d->ntok || d->tok[t].type != JSON_OBJECT)
		return PDU_E_SHAPE;
	int s = find_signature(d, t, server, key_id);
	if (s < 0)
		return PDU_E_SIG_MISSING;
	buf_init(&b);
	if (json_canonical(d, t, &b, keep_not_signed, NULL) < 0)
		v = PDU_E_SHAPE;
	else
		v = verify_sig_tok(d, s, &b, pk) == 0 ? PDU_OK : PDU_E_SIG_INVALID;
	buf_free(&b);
	return v;
}

/* --- building signed objects -----------------------------------------------
 * The output is canonical, so the signed object is assembled as plain JSON
 * text from canonical pieces (members in any order) and then parsed and
 * re-encoded once: no JSON tree library, and the strict parser re-checks the
 * result. */

static int skipped(const struct json_doc *d, int key, const char *s1, const char *s2)
{
	return (s1 && json_str_eq(d, key, s1)) || (s2 && json_str_eq(d, key, s2));
}

/* Members of object o, except keys s1/s2, as `"k":v,` pieces. */
static int put_members(struct buf *b, const struct json_doc *d, int o,
                       const char *s1, const char *s2)
{
	if (o < 0 || d->tok[o].type != JSON_OBJECT)
		return 0;
	for (int k = json_first(d, o); k >= 0; k = json_next_kv(d, o, k)) {
		if (skipped(d, k, s1, s2))
			continue;
		if (json_canonical(d, k, b, NULL, NULL) < 0)
			return -1;
		buf_addc(b, ':');
		if (json_canonical(d, k + 1, b, NULL, NULL) < 0)
			return -1;
		buf_addc(b, ',');
	}
	return 0;
}

/* `"signatures":{...}` = the existing signatures object with
 * signatures.server.key_id set to sig. */
static int put_signatures(struct buf *b, const struct json_doc *d, int t,
                          const char *server, const char *key_id, const char *sig)
{
	int s = json_obj_get(d, t, "signatures");
	int mine = s >= 0 && d->tok[s].type == JSON_OBJECT ? json_obj_get(d, s, server) : -1;

	buf_adds(b, "\"signatures\":{");
	if (s >= 0 && put_members(b, d, s, server, NULL) < 0)
		return -1;
	json_put_string(b, server, strlen(server));
	buf_adds(b, ":{");
	if (mine >= 0 && put_members(b, d, mine, key_id, NULL) < 0)
		return -1;
	json_put_string(b, key_id, strlen(key_id));
	buf_addc(b, ':');
	json_put_string(b, sig, strlen(sig));
	buf_adds(b, "}}");
	return 0;
}

/* Parse text and write its canonical form to out. */
static int recanonicalize(struct json_doc *d, const struct buf *text, struct buf *out)
{
	if (json_parse(d, text->data, text->len, JSON_MAX_DEPTH_DEFAULT) < 0)
		return -1;
	return json_canonical(d, 0, out, NULL, NULL);
}

static void sign_bytes(char sig_b64[96], const struct buf *msg, const unsigned char sk[64])
{
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)msg->data, msg->len, sk);
	b64_encode(sig_b64, sig, sizeof sig);
}

int pdu_sign(const char *json, size_t n, int rv, const char *server,
             const char *key_id, const unsigned char sk[64],
             struct buf *out, char *event_id)
{
	struct json_doc d1 = { 0 }, d2 = { 0 };
	struct buf scratch, t2, t3;
	unsigned char h[32];
	char h64[64], sig[96];
	int rc = -1;

	buf_init(&scratch);
	buf_init(&t2);
	buf_init(&t3);
	if (json_parse(&d1, json, n, JSON_MAX_DEPTH_DEFAULT) < 0
	    || content_hash_into(&d1, 0, &scratch, h) < 0)
		goto done;
	b64_encode(h64, h, sizeof h);

	/* the event with hashes.sha256 set; signatures do not enter what is
	 * signed, so they are merged in afterwards */
	int hashes = json_obj_get(&d1, 0, "hashes");
	buf_addc(&t2, '{');
	if (put_members(&t2, &d1, 0, "hashes", NULL) < 0)
		goto done;
	buf_adds(&t2, "\"hashes\":{");
	if (hashes >= 0 && put_members(&t2, &d1, hashes, "sha256", NULL) < 0)
		goto done;
	buf_printf(&t2, "\"sha256\":\"%s\"}}", h64);
	if (json_parse(&d2, t2.data, t2.len, JSON_MAX_DEPTH_DEFAULT) < 0)
		goto done;

	buf_reset(&scratch);
	if (pdu_redact(&d2, 0, rv, 1, &scratch) < 0)
		goto done;
	sign_bytes(sig, &scratch, sk);
	if (event_id) {
		pdu_sha256(h, scratch.data, scratch.len);
		event_id_of(h, event_id);
	}

	buf_addc(&t3, '{');
	if (put_members(&t3, &d2, 0, "signatures", NULL) < 0
	    || put_signatures(&t3, &d2, 0, server, key_id, sig) < 0)
		goto done;
	buf_addc(&t3, '}');
	if (recanonicalize(&d1, &t3, out) < 0)
		goto done;
	rc = 0;
done:
	json_doc_free(&d1);
	json_doc_free(&d2);
	buf_free(&scratch);
	buf_free(&t2);
	buf_free(&t3);
	return rc;
}

int json_sign_object(const char *json, size_t n, const char *server,
                     const char *key_id, const unsigned char sk[64], struct buf *out)
{
	struct json_doc d1 = { 0 }, d2 = { 0 };
	struct buf msg, text;
	char sig[96];
	int rc = -1;

	buf_init(&msg);
	buf_init(&text);
	if (json_parse(&d1, json, n, JSON_MAX_DEPTH_DEFAULT) < 0 || d1.tok[0].type != JSON_OBJECT
	    || json_canonical(&d1, 0, &msg, keep_not_signed, NULL) < 0)
		goto done;
	sign_bytes(sig, &msg, sk);
	buf_addc(&text, '{');
	if (put_members(&text, &d1, 0, "signatures", NULL) < 0
	    || put_signatures(&text, &d1, 0, server, key_id, sig) < 0)
		goto done;
	buf_addc(&text, '}');
	if (recanonicalize(&d2, &text, out) < 0)
		goto done;
	rc = 0;
done:
	json_doc_free(&d1);
	json_doc_free(&d2);
	buf_free(&msg);
	buf_free(&text);
	return rc;
}
