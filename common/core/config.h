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

/* Parameter types. Every value is checked against its type (and range or
 * allowed values) when the file is loaded, by every program: a bad value is
 * an error naming file, line, key and what is accepted (callers exit 100).
 * Nothing is clamped silently anywhere. */
enum param_type {
	PT_STRING = 1, /* any text (may be empty) */
	PT_PATH,       /* a file or directory path (may be empty where the help says so) */
	PT_BOOL,       /* yes | no | true | false | on | off | 1 | 0 */
	PT_INT,        /* decimal integer in [min, max] */
	PT_SIZE,       /* bytes: 512, 64K, 4M, 8G; in [min, max] */
	PT_DURATION,   /* 500ms, 20s, 30m, 24h, 7d; in [min, max] */
	PT_ENUM,       /* one of allowed ("a|b|c") */
	PT_LIST,       /* comma/space separated; each item one of allowed if set */
	PT_NAME,       /* a Matrix server name (common/servername.h) */
	PT_NAMES,      /* a list of server names (may be empty) */
	PT_CIDRS,      /* a list of IP ranges (core/iprange.h; may be empty); a
	                * long list may go on over indented continuation lines */
};

struct param {
	const char *section;   /* "node", "acl", "feed", "fetchd", ... */
	const char *key;
	const char *def;       /* default, as it would be written in the file */
	const char *help;
	enum param_type type;
	const char *min, *max; /* INT, SIZE, DURATION bounds, written like values */
	const char *allowed;   /* ENUM / LIST: "a|b|c" */
};
/* Table rows, one per parameter. */
#define P_STR(s, k, d, h)            { s, k, d, h, .type = PT_STRING }
#define P_PATH(s, k, d, h)           { s, k, d, h, .type = PT_PATH }
#define P_BOOL(s, k, d, h)           { s, k, d, h, .type = PT_BOOL }
#define P_INT(s, k, d, lo, hi, h)    { s, k, d, h, .type = PT_INT, .min = lo, .max = hi }
#define P_SIZE(s, k, d, lo, hi, h)   { s, k, d, h, .type = PT_SIZE, .min = lo, .max = hi }
#define P_DUR(s, k, d, lo, hi, h)    { s, k, d, h, .type = PT_DURATION, .min = lo, .max = hi }
#define P_ENUM(s, k, d, al, h)       { s, k, d, h, .type = PT_ENUM, .allowed = al }
#define P_LIST(s, k, d, al, h)       { s, k, d, h, .type = PT_LIST, .allowed = al }
#define P_NAME(s, k, d, h)           { s, k, d, h, .type = PT_NAME }
#define P_NAMES(s, k, d, h)          { s, k, d, h, .type = PT_NAMES }
#define P_CIDRS(s, k, d, h)          { s, k, d, h, .type = PT_CIDRS }
#define P_END                        { NULL, NULL, NULL, NULL, .type = 0 }
/* "integer", "size", ...; and "in [min, max]" / "one of a|b" into out. */
const char *param_type_name(enum param_type t);
void param_accepted(const struct param *p, char *out, size_t cap);
/* Check one value against its parameter: 0, or -1 with what is wrong in err. */
int  param_check(const struct param *p, const char *value, char *err, size_t errlen);
/* Each table ends with a {NULL} entry. */
extern const struct param params_node[], params_validated[], params_purgatoryd[],
	params_fetchd[], params_syncd[], params_served[], params_feedpump[],
	params_fleet[];

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

/* Load defaults, then path (may be NULL: defaults only). 0, or -1 with err
 * (nothing left allocated: config_free on it is harmless). */
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
long long cfg_parse_ms(const char *s);
long long cfg_parse_size(const char *s);

#endif
