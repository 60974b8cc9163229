/* served_parse.h: the pure parsing served does on what the network sends
 * (request targets, path segments, query parameters, header values, IDs).
 * No libevent, no store: tests/fuzz/fuzz_served.c includes served_parse.c
 * directly. */
#ifndef SERVED_PARSE_H
#define SERVED_PARSE_H
#include <stddef.h>
#include <stdint.h>

/* A numeric query parameter: ASCII digits only (no sign, space, "0x", exponent,
 * nothing empty), at most max. 0 with *out set, or -1. */
int sp_digits(const char *v, uint64_t max, uint64_t *out);

/* Percent-decode one path segment of n bytes into out (cap bytes with the
 * NUL). Refused (-1): empty, too long, a bad escape, or anything decoding to
 * a NUL. Returns the decoded length. '+' stays '+' (paths are not forms). */
int sp_segment(const char *seg, size_t n, char *out, size_t cap);

/* Split path p on '/' into up to max segments (pointers into p). -1 if more
 * than max, an empty segment or a trailing slash; else the count. */
int sp_split(const char *p, const char **seg, size_t *len, int max);

/* The token of an "Authorization: Bearer TOKEN" value (scheme case
 * insensitive, one or more spaces); NULL if the value is not that. */
const char *sp_bearer(const char *h);

/* Whether a request with these header values carries a body. */
int sp_has_body(const char *content_length, const char *transfer_encoding);

/* Whether a miss for event ID id may be recovered from upstreams (the
 * configured server names, n of them): '$', then 1 to 254 bytes of
 * printable ASCII (no space, no control byte, nothing above 0x7e); and
 * if it names a server (room versions 1 and 2: "$local:server"), that
 * server must be one of the upstreams: fetchd also asks the server named inside an
 * ID, and recovery must never contact a server the configuration does not
 * name. */
int sp_recover_id_ok(const char *id, char *const *upstreams, size_t n);

#endif
