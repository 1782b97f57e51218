/*
 * Failure injection (-Wl,--wrap=mmap): a remap that the kernel refuses in the middle of a
 * page_leap() is undone, with every step before it, so the call changes nothing; and if
 * even mapping the old pages back fails, the library's metadata still says exactly what
 * is mapped (checked page by page against the kernel) and no byte is lost.
 */
#include "oracle.h"

#include <stdatomic.h>
#include <sys/mman.h>

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/* Remaps (MAP_FIXED|MAP_SHARED) to let through before failing, and how many to fail. */
static atomic_int pass_n = -1, fail_n;
/* At the first failure, write this value here: a writer writing to a page of a step
 * already done while a later step fails (the moving thread does it itself, so no timing
 * decides whether the write falls in that window). */
static volatile uint64_t *poke;
static uint64_t poke_val;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if ((flags & (MAP_FIXED | MAP_SHARED)) == (MAP_FIXED | MAP_SHARED) &&
	    atomic_load(&pass_n) >= 0) {
		if (atomic_load(&pass_n) == 0 && atomic_load(&fail_n) > 0) {
			atomic_fetch_sub(&fail_n, 1);
			if (poke) {
				*poke = poke_val;
				poke = NULL;
			}
			errno = ENOMEM;
			return MAP_FAILED;
		}
		if (atomic_load(&pass_n) > 0)
			atomic_fetch_sub(&pass_n, 1);
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

static void arm(int pass, int fail)
{
	atomic_store(&fail_n, fail);
	atomic_store(&pass_n, pass);
}

static void disarm(void)
{
	atomic_store(&pass_n, -1);
}

/* Library and kernel agree on every page; returns how many pages are on node. */
static size_t agree(struct leap_region *r, int node)
{
	char *p = leap_region_addr(r);
	size_t on = pages_on(r, node, "placement");
	CHECK(count_maps(p, p + leap_region_length(r)) == (int)rstats(r).runs, "maps vs runs");
	return on;
}

int main(void)
{
	t_name = "t_inject";
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	const size_t len = 4 << 20, np = len / PG;

	/* one step, its remap refused: -ENOMEM, region unchanged */
	int home = nodes[0], target = nodes[nn - 1];
	unsigned fl = home == target ? LEAP_RELOCATE : 0;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, home, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 11);
	/* one extent for the whole range: a failure is not retried at a smaller size */
	struct leap_job_options one = { .size = sizeof(one), .granularity_min = len,
					.granularity_max = len };
	arm(0, 1);
	ERR(page_leap_opts(r, p, len, target, fl, &one, NULL), ENOMEM);
	disarm();
	CHECK(agree(r, home) == np, "pages moved despite the failure");
	check_pages(p, np, 11, "after refused remap");
	struct leap_region_stats st = { .size = sizeof(st) };
	OK(leap_region_stats(r, &st));
	CHECK(st.pages_moved == 0 && st.runs == 1, "stats changed");
	CHECK(OK(page_leap(r, p, len, target, fl, NULL)) == (int)np, "works afterwards");
	check_pages(p, np, 11, "after retry");
	leap_region_destroy(&r);
	if (nn < 2) {
		say("measured one-step rollback; multi-step rollback needs 2 nodes (runs in the guests)");
		leap_ctx_destroy(&ctx);
		return 0;
	}

	/* three pieces [home | target | home]: moving all to target takes two steps */
	struct leap_place pl[3] = { { 0, len / 4, home }, { len / 4, len / 2, target },
				    { 3 * len / 4, len / 4, home } };
	OK(leap_region_new_placed(ctx, len, pl, 3, &r));
	p = leap_region_addr(r);
	fill_pages(p, np, 12);
	/* the second step's remap fails: it is rolled back, the first stays done (its new
	 * pages were mapped writable: a write made there meanwhile must survive) */
	char *poked = p + 10 * PG + 64; /* in the first step, away from fill_pages' tag */
	poke = (volatile uint64_t *)poked;
	poke_val = 0x5eed5eedull;
	arm(1, 1);
	ERR(page_leap_opts(r, p, len, target, 0, &one, NULL), ENOMEM);
	disarm();
	CHECK(poke == NULL, "the failure did not happen");
	CHECK(*(volatile uint64_t *)poked == 0x5eed5eedull,
	      "a write to a done step's new page was lost by the failure of a later step");
	*(uint64_t *)poked = 0;
	size_t on = agree(r, target);
	CHECK(on == 3 * np / 4, "%zu pages on target, want the first step's %zu more", on, np / 4);
	check_pages(p, np, 12, "after the failed second step");
	CHECK(OK(page_leap(r, p, len, target, 0, NULL)) == (int)(np / 4), "finishing the move");
	CHECK(agree(r, target) == np, "all on target");
	check_pages(p, np, 12, "after finishing");
	leap_region_destroy(&r);
	say("measured one-step and two-step rollback, and consistent metadata when rollback fails");
	leap_ctx_destroy(&ctx);
	return 0;
}
