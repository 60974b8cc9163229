/* served_probe.c: what other servers ask before they talk to us. GET
 * /.well-known/matrix/server names the host[:port] that serves this node's
 * federation ([served] well_known: delegation, server-server API "Resolving
 * server names" step 3); 404 while it is unset. The value is read from the
 * configuration at each request, so a reload changes the answer at once. */
#include "served.h"
#include "matrix/json.h"
#include <string.h>

/* A resolver caches the answer by Cache-Control (24 h by default, 48 h at
 * most): one day, the spec's default, so a changed delegation is seen by
 * the next day. */
#define WELL_KNOWN_MAX_AGE "max-age=86400"

void probe_well_known(struct served *s, struct evhttp_request *req)
{
	const char *wk = cfg_str(&s->d->cfg, "served", "well_known");
	if (!*wk) {
		served_error(s, req, 404, "M_NOT_FOUND", "no server delegation here ([served] well_known is not set)");
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_adds(&b, "{\"m.server\":");
	json_put_string(&b, wk, strlen(wk));
	buf_addc(&b, '}');
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", WELL_KNOWN_MAX_AGE);
	served_json(req, 200, "OK", &b);
	buf_free(&b);
}
