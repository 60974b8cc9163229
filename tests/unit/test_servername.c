/* test_servername.c: the Matrix server-name grammar (common/matrix/servername.h):
 * names from the spec's examples and what a hostile ID may carry instead. */
#include "../lib/tap.h"
#include "matrix/servername.h"
#include <string.h>

static const char *const good[] = {
	"matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]",
	"[1234:5678::abcd]:5678", "[::1]", "[::1]:8448", "[::ffff:127.0.0.1]:1",
	"localhost", "localhost:1", "a", "a:65535", "example.com:08448",
	"EXAMPLE.COM",                        /* spec: ALPHA, either case (as Synapse) */
	"xn--bcher-kva.example",              /* IDN as punycode */
	"sub-domain.ex-ample.org", "123.example", "0.0.0.0", "255.255.255.255",
	"a1.b2.c3.d4", "-dash.example",       /* spec dns-char; DNS decides */
	NULL
};

static const char *const bad[] = {
	"", ":", ":8448", "example.com:", "example.com:0", "example.com:65536",
	"1.2.3.4:99999", "example.com:123456", "example.com:+1", "example.com:-1",
	"127.0.0.1:19102/internal?cmd=", "127.0.0.1:19102/internal?cmd=:8448",
	"example.com/", "example.com?x", "example.com#f", "a@b", "user@example.com",
	"user:pass@example.com", "a:b:c", "a:1:2", "example.com:8448:8448",
	"[::1", "::1", "[::1]]", "[::1]x", "[::1]:", "[::1]:99999", "[]", "[:]",
	"[fe80::1%eth0]", "[::1%25lo]", "[zz::1]", "[1.2.3.4]",
	"example.com.", "example..com", ".example.com", ".",
	"ex ample.com", " example.com", "example.com ", "example.com\t", "ex\nample.com",
	"ex%41mple.com", "ex_ample.com", "b\xc3\xbc" "cher.example", "example.com\\",
	"127.1", "2130706433", "0x7f.0.0.1", "010.0.0.1", "1.2.3.256", "1.2.3",
	"1.2.3.4.5", "0177.0.0.1",
	NULL
};

/* printable form for the test's name (a newline would split the TAP line) */
static const char *show(const char *s)
{
	static char out[2][128];
	static int k;
	char *o = out[k ^= 1];
	size_t j = 0;
	for (; *s && j + 5 < sizeof out[0]; s++)
		j += (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f ?
		     (size_t)snprintf(o + j, 5, "\\x%02x", (unsigned char)*s) : (o[j] = *s, 1);
	o[j] = 0;
	return o;
}

int main(void)
{
	for (int i = 0; good[i]; i++)
		TAP_OK(server_name_valid(good[i], strlen(good[i])), "valid: '%s'", show(good[i]));
	for (int i = 0; bad[i]; i++)
		TAP_OK(!server_name_valid(bad[i], strlen(bad[i])), "invalid: '%s'", show(bad[i]));

	/* the length is the caller's: a NUL inside is a byte like any other */
	TAP_OK(!server_name_valid("evil.example\0.good.example", 25), "NUL inside: invalid");
	TAP_OK(!server_name_valid("example.com\0", 12), "trailing NUL: invalid");
	TAP_OK(server_name_valid("example.com:8448", 11), "the first n bytes only");
	TAP_OK(!server_name_valid(NULL, 0), "NULL: invalid");

	char label[70], name[300];
	memset(label, 'a', 63); label[63] = 0;
	snprintf(name, sizeof name, "%s.example", label);
	TAP_OK(server_name_valid(name, strlen(name)), "a 63-byte label");
	memset(label, 'a', 64); label[64] = 0;
	snprintf(name, sizeof name, "%s.example", label);
	TAP_OK(!server_name_valid(name, strlen(name)), "a 64-byte label: invalid");
	name[0] = 0;
	while (strlen(name) + 4 <= 255) strcat(name, "abc.");
	strcat(name, "x");                 /* 253 bytes... make it exactly 255 */
	while (strlen(name) < 255) strcat(name, "y");
	TAP_OK(server_name_valid(name, strlen(name)), "a 255-byte host");
	strcat(name, ":8448");
	TAP_OK(server_name_valid(name, strlen(name)), "a 255-byte host with a port");
	name[255] = 0; strcat(name, "z");
	TAP_OK(!server_name_valid(name, strlen(name)), "a 256-byte host: invalid");

	char host[64];
	int port = -1;
	TAP_OK(server_name_split("example.com:8448", 16, host, sizeof host, &port) == 0 &&
	       !strcmp(host, "example.com") && port == 8448, "split: host and port");
	TAP_OK(server_name_split("[::1]", 5, host, sizeof host, &port) == 0 &&
	       !strcmp(host, "[::1]") && port == 0, "split: IPv6 literal, no port");
	TAP_OK(server_name_split("[::1]:9", 7, host, sizeof host, &port) == 0 &&
	       !strcmp(host, "[::1]") && port == 9, "split: IPv6 literal with a port");
	TAP_OK(server_name_split("example.com", 11, host, 5, &port) < 0, "split: host too long for the buffer");
	TAP_OK(server_name_split("a@b", 3, host, sizeof host, &port) < 0, "split: invalid name refused");
	return tap_done();
}
