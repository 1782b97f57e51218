/*
 * compact.c - pool compaction: in every region with pages in the pool, gather them in
 * the bank holding most of them, then give back the windows of the banks they left, so
 * the pages stranded there (free, but usable only by that region at those offsets)
 * return to the kernel and the offset space to the pool in one piece. A walker
 * (walk.c). Threads: the walk's.
 */
#include "coord/coord.h"

#include <errno.h>
#include <stdlib.h>

struct compaction {
	struct leap_pool *pool; /* referenced for the walk (external pools) */
};

/* r's slot for pool, or -1 if r has no pages there. pre: r->lock held */
static int slot_of(struct leap_region *r, struct leap_pool *p)
{
	for (int s = 0; s < r->nslots; s++)
		if (r->slot[s] == p)
			return s;
	return -1;
}

static void compact_region(struct leap__walk *w, struct leap_region *r)
{
	struct leap_pool *pool = ((struct compaction *)leap__walk_arg(w))->pool;
	uint64_t in_bank[LEAP_BANKS_MAX] = { 0 }, all = 0;
	leap__region_lock(r);
	int s = r->dying ? -1 : slot_of(r, pool);
	for (size_t k = 0; s >= 0 && k < r->nruns; k++)
		if (r->runs[k].slot == s) {
			in_bank[r->runs[k].bank] += r->runs[k].n;
			all += r->runs[k].n;
		}
	pthread_mutex_unlock(&r->lock);
	if (s < 0)
		return;
	/* the bank holding most of the region's pages stays; the others join it */
	int main_bank = 0;
	for (int b = 1; b < LEAP_BANKS_MAX; b++)
		if (in_bank[b] > in_bank[main_bank])
			main_bank = b;
	uint64_t minority = all - in_bank[main_bank];
	if (minority) {
		leap__walk_add(w, minority, 0, 0);
		int rc = leap__walk_move(w, r, 0, r->npages, s, main_bank);
		if (rc && rc != -ENODEV && rc != -ECANCELED)
			leap__walk_add(w, 0, minority, rc);
	}
	leap__region_lock(r);
	if (!r->dying)
		leap__region_release_unused(r, s);
	pthread_mutex_unlock(&r->lock);
}

static void compaction_fini(void *arg)
{
	struct compaction *c = arg;
	leap__pool_unref(c->pool);
	free(c);
}

static const struct leap__walker compaction = {
	.visit = compact_region,
	.fini = compaction_fini,
};

LEAP_API int leap_pool_compact(struct leap_pool *pool, unsigned flags,
			       const struct leap_job_options *opts, struct leap_job **job)
{
	if (!pool)
		return -EINVAL;
	struct compaction *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	leap__pool_ref(pool);
	c->pool = pool;
	return leap__walk_start(pool->ctx, &compaction, c, flags, opts, job);
}
