/*
 * region.c - a reserved virtual range whose pages live in pool pages.
 *
 * Layout. A region of N pages takes, in the pool of each node it uses, one window of N
 * pages of pool offset space per bank. Page p of the region, when on node n in bank b,
 * lives at pool offset win[n][b] + p. Two neighbouring pages on the same node and bank
 * are therefore always neighbours in the same file, and the kernel keeps them in one
 * mapping. A region needs exactly as many kernel mappings as it has runs (maximal ranges
 * of pages with the same node and bank), whatever its history: the mapping count is
 * bounded by the placement, not by the number of migrations.
 *
 * Slots generalise nodes: slot n < node count is node n's own pool of the region's
 * kind of page, the slots above are external pools the region uses (leap_pool_open),
 * attached on first use and held until the region is destroyed.
 *
 * Huge pages: a region of LEAP_PAGES_HUGETLB or LEAP_PAGES_THP has a length in whole
 * huge pages, and its windows are aligned to huge pages (pool.c), so its huge page h is
 * always huge page h of a window: the kernel maps it with one entry.
 *
 * Banks exist for relocation: a page that moves to fresh physical pages on the node it
 * is already on needs a second slot on that node. Moving between nodes uses bank 0
 * unless a neighbour suggests another (see extent.c), so regions that only move between
 * nodes have exactly one run per stretch of pages on one node.
 *
 * Threads: region->lock guards the runs, windows, stats and job list; jobs hold it for
 * one extent at a time. base, npages, resv_len and wp never change after creation and
 * are read without the lock.
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t leap__region_find_run(const struct leap_region *r, uint64_t pg)
{
	size_t a = 0, b = r->nruns;
	while (b - a > 1) {
		size_t m = a + (b - a) / 2;
		if (r->runs[m].pg <= pg)
			a = m;
		else
			b = m;
	}
	return a;
}

int leap__region_slot_pool(struct leap_region *r, int slot, struct leap_pool **out)
{
	if (!r->slot[slot]) {
		int rc = leap__ctx_pool(r->ctx, slot, r->kind, &r->slot[slot]);
		if (rc)
			return rc;
	}
	*out = r->slot[slot];
	return 0;
}

int leap__region_pool_slot(struct leap_region *r, struct leap_pool *pool)
{
	if (pool->ctx != r->ctx || pool->kind != r->kind)
		return -EINVAL;
	if (!pool->external)
		return pool->node; /* a node's own pool of the region's kind */
	if (pool->dax && r->wp)
		return leap__why(-EOPNOTSUPP, leap__dax_why);
	int count = r->ctx->topo->count, free_slot = -1;
	for (int s = count; s < r->nslots; s++) {
		if (r->slot[s] == pool)
			return s;
		if (!r->slot[s] && free_slot < 0)
			free_slot = s;
	}
	if (free_slot < 0)
		return -ENOSPC;
	leap__pool_ref(pool);
	r->slot[free_slot] = pool;
	return free_slot;
}

int leap__region_window(struct leap_region *r, int slot, int bank, uint64_t *off)
{
	if (!r->win[slot]) {
		r->win[slot] = malloc(LEAP_BANKS_MAX * sizeof(**r->win));
		if (!r->win[slot])
			return -ENOMEM;
		memset(r->win[slot], 0xff, LEAP_BANKS_MAX * sizeof(**r->win));
		r->win_rows++;
	}
	if (r->win[slot][bank] == UINT64_MAX) {
		struct leap_pool *p;
		int rc = leap__region_slot_pool(r, slot, &p);
		if (!rc)
			rc = leap__pool_window_get(p, r->npages, &r->win[slot][bank]);
		if (rc)
			return rc;
	}
	*off = r->win[slot][bank];
	return 0;
}

void leap__region_release_unused(struct leap_region *r, int slot)
{
	if (!r->win[slot])
		return;
	uint64_t used = 0;
	for (size_t i = 0; i < r->nruns; i++)
		if (r->runs[i].slot == slot)
			used |= UINT64_C(1) << r->runs[i].bank;
	for (int b = 0; b < LEAP_BANKS_MAX; b++)
		if (r->win[slot][b] != UINT64_MAX && !(used & (UINT64_C(1) << b))) {
			leap__pool_window_put(r->slot[slot], r->win[slot][b], r->npages);
			r->win[slot][b] = UINT64_MAX;
		}
}

int leap__region_choose_bank(const struct leap_region *r, uint64_t a, uint64_t b,
			     const struct leap__move *mv)
{
	if (mv->bank >= 0)
		return mv->bank; /* compaction: pages in that bank stay, the others join */
	uint64_t busy = 0;
	int want[4] = { -1, -1, -1, 0 }; /* left neighbour, right neighbour, staying, 0 */
	for (size_t i = leap__region_find_run(r, a); i < r->nruns && r->runs[i].pg < b; i++) {
		const struct leap__run *x = &r->runs[i];
		if (x->slot != mv->target)
			continue;
		if (leap__moves(mv, x->slot, x->bank))
			busy |= UINT64_C(1) << x->bank;
		else if (want[2] < 0)
			want[2] = x->bank;
	}
	if (a > 0) {
		const struct leap__run *x = &r->runs[leap__region_find_run(r, a - 1)];
		if (x->slot == mv->target)
			want[0] = x->bank;
	}
	if (b < r->npages) {
		const struct leap__run *x = &r->runs[leap__region_find_run(r, b)];
		if (x->slot == mv->target)
			want[1] = x->bank;
	}
	for (int i = 0; i < 4; i++)
		if (want[i] >= 0 && !(busy & (UINT64_C(1) << want[i])))
			return want[i];
	for (int bank = 0; bank < LEAP_BANKS_MAX; bank++)
		if (!(busy & (UINT64_C(1) << bank)))
			return bank;
	return -EAGAIN; /* the range spans every bank: caller splits it */
}

static int same_place(const struct leap__run *a, const struct leap__run *b)
{
	return a->slot == b->slot && a->bank == b->bank && a->pg + a->n == b->pg;
}

/*
 * Room for `more` runs beyond the current ones in both run arrays (the runs and the
 * spare that assign builds into), so that assigns adding up to that many cannot fail:
 * an extent reserves before its point of no return (extent.c), since its commit must
 * not fail once the new pages are mapped. pre: lock held
 */
int leap__region_runs_reserve(struct leap_region *r, size_t more)
{
	size_t need = r->nruns + more;
	if (r->runs_cap < need) {
		struct leap__run *v = realloc(r->runs, need * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->runs = v;
		r->runs_cap = need;
	}
	if (r->spare_cap < need) {
		struct leap__run *v = malloc(need * sizeof(*v));
		if (!v)
			return -ENOMEM;
		free(r->spare);
		r->spare = v;
		r->spare_cap = need;
	}
	return 0;
}

/*
 * Make [pg, pg+n) one run on (node, bank), cutting the runs it overlaps, and merge it
 * with neighbours on the same node and bank. Rebuilds the array into the spare and
 * swaps them: O(runs), and runs are few (they are the region's kernel mappings). It adds
 * at most 2 runs, and allocates nothing when leap__region_runs_reserve() made room.
 */
int leap__region_assign(struct leap_region *r, uint64_t pg, uint64_t n, int slot, int bank)
{
	if (leap__region_runs_reserve(r, 3))
		return -ENOMEM;
	struct leap__run *out = r->spare;
	size_t k = 0;
	uint64_t end = pg + n;
	struct leap__run mid = { pg, n, slot, bank };
	bool placed = false;
	for (size_t i = 0; i < r->nruns; i++) {
		struct leap__run x = r->runs[i];
		uint64_t xe = x.pg + x.n;
		if (xe <= pg || x.pg >= end) { /* untouched */
			if (x.pg >= end && !placed) {
				out[k++] = mid;
				placed = true;
			}
			out[k++] = x;
			continue;
		}
		if (x.pg < pg) /* left part survives */
			out[k++] = (struct leap__run){ x.pg, pg - x.pg, x.slot, x.bank };
		if (!placed) {
			out[k++] = mid;
			placed = true;
		}
		if (xe > end) /* right part survives */
			out[k++] = (struct leap__run){ end, xe - end, x.slot, x.bank };
	}
	if (!placed)
		out[k++] = mid;
	/* merge equal neighbours */
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && same_place(&out[m - 1], &out[i]))
			out[m - 1].n += out[i].n;
		else
			out[m++] = out[i];
	}
	size_t cap = r->spare_cap;
	r->spare = r->runs;
	r->spare_cap = r->runs_cap;
	r->runs = out;
	r->runs_cap = cap;
	r->nruns = m;
	return 0;
}

/* Give back what a (possibly half-built) region holds: its address range, its pages
 * (to their pools, kept for reuse), its windows and external pools. The struct, its
 * lock and its references stay (lifetime.c). pre: no job runs on r. */
void leap__region_release(struct leap_region *r)
{
	/* base keeps its value: jobs compute addresses from it before they find the region
	 * dying under its lock, and it never changes (read without the lock) */
	if (r->base)
		leap__sys_unmap(r->base, r->resv_len);
	for (size_t i = 0; i < r->nruns; i++) {
		struct leap__run *x = &r->runs[i];
		leap__pool_set_used(r->slot[x->slot], r->win[x->slot][x->bank] + x->pg, x->n, false);
	}
	for (int n = 0; r->win && n < r->nslots; n++) {
		for (int b = 0; r->win[n] && b < LEAP_BANKS_MAX; b++)
			if (r->win[n][b] != UINT64_MAX)
				leap__pool_window_put(r->slot[n], r->win[n][b], r->npages);
		free(r->win[n]);
	}
	for (int n = 0; r->slot && n < r->nslots; n++)
		if (r->slot[n])
			leap__pool_unref(r->slot[n]); /* external pools only */
	free(r->slot);
	free(r->win);
	free(r->runs);
	free(r->spare);
	free(r->vma_start);
	r->vma_start = NULL;
	r->nvmas = 0;
	r->slot = NULL;
	r->win = NULL;
	r->runs = r->spare = NULL;
	r->nruns = r->runs_cap = r->spare_cap = 0;
	r->win_rows = 0;
}

int leap__region_check_placement(struct leap_ctx *ctx, size_t length, const struct leap_place *place,
			   size_t nplace, uint64_t unit)
{
	size_t at = 0;
	for (size_t i = 0; i < nplace; i++) {
		if (place[i].offset != at || place[i].length == 0 ||
		    place[i].length % (unit * LEAP_PG) || place[i].length > length - at)
			return -EINVAL;
		at += place[i].length;
	}
	if (at != length)
		return -EINVAL;
	for (size_t i = 0; i < nplace; i++)
		if (!leap__topo_valid_mem_node(ctx->topo, place[i].node))
			return -ENODEV;
	return 0;
}

/* Set (on) or clear bit h of the hugetlb mapping starts, counted. */
static void vma_mark(struct leap_region *r, uint64_t h, bool on)
{
	uint64_t bit = UINT64_C(1) << (h % 64);
	bool was = r->vma_start[h / 64] & bit;
	if (was == on)
		return;
	r->vma_start[h / 64] ^= bit;
	r->nvmas += on ? 1 : (uint64_t)-1;
}

void leap__region_mapped(struct leap_region *r, uint64_t pg, uint64_t n)
{
	if (!r->vma_start)
		return;
	/* the new mapping replaces every mapping start inside it and splits the mapping
	 * after it, if any, at its end (a hugetlb range is whole huge pages) */
	uint64_t h0 = pg / r->unit, h1 = (pg + n) / r->unit, nh = r->npages / r->unit;
	vma_mark(r, h0, true);
	for (uint64_t h = h0 + 1; h < h1; h++)
		vma_mark(r, h, false);
	if (h1 < nh)
		vma_mark(r, h1, true);
}

uint64_t leap__region_mappings(const struct leap_region *r)
{
	return r->vma_start ? r->nvmas : r->nruns;
}

int leap__region_place(struct leap_region *r, uint64_t pg, uint64_t n, int slot)
{
	uint64_t win;
	int rc = leap__region_window(r, slot, 0, &win);
	if (rc)
		return rc;
	struct leap_pool *p = r->slot[slot];
	rc = leap__pool_reserve(p, win + pg, n);
	if (rc)
		return rc;
	rc = leap__sys_map_file(r->base + pg * LEAP_PG, n, p->fd, win + pg, r->kind);
	if (!rc) {
		leap__region_mapped(r, pg, n);
		rc = leap__sys_dontfork(r->base + pg * LEAP_PG, n);
	}
	if (!rc)
		rc = leap__region_assign(r, pg, n, slot, 0);
	if (rc)
		leap__pool_set_used(p, win + pg, n, false);
	return rc;
}

void leap__region_lock(struct leap_region *r)
{
	atomic_fetch_add(&r->lock_arrivals, 1);
	pthread_mutex_lock(&r->lock);
	atomic_fetch_add(&r->lock_served, 1);
}

LEAP_API void *leap_region_addr(const struct leap_region *r)
{
	return r ? r->base : NULL;
}

LEAP_API size_t leap_region_length(const struct leap_region *r)
{
	return r ? (size_t)(r->npages * LEAP_PG) : 0;
}

LEAP_API int leap_node_of(struct leap_region *r, const void *addr)
{
	if (!r)
		return -EINVAL;
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->base;
	if (a < base || a - base >= r->npages * LEAP_PG)
		return -EFAULT;
	leap__region_lock(r);
	int node = leap__slot_node(r, r->runs[leap__region_find_run(r, (a - base) / LEAP_PG)].slot);
	pthread_mutex_unlock(&r->lock);
	return node;
}

LEAP_API int leap_region_stats(struct leap_region *r, struct leap_region_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	struct leap_region_stats full, *st = &full; /* copied out */
	leap__region_lock(r);
	*st = r->st;
	st->length = r->npages * LEAP_PG;
	st->runs = r->nruns;
	st->mappings = leap__region_mappings(r);
	st->metadata_bytes = sizeof(*r) + (r->runs_cap + r->spare_cap) * sizeof(*r->runs) +
			     (uint64_t)r->nslots * (sizeof(*r->win) + sizeof(*r->slot)) +
			     r->win_rows * LEAP_BANKS_MAX * sizeof(**r->win);
	if (r->vma_start)
		st->metadata_bytes += (r->npages / r->unit + 63) / 64 * sizeof(uint64_t);
	uint64_t io_bytes;
	leap__io_stats(r, &st->io_declared, &io_bytes);
	st->metadata_bytes += io_bytes;
	st->pages = r->kind;
	pthread_mutex_unlock(&r->lock);
	return leap__struct_out(out, out->size, &full, sizeof(full));
}
