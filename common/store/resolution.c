/* resolution.c: the server_resolution record (layout in resolution.h). */
#include <string.h>
#include "store/resolution.h"
#include "matrix/json.h"

static void put_s(struct buf *b, const char *k, const char *v, int first)
{
	buf_printf(b, "%s\"%s\":", first ? "" : ",", k);
	json_put_string(b, v, strlen(v));
}

void store_resolution_encode(struct buf *b, const struct resolution *r)
{
	buf_adds(b, "{\"error\":");
	json_put_string(b, r->error, strlen(r->error));
	buf_printf(b, ",\"expires_ms\":%lld", r->expires_ms);
	put_s(b, "name", r->name, 0);
	buf_printf(b, ",\"resolved_ms\":%lld,\"steps\":[", r->resolved_ms);
	for (int i = 0; i < r->nsteps; i++) {
		const struct resolve_step *s = &r->steps[i];
		buf_adds(b, i ? ",{" : "{");
		put_s(b, "answer", s->answer, 1);
		buf_printf(b, ",\"cached\":%d,\"expires_ms\":%lld", s->cached ? 1 : 0, s->expires_ms);
		put_s(b, "query", s->query, 0);
		put_s(b, "what", s->what, 0);
		buf_addc(b, '}');
	}
	buf_adds(b, "],\"targets\":[");
	for (int i = 0; i < r->ntargets; i++) {
		const struct resolve_target *t = &r->targets[i];
		buf_adds(b, i ? ",{\"addrs\":[" : "{\"addrs\":[");
		for (int k = 0; k < t->naddrs; k++) {
			if (k) buf_addc(b, ',');
			json_put_string(b, t->addrs[k], strlen(t->addrs[k]));
		}
		buf_addc(b, ']');
		put_s(b, "connect_host", t->connect_host, 0);
		put_s(b, "host", t->host_header, 0);
		buf_printf(b, ",\"port\":%d", t->port);
		put_s(b, "tls_name", t->tls_name, 0);
		buf_addc(b, '}');
	}
	buf_printf(b, "],\"v\":1,\"wk\":%d", r->wk);
	put_s(b, "wk_error", r->wk_error, 0);
	buf_printf(b, ",\"wk_expires_ms\":%lld", r->wk_expires_ms);
	put_s(b, "wk_server", r->wk_server, 0);
	buf_addc(b, '}');
}

static long long jint(const struct json_doc *d, int obj, const char *k)
{
	int t = json_obj_get(d, obj, k);
	return t >= 0 && d->tok[t].type == JSON_INT ? d->tok[t].ival : 0;
}

static void jstr(const struct json_doc *d, int obj, const char *k, char *out, size_t cap)
{
	int t = json_obj_get(d, obj, k);
	out[0] = 0;
	if (t >= 0 && d->tok[t].type == JSON_STRING && json_str_copy(d, t, out, cap) < 0) out[0] = 0;
}

int store_resolution_decode(const void *v, size_t n, struct resolution *r)
{
	struct json_doc d = { 0 };
	int rc = -1;
	memset(r, 0, sizeof *r);
	if (json_parse(&d, v, n, 6) == 0 && d.tok[0].type == JSON_OBJECT) {
		jstr(&d, 0, "name", r->name, sizeof r->name);
		jstr(&d, 0, "error", r->error, sizeof r->error);
		jstr(&d, 0, "wk_server", r->wk_server, sizeof r->wk_server);
		jstr(&d, 0, "wk_error", r->wk_error, sizeof r->wk_error);
		r->expires_ms = jint(&d, 0, "expires_ms");
		r->resolved_ms = jint(&d, 0, "resolved_ms");
		r->wk_expires_ms = jint(&d, 0, "wk_expires_ms");
		long long wk = jint(&d, 0, "wk");
		r->wk = wk >= RESOLVE_WK_NONE && wk <= RESOLVE_WK_FAILED ? (int)wk : RESOLVE_WK_NONE;
		int a = json_obj_get(&d, 0, "targets");
		if (a >= 0 && d.tok[a].type == JSON_ARRAY)
			for (int e = json_first(&d, a); e >= 0 && r->ntargets < RESOLVE_MAX_TARGETS;
			     e = json_next_elem(&d, a, e)) {
				if (d.tok[e].type != JSON_OBJECT) continue;
				struct resolve_target *t = &r->targets[r->ntargets++];
				jstr(&d, e, "host", t->host_header, sizeof t->host_header);
				jstr(&d, e, "tls_name", t->tls_name, sizeof t->tls_name);
				jstr(&d, e, "connect_host", t->connect_host, sizeof t->connect_host);
				t->port = (int)jint(&d, e, "port");
				int l = json_obj_get(&d, e, "addrs");
				if (l >= 0 && d.tok[l].type == JSON_ARRAY)
					for (int x = json_first(&d, l); x >= 0 && t->naddrs < RESOLVE_MAX_ADDRS;
					     x = json_next_elem(&d, l, x))
						if (d.tok[x].type == JSON_STRING &&
						    json_str_copy(&d, x, t->addrs[t->naddrs], RESOLVE_ADDR_MAX) >= 0)
							t->naddrs++;
			}
		a = json_obj_get(&d, 0, "steps");
		if (a >= 0 && d.tok[a].type == JSON_ARRAY)
			for (int e = json_first(&d, a); e >= 0 && r->nsteps < RESOLVE_MAX_STEPS;
			     e = json_next_elem(&d, a, e)) {
				if (d.tok[e].type != JSON_OBJECT) continue;
				struct resolve_step *s = &r->steps[r->nsteps++];
				jstr(&d, e, "what", s->what, sizeof s->what);
				jstr(&d, e, "query", s->query, sizeof s->query);
				jstr(&d, e, "answer", s->answer, sizeof s->answer);
				s->expires_ms = jint(&d, e, "expires_ms");
				s->cached = (int)jint(&d, e, "cached");
			}
		rc = 0;
	}
	json_doc_free(&d);
	if (rc) memset(r, 0, sizeof *r);
	return rc;
}

int store_resolution_get(MDB_txn *t, struct store *s, const char *name, struct resolution *r)
{
	MDB_val v;
	int rc = store_get(t, s, DB_SERVER_RESOLUTION, name, strlen(name), &v);
	if (rc) { memset(r, 0, sizeof *r); return rc; }
	if (store_resolution_decode(v.mv_data, v.mv_size, r) || strcmp(r->name, name)) {
		memset(r, 0, sizeof *r);
		return MDB_CORRUPTED;
	}
	return 0;
}

int store_resolution_put(MDB_txn *t, struct store *s, const struct resolution *r)
{
	struct buf b;
	buf_init(&b);
	store_resolution_encode(&b, r);
	int rc = store_put(t, s, DB_SERVER_RESOLUTION, r->name, strlen(r->name), b.data, b.len, 0);
	buf_free(&b);
	return rc;
}

int store_resolution_del(MDB_txn *t, struct store *s, const char *name)
{
	return store_del(t, s, DB_SERVER_RESOLUTION, name, strlen(name));
}
