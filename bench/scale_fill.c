/* scale_fill.c: bench tool for `make bench-scale` (bench/scale/run.sh).
 * Fills one node's LMDB with real signed PDUs (room version 10, pdu_sign)
 * through purgatoryd's store path for an accepted event: purg_pdu_parse,
 * then purg_store_event (events, stream, rooms, room_extremities,
 * room_servers, outbox row), committed in batches. The events are spread
 * over ROOMS rooms, each a chain (m.room.create, then messages citing the
 * room's previous event and its create event), round robin.
 * It stops at each checkpoint of --at (ascending totals), prints one line of
 * figures, runs --hook (sh -c, with SCALE_N set; the store is idle while it
 * runs), and continues. Before each next checkpoint it checks the free disk
 * against the bytes per event so far and stops with a clear line if the
 * next size would not fit.
 * Timed ("store") = parse + purg_store_event + commit, per batch; signing
 * the events (the generator) is timed apart and is not in the store rate.
 * usage: scale_fill -c CONFIG --at N1[,N2...] [--rooms R] [--batch B]
 *        [--body BYTES] [--ids FILE] [--hook CMD] [--reserve-gb G]
 * Checkpoint line (one per --at):
 *   at N seg_events E seg_store_s S seg_rate R last_events W last_rate R2
 *   last_cpu_us C gen_s G gen_us U rss_kb K anon_kb A file_kb F hwm_kb H
 *   db_bytes D
 * (last_*: the last min(100000, segment) events; last_cpu_us: this
 * process's CPU time in the store path per event, which a loaded machine
 * distorts less than the rate; gen_us: wall time per event spent signing,
 * pure CPU work that does not depend on the store: a yardstick of how
 * loaded the machine was during the segment.) */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "store/purgatory.h"

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)   /* this process's CPU time (utime + stime) */
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) return -1;
	char line[256];
	long v = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':') { v = atol(line + fl + 1); break; }
	fclose(f);
	return v;
}

struct room {
	char id[96];
	char create[PDU_EVENT_ID_MAX], prev[PDU_EVENT_ID_MAX];
	long depth;
};

int main(int argc, char **argv)
{
	const char *cfgpath = NULL, *at = NULL, *idsfile = NULL, *hook = NULL;
	long nrooms = 1000, batch = 200, body = 300;
	double reserve_gb = 3;
	static const struct option lo[] = {
		{ "at", 1, 0, 'a' }, { "rooms", 1, 0, 'r' }, { "batch", 1, 0, 'b' }, { "body", 1, 0, 's' },
		{ "ids", 1, 0, 'o' }, { "hook", 1, 0, 'h' }, { "reserve-gb", 1, 0, 'g' }, { 0, 0, 0, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
		switch (o) {
		case 'c': cfgpath = optarg; break;
		case 'a': at = optarg; break;
		case 'r': nrooms = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 's': body = atol(optarg); break;
		case 'o': idsfile = optarg; break;
		case 'h': hook = optarg; break;
		case 'g': reserve_gb = atof(optarg); break;
		default:
			fprintf(stderr, "usage: scale_fill -c CONFIG --at N1[,N2...] [--rooms R] [--batch B] [--body BYTES] [--ids FILE] [--hook CMD] [--reserve-gb G]\n");
			return 100;
		}
	}
	if (!cfgpath || !at || nrooms < 1 || batch < 1 || body < 0) {
		fprintf(stderr, "scale_fill: -c CONFIG and --at are required (rooms, batch >= 1)\n");
		return 100;
	}
	long targets[16];
	int ntargets = 0;
	for (const char *p = at; *p && ntargets < 16;) {
		targets[ntargets++] = atol(p);
		p = strchr(p, ',');
		if (!p) break;
		p++;
	}
	log_init("scale_fill", 0);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) return 111;
	struct config cfg;
	char err[512];
	if (config_load(&cfg, cfgpath, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 100; }
	const char *server = cfg_str(&cfg, "node", "server_name");
	const char *dir = cfg_str(&cfg, "node", "state_dir");
	struct signing_key key;
	if (signing_key_load(&key, cfg_str(&cfg, "node", "signing_key"), err, sizeof err) < 0) {
		fprintf(stderr, "scale_fill: %s\n", err);
		return 100;
	}
	struct store st;
	if (store_open(&st, dir, (size_t)cfg_size(&cfg, "node", "map_size"), 0, err, sizeof err) < 0) {
		fprintf(stderr, "scale_fill: %s\n", err);
		return 111;
	}
	st.map_max = (size_t)cfg_size(&cfg, "node", "map_size_max");
	FILE *idf = idsfile ? fopen(idsfile, "a") : NULL;
	if (idsfile && !idf) { perror(idsfile); return 111; }
	char dbpath[600];
	snprintf(dbpath, sizeof dbpath, "%s/data.mdb", dir);

	struct room *rooms = xcalloc((size_t)nrooms, sizeof *rooms);
	unsigned char rnd[4];
	randombytes_buf(rnd, sizeof rnd);
	for (long r = 0; r < nrooms; r++)
		snprintf(rooms[r].id, sizeof rooms[r].id, "!s%02x%02x%02x%02x_%ld:%s", rnd[0], rnd[1], rnd[2], rnd[3], r, server);
	char sender[300];
	snprintf(sender, sizeof sender, "@bench:%s", server);
	char *text = xmalloc((size_t)body + 1);
	for (long i = 0; i < body; i++) text[i] = (char)('a' + i % 26);
	text[body] = 0;

	struct buf ev, *out = xcalloc((size_t)batch, sizeof *out);
	buf_init(&ev);
	for (long i = 0; i < batch; i++) buf_init(&out[i]);
	char (*ids)[PDU_EVENT_ID_MAX] = xcalloc((size_t)batch, sizeof *ids);
	struct json_doc d = {0};
	static struct pdu_info pi;
	long n = 0, nextroom = 0;
	long long ts = now_ms();

	for (int ti = 0; ti < ntargets; ti++) {
		long target = targets[ti];
		if (target <= n) continue;
		if (n > 0) {   /* will the next size fit on the disk? */
			struct stat sb;
			struct statvfs vf;
			if (stat(dbpath, &sb) == 0 && statvfs(dir, &vf) == 0) {
				double bpe = (double)sb.st_blocks * 512.0 / (double)n;
				double need = bpe * (double)(target - n) * 1.25;
				double avail = (double)vf.f_bavail * (double)vf.f_frsize - reserve_gb * 1e9;
				if (need > avail) {
					printf("skip %ld: needs ~%.1f GB more (%.0f B/event so far, +25%%), %.1f GB free above a %.0f GB reserve\n",
					       target, need / 1e9, bpe, avail / 1e9, reserve_gb);
					fflush(stdout);
					break;
				}
			}
		}
		long seg0 = n, win = (target - seg0) < 100000 ? (target - seg0) : 100000;
		double seg_s = 0, win_s = 0, gen_s = 0, win_cpu = 0;
		long win_ev = 0;
		while (n < target) {
			long k = target - n < batch ? target - n : batch;
			double g0 = mono();
			for (long j = 0; j < k; j++) {
				struct room *r = &rooms[nextroom];
				nextroom = (nextroom + 1) % nrooms;
				buf_reset(&ev);
				buf_reset(&out[j]);
				if (!r->depth) {
					buf_printf(&ev, "{\"auth_events\":[],\"content\":{\"creator\":\"%s\",\"room_version\":\"10\"},"
					           "\"depth\":1,\"origin_server_ts\":%lld,\"prev_events\":[],\"room_id\":\"%s\","
					           "\"sender\":\"%s\",\"state_key\":\"\",\"type\":\"m.room.create\"}",
					           sender, ts + n, r->id, sender);
				} else {
					buf_printf(&ev, "{\"auth_events\":[\"%s\"],\"content\":{\"body\":\"%ld %s\",\"msgtype\":\"m.text\"},"
					           "\"depth\":%ld,\"origin_server_ts\":%lld,\"prev_events\":[\"%s\"],\"room_id\":\"%s\","
					           "\"sender\":\"%s\",\"type\":\"m.room.message\"}",
					           r->create, n, text, r->depth + 1, ts + n, r->prev, r->id, sender);
				}
				if (pdu_sign(ev.data, ev.len, 10, server, key.key_id, key.sk, &out[j], ids[j]) < 0)
					fatalx("pdu_sign failed");
				if (!r->depth) strcpy(r->create, ids[j]);
				strcpy(r->prev, ids[j]);
				r->depth++;
			}
			double t0 = mono(), c0 = cpu();
			gen_s += t0 - g0;
			for (;;) {   /* the timed store path; redo the whole txn if the map grew */
				MDB_txn *t = store_begin(&st, 0);
				int rc = 0;
				for (long j = 0; j < k && !rc; j++) {
					if (purg_pdu_parse(&d, out[j].data, out[j].len, &pi, err, sizeof err) < 0)
						fatalx("parse: %s", err);
					memcpy(pi.event_id, ids[j], sizeof pi.event_id);
					uint64_t pos = 0;
					rc = purg_store_event(t, &st, &pi, 10, 0, out[j].data, out[j].len, now_ms(), &pos);
					if (rc == 1) fatalx("event %s already stored", ids[j]);
				}
				if (rc) mdb_txn_abort(t);
				else rc = store_commit(t);
				if (!rc) break;
				if (store_write_failed(&st, rc) != 1) fatalx("store: %s", mdb_strerror(rc));
			}
			double t1 = mono(), c1 = cpu();
			seg_s += t1 - t0;
			if (n + k > target - win) { win_s += t1 - t0; win_cpu += c1 - c0; win_ev += k; }
			if (idf) for (long j = 0; j < k; j++) fprintf(idf, "%s\n", ids[j]);
			n += k;
		}
		if (idf) fflush(idf);
		struct stat sb;
		long long dbb = stat(dbpath, &sb) == 0 ? (long long)sb.st_size : -1;
		printf("at %ld seg_events %ld seg_store_s %.3f seg_rate %.0f last_events %ld last_rate %.0f last_cpu_us %.1f gen_s %.1f gen_us %.1f "
		       "rss_kb %ld anon_kb %ld file_kb %ld hwm_kb %ld db_bytes %lld\n",
		       n, n - seg0, seg_s, seg_s > 0 ? (double)(n - seg0) / seg_s : 0, win_ev,
		       win_s > 0 ? (double)win_ev / win_s : 0, win_ev ? win_cpu * 1e6 / (double)win_ev : 0, gen_s,
		       n > seg0 ? gen_s * 1e6 / (double)(n - seg0) : 0, status_kb("VmRSS"), status_kb("RssAnon"),
		       status_kb("RssFile"), status_kb("VmHWM"), dbb);
		fflush(stdout);
		if (hook) {
			char nb[32];
			snprintf(nb, sizeof nb, "%ld", n);
			setenv("SCALE_N", nb, 1);
			int rc = system(hook);
			if (rc != 0) { fprintf(stderr, "scale_fill: hook failed (%d)\n", rc); break; }
		}
	}
	if (idf) fclose(idf);
	json_doc_free(&d);
	for (long i = 0; i < batch; i++) buf_free(&out[i]);
	buf_free(&ev);
	free(out);
	free(ids);
	free(rooms);
	free(text);
	store_close(&st);
	return 0;
}
