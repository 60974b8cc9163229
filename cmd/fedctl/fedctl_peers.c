/* fedctl_peers.c: `fedctl peers` (each configured peer's mode, cursor, last
 * seen, pinned node ID, health with its fixed reason code, and clock) and
 * `fedctl peer reset NAME` (forget the pin, cursor, clock and health so
 * syncd handshakes afresh; idempotent). Reads what syncd keeps in
 * federation_state (store/fedstate.h). */
#include "fedctl.h"
#include "matrix/json.h"
#include "core/log.h"
#include "store/fedstate.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

static void iso(long long ms, char *out, size_t cap)
{
	if (ms <= 0) { snprintf(out, cap, "never"); return; }
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_peers(struct fedctl *fc, int argc, char **argv)
{
	struct store *st = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(st, 1);
	struct buf j;
	buf_init(&j);
	if (fc->json) buf_addc(&j, '[');
	else printf("%-12s %-7s %10s %-20s %-26s %-18s %s\n", "PEER", "MODE", "CURSOR", "LAST SEEN",
	            "PINNED NODE ID", "HEALTH", "CLOCK");
	for (size_t i = 0; i < fc->cfg.npeers; i++) {
		const struct peer_cfg *p = &fc->cfg.peers[i];
		if (argc > 1 && strcmp(argv[1], p->name)) continue;
		char pin[64] = "", name[256] = "", vc[4096] = "{}", health[1024] = "", b8[16], seen[32];
		fstate_get(t, st, p->name, "node_id", pin, sizeof pin);
		fstate_get(t, st, p->name, "server_name", name, sizeof name);
		fstate_get(t, st, p->name, "vclock", vc, sizeof vc);
		fstate_get(t, st, p->name, "health", health, sizeof health);
		uint64_t cursor = fstate_cursor(t, st, p->name);
		long long last = fstate_get(t, st, p->name, "last_seen", b8, sizeof b8) == 8
		                 ? (long long)be64_get((unsigned char *)b8) : 0;
		iso(last, seen, sizeof seen);
		char reason[32] = "never_contacted", msg[512] = "";
		struct json_doc d = {0};
		if (health[0] && json_parse(&d, health, strlen(health), 4) == 0) {
			int r = json_obj_get(&d, 0, "reason"), m = json_obj_get(&d, 0, "message");
			if (r >= 0) json_str_copy(&d, r, reason, sizeof reason);
			if (m >= 0) json_str_copy(&d, m, msg, sizeof msg);
		}
		json_doc_free(&d);
		const char *mode = p->mode[0] ? p->mode : "sync";
		if (!strcmp(mode, "paused")) snprintf(reason, sizeof reason, "paused");
		if (fc->json) {
			if (j.len > 1) buf_addc(&j, ',');
			buf_adds(&j, "{\"clock\":");
			buf_adds(&j, vc[0] == '{' ? vc : "{}");
			buf_printf(&j, ",\"cursor\":%llu,\"endpoint\":", (unsigned long long)cursor);
			json_put_string(&j, p->endpoint, strlen(p->endpoint));
			buf_adds(&j, ",\"health\":");
			json_put_string(&j, reason, strlen(reason));
			buf_adds(&j, ",\"health_message\":");
			json_put_string(&j, msg, strlen(msg));
			buf_printf(&j, ",\"last_seen_ms\":%lld,\"mode\":", last);
			json_put_string(&j, mode, strlen(mode));
			buf_adds(&j, ",\"name\":");
			json_put_string(&j, p->name, strlen(p->name));
			buf_adds(&j, ",\"node_id\":");
			json_put_string(&j, pin, strlen(pin));
			buf_adds(&j, ",\"server_name\":");
			json_put_string(&j, name, strlen(name));
			buf_addc(&j, '}');
		} else {
			printf("%-12s %-7s %10llu %-20s %-26s %-18s %s\n", p->name, mode, (unsigned long long)cursor,
			       seen, pin[0] ? pin : "-", reason, vc);
			if (msg[0] && strcmp(reason, "ok")) printf("%-12s   %s\n", "", msg);
		}
	}
	mdb_txn_abort(t);
	if (fc->json) { buf_adds(&j, "]"); puts(j.data); }
	buf_free(&j);
	return 0;
}
FEDCTL_COMMAND(peers_cmd, "peers", "peers [NAME] [--json]",
               "each peer: mode, cursor, last seen, pinned node ID, health reason, clock", cmd_peers)

static int cmd_peer(struct fedctl *fc, int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "reset")) {
		fprintf(stderr, "usage: fedctl peer reset NAME\n");
		return 100;
	}
	const char *name = argv[2];
	if (!cfg_peer(&fc->cfg, name))
		fprintf(stderr, "fedctl: note: no [peer %s] in %s; resetting its state anyway\n", name, fc->cfg.path);
	struct store *st = fedctl_store(fc, 0);
	MDB_txn *t = store_begin(st, 0);
	char pin[64] = "";
	fstate_get(t, st, name, "node_id", pin, sizeof pin);
	int rc = 0;
	for (int i = 0; fstate_fields[i] && !rc; i++) rc = fstate_del(t, st, name, fstate_fields[i]);
	if (rc) { mdb_txn_abort(t); fprintf(stderr, "fedctl: %s\n", mdb_strerror(rc)); return 1; }
	if (store_commit(t)) return 1;
	if (fc->json) printf("{\"peer\":\"%s\",\"was_pinned\":\"%s\"}\n", name, pin);
	else if (pin[0]) printf("peer %s reset (was pinned to %s); syncd will handshake and pull from the start\n", name, pin);
	else printf("peer %s: nothing pinned; state cleared\n", name);
	return 0;
}
FEDCTL_COMMAND(peer_cmd, "peer", "peer reset NAME",
               "forget a peer's pinned node ID, cursor and clock (idempotent)", cmd_peer)
