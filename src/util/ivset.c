/*
 * ivset.c - sets of page numbers as sorted, disjoint, non-adjacent intervals.
 *
 * Pools use them to know which of their pages exist and which are mapped. The number of
 * intervals follows the number of extents, not pages, so a sorted array with memmove is
 * small and fast enough. Not thread safe: the owner's lock protects a set.
 */
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* First index whose interval ends at or after lo (candidates to touch [lo, ...)). */
static size_t lower(const struct leap__ivset *s, uint64_t lo)
{
	size_t a = 0, b = s->n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (s->v[m].hi < lo)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static int reserve(struct leap__ivset *s, size_t need)
{
	if (need <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap * 2 : 8;
	while (cap < need)
		cap *= 2;
	struct leap__iv *v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

/* Add [lo, hi), merging with overlapping or adjacent intervals. */
int leap__ivset_add(struct leap__ivset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return 0;
	if (reserve(s, s->n + 1))
		return -ENOMEM;
	size_t i = lower(s, lo), j = i;
	uint64_t nlo = lo, nhi = hi, gone = 0;
	/* absorb every interval that overlaps or touches [lo, hi) */
	while (j < s->n && s->v[j].lo <= hi) {
		if (s->v[j].lo < nlo)
			nlo = s->v[j].lo;
		if (s->v[j].hi > nhi)
			nhi = s->v[j].hi;
		gone += s->v[j].hi - s->v[j].lo;
		j++;
	}
	if (j == i) {
		memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
		s->n++;
	} else if (j > i + 1) {
		memmove(&s->v[i + 1], &s->v[j], (s->n - j) * sizeof(*s->v));
		s->n -= j - i - 1;
	}
	s->v[i] = (struct leap__iv){ nlo, nhi };
	s->total += (nhi - nlo) - gone;
	return 0;
}

/* Remove [lo, hi); may split one interval in two. */
int leap__ivset_remove(struct leap__ivset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return 0;
	if (reserve(s, s->n + 1))
		return -ENOMEM;
	size_t i = lower(s, lo + 1); /* first interval with hi > lo */
	while (i < s->n && s->v[i].lo < hi) {
		struct leap__iv *v = &s->v[i];
		uint64_t clo = v->lo > lo ? v->lo : lo, chi = v->hi < hi ? v->hi : hi;
		s->total -= chi - clo;
		if (v->lo < lo && v->hi > hi) { /* split */
			memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
			s->n++;
			s->v[i].hi = lo;
			s->v[i + 1].lo = hi;
			return 0;
		}
		if (v->lo < lo) {
			v->hi = lo;
			i++;
		} else if (v->hi > hi) {
			v->lo = hi;
			i++;
		} else {
			memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
			s->n--;
		}
	}
	return 0;
}

/* Number of pages of [lo, hi) that are in the set. */
uint64_t leap__ivset_covered(const struct leap__ivset *s, uint64_t lo, uint64_t hi)
{
	uint64_t c = 0;
	for (size_t i = lower(s, lo + 1); i < s->n && s->v[i].lo < hi; i++) {
		uint64_t a = s->v[i].lo > lo ? s->v[i].lo : lo;
		uint64_t b = s->v[i].hi < hi ? s->v[i].hi : hi;
		c += b - a;
	}
	return c;
}

void leap__ivset_free(struct leap__ivset *s)
{
	free(s->v);
	*s = (struct leap__ivset){ 0 };
}

/* Each maximal interval of [lo, hi) not in s. */
int leap__ivset_gaps_each(const struct leap__ivset *s, uint64_t lo, uint64_t hi,
			  int (*fn)(uint64_t, uint64_t, void *), void *arg)
{
	uint64_t cur = lo;
	for (size_t i = lower(s, lo + 1); i < s->n && s->v[i].lo < hi && cur < hi; i++) {
		if (s->v[i].lo > cur) {
			int rc = fn(cur, s->v[i].lo, arg);
			if (rc)
				return rc;
		}
		if (s->v[i].hi > cur)
			cur = s->v[i].hi;
	}
	return cur < hi ? fn(cur, hi, arg) : 0;
}

/* Each maximal interval of a \ b. */
int leap__ivset_diff_each(const struct leap__ivset *a, const struct leap__ivset *b,
			  int (*fn)(uint64_t, uint64_t, void *), void *arg)
{
	for (size_t i = 0; i < a->n; i++) {
		int rc = leap__ivset_gaps_each(b, a->v[i].lo, a->v[i].hi, fn, arg);
		if (rc)
			return rc;
	}
	return 0;
}
