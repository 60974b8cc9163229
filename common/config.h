/* config.h: the one configuration file every stage and fedctl read (-c FILE),
 * INI style, parsed with Debian's libinih.
 * Promises: every parameter is declared exactly once, with its default and a
 * one-line help, in a parameter table (common/params_<area>.c, gathered in
 * config.c), so `fedctl config` can print every knob; an unknown section or
 * key is an error naming file and line (callers exit 100); named sections
 * [peer NAME] and [server NAME] are collected into lists. */
#ifndef FP_CONFIG_H
#define FP_CONFIG_H
#include <stddef.h>
#include <stdint.h>

struct param {
	const char *section;   /* "node", "acl", "feed", "fetchd", ... */
	const char *key;
	const char *def;       /* default, as it would be written in the file */
	const char *help;
};
/* Each table ends with a {NULL} entry. */
extern const struct param params_node[], params_validated[], params_purgatoryd[],
	params_fetchd[], params_syncd[], params_served[], params_feedpump[];

#define PEER_KEYS   "endpoint key ca mode server_name"           /* [peer NAME] */
#define SERVER_KEYS "endpoint key ca"                /* [server NAME] */

struct peer_cfg {
	char name[64];
	char endpoint[256];
	char key[256];
	char ca[256];
	char mode[16];          /* "sync" (default) | "paused" */
	char server_name[256];  /* the server the peer must be (empty: pinned at first contact) */
};
struct server_cfg {
	char name[256];
	char endpoint[256];
	char key[256];
	char ca[256];
};

struct config {
	char   path[512];
	const struct param **p;    /* every declared parameter */
	char  **val;               /* its value (default unless set) */
	unsigned char *set;        /* set explicitly in the file */
	size_t  n;
	struct peer_cfg   *peers;   size_t npeers;
	struct server_cfg *servers; size_t nservers;
};

/* Load defaults, then path (may be NULL: defaults only). 0 or -1 with err. */
int  config_load(struct config *c, const char *path, char *err, size_t errlen);
void config_free(struct config *c);

/* Values by section and key; asking for an undeclared parameter is a bug
 * (log_panic). Durations accept ms, s, m, h suffixes (cfg_ms); sizes accept
 * k, M, G (cfg_size). Lists are comma or space separated. */
const char *cfg_str(const struct config *c, const char *section, const char *key);
long long   cfg_int(const struct config *c, const char *section, const char *key);
long long   cfg_ms(const struct config *c, const char *section, const char *key);
long long   cfg_size(const struct config *c, const char *section, const char *key);
int         cfg_bool(const struct config *c, const char *section, const char *key);
/* Is name in the list value (comma/space separated, exact match)? */
int         cfg_list_has(const struct config *c, const char *section, const char *key,
                         const char *name);
const struct peer_cfg   *cfg_peer(const struct config *c, const char *name);
const struct server_cfg *cfg_server(const struct config *c, const char *name);
/* Base URL for a server name: its [server NAME] endpoint, else https://NAME
 * with :8448 added when NAME has no port. */
void cfg_server_url(const struct config *c, const char *name, char *out, size_t cap);
/* Server ACL check (acl.allow / acl.deny): 1 allowed, 0 denied. */
int  cfg_acl_allows(const struct config *c, const char *server);

/* Parse helpers shared with CLI flags. -1 on a malformed value. */
long long parse_ms(const char *s);
long long parse_size(const char *s);

#endif
