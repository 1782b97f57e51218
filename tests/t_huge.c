/*
 * Huge-page regions, hugetlb and THP: they are really huge (smaps), they move whole huge
 * pages with page_leap()'s guarantees (writers lose nothing, cancel leaves everything
 * whole, contents kept, new frames, right node per the kernel), the adaptive extent
 * works in whole huge pages, ranges that cut a huge page follow the documented rule
 * (hugetlb -EINVAL; THP whole or split by the cost rule or the flags), and the errors
 * for missing huge pages say so. Ends with 2 MiB vs 4 KiB throughput in one run.
 */
#include "hp.h"
#include "oracle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>

#define HUGE ((size_t)LEAP_HUGE_PAGE_SIZE)

static struct leap_region *new_region(struct leap_ctx *ctx, size_t len, int node, int pages)
{
	struct leap_place pl = { 0, len, node };
	struct leap_region_options o = { .size = sizeof(o), .pages = pages };
	struct leap_region *r;
	OK(leap_region_new_ex(ctx, len, &pl, 1, &o, &r));
	return r;
}

/* Writers: each increments one word per 64 KiB of the region, round after round, and
 * counts its rounds; afterwards every word must equal its writer's rounds. */
struct writer {
	volatile uint64_t *base;
	size_t nwords, stride, offset;
	atomic_bool *stop;
	uint64_t rounds;
	pthread_t t;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(w->stop)) {
		for (size_t i = 0; i < w->nwords; i++)
			w->base[i * w->stride + w->offset]++;
		w->rounds++;
	}
	return NULL;
}

static void writers_start(struct writer *w, int n, void *base, size_t len, atomic_bool *stop)
{
	for (int i = 0; i < n; i++) {
		w[i] = (struct writer){ .base = base, .nwords = len / 65536, .stride = 65536 / 8,
					.offset = (size_t)i * 8 + 1, .stop = stop };
		for (size_t k = 0; k < w[i].nwords; k++)
			w[i].base[k * w[i].stride + w[i].offset] = 0;
		if (pthread_create(&w[i].t, NULL, writer_main, &w[i]) != 0)
			FAIL("pthread_create");
	}
}

static void writers_check(struct writer *w, int n, atomic_bool *stop, const char *what)
{
	atomic_store(stop, true);
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		for (size_t k = 0; k < w[i].nwords; k++) {
			uint64_t v = w[i].base[k * w[i].stride + w[i].offset];
			if (v != w[i].rounds)
				FAIL("%s: writer %d word %zu holds %" PRIu64 ", %" PRIu64
				     " rounds written: lost writes",
				     what, i, k, v, w[i].rounds);
		}
	}
	atomic_store(stop, false);
}

/* Relocate or move the whole region with writers running; check everything after. */
static void move_with_writers(struct leap_region *r, int node, unsigned flags, const char *what)
{
	char *p = leap_region_addr(r);
	size_t len = leap_region_length(r);
	atomic_bool stop = false;
	struct writer w[2];
	writers_start(w, 2, p, len, &stop);
	struct leap_job *j;
	OK(page_leap(r, p, len, node, flags, &j));
	int64_t res = leap_job_wait(j, -1);
	struct leap_progress pr = { .size = sizeof(pr) };
	OK(leap_job_progress(j, &pr));
	leap_job_destroy(&j);
	writers_check(w, 2, &stop, what);
	CHECK(res == (int64_t)(len / PG), "%s: moved %lld of %zu pages", what, (long long)res,
	      len / PG);
	CHECK(pr.granularity_min_seen >= HUGE && pr.granularity_min_seen % HUGE == 0,
	      "%s: an extent of %" PRIu64 " bytes: not whole huge pages", what,
	      pr.granularity_min_seen);
	expect_kernel_node(p, len / PG, node, what);
}

/* leap_region_stats' mappings is what the kernel shows: lines of /proc/self/maps. */
static void maps_agree(struct leap_region *r, const char *what)
{
	char *p = leap_region_addr(r);
	int maps = count_maps(p, p + leap_region_length(r));
	struct leap_region_stats st = rstats(r);
	CHECK(st.mappings == (uint64_t)maps, "%s: stats say %" PRIu64 " mappings (%" PRIu64
	      " runs), the kernel %d", what, st.mappings, st.runs, maps);
}

static void test_hugetlb(struct leap_ctx *ctx, const int *nodes, int nn)
{
	const size_t len = 32u << 20, np = len / PG;
	struct leap_place pl = { 0, len, nodes[0] };
	struct leap_region_options o = { .size = sizeof(o), .pages = LEAP_PAGES_HUGETLB };
	struct leap_region *r;
	if (hp_can_change()) { /* none reserved: a clear -ENOSPC */
		CHECK(hp_reserve(nodes[0], 0) == 0, "cannot release hugetlb pages of node %d",
		      nodes[0]);
		ERR(leap_region_new_ex(ctx, len, &pl, 1, &o, &r), ENOSPC);
		CHECK(strstr(leap_strerror(-ENOSPC), "nr_hugepages"),
		      "the error must say how to reserve");
	} else {
		say("note: -ENOSPC with no huge pages reserved: root's case (it changes the "
		    "reservation)");
	}
	/* enough for the region twice over on every node (relocation needs both) */
	long want = (long)(2 * len / HUGE) + 8;
	for (int i = 0; i < nn; i++)
		CHECK(hp_reserve(nodes[i], want) == want, "could not reserve %ld huge pages on node %d",
		      want, nodes[i]);
	/* lengths and ranges in whole huge pages */
	pl.length = len + PG;
	ERR(leap_region_new_ex(ctx, len + PG, &pl, 1, &o, &r), EINVAL);
	r = new_region(ctx, len, nodes[0], LEAP_PAGES_HUGETLB);
	char *p = leap_region_addr(r);
	CHECK(smaps_kb(p, p + len, "KernelPageSize") / 2048 >= 1 &&
		      smaps_kb(p, p + len, "KernelPageSize") % 2048 == 0,
	      "region mappings are not 2 MiB pages (KernelPageSize sum %" PRIu64 " kB)",
	      smaps_kb(p, p + len, "KernelPageSize"));
	ERR(page_leap(r, p + PG, HUGE, nodes[0], LEAP_RELOCATE, NULL), EINVAL);
	ERR(page_leap(r, p, HUGE + PG, nodes[0], LEAP_RELOCATE, NULL), EINVAL);
	struct leap_pool *hp;
	OK(leap_pool_get_kind(ctx, nodes[0], LEAP_PAGES_HUGETLB, &hp));
	struct leap_pool_stats ps = { .size = sizeof(ps) };
	OK(leap_pool_stats(hp, &ps));
	CHECK(ps.pages == LEAP_PAGES_HUGETLB && ps.page_bytes == HUGE && ps.used_bytes == len,
	      "hugetlb pool: kind %d page %" PRIu64 " used %" PRIu64, ps.pages, ps.page_bytes,
	      ps.used_bytes);

	/* relocation: contents, new frames, still huge */
	fill_pages(p, np, 7);
	uint64_t f0 = pfn_of(p), f1 = pfn_of(p + len - PG);
	OK(page_leap(r, p, len, nodes[0], LEAP_RELOCATE, NULL));
	check_pages(p, np, 7, "hugetlb relocation");
	CHECK(!f0 || (pfn_of(p) != f0 && pfn_of(p + len - PG) != f1), "frames did not change");
	CHECK(pfn_of(p) % 512 == 0 || !f0, "first page not at a 2 MiB frame boundary");
	expect_kernel_node(p, np, nodes[0], "hugetlb relocation");
	CHECK(rstats(r).runs == 1, "runs %" PRIu64, rstats(r).runs);
	/* one run, but one mapping per extent that mapped it: the stats say which */
	maps_agree(r, "hugetlb relocation");
	say("hugetlb: %zu MiB moved whole: %" PRIu64 " run, %" PRIu64 " mappings", len >> 20,
	    rstats(r).runs, rstats(r).mappings);

	/* hugetlb mappings never merge (VM_DONTEXPAND): one per extent that mapped them. A
	 * run then spans several mappings; before Linux 6.5 write protection works within one
	 * mapping per call. Moves in 2 MiB steps, then 4 MiB steps across those mappings. */
	struct leap_job_options f2 = { .size = sizeof(f2), .granularity_min = HUGE,
				       .granularity_max = HUGE };
	struct leap_job_options f4 = { .size = sizeof(f4), .granularity_min = 2 * HUGE,
				       .granularity_max = 2 * HUGE };
	CHECK(OK(page_leap_opts(r, p, len, nodes[0], LEAP_RELOCATE, &f2, NULL)) == (int)np, "2 MiB");
	CHECK(count_maps(p, p + len) == (int)(len / HUGE), "%d mappings after 2 MiB steps",
	      count_maps(p, p + len));
	maps_agree(r, "hugetlb after 2 MiB steps");
	CHECK(OK(page_leap_opts(r, p, len, nodes[0], LEAP_RELOCATE, &f4, NULL)) == (int)np,
	      "4 MiB steps over 2 MiB mappings");
	check_pages(p, np, 7, "hugetlb steps across mappings");
	CHECK(count_maps(p, p + len) <= (int)(len / HUGE), "%d mappings: more than one per huge page",
	      count_maps(p, p + len));
	maps_agree(r, "hugetlb after 4 MiB steps");

	/* writers, every node and back */
	move_with_writers(r, nodes[0], LEAP_RELOCATE, "hugetlb relocation with writers");
	for (int i = 1; i < nn; i++)
		move_with_writers(r, nodes[i], 0, "hugetlb move with writers");
	if (nn > 1)
		move_with_writers(r, nodes[0], 0, "hugetlb move back with writers");

	/* cancel at once: every page whole, on one node, per the library and the kernel */
	fill_pages(p, np, 8);
	struct leap_job_options jo = { .size = sizeof(jo), .granularity_max = HUGE };
	struct leap_job *j;
	int tgt = nodes[nn - 1];
	OK(page_leap_opts(r, p, len, tgt, tgt == nodes[0] ? LEAP_RELOCATE : 0, &jo, &j));
	OK(leap_job_cancel(j));
	int64_t res = leap_job_wait(j, -1);
	leap_job_destroy(&j);
	CHECK(res == -ECANCELED || res == (int64_t)np, "cancel: %lld", (long long)res);
	check_pages(p, np, 8, "hugetlb after cancel");
	int *kn = malloc(np * sizeof(int));
	kernel_nodes(p, np, kn);
	for (size_t i = 0; i < np; i++)
		CHECK(kn[i] == leap_node_of(r, p + i * PG), "page %zu: kernel %d, library %d", i,
		      kn[i], leap_node_of(r, p + i * PG));
	free(kn);
	maps_agree(r, "hugetlb after moves and a cancel");
	/* a piece in the middle: the mappings around it split (free huge pages are kept in
	 * the pool: give them back first, the reservation is for two copies only) */
	OK(leap_pool_trim(hp));
	OK(page_leap(r, p + 5 * HUGE, 3 * HUGE, leap_node_of(r, p), LEAP_RELOCATE, NULL));
	maps_agree(r, "hugetlb after a piece in the middle");
	leap_region_destroy(&r);
	OK(leap_pool_stats(hp, &ps));
	CHECK(ps.used_bytes == 0, "hugetlb pool still uses %" PRIu64, ps.used_bytes);
	say("hugetlb: relocation, %d node(s), writers exact, cancel whole", nn);
}

static unsigned thp_nw; /* LEAP_NO_WRITERS where the kernel cannot protect THP */

/* THP moves: with writers, or without where the kernel needs LEAP_NO_WRITERS */
static void thp_move(struct leap_region *r, int node, unsigned flags, const char *what)
{
	if (!thp_nw) {
		move_with_writers(r, node, flags, what);
		return;
	}
	char *p = leap_region_addr(r);
	size_t len = leap_region_length(r);
	CHECK(OK(page_leap(r, p, len, node, flags | thp_nw, NULL)) == (int)(len / PG), "%s", what);
	expect_kernel_node(p, len / PG, node, what);
}

static void test_thp(struct leap_ctx *ctx, const int *nodes, int nn)
{
	const size_t len = 32u << 20, np = len / PG;
	struct leap_region *r;
	struct leap_place pl = { 0, len, nodes[0] };
	struct leap_region_options o = { .size = sizeof(o), .pages = LEAP_PAGES_THP };
	if (hp_can_change()) {
		CHECK(hp_write(HP_THP_PATH, "never") == 0, "cannot set shmem_enabled");
		ERR(leap_region_new_ex(ctx, len, &pl, 1, &o, &r), EOPNOTSUPP);
		CHECK(strstr(leap_strerror(-EOPNOTSUPP), "shmem_enabled") &&
			      strstr(leap_errormsg(), "shmem_enabled"),
		      "the error must say what to set");
	} else {
		say("note: -EOPNOTSUPP with shmem THP disabled: root's case (it changes "
		    "shmem_enabled)");
	}
	CHECK(hp_write(HP_THP_PATH, "advise") == 0, "cannot set shmem_enabled");
	r = new_region(ctx, len, nodes[0], LEAP_PAGES_THP);
	char *p = leap_region_addr(r);
	/* kernels before UFFD_FEATURE_WP_UNPOPULATED (6.4-6.6) lose writes to a THP while it
	 * is protected (seen on 6.1): THP moves there need LEAP_NO_WRITERS, and say so */
	int probe = page_leap(r, p, HUGE, nodes[0], LEAP_RELOCATE, NULL);
	if (probe == -EOPNOTSUPP) {
		struct utsname u;
		int maj = 0, min = 0;
		CHECK(uname(&u) == 0 && sscanf(u.release, "%d.%d", &maj, &min) == 2 &&
			      (maj < 6 || (maj == 6 && min < 7)),
		      "THP moves refused with writers on Linux %s", u.release);
		thp_nw = LEAP_NO_WRITERS;
		say("THP: Linux %s lacks UFFD_FEATURE_WP_UNPOPULATED: THP moves need "
		    "LEAP_NO_WRITERS there (-EOPNOTSUPP checked); no writer runs", u.release);
	} else {
		CHECK(probe == 512, "probe move: %d", probe);
	}
	uint64_t pmd = smaps_kb(p, p + len, "ShmemPmdMapped");
	CHECK(pmd == len / 1024, "THP region: %" PRIu64 " of %zu kB mapped huge", pmd, len / 1024);
	fill_pages(p, np, 9);
	OK(page_leap(r, p, len, nodes[0], LEAP_RELOCATE | thp_nw, NULL));
	check_pages(p, np, 9, "THP relocation");
	pmd = smaps_kb(p, p + len, "ShmemPmdMapped");
	CHECK(pmd == len / 1024, "after relocation: %" PRIu64 " of %zu kB mapped huge", pmd,
	      len / 1024);
	thp_move(r, nodes[0], LEAP_RELOCATE, "THP relocation with writers");
	for (int i = 1; i < nn; i++)
		thp_move(r, nodes[i], 0, "THP move with writers");
	if (nn > 1)
		thp_move(r, nodes[0], 0, "THP move back with writers");
	pmd = smaps_kb(p, p + len, "ShmemPmdMapped");
	CHECK(pmd == len / 1024, "after moves: %" PRIu64 " of %zu kB mapped huge", pmd, len / 1024);
	maps_agree(r, "THP after moves");

	/* ranges that cut huge pages */
	fill_pages(p, np, 10);
	ERR(page_leap(r, p, PG, nodes[0], LEAP_RELOCATE | LEAP_HUGE_WHOLE | LEAP_HUGE_SPLIT, NULL),
	    EINVAL);
	struct leap_region_stats s0 = rstats(r);
	/* 1 page of huge page 3: below the rule's 64 pages, split */
	CHECK(OK(page_leap(r, p + 3 * HUGE + PG, PG, nodes[0], LEAP_RELOCATE | thp_nw, NULL)) == 1,
	      "split move of 1 page");
	struct leap_region_stats s1 = rstats(r);
	CHECK(s1.huge_splits == s0.huge_splits + 1, "splits %" PRIu64, s1.huge_splits);
	pmd = smaps_kb(p, p + len, "ShmemPmdMapped");
	CHECK(pmd == (len - HUGE) / 1024, "after a split: %" PRIu64 " kB mapped huge", pmd);
	/* 100 pages of huge page 5: whole (rule) */
	int st[100];
	struct leap_job_options so = { .size = sizeof(so), .status = st };
	CHECK(OK(page_leap_opts(r, p + 5 * HUGE + 8 * PG, 100 * PG, nodes[0], LEAP_RELOCATE | thp_nw, &so,
				NULL)) == 512,
	      "whole move of 100 pages");
	for (int i = 0; i < 100; i++)
		CHECK(st[i] == nodes[0], "status[%d] = %d", i, st[i]);
	struct leap_region_stats s2 = rstats(r);
	CHECK(s2.huge_whole == s1.huge_whole + 1, "whole %" PRIu64, s2.huge_whole);
	/* the flags override the rule both ways */
	CHECK(OK(page_leap(r, p + 7 * HUGE, PG, nodes[0], LEAP_RELOCATE | LEAP_HUGE_WHOLE | thp_nw, NULL)) ==
		      512,
	      "forced whole");
	CHECK(OK(page_leap(r, p + 9 * HUGE + 10 * PG, 300 * PG, nodes[0],
			   LEAP_RELOCATE | LEAP_HUGE_SPLIT | thp_nw, NULL)) == 300,
	      "forced split");
	/* a range over three huge pages cut at both ends: head split (2 pages), tail whole */
	CHECK(OK(page_leap(r, p + 12 * HUGE - 2 * PG, HUGE + 2 * PG + 200 * PG, nodes[0],
			   LEAP_RELOCATE | thp_nw, NULL)) == 2 + 512 + 512,
	      "head split + tail whole");
	check_pages(p, np, 10, "THP partial moves");
	pmd = smaps_kb(p, p + len, "ShmemPmdMapped");
	CHECK(pmd == (len - 3 * HUGE) / 1024, "after partial moves: %" PRIu64 " kB mapped huge "
	      "(want all but the 3 split huge pages)", pmd);
	if (nn > 1) { /* a split across nodes: the kernel sees each part where it went */
		OK(page_leap(r, p + HUGE, 10 * PG, nodes[1], LEAP_HUGE_SPLIT | thp_nw, NULL));
		expect_kernel_node(p + HUGE, 10, nodes[1], "split part");
		expect_kernel_node(p + HUGE + 10 * PG, 502, nodes[0], "rest of the split huge page");
		OK(page_leap(r, p + HUGE, 10 * PG, nodes[0], LEAP_HUGE_SPLIT | thp_nw, NULL));
	}
	check_pages(p, np, 10, "THP partial moves");
	maps_agree(r, "THP after partial moves");
	leap_region_destroy(&r);
	say("THP: huge in smaps before and after moves, writers exact, split/whole rule");
}

/* 2 MiB vs 4 KiB pages, one run: relocation throughput of the same size, best of 3. */
static void throughput(struct leap_ctx *ctx, int node)
{
	size_t len = (size_t)env_long("LEAP_HUGE_MB", 64) << 20;
	long want = (long)(2 * len / HUGE) + 8;
	CHECK(hp_reserve(node, want) == want, "could not reserve %ld huge pages", want);
	static const char *const name[3] = { "4 KiB", "THP 2 MiB", "hugetlb 2 MiB" };
	double gbs[3];
	for (int k = 0; k < 3; k++) {
		struct leap_region *r = new_region(ctx, len, node, k);
		char *p = leap_region_addr(r);
		memset(p, 1, len);
		double best = 1e9;
		for (int rep = 0; rep < 4; rep++) { /* the first fills the pools: a warm-up */
			double t0 = now();
			OK(page_leap(r, p, len, node, LEAP_RELOCATE | (k == 1 ? thp_nw : 0), NULL));
			double t = now() - t0;
			if (rep && t < best)
				best = t;
		}
		gbs[k] = (double)len / best / 1e9;
		leap_region_destroy(&r);
	}
	say("measured relocation of %zu MiB, best of 3 after a warm-up: %s %.2f GB/s, %s %.2f "
	    "GB/s (%.2fx), %s %.2f GB/s (%.2fx)%s",
	    len >> 20, name[0], gbs[0], name[1], gbs[1], gbs[1] / gbs[0], name[2], gbs[2],
	    gbs[2] / gbs[0], " (in an emulated guest: relative only, not hardware timings)");
}

int main(void)
{
	t_name = "t_huge";
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	const struct leap_topo *topo = leap_ctx_topo(ctx);
	int nodes[64], nn = mem_nodes(topo, nodes, 64);
	hp_setup(leap_topo_node_count(topo));
	test_hugetlb(ctx, nodes, nn);
	test_thp(ctx, nodes, nn);
	throughput(ctx, nodes[0]);
	leap_ctx_destroy(&ctx);
	return 0;
}
