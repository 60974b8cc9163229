/* feed_outbox.c: outbox row encoding and the feed cursor (see feed_outbox.h). */
#include <stdio.h>
#include <string.h>
#include "feed/feed_outbox.h"
#include "matrix/json.h"

int outbox_row_parse(const void *p, size_t n, struct outbox_row *r)
{
	struct json_doc d = {0};
	memset(r, 0, sizeof *r);
	if (json_parse(&d, p, n, 8) < 0 || d.tok[0].type != JSON_OBJECT) { json_doc_free(&d); return -1; }
	int t;
	int rc = -1;
	if ((t = json_obj_get(&d, 0, "event_id")) < 0 || d.tok[t].type != JSON_STRING
	    || json_str_copy(&d, t, r->event_id, sizeof r->event_id) <= 0)
		goto out;
	if ((t = json_obj_get(&d, 0, "attempts")) >= 0 && d.tok[t].type == JSON_INT)
		r->attempts = d.tok[t].ival;
	if ((t = json_obj_get(&d, 0, "control_version")) >= 0 && d.tok[t].type == JSON_INT && d.tok[t].ival > 0)
		r->control_version = (uint64_t)d.tok[t].ival;
	if ((t = json_obj_get(&d, 0, "published_ms")) >= 0 && d.tok[t].type == JSON_INT)
		r->published_ms = d.tok[t].ival;
	if ((t = json_obj_get(&d, 0, "last_error")) >= 0 && d.tok[t].type == JSON_STRING) {
		char tmp[1024];
		int l = json_str_copy(&d, t, tmp, sizeof tmp);
		if (l > 0) feed_clip_utf8(r->last_error, tmp, (size_t)l, FEED_ERR_MAX);
	}
	rc = 0;
out:
	json_doc_free(&d);
	return rc;
}

void outbox_row_encode(struct buf *out, const struct outbox_row *r)
{
	buf_printf(out, "{\"attempts\":%lld,\"control_version\":", (long long)r->attempts);
	if (r->control_version) buf_printf(out, "%llu", (unsigned long long)r->control_version);
	else buf_adds(out, "null");
	buf_adds(out, ",\"event_id\":");
	json_put_string(out, r->event_id, strlen(r->event_id));
	buf_adds(out, ",\"last_error\":");
	if (r->last_error[0]) json_put_string(out, r->last_error, strlen(r->last_error));
	else buf_adds(out, "null");
	buf_adds(out, ",\"published_ms\":");
	if (r->published_ms) buf_printf(out, "%lld", (long long)r->published_ms);
	else buf_adds(out, "null");
	buf_addc(out, '}');
}

uint64_t feed_cursor_get(MDB_txn *t, struct store *s)
{
	MDB_val v;
	if (store_get(t, s, DB_LEASES, FEED_CURSOR_KEY, strlen(FEED_CURSOR_KEY), &v) == 0 && v.mv_size == 8)
		return be64_get(v.mv_data);
	return 0;
}

int feed_cursor_put(MDB_txn *t, struct store *s, uint64_t pos)
{
	unsigned char b[8];
	be64_put(b, pos);
	return store_put(t, s, DB_LEASES, FEED_CURSOR_KEY, strlen(FEED_CURSOR_KEY), b, 8, 0);
}
