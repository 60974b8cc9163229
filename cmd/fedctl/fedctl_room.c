/* fedctl_room.c: originating events on this node (create-room, send):
 * built here, signed with the node key, put in the inbox and validated like
 * any other event (purgatoryd stores them). Also the fast path that tells
 * validated about new inbox rows (fedctl expired requeue uses it too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include "fedctl_args.h"
#include "core/frame.h"
#include "core/log.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "store/purgatory.h"

void fedctl_notify_validated(struct fedctl *fc, const uint64_t *seqs, char **bytes,
                             const size_t *lens, size_t n)
{
	int fd = frame_connect_stage(cfg_str(&fc->cfg, "node", "run_dir"), "validated");
	if (fd < 0) {
		if (!fc->json)
			fprintf(stderr, "fedctl: validated is not running; the event waits in the inbox\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (frame_write_fd(fd, FT_EVENT, 0, seqs[i], bytes[i], lens[i]) < 0) break;
	close(fd);
}

struct origin_ctx {
	struct fedctl *fc;
	struct signing_key key;
	const char *server;
	char sender[300];
};

static int origin_init(struct fedctl *fc, struct origin_ctx *o, int argc, char **argv)
{
	char err[256];
	o->fc = fc;
	if (sodium_init() < 0) { fprintf(stderr, "fedctl: libsodium failed\n"); return 111; }
	if (signing_key_load(&o->key, cfg_str(&fc->cfg, "node", "signing_key"), err, sizeof err) < 0) {
		fprintf(stderr, "fedctl: signing key: %s (fedctl keygen makes one)\n", err);
		return 100;
	}
	o->server = cfg_str(&fc->cfg, "node", "server_name");
	const char *lp = opt_arg(argc, argv, "--sender");
	snprintf(o->sender, sizeof o->sender, "@%s:%s", lp ? lp : "admin", o->server);
	return 0;
}

/* Sign ev (an event without hashes/signatures), then either print it
 * (--no-submit) or put it in the inbox and tell validated. */
static int originate(struct origin_ctx *o, const struct buf *ev, int rv, int submit, char *event_id)
{
	struct buf out;
	buf_init(&out);
	if (pdu_sign(ev->data, ev->len, rv, o->server, o->key.key_id, o->key.sk, &out, event_id) < 0) {
		fprintf(stderr, "fedctl: signing the event failed\n");
		buf_free(&out);
		return 1;
	}
	if (out.len > PDU_MAX_BYTES) {
		fprintf(stderr, "fedctl: the event is %zu bytes, over the %d-byte PDU limit\n", out.len, PDU_MAX_BYTES);
		buf_free(&out);
		return 1;
	}
	if (!submit) { printf("%s\n", out.data); buf_free(&out); return 0; }
	struct store *s = fedctl_store(o->fc, 0);
	uint64_t seq;
	for (;;) {
		MDB_txn *t = store_begin(s, 0);
		int rc = store_inbox_put(t, s, o->server, out.data, out.len, &seq);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);       /* a failed commit frees the txn */
		if (!rc) break;
		if (!fedctl_write_failed(o->fc, rc, "putting the event in the inbox")) {
			buf_free(&out);
			return 1;
		}
	}
	char *b = out.data;
	fedctl_notify_validated(o->fc, &seq, &b, &out.len, 1);
	buf_free(&out);
	return 0;
}

static void rand_id(char *out, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	for (size_t i = 0; i + 1 < n; i++) out[i] = al[randombytes_uniform(sizeof al - 1)];
	out[n - 1] = 0;
}

static int cmd_create_room(struct fedctl *fc, int argc, char **argv)
{
	struct origin_ctx o;
	int rc = origin_init(fc, &o, argc, argv);
	if (rc) return rc;
	const char *rvs = opt_arg(argc, argv, "--room-version");
	int rv = rvs ? atoi(rvs) : (int)cfg_int(&fc->cfg, "node", "room_version");
	if (rv != 10 && rv != 11) { fprintf(stderr, "fedctl: room version %d is not supported (10 or 11)\n", rv); return 100; }
	int submit = !has_flag(argc, argv, "--no-submit");
	char rid[19], room[300], create[PDU_EVENT_ID_MAX], member[PDU_EVENT_ID_MAX];
	rand_id(rid, sizeof rid);
	snprintf(room, sizeof room, "!%s:%s", rid, o.server);
	long long ts = now_ms();
	struct buf ev;
	buf_init(&ev);
	/* v11 dropped content.creator: the sender is the creator */
	buf_adds(&ev, "{\"auth_events\":[],\"content\":{");
	if (rv == 10) { buf_adds(&ev, "\"creator\":"); put_str(&ev, o.sender); buf_addc(&ev, ','); }
	buf_printf(&ev, "\"room_version\":\"%d\"},\"depth\":1,\"origin\":", rv);
	put_str(&ev, o.server);
	buf_printf(&ev, ",\"origin_server_ts\":%lld,\"prev_events\":[],\"room_id\":", ts);
	put_str(&ev, room);
	buf_adds(&ev, ",\"sender\":"); put_str(&ev, o.sender);
	buf_adds(&ev, ",\"state_key\":\"\",\"type\":\"m.room.create\"}");
	if ((rc = originate(&o, &ev, rv, submit, create))) goto out;
	/* the creator's join: prev and auth = the create event */
	buf_reset(&ev);
	buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":{\"membership\":\"join\"},\"depth\":2,\"origin\":", create);
	put_str(&ev, o.server);
	buf_printf(&ev, ",\"origin_server_ts\":%lld,\"prev_events\":[\"%s\"],\"room_id\":", ts, create);
	put_str(&ev, room);
	buf_adds(&ev, ",\"sender\":"); put_str(&ev, o.sender);
	buf_adds(&ev, ",\"state_key\":"); put_str(&ev, o.sender);
	buf_adds(&ev, ",\"type\":\"m.room.member\"}");
	if ((rc = originate(&o, &ev, rv, submit, member))) goto out;
	if (fc->json) printf("{\"room_id\":\"%s\",\"create_event\":\"%s\",\"member_event\":\"%s\"}\n", room, create, member);
	else if (submit) printf("%s\n%s\n", room, create);
out:
	buf_free(&ev);
	return rc;
}
FEDCTL_COMMAND(create_room_cmd, "create-room", "create-room [--room-version N] [--sender LOCAL] [--no-submit]",
               "create a room (create + join events, signed with the node key)", cmd_create_room)

static int cmd_send(struct fedctl *fc, int argc, char **argv)
{
	static const char *const wv[] = { "--state-key", "--sender", NULL };
	const char *room = pos_arg(argc, argv, 0, wv), *type = pos_arg(argc, argv, 1, wv),
	           *content = pos_arg(argc, argv, 2, wv), *sk = opt_arg(argc, argv, "--state-key");
	if (!room || !type || !content) {
		fprintf(stderr, "usage: fedctl send ROOM TYPE JSON [--state-key K] [--sender LOCAL] [--no-submit]\n");
		return 100;
	}
	struct json_doc d = { 0 };
	if (json_parse(&d, content, strlen(content), 32) < 0 || d.tok[0].type != JSON_OBJECT) {
		fprintf(stderr, "fedctl: content is not a strict JSON object: %s at byte %u\n",
		        json_err_str(d.err), d.err_off);
		json_doc_free(&d);
		return 100;
	}
	struct buf canon;
	buf_init(&canon);
	json_canonical(&d, 0, &canon, NULL, NULL);
	json_doc_free(&d);
	struct origin_ctx o;
	int rc = origin_init(fc, &o, argc, argv);
	if (rc) { buf_free(&canon); return rc; }
	struct store *s = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(s, 1);
	int rv = 0;
	uint64_t maxd;
	char create[PDU_EVENT_ID_MAX], ext[10][PDU_EVENT_ID_MAX];
	int64_t depths[10];
	if (store_room_get(t, s, room, &rv, &maxd, create, sizeof create) || !create[0]) {
		fprintf(stderr, "fedctl: room %s is not known here (its create event is not stored yet)\n", room);
		mdb_txn_abort(t);
		buf_free(&canon);
		return 1;
	}
	int ne = purg_extremities(t, s, room, ext, depths, 10);
	mdb_txn_abort(t);
	if (!ne) {
		fprintf(stderr, "fedctl: room %s has no forward extremities stored\n", room);
		buf_free(&canon);
		return 1;
	}
	int64_t depth = 0;
	for (int i = 0; i < ne; i++) if (depths[i] > depth) depth = depths[i];
	struct buf ev;
	buf_init(&ev);
	buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":", create);
	buf_add(&ev, canon.data, canon.len);
	buf_printf(&ev, ",\"depth\":%lld,\"origin\":", (long long)depth + 1);
	put_str(&ev, o.server);
	buf_printf(&ev, ",\"origin_server_ts\":%lld,\"prev_events\":[", now_ms());
	for (int i = 0; i < ne; i++) buf_printf(&ev, "%s\"%s\"", i ? "," : "", ext[i]);
	buf_adds(&ev, "],\"room_id\":"); put_str(&ev, room);
	buf_adds(&ev, ",\"sender\":"); put_str(&ev, o.sender);
	if (sk) { buf_adds(&ev, ",\"state_key\":"); put_str(&ev, sk); }
	buf_adds(&ev, ",\"type\":"); put_str(&ev, type);
	buf_addc(&ev, '}');
	char id[PDU_EVENT_ID_MAX];
	int submit = !has_flag(argc, argv, "--no-submit");
	rc = originate(&o, &ev, rv ? rv : (int)cfg_int(&fc->cfg, "node", "room_version"), submit, id);
	if (!rc && submit) {
		if (fc->json) printf("{\"event_id\":\"%s\"}\n", id);
		else printf("%s\n", id);
	}
	buf_free(&ev);
	buf_free(&canon);
	return rc;
}
FEDCTL_COMMAND(send_cmd, "send", "send ROOM TYPE JSON [--state-key K] [--sender LOCAL] [--no-submit]",
               "originate an event (prev = the room's forward extremities), signed with the node key", cmd_send)
