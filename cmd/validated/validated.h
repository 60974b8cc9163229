/* validated.h: private header of validated (the two-tier PDU validator
 * stage). validated_keys.c: where verify keys come from; validated_jsonl.c:
 * the --jsonl filter; validated_daemon.c: daemon and --stdio modes. */
#ifndef VALIDATED_H
#define VALIDATED_H
#include <getopt.h>
#include <pthread.h>
#include "core/config.h"
#include "matrix/keys.h"
#include "store/store.h"
#include "store/server_keys.h"
#include "matrix/validate.h"

#define VALIDATED_USAGE_OPTS \
	"  --keys FILE          JSON array of /_matrix/key/v2/server documents (repeatable)\n" \
	"  --room-version N     room version when the room is unknown (10|11; default [node] room_version)\n" \
	"  --no-event-id        skip the event ID check\n" \
	"  --no-hashes          skip the content hash check\n" \
	"  --no-signatures      skip the signature check\n" \
	"  --raw-max SIZE       largest raw input (default [validated] raw_max, 1M)\n" \
	"  --workers N          --jsonl: validation threads (default [validated] workers)\n" \
	"  --jsonl [FILE...]    filter mode: PDUs (one per line on stdin, or one per FILE)\n" \
	"                       in, one verdict JSON object per line out; exit 0 ran\n" \
	"                       (even with rejects), 100 usage/config error, 111 I/O error\n"

/* Verify keys: --keys documents + this node's own key (keyring), then LMDB
 * server_keys. Lookups are thread-safe (the keyring is read-only once
 * loaded; each LMDB lookup is its own short read txn). */
struct vkeys {
	struct keyring kr;
	struct store  *st;          /* NULL: no LMDB */
	pthread_rwlock_t lock;      /* daemon adds fetched keys at run time */
};

/* Options shared by both modes, filled from config then flags. */
struct vopts {
	const char *keys_files[16]; int nkeys_files;
	int  room_version;          /* 0: from config */
	int  no_event_id, no_hashes, no_signatures;
	long long raw_max;          /* 0: from config */
	int  workers;               /* 0: from config */
};

void vkeys_init(struct vkeys *k, struct store *st);
void vkeys_free(struct vkeys *k);
/* Load every --keys file and [validated] keys, plus the node's own key when its
 * signing key file is readable. 0, or -1 with a message on stderr. */
int  vkeys_load(struct vkeys *k, const struct config *c, const struct vopts *vo);
/* At a reload: the node's own keys (current and rotated-out) that prev held
 * and next lacks (the key file became unreadable or bad) are kept in next,
 * with one warning: a bad file never drops a key the node signed with. */
void vkeys_keep_own(struct vkeys *next, const struct vkeys *prev, const struct config *c);
/* The val_key_fn: *valid_until_ts is the last origin_server_ts the key may
 * verify (a fetched key: min(valid_until_ts, fetched + 7 days)). */
int  vkeys_lookup(void *arg, const char *server, const char *key_id,
                  unsigned char pk[32], int64_t *valid_until_ts);
/* A keys_lookup_fn for notary signatures: current keys usable now. */
int  vkeys_notary_key(void *arg, const char *server, const char *key_id, unsigned char pk[32]);
/* 1 if server has a current key usable now (memory or LMDB). */
int  vkeys_usable(struct vkeys *k, const char *server);
/* After VR_EXPIRED_KEY: 0 if every key of server the event is signed with
 * is a known old key (past its expired_ts: a refetch cannot help), else 1. */
int  vkeys_refetch_helps(struct vkeys *k, const char *bytes, size_t n, const char *server);
/* Keep a fetched key in memory (where the store could not take it), bounded
 * by fetched_ms + 7 days like a stored one. */
void vkeys_keep(struct vkeys *k, const struct verify_key *v, int64_t fetched_ms);
/* The val_rv_fn over LMDB rooms (arg = struct store *). */
int  vstore_room_version(void *arg, const char *room_id);

/* Fill val_opts from config + flags. Returns 0, or -1 (bad value). */
int  vopts_apply(const struct config *c, const struct vopts *vo, struct val_opts *o);

/* Long options both modes accept (getopt codes >= 256). */
enum { OPT_KEYS = 256, OPT_RV, OPT_NO_EID, OPT_NO_HASH, OPT_NO_SIG, OPT_RAW_MAX,
       OPT_WORKERS, OPT_JSONL };
#define VALIDATED_LONGOPTS \
	{ "keys", required_argument, NULL, OPT_KEYS }, \
	{ "room-version", required_argument, NULL, OPT_RV }, \
	{ "no-event-id", no_argument, NULL, OPT_NO_EID }, \
	{ "no-hashes", no_argument, NULL, OPT_NO_HASH }, \
	{ "no-signatures", no_argument, NULL, OPT_NO_SIG }, \
	{ "raw-max", required_argument, NULL, OPT_RAW_MAX }, \
	{ "workers", required_argument, NULL, OPT_WORKERS }
int  vopts_option(struct vopts *vo, int opt, const char *arg);

int  validated_jsonl(int argc, char **argv);
int  validated_daemon(int argc, char **argv);

#endif
