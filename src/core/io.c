/*
 * io.c - device I/O declared on a region: ranges that moves must leave alone.
 *
 * Why the program has to say so: a transfer that works on physical pages (O_DIRECT,
 * io_uring registered buffers, RDMA) pins them when it is submitted and uses them until
 * it ends. A move remaps the range to new pages; the transfer does not follow, so a read
 * would land in the old page. User space cannot see pins: pagemap and PAGEMAP_SCAN have
 * no bit for them, /proc/kpagecount (root only) counts mappings, not pins, and the
 * per-process VmPin of /proc/self/status counts long-term pins of the whole process
 * without saying which pages. So the program declares its I/O and the mover honours it.
 *
 * A declaration is a range of pages, rounded out to the region's huge pages (a move
 * never takes part of one), with a flag and a count: equal declarations stack.
 *
 * The handshake with the job loop (job.c), under io_lock, a lock of its own so that a
 * program declaring I/O on one range never waits for an extent moving another (the
 * region lock is held for a whole extent): before each extent the job asks
 * leap__io_extent_begin(), which either says the first page is busy or trims the extent
 * before the first busy page and records it as the extent in flight; the job clears it
 * with leap__io_extent_end() when the extent is over. leap_io_begin() records the
 * declaration first, so no later extent takes it, and then waits while the extent in
 * flight overlaps it. A job that finds its page busy parks (leap__io_park()): it leaves
 * its worker's thread to other jobs, and leap_io_end() (or leap_io_begin() of a long-term
 * declaration, which the job skips instead, or a cancel or a destroy: leap__io_kick())
 * queues it on its worker again, where it goes on from that page.
 *
 * Lock order: region->lock before io_lock; nothing is taken under io_lock (parked jobs
 * are queued on their workers after it is released).
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>

void leap__io_init(struct leap_region *r)
{
	pthread_mutex_init(&r->io_lock, NULL);
	pthread_cond_init(&r->io_cond, NULL);
}

void leap__io_fini(struct leap_region *r)
{
	pthread_cond_destroy(&r->io_cond);
	pthread_mutex_destroy(&r->io_lock);
	free(r->io);
}

/* The pages [*a, *b) of [addr, addr+len), rounded out to huge pages. */
static int io_range(const struct leap_region *r, const void *addr, size_t len, unsigned flags,
		    uint64_t *a, uint64_t *b)
{
	if (!r || !len || (flags & ~LEAP_IO_LONGTERM))
		return -EINVAL;
	uintptr_t p = (uintptr_t)addr, base = (uintptr_t)r->base, size = r->npages * LEAP_PG;
	if (p < base || p - base >= size || len > size - (p - base))
		return -EFAULT;
	uint64_t u = r->unit;
	*a = (p - base) / LEAP_PG / u * u;
	*b = ((p - base + len + LEAP_PG - 1) / LEAP_PG + u - 1) / u * u;
	return 0;
}

static struct leap__io *io_find(struct leap_region *r, uint64_t a, uint64_t b, unsigned flags)
{
	for (size_t i = 0; i < r->nio; i++)
		if (r->io[i].a == a && r->io[i].b == b && r->io[i].flags == flags)
			return &r->io[i];
	return NULL;
}

/* What the declarations say about [a, b) (see struct leap__busy). pre: io_lock held */
static bool busy_locked(const struct leap_region *r, uint64_t a, uint64_t b,
			struct leap__busy *out);

/* Whether a parked job must keep waiting at its page. pre: io_lock held */
static bool still_parked(const struct leap_region *r, const struct leap__parked *p)
{
	struct leap__busy bz;
	return !atomic_load(p->cancel) && busy_locked(r, p->pos, p->pos + 1, &bz) && !bz.longterm;
}

/* Take the parked jobs that may go on off the list. pre: io_lock held */
static struct leap__parked *unpark_locked(struct leap_region *r)
{
	struct leap__parked *go = NULL, **pp = &r->parked;
	while (*pp) {
		struct leap__parked *p = *pp;
		if (still_parked(r, p)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = go;
		go = p;
	}
	return go;
}

/* Queue them on their workers: they go on where they stopped. */
static void resume(struct leap__parked *go)
{
	while (go) {
		struct leap__parked *next = go->next; /* the job may run (and end) at once */
		leap__worker_push(go->w, &go->work);
		go = next;
	}
}

/* One more declaration of [a, b) with flags: counted on an equal one, else appended.
 * pre: io_lock held */
static int io_add(struct leap_region *r, uint64_t a, uint64_t b, unsigned flags)
{
	struct leap__io *d = io_find(r, a, b, flags);
	if (d) {
		d->count++;
		return 0;
	}
	if (r->nio == r->io_cap) {
		size_t cap = r->io_cap ? 2 * r->io_cap : 8;
		struct leap__io *v = realloc(r->io, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->io = v;
		r->io_cap = cap;
	}
	r->io[r->nio++] = (struct leap__io){ a, b, flags, 1 };
	return 0;
}

LEAP_API int leap_io_begin(struct leap_region *r, const void *addr, size_t len, unsigned flags)
{
	uint64_t a, b;
	int rc = io_range(r, addr, len, flags, &a, &b);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->io_lock);
	rc = io_add(r, a, b, flags);
	struct leap__parked *go = NULL;
	if (!rc) {
		r->io_declared++;
		if (flags & LEAP_IO_LONGTERM) /* a job parked at these pages skips them now */
			go = unpark_locked(r);
		/* declared first, so no new extent takes the range: then let the one in flight
		 * finish (a writer to it would wait as long) */
		while (a < r->moving_b && r->moving_a < b)
			pthread_cond_wait(&r->io_cond, &r->io_lock);
	}
	pthread_mutex_unlock(&r->io_lock);
	resume(go);
	return rc;
}

LEAP_API int leap_io_end(struct leap_region *r, const void *addr, size_t len, unsigned flags)
{
	uint64_t a, b;
	int rc = io_range(r, addr, len, flags, &a, &b);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->io_lock);
	struct leap__io *d = io_find(r, a, b, flags);
	struct leap__parked *go = NULL;
	if (!d) {
		rc = -EINVAL;
	} else {
		r->io_declared--;
		if (--d->count == 0) {
			*d = r->io[--r->nio];
			go = unpark_locked(r); /* jobs parked at these pages */
		}
	}
	pthread_mutex_unlock(&r->io_lock);
	resume(go);
	return rc;
}

static bool busy_locked(const struct leap_region *r, uint64_t a, uint64_t b,
			struct leap__busy *out)
{
	bool any = false;
	*out = (struct leap__busy){ .lo = b, .next = b };
	for (size_t i = 0; i < r->nio; i++) {
		const struct leap__io *d = &r->io[i];
		if (d->b <= a || d->a >= b)
			continue;
		any = true;
		uint64_t lo = d->a > a ? d->a : a;
		if (lo < out->lo)
			out->lo = lo;
		if (d->a <= a) { /* holds page a */
			if (d->flags & LEAP_IO_LONGTERM)
				out->longterm = true;
			if (d->b < out->next)
				out->next = d->b;
		} else if (d->a < out->next) {
			out->next = d->a;
		}
	}
	return any;
}

bool leap__io_extent_begin(struct leap_region *r, uint64_t pos, uint64_t *n,
			   struct leap__busy *bz)
{
	pthread_mutex_lock(&r->io_lock);
	bool busy = busy_locked(r, pos, pos + *n, bz);
	if (busy && bz->lo == pos) {
		pthread_mutex_unlock(&r->io_lock);
		return true;
	}
	if (busy)
		*n = bz->lo - pos;
	r->moving_a = pos;
	r->moving_b = pos + *n;
	pthread_mutex_unlock(&r->io_lock);
	return false;
}

void leap__io_extent_end(struct leap_region *r)
{
	pthread_mutex_lock(&r->io_lock);
	r->moving_a = r->moving_b = 0;
	pthread_cond_broadcast(&r->io_cond); /* leap_io_begin() calls waiting for it */
	pthread_mutex_unlock(&r->io_lock);
}

bool leap__io_park(struct leap_region *r, struct leap__parked *p)
{
	pthread_mutex_lock(&r->io_lock);
	/* checked again here: an end (or a cancel) between the job's look and now must not
	 * be missed, and both take io_lock */
	bool park = still_parked(r, p);
	if (park) {
		p->next = r->parked;
		r->parked = p;
	}
	pthread_mutex_unlock(&r->io_lock);
	return park;
}

void leap__io_kick(struct leap_region *r)
{
	pthread_mutex_lock(&r->io_lock);
	struct leap__parked *go = unpark_locked(r);
	pthread_mutex_unlock(&r->io_lock);
	resume(go);
}

void leap__io_stats(struct leap_region *r, uint64_t *declared, uint64_t *bytes)
{
	pthread_mutex_lock(&r->io_lock);
	*declared = r->io_declared;
	*bytes = r->io_cap * sizeof(*r->io);
	pthread_mutex_unlock(&r->io_lock);
}
