/*
 * extpool.c - external pools: a file the user names (tmpfs, hugetlbfs, a DAX file
 * system), declared to be on a node, used like a node's own pool (pool.c).
 *
 * Lifetime: reference counted, the user's handle and one per region that uses the pool
 * (region.c attaches it to a slot); the last reference frees it and drops its reference
 * on the instance. A node's own pools are the instance's and live as long as it does:
 * ref and unref leave them alone.
 * Threads: refs is atomic; everything else is as in pool.c.
 */
#include "core/core.h"

#include <errno.h>

LEAP_API int leap_pool_open(struct leap_ctx *ctx, const char *path, int node,
			    const struct leap_pool_options *opts, struct leap_pool **out)
{
	struct leap_pool_options o; /* the caller's, zero-extended to this version's size */
	if (!ctx || !path || !out)
		return -EINVAL;
	int err;
	opts = leap__opts_in(&o, sizeof(o), opts, &err);
	if (err)
		return err;
	int kind = opts ? opts->pages : LEAP_PAGES_SMALL;
	if (kind < 0 || kind >= LEAP_KINDS)
		return -EINVAL;
	if (!leap__topo_valid_mem_node(ctx->topo, node))
		return -ENODEV;
	bool dax;
	uint64_t fs_free;
	int fd = leap__sys_open_pool_file(path, &kind, &dax, &fs_free);
	if (fd < 0)
		return fd;
	struct leap_pool *p = leap__pool_init(ctx, fd, node, kind);
	if (!p) {
		leap__sys_close(fd);
		return -ENOMEM;
	}
	p->external = true;
	p->dax = dax;
	uint64_t cap = opts && opts->cap_bytes ? opts->cap_bytes / LEAP_PG : p->cap;
	if (!(opts && opts->cap_bytes) && kind != LEAP_PAGES_HUGETLB && fs_free / LEAP_PG < cap)
		cap = fs_free / LEAP_PG; /* hugetlbfs reports reserved pages, not a limit */
	p->cap = cap - cap % p->unit;
	leap__ctx_ref(ctx);
	*out = p;
	return 0;
}

void leap__pool_ref(struct leap_pool *p)
{
	atomic_fetch_add(&p->refs, 1);
}

void leap__pool_unref(struct leap_pool *p)
{
	if (!p->external || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	struct leap_ctx *ctx = p->ctx;
	leap__pool_free(p);
	leap__ctx_unref(ctx);
}

LEAP_API void leap_pool_close(struct leap_pool **pool)
{
	if (!pool || !*pool)
		return;
	if ((*pool)->external) /* the instance's own pools are not the caller's to release */
		leap__pool_unref(*pool);
	*pool = NULL; /* like every destructor, whichever pool it was */
}

