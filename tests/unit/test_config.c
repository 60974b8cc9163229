/* test_config.c: the one config file: defaults, sections, errors, helpers. */
#include "../lib/tap.h"
#include "core/config.h"
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

	/* Generated from the parameter table: every default passes its own
	 * check, and every parameter refuses a bad value of its type, naming
	 * file, line, key and what is accepted (no silent clamping). */
	int defaults_ok = 1, refused = 0, total = 0;
	TAP_OK(config_load(&c, NULL, err, sizeof(err)) == 0, "defaults load");
	for (size_t i = 0; i < c.n; i++) {
		const struct param *q = c.p[i];
		if (param_check(q, q->def, err, sizeof(err)) < 0) {
			defaults_ok = 0;
			printf("# default of [%s] %s fails its own check: %s\n", q->section, q->key, err);
		}
		TAP_OK(q->type >= PT_STRING && q->type <= PT_CIDRS, "[%s] %s has a type (%s)", q->section, q->key,
		       param_type_name(q->type));
	}
	TAP_OK(defaults_ok, "every default passes its own check");
	for (size_t i = 0; i < c.n; i++) {
		const struct param *q = c.p[i];
		char bad[6][64];
		int nb = 0;
		switch (q->type) {
		case PT_BOOL: strcpy(bad[nb++], "yse"); strcpy(bad[nb++], "2"); strcpy(bad[nb++], "Yes please"); break;
		case PT_INT:
			strcpy(bad[nb++], "12x"); strcpy(bad[nb++], "-1"); strcpy(bad[nb++], "0x10");
			strcpy(bad[nb++], "1e3"); strcpy(bad[nb++], "5 5");
			snprintf(bad[nb++], 64, "%lld", strtoll(q->max, NULL, 10) + 1);
			break;
		case PT_SIZE:
			strcpy(bad[nb++], "4Q"); strcpy(bad[nb++], "-4M"); strcpy(bad[nb++], "lots");
			snprintf(bad[nb++], 64, "%lld", cfg_parse_size(q->max) + 1);
			if (cfg_parse_size(q->min) > 0) snprintf(bad[nb++], 64, "%lld", cfg_parse_size(q->min) - 1);
			break;
		case PT_DURATION:
			strcpy(bad[nb++], "5 parsecs"); strcpy(bad[nb++], "-1s"); strcpy(bad[nb++], "soon");
			snprintf(bad[nb++], 64, "%lldms", cfg_parse_ms(q->max) + 1);
			if (cfg_parse_ms(q->min) > 0) snprintf(bad[nb++], 64, "%lldms", cfg_parse_ms(q->min) - 1);
			break;
		case PT_ENUM: strcpy(bad[nb++], "bogus"); break;
		case PT_NAME: strcpy(bad[nb++], "$x:127.0.0.1:19102/internal?cmd="); strcpy(bad[nb++], "a@b"); break;
		case PT_NAMES: strcpy(bad[nb++], "good.example, 127.0.0.1:1/x?"); strcpy(bad[nb++], "a:b:c"); break;
		case PT_CIDRS: strcpy(bad[nb++], "10.0.0.1/8"); strcpy(bad[nb++], "127.0.0.0/8, localhost");
			strcpy(bad[nb++], "::/129"); break;
		case PT_LIST: if (q->allowed) strcpy(bad[nb++], "bogus"); else strcpy(bad[nb++], "a\001b"); break;
		default: strcpy(bad[nb++], "a\001b"); break;
		}
		for (int b = 0; b < nb; b++) {
			char text[512];
			snprintf(text, sizeof(text), "# generated\n[%s]\n%s = %s\n", q->section, q->key, bad[b]);
			const char *path = write_tmp(text);
			struct config bc;
			int r = config_load(&bc, path, err, sizeof(err));
			char key[96];
			snprintf(key, sizeof(key), "[%s] %s = ", q->section, q->key);
			char where[80];
			snprintf(where, sizeof(where), "%s:3:", path);
			int good = r < 0 && strstr(err, where) && strstr(err, key) && (strstr(err, "is not ") || strstr(err, "not accepted"));
			total++;
			if (good) refused++;
			else printf("# [%s] %s = '%s' not refused as it should be: %s\n", q->section, q->key, bad[b],
			            r < 0 ? err : "(loaded)");
			if (r == 0) config_free(&bc);
			unlink(path);
		}
	}
	config_free(&c);
	TAP_OK(refused == total && total > 100, "every parameter refuses bad values of its type, naming file:line, key and what is accepted (%d of %d)", refused, total);
	{
		const char *path = write_tmp("[validated]\ncheck_signatures = yse\n");
		TAP_OK(config_load(&c, path, err, sizeof(err)) < 0 && strstr(err, ":2:") && strstr(err, "check_signatures") &&
		       strstr(err, "yes or no"), "a typo in a boolean is refused: %s", err);
		unlink(path);
		path = write_tmp("[purgatoryd]\nbackoff_min = 60s\nbackoff_max = 20s\n");
		TAP_OK(config_load(&c, path, err, sizeof(err)) < 0 && strstr(err, "backoff_max"), "max below min is refused: %s", err);
		unlink(path);
		path = write_tmp("[fetchd]\nchecks = event_id, hashes signatures\n[node]\nmap_size = 1T\nmap_size_max = 2T\n");
		TAP_OK(config_load(&c, path, err, sizeof(err)) == 0 && cfg_size(&c, "node", "map_size_max") == 2LL << 40,
		       "valid list and T size load: %s", err);
		config_free(&c);
		unlink(path);
		/* IP range lists: a long one goes on over indented lines; a bad item
		 * on a continuation line is refused at that line */
		path = write_tmp("[fetchd]\nip_range_deny = 10.0.0.0/8,\n  192.168.0.0/16\n\t::1\nip_range_allow = 10.1.0.0/16\n");
		TAP_OK(config_load(&c, path, err, sizeof(err)) == 0 &&
		       !strcmp(cfg_str(&c, "fetchd", "ip_range_deny"), "10.0.0.0/8, 192.168.0.0/16 ::1") &&
		       !strcmp(cfg_str(&c, "fetchd", "ip_range_allow"), "10.1.0.0/16"),
		       "an IP range list continues over indented lines: '%s'", c.n ? cfg_str(&c, "fetchd", "ip_range_deny") : err);
		config_free(&c);
		unlink(path);
		path = write_tmp("[fetchd]\nip_range_deny = 10.0.0.0/8\n  192.168.0.1/16\n");
		TAP_OK(config_load(&c, path, err, sizeof(err)) < 0 && strstr(err, ":3:") && strstr(err, "ip_range_deny") &&
		       strstr(err, "192.168.0.0/16"), "a bad range on a continuation line names its line: %s", err);
		unlink(path);
		path = write_tmp("[peer x]\nendpoint = file:///etc/passwd\n");
		TAP_OK(config_load(&c, path, err, sizeof(err)) < 0 && strstr(err, "endpoint"), "peer endpoint must be http(s): %s", err);
		unlink(path);
	}

	TAP_OK(cfg_parse_ms("500ms") == 500 && cfg_parse_ms("20s") == 20000 && cfg_parse_ms("30m") == 1800000 &&
	       cfg_parse_ms("24h") == 86400000 && cfg_parse_ms("2") == 2000 && cfg_parse_ms("x") < 0, "cfg_parse_ms");
	TAP_OK(cfg_parse_size("64K") == 65536 && cfg_parse_size("4M") == 4 << 20 && cfg_parse_size("8G") == 8LL << 30 &&
	       cfg_parse_size("12") == 12 && cfg_parse_size("1Q") < 0, "cfg_parse_size");
	return tap_done();
}
