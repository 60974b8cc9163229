/* fp_pdu: line-oriented front end to pdu.c for interop tests (one event per
 * input line): `id RV` prints event IDs, `sign RV SERVER KEYFILE` prints
 * signed canonical PDUs, `verify RV SERVER KEYID PUBKEY_B64` prints ok/bad. */
#include "matrix/pdu.h"
#include "matrix/keys.h"
#include "matrix/b64.h"
#include "matrix/json.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: fp_pdu id RV < events\n"
	                "       fp_pdu sign RV SERVER KEYFILE < events\n"
	                "       fp_pdu verify RV SERVER KEYID PUBKEY_B64 < events\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct json_doc d = { 0 };
	struct buf out, scratch;
	struct signing_key sk;
	unsigned char pk[32];
	char *line = NULL, eid[PDU_EVENT_ID_MAX], err[256];
	size_t cap = 0;
	ssize_t n;

	if (sodium_init() < 0 || argc < 3)
		return usage();
	const char *cmd = argv[1];
	int rv = atoi(argv[2]);
	if (rv != PDU_RV_10 && rv != PDU_RV_11)
		return usage();
	if (strcmp(cmd, "sign") == 0) {
		if (argc != 5)
			return usage();
		if (signing_key_load(&sk, argv[4], err, sizeof err) < 0) {
			fprintf(stderr, "fp_pdu: %s\n", err);
			return 1;
		}
	} else if (strcmp(cmd, "verify") == 0) {
		if (argc != 6 || b64_decode(pk, sizeof pk, argv[5], strlen(argv[5])) != 32)
			return usage();
	} else if (strcmp(cmd, "id") != 0 || argc != 3) {
		return usage();
	}

	buf_init(&out);
	buf_init(&scratch);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (strcmp(cmd, "sign") == 0) {
			buf_reset(&out);
			if (pdu_sign(line, (size_t)n, rv, argv[3], sk.key_id, sk.sk, &out, eid) < 0)
				puts("error");
			else
				puts(out.data);
			continue;
		}
		if (json_parse(&d, line, (size_t)n, JSON_MAX_DEPTH_DEFAULT) < 0) {
			printf("bad json: %s\n", json_err_str(d.err));
			continue;
		}
		if (strcmp(cmd, "id") == 0) {
			if (pdu_event_id(&d, 0, rv, eid) < 0)
				puts("error");
			else
				puts(eid);
			continue;
		}
		enum pdu_verdict v = pdu_check_content_hash(&d, 0, &scratch);
		if (v == PDU_OK)
			v = pdu_check_signature(&d, 0, rv, argv[3], argv[4], pk, &scratch, eid);
		if (v == PDU_OK)
			printf("ok %s\n", eid);
		else
			printf("bad %s\n", pdu_verdict_str(v));
	}
	fflush(stdout);
	free(line);
	buf_free(&out);
	buf_free(&scratch);
	json_doc_free(&d);
	return ferror(stdout) ? 1 : 0;
}
