/* test_store_key_docs.c: the signed key documents store/server_keys keeps
 * beside the keys (what served answers key queries with): round trip, an
 * older document never replaces a newer one, size bounds, the document row
 * invisible to the key readers (get, usable, a walk's row decoder), and
 * picking the document naming a server from a bare document or a notary's
 * {"server_keys":[...]}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/server_keys.h"
#include "../lib/tap.h"
#include "../lib/tmpstore.h"

static const char DOC1[] = "{\"server_name\":\"a.test\",\"valid_until_ts\":1000,"
	"\"verify_keys\":{\"ed25519:k\":{\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}},"
	"\"signatures\":{\"a.test\":{\"ed25519:k\":\"x\"}}}";
static const char DOC2[] = "{\"server_name\":\"a.test\",\"valid_until_ts\":2000,"
	"\"verify_keys\":{\"ed25519:k\":{\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}},"
	"\"signatures\":{\"a.test\":{\"ed25519:k\":\"y\"}}}";

int main(void)
{
	struct store s;
	char dir[64];
	tmpstore_open(&s, dir, "keydocs", 1 << 22);
	MDB_txn *t = store_begin(&s, 0);
	const char *doc;
	size_t n;
	int64_t vu, ts;
	unsigned char pk[32];
	memset(pk, 7, 32);

	TAP_OK(store_key_doc_get(t, &s, "a.test", &doc, &n, &vu, &ts) == MDB_NOTFOUND, "no document: MDB_NOTFOUND");
	TAP_OK(store_key_put(t, &s, "a.test", "ed25519:k", pk, 1000) == 0, "a key of a.test");
	TAP_OK(store_key_doc_put(t, &s, "a.test", DOC1, strlen(DOC1), 1000) == 0, "put a document");
	TAP_OK(store_key_doc_get(t, &s, "a.test", &doc, &n, &vu, &ts) == 0 && n == strlen(DOC1)
	       && !memcmp(doc, DOC1, n) && vu == 1000 && ts > 0, "round trip (bytes, valid_until_ts, stored_ts)");
	TAP_OK(store_key_doc_put(t, &s, "a.test", DOC2, strlen(DOC2), 2000) == 0
	       && store_key_doc_get(t, &s, "a.test", &doc, &n, &vu, NULL) == 0 && vu == 2000
	       && !memcmp(doc, DOC2, n), "a newer document replaces it");
	TAP_OK(store_key_doc_put(t, &s, "a.test", DOC1, strlen(DOC1), 1000) == 0
	       && store_key_doc_get(t, &s, "a.test", &doc, &n, &vu, NULL) == 0 && vu == 2000,
	       "an older one does not (kept, 0)");
	TAP_OK(store_key_doc_put(t, &s, "a.test", "{}", 2, 3000) == MDB_BAD_VALSIZE, "too short: MDB_BAD_VALSIZE");
	char *big = malloc(KEY_DOC_MAX + 2);
	memset(big, ' ', KEY_DOC_MAX + 1);
	big[KEY_DOC_MAX + 1] = 0;
	TAP_OK(store_key_doc_put(t, &s, "a.test", big, KEY_DOC_MAX + 1, 4000) == MDB_BAD_VALSIZE,
	       "larger than KEY_DOC_MAX: MDB_BAD_VALSIZE");
	free(big);
	TAP_OK(store_key_doc_put(t, &s, "", DOC1, strlen(DOC1), 1000) == MDB_BAD_VALSIZE, "no server name: refused");

	/* the key readers never see the document row */
	struct key_rec r = { 0 };
	TAP_OK(store_key_get_rec(t, &s, "a.test", "", &r) == MDB_NOTFOUND, "key get with an empty key ID: not the document");
	TAP_OK(store_key_put_rec(t, &s, "a.test", "", &r) == MDB_BAD_VALSIZE, "key put with an empty key ID: refused");
	TAP_OK(store_key_usable(t, &s, "a.test", 0) == 1, "usable: the key row still counts");
	TAP_OK(store_key_usable(t, &s, "b.test", 0) == 0, "usable: nothing for b.test");
	struct store_iter it;
	struct server_key sk;
	int keys = 0, docs = 0, other = 0;
	store_iter_open(&it, t, &s, DB_SERVER_KEYS, NULL, 0);
	while (store_iter_next(&it) == 1) {
		int rc = store_key_row(&it.k, &it.v, &sk);
		if (rc == 0) keys++;
		else if (rc == STORE_KEY_DOC_ROW) docs++;
		else other++;
	}
	store_iter_close(&it);
	TAP_OK(keys == 1 && docs == 1 && other == 0, "a walk: one key row, one document row (STORE_KEY_DOC_ROW)");

	/* picking from an answer */
	size_t off, len;
	char ans[1024];
	snprintf(ans, sizeof ans, "{\"server_keys\":[%s,{\"server_name\":\"b.test\",\"valid_until_ts\":9},%s]}", DOC1, DOC2);
	TAP_OK(store_key_doc_pick(ans, strlen(ans), "a.test", &off, &len, &vu) == 0 && vu == 2000
	       && len == strlen(DOC2) && !memcmp(ans + off, DOC2, len), "notary answer: the latest document naming a.test");
	TAP_OK(store_key_doc_pick(ans, strlen(ans), "c.test", &off, &len, &vu) == -1, "notary answer: none for c.test");
	TAP_OK(store_key_doc_pick(DOC1, strlen(DOC1), "a.test", &off, &len, &vu) == 0 && off == 0
	       && len == strlen(DOC1) && vu == 1000, "a bare document naming a.test");
	TAP_OK(store_key_doc_pick(DOC1, strlen(DOC1), "b.test", &off, &len, &vu) == -1, "a bare document naming another");
	TAP_OK(store_key_doc_pick("nope", 4, "a.test", &off, &len, &vu) == -1, "not JSON: -1");
	mdb_txn_abort(t);
	TAP_OK(store_key_doc_put_answer(t = store_begin(&s, 0), &s, "a.test", ans, strlen(ans)) == 0
	       && store_key_doc_get(t, &s, "a.test", &doc, &n, &vu, NULL) == 0 && vu == 2000, "put_answer stores the pick");
	TAP_OK(store_key_doc_put_answer(t, &s, "c.test", ans, strlen(ans)) == 0
	       && store_key_doc_get(t, &s, "c.test", &doc, &n, &vu, NULL) == MDB_NOTFOUND, "put_answer with nothing for c.test: 0, nothing");
	mdb_txn_abort(t);
	tmpstore_close(&s, dir);
	return tap_done();
}
