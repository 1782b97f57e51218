/*
 * lifetime.c - the one owner of a region's lifetime: creation, references, claims on its
 * ranges, and destruction.
 *
 * In five lines:
 *   1. A region's struct lives while references are held: the user's handle and one per
 *      walker (coord/) that holds it; the last leap__region_unref() frees it.
 *   2. A job claims the range it moves; claims of a region never overlap. A user's job
 *      that would overlap is refused (-EBUSY); a walker's waits on claims_cond.
 *   3. leap_region_destroy() retires the region: no claim from then on (-ENODEV), every
 *      claim's holder is cancelled, and destroy waits until each has let go, which
 *      happens at its next extent boundary; a holder still queued behind other jobs on
 *      its worker is taken off the queue and ended by the destroy itself (unqueue).
 *   4. Then its pages go back to the pools and its address range is unmapped (region.c),
 *      and the user's reference is dropped; a walker still holding it finds it dying.
 *   5. Nothing here calls jobs or walkers: a claim carries its holder's cancel flag.
 *
 * Threads: refs is atomic; claims, claims_cond and dying are under region->lock; the
 * instance's list of regions (ctx->regions, for walkers) under ctx->lock.
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>

/* Test seam (tests link the static library): called under r->lock just before a
 * claimer starts waiting for a busy range, so a test knows a walker's move waits. */
void (*leap__test_claim_wait_hook)(struct leap_region *r);

void leap__region_ref(struct leap_region *r)
{
	atomic_fetch_add(&r->refs, 1);
}

/* The struct itself: lock, condition, the instance's reference. */
static void region_free(struct leap_region *r)
{
	pthread_cond_destroy(&r->claims_cond);
	pthread_mutex_destroy(&r->lock);
	leap__io_fini(r);
	leap__ctx_unref(r->ctx);
	free(r);
}

void leap__region_unref(struct leap_region *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		region_free(r);
}

static bool overlaps(const struct leap_region *r, uint64_t a, uint64_t b)
{
	for (const struct leap__claim *c = r->claims; c; c = c->next)
		if (a < c->b && c->a < b)
			return true;
	return false;
}

int leap__claim(struct leap_region *r, struct leap__claim *c, bool wait)
{
	for (;;) {
		if (r->dying)
			return -ENODEV;
		if (atomic_load(c->cancel))
			return -ECANCELED;
		if (!overlaps(r, c->a, c->b))
			break;
		if (!wait)
			return -EBUSY;
		/* woken by an unclaim, a destroy, or leap__claim_kick() after a cancel */
		if (leap__test_claim_wait_hook)
			leap__test_claim_wait_hook(r);
		pthread_cond_wait(&r->claims_cond, &r->lock);
	}
	c->next = r->claims;
	r->claims = c;
	return 0;
}

void leap__unclaim(struct leap_region *r, struct leap__claim *c)
{
	for (struct leap__claim **pp = &r->claims; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_cond_broadcast(&r->claims_cond);
}

void leap__claim_kick(struct leap_region *r)
{
	pthread_mutex_lock(&r->lock);
	pthread_cond_broadcast(&r->claims_cond);
	pthread_mutex_unlock(&r->lock);
}

int leap__regions_hold(struct leap_ctx *ctx, struct leap_region ***out, size_t *n)
{
	pthread_mutex_lock(&ctx->lock);
	size_t k = 0;
	for (struct leap_region *r = ctx->regions; r; r = r->ctx_next)
		k++;
	struct leap_region **v = calloc(k ? k : 1, sizeof(*v));
	if (v) {
		k = 0;
		for (struct leap_region *r = ctx->regions; r; r = r->ctx_next) {
			leap__region_ref(r); /* listed: the user's reference is still there */
			v[k++] = r;
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!v)
		return -ENOMEM;
	*out = v;
	*n = k;
	return 0;
}

/* A half-built region: give back what it got, then the struct. */
static void region_discard(struct leap_region *r)
{
	leap__region_release(r);
	region_free(r);
}

LEAP_API int leap_region_new_ex(struct leap_ctx *ctx, size_t length,
				const struct leap_place *place, size_t nplace,
				const struct leap_region_options *opts, struct leap_region **out)
{
	struct leap_region_options o; /* the caller's, zero-extended to this version's size */
	if (!ctx || !out || !length || length % LEAP_PAGE_SIZE)
		return -EINVAL;
	int err;
	opts = leap__opts_in(&o, sizeof(o), opts, &err);
	if (err)
		return err;
	struct leap_pool *pool = opts ? opts->pool : NULL;
	int kind = pool ? pool->kind : opts ? opts->pages : LEAP_PAGES_SMALL;
	if (kind < 0 || kind >= LEAP_KINDS || (pool && (place || nplace || pool->ctx != ctx)) ||
	    (pool && opts->pages != kind && opts->pages != LEAP_PAGES_SMALL) ||
	    (!pool && (!place || !nplace)))
		return -EINVAL;
	uint64_t unit = kind == LEAP_PAGES_SMALL ? 1 : LEAP_HUGE_PG;
	if (length % (unit * LEAP_PG))
		return -EINVAL;
	int rc = pool ? 0 : leap__region_check_placement(ctx, length, place, nplace, unit);
	if (rc)
		return rc;
	if (pool && pool->dax && !(ctx->flags & LEAP_CTX_NO_WRITE_PROTECT))
		return leap__why(-EOPNOTSUPP, leap__dax_why);
	if (kind == LEAP_PAGES_THP && !pool && !leap__sys_shmem_thp_ok())
		/* a THP file pool has its mount's consent (leap_pool_open) */
		return leap__why(-EOPNOTSUPP, leap__thp_off_why);
	struct leap_region *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	leap__ctx_ref(ctx);
	r->ctx = ctx;
	r->kind = kind;
	r->unit = unit;
	r->nslots = ctx->topo->count + LEAP_EXT_SLOTS;
	r->npages = length / LEAP_PG;
	r->resv_len = length;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->claims_cond, NULL);
	leap__io_init(r);
	atomic_init(&r->refs, 1); /* the user's */
	r->st.last_worker_cpu = -1;
	r->st.last_worker_node = -1;
	r->win = calloc((size_t)r->nslots, sizeof(*r->win));
	r->slot = calloc((size_t)r->nslots, sizeof(*r->slot));
	if (kind == LEAP_PAGES_HUGETLB) /* its mappings are counted (region.c) */
		r->vma_start = calloc((size_t)((r->npages / unit + 63) / 64), sizeof(uint64_t));
	if (!r->win || !r->slot || (kind == LEAP_PAGES_HUGETLB && !r->vma_start)) {
		region_discard(r);
		return -ENOMEM;
	}
	void *base;
	rc = leap__sys_reserve(length, LEAP_REGION_ALIGN, &base);
	if (rc) {
		region_discard(r);
		return rc;
	}
	r->base = base;
	if (pool) {
		int slot = leap__region_pool_slot(r, pool);
		rc = slot < 0 ? slot : leap__region_place(r, 0, r->npages, slot);
	}
	for (size_t i = 0; i < nplace && !rc; i++)
		rc = leap__region_place(r, place[i].offset / LEAP_PG, place[i].length / LEAP_PG,
					place[i].node);
	/* write protection where the kernel has it; without it, jobs need LEAP_NO_WRITERS.
	 * A transient failure to set it up fails the call: a region made without it could
	 * never be moved with writers */
	if (!rc) {
		const char *prev = leap_errormsg();
		int wrc = leap__ctx_wp(ctx, &r->wp);
		if (wrc == -EOPNOTSUPP) /* a region without protection is no refusal */
			leap__why(0, *prev ? prev : NULL);
		rc = wrc == 0 ? leap__wp_register(r->wp, r->base, r->npages)
			      : wrc == -EOPNOTSUPP ? 0 : wrc;
	}
	if (rc) {
		region_discard(r);
		return rc;
	}
	pthread_mutex_lock(&ctx->lock);
	r->ctx_next = ctx->regions;
	ctx->regions = r;
	pthread_mutex_unlock(&ctx->lock);
	*out = r;
	return 0;
}

LEAP_API int leap_region_new_placed(struct leap_ctx *ctx, size_t length,
				    const struct leap_place *place, size_t nplace,
				    struct leap_region **out)
{
	if (!place || !nplace)
		return -EINVAL;
	return leap_region_new_ex(ctx, length, place, nplace, NULL, out);
}

LEAP_API int leap_region_new(struct leap_ctx *ctx, size_t length, int node,
			     struct leap_region **out)
{
	struct leap_place one = { 0, length, node };
	return leap_region_new_placed(ctx, length, &one, 1, out);
}

LEAP_API void leap_region_destroy(struct leap_region **region)
{
	if (!region || !*region)
		return;
	struct leap_region *r = *region;
	leap__region_lock(r);
	r->dying = true; /* no claim from here on, walkers' included */
	for (struct leap__claim *c = r->claims; c; c = c->next)
		atomic_store(c->cancel, true);
	pthread_cond_broadcast(&r->claims_cond); /* walkers waiting for a range: -ENODEV */
	leap__io_kick(r);			 /* jobs waiting for declared I/O: cancelled */
	/* holders still queued (behind other jobs on their worker, other regions' too) end
	 * here at once, not after the jobs ahead of them */
	struct leap__claim *ended = NULL;
	for (struct leap__claim *c = r->claims, *next; c; c = next) {
		next = c->next;
		if (c->unqueue && c->unqueue(c)) {
			leap__unclaim(r, c);
			c->ended_next = ended;
			ended = c;
		}
	}
	if (ended) { /* their callbacks run without the region's lock */
		pthread_mutex_unlock(&r->lock);
		while (ended) {
			struct leap__claim *next = ended->ended_next; /* finish() may free it */
			ended->finish(ended);
			ended = next;
		}
		leap__region_lock(r);
	}
	while (r->claims) /* each holder stops at its next extent boundary */
		pthread_cond_wait(&r->claims_cond, &r->lock);
	leap__region_release(r);
	pthread_mutex_unlock(&r->lock);
	struct leap_ctx *ctx = r->ctx;
	pthread_mutex_lock(&ctx->lock);
	for (struct leap_region **pp = &ctx->regions; *pp; pp = &(*pp)->ctx_next)
		if (*pp == r) {
			*pp = r->ctx_next;
			break;
		}
	pthread_mutex_unlock(&ctx->lock);
	leap__region_unref(r); /* the user's; a walker holding it frees it when done */
	*region = NULL;
}
