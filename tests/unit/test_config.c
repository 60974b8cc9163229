/* test_config.c: the one config file: defaults, sections, errors, helpers. */
#include "../lib/tap.h"
#include "config.h"
#include <string.h>
#include <unistd.h>

static const char *write_tmp(const char *text)
{
	static char path[64];
	strcpy(path, "/tmp/fp-cfg-XXXXXX");
	int fd = mkstemp(path);
	write(fd, text, strlen(text));
	close(fd);
	return path;
}

int main(void)
{
	struct config c;
	char err[512];
	TAP_OK(config_load(&c, NULL, err, sizeof(err)) == 0, "defaults load");
	TAP_OK(!strcmp(cfg_str(&c, "node", "state_dir"), "/var/lib/fedpipe"), "default state_dir");
	TAP_OK(!strcmp(cfg_str(&c, "feed", "sink"), "nop"), "default sink nop");
	TAP_OK(cfg_int(&c, "node", "room_version") == 10, "default room version 10");
	config_free(&c);

	const char *p = write_tmp(
		"[node]\nserver_name = alpha.test:8448     # the server name\nstate_dir = /tmp/x\n"
		"room_version = 11\n[acl]\ndeny = evil.test, bad.test\n"
		"[peer beta]\nendpoint = http://127.0.0.1:8449\nkey = s3cret\nmode = paused\n"
		"[server alpha.test]\nendpoint = http://127.0.0.1:8450\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) == 0, "file loads: %s", err);
	TAP_OK(!strcmp(cfg_str(&c, "node", "server_name"), "alpha.test:8448"), "inline # comment stripped");
	TAP_OK(c.npeers == 1 && !strcmp(c.peers[0].name, "beta") && !strcmp(c.peers[0].mode, "paused") &&
	       !strcmp(c.peers[0].key, "s3cret"), "peer section");
	TAP_OK(cfg_peer(&c, "beta") && !cfg_peer(&c, "gamma"), "cfg_peer");
	TAP_OK(!cfg_acl_allows(&c, "evil.test") && !cfg_acl_allows(&c, "bad.test") && cfg_acl_allows(&c, "good.test"), "acl deny list");
	char url[256];
	cfg_server_url(&c, "alpha.test", url, sizeof(url));
	TAP_OK(!strcmp(url, "http://127.0.0.1:8450"), "server endpoint from section");
	cfg_server_url(&c, "other.test", url, sizeof(url));
	TAP_OK(!strcmp(url, "https://other.test:8448"), "default port 8448: %s", url);
	cfg_server_url(&c, "other.test:443", url, sizeof(url));
	TAP_OK(!strcmp(url, "https://other.test:443"), "explicit port kept: %s", url);
	config_free(&c);
	unlink(p);

	p = write_tmp("[acl]\nallow = only.test\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) == 0 && cfg_acl_allows(&c, "only.test") && !cfg_acl_allows(&c, "x.test"), "acl allow list");
	config_free(&c); unlink(p);

	p = write_tmp("[node]\nbogus = 1\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) < 0 && strstr(err, "unknown key 'bogus'") && strstr(err, ":2"), "unknown key names file and line: %s", err);
	config_free(&c); unlink(p);
	p = write_tmp("[nonsense]\na = 1\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) < 0 && strstr(err, "unknown section"), "unknown section: %s", err);
	config_free(&c); unlink(p);
	p = write_tmp("[node]\nroom_version = 9\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) < 0 && strstr(err, "room_version"), "room version checked: %s", err);
	config_free(&c); unlink(p);
	p = write_tmp("[node]\nreconnect = soon\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) < 0 && strstr(err, "duration"), "durations checked at load: %s", err);
	config_free(&c); unlink(p);
	p = write_tmp("[peer x]\nmode = sometimes\n");
	TAP_OK(config_load(&c, p, err, sizeof(err)) < 0 && strstr(err, "mode"), "peer mode checked: %s", err);
	config_free(&c); unlink(p);
	TAP_OK(config_load(&c, "/nonexistent/fp.conf", err, sizeof(err)) < 0 && strstr(err, "No such file"), "missing file: %s", err);
	config_free(&c);

	TAP_OK(parse_ms("500ms") == 500 && parse_ms("20s") == 20000 && parse_ms("30m") == 1800000 &&
	       parse_ms("24h") == 86400000 && parse_ms("2") == 2000 && parse_ms("x") < 0, "parse_ms");
	TAP_OK(parse_size("64K") == 65536 && parse_size("4M") == 4 << 20 && parse_size("8G") == 8LL << 30 &&
	       parse_size("12") == 12 && parse_size("1Q") < 0, "parse_size");
	return tap_done();
}
