/* fedctl_fetch.c: `fedctl fetch` (ask fetchd for raw federation bytes: body
 * on stdout, answering server on stderr) and `fedctl servers [wake NAME]`
 * (the per-server backoff fetchd keeps in LMDB server_health). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fedctl.h"
#include "core/fetchreq.h"
#include "core/frame.h"
#include "matrix/json.h"
#include "core/log.h"
#include "store/health.h"

#define FETCH_USAGE "fetch OP ID [--room R] [--servers a,b] [--fanout geometric:1,2] [--limit N] " \
	"[--events a,b] [--earliest a,b] [--checks event_id,hashes,signatures] [--max-width N] " \
	"[--max-attempts N] [--timeout MS] [--proxied]"

static int cmd_fetch(struct fedctl *fc, int argc, char **argv)
{
	struct fetch_req r;
	uint16_t flags = 0;
	long long wait_ms = 120000;
	fetchreq_init(&r);
	if (argc < 3 || (r.op = fetchreq_op_parse(argv[1])) < 0) {
		fprintf(stderr, "usage: fedctl " FETCH_USAGE "\n  OP: event auth_event auth_chain "
		        "state_ids missing_events backfill server_keys (ID: the server name)\n");
		return 100;
	}
	snprintf(r.event_id, sizeof r.event_id, "%s", argv[2]);
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--proxied")) { flags |= FF_PROXIED; continue; }
		if (!v) { fprintf(stderr, "fedctl fetch: %s needs a value\n", a); fetchreq_free(&r); return 100; }
		i++;
		if (!strcmp(a, "--room")) snprintf(r.room_id, sizeof r.room_id, "%s", v);
		else if (!strcmp(a, "--servers")) fetchreq_list_split(&r.servers, &r.nservers, v);
		else if (!strcmp(a, "--events")) fetchreq_list_split(&r.events, &r.nevents, v);
		else if (!strcmp(a, "--earliest")) fetchreq_list_split(&r.earliest, &r.nearliest, v);
		else if (!strcmp(a, "--limit")) r.limit = atoi(v);
		else if (!strcmp(a, "--max-width")) r.max_width = atoi(v);
		else if (!strcmp(a, "--max-attempts")) r.max_attempts = atoi(v);
		else if (!strcmp(a, "--timeout")) { r.timeout_ms = cfg_parse_ms(v); wait_ms = r.timeout_ms + 5000; }
		else if (!strcmp(a, "--checks")) {
			r.checks = (strstr(v, "event_id") ? FETCH_CHECK_EVENT_ID : 0) |
			           (strstr(v, "hashes") ? FETCH_CHECK_HASHES : 0) |
			           (strstr(v, "signatures") ? FETCH_CHECK_SIGNATURES : 0);
		} else if (!strcmp(a, "--fanout")) {
			if (fetchreq_fanout_parse(v, &r.fanout) < 0) {
				fprintf(stderr, "fedctl fetch: bad --fanout '%s' (fixed:N | linear:S,STEP | "
				        "geometric:S,F)\n", v);
				fetchreq_free(&r);
				return 100;
			}
		} else {
			fprintf(stderr, "usage: fedctl " FETCH_USAGE "\n");
			fetchreq_free(&r);
			return 100;
		}
	}
	struct buf b;
	buf_init(&b);
	fetchreq_encode(&r, &b);
	fetchreq_free(&r);
	const char *run_dir = cfg_str(&fc->cfg, "node", "run_dir");
	int fd = frame_connect_stage(run_dir, "fetchd");
	if (fd < 0) {
		fprintf(stderr, "fedctl: fetchd is not running (%s)\n", strerror(errno));
		buf_free(&b);
		return 1;
	}
	uint64_t id = (uint64_t)getpid() << 20 | (uint64_t)(time(NULL) & 0xfffff);
	if (frame_write_fd(fd, FT_FETCH_REQ, flags, id, b.data, b.len) < 0) {
		fprintf(stderr, "fedctl: sending to fetchd: %s\n", strerror(errno));
		close(fd);
		buf_free(&b);
		return 1;
	}
	buf_free(&b);
	struct frame f;
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		const char *why = "timeout";
		int rr = poll(&pf, 1, (int)wait_ms);
		if (rr <= 0 || (rr = frame_read_fd(fd, 64u << 20, &f, &why)) <= 0) {
			fprintf(stderr, "fedctl: no answer from fetchd: %s\n", rr == 0 ? "closed/timeout" : why);
			close(fd);
			return 1;
		}
		if (f.id == id && f.type == FT_FETCH_RESULT) break;
		frame_free(&f);
	}
	close(fd);
	struct fetch_result res;
	if (fetchres_parse(&f, &res) < 0) {
		fprintf(stderr, "fedctl: malformed answer from fetchd\n");
		frame_free(&f);
		return 1;
	}
	int rc = 0;
	if (fc->json) {
		const char *meta, *body; size_t ml, bl;
		frame_split_meta(&f, &meta, &ml, &body, &bl);
		fwrite(meta, 1, ml, stderr);
		fputc('\n', stderr);
	}
	if (res.ok) {
		fwrite(res.body, 1, res.body_len, stdout);
		fflush(stdout);
		fprintf(stderr, "%s\n", res.server);
	} else {
		fprintf(stderr, "fetch failed: %s", res.error);
		for (size_t i = 0; i < res.ntried; i++)
			fprintf(stderr, "%s%s (%s)", i ? ", " : "; tried ", res.tried[i],
			        i < res.nwhy ? res.why[i] : "?");
		fprintf(stderr, "\n");
		rc = 1;
	}
	fetchres_free(&res);
	frame_free(&f);
	return rc;
}

static int cmd_servers(struct fedctl *fc, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "wake")) {
		if (argc != 3) { fprintf(stderr, "usage: fedctl servers wake NAME\n"); return 100; }
		struct store *st = fedctl_store(fc, 0);
		MDB_txn *t = store_begin(st, 0);
		int rc = store_health_del(t, st, argv[2]);
		if (rc && rc != MDB_NOTFOUND) {
			mdb_txn_abort(t);
			if (fedctl_write_failed(fc, rc, "clearing the backoff")) return cmd_servers(fc, argc, argv);
			return 1;
		}
		int crc = store_commit(t);
		if (crc) {
			if (fedctl_write_failed(fc, crc, "clearing the backoff")) return cmd_servers(fc, argc, argv);
			return 1;
		}
		printf(rc == MDB_NOTFOUND ? "%s: not backed off\n" : "%s: backoff cleared\n", argv[2]);
		return 0;
	}
	if (argc > 1) { fprintf(stderr, "usage: fedctl servers [wake NAME]\n"); return 100; }
	struct store *st = fedctl_store(fc, 1);
	MDB_txn *t = store_begin(st, 1);
	struct store_iter it;
	struct buf b;
	long long now = now_ms();
	int n = 0;
	if (store_iter_open(&it, t, st, DB_SERVER_HEALTH, NULL, 0)) { mdb_txn_abort(t); return 1; }
	buf_init(&b);
	if (fc->json) printf("[");
	else printf("%-32s %6s %10s %8s %-10s %s\n", "SERVER", "STREAK", "BACKOFF_S", "LAT_MS", "STATE", "LAST_ERROR");
	while (store_iter_next(&it) == 1) {
		const char *name;
		size_t nl;
		struct health_rec h;
		if (store_health_row(&it.k, &it.v, &name, &nl, &h) < 0) continue;
		const char *state = h.until_ms > now ? "backed-off" : h.streak > 0 ? "deprioritized" : "ok";
		long long backoff_s = h.until_ms > now ? (h.until_ms - now + 999) / 1000 : 0;
		if (fc->json) {
			buf_reset(&b);
			buf_printf(&b, "%s{\"server\":", n ? "," : "");
			json_put_string(&b, name, nl);
			buf_printf(&b, ",\"state\":\"%s\",\"backoff_s\":%lld,\"record\":", state, backoff_s);
			store_health_encode(&b, &h);
			buf_addc(&b, '}');
			fwrite(b.data, 1, b.len, stdout);
		} else {
			printf("%-32.*s %6lld %10lld %8lld %-10s %s\n", (int)nl, name,
			       h.streak, backoff_s, h.latency_ms, state, h.last_error);
		}
		n++;
	}
	if (fc->json) printf("]\n");
	store_iter_close(&it);
	mdb_txn_abort(t);
	buf_free(&b);
	return 0;
}

FEDCTL_COMMAND(fetch_cmd, "fetch", FETCH_USAGE,
               "fetch raw federation bytes through fetchd (body: stdout, server: stderr)", cmd_fetch)
FEDCTL_COMMAND(servers_cmd, "servers", "servers [wake NAME]",
               "per-server backoff kept by fetchd; wake clears one", cmd_servers)
