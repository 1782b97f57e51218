/*
 * Pool compaction (leap_pool_compact): a region fragmented on purpose, by relocating
 * every other page (each relocated page lands in a second bank of the pool, so the
 * region's runs alternate between two banks, one kernel mapping per page, and the pool's
 * free pages are single scattered pages), is compacted while two writers keep writing to
 * it. Afterwards: one run and one kernel mapping, the minority bank's pages moved (half
 * the region) and counted exactly, a large free extent in the pool, every byte intact,
 * every write landed, every page on the node per the kernel and the library. Also: an
 * already compact pool moves nothing; the synchronous form without writers; a cancel
 * right after the start (every page whole, library and kernel agree, a second compaction
 * finishes the rest); a region spread over two nodes keeps its pages on the other node;
 * bad arguments.
 * Parameters: LEAP_COMPACT_MB (32): size of the fragmented region.
 */
#include "oracle.h"

/* Relocate pages 0, 2, 4, ... of [p, p+npages) one by one: each goes to another bank. */
static void fragment(struct leap_region *r, char *p, size_t npages, int node)
{
	for (size_t i = 0; i < npages; i += 2)
		CHECK(OK(page_leap(r, p + i * PG, PG, node, LEAP_RELOCATE, NULL)) == 1,
		      "relocating page %zu moved nothing", i);
}

#define NWRITERS 2

static void destroy_fn(void *arg)
{
	leap_region_destroy(arg);
}

int main(void)
{
	t_name = "t_compact";
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	const struct leap_topo *topo = leap_ctx_topo(ctx);
	int nodes[64];
	int nn = mem_nodes(topo, nodes, 64);
	CHECK(nn >= 1, "no node with memory");
	int node = nodes[0];
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, node, &pool));

	/* bad arguments */
	struct leap_job *j = NULL;
	ERR(leap_pool_compact(NULL, 0, NULL, &j), EINVAL);
	ERR(leap_pool_compact(NULL, 0, NULL, NULL), EINVAL);
	ERR(leap_pool_compact(pool, 0x100, NULL, &j), EINVAL);
	ERR(leap_pool_compact(pool, LEAP_RELOCATE, NULL, &j), EINVAL);
	ERR(leap_pool_compact(pool, LEAP_HUGE_WHOLE, NULL, NULL), EINVAL);
	struct leap_job_options bad = { .size = 1 };
	ERR(leap_pool_compact(pool, 0, &bad, &j), EINVAL);
	/* options page_leap() refuses are refused here too, at submission (they used to
	 * start a walk whose every move failed -EINVAL) */
	const struct leap_job_options bad_opts[] = {
		{ .size = sizeof(bad_opts[0]), .granularity_min = 8 * PG, .granularity_max = 4 * PG },
		{ .size = sizeof(bad_opts[0]), .granularity_max = (size_t)2 << 30 },
		{ .size = sizeof(bad_opts[0]), .granularity_min = (size_t)2 << 30 },
		{ .size = sizeof(bad_opts[0]), .granularity_min = 100 },
	};
	for (size_t k = 0; k < sizeof(bad_opts) / sizeof(bad_opts[0]); k++) {
		ERR(leap_pool_compact(pool, 0, &bad_opts[k], &j), EINVAL);
		ERR(leap_pool_compact(pool, 0, &bad_opts[k], NULL), EINVAL);
	}
	CHECK(j == NULL, "a rejected compaction handed out a job");
	/* nothing in the pool: nothing to do */
	CHECK(OK(leap_pool_compact(pool, 0, NULL, NULL)) == 0, "empty pool: pages moved");

	/* ---- the fragmented region, compacted under two writers */
	long mb = env_long("LEAP_COMPACT_MB", 32);
	CHECK(mb >= 1 && mb <= 1024, "LEAP_COMPACT_MB %ld out of range", mb);
	const size_t len = (size_t)mb << 20, np = len / PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, node, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 7);
	double t0 = now();
	fragment(r, p, np, node);
	double t_frag = now() - t0;
	struct leap_region_stats rs = rstats(r);
	int maps0 = count_maps(p, p + len);
	struct leap_pool_stats ps0 = pstats(pool);
	CHECK(rs.runs == np, "fragmented: %" PRIu64 " runs, want one per page (%zu)", rs.runs, np);
	CHECK(maps0 == (int)np, "fragmented: %d kernel mappings, want %zu", maps0, np);
	CHECK(ps0.free_extents >= np / 2 && ps0.largest_free_bytes == PG,
	      "fragmented pool: %" PRIu64 " free extents, largest %" PRIu64 " bytes",
	      ps0.free_extents, ps0.largest_free_bytes);
	check_pages(p, np, 7, "fragmented");
	expect_all_on(r, node, "fragmented");

	struct oracle o;
	oracle_start_region(&o, NWRITERS, r); /* returns with both writers writing */
	t0 = now();
	OK(leap_pool_compact(pool, 0, NULL, &j));
	CHECK(j != NULL, "no job");
	struct leap_progress last = { 0 }, pr;
	int polls = 0;
	for (;;) {
		pr = prog(j);
		polls++;
		CHECK(pr.pages_moved >= last.pages_moved && pr.pages_done >= last.pages_done,
		      "progress went back: moved %" PRIu64 " -> %" PRIu64 ", done %" PRIu64
		      " -> %" PRIu64,
		      last.pages_moved, pr.pages_moved, last.pages_done, pr.pages_done);
		CHECK(pr.pages_total == 0 || pr.pages_done <= pr.pages_total,
		      "progress: %" PRIu64 " done of %" PRIu64, pr.pages_done, pr.pages_total);
		CHECK(pr.pages_failed == 0, "progress: %" PRIu64 " pages failed", pr.pages_failed);
		last = pr;
		if (pr.state >= LEAP_JOB_DONE)
			break;
		oracle_more(&o, 100); /* paces the polls by writes; nothing relies on it */
	}
	int64_t res = leap_job_wait(j, -1);
	double dt = now() - t0;
	pr = prog(j);
	oracle_more(&o, 1000); /* writes after the job too, on the moved pages */
	uint64_t writes = oracle_stop(&o);
	CHECK(res >= 0, "compaction under writers: %" PRId64 " (%s)", res,
	      leap_strerror((int)res));
	CHECK(pr.state == LEAP_JOB_DONE, "state %d", pr.state);
	CHECK((uint64_t)res == pr.pages_moved, "result %" PRId64 ", progress %" PRIu64 " moved", res,
	      pr.pages_moved);
	CHECK(pr.pages_total == np / 2 && pr.pages_moved == np / 2 && pr.pages_done == np / 2 &&
		      pr.pages_failed == 0 && pr.bytes_copied == np / 2 * PG,
	      "progress: total %" PRIu64 " moved %" PRIu64 " done %" PRIu64 " failed %" PRIu64
	      " copied %" PRIu64 ", want %zu minority pages",
	      pr.pages_total, pr.pages_moved, pr.pages_done, pr.pages_failed, pr.bytes_copied,
	      np / 2);
	rs = rstats(r);
	int maps1 = count_maps(p, p + len);
	struct leap_pool_stats ps1 = pstats(pool);
	CHECK(rs.runs == 1, "compacted: %" PRIu64 " runs", rs.runs);
	CHECK(maps1 == 1, "compacted: %d kernel mappings", maps1);
	/* checked last (so that everything else is checked too), failing the test there */
	/* the bank the region left is given back whole: its stranded free pages (usable
	 * only by this region at those offsets) return to the kernel, and its part of the
	 * pool's file becomes one free extent that any region's window can take */
	int free_ok = ps1.largest_free_space_bytes >= len && ps1.free_extents == 0 &&
		      ps0.largest_free_space_bytes < len;
	CHECK(ps1.used_bytes == len, "pool used %" PRIu64 " bytes, region %zu", ps1.used_bytes, len);
	check_pages(p, np, 7, "compacted");
	oracle_check(&o, "writers");
	expect_all_on(r, node, "compacted");
	leap_job_destroy(&j);
	say("measured compaction of %zu MiB under %d writers (%" PRIu64 " writes, %" PRIu64
	    " waits): runs %zu -> %" PRIu64 ", mappings %d -> %d, largest free extent of the "
	    "pool's file %" PRIu64 " KiB -> %" PRIu64 " KiB, free pages %" PRIu64 " KiB in %" PRIu64
	    " extents -> %" PRIu64 " KiB in %" PRIu64 " (returned to the kernel), %" PRIu64
	    " pages moved in %.3f s (%" PRIu64 " extents, %d polls); fragmenting took %.3f s",
	    len >> 20, NWRITERS, writes, pr.write_faults, np, rs.runs, maps0, maps1,
	    ps0.largest_free_space_bytes >> 10, ps1.largest_free_space_bytes >> 10,
	    ps0.free_bytes >> 10, ps0.free_extents, ps1.free_bytes >> 10, ps1.free_extents,
	    pr.pages_moved, dt, pr.extents, polls, t_frag);

	/* an already compact pool: nothing moves, asynchronously or not */
	CHECK(OK(leap_pool_compact(pool, 0, NULL, NULL)) == 0, "compact pool: pages moved");
	OK(leap_pool_compact(pool, LEAP_NO_WRITERS, NULL, &j));
	CHECK(leap_job_wait(j, -1) == 0, "compact pool (async): pages moved");
	pr = prog(j);
	CHECK(pr.state == LEAP_JOB_DONE && pr.pages_total == 0 && pr.pages_moved == 0,
	      "compact pool: state %d total %" PRIu64 " moved %" PRIu64, pr.state, pr.pages_total,
	      pr.pages_moved);
	leap_job_destroy(&j);
	CHECK(rstats(r).runs == 1 && count_maps(p, p + len) == 1, "no-op compaction changed the region");
	check_pages(p, np, 7, "after the no-op compaction");

	/* synchronous, without writers (LEAP_NO_WRITERS), on a quarter of the region */
	const size_t q = np / 4;
	fragment(r, p, q, node);
	CHECK(rstats(r).runs == q, "quarter fragmented: %" PRIu64 " runs", rstats(r).runs);
	int64_t sres = OK(leap_pool_compact(pool, LEAP_NO_WRITERS, NULL, NULL));
	CHECK((size_t)sres == q / 2, "synchronous compaction moved %" PRId64 ", want %zu", sres, q / 2);
	CHECK(rstats(r).runs == 1 && count_maps(p, p + len) == 1,
	      "synchronous compaction: %" PRIu64 " runs, %d mappings", rstats(r).runs,
	      count_maps(p, p + len));
	check_pages(p, np, 7, "synchronous compaction");
	oracle_check(&o, "writers");
	expect_all_on(r, node, "synchronous compaction");

	/* cancel right after the start: small fixed steps so there is a middle. Half the
	 * region fragmented (np / 4 minority pages), to keep the emulated guests' run short */
	const size_t half = np / 2, minority = half / 2;
	fragment(r, p, half, node);
	struct leap_job_options small = { .size = sizeof(small), .granularity_min = 16 * PG,
					  .granularity_max = 16 * PG };
	/* cancel before the first extent: held at extent 0, cancelled, let go: nothing moves */
	gate_arm(0, NULL);
	OK(leap_pool_compact(pool, 0, &small, &j));
	gate_wait();
	OK(leap_job_cancel(j));
	gate_release();
	res = leap_job_wait(j, -1);
	pr = prog(j);
	CHECK(res == -ECANCELED && pr.state == LEAP_JOB_CANCELLED && pr.pages_moved == 0,
	      "cancelled before the first extent: result %" PRId64 " state %d, %" PRIu64 " moved",
	      res, pr.state, pr.pages_moved);
	uint64_t first_cancel = pr.pages_moved, cancelled_moved = 0;
	leap_job_destroy(&j);
	rs = rstats(r);
	CHECK(rs.runs >= 1 && rs.runs <= np, "after cancel: %" PRIu64 " runs", rs.runs);
	CHECK(count_maps(p, p + len) == (int)rs.runs, "after cancel: %d mappings, %" PRIu64 " runs",
	      count_maps(p, p + len), rs.runs);
	check_pages(p, np, 7, "after cancel");
	oracle_check(&o, "writers");
	expect_all_on(r, node, "after cancel");
	/* cancel in the middle: held before extent CANCEL_AT; exactly the extents before it
	 * moved, none after the cancel; a job that ended first fails */
	enum { CANCEL_AT = 4 };
	gate_arm(CANCEL_AT, NULL);
	OK(leap_pool_compact(pool, 0, &small, &j));
	gate_wait();
	struct leap_progress at_cancel = prog(j);
	OK(leap_job_cancel(j));
	gate_release();
	res = leap_job_wait(j, -1);
	pr = prog(j);
	uint64_t after_cancel = pr.pages_moved - at_cancel.pages_moved;
	CHECK(res == -ECANCELED && pr.state == LEAP_JOB_CANCELLED,
	      "cancel in the middle: result %" PRId64 " state %d (ended before the cancel?)", res,
	      pr.state);
	/* each 16-page extent of the fragmented half holds 8 minority pages */
	CHECK(pr.pages_moved == CANCEL_AT * 8 && after_cancel == 0,
	      "cancel in the middle: %" PRIu64 " moved (%" PRIu64 " after the cancel), want "
	      "exactly the %d extents before it",
	      pr.pages_moved, after_cancel, CANCEL_AT);
	uint64_t mid_moved = pr.pages_moved;
	cancelled_moved += mid_moved;
	leap_job_destroy(&j);
	rs = rstats(r);
	CHECK(count_maps(p, p + len) == (int)rs.runs, "after cancel: %d mappings, %" PRIu64 " runs",
	      count_maps(p, p + len), rs.runs);
	check_pages(p, np, 7, "after the second cancel");
	oracle_check(&o, "writers");
	expect_all_on(r, node, "after the second cancel");
	/* the rest */
	sres = OK(leap_pool_compact(pool, 0, NULL, NULL));
	CHECK((uint64_t)sres + cancelled_moved == minority,
	      "cancelled jobs moved %" PRIu64 ", the next %" PRId64 ", want %zu together",
	      cancelled_moved, sres, minority);
	CHECK(rstats(r).runs == 1 && count_maps(p, p + len) == 1, "after the cancel and compaction");
	check_pages(p, np, 7, "after the cancel and compaction");
	expect_all_on(r, node, "after the cancel and compaction");
	say("measured cancel right after the start: %" PRIu64 " of %zu minority pages moved; "
	    "in the middle: %" PRIu64 " (%" PRIu64 " after the cancel, %" PRIu64 " runs left)",
	    first_cancel, minority, mid_moved, after_cancel, rs.runs);

	/*
	 * Destroying a region with a compaction in flight: the destroy waits for that
	 * region's own extent in flight at most (coord.c: "never delays a destroy by more
	 * than one extent"), not for the rest of the walk. Two fragmented regions; the job is
	 * held before its second extent, in whichever region it walks first (x); the other
	 * (y), which the walk has still to reach, is destroyed: that destroy must return while
	 * the job is held. Then the job is let go and compacts x whole.
	 */
	struct leap_region *r2;
	OK(leap_region_new(ctx, len, node, &r2));
	char *p2 = leap_region_addr(r2);
	fill_pages(p2, np, 8);
	fragment(r, p, np / 8, node);
	fragment(r2, p2, half, node);
	gate_arm(1, NULL);
	OK(leap_pool_compact(pool, 0, &small, &j));
	gate_wait();
	struct leap_region *held = gate_region();
	CHECK(held == r || held == r2, "held in a region of neither");
	pr = prog(j);
	struct leap_region **victim = held == r ? &r2 : &r;
	char *xp = held == r ? p : p2;
	uint64_t xtag = held == r ? 7 : 8;
	t0 = now();
	CHECK(finishes(destroy_fn, victim),
	      "leap_region_destroy() of a region the walk had still to reach blocked while the "
	      "job was held in the other region: it waits for the walk, not one extent");
	double t_destroy = now() - t0;
	CHECK(*victim == NULL, "destroy did not clear the handle");
	CHECK(prog(j).state < LEAP_JOB_DONE, "the held job ended");
	gate_release();
	res = leap_job_wait(j, -1);
	CHECK(res >= 0, "compaction with a region destroyed: %" PRId64, res);
	CHECK(prog(j).state == LEAP_JOB_DONE, "job not done");
	leap_job_destroy(&j);
	struct leap_region *x = held;
	CHECK(rstats(x).runs == 1 && count_maps(xp, xp + len) == 1,
	      "surviving region: %" PRIu64 " runs", rstats(x).runs);
	check_pages(xp, np, xtag, "the surviving region");
	expect_all_on(x, node, "the surviving region");
	CHECK(pstats(pool).used_bytes == len, "pool used %" PRIu64 " bytes with one region left",
	      pstats(pool).used_bytes);
	say("measured destroy during a compaction (held after %" PRIu64 " of %" PRIu64
	    " pages): the destroy of the region not yet walked took %.3f s",
	    pr.pages_moved, pr.pages_total, t_destroy);
	leap_region_destroy(held == r ? &r : &r2);
	CHECK(pstats(pool).used_bytes == 0, "pool still used after the regions were destroyed");

	/* two nodes: the region's pages on the other node stay there */
	if (nn > 1) {
		int other = nodes[nn - 1];
		const size_t l2 = 8 << 20, n2 = l2 / PG;
		struct leap_place pl[2] = { { 0, l2 / 2, node }, { l2 / 2, l2 / 2, other } };
		OK(leap_region_new_placed(ctx, l2, pl, 2, &r));
		p = leap_region_addr(r);
		fill_pages(p, n2, 9);
		fragment(r, p, n2 / 2, node);
		CHECK(OK(leap_pool_compact(pool, 0, NULL, NULL)) == (int)(n2 / 4),
		      "two-node region: moved pages");
		CHECK(rstats(r).runs == 2 && count_maps(p, p + l2) == 2,
		      "two-node region: %" PRIu64 " runs", rstats(r).runs);
		int *kn = malloc(n2 * sizeof(int));
		kernel_nodes(p, n2, kn);
		for (size_t k = 0; k < n2; k++) {
			int want = k < n2 / 2 ? node : other;
			CHECK(kn[k] == want && leap_node_of(r, p + k * PG) == want,
			      "two-node region: page %zu: kernel %d, library %d, want %d", k, kn[k],
			      leap_node_of(r, p + k * PG), want);
		}
		free(kn);
		check_pages(p, n2, 9, "two-node region");
		leap_region_destroy(&r);
	}

	oracle_free(&o);
	leap_ctx_destroy(&ctx);
	CHECK(free_ok,
	      "compacted pool: largest free extent of the file %" PRIu64 " bytes (before %" PRIu64
	      "), %" PRIu64 " free page extents left, want >= %zu and 0: the bank the region "
	      "left was not given back whole",
	      ps1.largest_free_space_bytes, ps0.largest_free_space_bytes, ps1.free_extents, len);
	return 0;
}
