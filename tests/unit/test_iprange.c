/* test_iprange.c: CIDR lists and the address policy (common/core/iprange.h):
 * parsing and its errors, the edges of every default range, the IPv6 forms
 * of an IPv4 address (mapped, compatible, 6to4), and allow over deny. */
#include "../lib/tap.h"
#include "core/iprange.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static struct sockaddr_storage ss;

/* "1.2.3.4" or "::1" as a sockaddr (port irrelevant) */
static const struct sockaddr *sa(const char *a)
{
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, a, &in->sin_addr) == 1) { in->sin_family = AF_INET; in->sin_port = htons(8448); }
	else if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) { in6->sin6_family = AF_INET6; in6->sin6_port = htons(8448); }
	else { fprintf(stderr, "bad test address %s\n", a); exit(2); }
	return (const struct sockaddr *)&ss;
}

static struct iprange_list deny, allow, empty;

static int denied(const char *a) { return iprange_denied(&deny, &allow, sa(a), NULL); }

/* Addresses on both sides of each default range's edges. */
static const char *const in_default[] = {
	"127.0.0.0", "127.0.0.1", "127.255.255.255", "127.1.2.3",
	"10.0.0.0", "10.255.255.255", "172.16.0.0", "172.31.255.255", "192.168.0.0", "192.168.255.255",
	"100.64.0.0", "100.127.255.255", "192.0.0.0", "192.0.0.255", "169.254.0.0", "169.254.169.254",
	"169.254.255.255", "192.88.99.0", "192.88.99.255", "198.18.0.0", "198.19.255.255",
	"192.0.2.0", "192.0.2.255", "198.51.100.0", "198.51.100.255", "203.0.113.0", "203.0.113.255",
	"224.0.0.0", "239.255.255.255", "0.0.0.0", "0.255.255.255", "240.0.0.0", "255.255.255.255",
	"::1", "::", "fe80::", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::", "fd00::1",
	"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
	"ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::", "feff::1",
	/* IPv4-mapped forms */
	"::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
	"::ffff:172.16.0.1", "::ffff:192.168.1.1", "::ffff:100.64.0.1", "::ffff:224.0.0.1", "::ffff:255.255.255.255",
	/* IPv4-compatible and 6to4 forms (Synapse adds both) */
	"::127.0.0.1", "::10.0.0.1", "::169.254.169.254", "2002:7f00:1::", "2002:a00:1::1", "2002:c0a8:101::",
	"2002:a9fe:a9fe::1", "::2" /* ::0.0.0.2, in 0.0.0.0/8 */,
	NULL
};
static const char *const out_default[] = {
	"126.255.255.255", "128.0.0.0", "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0",
	"192.167.255.255", "192.169.0.0", "100.63.255.255", "100.128.0.0", "191.255.255.255", "192.0.1.0",
	"169.253.255.255", "169.255.0.0", "192.88.98.255", "192.88.100.0", "198.17.255.255", "198.20.0.0",
	"192.0.3.0", "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
	"1.0.0.0", "8.8.8.8", "1.1.1.1",
	"93.184.216.34", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	"fe00::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::",
	"2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "::ffff:93.184.216.34", "::8.8.8.8",
	"2002:808:808::1", "2001:4860:4860::8888", "64:ff9b::808:808",
	NULL
};

int main(void)
{
	char err[256];
	struct iprange r;
	TAP_OK(iprange_list_parse(&deny, IPRANGE_DEFAULT_DENY, err, sizeof err) == 0, "the default deny list parses");
	TAP_OK(deny.n == 22, "the default list holds 22 ranges (%zu)", deny.n);
	TAP_OK(iprange_list_parse(&allow, "", err, sizeof err) == 0 && allow.n == 0, "an empty list parses");

	for (int i = 0; in_default[i]; i++)
		TAP_OK(denied(in_default[i]), "denied by default: %s", in_default[i]);
	for (int i = 0; out_default[i]; i++)
		TAP_OK(!denied(out_default[i]), "allowed by default: %s", out_default[i]);

	/* which range matched is told */
	int why = -2;
	TAP_OK(iprange_denied(&deny, &allow, sa("::ffff:10.9.9.9"), &why) == 1 && why == 1,
	       "the matching range is reported (10.0.0.0/8 is #1: %d)", why);
	int w2 = -2;
	TAP_OK(iprange_denied(&deny, &allow, sa("::1"), &w2) == 1 && w2 == 15,
	       "::1 is reported as ::1/128 (#15), not as the 0.0.0.1 inside it (%d)", w2);
	TAP_OK(iprange_denied(&deny, &allow, sa("::127.0.0.1"), &w2) == 1 && w2 == 0,
	       "::127.0.0.1 (IPv4-compatible) is reported as 127.0.0.0/8 (%d)", w2);
	TAP_OK(iprange_denied(&deny, &allow, sa("8.8.8.8"), &w2) == 0 && w2 == -1, "a public address: no range (%d)", w2);
	char f[64];
	iprange_format(&deny.r[why], f, sizeof f);
	TAP_OK(!strcmp(f, "10.0.0.0/8"), "IPv4 ranges print as IPv4: %s", f);
	iprange_format(&deny.r[17], f, sizeof f);
	TAP_OK(!strcmp(f, "fe80::/10"), "IPv6 ranges print as IPv6: %s", f);
	iprange_addr_format(sa("::ffff:127.0.0.1"), f, sizeof f);
	TAP_OK(!strcmp(f, "::ffff:127.0.0.1"), "address printed: %s", f);

	/* not an IP address at all: denied */
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	TAP_OK(iprange_denied(&empty, &empty, (struct sockaddr *)&un, NULL) == 1, "AF_UNIX: denied");
	TAP_OK(iprange_denied(&empty, &empty, sa("127.0.0.1"), NULL) == 0, "empty deny list: everything allowed");

	/* allow carves exceptions out of deny */
	TAP_OK(iprange_list_parse(&allow, "127.0.0.0/8, 10.1.0.0/16 fd12:3456::/32", err, sizeof err) == 0 && allow.n == 3,
	       "allow list parses (commas and spaces)");
	TAP_OK(!denied("127.0.0.1") && !denied("::ffff:127.0.0.1") && !denied("::127.0.0.1") && !denied("2002:7f00:1::"),
	       "allowed 127.0.0.0/8: every form of 127.0.0.1 passes");
	TAP_OK(denied("::1"), "allowed 127.0.0.0/8: ::1 is still denied (another range)");
	TAP_OK(!denied("10.1.255.255") && denied("10.2.0.0") && denied("10.0.255.255"), "allow 10.1.0.0/16 edges");
	TAP_OK(!denied("fd12:3456:ffff::1") && denied("fd12:3457::1"), "allow fd12:3456::/32 edges");
	iprange_list_free(&allow);

	/* an IPv4-mapped range written as IPv6 matches plain IPv4 too */
	TAP_OK(iprange_list_parse(&allow, "::ffff:127.0.0.0/104", err, sizeof err) == 0, "mapped range parses");
	TAP_OK(!denied("127.0.0.5") && !denied("::ffff:127.9.9.9") && denied("128.0.0.1") == 0 && denied("10.0.0.1"),
	       "::ffff:127.0.0.0/104 covers 127.0.0.0/8 in both spellings");
	iprange_format(&allow.r[0], f, sizeof f);
	TAP_OK(!strcmp(f, "127.0.0.0/8"), "a mapped range prints as IPv4: %s", f);
	iprange_list_free(&allow);

	/* single addresses and prefix edges */
	TAP_OK(iprange_parse("1.2.3.4", 7, &r, err, sizeof err) == 0 && r.bits == 128, "a bare IPv4 address is /32");
	TAP_OK(iprange_parse("::1", 3, &r, err, sizeof err) == 0 && r.bits == 128, "a bare IPv6 address is /128");
	TAP_OK(iprange_parse("0.0.0.0/0", 9, &r, err, sizeof err) == 0 && r.bits == 96, "0.0.0.0/0: all IPv4");
	TAP_OK(iprange_parse("::/0", 4, &r, err, sizeof err) == 0 && r.bits == 0, "::/0: everything");
	TAP_OK(iprange_parse("1.2.3.4/32", 10, &r, err, sizeof err) == 0, "/32");
	TAP_OK(iprange_parse("::1/128", 7, &r, err, sizeof err) == 0, "/128");
	TAP_OK(iprange_parse("10.0.0.0/8garbage", 10, &r, err, sizeof err) == 0, "only the n bytes given are read");
	{
		struct iprange_list l;
		TAP_OK(iprange_list_parse(&l, "0.0.0.0/0", err, sizeof err) == 0, "0.0.0.0/0 list");
		TAP_OK(iprange_list_match(&l, sa("8.8.8.8")) == 0 && iprange_list_match(&l, sa("::ffff:8.8.8.8")) == 0 &&
		       iprange_list_match(&l, sa("2606:4700::1")) < 0, "0.0.0.0/0 holds all IPv4, no native IPv6");
		iprange_list_free(&l);
		TAP_OK(iprange_list_parse(&l, "192.168.1.128/25", err, sizeof err) == 0, "/25 list");
		TAP_OK(iprange_list_match(&l, sa("192.168.1.127")) < 0 && iprange_list_match(&l, sa("192.168.1.128")) == 0 &&
		       iprange_list_match(&l, sa("192.168.1.255")) == 0 && iprange_list_match(&l, sa("192.168.2.0")) < 0,
		       "/25 edges (a prefix not on a byte boundary)");
		iprange_list_free(&l);
		TAP_OK(iprange_list_parse(&l, "2001:db8:8000::/33", err, sizeof err) == 0, "/33 list");
		TAP_OK(iprange_list_match(&l, sa("2001:db8:7fff:ffff::1")) < 0 && iprange_list_match(&l, sa("2001:db8:8000::")) == 0 &&
		       iprange_list_match(&l, sa("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")) == 0, "/33 edges");
		iprange_list_free(&l);
	}

	/* errors: clear, naming the item; the list is left empty */
	static const struct { const char *in, *says; } bad[] = {
		{ "10.0.0.0/33", "prefix length 33 is above 32" },
		{ "::/129", "prefix length 129 is above 128" },
		{ "10.0.0.1/8", "bits are set beyond the /8 prefix (the range would be 10.0.0.0/8)" },
		{ "::ffff:127.0.0.0/8", "bits are set beyond the /8 prefix" },
		{ "fe80::1/10", "the range would be fe80::/10" },
		{ "10.0.0.0/", "the prefix length after '/' must be a number from 0 to 32" },
		{ "10.0.0.0/08", "must be a number" },
		{ "10.0.0.0/-1", "must be a number" },
		{ "10.0.0.0/8/8", "must be a number" },
		{ "10.0.0.0/ 8", "must be a number" },   /* "10.0.0.0/" then "8" */
		{ "localhost", "'localhost' is not an IPv4 address (a.b.c.d) or an IPv6 address" },
		{ "127.1", "is not an IPv4 address" },
		{ "0x7f.0.0.1", "is not an IPv4 address" },
		{ "010.0.0.1", "is not an IPv4 address" },
		{ "1.2.3.256", "is not an IPv4 address" },
		{ "2130706433", "is not an IPv4 address" },
		{ "[::1]", "is not an IPv4 address" },
		{ "fe80::1%eth0", "is not an IPv4 address" },
		{ "1:2:3:4:5:6:7:8:9", "is not an IPv4 address" },
		{ "/8", "'' is not an IPv4 address" },
		{ "10.0.0.0/8;", "must be a number" },
		{ "ok.but.no", "is not an IPv4" },
		{ "12345678901234567890123456789012345678901234567890123456789012345678901234567890", "too long" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct iprange_list l = { (struct iprange *)1, 7 };
		char text[200];
		snprintf(text, sizeof text, "127.0.0.0/8, %s ::1", bad[i].in);
		err[0] = 0;
		int rc = iprange_list_parse(&l, text, err, sizeof err);
		TAP_OK(rc == -1 && l.n == 0 && l.r == NULL && strstr(err, bad[i].says),
		       "refused: '%s' (%s)", bad[i].in, err);
	}
	TAP_OK(iprange_list_parse(&allow, " ,, \t ,", err, sizeof err) == 0 && allow.n == 0, "separators only: empty");
	iprange_list_free(&deny);
	return tap_done();
}
