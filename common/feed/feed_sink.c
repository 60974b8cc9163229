/* feed_sink.c: the sink registry and helpers shared by the feed backends.
 * Backends register from constructors. Because common/ is a static archive,
 * an object nobody references is never linked; the anchor list below is the
 * C form of Go's blank import for the built-in backends (a program that
 * links its own backend object needs nothing here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "feed/feed_sink.h"
#include "core/buf.h"
#include "matrix/json.h"
#include "core/xalloc.h"

extern const struct feed_sink_ops feed_sink_nop_ops, feed_sink_file_ops,
	feed_sink_stdout_ops, feed_sink_nats_ops;
const void *const feed_sink_builtin_anchor[] = {
	&feed_sink_nop_ops, &feed_sink_file_ops, &feed_sink_stdout_ops, &feed_sink_nats_ops,
};

#define MAX_SINKS 32
static const struct feed_sink_ops *sinks[MAX_SINKS];
static int nsinks;

void feed_sink_register(const struct feed_sink_ops *ops)
{
	for (int i = 0; i < nsinks; i++)
		if (sinks[i] == ops || strcmp(sinks[i]->name, ops->name) == 0)
			return;
	if (nsinks < MAX_SINKS)
		sinks[nsinks++] = ops;
}

void feed_sink_names(char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	(void)feed_sink_builtin_anchor;
	for (int i = 0; i < nsinks && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", sinks[i]->name);
}

struct feed_sink *feed_sink_open(const char *name, const struct feed_opts *o,
                                 int *unknown, char *err, size_t errlen)
{
	*unknown = 0;
	for (int i = 0; i < nsinks; i++) {
		if (strcmp(sinks[i]->name, name) != 0)
			continue;
		struct feed_sink *s = xcalloc(1, sizeof *s);
		s->ops = sinks[i];
		if (s->ops->open(s, o, err, errlen) < 0) { free(s); return NULL; }
		return s;
	}
	char names[256];
	feed_sink_names(names, sizeof names);
	*unknown = 1;
	snprintf(err, errlen, "unknown feed sink \"%s\" (available: %s)", name, names);
	return NULL;
}

void feed_sink_append(struct feed_sink *s, struct feed_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) { ev[i].rc = FEED_OK; ev[i].control_version = 0; ev[i].err[0] = 0; }
	s->ops->append(s, ev, n);
}

int feed_sink_async(const struct feed_sink *s)
{
	return s->ops->submit && s->ops->wait;
}

void feed_sink_submit(struct feed_sink *s, struct feed_event *ev, size_t n)
{
	if (!feed_sink_async(s)) { feed_sink_append(s, ev, n); return; }
	for (size_t i = 0; i < n; i++) { ev[i].rc = FEED_OK; ev[i].control_version = 0; ev[i].err[0] = 0; }
	s->ops->submit(s, ev, n);
}

int feed_sink_wait(struct feed_sink *s, struct feed_event *ev, size_t n, int block)
{
	return feed_sink_async(s) ? s->ops->wait(s, ev, n, block) : 1;
}

void feed_sink_close(struct feed_sink *s)
{
	if (!s) return;
	if (s->ops->close) s->ops->close(s);
	free(s);
}

int feed_sink_closed(struct feed_sink *s)
{ return s && s->ops->closed ? s->ops->closed(s) : 0; }

const char *feed_sink_name(const struct feed_sink *s) { return s->ops->name; }

void feed_opts_from_config(struct feed_opts *o, const struct config *cfg)
{
	memset(o, 0, sizeof *o);
	o->dir = cfg_str(cfg, "feed", "dir");
	o->nats_url = cfg_str(cfg, "feed", "nats_url");
	o->nats_subject = cfg_str(cfg, "feed", "nats_subject");
	o->nats_stream = cfg_str(cfg, "feed", "nats_stream");
	o->nats_durable = cfg_str(cfg, "feed", "nats_durable");
	o->nats_timeout_ms = cfg_ms(cfg, "feed", "nats_timeout");
	o->nats_dup_window_ms = cfg_ms(cfg, "feed", "nats_dup_window");
	o->nats_ack_wait_ms = cfg_ms(cfg, "feed", "nats_ack_wait");
	nats_sec_from_config(&o->nats_sec, cfg, "feed");
	o->fd = 1;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len; unsigned min;
	if (c < 0x80) return 1;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
	else if ((c & 0xf0) == 0xe0) { len = 3; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
	else return 0;
	if (n < len) return 0;
	unsigned cp = c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	return len;
}

size_t feed_clip_utf8(char *dst, const char *src, size_t srclen, size_t max)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t i = 0, o = 0;
	while (i < srclen) {
		size_t l = utf8_seq(p + i, srclen - i);
		if (l == 0 || p[i] == 0) {     /* invalid byte (or NUL): replace */
			if (o + 1 > max) break;
			dst[o++] = '?'; i++;
			continue;
		}
		if (o + l > max) break;        /* never split a character */
		memcpy(dst + o, p + i, l);
		o += l; i += l;
	}
	dst[o] = 0;
	return o;
}

static void put_u64(struct buf *out, uint64_t u)
{
	char t[24], *w = t + sizeof t;
	do *--w = (char)('0' + u % 10); while ((u /= 10) != 0);
	buf_add(out, w, (size_t)(t + sizeof t - w));
}

void feed_event_json(struct buf *out, const struct feed_event *e)
{
	buf_reserve(out, 96 + 6 * (strlen(e->event_id) + e->room_len) + e->pdu_len);
	buf_adds(out, "{\"control_version\":");
	put_u64(out, e->control_version);
	buf_adds(out, ",\"event_id\":");
	json_put_string(out, e->event_id, strlen(e->event_id));
	buf_adds(out, ",\"pdu\":");
	if (e->pdu_len) buf_add(out, e->pdu, e->pdu_len); else buf_adds(out, "null");
	buf_adds(out, ",\"room_id\":");
	json_put_string(out, e->room_id ? e->room_id : "", e->room_id ? e->room_len : 0);
	buf_adds(out, ",\"stream_pos\":");
	put_u64(out, e->pos);
	buf_addc(out, '}');
}

void feed_file_name(char *out, size_t cap, uint64_t cv, const char *event_id)
{
	snprintf(out, cap, "%020llu_%s.json", (unsigned long long)cv, event_id);
}

int feed_file_parse(const char *name, uint64_t *cv, char *idbuf, size_t idcap)
{
	size_t n = strlen(name);
	if (n < 27 || name[20] != '_' || strcmp(name + n - 5, ".json") != 0)
		return -1;
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9') return -1;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	size_t idl = n - 21 - 5;
	if (idl == 0 || idl >= idcap) return -1;
	memcpy(idbuf, name + 21, idl);
	idbuf[idl] = 0;
	*cv = v;
	return 0;
}
