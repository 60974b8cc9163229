/* config.c: the parameter tables gathered, the INI file read with libinih,
 * and typed accessors (see config.h). A value is a string until asked for;
 * malformed numbers are reported when the file is loaded, not when used. */
#include "core/config.h"
#include "core/iprange.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "matrix/servername.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct param *const *all_tables(void)
{
	static const struct param *const t[] = {
		params_node, params_validated, params_purgatoryd, params_fetchd,
		params_syncd, params_served, params_feedpump, params_fleet, NULL
	};
	return t;
}

long long cfg_parse_ms(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0) return -1;
	while (*end == ' ') end++;
	if (*end == 0 || !strcmp(end, "s")) return (long long)(v * 1000);
	if (!strcmp(end, "ms")) return (long long)v;
	if (!strcmp(end, "m") || !strcmp(end, "min")) return (long long)(v * 60000);
	if (!strcmp(end, "h")) return (long long)(v * 3600000);
	if (!strcmp(end, "d")) return (long long)(v * 86400000);
	return -1;
}

long long cfg_parse_size(const char *s)
{
	char *end;
	if (!isdigit((unsigned char)s[0])) return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || errno || v < 0) return -1;
	int shift = 0;
	switch (*end) {
	case 0: return v;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: return -1;
	}
	if (v > (LLONG_MAX >> shift)) return -1;
	v <<= shift;
	return end[1] == 0 || (end[1] == 'B' && end[2] == 0) || (end[1] == 'i' && end[2] == 'B' && end[3] == 0) ? v : -1;
}

/* A decimal integer, digits only (no sign, no space, no 0x, no exponent). */
static int parse_int(const char *s, long long *out)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18) return -1;
	*out = strtoll(s, NULL, 10);
	return 0;
}

const char *param_type_name(enum param_type t)
{
	switch (t) {
	case PT_STRING: return "string";
	case PT_PATH: return "path";
	case PT_BOOL: return "boolean";
	case PT_INT: return "integer";
	case PT_SIZE: return "size";
	case PT_DURATION: return "duration";
	case PT_ENUM: return "enum";
	case PT_LIST: return "list";
	case PT_NAME: return "server name";
	case PT_NAMES: return "server names";
	case PT_CIDRS: return "IP ranges";
	}
	return "?";
}

void param_accepted(const struct param *p, char *out, size_t cap)
{
	switch (p->type) {
	case PT_BOOL: snprintf(out, cap, "yes or no (true/false, on/off, 1/0)"); break;
	case PT_INT: snprintf(out, cap, "an integer from %s to %s", p->min, p->max); break;
	case PT_SIZE: snprintf(out, cap, "a size like 64K, 4M, 8G from %s to %s", p->min, p->max); break;
	case PT_DURATION: snprintf(out, cap, "a duration like 500ms, 20s, 30m, 24h, 7d from %s to %s", p->min, p->max); break;
	case PT_ENUM: snprintf(out, cap, "one of %s", p->allowed); break;
	case PT_LIST:
		if (p->allowed) snprintf(out, cap, "a list (comma or space separated) of %s", p->allowed);
		else snprintf(out, cap, "a list (comma or space separated)");
		break;
	case PT_PATH: snprintf(out, cap, "a path"); break;
	case PT_NAME: snprintf(out, cap, "a server name (host, IPv4 or [IPv6], optional :port)%s", *p->def ? "" : " or empty"); break;
	case PT_NAMES: snprintf(out, cap, "a list of server names (host, IPv4 or [IPv6], optional :port)"); break;
	case PT_CIDRS: snprintf(out, cap, "a list of IP ranges (10.0.0.0/8, 192.0.2.1, fc00::/7, ::ffff:a.b.c.d/n; "
	                        "comma or space separated, may be empty)"); break;
	default: snprintf(out, cap, "text"); break;
	}
}

static int is_bool_word(const char *v)
{
	static const char *const w[] = { "yes", "no", "true", "false", "on", "off", "1", "0", NULL };
	for (int i = 0; w[i]; i++) if (!strcmp(v, w[i])) return 1;
	return 0;
}

/* Is the n bytes at s one of the '|'-separated words of allowed? */
static int allowed_has(const char *allowed, const char *s, size_t n)
{
	const char *a = allowed;
	while (*a) {
		const char *e = strchr(a, '|');
		size_t l = e ? (size_t)(e - a) : strlen(a);
		if (l == n && !memcmp(a, s, n)) return 1;
		if (!e) break;
		a = e + 1;
	}
	return 0;
}

int param_check(const struct param *p, const char *v, char *err, size_t errlen)
{
	char acc[200];
	int bad = 0;
	for (const unsigned char *q = (const unsigned char *)v; *q; q++)
		if (*q < 0x20 || *q == 0x7f) {
			snprintf(err, errlen, "[%s] %s = (a value holding byte 0x%02x at offset %d) is not accepted: "
			         "no value may hold control characters", p->section, p->key, *q, (int)(q - (const unsigned char *)v));
			return -1;
		}
	long long x = 0, lo = 0, hi = 0;
	switch (p->type) {
	case PT_BOOL: bad = !is_bool_word(v); break;
	case PT_INT:
		bad = parse_int(v, &x) < 0;
		if (!bad) { parse_int(p->min, &lo); parse_int(p->max, &hi); bad = x < lo || x > hi; }
		break;
	case PT_SIZE:
		x = cfg_parse_size(v);
		bad = x < 0 || x < cfg_parse_size(p->min) || x > cfg_parse_size(p->max);
		break;
	case PT_DURATION:
		x = cfg_parse_ms(v);
		bad = x < 0 || x < cfg_parse_ms(p->min) || x > cfg_parse_ms(p->max);
		break;
	case PT_ENUM: bad = !allowed_has(p->allowed, v, strlen(v)); break;
	case PT_LIST:
		if (p->allowed) {
			const char *q = v;
			while (*q && !bad) {
				while (*q == ',' || *q == ' ' || *q == '\t') q++;
				const char *st = q;
				while (*q && *q != ',' && *q != ' ' && *q != '\t') q++;
				if (q > st && !allowed_has(p->allowed, st, (size_t)(q - st))) bad = 1;
			}
		}
		break;
	case PT_NAME: bad = !(!*v && !*p->def) && !server_name_valid(v, strlen(v)); break;  /* empty default: may stay unset */
	case PT_NAMES: {
		const char *q = v;
		while (*q && !bad) {
			while (*q == ',' || *q == ' ' || *q == '\t') q++;
			const char *st = q;
			while (*q && *q != ',' && *q != ' ' && *q != '\t') q++;
			if (q > st && !server_name_valid(st, (size_t)(q - st))) bad = 1;
		}
		break;
	}
	case PT_CIDRS: {
		struct iprange_list l;
		char why[200];
		if (iprange_list_parse(&l, v, why, sizeof why) == 0) { iprange_list_free(&l); return 0; }
		snprintf(err, errlen, "[%s] %s = '%.60s%s' is not accepted: %s (expected a list of IP ranges "
		         "like 10.0.0.0/8, 192.0.2.1, fc00::/7)", p->section, p->key, v, strlen(v) > 60 ? "..." : "", why);
		return -1;
	}
	default: break;
	}
	if (!bad) return 0;
	param_accepted(p, acc, sizeof(acc));
	snprintf(err, errlen, "[%s] %s = '%s' is not %s", p->section, p->key, v, acc);
	return -1;
}

static int find(const struct config *c, const char *section, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->p[i]->section, section) && !strcmp(c->p[i]->key, key))
			return (int)i;
	return -1;
}

struct load_ctx { struct config *c; char *err; size_t errlen; int failed; };

static void copy_field(char *dst, size_t cap, const char *v, struct load_ctx *lc, const char *what)
{
	if (strlen(v) >= cap) {
		snprintf(lc->err, lc->errlen, "%s: value too long (max %zu bytes)", what, cap - 1);
		lc->failed = 1;
		return;
	}
	memcpy(dst, v, strlen(v) + 1);
}

/* Debian's libinih only knows ';' inline comments; our documented example
 * configurations put '#' comments after whitespace too, so strip those as
 * well (values never contain " #"). */
static const char *strip_comment(const char *value, char *tmp, size_t cap)
{
	const char *h = value;
	while ((h = strchr(h, '#')) != NULL) {
		if (h == value || h[-1] == ' ' || h[-1] == '\t') break;
		h++;
	}
	if (h == NULL) return value;
	size_t n = (size_t)(h - value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t')) n--;
	if (n >= cap) n = cap - 1;
	memcpy(tmp, value, n);
	tmp[n] = 0;
	return tmp;
}

static int on_kv(void *user, const char *section, const char *key, const char *value_raw)
{
	struct load_ctx *lc = user;
	char tmp[1024];
	const char *value = strip_comment(value_raw, tmp, sizeof(tmp));
	struct config *c = lc->c;
	if (lc->failed) return 0;
	if (!strncmp(section, "peer ", 5) || !strncmp(section, "server ", 7)) {
		int peer = section[1] == 'e' && section[2] == 'e';
		const char *name = section + (peer ? 5 : 7);
		while (*name == ' ') name++;
		if (!*name) { snprintf(lc->err, lc->errlen, "[%s]: missing name", section); return 0; }
		if (peer) {
			struct peer_cfg *p = NULL;
			for (size_t i = 0; i < c->npeers; i++) if (!strcmp(c->peers[i].name, name)) p = &c->peers[i];
			if (!p) {
				c->peers = xreallocarray(c->peers, c->npeers + 1, sizeof(*p));
				p = &c->peers[c->npeers++];
				memset(p, 0, sizeof(*p));
				strcpy(p->mode, "sync");
				copy_field(p->name, sizeof(p->name), name, lc, "peer name");
			}
			if (!strcmp(key, "endpoint")) {
				if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8)) {
					snprintf(lc->err, lc->errlen, "[peer %s] endpoint = '%s' is not an http:// or https:// URL", name, value);
					return 0;
				}
				copy_field(p->endpoint, sizeof(p->endpoint), value, lc, key);
			} else if (!strcmp(key, "key")) copy_field(p->key, sizeof(p->key), value, lc, key);
			else if (!strcmp(key, "ca")) copy_field(p->ca, sizeof(p->ca), value, lc, key);
			else if (!strcmp(key, "server_name")) {
				if (!server_name_valid(value, strlen(value))) {
					snprintf(lc->err, lc->errlen, "[peer %s] server_name = '%s' is not a server name "
					         "(host, IPv4 or [IPv6], optional :port)", name, value);
					return 0;
				}
				copy_field(p->server_name, sizeof(p->server_name), value, lc, key);
			}
			else if (!strcmp(key, "mode")) {
				if (strcmp(value, "sync") && strcmp(value, "paused")) {
					snprintf(lc->err, lc->errlen, "[peer %s] mode must be sync or paused, not '%s'", name, value);
					return 0;
				}
				copy_field(p->mode, sizeof(p->mode), value, lc, key);
			} else {
				snprintf(lc->err, lc->errlen, "[peer %s]: unknown key '%s' (known: %s)", name, key, PEER_KEYS);
				return 0;
			}
		} else {
			if (!server_name_valid(name, strlen(name))) {
				snprintf(lc->err, lc->errlen, "[server %s]: '%s' is not a server name "
				         "(host, IPv4 or [IPv6], optional :port)", name, name);
				return 0;
			}
			struct server_cfg *s = NULL;
			for (size_t i = 0; i < c->nservers; i++) if (!strcmp(c->servers[i].name, name)) s = &c->servers[i];
			if (!s) {
				c->servers = xreallocarray(c->servers, c->nservers + 1, sizeof(*s));
				s = &c->servers[c->nservers++];
				memset(s, 0, sizeof(*s));
				copy_field(s->name, sizeof(s->name), name, lc, "server name");
			}
			if (!strcmp(key, "endpoint")) copy_field(s->endpoint, sizeof(s->endpoint), value, lc, key);
			else if (!strcmp(key, "key")) copy_field(s->key, sizeof(s->key), value, lc, key);
			else if (!strcmp(key, "ca")) copy_field(s->ca, sizeof(s->ca), value, lc, key);
			else {
				snprintf(lc->err, lc->errlen, "[server %s]: unknown key '%s' (known: %s)", name, key, SERVER_KEYS);
				return 0;
			}
		}
		return !lc->failed;
	}
	int i = find(c, section, key);
	if (i < 0) {
		int known_section = 0;
		for (size_t j = 0; j < c->n; j++) if (!strcmp(c->p[j]->section, section)) known_section = 1;
		if (known_section)
			snprintf(lc->err, lc->errlen, "[%s]: unknown key '%s' (fedctl config lists every key)", section, key);
		else
			snprintf(lc->err, lc->errlen, "unknown section [%s]", section);
		return 0;
	}
	if (param_check(c->p[i], value, lc->err, lc->errlen) < 0) return 0;
	if (c->p[i]->type == PT_CIDRS && c->set[i]) {
		/* a continuation line (or the key again): the list goes on */
		size_t ol = strlen(c->val[i]), nl = strlen(value);
		c->val[i] = xrealloc(c->val[i], ol + nl + 2);
		c->val[i][ol] = ' ';
		memcpy(c->val[i] + ol + 1, value, nl + 1);
		return 1;
	}
	free(c->val[i]);
	c->val[i] = xstrdup(value);
	c->set[i] = 1;
	return 1;
}

/* Relations between parameters, checked once everything is read. */
static int check_values(struct config *c, char *err, size_t errlen)
{
	static const struct { const char *section, *lo, *hi; } order[] = {
		{ "purgatoryd", "backoff_min", "backoff_max" },
		{ "feedpump", "backoff_min", "backoff_max" },
		{ NULL, NULL, NULL }
	};
	for (int i = 0; order[i].section; i++) {
		long long lo = cfg_ms(c, order[i].section, order[i].lo), hi = cfg_ms(c, order[i].section, order[i].hi);
		if (hi < lo) {
			snprintf(err, errlen, "%s: [%s] %s = %s is below %s = %s", c->path, order[i].section,
			         order[i].hi, cfg_str(c, order[i].section, order[i].hi), order[i].lo,
			         cfg_str(c, order[i].section, order[i].lo));
			return -1;
		}
	}
	if (cfg_size(c, "node", "map_size_max") < cfg_size(c, "node", "map_size")) {
		snprintf(err, errlen, "%s: [node] map_size_max = %s is below map_size = %s", c->path,
		         cfg_str(c, "node", "map_size_max"), cfg_str(c, "node", "map_size"));
		return -1;
	}
	for (size_t i = 0; i < c->npeers; i++)
		if (!c->peers[i].endpoint[0]) {
			snprintf(err, errlen, "%s: [peer %s] has no endpoint", c->path, c->peers[i].name);
			return -1;
		}
	return 0;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path ? path : "(defaults)");
	for (const struct param *const *t = all_tables(); *t; t++)
		for (const struct param *p = *t; p->section; p++) c->n++;
	c->p = xcalloc(c->n, sizeof(*c->p));
	c->val = xcalloc(c->n, sizeof(*c->val));
	c->set = xcalloc(c->n, 1);
	size_t i = 0;
	for (const struct param *const *t = all_tables(); *t; t++)
		for (const struct param *p = *t; p->section; p++) {
			c->p[i] = p;
			c->val[i] = xstrdup(p->def);
			i++;
		}
	if (path) {
		struct load_ctx lc = { c, err, errlen, 0 };
		err[0] = 0;
		int r = ini_parse(path, on_kv, &lc);
		if (r == -1) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); config_free(c); return -1; }
		if (r != 0) {
			char inner[400];
			snprintf(inner, sizeof(inner), "%s", err[0] ? err : "syntax error");
			snprintf(err, errlen, "%s:%d: %s", path, r, inner);
			config_free(c);
			return -1;
		}
	}
	if (check_values(c, err, errlen) < 0) { config_free(c); return -1; }
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < c->n; i++) free(c->val[i]);
	free(c->val); free(c->set); free(c->p);
	free(c->peers); free(c->servers);
	memset(c, 0, sizeof(*c));
}

const char *cfg_str(const struct config *c, const char *section, const char *key)
{
	int i = find(c, section, key);
	if (i < 0) log_panic("undeclared parameter [%s] %s", section, key);
	return c->val[i];
}

long long cfg_int(const struct config *c, const char *section, const char *key)
{
	return strtoll(cfg_str(c, section, key), NULL, 10);
}

long long cfg_ms(const struct config *c, const char *section, const char *key)
{
	return cfg_parse_ms(cfg_str(c, section, key));
}

long long cfg_size(const struct config *c, const char *section, const char *key)
{
	return cfg_parse_size(cfg_str(c, section, key));
}

int cfg_bool(const struct config *c, const char *section, const char *key)
{
	const char *v = cfg_str(c, section, key);
	return !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1");
}

int cfg_list_has(const struct config *c, const char *section, const char *key, const char *name)
{
	const char *v = cfg_str(c, section, key);
	size_t n = strlen(name);
	while (*v) {
		while (*v == ',' || *v == ' ' || *v == '\t') v++;
		const char *s = v;
		while (*v && *v != ',' && *v != ' ' && *v != '\t') v++;
		if ((size_t)(v - s) == n && n && !memcmp(s, name, n)) return 1;
	}
	return 0;
}

const struct peer_cfg *cfg_peer(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->npeers; i++) if (!strcmp(c->peers[i].name, name)) return &c->peers[i];
	return NULL;
}

const struct server_cfg *cfg_server(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nservers; i++) if (!strcmp(c->servers[i].name, name)) return &c->servers[i];
	return NULL;
}

void cfg_server_url(const struct config *c, const char *name, char *out, size_t cap)
{
	const struct server_cfg *s = cfg_server(c, name);
	if (s && s->endpoint[0]) { snprintf(out, cap, "%s", s->endpoint); return; }
	/* A name ending in :digits (and not a bare IPv6 literal) has a port. */
	const char *colon = strrchr(name, ':');
	int has_port = colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
	               (name[0] != '[' || colon > strchr(name, ']'));
	snprintf(out, cap, has_port ? "https://%s" : "https://%s:8448", name);
}

int cfg_acl_allows(const struct config *c, const char *server)
{
	if (cfg_list_has(c, "acl", "deny", server)) return 0;
	if (*cfg_str(c, "acl", "allow") && !cfg_list_has(c, "acl", "allow", server)) return 0;
	return 1;
}
