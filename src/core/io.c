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
 * never takes part of one), with a flag and a count: equal declarations stack. The job
 * loop (job.c) asks leap__io_busy() before each extent, under region->lock, which it
 * holds for the whole extent; leap_io_begin() takes the same lock, so it returns only
 * between extents, and no extent starts over a declared page afterwards.
 * A job that finds a busy page waits on claims_cond (lifetime.c), which leap_io_end()
 * broadcasts (and leap_io_begin() of a long-term declaration, which the job skips
 * instead), like a cancel and a destroy.
 *
 * Threads: the declarations are under region->lock.
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>

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

LEAP_API int leap_io_begin(struct leap_region *r, const void *addr, size_t len, unsigned flags)
{
	uint64_t a, b;
	int rc = io_range(r, addr, len, flags, &a, &b);
	if (rc)
		return rc;
	/* the lock is free only between extents: once we hold it, nothing of the range is in
	 * the middle of a move, and the next extent sees the declaration */
	leap__region_lock(r);
	struct leap__io *d = io_find(r, a, b, flags);
	if (d) {
		d->count++;
	} else {
		if (r->nio == r->io_cap) {
			size_t cap = r->io_cap ? 2 * r->io_cap : 8;
			struct leap__io *v = realloc(r->io, cap * sizeof(*v));
			if (v) {
				r->io = v;
				r->io_cap = cap;
			} else {
				rc = -ENOMEM;
			}
		}
		if (!rc)
			r->io[r->nio++] = (struct leap__io){ a, b, flags, 1 };
	}
	if (!rc)
		r->st.io_declared++;
	if (!rc && (flags & LEAP_IO_LONGTERM)) /* a job waiting at these pages skips them now */
		pthread_cond_broadcast(&r->claims_cond);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

LEAP_API int leap_io_end(struct leap_region *r, const void *addr, size_t len, unsigned flags)
{
	uint64_t a, b;
	int rc = io_range(r, addr, len, flags, &a, &b);
	if (rc)
		return rc;
	leap__region_lock(r);
	struct leap__io *d = io_find(r, a, b, flags);
	if (!d) {
		rc = -EINVAL;
	} else {
		r->st.io_declared--;
		if (--d->count == 0) {
			*d = r->io[--r->nio];
			pthread_cond_broadcast(&r->claims_cond); /* jobs waiting for these pages */
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

bool leap__io_busy(const struct leap_region *r, uint64_t a, uint64_t b, struct leap__busy *out)
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
