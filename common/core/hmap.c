/* hmap.c: see hmap.h. */
#include "core/hmap.h"
#include "core/xalloc.h"
#include <stdlib.h>

uint64_t hmap_hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
	return h;
}

uint64_t hmap_hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
	return h;
}

static void grow(struct hmap *m)
{
	size_t nc = m->cap ? m->cap * 2 : 64;
	struct hmap_node **nt = xcalloc(nc, sizeof *nt);
	for (size_t i = 0; i < m->cap; i++)
		for (struct hmap_node *n = m->tab[i], *next; n; n = next) {
			next = n->next;
			size_t b = n->hash & (nc - 1);
			n->next = nt[b];
			nt[b] = n;
		}
	free(m->tab);
	m->tab = nt;
	m->cap = nc;
}

void hmap_insert(struct hmap *m, struct hmap_node *node, uint64_t hash)
{
	if (m->n + 1 > m->cap) grow(m);
	size_t b = hash & (m->cap - 1);
	node->hash = hash;
	node->next = m->tab[b];
	m->tab[b] = node;
	m->n++;
}

void hmap_remove(struct hmap *m, struct hmap_node *node)
{
	if (!m->cap) return;
	for (struct hmap_node **pp = &m->tab[node->hash & (m->cap - 1)]; *pp; pp = &(*pp)->next)
		if (*pp == node) {
			*pp = node->next;
			node->next = NULL;
			m->n--;
			return;
		}
}

size_t hmap_count(const struct hmap *m)
{
	return m->n;
}

struct hmap_node *hmap_chain(const struct hmap *m, uint64_t hash)
{
	return m->cap ? m->tab[hash & (m->cap - 1)] : NULL;
}

void hmap_iter_init(struct hmap_iter *it, const struct hmap *m)
{
	it->m = m;
	it->b = 0;
	it->next = NULL;
}

struct hmap_node *hmap_iter_next(struct hmap_iter *it)
{
	while (!it->next && it->b < it->m->cap) it->next = it->m->tab[it->b++];
	struct hmap_node *n = it->next;
	if (n) it->next = n->next;
	return n;
}

void hmap_free(struct hmap *m)
{
	free(m->tab);
	m->tab = NULL;
	m->cap = m->n = 0;
}
