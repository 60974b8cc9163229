/* feed_apply.c: the applier pattern (see feed_apply.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "feed/feed_apply.h"
#include "store/store.h"
#include "core/buf.h"
#include "core/log.h"

void feed_apply_init(struct feed_apply *a)
{
	a->applied = a->skipped = a->refused = a->commits = 0;
	const char *crash = getenv("FP_TEST_CRASH_BEFORE_ACK");
	a->crash_at = crash ? atol(crash) : 0;
}

/* One txn over items[0..n): 0, or the LMDB error (txn gone). */
static int apply_txn(struct feed_apply *a, struct feed_item *it, size_t n, uint64_t *cursor,
                     long long *applied, long long *skipped, long long *refused)
{
	struct feed_apply_target *tg = &a->tg;
	MDB_txn *t = tg->begin(tg->arg);
	if (!t) return MDB_PANIC;
	struct buf key;
	buf_init(&key);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		buf_reset(&key);
		buf_adds(&key, a->consumer);
		buf_addc(&key, 0);
		buf_adds(&key, it[i].event_id);
		MDB_val ak = { key.len, key.data }, av;
		if (it[i].cv > *cursor) *cursor = it[i].cv;
		rc = mdb_get(t, tg->applied, &ak, &av);
		if (rc == 0) { (*skipped)++; continue; }
		if (rc != MDB_NOTFOUND) break;
		char err[300] = "";
		rc = tg->apply(tg->arg, t, &it[i], err, sizeof err);
		if (rc == FEED_APPLY_PRESENT) { rc = 0; (*skipped)++; continue; }
		if (rc == FEED_APPLY_REFUSED) {
			rc = 0;
			(*refused)++;
			log_err("feed apply (%s): event %s (control version %llu) refused, acked and not applied: %s",
			        a->consumer, it[i].event_id, (unsigned long long)it[i].cv, err);
			continue;
		}
		if (rc) break;
		unsigned char ms[8];
		be64_put(ms, (uint64_t)now_ms());
		MDB_val mv = { 8, ms };
		if ((rc = mdb_put(t, tg->applied, &ak, &mv, 0))) break;
		(*applied)++;
	}
	buf_free(&key);
	if (!rc && tg->cursor_put) rc = tg->cursor_put(tg->arg, t, *cursor);
	if (rc) { mdb_txn_abort(t); return rc; }
	return tg->commit(tg->arg, t);        /* frees t, also on failure */
}

int feed_apply_step(struct feed_apply *a, size_t max, long long wait_ms, char *err, size_t errlen)
{
	struct feed_item *it = NULL;
	size_t n = 0;
	if (feed_source_poll(a->src, a->cursor, max, wait_ms, &it, &n, err, errlen) < 0) return -1;
	if (n == 0) { feed_items_free(it, 0); return 0; }
	if (a->verbose)
		log_info("feed apply (%s): polled %zu (first cv %llu %s)", a->consumer, n,
		         (unsigned long long)it[0].cv, it[0].event_id);
	uint64_t cursor;
	long long ap, sk, rf;
	int rc;
	do {
		cursor = a->cursor;
		ap = sk = rf = 0;
		rc = apply_txn(a, it, n, &cursor, &ap, &sk, &rf);
	} while (rc && a->tg.write_failed && a->tg.write_failed(a->tg.arg, rc));
	if (rc) {
		snprintf(err, errlen, "feed apply (%s): store write failed (%s); nothing acked", a->consumer,
		         mdb_strerror(rc));
		feed_items_free(it, n);
		return -2;
	}
	a->cursor = cursor;
	a->applied += ap;
	a->skipped += sk;
	a->refused += rf;
	if (a->crash_at && ++a->commits >= a->crash_at) {
		fprintf(stderr, "feed apply: FP_TEST_CRASH_BEFORE_ACK: exiting after commit, before ack\n");
		_exit(3);
	}
	for (size_t i = 0; i < n; i++) {
		char aerr[512];
		if (feed_source_ack(a->src, it[i].event_id, aerr, sizeof aerr) < 0)
			log_warnx("%s", aerr);
	}
	feed_items_free(it, n);
	return (int)n;
}
