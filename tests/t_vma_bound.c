/*
 * The kernel mappings a region needs stay bounded by its placement, not by how often it
 * moved: many random sub-range migrations (between nodes, or relocations on one node),
 * then the region's mappings are counted in /proc/self/maps. Bound (documented in
 * pageleap(7)): mappings == runs (maximal ranges of one node and bank); with moves
 * between nodes only, runs == node changes along the region + 1. Every page's contents
 * and node are checked against a shadow copy at the end.
 * The pools are mapped in small, odd-sized chunks (LEAP_CHUNK_KB, 1028) so that copies
 * constantly cross chunk boundaries.
 * Parameters: LEAP_VMA_MB (256), LEAP_VMA_ITER (10000), LEAP_CHUNK_KB, LEAP_SEED.
 */
#include "util.h"

int main(void)
{
	t_name = "t_vma_bound";
	uint64_t seed0 = test_seed(), seed = seed0;
	size_t mb = (size_t)env_long("LEAP_VMA_MB", 256);
	long iters = env_long("LEAP_VMA_ITER", 10000);
	struct leap_ctx *ctx;
	struct leap_ctx_options o = { .size = sizeof(o) };
	o.pool_map_chunk_bytes = (uint64_t)env_long("LEAP_CHUNK_KB", 1028) << 10;
	OK(leap_ctx_new(&o, &ctx));
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	size_t len = mb << 20, np = len / PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	char *p = leap_region_addr(r);
	uint64_t *want = calloc(np, sizeof(uint64_t));
	int *node = calloc(np, sizeof(int));
	for (size_t k = 0; k < np; k++)
		node[k] = nodes[0];
	uint64_t max_runs = 0;
	for (long it = 0; it < iters; it++) {
		/* lengths log-uniform from one page to a quarter of the region */
		size_t maxlen = np / 4, n = 1;
		for (int b = (int)(rnd(&seed) % 64); b > 0 && n < maxlen; b -= 4)
			n *= 2;
		n = 1 + rnd(&seed) % n;
		size_t lo = rnd(&seed) % (np - n + 1);
		int target = nodes[rnd(&seed) % (uint64_t)nn];
		/* stamp the range so a lost or misplaced page shows */
		for (size_t k = lo; k < lo + n; k++) {
			want[k] = ((uint64_t)it << 32) | k;
			*(uint64_t *)(p + k * PG + (k % 512) * 8) = want[k];
		}
		int moved = page_leap(r, p + lo * PG, n * PG, target, nn == 1 ? LEAP_RELOCATE : 0, NULL);
		if (moved < 0)
			FAIL("iteration %ld: page_leap(%zu+%zu -> %d) = %d (seed %" PRIu64 ")", it, lo, n,
			     target, moved, seed0);
		for (size_t k = lo; k < lo + n; k++)
			node[k] = target;
		struct leap_region_stats st = { .size = sizeof(st) };
		OK(leap_region_stats(r, &st));
		max_runs = st.runs > max_runs ? st.runs : max_runs;
	}
	size_t changes = 0;
	for (size_t k = 0; k + 1 < np; k++)
		changes += node[k] != node[k + 1];
	struct leap_region_stats st = { .size = sizeof(st) };
	OK(leap_region_stats(r, &st));
	int maps = count_maps(p, p + len);
	CHECK(maps == (int)st.runs, "kernel has %d mappings, library %" PRIu64 " runs", maps, st.runs);
	if (nn > 1)
		CHECK(st.runs == changes + 1, "runs %" PRIu64 " but %zu node changes (seed %" PRIu64 ")",
		      st.runs, changes, seed0);
	CHECK(st.runs <= 2 * (uint64_t)iters + 1, "runs beyond two per migration");
	for (size_t k = 0; k < np; k++) {
		uint64_t got = *(uint64_t *)(p + k * PG + (k % 512) * 8);
		if (got != want[k])
			FAIL("page %zu holds %" PRIx64 ", want %" PRIx64 " (seed %" PRIu64 ")", k, got,
			     want[k], seed0);
		CHECK(leap_node_of(r, p + k * PG) == node[k], "node_of page %zu", k);
	}
	int *kn = malloc(np * sizeof(int));
	kernel_nodes(p, np, kn);
	for (size_t k = 0; k < np; k++)
		if (kn[k] != node[k])
			FAIL("kernel: page %zu on node %d, want %d (seed %" PRIu64 ")", k, kn[k], node[k],
			     seed0);
	/* pool accounting: exactly the region's pages are in use, nothing leaks on destroy */
	uint64_t used = 0;
	for (int i = 0; i < nn; i++) {
		struct leap_pool *pool;
		struct leap_pool_stats ps = { .size = sizeof(ps) };
		OK(leap_pool_get(ctx, nodes[i], &pool));
		OK(leap_pool_stats(pool, &ps));
		used += ps.used_bytes;
	}
	CHECK(used == len, "pools use %" PRIu64 " bytes for a %zu-byte region", used, len);
	say("bound %zu MiB region, %ld random migrations over %d node(s): %d mappings == %" PRIu64
	    " runs (max %" PRIu64 " during the run), %zu node changes, %" PRIu64 " pages moved",
	    mb, iters, nn, maps, st.runs, max_runs, changes, st.pages_moved);
	leap_region_destroy(&r);
	for (int i = 0; i < nn; i++) {
		struct leap_pool *pool;
		struct leap_pool_stats ps = { .size = sizeof(ps) };
		OK(leap_pool_get(ctx, nodes[i], &pool));
		OK(leap_pool_stats(pool, &ps));
		CHECK(ps.used_bytes == 0 && ps.capacity_bytes == 0, "pool %d leaks after destroy",
		      nodes[i]);
	}
	free(kn);
	free(want);
	free(node);
	leap_ctx_destroy(&ctx);
	return 0;
}
