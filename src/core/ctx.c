/*
 * ctx.c - a library instance: the topology, one pool per memory node, one copy worker
 * per node with CPUs, and the instance's lifetime.
 *
 * Lifetime: the user holds one reference and every live region holds one, so destroying
 * the instance before its regions is safe; the last reference frees pools and workers.
 * Threads: pools and workers are created lazily under ctx->lock; once published they
 * never change until the instance is freed, so readers only need the lock to create.
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * PAGELEAP_WP: the write protection of programs that cannot be changed (and of test
 * suites run in each mode): "user" adds LEAP_CTX_ALLOW_USER_MODE, "user-only"
 * LEAP_CTX_USER_MODE_ONLY, "none" LEAP_CTX_NO_WRITE_PROTECT, "full" or empty nothing.
 * secure_getenv: a set-user-ID program ignores it.
 */
static int env_flags(unsigned *flags)
{
	const char *v = secure_getenv("PAGELEAP_WP");
	if (!v || !*v || !strcmp(v, "full"))
		return 0;
	if (!strcmp(v, "user"))
		*flags |= LEAP_CTX_ALLOW_USER_MODE;
	else if (!strcmp(v, "user-only"))
		*flags |= LEAP_CTX_USER_MODE_ONLY;
	else if (!strcmp(v, "none"))
		*flags |= LEAP_CTX_NO_WRITE_PROTECT;
	else
		return leap__why(-EINVAL, "PAGELEAP_WP has an unknown value: use full, user, "
					  "user-only or none (pageleap(7))");
	return 0;
}

LEAP_API int leap_ctx_new(const struct leap_ctx_options *opts, struct leap_ctx **out)
{
	struct leap_ctx_options o; /* the caller's, zero-extended to this version's size */
	if (!out)
		return -EINVAL;
	int err;
	opts = leap__opts_in(&o, sizeof(o), opts, &err);
	if (err)
		return err;
	struct leap_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int rc = leap_topo_new(&c->topo);
	if (rc) {
		free(c);
		return rc;
	}
	c->pool_cap = opts ? opts->pool_cap_bytes / LEAP_PG : 0;
	uint64_t chunk = opts && opts->pool_map_chunk_bytes ? opts->pool_map_chunk_bytes
							    : LEAP_POOL_CHUNK_DEFAULT;
	if (chunk % LEAP_PG || chunk > LEAP_POOL_SPACE_MAX) {
		leap_topo_destroy(&c->topo);
		free(c);
		return -EINVAL;
	}
	c->chunk_pages = chunk / LEAP_PG;
	c->workers_per_node = opts && opts->workers_per_node ? opts->workers_per_node : 1;
	c->flags = opts ? opts->flags : 0;
	c->keep_percent = opts && opts->pool_keep_percent ? opts->pool_keep_percent : 100;
	c->keep_min = opts ? opts->pool_keep_min_bytes / LEAP_PG : 0;
	unsigned known = LEAP_CTX_NO_WRITE_PROTECT | LEAP_CTX_ALLOW_USER_MODE |
			 LEAP_CTX_USER_MODE_ONLY;
	rc = c->flags & ~known || c->workers_per_node > 1024 ||
			     (c->keep_percent > 100000 && c->keep_percent != LEAP_POOL_KEEP_ALL)
		     ? -EINVAL
		     : env_flags(&c->flags);
	if (rc) {
		leap_topo_destroy(&c->topo);
		free(c);
		return rc;
	}
	c->pools = calloc((size_t)c->topo->count * LEAP_KINDS, sizeof(*c->pools));
	c->workers = calloc((size_t)c->topo->count, sizeof(*c->workers));
	if (!c->pools || !c->workers) {
		free(c->pools);
		free(c->workers);
		leap_topo_destroy(&c->topo);
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->refs, 1);
	*out = c;
	return 0;
}

void leap__ctx_ref(struct leap_ctx *c)
{
	atomic_fetch_add(&c->refs, 1);
}

/* Drop a reference; the last one stops the workers and frees the pools. */
void leap__ctx_unref(struct leap_ctx *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (int n = 0; n < c->topo->count; n++)
		leap__worker_free(c->workers[n]);
	leap__wp_free(c->wp);
	for (int n = 0; n < c->topo->count * LEAP_KINDS; n++)
		leap__pool_free(c->pools[n]);
	free(c->workers);
	free(c->pools);
	pthread_mutex_destroy(&c->lock);
	leap_topo_destroy(&c->topo);
	free(c);
}

LEAP_API void leap_ctx_destroy(struct leap_ctx **ctx)
{
	if (!ctx || !*ctx)
		return;
	leap__ctx_unref(*ctx);
	*ctx = NULL;
}

LEAP_API const struct leap_topo *leap_ctx_topo(const struct leap_ctx *ctx)
{
	return ctx ? ctx->topo : NULL;
}

/* The pool of node for a kind of page, created on first use. -ENODEV if node has no
 * memory; -EOPNOTSUPP if the kernel cannot give that kind. */
int leap__ctx_pool(struct leap_ctx *c, int node, int kind, struct leap_pool **out)
{
	if (!leap__topo_valid_mem_node(c->topo, node))
		return -ENODEV;
	int rc = 0;
	struct leap_pool **pp = &c->pools[kind * c->topo->count + node];
	pthread_mutex_lock(&c->lock);
	if (!*pp)
		rc = leap__pool_new(c, node, kind, pp);
	if (!rc)
		*out = *pp;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The worker that copies for target_node: on its CPUs, or the nearest node's. */
int leap__ctx_worker(struct leap_ctx *c, int target_node, struct leap__worker **out)
{
	int n = c->topo->nearest_cpu[target_node];
	if (n < 0)
		n = 0; /* no node reports CPUs (odd sysfs): an unbound worker on slot 0 */
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	if (!c->workers[n])
		rc = leap__worker_new(c->topo, n, c->workers_per_node, &c->workers[n]);
	if (!rc)
		*out = c->workers[n];
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The userfaultfd write protection, opened on first use. The kernel's answer that it has
 * none (-EOPNOTSUPP) is kept; any other failure (out of memory or descriptors, no
 * thread) is transient: returned, and tried again on the next use, or a passing shortage
 * would leave the instance without write protection for good. */
int leap__ctx_wp(struct leap_ctx *c, struct leap__wp **out)
{
	if (c->flags & LEAP_CTX_NO_WRITE_PROTECT)
		return leap__why(-EOPNOTSUPP, "the instance has no write protection "
					      "(LEAP_CTX_NO_WRITE_PROTECT or PAGELEAP_WP=none): "
					      "pass LEAP_NO_WRITERS when nothing writes during "
					      "the move");
	pthread_mutex_lock(&c->lock);
	if (c->wp_rc == 0) {
		unsigned modes = (c->flags & LEAP_CTX_ALLOW_USER_MODE ? LEAP_UFFD_ALLOW_USER : 0) |
				 (c->flags & LEAP_CTX_USER_MODE_ONLY ? LEAP_UFFD_FORCE_USER : 0);
		int rc = leap__wp_new(modes, &c->wp, &c->wp_why);
		/* a refusal is for good; running out of descriptors or memory is not */
		c->wp_rc = !rc ? 1 : rc == -EOPNOTSUPP ? rc : 0;
		if (rc && rc != -EOPNOTSUPP) {
			const char *why = c->wp_why;
			pthread_mutex_unlock(&c->lock);
			return leap__why(rc, why);
		}
	}
	int rc = c->wp_rc < 0 ? c->wp_rc : 0;
	*out = c->wp;
	const char *why = c->wp_why;
	pthread_mutex_unlock(&c->lock);
	return rc ? leap__why(rc, why) : 0;
}

LEAP_API int leap_ctx_write_protect(struct leap_ctx *ctx, const char **why)
{
	if (!ctx)
		return -EINVAL;
	struct leap__wp *wp = NULL;
	int rc = leap__ctx_wp(ctx, &wp);
	if (why)
		*why = rc ? leap_errormsg() : ctx->wp_why;
	return rc ? LEAP_WP_NONE : wp->user_only ? LEAP_WP_USER_ONLY : LEAP_WP_FULL;
}

LEAP_API int leap_pool_get(struct leap_ctx *ctx, int node, struct leap_pool **out)
{
	if (!ctx || !out)
		return -EINVAL;
	return leap__ctx_pool(ctx, node, LEAP_PAGES_SMALL, out);
}

LEAP_API int leap_pool_get_kind(struct leap_ctx *ctx, int node, int pages, struct leap_pool **out)
{
	if (!ctx || !out || pages < 0 || pages >= LEAP_KINDS)
		return -EINVAL;
	return leap__ctx_pool(ctx, node, pages, out);
}
