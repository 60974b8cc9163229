/* feed_raw.c: the baselines for bench/feed.sh, the same writes feedpump
 * makes without feedpump: `feed_raw file DIR N SIZE [BATCH]` (tmp file,
 * write, fsync, rename; directory fsync per BATCH, default 64) and `feed_raw nats URL SUBJECT
 * STREAM N SIZE` (libnats async JetStream publish, all acks awaited).
 * Prints events per second. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "feed/feed_nats.h"
#include "core/log.h"

static int raw_file(const char *dir, long n, size_t size, long batch)
{
	mkdir(dir, 0755);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0) { perror(dir); return 1; }
	char *body = malloc(size);
	memset(body, 'x', size);
	long long t0 = mono_ms();
	for (long i = 0; i < n; i++) {
		char tmp[64], name[64];
		snprintf(tmp, sizeof tmp, ".tmp.%ld", i);
		snprintf(name, sizeof name, "%020ld_$raw%ld.json", i + 1, i);
		int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, body, size) != (ssize_t)size || fsync(fd) < 0) { perror("write"); return 1; }
		close(fd);
		if (renameat(dfd, tmp, dfd, name) < 0) { perror("rename"); return 1; }
		if ((i + 1) % batch == 0 || i + 1 == n) fsync(dfd);
	}
	long long ms = mono_ms() - t0;
	printf("%.0f\n", n * 1000.0 / (ms ? ms : 1));
	return 0;
}

static int raw_nats(const char *url, const char *subject, const char *stream, long n, size_t size)
{
	struct feed_opts o = { .nats_url = url, .nats_subject = subject, .nats_stream = stream,
	                       .nats_timeout_ms = 5000, .nats_dup_window_ms = 120000 };
	struct feed_nats fn;
	char err[512];
	if (feed_nats_connect(&fn, &o, NULL, NULL, 1, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 1; }
	char *body = malloc(size);
	memset(body, 'x', size);
	long long t0 = mono_ms();
	for (long i = 0; i < n; i++) {
		natsMsg *m = NULL;
		char id[64];
		snprintf(id, sizeof id, "$raw%ld", i);
		natsMsg_Create(&m, subject, NULL, body, (int)size);
		natsMsgHeader_Set(m, "Nats-Msg-Id", id);
		if (js_PublishMsgAsync(fn.js, &m, NULL) != NATS_OK) { fprintf(stderr, "publish failed\n"); return 1; }
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 30000;
	if (js_PublishAsyncComplete(fn.js, &po) != NATS_OK) { fprintf(stderr, "acks incomplete\n"); return 1; }
	long long ms = mono_ms() - t0;
	printf("%.0f\n", n * 1000.0 / (ms ? ms : 1));
	feed_nats_close(&fn);
	return 0;
}

int main(int argc, char **argv)
{
	log_init("feed_raw", 0);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "file")) {
		long batch = argc == 6 ? atol(argv[5]) : 64;
		return raw_file(argv[2], atol(argv[3]), (size_t)atol(argv[4]), batch > 0 ? batch : 64);
	}
	if (argc == 7 && !strcmp(argv[1], "nats"))
		return raw_nats(argv[2], argv[3], argv[4], atol(argv[5]), (size_t)atol(argv[6]));
	fprintf(stderr, "usage: feed_raw file DIR N SIZE [BATCH] | feed_raw nats URL SUBJECT STREAM N SIZE\n");
	return 100;
}
