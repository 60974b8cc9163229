/* iprange.h: lists of IP ranges (CIDR) and whether an address lies in one:
 * the address policy fetchd applies to every connection it opens for a
 * server the configuration does not name ([fetchd] ip_range_deny/allow).
 * Promises: an IPv4 range also covers that range's IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and 6to4 (2002:AABB:CCDD::)
 * IPv6 forms, as Synapse's generate_ip_set does, so no spelling of a denied
 * IPv4 address gets through; a malformed list is an error saying which item
 * and why, never a silently shorter list. */
#ifndef FP_IPRANGE_H
#define FP_IPRANGE_H
#include <stddef.h>
#include <sys/socket.h>

/* The default deny list: Synapse's DEFAULT_IP_RANGE_BLOCKLIST
 * (synapse/config/server.py), plus what is never a public unicast address
 * (0/8, 240/4, ::). Addresses only a server the operator named may use. */
#define IPRANGE_DEFAULT_DENY \
	"127.0.0.0/8 "        /* loopback (RFC 1122) */ \
	"10.0.0.0/8 "         /* private (RFC 1918) */ \
	"172.16.0.0/12 "      /* private (RFC 1918) */ \
	"192.168.0.0/16 "     /* private (RFC 1918) */ \
	"100.64.0.0/10 "      /* carrier-grade NAT (RFC 6598) */ \
	"192.0.0.0/24 "       /* IETF protocol assignments (RFC 6890) */ \
	"169.254.0.0/16 "     /* link-local, cloud metadata 169.254.169.254 (RFC 3927) */ \
	"192.88.99.0/24 "     /* former 6to4 relay anycast (RFC 7526) */ \
	"198.18.0.0/15 "      /* benchmarking (RFC 2544) */ \
	"192.0.2.0/24 "       /* documentation TEST-NET-1 (RFC 5737) */ \
	"198.51.100.0/24 "    /* documentation TEST-NET-2 (RFC 5737) */ \
	"203.0.113.0/24 "     /* documentation TEST-NET-3 (RFC 5737) */ \
	"224.0.0.0/4 "        /* multicast (RFC 5771) */ \
	"0.0.0.0/8 "          /* "this network", 0.0.0.0 reaches the local host (RFC 1122); not in Synapse's list */ \
	"240.0.0.0/4 "        /* reserved and broadcast 255.255.255.255 (RFC 1112, RFC 919); not in Synapse's list */ \
	"::1/128 "            /* loopback (RFC 4291) */ \
	"::/128 "             /* unspecified, reaches the local host (RFC 4291); not in Synapse's list */ \
	"fe80::/10 "          /* link-local (RFC 4291) */ \
	"fc00::/7 "           /* unique local (RFC 4193) */ \
	"2001:db8::/32 "      /* documentation (RFC 3849) */ \
	"ff00::/8 "           /* multicast (RFC 4291) */ \
	"fec0::/10"           /* site-local, deprecated (RFC 3879) */

/* One range, kept as IPv6: an IPv4 range a.b.c.d/n is ::ffff:a.b.c.d/96+n. */
struct iprange {
	unsigned char net[16];
	unsigned char bits;        /* 0..128 */
};

struct iprange_list {
	struct iprange *r;
	size_t n;
};

/* Parse one range from the n bytes at s: "a.b.c.d", "a.b.c.d/n" (n 0..32),
 * an IPv6 address with an optional /n (0..128), "::ffff:a.b.c.d/n" (n the
 * IPv6 prefix, 96..128 for a mapped IPv4 range). Bits set beyond the prefix
 * are an error (a typo like 10.0.0.1/8 or ::ffff:127.0.0.0/8 is caught,
 * not widened). 0, or -1 with why in err. */
int  iprange_parse(const char *s, size_t n, struct iprange *out, char *err, size_t errlen);
/* Parse a list (items separated by commas and/or white space; empty: no
 * ranges). On error the list is left empty and err names the item. */
int  iprange_list_parse(struct iprange_list *l, const char *text, char *err, size_t errlen);
void iprange_list_free(struct iprange_list *l);

/* Index of the first range that holds the address (in any of the forms
 * above), or -1. sa: AF_INET or AF_INET6; any other family matches nothing. */
int  iprange_list_match(const struct iprange_list *l, const struct sockaddr *sa);
/* The policy: may we connect to sa? 0: yes; 1: no (denied and not allowed,
 * or not an IP address at all). *why (may be NULL) gets the index into deny
 * that matched, or -1. */
int  iprange_denied(const struct iprange_list *deny, const struct iprange_list *allow,
                    const struct sockaddr *sa, int *why);

/* "10.0.0.0/8", "fe80::/10" (IPv4 ranges in IPv4 form) into out. */
void iprange_format(const struct iprange *r, char *out, size_t cap);
/* The address of sa ("127.0.0.1", "::1") into out. */
void iprange_addr_format(const struct sockaddr *sa, char *out, size_t cap);

#endif
