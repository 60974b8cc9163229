/* served_fill.c: test/bench tool: makes a room of signed PDUs (room version
 * 10: a create event, then a chain of messages, each child citing its parent)
 * and writes them into a node's LMDB the way purgatoryd stores events
 * (events + stream + rooms), or prints them as JSON lines (--jsonl).
 * usage: served_fill -c CONFIG [-N count] [-s body_bytes] [-o ids_file]
 *                    [--jsonl] [--keygen]   (--keygen: make the signing key if missing) */
#include "core/config.h"
#include "matrix/keys.h"
#include "core/log.h"
#include "matrix/pdu.h"
#include "store/store.h"
#include "matrix/json.h"
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put_event(struct store *st, MDB_txn *t, const char *id, const char *room,
                      const char *pdu, size_t n)
{
	uint64_t pos = store_next_seq(t, st, "stream_next");
	size_t rl = strlen(room);
	struct buf v;
	buf_init(&v);
	buf_add_u64be(&v, pos);
	buf_addc(&v, 10);
	buf_addc(&v, 0);
	buf_addc(&v, (char)(rl >> 8));
	buf_addc(&v, (char)rl);
	buf_adds(&v, room);
	buf_add(&v, pdu, n);
	if (store_put(t, st, DB_EVENTS, id, strlen(id), v.data, v.len, 0)) fatalx("put event");
	unsigned char k[8];
	be64_put(k, pos);
	if (store_put(t, st, DB_STREAM, k, 8, id, strlen(id), 0)) fatalx("put stream");
	buf_free(&v);
}

int main(int argc, char **argv)
{
	const char *cfgpath = NULL, *ids = NULL;
	long count = 10, size = 100;
	int jsonl = 0, keygen = 0;
	static const struct option lo[] = { { "jsonl", 0, 0, 'J' }, { "keygen", 0, 0, 'K' }, { 0, 0, 0, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "c:N:s:o:", lo, NULL)) != -1) {
		switch (o) {
		case 'c': cfgpath = optarg; break;
		case 'N': count = atol(optarg); break;
		case 's': size = atol(optarg); break;
		case 'o': ids = optarg; break;
		case 'J': jsonl = 1; break;
		case 'K': keygen = 1; break;
		default: fprintf(stderr, "usage: served_fill -c CONFIG [-N n] [-s bytes] [-o ids] [--jsonl] [--keygen]\n"); return 100;
		}
	}
	log_init("served_fill", 0);
	if (sodium_init() < 0) return 111;
	struct config cfg;
	char err[512];
	if (config_load(&cfg, cfgpath, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 100; }
	const char *server = cfg_str(&cfg, "node", "server_name");
	const char *keyfile = cfg_str(&cfg, "node", "signing_key");
	struct signing_key key;
	if (signing_key_load(&key, keyfile, err, sizeof err) < 0) {
		if (!keygen) { fprintf(stderr, "%s\n", err); return 100; }
		signing_key_generate(&key, "a1");
		if (signing_key_save(&key, keyfile) < 0) { perror(keyfile); return 111; }
	}
	if (count < 0) return 0;
	struct store st;
	if (!jsonl && store_open(&st, cfg_str(&cfg, "node", "state_dir"), (size_t)cfg_size(&cfg, "node", "map_size"), 0, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 111;
	}
	FILE *idf = ids ? fopen(ids, "a") : NULL;
	char room[320], sender[300], prev[PDU_EVENT_ID_MAX] = "", create[PDU_EVENT_ID_MAX] = "";
	unsigned char rnd[6];
	randombytes_buf(rnd, sizeof rnd);
	snprintf(room, sizeof room, "!r%02x%02x%02x%02x%02x%02x:%s", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], server);
	snprintf(sender, sizeof sender, "@fill:%s", server);
	char *body = malloc((size_t)size + 1);
	for (long i = 0; i < size; i++) body[i] = (char)('a' + i % 26);
	body[size] = 0;
	MDB_txn *t = NULL;
	struct buf ev, out;
	buf_init(&ev);
	buf_init(&out);
	long long ts = now_ms();
	for (long i = 0; i <= count; i++) {
		buf_reset(&ev);
		buf_reset(&out);
		if (i == 0) {
			buf_printf(&ev, "{\"auth_events\":[],\"content\":{\"creator\":\"%s\",\"room_version\":\"10\"},"
			           "\"depth\":1,\"origin_server_ts\":%lld,\"prev_events\":[],\"room_id\":\"%s\","
			           "\"sender\":\"%s\",\"state_key\":\"\",\"type\":\"m.room.create\"}", sender, ts, room, sender);
		} else {
			buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":{\"body\":\"%ld %s\",\"msgtype\":\"m.text\"},"
			           "\"depth\":%ld,\"origin_server_ts\":%lld,\"prev_events\":[\"%s\"],\"room_id\":\"%s\","
			           "\"sender\":\"%s\",\"type\":\"m.room.message\"}", create, i, body, i + 1, ts + i, prev, room, sender);
		}
		char id[PDU_EVENT_ID_MAX];
		if (pdu_sign(ev.data, ev.len, 10, server, key.key_id, key.sk, &out, id) < 0) fatalx("pdu_sign failed");
		if (i == 0) strcpy(create, id);
		strcpy(prev, id);
		if (idf) fprintf(idf, "%s\n", id);
		if (jsonl) { fwrite(out.data, 1, out.len, stdout); putchar('\n'); continue; }
		if (!t) t = store_begin(&st, 0);
		if (i == 0) {
			struct buf r;
			buf_init(&r);
			buf_addc(&r, 10);
			buf_add_u64be(&r, (uint64_t)count + 1);
			buf_addc(&r, (char)(strlen(id) >> 8));
			buf_addc(&r, (char)strlen(id));
			buf_adds(&r, id);
			store_put(t, &st, DB_ROOMS, room, strlen(room), r.data, r.len, 0);
			buf_free(&r);
		}
		put_event(&st, t, id, room, out.data, out.len);
		if (i % 1000 == 999 || i == count) { if (store_commit(t)) return 111; t = NULL; }
	}
	if (idf) fclose(idf);
	if (!jsonl) store_close(&st);
	fprintf(jsonl ? stderr : stdout, "%s\n", room);
	return 0;
}
