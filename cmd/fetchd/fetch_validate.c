/* fetch_validate.c: is an upstream answer acceptable? Cheap tier always:
 * HTTP status, size cap (in the transport), strict JSON, the op's response
 * shape, and for event ops the requested event present with the right
 * reference hash. Deep tier per request toggles (content hashes,
 * signatures) with the validator validated uses (matrix/validate.h).
 * A bad or wrong answer counts against the server; 4xx other than 429 does
 * not (the server is fine, it just lacks the event). */
#include <stdlib.h>
#include <string.h>
#include "fetch.h"
#include "matrix/json.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "matrix/validate.h"
#include "core/log.h"
#include "store/server_keys.h"

static struct json_doc doc;
static struct validator val;
static int val_ready;

static int key_lookup(void *arg, const char *server, const char *key_id,
                      unsigned char pk[32], int64_t *valid_until_ts)
{
	struct fetchd *fd = arg;
	struct key_rec r;
	MDB_txn *t = store_begin(fd->d->st, 1);
	int rc = store_key_get_rec(t, fd->d->st, server, key_id, &r);
	mdb_txn_abort(t);
	if (rc) return -1;
	memcpy(pk, r.pk, 32);
	*valid_until_ts = store_key_valid_until(&r);   /* fetched + 7 days at most */
	return 0;
}

static int rv_lookup(void *arg, const char *room_id)
{
	struct fetchd *fd = arg;
	MDB_txn *t = store_begin(fd->d->st, 1);
	int rv = store_room_version(t, fd->d->st, room_id);
	mdb_txn_abort(t);
	return rv;
}

/* Deep checks of one PDU (token t of doc). 0 ok, -1 with why. */
static int deep_check(struct fetchd *fd, struct fetch *f, const char *body, int t,
                      char *why, size_t cap, int *counts)
{
	struct val_opts o = { 0 };
	struct val_result r;
	int checks = f->req.checks & (FETCH_CHECK_HASHES | FETCH_CHECK_SIGNATURES);
	if (!checks) return 0;
	if (!val_ready) { validator_init(&val, 0); val_ready = 1; }
	o.raw_max = fd->response_max;
	o.room_version = fd->room_version;
	o.checks = (unsigned)(checks | VAL_CHECK_EVENT_ID);
	o.key = key_lookup; o.key_arg = fd;
	o.rv = rv_lookup;   o.rv_arg = fd;
	val_result_init(&r);
	int accept = validate_pdu(&val, &o, body + doc.tok[t].start,
	                          doc.tok[t].end - doc.tok[t].start, &r);
	/* A failed content hash still validates as the redacted event; a fetch
	 * that asked for hashes wants the full event. */
	if (accept && r.redacted && (checks & FETCH_CHECK_HASHES)) {
		accept = 0;
		snprintf(why, cap, "content hash mismatch");
	} else if (!accept) {
		int n = snprintf(why, cap, "%s: %s", val_reason_str(r.reason), r.message);
		/* cut at a whole UTF-8 character: why goes into JSON */
		size_t len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n, ok = 0;
		while (ok < len) {
			int l = json_utf8_seq_len(why + ok, len - ok);
			if (l <= 0) break;
			ok += (size_t)l;
		}
		why[ok] = 0;
		/* Our lack of a key is not the server's fault. */
		if (r.reason == VR_UNKNOWN_KEY || r.reason == VR_EXPIRED_KEY) *counts = 0;
	}
	val_result_free(&r);
	return accept ? 0 : -1;
}

static int array_of(const char *key, int root, int type, char *why, size_t cap)
{
	int a = json_obj_get(&doc, root, key);
	if (a < 0 || doc.tok[a].type != JSON_ARRAY) {
		snprintf(why, cap, "bad shape: no %s array", key);
		return -1;
	}
	for (int e = json_first(&doc, a); e >= 0; e = json_next_elem(&doc, a, e))
		if (doc.tok[e].type != type) {
			snprintf(why, cap, "bad shape: %s entry of the wrong type", key);
			return -1;
		}
	return a;
}

/* Does PDU token t have the wanted event ID (room version 10 or 11)? */
static int has_id(int t, const char *want)
{
	char id[PDU_EVENT_ID_MAX];
	if (pdu_event_id(&doc, t, 10, id) == 0 && strcmp(id, want) == 0) return 1;
	if (pdu_event_id(&doc, t, 11, id) == 0 && strcmp(id, want) == 0) return 1;
	return 0;
}

/* A notary key counts if it is stored, current (not an old key) and
 * usable now (store/server_keys.h: fetched + 7 days, valid_until_ts). */
static int notary_key(void *arg, const char *server, const char *key_id, unsigned char pk[32])
{
	struct fetchd *fd = arg;
	struct key_rec r;
	MDB_txn *t = store_begin(fd->d->st, 1);
	int rc = store_key_get_rec(t, fd->d->st, server, key_id, &r);
	mdb_txn_abort(t);
	if (rc || (r.flags & KEY_OLD) || store_key_valid_until(&r) < now_ms()) return -1;
	memcpy(pk, r.pk, 32);
	return 0;
}

/* Keys of S (the request's ID): from S itself, a document naming S
 * self-signed by one of its verify_keys; from a trusted notary N (asked
 * with POST /_matrix/key/v2/query, fetch_transport.c), {"server_keys":[...]}
 * whose documents for S are self-signed and signed by N with a key N served
 * itself. Anyone else's answer is refused. A notary holding no document for
 * S (or none valid long enough: minimum_valid_until_ts), or signing with a
 * key of its we do not hold yet, is not at fault (*counts = 0): the next
 * candidate is asked. */
static int check_keys(struct fetchd *fd, struct fetch *f, struct attempt *a, const char *body,
                      char *why, size_t cap, int *counts)
{
	const char *s = f->req.event_id, *from = a->s->name;
	struct keyring kr;
	char err[200];
	int n;
	keyring_init(&kr);
	if (strcmp(from, s) == 0) {
		n = keyring_add_server_doc_for(&kr, body, a->body.len, s, err, sizeof err);
	} else if (cfg_list_has(&fd->d->cfg, "node", "trusted_key_servers", from)
	           && !cfg_list_has(&fd->d->cfg, "node", "trusted_key_servers", s)) {
		n = keyring_add_notary_answer(&kr, body, a->body.len, s, from, notary_key, fd, err, sizeof err);
		size_t off, len;
		int64_t vu;
		if (n == KEYS_NOTARY_KEY_UNKNOWN
		    || (n < 0 && json_obj_get(&doc, 0, "server_keys") >= 0
		        && store_key_doc_pick(body, a->body.len, s, &off, &len, &vu) < 0))
			*counts = 0;
	} else {
		n = -1;
		snprintf(err, sizeof err, "%.80s is neither %.80s nor a trusted notary", from, s);
	}
	keyring_free(&kr);
	if (n <= 0) {
		snprintf(why, cap, "key document refused: %s", n < 0 ? err : "no ed25519 keys");
		log_info("keys of %s from %s refused: %s", s, from, n < 0 ? err : "no ed25519 keys");
		return -1;
	}
	return 0;
}

int fetch_check_answer(struct fetchd *fd, struct fetch *f, struct attempt *a,
                       long status, char *why, size_t cap, int *counts)
{
	const char *body = a->body.data ? a->body.data : "";
	const struct fetch_req *q = &f->req;
	int a_t;
	*counts = 1;
	if (status != 200) {
		snprintf(why, cap, "http %ld", status);
		*counts = status >= 500 || status == 429 || status == 410 || status < 100;
		return -1;
	}
	if (json_parse(&doc, body, a->body.len, JSON_MAX_DEPTH_DEFAULT) < 0) {
		snprintf(why, cap, "bad json: %s at %u", json_err_str(doc.err), doc.err_off);
		return -1;
	}
	if (doc.tok[0].type != JSON_OBJECT) { snprintf(why, cap, "bad shape: not an object"); return -1; }
	switch (q->op) {
	case FOP_EVENT:
	case FOP_AUTH_EVENT: {
		if ((a_t = array_of("pdus", 0, JSON_OBJECT, why, cap)) < 0) return -1;
		int found = -1;
		for (int e = json_first(&doc, a_t); e >= 0; e = json_next_elem(&doc, a_t, e)) {
			if (!(q->checks & FETCH_CHECK_EVENT_ID) || has_id(e, q->event_id)) { found = e; break; }
		}
		if (found < 0) {
			snprintf(why, cap, json_first(&doc, a_t) < 0 ? "empty pdus" : "wrong event");
			return -1;
		}
		return deep_check(fd, f, body, found, why, cap, counts);
	}
	case FOP_AUTH_CHAIN:
	case FOP_MISSING_EVENTS:
	case FOP_BACKFILL: {
		const char *k = q->op == FOP_AUTH_CHAIN ? "auth_chain" :
		                q->op == FOP_MISSING_EVENTS ? "events" : "pdus";
		if ((a_t = array_of(k, 0, JSON_OBJECT, why, cap)) < 0) return -1;
		for (int e = json_first(&doc, a_t); e >= 0; e = json_next_elem(&doc, a_t, e))
			if (deep_check(fd, f, body, e, why, cap, counts) < 0) return -1;
		return 0;
	}
	case FOP_STATE_IDS:
		if (array_of("pdu_ids", 0, JSON_STRING, why, cap) < 0 ||
		    array_of("auth_chain_ids", 0, JSON_STRING, why, cap) < 0) return -1;
		return 0;
	case FOP_SERVER_KEYS:
		return check_keys(fd, f, a, body, why, cap, counts);
	}
	snprintf(why, cap, "unknown op");
	return -1;
}
