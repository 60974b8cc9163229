/* fleet_mac.c: MACs between fleet members (fleet_mac.h). */
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include "feed/fleet_mac.h"
#include "core/secretfile.h"
#include "matrix/b64.h"
#include "matrix/keys.h"

#define SECRET_MAX 4096
#define SECRET_MIN 16

static int load_secret(struct fleet_key *k, const char *path, char *err, size_t errlen)
{
	unsigned char buf[SECRET_MAX];
	size_t n = 0;
	if (secretfile_read("[fleet] secret_file", path, buf, sizeof buf, &n, err, errlen) < 0) return -1;
	if (n < SECRET_MIN) {
		snprintf(err, errlen, "[fleet] secret_file %s: shorter than %d bytes", path, SECRET_MIN);
		return -1;
	}
	crypto_generichash(k->k, sizeof k->k, buf, n, (const unsigned char *)"fedpipe fleet secret v1", 23);
	sodium_memzero(buf, sizeof buf);
	return 0;
}

int fleet_key_load(struct fleet_key *k, const struct config *cfg, char *err, size_t errlen)
{
	if (sodium_init() < 0) { snprintf(err, errlen, "libsodium: init failed"); return -1; }
	const char *sf = cfg_str(cfg, "fleet", "secret_file");
	if (sf && *sf) return load_secret(k, sf, err, errlen);
	const char *path = cfg_str(cfg, "node", "signing_key");
	struct signing_key sk;
	char why[256];
	if (signing_key_load(&sk, path, why, sizeof why) < 0) {
		snprintf(err, errlen, "the fleet key comes from the signing key ([fleet] secret_file unset): %s", why);
		return -1;
	}
	static const char label[] = "fedpipe fleet mac v1";
	crypto_generichash(k->k, sizeof k->k, (const unsigned char *)label, sizeof label - 1, sk.seed, sizeof sk.seed);
	sodium_memzero(&sk, sizeof sk);
	return 0;
}

static void mac_raw(const struct fleet_key *k, const char *label, const char *a, const void *b, size_t blen,
                    unsigned char out[32])
{
	crypto_generichash_state h;
	unsigned char z = 0;
	crypto_generichash_init(&h, k->k, sizeof k->k, 32);
	/* label \0 a \0 b: label and a hold no NUL, so the split is unique */
	crypto_generichash_update(&h, (const unsigned char *)label, strlen(label));
	crypto_generichash_update(&h, &z, 1);
	crypto_generichash_update(&h, (const unsigned char *)a, strlen(a));
	crypto_generichash_update(&h, &z, 1);
	crypto_generichash_update(&h, b, blen);
	crypto_generichash_final(&h, out, 32);
}

void fleet_mac(const struct fleet_key *k, const char *label, const char *a, const void *b, size_t blen,
               char out[FLEET_MAC_LEN + 1])
{
	unsigned char m[32];
	mac_raw(k, label, a, b, blen, m);
	b64_encode(out, m, sizeof m);
}

int fleet_mac_ok(const struct fleet_key *k, const char *label, const char *a, const void *b, size_t blen,
                 const char *mac)
{
	unsigned char m[32];
	char want[FLEET_MAC_LEN + 1];
	if (!mac || strlen(mac) != FLEET_MAC_LEN) return 0;
	mac_raw(k, label, a, b, blen, m);
	b64_encode(want, m, sizeof m);
	return sodium_memcmp(want, mac, FLEET_MAC_LEN) == 0;
}

void fleet_kv_seal(const struct fleet_key *k, const char *key, const char *value, char *out, size_t outlen)
{
	char m[FLEET_MAC_LEN + 1];
	fleet_mac(k, "kv", key, value, strlen(value), m);
	snprintf(out, outlen, "%s mac:%s", value, m);
}

int fleet_kv_open(const struct fleet_key *k, const char *key, const char *sealed, char *value, size_t vlen)
{
	const char *sp = sealed ? strrchr(sealed, ' ') : NULL;
	if (!sp || strncmp(sp + 1, "mac:", 4) != 0) return -1;
	size_t n = (size_t)(sp - sealed);
	if (n >= vlen) return -1;
	if (!fleet_mac_ok(k, "kv", key, sealed, n, sp + 5)) return -1;
	memcpy(value, sealed, n);
	value[n] = 0;
	return 0;
}
