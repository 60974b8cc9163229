/* test_keys.c: signing key files (Synapse format), key generation, and the
 * keyring fed by self-signed /_matrix/key/v2/server documents, including the
 * gomatrixserverlib/Synapse server key vector from json_signing.json. */
#include "../lib/tap.h"
#include "../lib/vectors.h"
#include "matrix/keys.h"
#include "matrix/pdu.h"
#include "matrix/b64.h"
#include "matrix/json.h"
#include "store/store.h"
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/fp_test_keys.XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	fputs(text, f);
	fclose(f);
}

static void test_key_files(void)
{
	struct signing_key k, l;
	char path[256], err[256], text[256];
	struct stat st;

	TAP_OK(signing_key_generate(&k, NULL) == 0, "generate with a default version: %s", k.key_id);
	TAP_OK(strncmp(k.key_id, "ed25519:a_", 10) == 0 && strlen(k.key_id) == 14
	       && strspn(k.key_id + 8, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == 6,
	       "default version is a_ + 4 key-ID-safe characters");
	unsigned char pk[32], sk[64];
	crypto_sign_seed_keypair(pk, sk, k.seed);
	TAP_OK(memcmp(pk, k.pk, 32) == 0 && memcmp(sk, k.sk, 64) == 0, "pk/sk derive from the seed");

	snprintf(path, sizeof path, "%s/signing.key", dir);
	TAP_OK(signing_key_save(&k, path) == 0, "save");
	TAP_OK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "saved with mode 0600");
	size_t len;
	char *saved = slurp(path, &len);
	TAP_OK(saved && strncmp(saved, "ed25519 a_", 10) == 0 && saved[len - 1] == '\n'
	       && strchr(saved, '=') == NULL && len == 8 + 6 + 1 + 43 + 1,
	       "file is \"ed25519 <version> <unpadded base64>\\n\": %s", saved ? saved : "");
	free(saved);
	memset(&l, 0, sizeof l);
	TAP_OK(signing_key_load(&l, path, err, sizeof err) == 0 && strcmp(k.key_id, l.key_id) == 0
	       && memcmp(k.seed, l.seed, 32) == 0 && memcmp(k.pk, l.pk, 32) == 0 && memcmp(k.sk, l.sk, 64) == 0,
	       "save/load round trip");

	/* Issue 13: the temporary file is made O_EXCL|O_NOFOLLOW. A symlink
	 * planted at <key>.tmp is not followed (its target keeps its bytes), a
	 * file there is not truncated, and the old key stays intact. */
	{
		char tmp[300], target[300];
		struct signing_key k2;
		signing_key_generate(&k2, "new");
		snprintf(tmp, sizeof tmp, "%s.tmp", path);
		snprintf(target, sizeof target, "%s/target", dir);
		write_file(target, "precious\n");
		TAP_OK(symlink(target, tmp) == 0, "symlink planted at the temporary path");
		errno = 0;
		TAP_OK(signing_key_save(&k2, path) == -1 && (errno == EEXIST || errno == ELOOP),
		       "save refuses a planted symlink (errno %d)", errno);
		char *t = slurp(target, &len);
		TAP_OK(t && !strcmp(t, "precious\n"), "the symlink's target is untouched");
		free(t);
		memset(&l, 0, sizeof l);
		TAP_OK(signing_key_load(&l, path, err, sizeof err) == 0 && !memcmp(l.seed, k.seed, 32),
		       "the old key is intact");
		unlink(tmp);
		write_file(tmp, "stale\n");
		TAP_OK(signing_key_save(&k2, path) == -1 && errno == EEXIST, "a file at the temporary path: EEXIST");
		t = slurp(tmp, &len);
		TAP_OK(t && !strcmp(t, "stale\n"), "... not truncated");
		free(t);
		unlink(tmp);
		unlink(target);
		TAP_OK(signing_key_save(&k2, path) == 0 && signing_key_load(&l, path, err, sizeof err) == 0
		       && !memcmp(l.seed, k2.seed, 32) && access(tmp, F_OK) != 0,
		       "then the save replaces the key, no temporary file left");
		TAP_OK(signing_key_save(&k, path) == 0, "(old key back)");
	}

	/* the spec test key, written the ways people write it */
	const char *seed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
	const char *forms[] = { "ed25519 1 %s", "ed25519 1 %s\n", "ed25519 1 %s=\n", "ed25519 1 %s\r\n",
	                        "ed25519 1 %s\ned25519 old AAAA\n" };
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		snprintf(text, sizeof text, forms[i], seed);
		write_file(path, text);
		memset(&l, 0, sizeof l);
		char pk64[64] = "";
		int rc = signing_key_load(&l, path, err, sizeof err);
		if (rc == 0)
			b64_encode(pk64, l.pk, 32);
		TAP_OK(rc == 0 && strcmp(l.key_id, "ed25519:1") == 0
		       && strcmp(pk64, "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI") == 0,
		       "load form %zu gives the spec key %s", i, pk64);
	}
	const char *bad[] = { "", "ed25519 1\n", "curve25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n",
	                      "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA\n",
	                      "ed25519 a-b YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n",
	                      "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1 x\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(path, bad[i]);
		err[0] = 0;
		TAP_OK(signing_key_load(&l, path, err, sizeof err) == -1 && err[0], "bad key file %zu refused: %s", i, err);
	}
	snprintf(path, sizeof path, "%s/absent", dir);
	TAP_OK(signing_key_load(&l, path, err, sizeof err) == -1 && strstr(err, "absent"), "missing file: %s", err);
	TAP_OK(signing_key_generate(&l, "v-1") == -1, "a version outside [a-zA-Z0-9_] is refused");
	TAP_OK(signing_key_generate(&l, "v2") == 0 && strcmp(l.key_id, "ed25519:v2") == 0, "explicit version");
	snprintf(path, sizeof path, "%s/signing.key", dir);
	unlink(path);
}

/* The Synapse key response from json_signing.json (gmsl keyring_test.go). */
static char *vector_server_keys(void)
{
	char path[1024];
	size_t len;
	struct json_doc d = { 0 };
	char *out = NULL;

	snprintf(path, sizeof path, "%s/matrix/json_signing.json", tap_vectors());
	char *text = slurp(path, &len);
	if (text && json_parse(&d, text, len, 64) == 0) {
		int vs = json_obj_get(&d, 0, "vectors");
		for (int v = json_first(&d, vs); v >= 0; v = json_next_elem(&d, vs, v)) {
			int id = json_obj_get(&d, v, "id");
			if (id >= 0 && json_str_eq(&d, id, "gmsl-synapse-server-keys")) {
				int t = json_obj_get(&d, v, "input_text");
				size_t n = json_str_len(&d, t);
				out = malloc(n + 1);
				json_str_copy(&d, t, out, n + 1);
			}
		}
	}
	json_doc_free(&d);
	free(text);
	return out;
}

static void test_keyring(void)
{
	struct keyring kr;
	struct signing_key k;
	struct buf doc;
	char err[256], path[256];
	const struct verify_key *vk;

	keyring_init(&kr);
	char *synapse = vector_server_keys();
	TAP_OK(synapse != NULL, "server key vector found");
	if (synapse) {
		int n = keyring_add_server_doc(&kr, synapse, strlen(synapse), err, sizeof err);
		TAP_OK(n == 2, "Synapse server key document loads (%d keys) %s", n, n < 0 ? err : "");
		vk = keyring_find(&kr, "localhost:8800", "ed25519:a_Obwu");
		char pk64[64] = "";
		if (vk)
			b64_encode(pk64, vk->pk, 32);
		TAP_OK(vk && strcmp(pk64, "2UwTWD4+tgTgENV7znGGNqhAOGY+BW1mRAnC6W6FBQg") == 0
		       && vk->valid_until_ts == 1493142432964LL, "current key and its valid_until_ts");
		vk = keyring_find(&kr, "localhost:8800", "ed25519:old");
		TAP_OK(vk && vk->valid_until_ts == 929059200LL, "old key kept with valid_until_ts = expired_ts");
		TAP_OK(keyring_find(&kr, "localhost:8800", "ed25519:nope") == NULL
		       && keyring_find(&kr, "other", "ed25519:a_Obwu") == NULL, "find misses what is not there");

		/* tamper: any byte of the signed part breaks the self-signature */
		struct keyring k2;
		keyring_init(&k2);
		char *t = strdup(synapse);
		char *p = strstr(t, "1493142432964");
		p[12] = '5';
		err[0] = 0;
		TAP_OK(keyring_add_server_doc(&k2, t, strlen(t), err, sizeof err) == -1 && k2.n == 0,
		       "doc with a bad self-signature refused: %s", err);
		free(t);
		keyring_free(&k2);
	}
	free(synapse);

	/* our own document, and how the keyring treats it */
	signing_key_generate(&k, "a_Test");
	buf_init(&doc);
	TAP_OK(signing_key_doc(&k, "alpha.test:8448", 1000, 3600000, &doc) == 0, "signing_key_doc");
	struct json_doc d = { 0 };
	TAP_OK(json_parse(&d, doc.data, doc.len, 64) == 0
	       && json_verify_object(&d, 0, "alpha.test:8448", "ed25519:a_Test", k.pk) == PDU_OK,
	       "signing_key_doc is self-signed: %s", doc.data);
	int vu = json_obj_get(&d, 0, "valid_until_ts");
	TAP_OK(vu >= 0 && d.tok[vu].ival == 3601000 && json_obj_get(&d, 0, "old_verify_keys") >= 0,
	       "signing_key_doc has valid_until_ts and old_verify_keys");
	json_doc_free(&d);
	TAP_OK(keyring_add_server_doc(&kr, doc.data, doc.len, err, sizeof err) == 1, "own doc loads");
	vk = keyring_find(&kr, "alpha.test:8448", "ed25519:a_Test");
	TAP_OK(vk && memcmp(vk->pk, k.pk, 32) == 0 && vk->valid_until_ts == 3601000, "own key found");

	/* a newer document moves the key to old_verify_keys: expiry follows */
	struct signing_key k2;
	signing_key_generate(&k2, "a_New");
	char pk1[64], pk2[64], text[1024];
	struct buf signed_doc;
	b64_encode(pk1, k.pk, 32);
	b64_encode(pk2, k2.pk, 32);
	snprintf(text, sizeof text,
	         "{\"old_verify_keys\":{\"ed25519:a_Test\":{\"expired_ts\":5000,\"key\":\"%s\"}},"
	         "\"server_name\":\"alpha.test:8448\",\"valid_until_ts\":9000,"
	         "\"verify_keys\":{\"ed25519:a_New\":{\"key\":\"%s\"},\"curve25519:x\":{\"key\":\"zzz\"}}}", pk1, pk2);
	buf_init(&signed_doc);
	json_sign_object(text, strlen(text), "alpha.test:8448", "ed25519:a_New", k2.sk, &signed_doc);
	int n = keyring_add_server_doc(&kr, signed_doc.data, signed_doc.len, err, sizeof err);
	TAP_OK(n == 2, "rotated doc loads, unknown algorithm skipped (%d) %s", n, n < 0 ? err : "");
	vk = keyring_find(&kr, "alpha.test:8448", "ed25519:a_Test");
	TAP_OK(vk && vk->valid_until_ts == 5000, "rotated-out key now expires at its expired_ts");
	vk = keyring_find(&kr, "alpha.test:8448", "ed25519:a_New");
	TAP_OK(vk && vk->valid_until_ts == 9000, "new key valid until 9000");
	TAP_OK(keyring_find(&kr, "alpha.test:8448", "curve25519:x") == NULL, "non-ed25519 key not added");

	/* signed only by an old key: not self-signed by a current one */
	buf_reset(&signed_doc);
	json_sign_object(text, strlen(text), "alpha.test:8448", "ed25519:a_Test", k.sk, &signed_doc);
	err[0] = 0;
	TAP_OK(keyring_add_server_doc(&kr, signed_doc.data, signed_doc.len, err, sizeof err) == -1,
	       "doc signed only by an old key refused: %s", err);
	/* signed by someone else's key under the right name */
	buf_reset(&signed_doc);
	json_sign_object(text, strlen(text), "alpha.test:8448", "ed25519:a_New", k.sk, &signed_doc);
	TAP_OK(keyring_add_server_doc(&kr, signed_doc.data, signed_doc.len, err, sizeof err) == -1,
	       "doc signed with the wrong key refused: %s", err);
	/* unsigned */
	TAP_OK(keyring_add_server_doc(&kr, text, strlen(text), err, sizeof err) == -1, "unsigned doc refused: %s", err);
	/* structural faults */
	const char *bad[] = { "[]", "{\"server_name\":\"x\",\"valid_until_ts\":1}",
	                      "{\"server_name\":\"x\",\"verify_keys\":{},\"valid_until_ts\":\"1\"}",
	                      "{\"verify_keys\":{},\"valid_until_ts\":1}",
	                      "{\"server_name\":\"x\",\"verify_keys\":{\"ed25519:a\":{\"key\":\"AAAA\"}},\"valid_until_ts\":1}",
	                      "{\"server_name\":\"x\",\"verify_keys\":{},\"valid_until_ts\":1.5}" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		TAP_OK(keyring_add_server_doc(&kr, bad[i], strlen(bad[i]), err, sizeof err) == -1 && err[0],
		       "malformed doc %zu refused: %s", i, err);
	}
	buf_free(&signed_doc);

	/* keyring_load_file: an array of documents, or a single one */
	struct keyring k3;
	keyring_init(&k3);
	snprintf(path, sizeof path, "%s/keys.json", dir);
	struct buf arr;
	buf_init(&arr);
	buf_addc(&arr, '[');
	buf_add(&arr, doc.data, doc.len);
	buf_addc(&arr, ',');
	synapse = vector_server_keys();
	buf_adds(&arr, synapse ? synapse : "{}");
	buf_adds(&arr, "]\n");
	write_file(path, arr.data);
	n = keyring_load_file(&k3, path, err, sizeof err);
	TAP_OK(n == 3 && keyring_find(&k3, "localhost:8800", "ed25519:old")
	       && keyring_find(&k3, "alpha.test:8448", "ed25519:a_Test"), "load file with an array (%d) %s", n, n < 0 ? err : "");
	keyring_free(&k3);
	write_file(path, doc.data);
	TAP_OK(keyring_load_file(&k3, path, err, sizeof err) == 1, "load file with one document");
	write_file(path, "[{\"server_name\":\"x\"}]");
	TAP_OK(keyring_load_file(&k3, path, err, sizeof err) == -1 && strstr(err, "document 0"), "bad file: %s", err);
	unlink(path);
	keyring_free(&k3);
	free(synapse);
	buf_free(&arr);
	buf_free(&doc);
	keyring_free(&kr);
}

/* A stored (server, key ID) never changes to another public key (issue
 * 13): the conflict is refused without touching the txn, the same key may
 * update its validity, and other servers/IDs are independent. */
static void test_store_key_conflict(void)
{
	char sdir[] = "/tmp/fp_test_keys_store.XXXXXX", err[256];
	struct store s;
	if (!mkdtemp(sdir)) { TAP_OK(0, "mkdtemp"); return; }
	TAP_OK(store_open(&s, sdir, 1 << 24, 0, err, sizeof err) == 0, "store open %s", err);
	unsigned char a[32], b[32], got[32];
	int64_t until = 0;
	memset(a, 1, 32);
	memset(b, 2, 32);
	MDB_txn *t = store_begin(&s, 0);
	TAP_OK(store_key_put(t, &s, "v.test", "ed25519:k", a, 100) == 0, "first key stored");
	TAP_OK(store_key_put(t, &s, "v.test", "ed25519:k", b, 999) == STORE_KEY_CONFLICT, "another pk for the same ID: conflict");
	TAP_OK(store_key_get(t, &s, "v.test", "ed25519:k", got, &until) == 0 && !memcmp(got, a, 32) && until == 100,
	       "the stored key is unchanged");
	TAP_OK(store_key_put(t, &s, "v.test", "ed25519:k", a, 200) == 0
	       && store_key_get(t, &s, "v.test", "ed25519:k", got, &until) == 0 && until == 200,
	       "the same pk updates valid_until_ts");
	TAP_OK(store_key_put(t, &s, "v.test", "ed25519:k2", b, 5) == 0 && store_key_put(t, &s, "w.test", "ed25519:k", b, 5) == 0,
	       "another key ID, another server: independent");
	TAP_OK(store_commit(t) == 0, "the txn survives a conflict and commits");
	t = store_begin(&s, 1);
	TAP_OK(store_key_get(t, &s, "v.test", "ed25519:k", got, NULL) == 0 && !memcmp(got, a, 32), "still the first key after commit");
	mdb_txn_abort(t);
	TAP_OK(STORE_KEY_CONFLICT != MDB_NOTFOUND && (STORE_KEY_CONFLICT < MDB_KEYEXIST || STORE_KEY_CONFLICT > MDB_LAST_ERRCODE),
	       "STORE_KEY_CONFLICT is no LMDB error code");
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", sdir);
	TAP_OK(system(cmd) == 0, "cleanup");
}

/* A document for server listing key k (as version id), signed by signer
 * (NULL: by k) under signer_id, then countersigned by notary nk (NULL: not). */
static void make_doc(struct buf *out, const char *server, const struct signing_key *k,
                     const struct signing_key *signer, const char *notary,
                     const struct signing_key *nk)
{
	char pk[64], text[512];
	struct buf one;
	b64_encode(pk, k->pk, 32);
	snprintf(text, sizeof text, "{\"old_verify_keys\":{},\"server_name\":\"%s\",\"valid_until_ts\":9000,"
	         "\"verify_keys\":{\"%s\":{\"key\":\"%s\"}}}", server, k->key_id, pk);
	buf_init(&one);
	if (signer == NULL) signer = k;
	json_sign_object(text, strlen(text), server, k->key_id, signer->sk, &one);
	buf_reset(out);
	if (nk) json_sign_object(one.data, one.len, notary, nk->key_id, nk->sk, out);
	else buf_add(out, one.data, one.len);
	buf_free(&one);
}

static const struct signing_key *notary_known;
static int notary_lookup(void *arg, const char *server, const char *key_id, unsigned char pk[32])
{
	(void)arg;
	if (notary_known && !strcmp(server, "notary.test") && !strcmp(key_id, notary_known->key_id)) {
		memcpy(pk, notary_known->pk, 32);
		return 0;
	}
	return -1;
}

static void test_provenance(void)
{
	struct signing_key s, evil, n, n2;
	struct keyring kr;
	struct buf doc, ans;
	char err[256];
	signing_key_generate(&s, "s1");
	signing_key_generate(&evil, "s1");
	signing_key_generate(&n, "n1");
	signing_key_generate(&n2, "n1");
	keyring_init(&kr);
	buf_init(&doc);
	buf_init(&ans);

	/* from the origin: only a document naming it */
	make_doc(&doc, "s.test", &s, NULL, NULL, NULL);
	TAP_OK(keyring_add_server_doc_for(&kr, doc.data, doc.len, "s.test", err, sizeof err) == 1, "origin doc for S: accepted");
	TAP_OK(keyring_add_server_doc_for(&kr, doc.data, doc.len, "other.test", err, sizeof err) == -1
	       && strstr(err, "names s.test, not other.test"), "a document naming another server: refused (%s)", err);
	keyring_free(&kr);

	/* from a notary: {"server_keys":[doc]} signed by S and by the notary */
	notary_known = &n;
#define ANSWER(d) do { buf_reset(&ans); buf_adds(&ans, "{\"server_keys\":["); buf_add(&ans, (d).data, (d).len); buf_adds(&ans, "]}"); } while (0)
	make_doc(&doc, "s.test", &s, NULL, "notary.test", &n);
	ANSWER(doc);
	int r = keyring_add_notary_answer(&kr, ans.data, ans.len, "s.test", "notary.test", notary_lookup, NULL, err, sizeof err);
	TAP_OK(r == 1 && keyring_find(&kr, "s.test", "ed25519:s1"), "notary answer signed by S and the notary: accepted (%d %s)", r, r < 0 ? err : "");
	keyring_free(&kr);
	make_doc(&doc, "s.test", &s, NULL, "notary.test", &n2);
	ANSWER(doc);
	TAP_OK(keyring_add_notary_answer(&kr, ans.data, ans.len, "s.test", "notary.test", notary_lookup, NULL, err, sizeof err) == -1
	       && kr.n == 0, "countersigned with a key not the notary's: refused (%s)", err);
	notary_known = NULL;
	make_doc(&doc, "s.test", &s, NULL, "notary.test", &n);
	ANSWER(doc);
	TAP_OK(keyring_add_notary_answer(&kr, ans.data, ans.len, "s.test", "notary.test", notary_lookup, NULL, err, sizeof err)
	       == KEYS_NOTARY_KEY_UNKNOWN && kr.n == 0, "the notary's key unknown: KEYS_NOTARY_KEY_UNKNOWN (%s)", err);
	notary_known = &n;
	/* the notary puts a wrong key in S's document: S's signature fails */
	make_doc(&doc, "s.test", &evil, &s, "notary.test", &n);
	ANSWER(doc);
	TAP_OK(keyring_add_notary_answer(&kr, ans.data, ans.len, "s.test", "notary.test", notary_lookup, NULL, err, sizeof err) == -1
	       && kr.n == 0, "a wrong key for S (not signed by S): refused (%s)", err);
	make_doc(&doc, "s.test", &s, NULL, NULL, NULL);
	ANSWER(doc);
	TAP_OK(keyring_add_notary_answer(&kr, ans.data, ans.len, "s.test", "notary.test", notary_lookup, NULL, err, sizeof err) == -1
	       && strstr(err, "not signed by the notary"), "not countersigned: refused (%s)", err);
	make_doc(&doc, "x.test", &s, NULL, "notary.test", &n);
	ANSWER(doc);
	TAP_OK(keyring_add_notary_answer(&kr, ans.data, ans.len, "s.test", "notary.test", notary_lookup, NULL, err, sizeof err) == -1
	       && strstr(err, "no document for s.test"), "only another server's document: refused (%s)", err);
	TAP_OK(keyring_add_notary_answer(&kr, doc.data, doc.len, "x.test", "notary.test", notary_lookup, NULL, err, sizeof err) == -1
	       && strstr(err, "no server_keys"), "a bare document from a notary: refused (%s)", err);
	keyring_free(&kr);

	/* rotation: <key>.old, the document with old_verify_keys */
	char path[256];
	struct signing_key cur, nk;
	struct old_key *old;
	size_t nold;
	snprintf(path, sizeof path, "%s/rot.key", dir);
	signing_key_generate(&cur, "r1");
	TAP_OK(signing_key_save(&cur, path) == 0, "a key to rotate");
	TAP_OK(signing_key_old_load(path, &old, &nold, err, sizeof err) == 0 && nold == 0 && old == NULL, "no .old file: no old keys");
	TAP_OK(signing_key_rotate(path, NULL, 12345, &nk, err, sizeof err) == 0 && strcmp(nk.key_id, "ed25519:r1"),
	       "rotate: a new key %s", nk.key_id);
	struct signing_key back;
	TAP_OK(signing_key_load(&back, path, err, sizeof err) == 0 && !strcmp(back.key_id, nk.key_id)
	       && !memcmp(back.pk, nk.pk, 32), "the key file holds the new key");
	TAP_OK(signing_key_old_load(path, &old, &nold, err, sizeof err) == 0 && nold == 1
	       && !strcmp(old[0].key_id, "ed25519:r1") && !memcmp(old[0].pk, cur.pk, 32) && old[0].expired_ts == 12345,
	       "the old key in .old with expired_ts = now");
	free(old);
	struct signing_key fail;
	TAP_OK(signing_key_rotate(path, "r1", 2000, &fail, err, sizeof err) == -1 && strstr(err, "already used"),
	       "rotate to a used key ID: refused (%s)", err);
	struct signing_key k3;
	TAP_OK(signing_key_rotate(path, "r3", 20000, &k3, err, sizeof err) == 0, "rotate again");
	TAP_OK(signing_key_old_load(path, &old, &nold, err, sizeof err) == 0 && nold == 2, "two old keys");
	buf_reset(&doc);
	TAP_OK(signing_key_doc_old(&k3, "rot.test", 1000, 5000, old, nold, &doc) == 0, "signing_key_doc_old");
	r = keyring_add_server_doc_for(&kr, doc.data, doc.len, "rot.test", err, sizeof err);
	const struct verify_key *o1 = keyring_find(&kr, "rot.test", "ed25519:r1");
	const struct verify_key *o2 = keyring_find(&kr, "rot.test", nk.key_id);
	const struct verify_key *c3 = keyring_find(&kr, "rot.test", "ed25519:r3");
	TAP_OK(r == 3 && o1 && o1->old && o1->valid_until_ts == 12345 && o2 && o2->old && o2->valid_until_ts == 20000
	       && c3 && !c3->old && c3->valid_until_ts == 6000, "the document publishes the new key and both old ones (%s)", doc.data);
	/* a rotation cut short: the current key also listed as old is not published as old */
	buf_reset(&doc);
	keyring_free(&kr);
	TAP_OK(signing_key_doc_old(&nk, "rot.test", 1000, 5000, old, nold, &doc) == 0 && strstr(doc.data, "ed25519:r1")
	       && keyring_add_server_doc_for(&kr, doc.data, doc.len, "rot.test", err, sizeof err) == 2,
	       "the current key is skipped in old_verify_keys");
	free(old);
	char opath[300];
	snprintf(opath, sizeof opath, "%s.old", path);
	write_file(opath, "ed25519:x notbase64 1\n");
	TAP_OK(signing_key_old_load(path, &old, &nold, err, sizeof err) == -1 && strstr(err, ":1:"), "a bad .old line: %s", err);
	unlink(opath);
	unlink(path);
	keyring_free(&kr);
	buf_free(&doc);
	buf_free(&ans);
}

int main(void)
{
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	test_key_files();
	test_keyring();
	test_store_key_conflict();
	test_provenance();
	rmdir(dir);
	return tap_done();
}
