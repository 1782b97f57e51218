/*
 * pool.c - a node's pool of physical pages.
 *
 * A pool is one memfd. Its offset space (sparse, virtual: it costs nothing until a page
 * is allocated) is mapped into the library in chunks as it grows (the destination of
 * copies), and each chunk is bound to the pool's node with a shared memory policy before
 * any page of it exists, so every page the file ever gets is on that node, whoever
 * allocates it and however.
 *
 * The offset space is handed out to regions in windows (extents of the offset space; a
 * region takes one window per bank it uses on this node, see region.c). Inside a window,
 * page p of the region always lives at window + p. Pages are allocated on demand
 * (fallocate, counted against the cap) and stay allocated when a region stops using
 * them, so moving pages back to a node reuses its pages: no return to the kernel and no
 * new allocation on every migration. When a new allocation would pass the cap, free
 * pages are returned to the kernel first (trim). A window given back is punched whole.
 *
 * Accounting, all in pages, under pool->lock:
 *   alloc  pages that exist in the file        (capacity)
 *   used   pages mapped by a region, a subset of alloc
 *   alloc \ used are the free pages kept for reuse.
 * Threads: any thread calling into a region or a pool; pool->lock is taken after
 * region->lock and ctx->lock (see internal.h) and never held across a copy.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int leap__pool_new(struct leap_ctx *ctx, int node, struct leap_pool **out)
{
	struct leap_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	char name[32];
	snprintf(name, sizeof(name), "pageleap-node%d", node);
	p->fd = leap__sys_memfd(name);
	if (p->fd < 0) {
		int rc = p->fd;
		free(p);
		return rc;
	}
	p->ctx = ctx;
	p->chunk_pages = ctx->chunk_pages;
	p->node = node;
	p->cap = ctx->pool_cap ? ctx->pool_cap : ctx->topo->mem_total[node] / LEAP_PG;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void leap__pool_free(struct leap_pool *p)
{
	if (!p)
		return;
	for (uint64_t i = 0; i < p->nchunks; i++)
		leap__sys_unmap(p->chunk[i], p->chunk_pages * LEAP_PG);
	free(p->chunk);
	close(p->fd);
	leap__ivset_free(&p->space_free);
	leap__ivset_free(&p->alloc);
	leap__ivset_free(&p->used);
	leap__ivset_free(&p->mapped);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct fit {
	uint64_t need, off;
};

static int first_fit(uint64_t lo, uint64_t hi, void *arg)
{
	struct fit *f = arg;
	if (hi - lo < f->need)
		return 0;
	f->off = lo;
	return 1;
}

static int fit_cb(const struct leap__ivset *s, struct fit *f)
{
	for (size_t i = 0; i < s->n; i++)
		if (first_fit(s->v[i].lo, s->v[i].hi, f))
			return 1;
	return 0;
}

/* Hand out a window of npages of offset space (first fit, else grow the space). */
int leap__pool_window_get(struct leap_pool *p, uint64_t npages, uint64_t *off)
{
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	struct fit f = { npages, 0 };
	if (fit_cb(&p->space_free, &f)) {
		rc = leap__ivset_remove(&p->space_free, f.off, f.off + npages);
		*off = f.off;
		goto out;
	}
	uint64_t end = p->space_end + npages;
	uint64_t need = (end + p->chunk_pages - 1) / p->chunk_pages;
	if (end > LEAP_POOL_SPACE_MAX / LEAP_PG) {
		rc = -ENOMEM; /* out of offset space, not memory: see LEAP_POOL_SPACE_MAX */
		goto out;
	}
	if (need > p->nchunks) {
		char **c = realloc(p->chunk, need * sizeof(*c));
		if (!c) {
			rc = -ENOMEM;
			goto out;
		}
		p->chunk = c;
	}
	while (p->nchunks < need) {
		void *m;
		rc = leap__sys_map_pool(p->fd, p->nchunks * p->chunk_pages, p->chunk_pages, p->node,
					&m);
		if (rc)
			goto out;
		p->chunk[p->nchunks++] = m;
	}
	*off = p->space_end;
	p->space_end = end;
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

struct punch_ctx {
	struct leap_pool *p;
	struct leap__ivset gone;
	int rc;
};

static int punch_cb(uint64_t lo, uint64_t hi, void *arg)
{
	struct punch_ctx *c = arg;
	int rc = leap__sys_punch(c->p->fd, lo, hi - lo);
	if (!rc)
		rc = leap__ivset_add(&c->gone, lo, hi);
	if (rc)
		c->rc = rc;
	return 0; /* keep going: punch what we can */
}

static void drop_gone(struct punch_ctx *c)
{
	for (size_t i = 0; i < c->gone.n; i++) {
		leap__ivset_remove(&c->p->alloc, c->gone.v[i].lo, c->gone.v[i].hi);
		leap__ivset_remove(&c->p->mapped, c->gone.v[i].lo, c->gone.v[i].hi);
	}
	leap__ivset_free(&c->gone);
}

/* Give a window back; its pages must not be used. Its memory returns to the kernel. */
void leap__pool_window_put(struct leap_pool *p, uint64_t off, uint64_t npages)
{
	pthread_mutex_lock(&p->lock);
	struct punch_ctx c = { .p = p };
	struct leap__ivset win = { 0 };
	if (leap__ivset_add(&win, off, off + npages) == 0)
		leap__ivset_diff_each(&win, &p->used, punch_cb, &c);
	leap__ivset_free(&win);
	drop_gone(&c);
	leap__ivset_add(&p->space_free, off, off + npages);
	pthread_mutex_unlock(&p->lock);
}

/* Punch every free page outside [keep_lo, keep_hi). pre: lock held. */
static uint64_t trim_locked(struct leap_pool *p, uint64_t keep_lo, uint64_t keep_hi)
{
	uint64_t before = p->alloc.total;
	struct punch_ctx c = { .p = p };
	struct leap__ivset keep = { 0 };
	/* free = alloc \ used; skip the range about to be reused */
	for (size_t i = 0; i < p->used.n; i++)
		leap__ivset_add(&keep, p->used.v[i].lo, p->used.v[i].hi);
	leap__ivset_add(&keep, keep_lo, keep_hi);
	leap__ivset_diff_each(&p->alloc, &keep, punch_cb, &c);
	leap__ivset_free(&keep);
	drop_gone(&c);
	return before - p->alloc.total;
}

struct alloc_ctx {
	struct leap_pool *p;
	int rc;
};

static int alloc_cb(uint64_t lo, uint64_t hi, void *arg)
{
	struct alloc_ctx *c = arg;
	int rc = leap__sys_fallocate(c->p->fd, lo, hi - lo);
	if (!rc)
		rc = leap__ivset_add(&c->p->alloc, lo, hi);
	c->rc = rc;
	return rc;
}

/*
 * Make pages [off, off+npages) exist and mark them used, ready to be written and mapped.
 * Pages that already exist (kept from earlier use) are reused as they are. Marking them
 * used at once keeps a later trim from punching them before they are mapped; a caller
 * that ends up not mapping them calls leap__pool_set_used(..., false). -ENOMEM when the
 * cap (after trimming free pages) or the kernel refuses; then nothing is marked.
 */
int leap__pool_reserve(struct leap_pool *p, uint64_t off, uint64_t npages)
{
	pthread_mutex_lock(&p->lock);
	uint64_t missing = npages - leap__ivset_covered(&p->alloc, off, off + npages);
	int rc = 0;
	if (missing && p->alloc.total + missing > p->cap)
		trim_locked(p, off, off + npages);
	if (missing && p->alloc.total + missing > p->cap) {
		rc = -ENOMEM;
	} else if (missing) {
		struct alloc_ctx c = { p, 0 };
		leap__ivset_gaps_each(&p->alloc, off, off + npages, alloc_cb, &c);
		rc = c.rc;
	}
	if (!rc)
		rc = leap__ivset_add(&p->used, off, off + npages);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* Mark [off, off+npages) as mapped by a region (used) or no longer (free, kept). */
void leap__pool_set_used(struct leap_pool *p, uint64_t off, uint64_t npages, bool used)
{
	pthread_mutex_lock(&p->lock);
	if (used)
		leap__ivset_add(&p->used, off, off + npages);
	else
		leap__ivset_remove(&p->used, off, off + npages);
	pthread_mutex_unlock(&p->lock);
}

/*
 * Copy into pool pages [off, off+npages): populate the destination for writing in one
 * call per chunk (no fault per page), then memcpy. The chunk array may be reallocated by
 * a concurrent window_get, so each chunk address is read under the lock.
 */
int leap__pool_copy_in(struct leap_pool *p, uint64_t off, const void *src, uint64_t npages)
{
	const char *s = src;
	while (npages) {
		uint64_t in = off % p->chunk_pages, n = p->chunk_pages - in;
		n = n < npages ? n : npages;
		pthread_mutex_lock(&p->lock);
		char *dst = p->chunk[off / p->chunk_pages] + in * LEAP_PG;
		bool mapped = leap__ivset_covered(&p->mapped, off, off + n) == n;
		pthread_mutex_unlock(&p->lock);
		/* one populate call instead of a fault per page, the first time only: after
		 * that the pages keep their entries (pool pages are kept for reuse), and
		 * walking them again cost a sixth of a move's time */
		if (!mapped) {
			int rc = leap__sys_populate_write(dst, n);
			if (rc)
				return rc;
			pthread_mutex_lock(&p->lock);
			leap__ivset_add(&p->mapped, off, off + n); /* a hint: no room, no harm */
			pthread_mutex_unlock(&p->lock);
		}
		memcpy(dst, s, n * LEAP_PG);
		s += n * LEAP_PG;
		off += n;
		npages -= n;
	}
	return 0;
}

LEAP_API int leap_pool_get(struct leap_ctx *ctx, int node, struct leap_pool **out)
{
	if (!ctx || !out)
		return -EINVAL;
	return leap__ctx_pool(ctx, node, out);
}

struct free_stats {
	uint64_t largest, count;
};

static int free_stats_cb(uint64_t lo, uint64_t hi, void *arg)
{
	struct free_stats *f = arg;
	if (hi - lo > f->largest)
		f->largest = hi - lo;
	f->count++;
	return 0;
}

LEAP_API int leap_pool_stats(struct leap_pool *p, struct leap_pool_stats *st)
{
	if (!p || !st || st->size < sizeof(*st))
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	struct free_stats f = { 0, 0 };
	leap__ivset_diff_each(&p->alloc, &p->used, free_stats_cb, &f);
	st->node = p->node;
	st->cap_bytes = p->cap * LEAP_PG;
	st->capacity_bytes = p->alloc.total * LEAP_PG;
	st->used_bytes = p->used.total * LEAP_PG;
	st->free_bytes = (p->alloc.total - p->used.total) * LEAP_PG;
	st->largest_free_bytes = f.largest * LEAP_PG;
	st->extents_in_use = p->used.n;
	st->free_extents = f.count;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

LEAP_API int leap_pool_set_cap(struct leap_pool *p, uint64_t bytes)
{
	if (!p)
		return -EINVAL;
	uint64_t cap = bytes / LEAP_PG;
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	if (cap < p->used.total)
		rc = -EBUSY;
	else {
		if (cap < p->alloc.total)
			trim_locked(p, 0, 0);
		p->cap = cap;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

LEAP_API int64_t leap_pool_trim(struct leap_pool *p)
{
	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	uint64_t pages = trim_locked(p, 0, 0);
	pthread_mutex_unlock(&p->lock);
	return (int64_t)(pages * LEAP_PG);
}

LEAP_API int leap_pool_fd(const struct leap_pool *p)
{
	return p ? p->fd : -EINVAL;
}
