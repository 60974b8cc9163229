/* served_tls.c: HTTPS for served ([node] tls_cert and tls_key; both empty:
 * plain HTTP). One SSL_CTX (TLS 1.2 at least); each accepted connection
 * gets an SSL from the current one through libevent's OpenSSL bufferevent
 * (made in served_conn.c's bevcb, so the connection gate sees every TLS
 * connection as it sees a plain one). SIGHUP reads the pair again: a pair
 * that does not load (missing file, key not matching the certificate)
 * keeps the one in use and says why; connections already open keep theirs
 * (an SSL holds a reference to its SSL_CTX). */
#include "served.h"
#include "core/log.h"
#include <string.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

static void ssl_errstr(char *out, size_t n)
{
	unsigned long e = ERR_get_error();
	if (!e) { snprintf(out, n, "unknown OpenSSL error"); return; }
	ERR_error_string_n(e, out, n);
	ERR_clear_error();
}

/* A context for cert and key, or NULL with the reason in err. */
static SSL_CTX *ctx_load(const char *cert, const char *key, char *err, size_t n)
{
	char e[256];
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!c) { ssl_errstr(e, sizeof e); snprintf(err, n, "SSL_CTX_new: %s", e); return NULL; }
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
		ssl_errstr(e, sizeof e);
		snprintf(err, n, "tls_cert %s: %s", cert, e);
	} else if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
		ssl_errstr(e, sizeof e);
		snprintf(err, n, "tls_key %s: %s", key, e);
	} else if (SSL_CTX_check_private_key(c) != 1) {
		ssl_errstr(e, sizeof e);
		snprintf(err, n, "tls_key %s does not match tls_cert %s: %s", key, cert, e);
	} else {
		return c;
	}
	SSL_CTX_free(c);
	return NULL;
}

static int tls_wanted(struct served *s, const char **cert, const char **key)
{
	*cert = cfg_str(&s->d->cfg, "node", "tls_cert");
	*key = cfg_str(&s->d->cfg, "node", "tls_key");
	return **cert || **key;
}

int tls_init(struct served *s)
{
	const char *cert, *key;
	s->ssl_ctx = NULL;
	if (!tls_wanted(s, &cert, &key)) return 0;
	if (!*cert || !*key) {
		log_err("[node] tls_cert and tls_key go together: set both (HTTPS) or neither (HTTP)");
		return EXIT_CONFIG;
	}
	char err[600];
	SSL_CTX *c = ctx_load(cert, key, err, sizeof err);
	if (!c) { log_err("cannot set up TLS: %s", err); return EXIT_CONFIG; }
	s->ssl_ctx = c;
	log_info("TLS: certificate %s, TLS 1.2 or later", cert);
	return 0;
}

void tls_reload(struct served *s)
{
	const char *cert, *key;
	int want = tls_wanted(s, &cert, &key);
	if (!s->ssl_ctx) {
		if (want) log_warnx("[node] tls_cert/tls_key set: HTTPS takes effect at restart");
		return;
	}
	if (!want) {
		log_warnx("[node] tls_cert/tls_key removed: plain HTTP takes effect at restart; "
		          "keeping the certificate in use");
		return;
	}
	char err[600];
	SSL_CTX *c = *cert && *key ? ctx_load(cert, key, err, sizeof err) : NULL;
	if (!c) {
		if (!*cert || !*key) snprintf(err, sizeof err, "tls_cert and tls_key go together");
		log_warnx("TLS reload failed, keeping the certificate in use: %s", err);
		return;
	}
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = c;
	log_info("TLS: reloaded certificate %s and its key", cert);
}

void tls_fini(struct served *s)
{
	if (s->ssl_ctx) SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = NULL;
}

struct bufferevent *tls_bev(struct served *s, struct event_base *base)
{
	if (!s->ssl_ctx) return bufferevent_socket_new(base, -1, 0);
	SSL *ssl = SSL_new(s->ssl_ctx);
	if (!ssl) { ERR_clear_error(); return NULL; }
	struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl,
	                                                         BUFFEREVENT_SSL_ACCEPTING,
	                                                         BEV_OPT_CLOSE_ON_FREE);
	if (!bev) { SSL_free(ssl); return NULL; }
	/* A peer that vanishes without close_notify is not an error here. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}
