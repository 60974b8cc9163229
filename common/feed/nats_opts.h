/* nats_opts.h: the one place a fedpipe NATS client's options are built
 * (the feed sink and source, the fleet's KV buckets, the claims): the
 * server list (comma-separated URLs, each a seed of one cluster), a bounded
 * timeout, endless reconnects, and how the connection proves itself and
 * checks the server:
 *   user + password_file  NATS user/password; the file's first line is the
 *                         password, and a file others can read is refused;
 *   ca_file               TLS on: every server's chain must lead to this CA
 *                         and its certificate must carry tls_name (default:
 *                         the first URL's host), since libnats checks no
 *                         name unless told one;
 *   cert_file + key_file  a client certificate (mutual TLS).
 * The same keys exist in [feed] (nats_*) and [fleet] (nats_*). */
#ifndef FP_NATS_OPTS_H
#define FP_NATS_OPTS_H
#include <stddef.h>
#include <nats/nats.h>
#include "core/config.h"

struct nats_sec {
	const char *user, *password_file;
	const char *ca_file, *tls_name, *cert_file, *key_file;
};

/* s := section's nats_user, nats_password_file, nats_ca_file,
 * nats_tls_name, nats_cert_file, nats_key_file (empty: unset). */
void nats_sec_from_config(struct nats_sec *s, const struct config *cfg, const char *section);
/* *out := new options for urls (sec may be NULL: no credentials, no TLS).
 * 0, or -1 with a clear message naming what failed (*out NULL). */
int  nats_opts_new(natsOptions **out, const char *urls, const char *client_name, long long timeout_ms,
                   const struct nats_sec *sec, char *err, size_t errlen);

#endif
