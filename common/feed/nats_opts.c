/* nats_opts.c: NATS client options, credentials and TLS (nats_opts.h). */
#include <stdio.h>
#include <string.h>
#include "feed/nats_opts.h"
#include "core/secretfile.h"

static const char *opt(const struct config *cfg, const char *sec, const char *key)
{
	const char *v = cfg_str(cfg, sec, key);
	return v && *v ? v : NULL;
}

void nats_sec_from_config(struct nats_sec *s, const struct config *cfg, const char *section)
{
	memset(s, 0, sizeof *s);
	s->user = opt(cfg, section, "nats_user");
	s->password_file = opt(cfg, section, "nats_password_file");
	s->ca_file = opt(cfg, section, "nats_ca_file");
	s->tls_name = opt(cfg, section, "nats_tls_name");
	s->cert_file = opt(cfg, section, "nats_cert_file");
	s->key_file = opt(cfg, section, "nats_key_file");
}

/* The password: the file's first line (core/secretfile: a file others can
 * read is refused). */
static int read_password(const char *path, char *pw, size_t pwlen, char *err, size_t errlen)
{
	size_t n = 0;
	if (secretfile_read("the NATS password file", path, pw, pwlen - 1, &n, err, errlen) < 0) return -1;
	pw[n] = 0;
	pw[strcspn(pw, "\r\n")] = 0;
	if (!*pw) { snprintf(err, errlen, "the NATS password file %s is empty", path); return -1; }
	return 0;
}

/* The host of a URL "scheme://[user@]host[:port]" into h. */
static void url_host(const char *url, char *h, size_t hlen)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *at = strchr(p, '@');
	if (at) p = at + 1;
	size_t n = p[0] == '[' ? strcspn(++p, "]") : strcspn(p, ":/");
	snprintf(h, hlen, "%.*s", (int)n, p);
}

int nats_opts_new(natsOptions **out, const char *urls, const char *client_name, long long timeout_ms,
                  const struct nats_sec *sec, char *err, size_t errlen)
{
	*out = NULL;
	if (!urls || !*urls) { snprintf(err, errlen, "no NATS server URL"); return -1; }
	char list[2048], *sv[16], *save = NULL;
	int ns = 0;
	snprintf(list, sizeof list, "%s", urls);
	for (char *t = strtok_r(list, ", ", &save); t && ns < 16; t = strtok_r(NULL, ", ", &save)) sv[ns++] = t;
	if (!ns) { snprintf(err, errlen, "no NATS server URL in \"%s\"", urls); return -1; }
	natsOptions *o = NULL;
	natsStatus st;
	const char *what = "options";
	if ((st = natsOptions_Create(&o)) != NATS_OK
	    || (st = natsOptions_SetServers(o, (const char **)sv, ns)) != NATS_OK
	    || (st = natsOptions_SetTimeout(o, timeout_ms)) != NATS_OK
	    || (st = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK
	    || (st = natsOptions_SetReconnectWait(o, 250)) != NATS_OK
	    || (st = natsOptions_SetName(o, client_name)) != NATS_OK)
		goto fail;
	if (sec && (sec->user || sec->password_file)) {
		char pw[512] = "";
		if (!sec->user || !sec->password_file) {
			snprintf(err, errlen, "NATS credentials: nats_user and nats_password_file go together");
			natsOptions_Destroy(o);
			return -1;
		}
		if (read_password(sec->password_file, pw, sizeof pw, err, errlen) < 0) { natsOptions_Destroy(o); return -1; }
		what = "user/password";
		st = natsOptions_SetUserInfo(o, sec->user, pw);
		memset(pw, 0, sizeof pw);
		if (st != NATS_OK) goto fail;
	}
	if (sec && (sec->cert_file || sec->key_file) && !sec->ca_file) {
		snprintf(err, errlen, "NATS TLS: a client certificate needs nats_ca_file (TLS is on only with a CA to check the server)");
		natsOptions_Destroy(o);
		return -1;
	}
	if (sec && sec->ca_file) {
		char host[256];
		if (sec->tls_name) snprintf(host, sizeof host, "%s", sec->tls_name);
		else url_host(sv[0], host, sizeof host);
		what = "TLS";
		if ((st = natsOptions_SetSecure(o, true)) != NATS_OK) goto fail;
		what = sec->ca_file;
		if ((st = natsOptions_LoadCATrustedCertificates(o, sec->ca_file)) != NATS_OK) goto fail;
		what = "TLS name";
		if ((st = natsOptions_SetExpectedHostname(o, host)) != NATS_OK) goto fail;
		if (sec->cert_file || sec->key_file) {
			what = "client certificate";
			if (!sec->cert_file || !sec->key_file) {
				snprintf(err, errlen, "NATS TLS: nats_cert_file and nats_key_file go together");
				natsOptions_Destroy(o);
				return -1;
			}
			if ((st = natsOptions_LoadCertificatesChain(o, sec->cert_file, sec->key_file)) != NATS_OK) goto fail;
		}
	}
	*out = o;
	return 0;
fail:;
	const char *why = nats_GetLastError(NULL);
	snprintf(err, errlen, "NATS %s: %s%s%s", what, natsStatus_GetText(st), why && *why ? ": " : "", why ? why : "");
	natsOptions_Destroy(o);
	return -1;
}
