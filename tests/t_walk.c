/*
 * t_walk - the walker framework (src/coord/walk.c) and the region lifetime owner
 * (src/core/lifetime.c), made deterministic with the library's test seams (oracle.h's
 * gate on the extent hook, and the claim-wait hook of hook.h): a
 * user's job is held at its first extent by a gate, so a walker's move over the same
 * range must wait for it; the claim-wait seam tells the test the move is waiting.
 *
 * Cases (util.h RUN_CASES: each in its own process, each reported):
 *   waits_for_busy_range  the walker's move waits for the user's job, then finishes:
 *                         nothing failed, the region is one run again, bytes intact.
 *   cancel_while_waiting  a cancel of the walker ends it while its move waits (the
 *                         cancel kicks the wait); the user's job is not disturbed.
 *   destroy_while_waiting a destroy of the region ends the waiting move at once (the
 *                         walk finishes while the destroy still waits for the held
 *                         user's job); the user's job ends cancelled.
 *   destroy_skips_region  a walk holding two regions, held on the first: the second is
 *                         destroyed meanwhile; the walk skips it and finishes.
 * Compaction is the walker used: it runs on one node (banks of one pool).
 * A wait here never decides a result by time: the only timeout (60 s) catches a hang.
 */
#include "oracle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define NPG 64
/* Nothing writes the regions here: the moves need no write protection, so the cases run
 * where userfaultfd is not available too (an ordinary user on Debian's defaults). */
#define NO_WP LEAP_NO_WRITERS
#define HANG_NS (60LL * 1000000000LL)

/* ------------------------------------------------------------ the claim-wait seam */
static pthread_mutex_t cw_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cw_cond = PTHREAD_COND_INITIALIZER;
static struct leap_region *cw_region; /* tell when a claim on this region waits */
static bool cw_waiting;

static void claim_wait_hook(struct leap_region *r)
{
	pthread_mutex_lock(&cw_lock);
	if (r == cw_region) {
		cw_waiting = true;
		pthread_cond_broadcast(&cw_cond);
	}
	pthread_mutex_unlock(&cw_lock);
}

/* Hold r's first extent at the gate and watch for claims on r that wait. */
static void arm(struct leap_region *r)
{
	pthread_mutex_lock(&cw_lock);
	cw_region = r;
	cw_waiting = false;
	pthread_mutex_unlock(&cw_lock);
	leap__test_claim_wait_hook = claim_wait_hook;
	gate_arm(0, r);
}

/* Wait until a walker's move on the armed region waits for its claim. */
static void claim_waits(void)
{
	pthread_mutex_lock(&cw_lock);
	while (!cw_waiting)
		pthread_cond_wait(&cw_cond, &cw_lock);
	pthread_mutex_unlock(&cw_lock);
}

/* ------------------------------------------------------------ fixtures */
static struct leap_ctx *ctx;
static struct leap_pool *pool;
static int node0;

/* Each case's own instance (a case runs in a process of its own). */
static void setup(void)
{
	OK(leap_ctx_new(NULL, &ctx));
	CHECK(mem_nodes(leap_ctx_topo(ctx), &node0, 1) >= 1, "no node with memory");
	OK(leap_pool_get(ctx, node0, &pool));
}

/* A region of NPG pages on node0, filled with tag, with pages [16, 32) relocated to a
 * second bank: two runs' worth of minority for compaction to gather. */
static struct leap_region *fragmented(uint64_t tag)
{
	struct leap_region *r;
	OK(leap_region_new(ctx, NPG * PG, node0, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, NPG, tag);
	OK(page_leap(r, p + 16 * PG, 16 * PG, node0, LEAP_RELOCATE | NO_WP, NULL));
	return r;
}

static uint64_t runs_of(struct leap_region *r)
{
	struct leap_region_stats s = { .size = sizeof(s) };
	OK(leap_region_stats(r, &s));
	return s.runs;
}


/* A user's job on pages [40, 48) of r held at its first extent (*uj), and a compaction
 * (*cj) whose move over r waits for that range. */
static void held_and_waiting(struct leap_region *r, struct leap_job **uj, struct leap_job **cj)
{
	arm(r);
	char *p = leap_region_addr(r);
	OK(page_leap(r, p + 40 * PG, 8 * PG, node0, LEAP_RELOCATE | NO_WP, uj));
	gate_wait();
	OK(leap_pool_compact(pool, NO_WP, NULL, cj));
	claim_waits();
}

/* ------------------------------------------------------------ cases */
CASE(waits_for_busy_range)
{
	setup();
	struct leap_region *r = fragmented(1);
	char *p = leap_region_addr(r);
	CHECK(runs_of(r) == 3, "fragmented: %llu runs", (unsigned long long)runs_of(r));
	struct leap_job *uj, *cj;
	held_and_waiting(r, &uj, &cj); /* the walker's move waits for the held range */
	struct leap_progress cp = prog(cj);
	CHECK(cp.state == LEAP_JOB_RUNNING && cp.pages_moved == 0,
	       "compaction went on over a busy range: state %d, %llu moved", cp.state,
	       (unsigned long long)cp.pages_moved);
	gate_release();
	int64_t ur = leap_job_wait(uj, HANG_NS), cr = leap_job_wait(cj, HANG_NS);
	CHECK(ur == 8, "user's job: %lld", (long long)ur);
	cp = prog(cj);
	CHECK(cr >= 16 && cp.pages_failed == 0, "compaction: %lld, %llu failed", (long long)cr,
	       (unsigned long long)cp.pages_failed);
	CHECK(runs_of(r) == 1, "after: %llu runs", (unsigned long long)runs_of(r));
	check_pages(p, NPG, 1, "after the walk");
	leap_job_destroy(&uj);
	leap_job_destroy(&cj);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

CASE(cancel_while_waiting)
{
	setup();
	struct leap_region *r = fragmented(2);
	char *p = leap_region_addr(r);
	struct leap_job *uj, *cj;
	held_and_waiting(r, &uj, &cj);
	OK(leap_job_cancel(cj));
	int64_t cr = leap_job_wait(cj, HANG_NS); /* the user's job is still held */
	CHECK(cr == -ECANCELED, "compaction: %lld, want -ECANCELED", (long long)cr);
	CHECK(prog(cj).pages_moved == 0, "moved %llu", (unsigned long long)prog(cj).pages_moved);
	CHECK(prog(uj).state == LEAP_JOB_RUNNING, "the user's job ended: %d", prog(uj).state);
	gate_release();
	CHECK(leap_job_wait(uj, HANG_NS) == 8, "user's job");
	check_pages(p, NPG, 2, "after the cancel");
	leap_job_destroy(&uj);
	leap_job_destroy(&cj);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

struct destroyer {
	struct leap_region *r;
	pthread_t t;
	atomic_bool done;
};

static void *destroy_main(void *arg)
{
	struct destroyer *d = arg;
	leap_region_destroy(&d->r);
	atomic_store(&d->done, true);
	return NULL;
}

CASE(destroy_while_waiting)
{
	setup();
	struct leap_region *r = fragmented(3);
	struct leap_job *uj, *cj;
	held_and_waiting(r, &uj, &cj);
	struct destroyer d = { .r = r };
	CHECK(pthread_create(&d.t, NULL, destroy_main, &d) == 0, "pthread_create");
	/* the destroy ends the waiting move at once: the walk finishes although the destroy
	 * itself still waits for the user's job, held at the gate */
	int64_t cr = leap_job_wait(cj, HANG_NS);
	CHECK(cr >= 0 && prog(cj).pages_failed == 0, "compaction: %lld, %llu failed",
	       (long long)cr, (unsigned long long)prog(cj).pages_failed);
	CHECK(!atomic_load(&d.done), "the destroy did not wait for the held job");
	gate_release();
	pthread_join(d.t, NULL);
	CHECK(leap_job_wait(uj, HANG_NS) == -ECANCELED, "user's job: %lld",
	       (long long)leap_job_wait(uj, 0));
	leap_job_destroy(&uj);
	leap_job_destroy(&cj);
	leap_ctx_destroy(&ctx);
}

CASE(destroy_skips_region)
{
	setup();
	/* the walk visits the instance's regions newest first: b, then a */
	struct leap_region *a = fragmented(4), *b = fragmented(5);
	struct leap_job *cj;
	arm(b); /* the walk's move on b, held at its first extent */
	OK(leap_pool_compact(pool, NO_WP, NULL, &cj));
	gate_wait();
	leap_region_destroy(&a); /* not reached yet: skipped, never waited for */
	gate_release();
	int64_t cr = leap_job_wait(cj, HANG_NS);
	struct leap_progress cp = prog(cj);
	CHECK(cr == 16 && cp.pages_moved == 16 && cp.pages_failed == 0,
	       "compaction: %lld, %llu moved, %llu failed (b's 16 pages only)", (long long)cr,
	       (unsigned long long)cp.pages_moved, (unsigned long long)cp.pages_failed);
	CHECK(runs_of(b) == 1, "b: %llu runs", (unsigned long long)runs_of(b));
	check_pages(leap_region_addr(b), NPG, 5, "b after the walk");
	leap_job_destroy(&cj);
	leap_region_destroy(&b);
	leap_ctx_destroy(&ctx);
}

int main(void)
{
	t_name = "t_walk";
	return RUN_CASES(waits_for_busy_range, cancel_while_waiting, destroy_while_waiting,
			 destroy_skips_region);
}
