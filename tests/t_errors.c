/* Bad input gets a clear -errno and changes nothing: same contents, same nodes, same
 * counters. Includes a target pool at its cap (-ENOMEM) and destroyed handles. */
#include "util.h"

static struct leap_ctx *ctx;
static struct leap_region *r;
static char *p;
static size_t len = 4 << 20, np;
static int home;

/* The region is exactly as it was: contents, library nodes, kernel nodes, no moves. */
static void unchanged(const char *what)
{
	check_pages(p, np, 5, what);
	for (size_t k = 0; k < np; k++)
		CHECK(leap_node_of(r, p + k * PG) == home, "%s: node_of page %zu", what, k);
	expect_kernel_node(p, np, home, what);
	struct leap_region_stats s = { .size = sizeof(s) };
	OK(leap_region_stats(r, &s));
	CHECK(s.pages_moved == 0 && s.runs == 1, "%s: pages moved %" PRIu64, what, s.pages_moved);
}

int main(void)
{
	t_name = "t_errors";
	OK(leap_ctx_new(NULL, &ctx));
	const struct leap_topo *t = leap_ctx_topo(ctx);
	int nodes[64];
	int nn = mem_nodes(t, nodes, 64);
	home = nodes[0];
	int other = nodes[nn - 1];
	np = len / PG;
	OK(leap_region_new(ctx, len, home, &r));
	p = leap_region_addr(r);
	fill_pages(p, np, 5);

	ERR(page_leap(NULL, p, len, other, 0), EINVAL);
	ERR(page_leap(r, p, len, other, 0x80), EINVAL);
	ERR(page_leap(r, p, 0, other, 0), EINVAL);
	ERR(page_leap(r, p + 1, PG, other, 0), EINVAL);
	ERR(page_leap(r, p, PG + 100, other, 0), EINVAL);
	ERR(page_leap(r, p - PG, PG, other, 0), EFAULT);
	ERR(page_leap(r, p + len, PG, other, 0), EFAULT);
	ERR(page_leap(r, p + len - PG, 2 * PG, other, 0), EFAULT);
	ERR(page_leap(r, p + PG, SIZE_MAX - PG + 1, other, 0), EFAULT);
	ERR(page_leap(r, p, len, -1, 0), ENODEV);
	ERR(page_leap(r, p, len, leap_topo_node_count(t), 0), ENODEV);
	ERR(page_leap(r, p, len, 1 << 20, 0), ENODEV);
	for (int n = 0; n < leap_topo_node_count(t); n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		OK(leap_topo_node(t, n, &ni));
		if (ni.online && !ni.has_memory) /* a CPU-only node */
			ERR(page_leap(r, p, len, n, 0), ENODEV);
	}
	unchanged("after bad arguments");

	/* the target pool is at its cap: -ENOMEM, nothing moved; then it works */
	unsigned fl = other == home ? LEAP_RELOCATE : 0;
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, other, &pool));
	struct leap_pool_stats ps = { .size = sizeof(ps) };
	OK(leap_pool_stats(pool, &ps));
	OK(leap_pool_set_cap(pool, ps.capacity_bytes + len / 2));
	ERR(page_leap(r, p, len, other, fl), ENOMEM);
	unchanged("after -ENOMEM");
	struct leap_pool_stats ps2 = { .size = sizeof(ps2) };
	OK(leap_pool_stats(pool, &ps2));
	CHECK(ps2.used_bytes == ps.used_bytes, "pool used changed on -ENOMEM");
	/* a range that fits still moves (half the region) */
	CHECK(OK(page_leap(r, p, len / 2, other, fl)) == (int)(np / 2), "half move");
	CHECK(leap_node_of(r, p) == other && leap_node_of(r, p + len / 2) == home, "half placement");
	expect_kernel_node(p, np / 2, other, "half moved");
	check_pages(p, np, 5, "half moved");
	OK(leap_pool_set_cap(pool, UINT64_MAX / 2));
	OK(page_leap(r, p, len, home, fl));

	/* bad options */
	struct leap_ctx *bctx = NULL;
	struct leap_ctx_options bo = { .size = sizeof(bo), .pool_map_chunk_bytes = PG + 1 };
	ERR(leap_ctx_new(&bo, &bctx), EINVAL);
	bo.size = 4;
	bo.pool_map_chunk_bytes = 0;
	ERR(leap_ctx_new(&bo, &bctx), EINVAL);
	ERR(leap_ctx_new(NULL, NULL), EINVAL);
	CHECK(bctx == NULL, "failed ctx constructor wrote a handle");

	/* region creation errors */
	struct leap_region *bad = NULL;
	ERR(leap_region_new(ctx, 0, home, &bad), EINVAL);
	ERR(leap_region_new(ctx, PG + 1, home, &bad), EINVAL);
	ERR(leap_region_new(ctx, PG, -1, &bad), ENODEV);
	ERR(leap_region_new(NULL, PG, home, &bad), EINVAL);
	ERR(leap_region_new(ctx, PG, home, NULL), EINVAL);
	struct leap_place gap[2] = { { 0, PG, home }, { 2 * PG, PG, home } };
	ERR(leap_region_new_placed(ctx, 3 * PG, gap, 2, &bad), EINVAL);
	struct leap_place overlap[2] = { { 0, 2 * PG, home }, { PG, 2 * PG, home } };
	ERR(leap_region_new_placed(ctx, 3 * PG, overlap, 2, &bad), EINVAL);
	struct leap_place shortp[1] = { { 0, PG, home } };
	ERR(leap_region_new_placed(ctx, 3 * PG, shortp, 1, &bad), EINVAL);
	CHECK(bad == NULL, "failed constructor wrote a handle");
	if (other == home) /* the region itself uses more than that */
		ERR(leap_pool_set_cap(pool, PG * 4), EBUSY);
	else {
		OK(leap_pool_set_cap(pool, PG * 4));
		ERR(leap_region_new(ctx, 8 * PG, other, &bad), ENOMEM);
		OK(leap_pool_set_cap(pool, UINT64_MAX / 2));
	}

	/* destroyed handles are NULL and refused; the ctx outlives its regions */
	leap_ctx_destroy(&ctx);
	CHECK(ctx == NULL, "ctx destroy sets NULL");
	check_pages(p, np, 5, "after ctx destroy");
	CHECK(leap_node_of(r, p) == home, "region works after ctx destroy");
	leap_region_destroy(&r);
	CHECK(r == NULL, "region destroy sets NULL");
	ERR(page_leap(r, p, len, home, 0), EINVAL);
	ERR(leap_node_of(r, p), EINVAL);
	ERR(leap_region_stats(r, &(struct leap_region_stats){ .size = sizeof(struct leap_region_stats) }), EINVAL);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	say("measured all error cases: -errno returned, region unchanged");
	return 0;
}
