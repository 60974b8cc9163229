/* resolution.h: the server_resolution table, the cache of server name
 * resolutions (core/resolve.h) every stage and restart shares (only this
 * module knows its bytes). Writers: fetchd (each finished resolution),
 * fedctl resolve (the same). A row past its expires_ms is still returned:
 * the caller decides (a stale row's well-known entry is reused while it
 * lasts: pass it to resolve_start as prev).
 *   server_resolution  key server name
 *                      val JSON {"error","expires_ms","name","resolved_ms",
 *                           "steps":[{"answer","cached","expires_ms","query","what"}],
 *                           "targets":[{"addrs":[..],"connect_host","host","port","tls_name"}],
 *                           "v":1,"wk","wk_error","wk_expires_ms","wk_server"}
 * (members in that order; an absent or mistyped member reads as 0 / "";
 * a row whose name differs from its key, or not an object, is corrupt). */
#ifndef FP_STORE_RESOLUTION_H
#define FP_STORE_RESOLUTION_H
#include <stddef.h>
#include "core/buf.h"
#include "core/resolve.h"
#include "store/store.h"

void store_resolution_encode(struct buf *out, const struct resolution *r);
/* 0, or -1 if the bytes are not a resolution record (r is then zeroed). */
int  store_resolution_decode(const void *v, size_t n, struct resolution *r);
/* 0 (r set), MDB_NOTFOUND (r zeroed), MDB_CORRUPTED (r zeroed) or an LMDB error. */
int  store_resolution_get(MDB_txn *t, struct store *s, const char *name, struct resolution *r);
/* Keyed by r->name. 0 or an LMDB error. */
int  store_resolution_put(MDB_txn *t, struct store *s, const struct resolution *r);
/* 0, MDB_NOTFOUND or an LMDB error. */
int  store_resolution_del(MDB_txn *t, struct store *s, const char *name);

#endif
