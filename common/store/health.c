/* health.c: the server_health record (layout in health.h). */
#include <string.h>
#include "store/health.h"
#include "matrix/json.h"

void store_health_encode(struct buf *b, const struct health_rec *h)
{
	buf_adds(b, "{\"last_error\":");
	json_put_string(b, h->last_error, strlen(h->last_error));
	buf_printf(b, ",\"last_ok_ms\":%lld,\"latency_ms\":%lld,\"streak\":%lld,\"until_ms\":%lld}",
	           h->last_ok_ms, h->latency_ms, h->streak, h->until_ms);
}

static long long jint(const struct json_doc *d, const char *k)
{
	int t = json_obj_get(d, 0, k);
	return t >= 0 && d->tok[t].type == JSON_INT ? d->tok[t].ival : 0;
}

int store_health_decode(const void *v, size_t n, struct health_rec *h)
{
	struct json_doc d = { 0 };
	int rc = -1;
	memset(h, 0, sizeof *h);
	if (json_parse(&d, v, n, 4) == 0 && d.tok[0].type == JSON_OBJECT) {
		h->streak = jint(&d, "streak");
		h->until_ms = jint(&d, "until_ms");
		h->last_ok_ms = jint(&d, "last_ok_ms");
		h->latency_ms = jint(&d, "latency_ms");
		int t = json_obj_get(&d, 0, "last_error");
		if (t >= 0 && d.tok[t].type == JSON_STRING)
			json_str_copy(&d, t, h->last_error, sizeof h->last_error);
		rc = 0;
	}
	json_doc_free(&d);
	return rc;
}

int store_health_get(MDB_txn *t, struct store *s, const char *server, struct health_rec *h)
{
	MDB_val v;
	int rc = store_get(t, s, DB_SERVER_HEALTH, server, strlen(server), &v);
	if (rc) { memset(h, 0, sizeof *h); return rc; }
	return store_health_decode(v.mv_data, v.mv_size, h) ? MDB_CORRUPTED : 0;
}

int store_health_put(MDB_txn *t, struct store *s, const char *server, const struct health_rec *h)
{
	struct buf b;
	buf_init(&b);
	store_health_encode(&b, h);
	int rc = store_put(t, s, DB_SERVER_HEALTH, server, strlen(server), b.data, b.len, 0);
	buf_free(&b);
	return rc;
}

int store_health_del(MDB_txn *t, struct store *s, const char *server)
{
	return store_del(t, s, DB_SERVER_HEALTH, server, strlen(server));
}

int store_health_row(const MDB_val *k, const MDB_val *v, const char **server, size_t *len,
                     struct health_rec *h)
{
	*server = k->mv_data;
	*len = k->mv_size;
	return store_health_decode(v->mv_data, v->mv_size, h);
}
