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
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct leap_region_stats rstats(struct leap_region *r)
{
	struct leap_region_stats s = { .size = sizeof(s) };
	OK(leap_region_stats(r, &s));
	return s;
}

static struct leap_pool_stats pstats(struct leap_pool *p)
{
	struct leap_pool_stats s = { .size = sizeof(s) };
	OK(leap_pool_stats(p, &s));
	return s;
}

static struct leap_progress prog(struct leap_job *j)
{
	struct leap_progress p = { .size = sizeof(p) };
	OK(leap_job_progress(j, &p));
	return p;
}

/* Library and kernel agree on every page of r, and every page is on node. */
static void expect_all_on(struct leap_region *r, int node, const char *what)
{
	char *p = leap_region_addr(r);
	size_t np = leap_region_length(r) / PG;
	int *kn = malloc(np * sizeof(int));
	kernel_nodes(p, np, kn);
	for (size_t k = 0; k < np; k++) {
		int lib = leap_node_of(r, p + k * PG);
		CHECK(kn[k] == lib && kn[k] == node, "%s: page %zu: kernel %d, library %d, want %d",
		      what, k, kn[k], lib, node);
	}
	free(kn);
}

/* Relocate pages 0, 2, 4, ... of [p, p+npages) one by one: each goes to another bank. */
static void fragment(struct leap_region *r, char *p, size_t npages, int node)
{
	for (size_t i = 0; i < npages; i += 2)
		CHECK(OK(page_leap(r, p + i * PG, PG, node, LEAP_RELOCATE, NULL)) == 1,
		      "relocating page %zu moved nothing", i);
}

/*
 * Writers: writer w increments the 64-bit word at byte 64 + 8w of random pages (only it
 * writes that word; fill_pages() uses the words at multiples of 512 bytes) and keeps a
 * private count per page. At the end every word equals its count: no write lost.
 */
#define NWRITERS 2
struct writer {
	int id;
	char *p;
	size_t np;
	uint32_t *shadow;
	uint64_t count;
	pthread_t th;
};
static atomic_int stop_writers;

static volatile uint64_t *counter(char *p, size_t page, int id)
{
	return (volatile uint64_t *)(p + page * PG + 64 + 8 * (size_t)id);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t s = 0x1234567ull + (uint64_t)w->id * 7919;
	while (!atomic_load_explicit(&stop_writers, memory_order_relaxed)) {
		size_t k = rnd(&s) % w->np;
		volatile uint64_t *c = counter(w->p, k, w->id);
		*c = *c + 1;
		w->shadow[k]++;
		w->count++;
	}
	return NULL;
}

static void check_writers(struct writer *w, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t sum = 0;
		for (size_t k = 0; k < w[i].np; k++) {
			uint64_t v = *counter(w[i].p, k, w[i].id);
			CHECK(v == w[i].shadow[k],
			      "writer %d page %zu: counter %" PRIu64 ", %u increments (lost writes)",
			      i, k, v, w[i].shadow[k]);
			sum += v;
		}
		CHECK(sum == w[i].count, "writer %d: counters sum to %" PRIu64 ", %" PRIu64 " writes",
		      i, sum, w[i].count);
	}
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

	struct writer w[NWRITERS];
	atomic_store(&stop_writers, 0);
	for (int i = 0; i < NWRITERS; i++) {
		w[i] = (struct writer){ .id = i, .p = p, .np = np,
					.shadow = calloc(np, sizeof(uint32_t)) };
		CHECK(w[i].shadow != NULL, "out of memory");
		pthread_create(&w[i].th, NULL, writer_main, &w[i]);
	}
	usleep(20000);
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
		usleep(1000);
	}
	int64_t res = leap_job_wait(j, -1);
	double dt = now() - t0;
	pr = prog(j);
	usleep(10000); /* a few writes after the job too */
	atomic_store(&stop_writers, 1);
	uint64_t writes = 0;
	for (int i = 0; i < NWRITERS; i++) {
		pthread_join(w[i].th, NULL);
		writes += w[i].count;
	}
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
	check_writers(w, NWRITERS);
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
	check_writers(w, NWRITERS);
	expect_all_on(r, node, "synchronous compaction");

	/* cancel right after the start: small fixed steps so there is a middle. Half the
	 * region fragmented (np / 4 minority pages), to keep the emulated guests' run short */
	const size_t half = np / 2, minority = half / 2;
	fragment(r, p, half, node);
	struct leap_job_options small = { .size = sizeof(small), .granularity_min = 16 * PG,
					  .granularity_max = 16 * PG };
	OK(leap_pool_compact(pool, 0, &small, &j));
	OK(leap_job_cancel(j));
	res = leap_job_wait(j, -1);
	pr = prog(j);
	if (res == -ECANCELED)
		CHECK(pr.state == LEAP_JOB_CANCELLED && pr.pages_moved <= minority,
		      "cancelled: state %d, %" PRIu64 " moved", pr.state, pr.pages_moved);
	else
		CHECK(res == (int64_t)(minority) && pr.state == LEAP_JOB_DONE,
		      "cancel: result %" PRId64 " state %d", res, pr.state); /* finished first */
	uint64_t cancelled_moved = pr.pages_moved;
	/* cancelled before it started: at most the one extent in hand moved. Checked last. */
	int cancel_ok = res != -ECANCELED || cancelled_moved <= 16;
	uint64_t first_cancel = cancelled_moved;
	leap_job_destroy(&j);
	rs = rstats(r);
	CHECK(rs.runs >= 1 && rs.runs <= np, "after cancel: %" PRIu64 " runs", rs.runs);
	CHECK(count_maps(p, p + len) == (int)rs.runs, "after cancel: %d mappings, %" PRIu64 " runs",
	      count_maps(p, p + len), rs.runs);
	check_pages(p, np, 7, "after cancel");
	check_writers(w, NWRITERS);
	expect_all_on(r, node, "after cancel");
	/* cancel in the middle: once some pages have moved */
	OK(leap_pool_compact(pool, 0, &small, &j));
	while (prog(j).pages_moved == 0 && prog(j).state < LEAP_JOB_DONE)
		usleep(100);
	struct leap_progress at_cancel = prog(j);
	OK(leap_job_cancel(j));
	res = leap_job_wait(j, -1);
	pr = prog(j);
	/* "stop after the extent in hand": one extent of 16 pages, two for the snapshot's lag */
	uint64_t after_cancel = pr.pages_moved - at_cancel.pages_moved;
	if (after_cancel > 32)
		cancel_ok = 0;
	if (res == -ECANCELED)
		CHECK(pr.state == LEAP_JOB_CANCELLED && pr.pages_moved + cancelled_moved <= minority,
		      "cancelled: state %d, %" PRIu64 " moved", pr.state, pr.pages_moved);
	else
		CHECK(res == (int64_t)(minority - cancelled_moved) && pr.state == LEAP_JOB_DONE,
		      "cancel: result %" PRId64 " state %d", res, pr.state);
	uint64_t mid_moved = pr.pages_moved;
	cancelled_moved += mid_moved;
	leap_job_destroy(&j);
	rs = rstats(r);
	CHECK(count_maps(p, p + len) == (int)rs.runs, "after cancel: %d mappings, %" PRIu64 " runs",
	      count_maps(p, p + len), rs.runs);
	check_pages(p, np, 7, "after the second cancel");
	check_writers(w, NWRITERS);
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
	if (!cancel_ok)
		fprintf(stderr, "t_compact: FAIL: a cancelled compaction went on past the extent in "
				"hand (16 pages): %" PRIu64 " pages moved when cancelled right after "
				"the start, %" PRIu64 " after a cancel in the middle\n",
			first_cancel, after_cancel);

	/*
	 * Destroying a region with a compaction in flight: the destroy returns, the job ends,
	 * the other region is compacted. Two fragmented regions; once the job has moved some
	 * pages, one region is destroyed. The destroy waits for that region's own extent in
	 * flight at most (coord.c: "never delays a destroy by more than one extent"), not for
	 * the rest of the job: right after it returns, a job that had most of its work ahead
	 * must still be running.
	 */
	struct leap_region *r2;
	OK(leap_region_new(ctx, len, node, &r2));
	char *p2 = leap_region_addr(r2);
	fill_pages(p2, np, 8);
	fragment(r, p, np / 8, node);
	fragment(r2, p2, half, node);
	OK(leap_pool_compact(pool, 0, &small, &j));
	while (prog(j).pages_moved == 0 && prog(j).state < LEAP_JOB_DONE)
		usleep(100);
	pr = prog(j);
	t0 = now();
	leap_region_destroy(&r);
	double t_destroy = now() - t0;
	struct leap_progress after_destroy = prog(j);
	res = leap_job_wait(j, -1);
	double t_job = now() - t0;
	CHECK(r == NULL, "destroy did not clear the handle");
	CHECK(res >= 0 || res == -ECANCELED, "compaction of a destroyed region: %" PRId64, res);
	CHECK(prog(j).state >= LEAP_JOB_DONE, "job not finished");
	/* pages the job moved while the destroy ran: a destroy that waits for one extent sees
	 * a few; one that waits for the whole job sees the rest of the surviving region */
	uint64_t during = after_destroy.pages_moved - pr.pages_moved;
	int destroy_ok = pr.pages_moved >= minority / 2 || during * 2 < minority - pr.pages_moved;
	leap_job_destroy(&j);
	if (res >= 0) /* not cancelled: the surviving region is whole */
		CHECK(rstats(r2).runs == 1 && count_maps(p2, p2 + len) == 1,
		      "surviving region: %" PRIu64 " runs", rstats(r2).runs);
	else
		OK(leap_pool_compact(pool, 0, NULL, NULL));
	check_pages(p2, np, 8, "the surviving region");
	expect_all_on(r2, node, "the surviving region");
	CHECK(pstats(pool).used_bytes == len, "pool used %" PRIu64 " bytes with one region left",
	      pstats(pool).used_bytes);
	say("measured destroy during a compaction (%" PRIu64 " of %" PRIu64
	    " pages moved): the destroy took %.3f s, the job ended %.3f s after the destroy "
	    "began; %" PRIu64 " pages moved while the destroy ran",
	    pr.pages_moved, pr.pages_total, t_destroy, t_job, during);
	leap_region_destroy(&r2);
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

	for (int i = 0; i < NWRITERS; i++)
		free(w[i].shadow);
	leap_ctx_destroy(&ctx);
	if (!destroy_ok)
		fprintf(stderr, "t_compact: FAIL: leap_region_destroy() waited for the whole "
				"compaction of the other region (%.3f s, %" PRIu64 " of its pages moved "
				"meanwhile), not for one extent\n",
			t_destroy, during);
	CHECK(free_ok,
	      "compacted pool: largest free extent of the file %" PRIu64 " bytes (before %" PRIu64
	      "), %" PRIu64 " free page extents left, want >= %zu and 0: the bank the region "
	      "left was not given back whole",
	      ps1.largest_free_space_bytes, ps0.largest_free_space_bytes, ps1.free_extents, len);
	CHECK(destroy_ok, "see above");
	CHECK(cancel_ok, "see above");
	return 0;
}
