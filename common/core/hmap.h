/* hmap.h: the one hash table. Intrusive and chained: a struct that goes
 * in a map embeds a struct hmap_node; the map stores pointers to those nodes
 * with each key's 64-bit FNV-1a hash and never copies or frees keys or
 * entries. Promises: a zeroed struct hmap is an empty map; insertion grows
 * the table (doubling, load <= 1) so lookups stay O(1); removing a node is
 * O(chain); a node's address is stable (the map only links it); iteration
 * order is unspecified; allocation failure aborts (xalloc).
 *
 *   struct held { struct hmap_node hn; char id[]; };
 *   uint64_t h = hmap_hash_str(id);
 *   HMAP_FOR_HASH(&m, h, n) {
 *       struct held *e = HMAP_ENTRY(n, struct held, hn);
 *       if (!strcmp(e->id, id)) return e;
 *   }
 */
#ifndef FP_HMAP_H
#define FP_HMAP_H
#include <stddef.h>
#include <stdint.h>

struct hmap_node { struct hmap_node *next; uint64_t hash; };
struct hmap { struct hmap_node **tab; size_t cap, n; };

uint64_t hmap_hash(const void *key, size_t n);     /* FNV-1a, 64 bits */
uint64_t hmap_hash_str(const char *s);             /* the same over strlen(s) bytes */

void   hmap_insert(struct hmap *m, struct hmap_node *node, uint64_t hash);
void   hmap_remove(struct hmap *m, struct hmap_node *node);   /* must be in m */
size_t hmap_count(const struct hmap *m);
/* The chain that holds every node of this hash (and others): walk ->next,
 * compare ->hash, then the key. NULL when empty. */
struct hmap_node *hmap_chain(const struct hmap *m, uint64_t hash);
/* Every node once, in no order. The node returned last may be removed
 * (and freed) before the next call; no other change to m while walking. */
struct hmap_iter { const struct hmap *m; size_t b; struct hmap_node *next; };
void   hmap_iter_init(struct hmap_iter *it, const struct hmap *m);
struct hmap_node *hmap_iter_next(struct hmap_iter *it);
/* Free the table (not the entries: walk and free them first if owned). */
void   hmap_free(struct hmap *m);

#define HMAP_ENTRY(node, type, member) \
	((type *)(void *)((char *)(node) - offsetof(type, member)))
#define HMAP_FOR_HASH(m, h, n) \
	for (struct hmap_node *n = hmap_chain((m), (h)); n; n = n->next) \
		if (n->hash == (h))

#endif
