/* fedctl_fleet.c: `fedctl fleet`: the fleet as its NATS JetStream KV buckets
 * show it (see cmd/fleetd/fleetd_main.c): live members with the age of
 * their last heartbeat and their own cursor of each peer (a member's lag is
 * the fleet cursor minus its own), each peer's lease (holder, revision, age of its last
 * renewal, the revisions still in the bucket's history), the fleet's cursor
 * per peer (written by the holder after syncd committed it) beside this
 * node's own cursor and lease row, so a member's lag shows as the
 * difference. The fleet feed: the stream's last sequence and message count,
 * and per member its apply consumer's position (ack floor) and what it has
 * still to apply (pending): its lag behind the fleet feed. Cursor values
 * are checked against the fleet MAC when this node can load the fleet key
 * ("fleet_cursor_valid"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fedctl.h"
#include "fedctl_args.h"
#include "core/log.h"
#include "store/fedstate.h"
#include "store/fleet.h"
#include "feed/fleet_nats.h"
#include "feed/fleet_mac.h"

/* The member's apply consumer on the fleet stream: 0, or -1 (none yet). */
static int apply_pos(struct fleet_nats *n, const char *name, const char *member, unsigned long long *floor,
                     unsigned long long *pending)
{
	char durable[256];
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	snprintf(durable, sizeof durable, "%s-apply-%s", name, member);
	if (js_GetConsumerInfo(&ci, n->js, name, durable, NULL, &jerr) != NATS_OK) return -1;
	*floor = ci->AckFloor.Stream;
	*pending = ci->NumPending + (unsigned long long)ci->NumAckPending;
	jsConsumerInfo_Destroy(ci);
	return 0;
}

static long long age_ms(kvEntry *e, long long now)
{
	long long c = (long long)(kvEntry_Created(e) / 1000000);
	return c > 0 && now > c ? now - c : 0;
}

static void history_json(struct buf *j, kvStore *kv, const char *key)
{
	kvEntryList l = { 0 };
	buf_adds(j, ",\"history\":[");
	if (kvStore_History(&l, kv, key, NULL) == NATS_OK) {
		for (int i = 0; i < l.Count; i++) {
			kvEntry *e = l.Entries[i];
			const char *v = kvEntry_ValueString(e);
			buf_printf(j, "%s{\"revision\":%llu,\"created_ms\":%lld,\"op\":\"%s\",\"holder\":", i ? "," : "",
			           (unsigned long long)kvEntry_Revision(e), (long long)(kvEntry_Created(e) / 1000000),
			           kvEntry_Operation(e) == kvOp_Put ? "put" : "delete");
			put_str(j, v ? v : "");
			buf_addc(j, '}');
		}
		kvEntryList_Destroy(&l);
	}
	buf_addc(j, ']');
}

static int cmd_fleet(struct fedctl *fc, int argc, char **argv)
{
	const struct config *cfg = &fc->cfg;
	const char *url = cfg_str(cfg, "fleet", "nats_url"), *name = cfg_str(cfg, "fleet", "name");
	if (!*url) {
		fprintf(stderr, "fedctl fleet: this node is not in a fleet ([fleet] nats_url is empty in %s)\n", cfg->path);
		return 1;
	}
	struct fleet_nats n;
	kvStore *kv = NULL, *kvp = NULL;
	char err[512], bucket[256];
	struct nats_sec sec;
	struct fleet_key fk;
	char kerr[256];
	int have_key = fleet_key_load(&fk, cfg, kerr, sizeof kerr) == 0;
	nats_sec_from_config(&sec, cfg, "fleet");
	if (fleet_nats_connect(&n, url, &sec, "fedpipe-fedctl", 3000, err, sizeof err)) {
		fprintf(stderr, "fedctl fleet: %s\n", err);
		return 1;
	}
	snprintf(bucket, sizeof bucket, "%.200s_leases", name);
	if (fleet_nats_bucket(&n, &kv, bucket, 0, 0, 0, 0, err, sizeof err)) {
		fprintf(stderr, "fedctl fleet: %s (is fleetd running?)\n", err);
		fleet_nats_close(&n);
		return 1;
	}
	snprintf(bucket, sizeof bucket, "%.200s_peers", name);
	if (fleet_nats_bucket(&n, &kvp, bucket, 0, 0, 0, 0, err, sizeof err)) kvp = NULL;
	long long now = now_ms();
	struct buf j;
	buf_init(&j);
	buf_adds(&j, "{\"fleet\":");
	put_str(&j, name);
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	unsigned long long last = 0, msgs = 0;
	int have_feed = js_GetStreamInfo(&si, n.js, name, NULL, &jerr) == NATS_OK;
	if (have_feed) { last = si->State.LastSeq; msgs = si->State.Msgs; jsStreamInfo_Destroy(si); }
	buf_printf(&j, ",\"feed\":{\"stream\":");
	put_str(&j, name);
	buf_printf(&j, ",\"present\":%s,\"last_seq\":%llu,\"messages\":%llu}", have_feed ? "true" : "false", last, msgs);
	buf_adds(&j, ",\"members\":[");
	if (!fc->json) {
		printf("fleet %s at %s\n", name, url);
		if (have_feed) printf("feed: stream %s, last sequence %llu, %llu messages\n", name, last, msgs);
		else printf("feed: stream %s not created yet\n", name);
		printf("members:\n");
	}
	kvKeysList kl = { 0 };
	natsStatus st = kvStore_Keys(&kl, kv, NULL);
	if (st != NATS_OK && st != NATS_NOT_FOUND) {
		fprintf(stderr, "fedctl fleet: listing %s_leases: %s\n", name, natsStatus_GetText(st));
		buf_free(&j);
		kvStore_Destroy(kv);
		if (kvp) kvStore_Destroy(kvp);
		fleet_nats_close(&n);
		return 1;
	}
	int first = 1;
	for (int i = 0; i < kl.Count; i++) {
		if (strncmp(kl.Keys[i], "member.", 7)) continue;
		kvEntry *e = NULL;
		if (kvStore_Get(&e, kv, kl.Keys[i]) != NATS_OK) continue;
		long long a = age_ms(e, now);
		/* "<wall ms> <peer>=<cursor> ...": the member's own cursors. */
		const char *v = kvEntry_ValueString(e), *sp = v ? strchr(v, ' ') : NULL;
		if (fc->json) {
			buf_adds(&j, first ? "{\"member\":" : ",{\"member\":");
			put_str(&j, kl.Keys[i] + 7);
			unsigned long long fl = 0, pend = 0;
			if (apply_pos(&n, name, kl.Keys[i] + 7, &fl, &pend) == 0)
				buf_printf(&j, ",\"apply_ack_floor\":%llu,\"apply_pending\":%llu", fl, pend);
			buf_printf(&j, ",\"heartbeat_age_ms\":%lld,\"cursors\":{", a);
			int k = 0;
			for (const char *q = sp; q && *q;) {
				while (*q == ' ') q++;
				const char *eq = strchr(q, '='), *end = strchr(q, ' ');
				if (!end) end = q + strlen(q);
				if (eq && eq < end) {
					buf_adds(&j, k++ ? "," : "");
					json_put_string(&j, q, (size_t)(eq - q));
					buf_printf(&j, ":%llu", strtoull(eq + 1, NULL, 10));
				}
				q = end;
			}
			buf_adds(&j, "}}");
		} else {
			unsigned long long fl = 0, pend = 0;
			char ap[96] = "no apply consumer";
			if (apply_pos(&n, name, kl.Keys[i] + 7, &fl, &pend) == 0)
				snprintf(ap, sizeof ap, "applied to %llu, %llu to apply", fl, pend);
			printf("  %-28s heartbeat %lld ms ago; feed %s; cursors:%s\n", kl.Keys[i] + 7, a, ap, sp ? sp : " -");
		}
		first = 0;
		kvEntry_Destroy(e);
	}
	kvKeysList_Destroy(&kl);
	buf_adds(&j, "],\"peers\":[");
	if (!fc->json) printf("%-14s %-28s %8s %10s %12s  %12s %s\n", "peer", "holder", "revision", "age_ms",
	                      "fleet_cursor", "our_cursor", "our_lease");
	struct store *ls = fedctl_store(fc, 1);
	for (size_t i = 0; i < cfg->npeers; i++) {
		const char *peer = cfg->peers[i].name;
		char key[96], holder[160] = "";
		unsigned long long rev = 0, fcur = 0;
		long long a = -1;
		kvEntry *e = NULL;
		snprintf(key, sizeof key, "peer.%s", peer);
		if (kvStore_Get(&e, kv, key) == NATS_OK) {
			const char *v = kvEntry_ValueString(e);
			snprintf(holder, sizeof holder, "%s", v ? v : "");
			rev = kvEntry_Revision(e);
			a = age_ms(e, now);
			kvEntry_Destroy(e);
		}
		snprintf(key, sizeof key, "cursor.%s", peer);
		e = NULL;
		int fvalid = -1;   /* -1 unknown (no value or no key here), 0 forged, 1 a member's */
		if (kvp && kvStore_Get(&e, kvp, key) == NATS_OK) {
			const char *v = kvEntry_ValueString(e);
			char cv[32];
			fcur = v ? strtoull(v, NULL, 10) : 0;
			if (have_key) fvalid = fleet_kv_open(&fk, key, v, cv, sizeof cv) == 0;
			kvEntry_Destroy(e);
		}
		MDB_txn *t = store_begin(ls, 1);
		uint64_t mine = fstate_cursor(t, ls, peer);
		long long until = 0;
		int row = fleet_lease_get(t, ls, peer, &until, NULL, 0) == 0 && until > now;
		mdb_txn_abort(t);
		if (fc->json) {
			buf_adds(&j, i ? ",{\"peer\":" : "{\"peer\":");
			put_str(&j, peer);
			buf_adds(&j, ",\"holder\":");
			put_str(&j, holder);
			buf_printf(&j, ",\"revision\":%llu,\"age_ms\":%lld,\"fleet_cursor\":%llu,\"our_cursor\":%llu,"
			           "\"our_lease_until_ms\":%lld,\"our_lease\":%s,\"fleet_cursor_valid\":%s", rev, a, fcur,
			           (unsigned long long)mine, row ? until : 0, row ? "true" : "false",
			           fvalid < 0 ? "null" : fvalid ? "true" : "false");
			snprintf(key, sizeof key, "peer.%s", peer);
			history_json(&j, kv, key);
			buf_addc(&j, '}');
		} else
			printf("%-14s %-28s %8llu %10lld %12llu%s %12llu %s\n", peer, *holder ? holder : "-", rev, a, fcur,
			       fvalid == 0 ? "!" : " ", (unsigned long long)mine, row ? "held" : "-");
	}
	buf_adds(&j, "]}");
	if (fc->json) puts(j.data);
	buf_free(&j);
	kvStore_Destroy(kv);
	if (kvp) kvStore_Destroy(kvp);
	fleet_nats_close(&n);
	return 0;
}
FEDCTL_COMMAND(fleet_cmd, "fleet", "fleet [--json]",
               "the fleet (NATS KV): live members, each peer's lease holder and history, fleet and local cursors",
               cmd_fleet)
