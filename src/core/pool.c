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
 * Kinds. A pool holds one kind of page (enum leap_pages). Hugetlb pools are hugetlb
 * memfds (or hugetlbfs files): every offset, window and allocation is a multiple of a
 * huge page, and fallocate takes the pages from the node's reserved huge pages. THP
 * pools are shared-memory files whose chunk mappings carry MADV_HUGEPAGE: whole huge
 * pages are allocated by populating that mapping, which makes the kernel allocate 2 MiB
 * folios (fallocate would not, under shmem_enabled=advise); a piece smaller than a huge
 * page (a split, see job.c) is allocated with fallocate, in small pages. Windows of
 * both are aligned to huge pages so a region's huge pages line up with the file's.
 *
 * External pools (leap_pool_open, extpool.c) are the same with a file the user names,
 * declared to be on a node; they are reference counted (the user and each region using
 * them).
 *
 * Threads: any thread calling into a region or a pool; pool->lock is taken after
 * region->lock and ctx->lock (see core.h) and never held across a copy.
 */
#include "core/core.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_name[LEAP_KINDS] = { "small", "thp", "hugetlb" };

struct leap_pool *leap__pool_init(struct leap_ctx *ctx, int fd, int node, int kind)
{
	struct leap_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ctx = ctx;
	p->fd = fd;
	p->node = node;
	p->kind = kind;
	p->unit = kind == LEAP_PAGES_SMALL ? 1 : LEAP_HUGE_PG;
	/* chunks hold whole huge pages */
	p->chunk_pages = (ctx->chunk_pages + p->unit - 1) / p->unit * p->unit;
	p->cap = ctx->pool_cap ? ctx->pool_cap : ctx->topo->mem_total[node] / LEAP_PG;
	p->cap -= p->cap % p->unit;
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

int leap__pool_new(struct leap_ctx *ctx, int node, int kind, struct leap_pool **out)
{
	if (kind == LEAP_PAGES_THP && !leap__sys_shmem_thp_ok())
		return leap__why(-EOPNOTSUPP, leap__thp_off_why);
	char name[48];
	snprintf(name, sizeof(name), "pageleap-node%d-%s", node, kind_name[kind]);
	int fd = leap__sys_memfd(name, kind);
	if (fd < 0)
		return fd == -EINVAL && kind == LEAP_PAGES_HUGETLB
			       ? leap__why(-EOPNOTSUPP, "this kernel has no hugetlb memfd "
							"(CONFIG_HUGETLBFS)")
			       : fd;
	struct leap_pool *p = leap__pool_init(ctx, fd, node, kind);
	if (!p) {
		leap__sys_close(fd);
		return -ENOMEM;
	}
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
	if (p->external) /* the user's file is handed back as it was given: empty */
		leap__sys_truncate(p->fd, 0);
	leap__sys_close(p->fd);
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

static uint64_t align_up(uint64_t x, uint64_t unit)
{
	return (x + unit - 1) / unit * unit;
}

static int fit_cb(const struct leap__ivset *s, struct fit *f, uint64_t unit)
{
	for (size_t i = 0; i < s->n; i++)
		if (first_fit(align_up(s->v[i].lo, unit), s->v[i].hi, f))
			return 1;
	return 0;
}

/* Hand out a window of npages of offset space (first fit, else grow the space), aligned
 * to the pool's huge pages. */
int leap__pool_window_get(struct leap_pool *p, uint64_t npages, uint64_t *off)
{
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	struct fit f = { npages, 0 };
	if (fit_cb(&p->space_free, &f, p->unit)) {
		rc = leap__ivset_remove(&p->space_free, f.off, f.off + npages);
		*off = f.off;
		goto out;
	}
	uint64_t start = align_up(p->space_end, p->unit);
	uint64_t end = start + align_up(npages, p->unit);
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
					p->kind, !p->dax, &m);
		if (rc)
			goto out;
		p->chunk[p->nchunks++] = m;
	}
	/* THP pools fault their pages in, which needs the file to reach them */
	rc = leap__sys_truncate(p->fd, end);
	if (rc)
		goto out;
	if (start > p->space_end)
		leap__ivset_add(&p->space_free, p->space_end, start);
	*off = start;
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

/* The pool's own mapping of page off. pre: lock held, off inside the mapped chunks. */
static char *chunk_addr(struct leap_pool *p, uint64_t off)
{
	return p->chunk[off / p->chunk_pages] + off % p->chunk_pages * LEAP_PG;
}

/*
 * Allocate [lo, hi). THP pools: whole huge pages by populating the pool's huge-advised
 * mapping (2 MiB folios; chunks hold whole huge pages, so one call per huge page run
 * within a chunk), the rest by fallocate (small pages). Others: fallocate.
 */
static int alloc_range(struct leap_pool *p, uint64_t lo, uint64_t hi)
{
	if (p->kind != LEAP_PAGES_THP)
		return leap__sys_fallocate(p->fd, lo, hi - lo, p->dax ? -1 : p->node, p->kind);
	uint64_t hlo = align_up(lo, p->unit), hhi = hi / p->unit * p->unit;
	if (hlo >= hhi)
		return leap__sys_fallocate(p->fd, lo, hi - lo, p->node, p->kind);
	int rc = 0;
	if (lo < hlo)
		rc = leap__sys_fallocate(p->fd, lo, hlo - lo, p->node, p->kind);
	for (uint64_t at = hlo; !rc && at < hhi;) {
		uint64_t n = p->chunk_pages - at % p->chunk_pages;
		n = n < hhi - at ? n : hhi - at;
		rc = leap__sys_populate_write(chunk_addr(p, at), n);
		if (!rc)
			leap__ivset_add(&p->mapped, at, at + n);
		at += n;
	}
	if (!rc && hhi < hi)
		rc = leap__sys_fallocate(p->fd, hhi, hi - hhi, p->node, p->kind);
	if (rc) /* whatever did get allocated is given back: the accounting stays exact */
		leap__sys_punch(p->fd, lo, hi - lo);
	return rc;
}

/* The first gap found: ends the walk (1) before anything changes the set it walks. */
static int first_gap_cb(uint64_t lo, uint64_t hi, void *arg)
{
	uint64_t *g = arg;
	g[0] = lo;
	g[1] = hi;
	return 1;
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
		/* one gap at a time: adding a gap to the set merges its neighbours and shifts
		 * the array, so a walk over the gaps while allocating them skipped every other
		 * one (pages marked used that no count knew) */
		uint64_t g[2];
		for (uint64_t at = off; !rc && at < off + npages; at = g[1]) {
			if (!leap__ivset_gaps_each(&p->alloc, at, off + npages, first_gap_cb, g))
				break;
			rc = alloc_range(p, g[0], g[1]);
			if (!rc)
				rc = leap__ivset_add(&p->alloc, g[0], g[1]);
		}
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
		char *dst = chunk_addr(p, off);
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
		leap__kernel_ordered_begin(); /* the source is write-protected (util.h) */
		memcpy(dst, s, n * LEAP_PG);
		leap__kernel_ordered_end();
		s += n * LEAP_PG;
		off += n;
		npages -= n;
	}
	return 0;
}

/* The pool's own mapping of page off, and in *avail the pages from there to the end of
 * its chunk. The mapping is never write-protected and maps huge pages whole. */
const char *leap__pool_addr(struct leap_pool *p, uint64_t off, uint64_t *avail)
{
	pthread_mutex_lock(&p->lock);
	const char *a = chunk_addr(p, off);
	pthread_mutex_unlock(&p->lock);
	*avail = p->chunk_pages - off % p->chunk_pages;
	return a;
}


/* Pages the instance's own pools of kind use: the live memory the keep bound scales
 * with. Takes ctx->lock, then each pool's lock in turn. */
static uint64_t live_pages(struct leap_ctx *c, int kind)
{
	uint64_t n = 0;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->topo->count; i++) {
		struct leap_pool *q = c->pools[kind * c->topo->count + i];
		if (!q)
			continue;
		pthread_mutex_lock(&q->lock);
		n += q->used.total;
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* The free pages p may keep after a job, UINT64_MAX for no bound. pre: no pool lock */
static uint64_t keep_limit(struct leap_pool *p)
{
	const struct leap_ctx *c = p->ctx;
	if (p->external || c->keep_percent == LEAP_POOL_KEEP_ALL)
		return UINT64_MAX;
	uint64_t live = live_pages(p->ctx, p->kind);
	uint64_t k = live / 100 * c->keep_percent + live % 100 * c->keep_percent / 100;
	if (k < c->keep_min)
		k = c->keep_min;
	return k - k % p->unit;
}

static int collect_cb(uint64_t lo, uint64_t hi, void *arg)
{
	return leap__ivset_add(arg, lo, hi) ? 1 : 0; /* out of memory: trim what we have */
}

/*
 * Why a bound, and this one: pages a move leaves are kept so the next move there needs
 * no allocation (a warm move), but relocations spread a region over banks whose free
 * pages only that region at those offsets reuses, so they piled up (issue 18: pools at
 * 5x the live memory). Keeping as many free pages as the instance uses leaves room for
 * one move of everything, the most one move can free; what is above goes back, from
 * the highest offsets down (later windows, banks used less).
 */
void leap__pool_keep(struct leap_pool *p)
{
	uint64_t keep = keep_limit(p);
	if (keep == UINT64_MAX)
		return;
	pthread_mutex_lock(&p->lock);
	uint64_t free = p->alloc.total - p->used.total;
	if (free > keep) {
		struct leap__ivset f = { 0 };
		leap__ivset_diff_each(&p->alloc, &p->used, collect_cb, &f);
		struct punch_ctx c = { .p = p };
		uint64_t excess = free - keep;
		for (size_t i = f.n; i-- > 0 && excess;) {
			uint64_t lo = f.v[i].lo, hi = f.v[i].hi;
			if (hi - lo > excess)
				lo = align_up(hi - excess, p->unit); /* whole huge pages */
			if (lo >= hi)
				continue;
			punch_cb(lo, hi, &c);
			excess -= hi - lo < excess ? hi - lo : excess;
		}
		leap__ivset_free(&f);
		uint64_t before = p->alloc.total;
		drop_gone(&c);
		p->trimmed += before - p->alloc.total;
	}
	pthread_mutex_unlock(&p->lock);
}

/* Pages that a reservation could still get: the cap less what is used, and no more than
 * the free pages kept plus what the kernel has free for the kind on the node. */
uint64_t leap__pool_room(struct leap_pool *p)
{
	uint64_t kernel;
	if (p->kind == LEAP_PAGES_HUGETLB) {
		kernel = leap__sys_free_hugepages(p->node) * LEAP_HUGE_PG;
	} else {
		struct leap_node_info ni = { .size = sizeof(ni) };
		kernel = leap_topo_node(p->ctx->topo, p->node, &ni) == 0 ? ni.mem_free / LEAP_PG : 0;
	}
	pthread_mutex_lock(&p->lock);
	uint64_t by_cap = p->cap > p->used.total ? p->cap - p->used.total : 0;
	uint64_t by_kernel = kernel + (p->alloc.total - p->used.total);
	pthread_mutex_unlock(&p->lock);
	uint64_t room = by_cap < by_kernel ? by_cap : by_kernel;
	return room - room % p->unit;
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

LEAP_API int leap_pool_stats(struct leap_pool *p, struct leap_pool_stats *out)
{
	if (!p || !out)
		return -EINVAL;
	struct leap_pool_stats full = { .size = sizeof(full) }, *st = &full; /* copied out */
	uint64_t keep = keep_limit(p); /* before p->lock: it takes every pool's */
	pthread_mutex_lock(&p->lock);
	st->keep_limit_bytes = keep == UINT64_MAX ? UINT64_MAX : keep * LEAP_PG;
	st->trimmed_bytes = p->trimmed * LEAP_PG;
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
	st->pages = p->kind;
	st->external = p->external;
	st->page_bytes = p->unit * LEAP_PG;
	/* offset space not held by windows: the free intervals, and the space past the end
	 * up to the limit is not counted (it always exists) */
	uint64_t big = 0;
	for (size_t i = 0; i < p->space_free.n; i++)
		if (p->space_free.v[i].hi - p->space_free.v[i].lo > big)
			big = p->space_free.v[i].hi - p->space_free.v[i].lo;
	st->free_space_extents = p->space_free.n;
	st->largest_free_space_bytes = big * LEAP_PG;
	pthread_mutex_unlock(&p->lock);
	return leap__struct_out(out, out->size, &full, sizeof(full));
}

LEAP_API int leap_pool_set_cap(struct leap_pool *p, uint64_t bytes)
{
	if (!p)
		return -EINVAL;
	uint64_t cap = bytes / LEAP_PG;
	cap -= cap % p->unit;
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
