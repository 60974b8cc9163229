/* inbox.h: events received and not yet decided (only this module knows
 * the inbox's bytes). put: syncd, purgatoryd (fetched bytes), fedctl send,
 * served (recovered); del: purgatoryd, in the txn that decides the event.
 *   inbox  key u64 seq (meta "inbox_next")
 *          val u64 received_ms | u16 from length | from | raw bytes (rest) */
#ifndef FP_STORE_INBOX_H
#define FP_STORE_INBOX_H
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

struct inbox_rec { uint64_t received_ms; const char *from; size_t from_len;
                   const char *bytes; size_t len; };   /* point into the txn's map */

/* Append (from cut at 65535 bytes); *seq_out = its seq. 0 or the LMDB error. */
int  store_inbox_put(MDB_txn *t, struct store *s, const char *from, const void *bytes,
                     size_t n, uint64_t *seq_out);
/* 0, MDB_NOTFOUND, MDB_CORRUPTED, or another LMDB error. */
int  store_inbox_get(MDB_txn *t, struct store *s, uint64_t seq, struct inbox_rec *r);
/* An inbox value: 0, or MDB_CORRUPTED if the bytes do not fit the layout. */
int  store_inbox_parse(const MDB_val *v, struct inbox_rec *r);
/* A whole row as a walk over DB_INBOX sees it: 0 (seq and r set), or
 * MDB_CORRUPTED (a key not 8 bytes, or a value that does not fit). */
int  store_inbox_row(const MDB_val *k, const MDB_val *v, uint64_t *seq, struct inbox_rec *r);

#endif
