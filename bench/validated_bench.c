/* validated_bench.c: deep-validation throughput of common/matrix/validate.c beside
 * the raw crypto_sign_verify_detached rate on the same signed bytes, with 2
 * threads, and on a stream where every event arrives 3 times. Writes the
 * events (JSON lines) and key document to DIR for the signedjson baseline.
 * Usage: validated_bench DIR [N_EVENTS] [SECONDS_PER_ROW]
 * Prints "name rate" lines (events/s). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "matrix/validate.h"

static struct signing_key key;
static const char *SERVER = "bench.test";
static char **ev; static size_t *evlen; static int nev;
static double secs = 1.5;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int lookup(void *arg, const char *server, const char *key_id, unsigned char pk[32],
                  int64_t *until)
{
	(void)arg;
	if (strcmp(server, SERVER) || strcmp(key_id, key.key_id))
		return -1;
	memcpy(pk, key.pk, 32);
	*until = INT64_MAX;
	return 0;
}

struct run { int repeat; int want_pdu; size_t seen; unsigned checks; double rate; long n, bad; };

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, dcmp);
	return v[n / 2];
}

static void *deep(void *arg)
{
	struct run *r = arg;
	struct validator v;
	struct val_result res;
	struct val_opts o = {0};
	o.room_version = 10;
	o.checks = r->checks;
	o.want_pdu = r->want_pdu;
	o.key = lookup;
	validator_init(&v, r->seen);
	val_result_init(&res);
	double t0 = now(), t;
	long n = 0;
	do {
		for (int i = 0; i < nev; i++)
			for (int k = 0; k < r->repeat; k++) {
				if (!validate_pdu(&v, &o, ev[i], evlen[i], &res) || res.redacted)
					r->bad++;
				n++;
			}
	} while ((t = now()) - t0 < secs);
	r->n = n;
	r->rate = n / (t - t0);
	validator_free(&v);
	val_result_free(&res);
	return NULL;
}

static double threads(int nt, struct run proto)
{
	pthread_t th[8];
	struct run r[8];
	double sum = 0;
	for (int i = 0; i < nt; i++) {
		r[i] = proto;
		pthread_create(&th[i], NULL, deep, &r[i]);
	}
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		sum += r[i].rate;
		if (r[i].bad) fprintf(stderr, "validated_bench: %ld unexpected verdicts\n", r[i].bad);
	}
	return sum;
}

struct rawarg { unsigned char (*sig)[64]; struct buf *msg; double rate; };
static void *raw_thread(void *arg)
{
	struct rawarg *a = arg;
	double t0 = now(), t;
	long n = 0;
	do {
		for (int i = 0; i < nev; i++, n++)
			if (crypto_sign_verify_detached(a->sig[i], (unsigned char *)a->msg[i].data, a->msg[i].len, key.pk) != 0)
				abort();
	} while ((t = now()) - t0 < secs);
	a->rate = n / (t - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: validated_bench DIR [N] [SECONDS]\n");
		return 100;
	}
	nev = argc > 2 ? atoi(argv[2]) : 2000;
	if (argc > 3) secs = atof(argv[3]);
	if (sodium_init() < 0 || signing_key_generate(&key, "b1") < 0)
		return 111;
	ev = calloc((size_t)nev, sizeof *ev);
	evlen = calloc((size_t)nev, sizeof *evlen);
	unsigned char (*sig)[64] = calloc((size_t)nev, 64);
	struct buf *msg = calloc((size_t)nev, sizeof *msg);
	char path[1024];
	snprintf(path, sizeof path, "%s/events.jsonl", argv[1]);
	FILE *f = fopen(path, "w");
	if (!f) { perror(path); return 111; }
	struct buf out, in;
	buf_init(&out);
	buf_init(&in);
	size_t total = 0;
	for (int i = 0; i < nev; i++) {
		char pad[700];
		memset(pad, 'a' + i % 26, sizeof pad - 1);
		pad[sizeof pad - 1] = 0;
		buf_reset(&in);
		buf_printf(&in, "{\"room_id\":\"!room%d:%s\",\"sender\":\"@user%d:%s\",\"type\":\"m.room.message\","
		           "\"content\":{\"body\":\"%d %s\",\"msgtype\":\"m.text\"},\"origin_server_ts\":%lld,"
		           "\"depth\":%d,\"origin\":\"%s\",\"prev_events\":[\"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%c\"],"
		           "\"auth_events\":[\"$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB%c\",\"$CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC%c\"],"
		           "\"unsigned\":{\"age_ts\":%d}}",
		           i % 7, SERVER, i % 13, SERVER, i, pad, 1700000000000LL + i, i + 1, SERVER,
		           'A' + i % 26, 'A' + i % 26, 'A' + i % 26, i);
		char eid[PDU_EVENT_ID_MAX];
		buf_reset(&out);
		if (pdu_sign(in.data, in.len, 10, SERVER, key.key_id, key.sk, &out, eid) < 0) {
			fprintf(stderr, "pdu_sign failed\n");
			return 111;
		}
		ev[i] = strdup(out.data);
		evlen[i] = out.len;
		total += out.len;
		fprintf(f, "%s\n", out.data);
		/* the bytes the signature covers, for the raw-verify baseline */
		struct json_doc d = {0};
		json_parse(&d, ev[i], evlen[i], 64);
		buf_init(&msg[i]);
		pdu_redact(&d, 0, 10, 1, &msg[i]);
		crypto_sign_detached(sig[i], NULL, (unsigned char *)msg[i].data, msg[i].len, key.sk);
		json_doc_free(&d);
	}
	fclose(f);
	snprintf(path, sizeof path, "%s/keys.json", argv[1]);
	f = fopen(path, "w");
	buf_reset(&out);
	signing_key_doc(&key, SERVER, 0, 4102444800000LL, &out);
	fprintf(f, "[%s]\n", out.data);
	fclose(f);
	printf("event_bytes %zu\n", total / (size_t)nev);

	/* BENCH_PROFILE=nosig|deep: run only that loop, for perf/callgrind */
	const char *prof = getenv("BENCH_PROFILE");
	if (prof) {
		struct run r = { .repeat = 1, .checks = strcmp(prof, "nosig") ? VAL_CHECK_ALL
		                                          : VAL_CHECK_EVENT_ID | VAL_CHECK_HASHES };
		printf("%s %.0f\n", prof, threads(1, r));
		return 0;
	}
	/* Single-core rows are measured in interleaved rounds (raw, deep,
	 * deep without the signature check, ...) and the median of each is
	 * printed, so a frequency or load change on a noisy machine hits all
	 * of them alike instead of whichever row happened to run then. */
	enum { ROUNDS = 5 };
	double raw[ROUNDS], dp[ROUNDS], nosig[ROUNDS], pdu1[ROUNDS];
	double total_secs = secs;
	secs = total_secs / ROUNDS;
	struct rawarg ra1 = { sig, msg, 0 };
	for (int k = 0; k < ROUNDS; k++) {
		raw_thread(&ra1);
		raw[k] = ra1.rate;
		struct run r = { .repeat = 1, .want_pdu = 0, .seen = 0, .checks = VAL_CHECK_ALL };
		dp[k] = threads(1, r);
		r.checks = VAL_CHECK_EVENT_ID | VAL_CHECK_HASHES;
		nosig[k] = threads(1, r);
		r.checks = VAL_CHECK_ALL;
		r.want_pdu = 1;
		pdu1[k] = threads(1, r);
		if (getenv("BENCH_VERBOSE"))
			fprintf(stderr, "round %d: raw %.0f deep %.0f nosig %.0f pdu %.0f\n", k, raw[k], dp[k], nosig[k], pdu1[k]);
	}
	printf("raw_verify %.0f\n", median(raw, ROUNDS));
	printf("deep_1 %.0f\n", median(dp, ROUNDS));
	printf("deep_pdu_1 %.0f\n", median(pdu1, ROUNDS));
	printf("nosig_1 %.0f\n", median(nosig, ROUNDS));
	secs = total_secs;

	/* raw verify on 2 threads: the scaling ceiling of this machine */
	{
		pthread_t th[2];
		struct rawarg ra[2];
		for (int k = 0; k < 2; k++) {
			ra[k].sig = sig; ra[k].msg = msg;
			pthread_create(&th[k], NULL, raw_thread, &ra[k]);
		}
		double sum = 0;
		for (int k = 0; k < 2; k++) { pthread_join(th[k], NULL); sum += ra[k].rate; }
		printf("raw_verify_2 %.0f\n", sum);
	}
	struct run r = { .repeat = 1, .want_pdu = 0, .seen = 0, .checks = VAL_CHECK_ALL };
	printf("deep_2 %.0f\n", threads(2, r));
	r.repeat = 3;
	r.seen = 65536;
	printf("dedup3_1 %.0f\n", threads(1, r));
	return 0;
}
