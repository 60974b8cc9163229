/* keys.c: this node's signing key (Synapse's key file format) and the
 * keyring of other servers' verify keys, filled only from self-signed
 * /_matrix/key/v2/server documents (see keys.h). */
#include "matrix/keys.h"
#include "matrix/b64.h"
#include "matrix/json.h"
#include "matrix/pdu.h"
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 4096
#define KEY_DOC_FILE_MAX (16 << 20)
#define ED25519_PREFIX "ed25519:"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The spec's key version grammar: [a-zA-Z0-9_], non-empty. */
static int version_ok(const char *v, size_t n)
{
	if (n == 0 || n + sizeof ED25519_PREFIX > sizeof(((struct signing_key *)0)->key_id))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int key_from_seed(struct signing_key *k, const char *version, size_t vlen)
{
	if (sodium_init() < 0 || !version_ok(version, vlen))
		return -1;
	snprintf(k->key_id, sizeof k->key_id, ED25519_PREFIX "%.*s", (int)vlen, version);
	return crypto_sign_seed_keypair(k->pk, k->sk, k->seed) == 0 ? 0 : -1;
}

int signing_key_generate(struct signing_key *k, const char *version)
{
	/* Synapse names keys "a_" + 4 random characters; base64url's alphabet
	 * minus '-', which the spec's key version grammar does not allow */
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
	char v[8];

	if (sodium_init() < 0)
		return -1;
	if (version == NULL) {
		v[0] = 'a';
		v[1] = '_';
		for (int i = 2; i < 6; i++)
			v[i] = alnum[randombytes_uniform(sizeof alnum - 1)];
		v[6] = 0;
		version = v;
	}
	randombytes_buf(k->seed, sizeof k->seed);
	return key_from_seed(k, version, strlen(version));
}

/* Read a small file whole; NUL-terminated. */
static char *slurp(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > max) {
			seterr(err, errlen, "%s: larger than %zu bytes", path, max);
			fclose(f);
			buf_free(&b);
			return NULL;
		}
		buf_add(&b, chunk, n);
	}
	if (ferror(f)) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	buf_reserve(&b, 0);          /* an empty file still gets a buffer */
	b.data[b.len] = 0;
	*len = b.len;
	return buf_steal(&b);
}

/* Seeds in the wild have non-zero trailing bits: the spec's own test key
 * ("...XA1") does, and Python's decoder (which Synapse uses) ignores them
 * where libsodium's refuses. Clear them, then decode strictly. */
static long decode_seed(unsigned char out[32], const char *s, size_t n)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char tmp[64];
	size_t m = n;

	if (n == 0 || n > sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	while (m && tmp[m - 1] == '=')
		m--;
	if (m % 4 == 2 || m % 4 == 3) {
		const char *alpha = std, *p = strchr(std, tmp[m - 1]);
		if (p == NULL || tmp[m - 1] == 0) {
			alpha = url;
			p = strchr(url, tmp[m - 1]);
		}
		if (p && tmp[m - 1] != 0)
			tmp[m - 1] = alpha[(p - alpha) & (m % 4 == 2 ? 0x30 : 0x3c)];
	}
	long r = b64_decode(out, 32, tmp, n);
	sodium_memzero(tmp, sizeof tmp);
	return r;
}

/* Synapse writes one key per line and signs with the first; so do we, and
 * any later lines (older keys) are left alone. */
int signing_key_load(struct signing_key *k, const char *path, char *err, size_t errlen)
{
	size_t len;
	char *text = slurp(path, KEY_FILE_MAX, &len, err, errlen);
	int rc = -1;

	if (text == NULL)
		return -1;
	if (memchr(text, 0, len)) {
		seterr(err, errlen, "%s: NUL byte in key file", path);
		goto out;
	}
	char *line = text, *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	size_t ll = strlen(line);
	while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' ' || line[ll - 1] == '\t'))
		line[--ll] = 0;
	char *alg = line, *ver = strchr(alg, ' ');
	char *seed = ver ? strchr(ver + 1, ' ') : NULL;
	if (ver == NULL || seed == NULL || (size_t)(ver - alg) != 7 || memcmp(alg, "ed25519", 7) != 0) {
		seterr(err, errlen, "%s: expected \"ed25519 <version> <base64 seed>\"", path);
		goto out;
	}
	ver++;
	size_t vlen = (size_t)(seed - ver);
	seed++;
	if (!version_ok(ver, vlen)) {
		seterr(err, errlen, "%s: key version must be [a-zA-Z0-9_]+ and short", path);
		goto out;
	}
	if (decode_seed(k->seed, seed, strlen(seed)) != (long)sizeof k->seed) {
		seterr(err, errlen, "%s: the seed is not base64 of 32 bytes", path);
		goto out;
	}
	if (key_from_seed(k, ver, vlen) < 0) {
		seterr(err, errlen, "%s: cannot derive the key pair", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(text, len);
	free(text);
	return rc;
}

int signing_key_reload(struct signing_key *k, const char *path, char *err, size_t errlen)
{
	struct signing_key nk;
	int rc = -1;

	if (signing_key_load(&nk, path, err, errlen) < 0)
		goto out;
	if (strcmp(nk.key_id, k->key_id) == 0) {
		if (sodium_memcmp(nk.sk, k->sk, sizeof nk.sk) == 0)
			rc = 0;
		else
			seterr(err, errlen, "%s: another key under the same key ID %s (a key ID is never "
			       "reused: make a new key with `fedctl keygen --rotate`)", path, k->key_id);
		goto out;
	}
	sodium_memzero(k, sizeof *k);
	*k = nk;
	rc = 1;
out:
	sodium_memzero(&nk, sizeof nk);
	return rc;
}

/* Written to a temporary file and renamed over the old one, so a crash never
 * leaves a truncated key behind and an old key is replaced only by a new
 * one already on disk: the temporary file is made O_EXCL|O_NOFOLLOW (a
 * file or symlink planted at its path is an error, never followed or
 * truncated), mode 0600 from creation, written and fsync'ed, renamed over
 * the key, then the directory is fsync'ed. On failure errno is set and the
 * old key is untouched. */
static int fsync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int write_durable(const char *path, const char *data, size_t n, mode_t mode)
{
	char tmp[4096];

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	int ok = fchmod(fd, mode) == 0 && write(fd, data, n) == (ssize_t)n && fsync(fd) == 0;
	int saved = errno;
	if (close(fd) != 0 && ok) {
		ok = 0;
		saved = errno;
	}
	if (!ok || rename(tmp, path) != 0) {
		if (ok)
			saved = errno;
		unlink(tmp);              /* ours: O_EXCL made it */
		errno = saved;
		return -1;
	}
	if (fsync_dir_of(path) != 0)
		return -2;            /* renamed (the new file is in place), not known durable */
	return 0;
}

int signing_key_save(const struct signing_key *k, const char *path)
{
	char seed[64], line[160];
	const char *ver = k->key_id;

	if (strncmp(ver, ED25519_PREFIX, strlen(ED25519_PREFIX)) == 0)
		ver += strlen(ED25519_PREFIX);
	b64_encode(seed, k->seed, sizeof k->seed);
	int n = snprintf(line, sizeof line, "ed25519 %s %s\n", ver, seed);
	sodium_memzero(seed, sizeof seed);
	if (n < 0 || n >= (int)sizeof line) {
		sodium_memzero(line, sizeof line);
		errno = EINVAL;
		return -1;
	}
	int rc = write_durable(path, line, (size_t)n, 0600);
	int saved = errno;
	sodium_memzero(line, sizeof line);
	errno = saved;
	return rc;
}

/* --- keyring ---------------------------------------------------------------- */

void keyring_init(struct keyring *kr)
{
	kr->k = NULL;
	kr->n = kr->cap = 0;
}

void keyring_free(struct keyring *kr)
{
	free(kr->k);
	keyring_init(kr);
}

const struct verify_key *keyring_find(const struct keyring *kr, const char *server,
                                      const char *key_id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->k[i].key_id, key_id) == 0 && strcmp(kr->k[i].server, server) == 0)
			return &kr->k[i];
	return NULL;
}

/* The newest checked document is the truth about a key: a later document
 * may move a key to old_verify_keys with an expiry earlier than what an
 * older document promised. */
static void keyring_put(struct keyring *kr, const struct verify_key *v)
{
	struct verify_key *have = (struct verify_key *)keyring_find(kr, v->server, v->key_id);

	if (have) {
		*have = *v;
		return;
	}
	if (kr->n == kr->cap) {
		size_t nc = kr->cap ? kr->cap * 2 : 8;
		struct verify_key *p = realloc(kr->k, nc * sizeof *p);
		if (p == NULL) {
			fprintf(stderr, "<2>out of memory growing the keyring to %zu keys\n", nc);
			abort();
		}
		kr->k = p;
		kr->cap = nc;
	}
	kr->k[kr->n++] = *v;
}

/* One ed25519 entry {"key": b64, <ts_member>: int}. Returns 1 if taken into
 * v, 0 if skipped (another algorithm), -1 if malformed. */
static int parse_key_entry(const struct json_doc *d, int key, int val, const char *ts_member,
                           struct verify_key *v, char *err, size_t errlen)
{
	char id[sizeof v->key_id];

	if (json_str_copy(d, key, id, sizeof id) < 0) {
		seterr(err, errlen, "key ID too long");
		return -1;
	}
	if (d->tok[val].type != JSON_OBJECT) {
		seterr(err, errlen, "key %s: not an object", id);
		return -1;
	}
	if (strncmp(id, ED25519_PREFIX, strlen(ED25519_PREFIX)) != 0)
		return 0;
	int k = json_obj_get(d, val, "key");
	/* base64 after JSON unescaping: "\/" and "\u0041" are the same value */
	if (k < 0 || d->tok[k].type != JSON_STRING
	    || d->tok[k].end - d->tok[k].start > 6 * 64
	    || json_str_b64(d, k, v->pk, sizeof v->pk) != (long)sizeof v->pk) {
		seterr(err, errlen, "key %s: \"key\" is not base64 of 32 bytes", id);
		return -1;
	}
	if (ts_member) {
		int ts = json_obj_get(d, val, ts_member);
		if (ts < 0 || d->tok[ts].type != JSON_INT) {
			seterr(err, errlen, "key %s: no integer %s", id, ts_member);
			return -1;
		}
		v->valid_until_ts = d->tok[ts].ival;
	}
	memcpy(v->key_id, id, sizeof id);
	return 1;
}

/* The notary's signature on document t: KEYS_OK with a key lookup knows
 * (and that verifies), KEYS_NOTARY_KEY_UNKNOWN, or -1. */
static int notary_signed(const struct json_doc *d, int t, const char *notary,
                         keys_lookup_fn lookup, void *arg, char *err, size_t errlen)
{
	int sigs = json_obj_get(d, t, "signatures");
	int ns = sigs >= 0 && d->tok[sigs].type == JSON_OBJECT ? json_obj_get(d, sigs, notary) : -1;
	char unknown[64] = "";

	if (ns < 0 || d->tok[ns].type != JSON_OBJECT) {
		seterr(err, errlen, "not signed by the notary %s", notary);
		return -1;
	}
	for (int k = json_first(d, ns); k >= 0; k = json_next_kv(d, ns, k)) {
		char id[64];
		unsigned char pk[32];
		if (json_str_copy(d, k, id, sizeof id) < 0 || strncmp(id, ED25519_PREFIX, strlen(ED25519_PREFIX)))
			continue;
		if (lookup(arg, notary, id, pk) < 0) {
			if (!unknown[0])
				snprintf(unknown, sizeof unknown, "%s", id);
			continue;
		}
		if (json_verify_object(d, t, notary, id, pk) == PDU_OK)
			return 0;
		seterr(err, errlen, "the notary %s's signature %s does not verify", notary, id);
		return -1;
	}
	seterr(err, errlen, "the notary %s signed with no key of its we know%s%s", notary,
	       unknown[0] ? ": " : "", unknown);
	return KEYS_NOTARY_KEY_UNKNOWN;
}

/* expect: the server the document must name (NULL: any); notary (with
 * lookup): who must have countersigned it. */
static int add_doc(struct keyring *kr, const struct json_doc *d, int t, const char *expect,
                   const char *notary, keys_lookup_fn lookup, void *arg, char *err, size_t errlen)
{
	char server[sizeof kr->k->server];
	struct verify_key found[64], v;
	size_t nfound = 0;

	if (d->tok[t].type != JSON_OBJECT) {
		seterr(err, errlen, "key document is not an object");
		return -1;
	}
	int sn = json_obj_get(d, t, "server_name");
	int vk = json_obj_get(d, t, "verify_keys");
	int vu = json_obj_get(d, t, "valid_until_ts");
	int ok = json_obj_get(d, t, "old_verify_keys");
	if (sn < 0 || d->tok[sn].type != JSON_STRING || json_str_has_ctl(d, sn)
	    || json_str_copy(d, sn, server, sizeof server) <= 0) {
		seterr(err, errlen, "no usable server_name");
		return -1;
	}
	if (expect && strcmp(server, expect) != 0) {
		seterr(err, errlen, "the document names %s, not %s", server, expect);
		return -1;
	}
	if (vk < 0 || d->tok[vk].type != JSON_OBJECT) {
		seterr(err, errlen, "%s: no verify_keys object", server);
		return -1;
	}
	if (vu < 0 || d->tok[vu].type != JSON_INT) {
		seterr(err, errlen, "%s: no integer valid_until_ts", server);
		return -1;
	}
	if (ok >= 0 && d->tok[ok].type != JSON_OBJECT) {
		seterr(err, errlen, "%s: old_verify_keys is not an object", server);
		return -1;
	}

	memset(&v, 0, sizeof v);
	memcpy(v.server, server, sizeof server);
	size_t ncurrent = 0;
	for (int pass = 0; pass < 2; pass++) {
		int o = pass == 0 ? vk : ok;
		if (o < 0)
			continue;
		for (int k = json_first(d, o); k >= 0; k = json_next_kv(d, o, k)) {
			v.valid_until_ts = d->tok[vu].ival;
			v.old = pass;
			int r = parse_key_entry(d, k, k + 1, pass ? "expired_ts" : NULL, &v, err, errlen);
			if (r < 0)
				return -1;
			if (r == 0)
				continue;
			if (nfound == sizeof found / sizeof found[0]) {
				seterr(err, errlen, "%s: too many keys", server);
				return -1;
			}
			found[nfound++] = v;
		}
		if (pass == 0)
			ncurrent = nfound;
	}

	/* only a current key may vouch for the document */
	int self_signed = 0;
	for (size_t i = 0; i < ncurrent && !self_signed; i++)
		self_signed = json_verify_object(d, t, server, found[i].key_id, found[i].pk) == PDU_OK;
	if (!self_signed) {
		seterr(err, errlen, "%s: not signed by any of its own ed25519 verify_keys", server);
		return -1;
	}
	if (notary) {
		int r = notary_signed(d, t, notary, lookup, arg, err, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < nfound; i++)
		keyring_put(kr, &found[i]);
	return (int)nfound;
}

int keyring_add_server_doc(struct keyring *kr, const char *json, size_t n,
                           char *err, size_t errlen)
{
	return keyring_add_server_doc_for(kr, json, n, NULL, err, errlen);
}

/* All or nothing per document, not per file: one bad document in a list
 * fails the load (a key file is operator input; say what is wrong). */
int keyring_load_file(struct keyring *kr, const char *path, char *err, size_t errlen)
{
	struct json_doc d = { 0 };
	size_t len;
	char *text = slurp(path, KEY_DOC_FILE_MAX, &len, err, errlen);
	int total = -1;

	if (text == NULL)
		return -1;
	if (json_parse(&d, text, len, JSON_MAX_DEPTH_DEFAULT) < 0) {
		seterr(err, errlen, "%s: %s at byte %u", path, json_err_str(d.err), d.err_off);
	} else if (d.tok[0].type == JSON_ARRAY) {
		char e[200];
		int i = 0;
		total = 0;
		for (int el = json_first(&d, 0); el >= 0; el = json_next_elem(&d, 0, el), i++) {
			int r = add_doc(kr, &d, el, NULL, NULL, NULL, NULL, e, sizeof e);
			if (r < 0) {
				seterr(err, errlen, "%s: document %d: %s", path, i, e);
				total = -1;
				break;
			}
			total += r;
		}
	} else {
		char e[200];
		total = add_doc(kr, &d, 0, NULL, NULL, NULL, NULL, e, sizeof e);
		if (total < 0)
			seterr(err, errlen, "%s: %s", path, e);
	}
	json_doc_free(&d);
	free(text);
	return total;
}

int keyring_add_server_doc_for(struct keyring *kr, const char *json, size_t n,
                               const char *server, char *err, size_t errlen)
{
	struct json_doc d = { 0 };
	int rc;

	if (json_parse(&d, json, n, JSON_MAX_DEPTH_DEFAULT) < 0) {
		seterr(err, errlen, "key document: %s at byte %u", json_err_str(d.err), d.err_off);
		rc = -1;
	} else {
		rc = add_doc(kr, &d, 0, server, NULL, NULL, NULL, err, errlen);
	}
	json_doc_free(&d);
	return rc;
}

/* {"server_keys":[doc, ...]}: every document naming server must pass
 * (self-signed, countersigned by the notary); documents naming others are
 * not looked at; at least one must name server. */
int keyring_add_notary_answer(struct keyring *kr, const char *json, size_t n,
                              const char *server, const char *notary,
                              keys_lookup_fn lookup, void *arg, char *err, size_t errlen)
{
	struct json_doc d = { 0 };
	struct keyring tmp;
	int rc = -1, found = 0;

	keyring_init(&tmp);
	if (json_parse(&d, json, n, JSON_MAX_DEPTH_DEFAULT) < 0) {
		seterr(err, errlen, "notary answer: %s at byte %u", json_err_str(d.err), d.err_off);
		goto out;
	}
	int a = d.tok[0].type == JSON_OBJECT ? json_obj_get(&d, 0, "server_keys") : -1;
	if (a < 0 || d.tok[a].type != JSON_ARRAY) {
		seterr(err, errlen, "notary answer from %s: no server_keys array", notary);
		goto out;
	}
	for (int el = json_first(&d, a); el >= 0; el = json_next_elem(&d, a, el)) {
		int sn = d.tok[el].type == JSON_OBJECT ? json_obj_get(&d, el, "server_name") : -1;
		if (sn < 0 || d.tok[sn].type != JSON_STRING || !json_str_eq(&d, sn, server))
			continue;
		found = 1;
		int r = add_doc(&tmp, &d, el, server, notary, lookup, arg, err, errlen);
		if (r < 0) {
			rc = r;
			goto out;
		}
	}
	if (!found) {
		seterr(err, errlen, "notary answer from %s: no document for %s", notary, server);
		goto out;
	}
	for (size_t i = 0; i < tmp.n; i++)
		keyring_put(kr, &tmp.k[i]);
	rc = (int)tmp.n;
out:
	keyring_free(&tmp);
	json_doc_free(&d);
	return rc;
}

/* --- this node's old keys (<signing_key>.old) ------------------------------ */

static int old_path(char *out, size_t cap, const char *signing_key_path)
{
	if (snprintf(out, cap, "%s.old", signing_key_path) >= (int)cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int signing_key_old_load(const char *signing_key_path, struct old_key **out, size_t *nout,
                         char *err, size_t errlen)
{
	char path[4096];
	size_t len, n = 0;
	struct old_key *v = NULL;

	*out = NULL;
	*nout = 0;
	if (old_path(path, sizeof path, signing_key_path) < 0) {
		seterr(err, errlen, "%s: path too long", signing_key_path);
		return -1;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;                 /* never rotated */
	char *text = slurp(path, KEY_DOC_FILE_MAX, &len, err, errlen);
	if (text == NULL)
		return -1;
	if (memchr(text, 0, len)) {
		seterr(err, errlen, "%s: NUL byte", path);
		goto bad;
	}
	int lineno = 0;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if (!line[0] || line[0] == '#')
			continue;
		char id[64], pk[64];
		long long ts;
		int used = 0;
		if (sscanf(line, "%63s %63s %lld%n", id, pk, &ts, &used) != 3 || line[used] != 0
		    || strncmp(id, ED25519_PREFIX, strlen(ED25519_PREFIX)) != 0
		    || !version_ok(id + strlen(ED25519_PREFIX), strlen(id) - strlen(ED25519_PREFIX))) {
			seterr(err, errlen, "%s:%d: expected \"ed25519:<version> <base64 key> <expired_ts>\"", path, lineno);
			goto bad;
		}
		struct old_key *nv = realloc(v, (n + 1) * sizeof *v);
		if (nv == NULL) {
			seterr(err, errlen, "%s: out of memory", path);
			goto bad;
		}
		v = nv;
		if (b64_decode(v[n].pk, 32, pk, strlen(pk)) != 32) {
			seterr(err, errlen, "%s:%d: the key is not base64 of 32 bytes", path, lineno);
			goto bad;
		}
		snprintf(v[n].key_id, sizeof v[n].key_id, "%s", id);
		v[n].expired_ts = ts;
		n++;
	}
	free(text);
	*out = v;
	*nout = n;
	return 0;
bad:
	free(text);
	free(v);
	return -1;
}

/* Durably replace path with data (the signing key's way: see
 * signing_key_save). */
static int write_durable(const char *path, const char *data, size_t n, mode_t mode);

int signing_key_old_save(const char *signing_key_path, const struct old_key *k, size_t n)
{
	char path[4096], pk[64];
	struct buf b;

	if (old_path(path, sizeof path, signing_key_path) < 0)
		return -1;
	buf_init(&b);
	buf_reserve(&b, 0);
	for (size_t i = 0; i < n; i++) {
		b64_encode(pk, k[i].pk, 32);
		buf_printf(&b, "%s %s %lld\n", k[i].key_id, pk, (long long)k[i].expired_ts);
	}
	if (b.data == NULL) {
		errno = ENOMEM;
		return -1;
	}
	int rc = write_durable(path, b.data, b.len, 0644);
	buf_free(&b);
	return rc;
}

int signing_key_rotate(const char *path, const char *version, int64_t now_ms,
                       struct signing_key *newk, char *err, size_t errlen)
{
	struct signing_key cur;
	struct old_key *old = NULL;
	size_t n = 0;

	if (signing_key_load(&cur, path, err, errlen) < 0)
		return -1;
	if (signing_key_old_load(path, &old, &n, err, errlen) < 0) {
		sodium_memzero(&cur, sizeof cur);
		return -1;
	}
	/* the new key's ID differs from the current one and from every old one */
	for (int tries = 0;; tries++) {
		int clash = 0;
		if (signing_key_generate(newk, version) < 0 || tries == 16) {
			seterr(err, errlen, version ? "bad key version" : "cannot make a new key ID");
			goto fail;
		}
		clash = strcmp(newk->key_id, cur.key_id) == 0;
		for (size_t i = 0; i < n && !clash; i++)
			clash = strcmp(newk->key_id, old[i].key_id) == 0;
		if (!clash)
			break;
		if (version) {
			seterr(err, errlen, "key ID %s was already used", newk->key_id);
			goto fail;
		}
	}
	/* the old key goes to <path>.old first: a crash before the new key
	 * is in place leaves the current key also listed as old, which
	 * signing_key_doc_old skips (and a second --rotate replaces) */
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(old[i].key_id, cur.key_id) != 0)
			old[j++] = old[i];
	n = j;
	struct old_key *nv = realloc(old, (n + 1) * sizeof *old);
	if (nv == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	old = nv;
	snprintf(old[n].key_id, sizeof old[n].key_id, "%s", cur.key_id);
	memcpy(old[n].pk, cur.pk, 32);
	old[n].expired_ts = now_ms;
	n++;
	if (signing_key_old_save(path, old, n) != 0) {
		seterr(err, errlen, "%s.old: %s; nothing changed", path, strerror(errno));
		goto fail;
	}
	int s = signing_key_save(newk, path);
	if (s == -1) {
		seterr(err, errlen, "%s: %s; the old key stays in use (also listed in %s.old)", path,
		       strerror(errno), path);
		goto fail;
	}
	free(old);
	sodium_memzero(&cur, sizeof cur);
	if (s == -2) {
		seterr(err, errlen, "%s written, but its directory could not be synced: %s", path, strerror(errno));
		return -2;
	}
	return 0;
fail:
	free(old);
	sodium_memzero(&cur, sizeof cur);
	sodium_memzero(newk, sizeof *newk);
	return -1;
}

int signing_key_doc(const struct signing_key *k, const char *server_name,
                   int64_t now_ms, int64_t valid_for_ms, struct buf *out)
{
	return signing_key_doc_old(k, server_name, now_ms, valid_for_ms, NULL, 0, out);
}

int signing_key_doc_old(const struct signing_key *k, const char *server_name,
                        int64_t now_ms, int64_t valid_for_ms,
                        const struct old_key *old, size_t nold, struct buf *out)
{
	struct buf text;
	char pk[64];
	int rc;

	buf_init(&text);
	buf_adds(&text, "{\"old_verify_keys\":{");
	int first = 1;
	for (size_t i = 0; i < nold; i++) {
		if (strcmp(old[i].key_id, k->key_id) == 0)
			continue;          /* a rotation cut short: still the current key */
		int dup = 0;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(old[j].key_id, old[i].key_id) == 0;
		if (dup)
			continue;
		b64_encode(pk, old[i].pk, 32);
		if (!first)
			buf_addc(&text, ',');
		first = 0;
		json_put_string(&text, old[i].key_id, strlen(old[i].key_id));
		buf_printf(&text, ":{\"expired_ts\":%lld,\"key\":\"%s\"}", (long long)old[i].expired_ts, pk);
	}
	b64_encode(pk, k->pk, sizeof k->pk);
	buf_adds(&text, "},\"server_name\":");
	json_put_string(&text, server_name, strlen(server_name));
	buf_printf(&text, ",\"valid_until_ts\":%lld,\"verify_keys\":{", (long long)(now_ms + valid_for_ms));
	json_put_string(&text, k->key_id, strlen(k->key_id));
	buf_printf(&text, ":{\"key\":\"%s\"}}}", pk);
	rc = text.data ? json_sign_object(text.data, text.len, server_name, k->key_id, k->sk, out) : -1;
	buf_free(&text);
	return rc;
}
