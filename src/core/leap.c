/*
 * leap.c - page_leap(), the library's headline call: check the arguments, build a job
 * (job.c) and start it, handing it out or waiting for it.
 *
 * What a job does is in job.c (its extent loop) and extent.c (one extent); the user's
 * view of the mechanism is pageleap(7). Every check that can fail runs before the job
 * is queued, so a refused call changes nothing.
 * Threads: MT-Safe; the region's lock is taken only inside job.c.
 */
#include "core/core.h"

#include <errno.h>

LEAP_API int page_leap_opts(struct leap_region *r, void *addr, size_t len, int node,
			    unsigned flags, const struct leap_job_options *opts,
			    struct leap_job **out)
{
	if (!r)
		return -EINVAL;
	struct leap_job *j;
	int rc = leap__job_prepare(r, addr, len, flags, opts, &j);
	if (rc)
		return rc;
	if (!leap__topo_valid_mem_node(r->ctx->topo, node)) {
		leap__job_discard(j);
		return -ENODEV;
	}
	return leap__job_go(j, node, NULL, flags, out);
}

LEAP_API int page_leap(struct leap_region *r, void *addr, size_t len, int node, unsigned flags,
		       struct leap_job **job)
{
	return page_leap_opts(r, addr, len, node, flags, NULL, job);
}

LEAP_API int page_leap_pool(struct leap_region *r, void *addr, size_t len, struct leap_pool *pool,
			    unsigned flags, const struct leap_job_options *opts,
			    struct leap_job **out)
{
	if (!r || !pool || pool->ctx != r->ctx || pool->kind != r->kind)
		return -EINVAL;
	struct leap_job *j;
	int rc = leap__job_prepare(r, addr, len, flags, opts, &j);
	if (rc)
		return rc;
	return leap__job_go(j, -1, pool, flags, out);
}
