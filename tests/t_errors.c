/* Bad input gets a clear -errno and changes nothing: same contents, same nodes, same
 * counters. Includes a target pool at its cap (-ENOMEM) and destroyed handles. */
#include "util.h"

#include <limits.h>

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
	CHECK(s.runs == 1, "%s: %" PRIu64 " runs", what, s.runs);
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

	ERR(page_leap(NULL, p, len, other, 0, NULL), EINVAL);
	ERR(page_leap(r, p, len, other, 0x80, NULL), EINVAL);
	ERR(page_leap(r, p, 0, other, 0, NULL), EINVAL);
	ERR(page_leap(r, p + 1, PG, other, 0, NULL), EINVAL);
	ERR(page_leap(r, p, PG + 100, other, 0, NULL), EINVAL);
	ERR(page_leap(r, p - PG, PG, other, 0, NULL), EFAULT);
	ERR(page_leap(r, p + len, PG, other, 0, NULL), EFAULT);
	ERR(page_leap(r, p + len - PG, 2 * PG, other, 0, NULL), EFAULT);
	ERR(page_leap(r, p + PG, SIZE_MAX - PG + 1, other, 0, NULL), EFAULT);
	ERR(page_leap(r, p, len, -1, 0, NULL), ENODEV);
	ERR(page_leap(r, p, len, leap_topo_node_count(t), 0, NULL), ENODEV);
	ERR(page_leap(r, p, len, 1 << 20, 0, NULL), ENODEV);
	struct leap_job_options jbad = { .size = sizeof(jbad), .granularity_min = 100 };
	ERR(page_leap_opts(r, p, len, other, 0, &jbad, NULL), EINVAL);
	jbad = (struct leap_job_options){ .size = sizeof(jbad), .granularity_min = 8 * PG,
					  .granularity_max = 4 * PG };
	ERR(page_leap_opts(r, p, len, other, 0, &jbad, NULL), EINVAL);
	jbad = (struct leap_job_options){ .size = 3 };
	ERR(page_leap_opts(r, p, len, other, 0, &jbad, NULL), EINVAL);
	ERR(page_leap(r, p, len, other, LEAP_NO_WRITERS << 4, NULL), EINVAL);
	for (int n = 0; n < leap_topo_node_count(t); n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		OK(leap_topo_node(t, n, &ni));
		if (ni.online && !ni.has_memory) /* a CPU-only node */
			ERR(page_leap(r, p, len, n, 0, NULL), ENODEV);
	}
	unchanged("after bad arguments");

	/* the target pool is at its cap, no headroom: -ENOMEM, nothing moved, each page
	 * reported; then it works */
	unsigned fl = other == home ? LEAP_RELOCATE : 0;
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, other, &pool));
	struct leap_pool_stats ps = { .size = sizeof(ps) };
	OK(leap_pool_stats(pool, &ps));
	OK(leap_pool_set_cap(pool, ps.capacity_bytes));
	int *status = malloc(np * sizeof(int));
	struct leap_job_options jo = { .size = sizeof(jo), .status = status };
	ERR(page_leap_opts(r, p, len, other, fl, &jo, NULL), ENOMEM);
	for (size_t k = 0; k < np; k++)
		CHECK(status[k] == -ENOMEM, "status[%zu] = %d", k, status[k]);
	unchanged("after -ENOMEM");
	struct leap_pool_stats ps2 = { .size = sizeof(ps2) };
	OK(leap_pool_stats(pool, &ps2));
	CHECK(ps2.used_bytes == ps.used_bytes && ps2.capacity_bytes == ps.capacity_bytes,
	      "pool changed on -ENOMEM");
	if (other != home) {
		/* room for half: the first half moves, the rest is reported, nothing is lost */
		OK(leap_pool_set_cap(pool, ps.capacity_bytes + len / 2));
		struct leap_job *j;
		OK(page_leap_opts(r, p, len, other, 0, &jo, &j));
		CHECK(leap_job_wait(j, -1) == -ENOMEM, "job on a pool filling up: not -ENOMEM");
		struct leap_progress pr = { .size = sizeof(pr) };
		OK(leap_job_progress(j, &pr));
		CHECK(pr.state == LEAP_JOB_FAILED && pr.error == -ENOMEM &&
			      pr.pages_failed == np / 2 && pr.pages_moved == np / 2 &&
			      pr.pages_done == np && pr.retries > 0,
		      "progress of a job on a pool filling up: state %d, %" PRIu64 " failed, %" PRIu64
		      " moved, %" PRIu64 " retries",
		      pr.state, pr.pages_failed, pr.pages_moved, pr.retries);
		leap_job_destroy(&j);
		int *kn = malloc(np * sizeof(int));
		kernel_nodes(p, np, kn);
		size_t moved = 0;
		for (size_t k = 0; k < np; k++) {
			int want = k < np / 2 ? other : home;
			CHECK(kn[k] == want && leap_node_of(r, p + k * PG) == want,
			      "page %zu on %d, want %d", k, kn[k], want);
			CHECK(status[k] == (k < np / 2 ? other : -ENOMEM), "status[%zu] = %d", k,
			      status[k]);
			moved += kn[k] == other;
		}
		CHECK(moved == np / 2, "moved %zu", moved);
		free(kn);
		check_pages(p, np, 5, "half moved");
		OK(leap_pool_set_cap(pool, UINT64_MAX / 2));
		OK(page_leap(r, p, len, home, 0, NULL));
	} else {
		/* relocation recycles the pages it leaves: one extent of headroom is enough */
		OK(leap_pool_set_cap(pool, ps.capacity_bytes + 64 * PG));
		CHECK(OK(page_leap_opts(r, p, len, home, fl, &jo, NULL)) == (int)np, "relocation");
		for (size_t k = 0; k < np; k++)
			CHECK(status[k] == home, "status[%zu] = %d", k, status[k]);
		check_pages(p, np, 5, "relocated with little headroom");
		OK(leap_pool_set_cap(pool, UINT64_MAX / 2));
		OK(page_leap(r, p, len, home, fl, NULL)); /* back to bank 0: one run */
	}
	free(status);
	struct leap_region_stats rs = { .size = sizeof(rs) };
	OK(leap_region_stats(r, &rs));
	CHECK(rs.runs == 1, "runs %" PRIu64, rs.runs);

	/* bad options */
	struct leap_ctx *bctx = NULL;
	struct leap_ctx_options bo = { .size = sizeof(bo), .pool_map_chunk_bytes = PG + 1 };
	ERR(leap_ctx_new(&bo, &bctx), EINVAL);
	bo.size = 4;
	bo.pool_map_chunk_bytes = 0;
	ERR(leap_ctx_new(&bo, &bctx), EINVAL);
	ERR(leap_ctx_new(NULL, NULL), EINVAL);
	bo = (struct leap_ctx_options){ .size = sizeof(bo), .flags = 0x100 };
	ERR(leap_ctx_new(&bo, &bctx), EINVAL);
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
	/* lengths near SIZE_MAX (a negative difference cast to size_t): the reservation's
	 * span once wrapped and its trim unmapped a page the library never mapped (UBSan
	 * flagged the pointer overflow in the asan build) */
	ERR(leap_region_new(ctx, SIZE_MAX & ~(size_t)(PG - 1), home, &bad), ENOMEM);
	ERR(leap_region_new(ctx, (SIZE_MAX & ~(size_t)(PG - 1)) - (2u << 20) + PG, home, &bad), ENOMEM);
	ERR(leap_region_new(ctx, (size_t)1 << 62, home, &bad), ENOMEM);
	CHECK(bad == NULL, "failed constructor wrote a handle");
	unchanged("refused huge regions");
	/* leap_strerror: a static text for every value, INT_MIN included (its negation
	 * overflowed), and unknown values not in strerror()'s reusable buffer */
	const char *u1 = leap_strerror(INT_MIN), *u2 = leap_strerror(-4095), *u3 = leap_strerror(4094);
	CHECK(u1 && u2 && u3 && u2 == u3, "unknown values: %p %p %p", (void *)u1, (void *)u2, (void *)u3);
	char keep[64];
	snprintf(keep, sizeof(keep), "%s", u2);
	(void)strerror(4093);
	CHECK(!strcmp(keep, u2), "leap_strerror's text changed under it: '%s' -> '%s'", keep, u2);
	CHECK(leap_strerror(-ENOENT) == leap_strerror(-ENOENT) && strlen(leap_strerror(-ENOENT)) > 0,
	      "a known errno's text");
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
	ERR(page_leap(r, p, len, home, 0, NULL), EINVAL);
	ERR(leap_node_of(r, p), EINVAL);
	ERR(leap_region_stats(r, &(struct leap_region_stats){ .size = sizeof(struct leap_region_stats) }), EINVAL);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	say("measured all error cases: -errno returned, region unchanged");
	return 0;
}
