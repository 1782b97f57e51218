/* Regions: created on every memory node and with a per-range placement; the library's
 * leap_node_of() agrees with the kernel for every page; one kernel mapping per run. */
#include "util.h"

int main(void)
{
	t_name = "t_region";
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	const size_t len = 16 << 20, np = len / PG;
	for (int i = 0; i < nn; i++) {
		struct leap_region *r;
		OK(leap_region_new(ctx, len, nodes[i], &r));
		char *p = leap_region_addr(r);
		CHECK((uintptr_t)p % (2u << 20) == 0, "region not 2 MiB aligned");
		CHECK(leap_region_length(r) == len, "length");
		for (size_t k = 0; k < len; k += 512)
			CHECK(p[k] == 0, "fresh region not zero at %zu", k);
		fill_pages(p, np, 7);
		for (size_t k = 0; k < np; k++)
			CHECK(leap_node_of(r, p + k * PG + 17) == nodes[i], "node_of page %zu", k);
		expect_kernel_node(p, np, nodes[i], "new region");
		struct leap_region_stats st = { .size = sizeof(st) };
		OK(leap_region_stats(r, &st));
		CHECK(st.runs == 1 && count_maps(p, p + len) == 1, "runs %" PRIu64 " maps %d", st.runs,
		      count_maps(p, p + len));
		CHECK(st.mappings == 1, "stats say %" PRIu64 " mappings, the kernel 1", st.mappings);
		/* relocate pieces: runs and mappings grow together, the kernel agrees */
		for (size_t k = 1; k < 8; k += 2) {
			OK(page_leap(r, p + k * len / 8, len / 16, nodes[i], LEAP_RELOCATE, NULL));
			OK(leap_region_stats(r, &st));
			int maps = count_maps(p, p + len);
			CHECK(st.mappings == (uint64_t)maps && st.runs == (uint64_t)maps,
			      "after relocating piece %zu: stats say %" PRIu64 " mappings (%" PRIu64
			      " runs), the kernel %d",
			      k, st.mappings, st.runs, maps);
		}
		check_pages(p, np, 7, "new region");
		leap_region_destroy(&r);
		CHECK(r == NULL, "destroy sets NULL");
	}
	/* per-range placement cycling over the memory nodes, uneven piece sizes */
	struct leap_place place[9];
	size_t at = 0, sizes[9] = { 1, 3, 64, 2, 100, 7, 256, 1, 0 };
	for (int i = 0; i < 9; i++) {
		size_t l = i < 8 ? sizes[i] * PG : len - at;
		place[i] = (struct leap_place){ at, l, nodes[i % nn] };
		at += l;
	}
	struct leap_region *r;
	OK(leap_region_new_placed(ctx, len, place, 9, &r));
	char *p = leap_region_addr(r);
	int *kn = malloc(np * sizeof(int));
	fill_pages(p, np, 9);
	kernel_nodes(p, np, kn);
	for (int i = 0; i < 9; i++)
		for (size_t k = place[i].offset / PG; k < (place[i].offset + place[i].length) / PG; k++) {
			CHECK(leap_node_of(r, p + k * PG) == place[i].node, "placed page %zu", k);
			CHECK(kn[k] == place[i].node, "kernel: placed page %zu on %d, want %d", k, kn[k],
			      place[i].node);
		}
	struct leap_region_stats st = { .size = sizeof(st) };
	OK(leap_region_stats(r, &st));
	int want_runs = nn == 1 ? 1 : 9;
	CHECK((int)st.runs == want_runs, "runs %" PRIu64 " want %d", st.runs, want_runs);
	CHECK(count_maps(p, p + len) == want_runs, "maps %d want %d", count_maps(p, p + len), want_runs);
	CHECK(st.mappings == (uint64_t)count_maps(p, p + len), "stats say %" PRIu64 " mappings, the "
	      "kernel %d", st.mappings, count_maps(p, p + len));
	check_pages(p, np, 9, "placed region");
	ERR(leap_node_of(r, p - 1), EFAULT);
	ERR(leap_node_of(r, p + len), EFAULT);
	ERR(leap_node_of(NULL, p), EINVAL);
	say("measured placed region over %d node(s): %d runs, %d mappings, %" PRIu64
	    " bytes of metadata for %zu pages",
	    nn, (int)st.runs, count_maps(p, p + len), st.metadata_bytes, np);
	free(kn);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	return 0;
}
