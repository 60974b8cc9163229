/* servername.h: the Matrix server-name grammar (server-server API,
 * appendix "Server name"), for every name that comes from outside the
 * configuration (an ID, a caller's hint, a stored room_servers row, a peer):
 *   server_name = hostname [ ":" port ]
 *   hostname    = IPv4address / "[" IPv6address "]" / dns-name
 *   port        = 1*5DIGIT (1-65535)
 * As Synapse (parse_and_validate_server_name), a DNS name is dot-separated
 * non-empty labels of letters, digits and '-' (no trailing dot); further:
 * at most 255 bytes, labels at most 63, and a name whose last label is all
 * digits must be a plain dotted quad (no "127.1", "2130706433", "010.0.0.1":
 * the resolver reads those as other addresses). An IPv6 literal must parse
 * (inet_pton). Nothing else: no '/', '?', '#', '@', '%', space, control
 * byte or NUL anywhere, so a valid name can be pasted into a URL's
 * authority as it is. Pure functions, no allocation. */
#ifndef FP_SERVERNAME_H
#define FP_SERVERNAME_H
#include <stddef.h>

#define SERVER_NAME_MAX 261      /* 255 (host) + ":65535" */

/* 1 if the n bytes at s are a server name, else 0. */
int server_name_valid(const char *s, size_t n);

/* Split a valid name: the host (brackets kept for IPv6) into host[hcap],
 * *port = the port, or 0 when none. 0, or -1 if the name is not valid or
 * the host does not fit. */
int server_name_split(const char *s, size_t n, char *host, size_t hcap, int *port);

#endif
