/* vclock.h: vector clocks for pull sync (a peer that is known to hold
 * everything another peer has need not be pulled for it). A clock maps node IDs
 * (ULIDs) to stream positions on that node. Promises: entries are kept
 * sorted by node ID; merge takes the maximum per entry and never holds more
 * than VCLOCK_MAX entries (when full, new IDs are dropped, lowest first kept
 * deterministic: the entries with the smallest positions are evicted);
 * compare tells before / after / equal / concurrent apart (equal is not
 * concurrent); a missing entry counts as 0. */
#ifndef FP_VCLOCK_H
#define FP_VCLOCK_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "matrix/json.h"

#define VCLOCK_MAX 256
#define VCLOCK_ID_MAX 32

struct vclock_entry { char id[VCLOCK_ID_MAX]; uint64_t pos; };
struct vclock { struct vclock_entry e[VCLOCK_MAX]; size_t n; };

enum vclock_order {
	VC_EQUAL = 0,       /* same positions everywhere */
	VC_BEFORE = -1,     /* a happened before b: a <= b everywhere, < somewhere */
	VC_AFTER = 1,       /* b happened before a */
	VC_CONCURRENT = 2,  /* each has something the other lacks */
};

void     vclock_init(struct vclock *v);
uint64_t vclock_get(const struct vclock *v, const char *id);
/* Set id to max(current, pos). Returns 0, or -1 if the id is invalid
 * (empty or too long) or the clock is full and pos is smaller than every entry. */
int      vclock_advance(struct vclock *v, const char *id, uint64_t pos);
void     vclock_merge(struct vclock *dst, const struct vclock *src);
/* Trust: a clock received from node id is believed only about id itself
 * (its own stream head); what it says of third nodes may be a lie meant to
 * make us skip pulls (a hostile peer). dst = { id: src[id] } (empty if absent).
 * A skip decision compares such self entries only, never merged clocks. */
void     vclock_self(struct vclock *dst, const struct vclock *src, const char *id);
enum vclock_order vclock_compare(const struct vclock *a, const struct vclock *b);
const char *vclock_order_str(enum vclock_order o);
/* JSON object {"<id>":N,...} (ids sorted: canonical). */
void     vclock_to_json(const struct vclock *v, struct buf *out);
/* From a parsed JSON object token (entries with bad ids or non-integers are
 * skipped); returns entries read or -1 if t is not an object. */
int      vclock_from_json(struct vclock *v, const struct json_doc *d, int t);
int      vclock_parse(struct vclock *v, const char *json, size_t n);

#endif
