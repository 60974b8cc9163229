/* test_fleet_mac.c: feed/fleet_mac (and core/secretfile) on real files: the
 * fleet key from [fleet] secret_file or from the signing key, the feed MAC
 * and sealed KV values, each refusal. The MAC's bytes are checked against
 * an independent implementation in fleet_trust.sh (Python hashlib). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "feed/fleet_mac.h"
#include "matrix/keys.h"
#include "../lib/tap.h"

static char dir[64];

static void put(const char *name, const char *text, int mode)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	chmod(p, (mode_t)mode);
}

/* Load the key of a config whose [fleet] section says extra. */
static int key_of(struct fleet_key *k, const char *extra, char *err, size_t errlen)
{
	char conf[4096], p[128];
	snprintf(conf, sizeof conf, "[node]\nsigning_key = %s/signing.key\n[fleet]\n%s\n", dir, extra);
	put("c.conf", conf, 0600);
	snprintf(p, sizeof p, "%s/c.conf", dir);
	struct config c;
	if (config_load(&c, p, err, errlen) < 0) return -2;
	int rc = fleet_key_load(k, &c, err, errlen);
	config_free(&c);
	return rc;
}

int main(void)
{
	char err[512], p[128], line[256];
	snprintf(dir, sizeof dir, "/tmp/fp-test-fleetmac.XXXXXX");
	if (!mkdtemp(dir)) return 1;
	struct signing_key sk, sk2;
	signing_key_generate(&sk, "a");
	snprintf(p, sizeof p, "%s/signing.key", dir);
	TAP_OK(signing_key_save(&sk, p) == 0, "a signing key");

	struct fleet_key k1, k2, k3, ks, ks2;
	TAP_OK(key_of(&k1, "", err, sizeof err) == 0, "the fleet key from the signing key: %s", err);
	TAP_OK(key_of(&k2, "", err, sizeof err) == 0 && !memcmp(k1.k, k2.k, 32), "the same key twice");
	TAP_OK(memcmp(k1.k, sk.seed, 32) != 0, "the fleet key is not the signing seed itself");
	signing_key_generate(&sk2, "b");
	TAP_OK(signing_key_save(&sk2, p) == 0 && key_of(&k3, "", err, sizeof err) == 0
	       && memcmp(k1.k, k3.k, 32) != 0, "another signing key, another fleet key");

	put("secret", "a shared fleet secret, 32 bytes.", 0600);
	snprintf(line, sizeof line, "secret_file = %s/secret", dir);
	TAP_OK(key_of(&ks, line, err, sizeof err) == 0, "the fleet key from secret_file: %s", err);
	TAP_OK(memcmp(ks.k, k3.k, 32) != 0, "... not the one from the signing key");
	put("secret", "a shared fleet secret, 32 bytes.", 0644);
	TAP_OK(key_of(&ks2, line, err, sizeof err) == -1 && strstr(err, "readable by others"),
	       "a secret file others can read is refused: %s", err);
	put("secret", "too short", 0600);
	TAP_OK(key_of(&ks2, line, err, sizeof err) == -1 && strstr(err, "shorter than"),
	       "a secret under 16 bytes is refused: %s", err);
	snprintf(line, sizeof line, "secret_file = %s/none", dir);
	TAP_OK(key_of(&ks2, line, err, sizeof err) == -1 && strstr(err, "No such file"),
	       "a missing secret file is refused: %s", err);
	char big[5000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	put("big", big, 0600);
	snprintf(line, sizeof line, "secret_file = %s/big", dir);
	TAP_OK(key_of(&ks2, line, err, sizeof err) == -1 && strstr(err, "larger than"),
	       "a secret over 4 KiB is refused: %s", err);

	/* The feed MAC */
	char m[FLEET_MAC_LEN + 1];
	const char body[] = "{\"control_version\":0,\"event_id\":\"$e\"}";
	fleet_mac(&k1, "feed", "$e", body, strlen(body), m);
	TAP_OK(strlen(m) == FLEET_MAC_LEN, "a MAC is %d characters", FLEET_MAC_LEN);
	TAP_OK(fleet_mac_ok(&k1, "feed", "$e", body, strlen(body), m), "it verifies");
	TAP_OK(!fleet_mac_ok(&k3, "feed", "$e", body, strlen(body), m), "not under another key");
	TAP_OK(!fleet_mac_ok(&k1, "feed", "$f", body, strlen(body), m), "not for another message ID");
	TAP_OK(!fleet_mac_ok(&k1, "feed", "$e", body, strlen(body) - 1, m), "not for other bytes");
	TAP_OK(!fleet_mac_ok(&k1, "kv", "$e", body, strlen(body), m), "not under another label");
	TAP_OK(!fleet_mac_ok(&k1, "feed", "$e", body, strlen(body), NULL) &&
	       !fleet_mac_ok(&k1, "feed", "$e", body, strlen(body), "short"), "none or a short one: refused");

	/* Sealed KV values */
	char sealed[256], v[64];
	fleet_kv_seal(&k1, "cursor.p", "21", sealed, sizeof sealed);
	TAP_OK(!strncmp(sealed, "21 mac:", 7), "sealed: \"21 mac:...\" (%s)", sealed);
	TAP_OK(fleet_kv_open(&k1, "cursor.p", sealed, v, sizeof v) == 0 && !strcmp(v, "21"), "opens to 21");
	TAP_OK(fleet_kv_open(&k1, "cursor.q", sealed, v, sizeof v) == -1, "not under another key name (no replay)");
	TAP_OK(fleet_kv_open(&k3, "cursor.p", sealed, v, sizeof v) == -1, "not under another fleet key");
	sealed[0] = '9';
	TAP_OK(fleet_kv_open(&k1, "cursor.p", sealed, v, sizeof v) == -1, "a changed value: refused");
	TAP_OK(fleet_kv_open(&k1, "cursor.p", "15", v, sizeof v) == -1 &&
	       fleet_kv_open(&k1, "cursor.p", NULL, v, sizeof v) == -1, "unsealed or absent: refused");
	fleet_kv_seal(&k1, "ident.p", "NODEID p.test:8448", sealed, sizeof sealed);
	TAP_OK(fleet_kv_open(&k1, "ident.p", sealed, v, sizeof v) == 0 && !strcmp(v, "NODEID p.test:8448"),
	       "a value with spaces opens whole");
	TAP_OK(fleet_kv_open(&k1, "ident.p", sealed, v, 5) == -1, "a value longer than the buffer: refused");

	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
	return tap_done();
}
