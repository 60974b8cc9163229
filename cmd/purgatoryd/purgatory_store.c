/* purgatory_store.c: the write batch. Verdicts are checked and queued as they
 * arrive; at the end of the loop turn everything queued is decided in one
 * transaction (strfry's writer): store / hold / reject, each one's inbox row
 * deleted in that same transaction; then feedpump is woken. */
#include <stdlib.h>
#include <string.h>
#include "purgatory.h"
#include "core/log.h"

void verdict_free(struct verdict *v)
{
	if (!v) return;
	free(v->message);
	free(v->from);
	free(v->body);
	free(v);
}

static char *dup_str(const struct json_doc *d, int t)
{
	if (t < 0 || d->tok[t].type != JSON_STRING) return NULL;
	size_t n = json_str_len(d, t);
	char *s = malloc(n + 1);
	if (!s) log_panic("out of memory");
	if (json_str_copy(d, t, s, n + 1) < 0) { free(s); return NULL; }
	return s;
}

/* Check a VERDICT frame and queue it. -1 with *why on malformed input. */
int purgatory_verdict_frame(struct purgatoryd *p, const struct frame *f, const char **why)
{
	const char *meta, *body;
	size_t ml, bl;
	struct json_doc *d = &p->doc;
	if (frame_split_meta(f, &meta, &ml, &body, &bl) < 0) { *why = "no meta line"; return -1; }
	if (json_parse(d, meta, ml, 8) < 0 || d->tok[0].type != JSON_OBJECT) {
		*why = "meta line is not a JSON object"; return -1;
	}
	struct verdict *v = calloc(1, sizeof *v);
	if (!v) log_panic("out of memory");
	v->inbox = f->id;
	int t = json_obj_get(d, 0, "verdict");
	if (t >= 0 && json_str_eq(d, t, "accept")) v->accept = 1;
	else if (t >= 0 && json_str_eq(d, t, "reject")) v->accept = 0;
	else { *why = "verdict is neither \"accept\" nor \"reject\""; goto bad; }
	t = json_obj_get(d, 0, "event_id");
	if (t >= 0 && d->tok[t].type == JSON_STRING &&
	    json_str_copy(d, t, v->event_id, sizeof v->event_id) > 0 && v->event_id[0] == '$')
		;
	else if (v->accept) { *why = "accepted verdict without a valid event_id"; goto bad; }
	else v->event_id[0] = 0;
	t = json_obj_get(d, 0, "reason");
	if (t >= 0 && d->tok[t].type == JSON_STRING) (void)json_str_copy(d, t, v->reason, sizeof v->reason);
	v->message = dup_str(d, json_obj_get(d, 0, "message"));
	v->from = dup_str(d, json_obj_get(d, 0, "from"));
	t = json_obj_get(d, 0, "redacted");
	v->redacted = t >= 0 && d->tok[t].type == JSON_TRUE;
	t = json_obj_get(d, 0, "room_version");
	if (t >= 0 && d->tok[t].type == JSON_INT) v->rv = (int)d->tok[t].ival;
	else if (t >= 0 && d->tok[t].type == JSON_STRING) {
		char rv[16];
		if (json_str_copy(d, t, rv, sizeof rv) > 0) v->rv = atoi(rv);
	}
	if (v->accept && (bl == 0 || bl > PDU_MAX_BYTES * 2)) { *why = "accepted verdict without PDU bytes"; goto bad; }
	v->body = malloc(bl + 1);
	if (!v->body) log_panic("out of memory");
	memcpy(v->body, body, bl);
	v->body[bl] = 0;
	v->body_len = bl;
	if (p->stalled && p->nvq >= (size_t)p->batch_max) {
		/* the store is full: this verdict's inbox row stays, and
		 * validated's rescan sends it again (nothing is lost) */
		p->dropped_full++;
		verdict_free(v);
		return 0;
	}
	*p->vq_tail = v;
	p->vq_tail = &v->next;
	p->nvq++;
	return 0;
bad:
	verdict_free(v);
	return -1;
}

static void decide(struct purgatoryd *p, struct tx *x, struct verdict *v)
{
	struct store *s = p->d->st;
	struct inbox_rec ir;
	char from[PSTORE_NAME_MAX] = "";
	int in_inbox = 0;
	(*p->c_verdicts)++;
	if (v->inbox) {
		if (store_inbox_get(x->t, s, v->inbox, &ir) == 0) {
			in_inbox = 1;
			size_t l = ir.from_len < sizeof from ? ir.from_len : sizeof from - 1;
			memcpy(from, ir.from, l);
			from[l] = 0;
		} else {
			/* already decided (a re-sent verdict): a no-op, whatever it says */
			(*p->c_dups)++;
			return;
		}
	}
	if (!from[0] && v->from) snprintf(from, sizeof from, "%s", v->from);
	if (v->accept)
		purgatory_accept(p, x, v, from);
	else {
		int rc = pstore_reject_put(x->t, s, v->event_id, v->reason[0] ? v->reason : "rejected",
		                           v->message, from, v->body, v->body_len, x->now);
		if (rc) { tx_fail(x, rc, "rejects put"); return; }
		(*p->c_rejected)++;
		log_debug("rejected %s from %s: %s", v->event_id[0] ? v->event_id : "(no id)",
		          from[0] ? from : "-", v->reason);
	}
	if (in_inbox) {
		unsigned char k[8];
		be64_put(k, v->inbox);
		int rc = store_del(x->t, s, DB_INBOX, k, 8);
		if (rc && rc != MDB_NOTFOUND) tx_fail(x, rc, "inbox del");
	}
}

/* Also writes the fetch pacing of rooms whose attempts started or ended
 * this turn into their held rows, in the same transaction. */
/* The batch's verdicts are kept until its txn commits: a txn that could not
 * be written (store full) puts them back in front of the queue, in order. */
void purgatory_flush(struct purgatoryd *p)
{
	if (p->stalled) return;             /* the tick retries */
	while (p->vq || p->ndirty) {
		struct tx x;
		struct verdict *batch = NULL, **bt = &batch;
		size_t nb = 0;
		tx_begin(p, &x);
		for (int n = 0; p->vq && n < p->batch_max && !x.err; n++) {
			struct verdict *v = p->vq;
			p->vq = v->next;
			if (!p->vq) p->vq_tail = &p->vq;
			p->nvq--;
			decide(p, &x, v);
			v->next = NULL;
			*bt = v;
			bt = &v->next;
			nb++;
		}
		if (p->ndirty && !x.err) purgatory_persist_rooms(p, &x);
		int rc = tx_commit(p, &x);
		if (rc == 0) {
			while (batch) {
				struct verdict *v = batch;
				batch = v->next;
				verdict_free(v);
			}
			continue;
		}
		if (batch) {
			*bt = p->vq;
			if (!p->vq) p->vq_tail = bt;
			p->vq = batch;
			p->nvq += nb;
		}
		if (rc < 0) return;
	}
}
