/* health.h: the per-server backoff fetchd keeps (only this module knows
 * its bytes). Writers: fetchd (every outcome), fedctl servers wake (deletes
 * a row), syncd (deletes a peer's row when the peer answers).
 *   server_health  key server name
 *                  val JSON {"last_error","last_ok_ms","latency_ms","streak","until_ms"}
 * (members in that order; an absent or mistyped member reads as 0 / ""). */
#ifndef FP_STORE_HEALTH_H
#define FP_STORE_HEALTH_H
#include <stddef.h>
#include "core/buf.h"
#include "store/store.h"

struct health_rec {
	long long streak;         /* failures in a row */
	long long until_ms;       /* backed off until (wall ms), 0 = not */
	long long last_ok_ms;     /* last answer (wall ms), 0 = never */
	long long latency_ms;     /* smoothed answer time */
	char      last_error[128];
};

void store_health_encode(struct buf *out, const struct health_rec *h);
/* 0, or -1 if the bytes are not a JSON object (h is then all zero). */
int  store_health_decode(const void *v, size_t n, struct health_rec *h);
/* 0 (h set), MDB_NOTFOUND (h zeroed), MDB_CORRUPTED (h zeroed) or an LMDB error. */
int  store_health_get(MDB_txn *t, struct store *s, const char *server, struct health_rec *h);
int  store_health_put(MDB_txn *t, struct store *s, const char *server, const struct health_rec *h);
/* 0, MDB_NOTFOUND (no row: nothing to clear) or an LMDB error. */
int  store_health_del(MDB_txn *t, struct store *s, const char *server);
/* One row as a walk over DB_SERVER_HEALTH sees it: server and len give
 * the key (not NUL-terminated); 0, or -1 if the value is malformed (h zeroed). */
int  store_health_row(const MDB_val *k, const MDB_val *v, const char **server, size_t *len,
                      struct health_rec *h);

#endif
