/* fedctl_keys.c: the node's signing key and other servers' verify keys:
 * `fedctl keygen`, `fedctl sign`, `fedctl keys import|ls|doc`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include "fedctl.h"
#include "matrix/b64.h"
#include "matrix/json.h"
#include "matrix/keys.h"
#include "core/log.h"
#include "store/server_keys.h"
#include "matrix/pdu.h"

static int read_all(const char *path, struct buf *b)
{
	FILE *f = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
	char tmp[65536];
	size_t n;
	if (!f) {
		fprintf(stderr, "fedctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(b, tmp, n);
	int err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (err) {
		fprintf(stderr, "fedctl: %s: read error\n", path ? path : "stdin");
		return -1;
	}
	return 0;
}

/* Did the import refuse a key of server (a conflict)? */
static int server_conflicted(const struct keyring *kr, const char *conflicted, const char *server)
{
	for (size_t i = 0; i < kr->n; i++)
		if (conflicted[i] && !strcmp(kr->k[i].server, server)) return 1;
	return 0;
}

/* The imported files' documents (verified by keyring_load_file) beside their
 * keys: served answers key queries with them, countersigned. A server with
 * a refused (conflicting) key gets no document. 0 or an LMDB error. */
static int import_docs(struct store *st, MDB_txn *t, char **files, int nfiles,
                       const struct keyring *kr, const char *conflicted)
{
	int rc = 0;
	for (int i = 0; i < nfiles && !rc; i++) {
		struct buf b;
		struct json_doc d = { 0 };
		buf_init(&b);
		if (read_all(files[i], &b) == 0 && b.data && json_parse(&d, b.data, b.len, JSON_MAX_DEPTH_DEFAULT) == 0) {
			int arr = d.tok[0].type == JSON_ARRAY;
			for (int e = arr ? json_first(&d, 0) : 0; e >= 0 && !rc; e = arr ? json_next_elem(&d, 0, e) : -1) {
				char server[256];
				int sn = d.tok[e].type == JSON_OBJECT ? json_obj_get(&d, e, "server_name") : -1;
				if (sn < 0 || d.tok[sn].type != JSON_STRING || json_str_copy(&d, sn, server, sizeof server) <= 0
				    || server_conflicted(kr, conflicted, server))
					continue;
				rc = store_key_doc_put_answer(t, st, server, b.data + d.tok[e].start,
				                              d.tok[e].end - d.tok[e].start);
			}
		}
		json_doc_free(&d);
		buf_free(&b);
	}
	return rc;
}

static int load_node_key(struct fedctl *fc, struct signing_key *k, const char *path)
{
	char err[256];
	if (!path)
		path = cfg_str(&fc->cfg, "node", "signing_key");
	if (signing_key_load(k, path, err, sizeof err) < 0) {
		fprintf(stderr, "fedctl: signing key %s: %s (run `fedctl keygen`)\n", path, err);
		return -1;
	}
	return 0;
}

/* fedctl keygen --rotate [--key-version V]: a new key; the old one to
 * <signing_key>.old with expired_ts = now (published in old_verify_keys). */
static int keygen_rotate(struct fedctl *fc, const char *out, const char *version)
{
	struct signing_key k;
	char err[512];
	int rc = signing_key_rotate(out, version, now_ms(), &k, err, sizeof err);
	if (rc == -1) {
		fprintf(stderr, "fedctl keygen --rotate: %s\n", err);
		return 1;
	}
	if (rc == -2)
		fprintf(stderr, "fedctl: warning: %s\n", err);
	char pk[64];
	b64_encode(pk, k.pk, 32);
	if (fc->json)
		printf("{\"key_id\":\"%s\",\"public_key\":\"%s\",\"rotated\":true}\n", k.key_id, pk);
	else
		printf("%s %s\n", k.key_id, pk);
	fprintf(stderr, "fedctl: the old key is in %s.old (old_verify_keys); send SIGHUP to served, "
	        "syncd, fetchd and validated (systemctl reload 'fedpipe-*', or kill -HUP the PIDs in "
	        "<run_dir>/fedsup/) to sign with %s: no restart needed\n", out, k.key_id);
	sodium_memzero(&k, sizeof k);
	return 0;
}

/* fedctl keygen [--force] [--rotate] [--out FILE] [--key-version V] */
static int cmd_keygen(struct fedctl *fc, int argc, char **argv)
{
	const char *out = NULL, *version = NULL;
	int force = 0, rotate = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force")) force = 1;
		else if (!strcmp(argv[i], "--rotate")) rotate = 1;
		else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
		else if (!strcmp(argv[i], "--key-version") && i + 1 < argc) version = argv[++i];
		else { fprintf(stderr, "usage: fedctl keygen [--force | --rotate] [--out FILE] [--key-version V]\n"); return 100; }
	}
	if (!out)
		out = cfg_str(&fc->cfg, "node", "signing_key");
	if (rotate && force) {
		fprintf(stderr, "fedctl keygen: --rotate keeps the old key as an old one; --force throws it away: not both\n");
		return 100;
	}
	if (rotate)
		return keygen_rotate(fc, out, version);
	if (!force && access(out, F_OK) == 0) {
		fprintf(stderr, "fedctl: %s exists; not overwritten (use --force, or --rotate)\n", out);
		return 1;
	}
	struct signing_key k;
	if (signing_key_generate(&k, version) < 0) {
		fprintf(stderr, "fedctl: bad key version\n");
		return 100;
	}
	/* --force: the old key is replaced by rename once the new one is on
	 * disk (signing_key_save), never removed first. */
	int saved = signing_key_save(&k, out);
	if (saved == -2)
		fprintf(stderr, "fedctl: warning: %s written, but its directory could not be synced: %s\n", out,
		        strerror(errno));
	else if (saved < 0) {
		int e = errno;
		sodium_memzero(&k, sizeof k);
		if (e == EEXIST || e == ELOOP)
			fprintf(stderr, "fedctl: cannot write %s: %s.tmp already exists (another keygen running, or "
			        "left by a crash: check and remove it); the old key is untouched\n", out, out);
		else
			fprintf(stderr, "fedctl: cannot write %s: %s; the old key (if any) is untouched\n", out, strerror(e));
		return 1;
	}
	char pk[64];
	b64_encode(pk, k.pk, 32);
	if (fc->json)
		printf("{\"key_id\":\"%s\",\"public_key\":\"%s\",\"file\":", k.key_id, pk);
	else
		printf("%s %s\n", k.key_id, pk);
	if (fc->json) {
		struct buf b; buf_init(&b);
		json_put_string(&b, out, strlen(out));
		printf("%s}\n", b.data);
		buf_free(&b);
	}
	sodium_memzero(&k, sizeof k);
	return 0;
}

/* Sign one unsigned event; prints the PDU (or {"event_id","pdu"} with --json). */
static int sign_one(struct fedctl *fc, const char *json, size_t n, int rv, const char *server,
                    const struct signing_key *k, struct buf *out)
{
	char eid[PDU_EVENT_ID_MAX];
	buf_reset(out);
	if (pdu_sign(json, n, rv, server, k->key_id, k->sk, out, eid) < 0) {
		fprintf(stderr, "fedctl sign: not a valid event object (strict JSON, content an object)\n");
		return -1;
	}
	if (fc->json) {
		printf("{\"event_id\":\"%s\",\"pdu\":%s}\n", eid, out->data);
	} else {
		printf("%s\n", out->data);
		fprintf(stderr, "%s\n", eid);
	}
	return 0;
}

/* fedctl sign [--room-version N] [--server NAME] [--key FILE] [FILE|-] */
static int cmd_sign(struct fedctl *fc, int argc, char **argv)
{
	const char *path = NULL, *server = NULL, *keyfile = NULL;
	int rv = (int)cfg_int(&fc->cfg, "node", "room_version");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--room-version") && i + 1 < argc) rv = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--server") && i + 1 < argc) server = argv[++i];
		else if (!strcmp(argv[i], "--key") && i + 1 < argc) keyfile = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "usage: fedctl sign [--room-version 10|11] [--server NAME] [--key FILE] [FILE|-]\n");
			return 100;
		} else path = argv[i];
	}
	if (rv != 10 && rv != 11) {
		fprintf(stderr, "fedctl sign: room version must be 10 or 11\n");
		return 100;
	}
	if (!server)
		server = cfg_str(&fc->cfg, "node", "server_name");
	struct signing_key k;
	if (load_node_key(fc, &k, keyfile) < 0)
		return 1;
	if (sodium_init() < 0)
		return 1;
	struct buf in, out;
	buf_init(&in);
	buf_init(&out);
	int rc = 0;
	if (read_all(path, &in) < 0) {
		rc = 1;
		goto done;
	}
	/* One JSON document, or JSON lines (one event per line). */
	struct json_doc d = {0};
	int whole = json_parse(&d, in.data, in.len, 64) == 0;
	json_doc_free(&d);
	if (whole) {
		rc = sign_one(fc, in.data, in.len, rv, server, &k, &out) < 0;
	} else {
		char *p = in.data, *end = in.data + in.len;
		while (p < end) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			size_t j = 0;
			while (j < len && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r')) j++;
			if (j < len && sign_one(fc, p, len, rv, server, &k, &out) < 0)
				rc = 1;
			p += len + 1;
		}
	}
done:
	sodium_memzero(&k, sizeof k);
	buf_free(&in);
	buf_free(&out);
	return rc;
}

/* fedctl keys import FILE... | keys ls | keys doc [--valid-for DURATION] */
static int cmd_keys(struct fedctl *fc, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fedctl keys import FILE... | keys ls | keys doc [--valid-for 7d]\n");
		return 100;
	}
	if (!strcmp(argv[1], "doc")) {
		struct signing_key k;
		long long valid = 7LL * 24 * 3600 * 1000;
		if (argc > 3 && !strcmp(argv[2], "--valid-for")) valid = cfg_parse_ms(argv[3]);
		if (valid < 0) { fprintf(stderr, "fedctl keys doc: bad duration\n"); return 100; }
		if (load_node_key(fc, &k, NULL) < 0)
			return 1;
		struct buf b;
		buf_init(&b);
		struct old_key *old;
		size_t nold;
		char err[512];
		const char *path = cfg_str(&fc->cfg, "node", "signing_key");
		if (signing_key_old_load(path, &old, &nold, err, sizeof err) < 0) {
			fprintf(stderr, "fedctl keys doc: %s\n", err);
			sodium_memzero(&k, sizeof k);
			buf_free(&b);
			return 1;
		}
		int rc = signing_key_doc_old(&k, cfg_str(&fc->cfg, "node", "server_name"), now_ms(), valid,
		                             old, nold, &b);
		free(old);
		if (rc == 0)
			printf("%s\n", b.data);
		buf_free(&b);
		sodium_memzero(&k, sizeof k);
		return rc ? 1 : 0;
	}
	if (!strcmp(argv[1], "import")) {
		if (argc < 3) { fprintf(stderr, "usage: fedctl keys import FILE...\n"); return 100; }
		struct keyring kr;
		char err[256];
		keyring_init(&kr);
		for (int i = 2; i < argc; i++)
			if (keyring_load_file(&kr, argv[i], err, sizeof err) < 0) {
				fprintf(stderr, "fedctl keys import: %s: %s\n", argv[i], err);
				keyring_free(&kr);
				return 1;
			}
		struct store *st = fedctl_store(fc, 0);
		size_t conflicts;
		int rc;
		char *conflicted = calloc(kr.n ? kr.n : 1, 1);
		if (!conflicted) { fprintf(stderr, "fedctl keys import: out of memory\n"); keyring_free(&kr); return 1; }
	redo:                             /* the map grew: the whole txn again */
		conflicts = 0;
		memset(conflicted, 0, kr.n);
		rc = 0;
		MDB_txn *t = store_begin(st, 0);
		for (size_t i = 0; i < kr.n && !rc; i++) {
			/* the operator vouches: no fetched + 7 days bound */
			struct key_rec r;
			memcpy(r.pk, kr.k[i].pk, 32);
			r.valid_until_ts = kr.k[i].valid_until_ts;
			r.fetched_ts = now_ms();
			r.flags = KEY_OPERATOR | (kr.k[i].old ? KEY_OLD : 0);
			rc = store_key_put_rec(t, st, kr.k[i].server, kr.k[i].key_id, &r);
			if (rc == STORE_KEY_CONFLICT) {
				/* A stored key never changes: say so, import the rest. */
				char pk[64];
				b64_encode(pk, kr.k[i].pk, 32);
				fprintf(stderr, "fedctl keys import: %s %s: a different public key is already stored; "
				        "%s refused (a stored key never changes)\n", kr.k[i].server, kr.k[i].key_id, pk);
				conflicts++;
				conflicted[i] = 1;
				rc = 0;
			}
		}
		if (!rc) rc = import_docs(st, t, argv + 2, argc - 2, &kr, conflicted);
		if (rc) mdb_txn_abort(t);
		else rc = store_commit(t);        /* a failed commit frees the txn */
		if (rc && fedctl_write_failed(fc, rc, "fedctl keys import")) goto redo;
		if (!rc)
			printf("imported %zu key(s)%s\n", kr.n - conflicts, conflicts ? ", refused conflicting ones" : "");
		keyring_free(&kr);
		free(conflicted);
		return rc || conflicts ? 1 : 0;
	}
	if (!strcmp(argv[1], "ls")) {
		struct store *st = fedctl_store(fc, 1);
		MDB_txn *t = store_begin(st, 1);
		struct store_iter it;
		int first = 1;
		if (store_iter_open(&it, t, st, DB_SERVER_KEYS, NULL, 0) != 0) {
			mdb_txn_abort(t);
			return 1;
		}
		if (fc->json) printf("[");
		while (store_iter_next(&it) == 1) {
			struct server_key sk;
			if (store_key_row(&it.k, &it.v, &sk)) continue;
			char pk[64];
			b64_encode(pk, sk.pk, 32);
			int sl = (int)sk.server_len, kl = (int)sk.key_id_len;
			if (fc->json)
				printf("%s{\"server\":\"%.*s\",\"key_id\":\"%.*s\",\"key\":\"%s\",\"valid_until_ts\":%lld,"
				       "\"fetched_ts\":%lld,\"old\":%s,\"operator\":%s}",
				       first ? "" : ",", sl, sk.server, kl, sk.key_id, pk, (long long)sk.valid_until_ts,
				       (long long)sk.fetched_ts, (sk.flags & KEY_OLD) ? "true" : "false",
				       (sk.flags & KEY_OPERATOR) ? "true" : "false");
			else
				printf("%.*s\t%.*s\t%s\t%lld\t%lld\t%s\n", sl, sk.server, kl, sk.key_id, pk,
				       (long long)sk.valid_until_ts, (long long)sk.fetched_ts,
				       (sk.flags & KEY_OLD) ? "old" : (sk.flags & KEY_OPERATOR) ? "operator" : "fetched");
			first = 0;
		}
		if (fc->json) printf("]\n");
		store_iter_close(&it);
		mdb_txn_abort(t);
		return 0;
	}
	fprintf(stderr, "fedctl keys: unknown subcommand %s\n", argv[1]);
	return 100;
}

FEDCTL_COMMAND(keygen_cmd, "keygen", "keygen [--force | --rotate] [--out FILE] [--key-version V]",
               "write the node's ed25519 signing key (Synapse format); prints key ID and public key; --rotate: the old key to <signing_key>.old (old_verify_keys, expired_ts now)",
               cmd_keygen)
FEDCTL_COMMAND(sign_cmd, "sign", "sign [--room-version 10|11] [--server NAME] [--key FILE] [FILE|-]",
               "add hashes + signature to unsigned event(s): PDU lines on stdout, event IDs on stderr (--json: {\"event_id\",\"pdu\"} lines)",
               cmd_sign)
FEDCTL_COMMAND(keys_cmd, "keys", "keys import FILE... | keys ls | keys doc [--valid-for 7d]",
               "verify and store key documents in server_keys; list them; print this node's key document",
               cmd_keys)
