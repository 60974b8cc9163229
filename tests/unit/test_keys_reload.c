/* test_keys_reload.c: signing_key_reload, what the stages run at SIGHUP:
 * all or nothing. A good new key replaces the one held (1); the same key
 * again changes nothing (0); a missing, empty, garbage or truncated file,
 * or another key under the held key ID, leaves the held key byte for byte
 * as it was (-1, with the reason). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../lib/tap.h"
#include "matrix/keys.h"

static char dir[] = "/tmp/fp_test_keys_reload.XXXXXX";
static char path[300];

static void write_file(const char *s)
{
	FILE *f = fopen(path, "w");
	if (!f) { perror(path); exit(2); }
	fputs(s, f);
	fclose(f);
}

static int same_key(const struct signing_key *x, const struct signing_key *y)
{
	return !strcmp(x->key_id, y->key_id) && !memcmp(x->seed, y->seed, 32) &&
	       !memcmp(x->pk, y->pk, 32) && !memcmp(x->sk, y->sk, 64);
}

/* A bad file at path: the held key stays exactly as it was. */
static void bad(struct signing_key *held, const char *content, const char *what, const char *reason)
{
	struct signing_key before = *held;
	char err[320] = "";
	if (content) write_file(content);      /* NULL: the file as it is */
	int r = signing_key_reload(held, path, err, sizeof err);
	TAP_OK(r == -1, "%s: refused (%d)", what, r);
	TAP_OK(memcmp(&before, held, sizeof before) == 0, "%s: the held key is untouched", what);
	TAP_OK(strstr(err, reason) != NULL, "%s: says why: %s", what, err);
}

int main(void)
{
	struct signing_key a, b, held, other;
	char err[320];
	if (sodium_init() < 0 || !mkdtemp(dir)) return 2;
	snprintf(path, sizeof path, "%s/signing.key", dir);
	signing_key_generate(&a, "a1");
	signing_key_generate(&b, "b2");
	TAP_OK(signing_key_save(&a, path) == 0, "key a saved");
	TAP_OK(signing_key_load(&held, path, err, sizeof err) == 0, "key a loaded");

	TAP_OK(signing_key_reload(&held, path, err, sizeof err) == 0, "the same key again: 0, nothing changed");
	TAP_OK(same_key(&held, &a), "still key a");

	unlink(path);
	bad(&held, NULL, "a missing file", "No such file");
	bad(&held, "", "an empty file", "expected \"ed25519 <version> <base64 seed>\"");
	bad(&held, "ed25519 a1 notbase64!!\n", "a seed that is not base64", "not base64 of 32 bytes");
	bad(&held, "ed25519 a1 AAAA\n", "a short seed", "not base64 of 32 bytes");
	bad(&held, "rsa a1 AAAA\n", "another algorithm", "expected");
	bad(&held, "ed25519 a-1 AAAA\n", "a bad version", "key version");
	signing_key_generate(&other, "a1");
	TAP_OK(signing_key_save(&other, path) == 0, "another key under ID ed25519:a1 saved");
	bad(&held, NULL, "another key under the held key ID", "another key under the same key ID ed25519:a1");

	TAP_OK(signing_key_save(&b, path) == 0, "key b saved");
	TAP_OK(signing_key_reload(&held, path, err, sizeof err) == 1, "a good new key: 1");
	TAP_OK(same_key(&held, &b), "the held key is now key b (ID, seed, pair)");
	TAP_OK(!strcmp(held.key_id, "ed25519:b2"), "key ID ed25519:b2");
	TAP_OK(signing_key_reload(&held, path, err, sizeof err) == 0, "b again: 0");
	/* A file with a second line (Synapse keeps older keys below): the first line signs. */
	write_file("ed25519 a1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nrubbish\n");
	TAP_OK(signing_key_reload(&held, path, err, sizeof err) == 1, "a key file with a second line: its first line");
	TAP_OK(!strcmp(held.key_id, "ed25519:a1"), "now ed25519:a1 (%s)", held.key_id);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
