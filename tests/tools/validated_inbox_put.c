/* validated_inbox_put.c: test tool: put each named file's bytes into the
 * inbox of the LMDB environment in DIR, with received_ms set AGE ms in the
 * past; prints the inbox seqs. Usage: validated_inbox_put DIR AGE_MS FILE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/log.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	struct store st;
	char err[256];
	if (argc < 4) {
		fprintf(stderr, "usage: validated_inbox_put DIR AGE_MS FILE...\n");
		return 100;
	}
	if (store_open(&st, argv[1], 0, 0, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 111;
	}
	long long age = atoll(argv[2]);
	MDB_txn *t = store_begin(&st, 0);
	for (int i = 3; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		struct buf b;
		char tmp[4096];
		size_t n;
		if (!f) { perror(argv[i]); return 111; }
		buf_init(&b);
		while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
			buf_add(&b, tmp, n);
		fclose(f);
		uint64_t seq;
		if (store_inbox_put(t, &st, "test.peer", b.data, b.len, &seq) != 0) return 111;
		/* backdate it so validated's rescan picks it up at once */
		MDB_val v;
		unsigned char k[8];
		be64_put(k, seq);
		if (store_get(t, &st, DB_INBOX, k, 8, &v) != 0) return 111;
		struct buf nb;
		buf_init(&nb);
		buf_add(&nb, v.mv_data, v.mv_size);
		be64_put((unsigned char *)nb.data, (uint64_t)(now_ms() - age));
		store_put(t, &st, DB_INBOX, k, 8, nb.data, nb.len, 0);
		printf("%llu\n", (unsigned long long)seq);
		buf_free(&b);
		buf_free(&nb);
	}
	if (store_commit(t) != 0) return 111;
	store_close(&st);
	return 0;
}
