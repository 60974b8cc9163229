/* test_matrix_alone.c: the matrix library stands alone. This program is
 * linked with build/libfpmatrix.a only (no core, store or feed archive: see
 * the Makefile), includes only matrix/matrix.h, and uses it end to end:
 * makes a signing key and its self-signed key document, signs a room v11
 * event, and validates it with every check on (event ID, content hash,
 * signature) through a keyring built from that document; then a tampered
 * copy is rejected with the right reason, and a signature by a key the
 * keyring lacks is refused. */
#include <sodium.h>
#include <string.h>
#include "matrix/matrix.h"
#include "../lib/tap.h"

static int lookup(void *arg, const char *server, const char *key_id, unsigned char pk[32], int64_t *until)
{
	const struct verify_key *k = keyring_find(arg, server, key_id);
	if (!k) return -1;
	memcpy(pk, k->pk, 32);
	*until = k->valid_until_ts;
	return 0;
}

int main(void)
{
	if (sodium_init() < 0) return 1;
	struct signing_key key, stranger;
	TAP_OK(signing_key_generate(&key, "alone") == 0 && signing_key_generate(&stranger, "alone") == 0,
	       "signing keys generated");
	struct buf doc;
	buf_init(&doc);
	struct keyring kr;
	keyring_init(&kr);
	char err[256] = "";
	TAP_OK(signing_key_doc(&key, "alone.test", 0, 86400000LL * 365 * 100, &doc) == 0 &&
	       keyring_add_server_doc(&kr, doc.data, doc.len, err, sizeof err) > 0,
	       "the self-signed key document enters the keyring %s", err);

	const char *ev = "{\"room_id\":\"!r:alone.test\",\"sender\":\"@u:alone.test\",\"type\":\"m.room.message\","
	                 "\"content\":{\"body\":\"standing alone\"},\"origin_server_ts\":1700000000000,"
	                 "\"depth\":3,\"prev_events\":[\"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"],"
	                 "\"auth_events\":[\"$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\"]}";
	struct buf pdu, bad;
	buf_init(&pdu);
	buf_init(&bad);
	char eid[PDU_EVENT_ID_MAX] = "";
	TAP_OK(pdu_sign(ev, strlen(ev), 11, "alone.test", key.key_id, key.sk, &pdu, eid) == 0 && eid[0] == '$',
	       "a v11 event signed: %s", eid);

	struct validator v;
	validator_init(&v, 0);
	struct val_opts o = { .room_version = 11, .checks = VAL_CHECK_ALL, .key = lookup, .key_arg = &kr };
	struct val_result r;
	val_result_init(&r);
	TAP_OK(validate_pdu(&v, &o, pdu.data, pdu.len, &r) == 1 && !strcmp(r.event_id, eid),
	       "validated with every check on: %s %s", val_reason_str(r.reason), r.message);
	val_result_free(&r);

	/* one byte of the body changed: the content hash fails, and as the
	 * Matrix spec says the event is accepted in its redacted form */
	buf_add(&bad, pdu.data, pdu.len);
	char *p = strstr(bad.data, "standing alone");
	TAP_OK(p != NULL, "the body is in the canonical bytes");
	if (p) p[0] = 'S';
	val_result_init(&r);
	TAP_OK(validate_pdu(&v, &o, bad.data, bad.len, &r) == 1 && r.redacted == 1 && !strcmp(r.event_id, eid),
	       "a changed body: accepted redacted, same event ID (%s)", val_reason_str(r.reason));
	val_result_free(&r);
	/* the timestamp changed: covered by the event ID and the signature */
	p = strstr(bad.data, "1700000000000");
	TAP_OK(p != NULL, "the timestamp is in the canonical bytes");
	if (p) p[12] = '1';
	val_result_init(&r);
	o.expect_event_id = eid;
	TAP_OK(validate_pdu(&v, &o, bad.data, bad.len, &r) == 0 && r.reason != VR_OK,
	       "a changed timestamp: rejected (%s)", val_reason_str(r.reason));
	val_result_free(&r);
	o.expect_event_id = NULL;

	struct buf other;
	buf_init(&other);
	char eid2[PDU_EVENT_ID_MAX];
	pdu_sign(ev, strlen(ev), 11, "alone.test", "ed25519:other", stranger.sk, &other, eid2);
	val_result_init(&r);
	TAP_OK(validate_pdu(&v, &o, other.data, other.len, &r) == 0 && r.reason != VR_OK,
	       "signed by a key the keyring lacks: refused (%s)", val_reason_str(r.reason));
	val_result_free(&r);

	validator_free(&v);
	keyring_free(&kr);
	buf_free(&doc); buf_free(&pdu); buf_free(&bad); buf_free(&other);
	return tap_done();
}
