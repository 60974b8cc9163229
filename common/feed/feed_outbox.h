/* feed_outbox.h: the outbox row (store.h layout) and the drain cursor, shared
 * by feedpump, fedctl feed and the test tools.
 * A row is "published" when control_version > 0. Published rows are kept
 * (they are the record of which control version each event got, for
 * `fedctl feed` and audits); the cursor "feed_cursor" in the leases table
 * (u64 big-endian) = the first position that may still be unpublished, so a
 * drain never rescans what is done. fedctl feed retry moves the cursor back. */
#ifndef FP_FEED_OUTBOX_H
#define FP_FEED_OUTBOX_H
#include <stdint.h>
#include "core/buf.h"
#include "feed/feed_sink.h"
#include "store/store.h"

struct outbox_row {
	char     event_id[256];
	int64_t  attempts;
	char     last_error[FEED_ERR_MAX + 1];
	uint64_t control_version;     /* 0 = not published */
	int64_t  published_ms;        /* 0 = not published */
};

#define FEED_CURSOR_KEY "feed_cursor"
#define FEED_LEASE_KEY  "feedpump"

/* Parse a row (null/absent members = unset). 0 or -1 if malformed. */
int  outbox_row_parse(const void *p, size_t n, struct outbox_row *r);
/* Canonical JSON: {"attempts","control_version","event_id","last_error","published_ms"} */
void outbox_row_encode(struct buf *out, const struct outbox_row *r);
/* Cursor in DB_LEASES; 0 if never set. */
uint64_t feed_cursor_get(MDB_txn *t, struct store *s);
int  feed_cursor_put(MDB_txn *t, struct store *s, uint64_t pos);

#endif
