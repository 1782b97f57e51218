/*
 * t_walk - the walker framework (src/coord/walk.c) and the region lifetime owner
 * (src/core/lifetime.c), made deterministic with the library's test seams (hook.h): a
 * user's job is held at its first extent by a gate, so a walker's move over the same
 * range must wait for it; the claim-wait seam tells the test the move is waiting.
 *
 * Cases (each reports PASS/FAIL, all run):
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
#include "hook.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define NPG 64
#define HANG_NS (60LL * 1000000000LL)

static int failed, passed;

#define EXPECT(cond, ...)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "  %s:%d: '%s': ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                  \
			fprintf(stderr, "\n");                                        \
			return 1;                                                      \
		}                                                                      \
	} while (0)

/* ------------------------------------------------------------ the gate */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static struct leap_region *g_region; /* hold jobs of this region ... */
static size_t g_offset;		     /* ... at the extent starting here */
static bool g_open, g_held, g_waiting;

static void extent_hook(struct leap_job *j, struct leap_region *r, size_t offset)
{
	(void)j;
	pthread_mutex_lock(&g_lock);
	if (r == g_region && offset == g_offset) {
		g_held = true;
		pthread_cond_broadcast(&g_cond);
		while (!g_open)
			pthread_cond_wait(&g_cond, &g_lock);
	}
	pthread_mutex_unlock(&g_lock);
}

static void claim_wait_hook(struct leap_region *r)
{
	pthread_mutex_lock(&g_lock);
	if (r == g_region) {
		g_waiting = true;
		pthread_cond_broadcast(&g_cond);
	}
	pthread_mutex_unlock(&g_lock);
}

static void gate_arm(struct leap_region *r, size_t offset)
{
	pthread_mutex_lock(&g_lock);
	g_region = r;
	g_offset = offset;
	g_open = g_held = g_waiting = false;
	pthread_mutex_unlock(&g_lock);
}

static void gate_wait(bool *flag)
{
	pthread_mutex_lock(&g_lock);
	while (!*flag)
		pthread_cond_wait(&g_cond, &g_lock);
	pthread_mutex_unlock(&g_lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&g_lock);
	g_open = true;
	g_region = NULL;
	pthread_cond_broadcast(&g_cond);
	pthread_mutex_unlock(&g_lock);
}

/* ------------------------------------------------------------ fixtures */
static struct leap_ctx *ctx;
static struct leap_pool *pool;
static int node0;

/* A region of NPG pages on node0, filled with tag, with pages [16, 32) relocated to a
 * second bank: two runs' worth of minority for compaction to gather. */
static struct leap_region *fragmented(uint64_t tag)
{
	struct leap_region *r;
	OK(leap_region_new(ctx, NPG * PG, node0, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, NPG, tag);
	OK(page_leap(r, p + 16 * PG, 16 * PG, node0, LEAP_RELOCATE, NULL));
	return r;
}

static uint64_t runs_of(struct leap_region *r)
{
	struct leap_region_stats s = { .size = sizeof(s) };
	OK(leap_region_stats(r, &s));
	return s.runs;
}

static struct leap_progress prog(struct leap_job *j)
{
	struct leap_progress p = { .size = sizeof(p) };
	OK(leap_job_progress(j, &p));
	return p;
}

/* ------------------------------------------------------------ cases */
static int waits_for_busy_range(void)
{
	struct leap_region *r = fragmented(1);
	char *p = leap_region_addr(r);
	EXPECT(runs_of(r) == 3, "fragmented: %llu runs", (unsigned long long)runs_of(r));
	struct leap_job *uj, *cj;
	gate_arm(r, 40 * PG);
	OK(page_leap(r, p + 40 * PG, 8 * PG, node0, LEAP_RELOCATE, &uj));
	gate_wait(&g_held);
	OK(leap_pool_compact(pool, 0, NULL, &cj));
	gate_wait(&g_waiting); /* the walker's move waits for the held job's range */
	struct leap_progress cp = prog(cj);
	EXPECT(cp.state == LEAP_JOB_RUNNING && cp.pages_moved == 0,
	       "compaction went on over a busy range: state %d, %llu moved", cp.state,
	       (unsigned long long)cp.pages_moved);
	gate_open();
	int64_t ur = leap_job_wait(uj, HANG_NS), cr = leap_job_wait(cj, HANG_NS);
	EXPECT(ur == 8, "user's job: %lld", (long long)ur);
	cp = prog(cj);
	EXPECT(cr >= 16 && cp.pages_failed == 0, "compaction: %lld, %llu failed", (long long)cr,
	       (unsigned long long)cp.pages_failed);
	EXPECT(runs_of(r) == 1, "after: %llu runs", (unsigned long long)runs_of(r));
	check_pages(p, NPG, 1, "after the walk");
	leap_job_destroy(&uj);
	leap_job_destroy(&cj);
	leap_region_destroy(&r);
	return 0;
}

static int cancel_while_waiting(void)
{
	struct leap_region *r = fragmented(2);
	char *p = leap_region_addr(r);
	struct leap_job *uj, *cj;
	gate_arm(r, 40 * PG);
	OK(page_leap(r, p + 40 * PG, 8 * PG, node0, LEAP_RELOCATE, &uj));
	gate_wait(&g_held);
	OK(leap_pool_compact(pool, 0, NULL, &cj));
	gate_wait(&g_waiting);
	OK(leap_job_cancel(cj));
	int64_t cr = leap_job_wait(cj, HANG_NS); /* the user's job is still held */
	EXPECT(cr == -ECANCELED, "compaction: %lld, want -ECANCELED", (long long)cr);
	EXPECT(prog(cj).pages_moved == 0, "moved %llu", (unsigned long long)prog(cj).pages_moved);
	EXPECT(prog(uj).state == LEAP_JOB_RUNNING, "the user's job ended: %d", prog(uj).state);
	gate_open();
	EXPECT(leap_job_wait(uj, HANG_NS) == 8, "user's job");
	check_pages(p, NPG, 2, "after the cancel");
	leap_job_destroy(&uj);
	leap_job_destroy(&cj);
	leap_region_destroy(&r);
	return 0;
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

static int destroy_while_waiting(void)
{
	struct leap_region *r = fragmented(3);
	char *p = leap_region_addr(r);
	struct leap_job *uj, *cj;
	gate_arm(r, 40 * PG);
	OK(page_leap(r, p + 40 * PG, 8 * PG, node0, LEAP_RELOCATE, &uj));
	gate_wait(&g_held);
	OK(leap_pool_compact(pool, 0, NULL, &cj));
	gate_wait(&g_waiting);
	struct destroyer d = { .r = r };
	EXPECT(pthread_create(&d.t, NULL, destroy_main, &d) == 0, "pthread_create");
	/* the destroy ends the waiting move at once: the walk finishes although the destroy
	 * itself still waits for the user's job, held at the gate */
	int64_t cr = leap_job_wait(cj, HANG_NS);
	EXPECT(cr >= 0 && prog(cj).pages_failed == 0, "compaction: %lld, %llu failed",
	       (long long)cr, (unsigned long long)prog(cj).pages_failed);
	EXPECT(!atomic_load(&d.done), "the destroy did not wait for the held job");
	gate_open();
	pthread_join(d.t, NULL);
	EXPECT(leap_job_wait(uj, HANG_NS) == -ECANCELED, "user's job: %lld",
	       (long long)leap_job_wait(uj, 0));
	leap_job_destroy(&uj);
	leap_job_destroy(&cj);
	return 0;
}

static int destroy_skips_region(void)
{
	/* the walk visits the instance's regions newest first: b, then a */
	struct leap_region *a = fragmented(4), *b = fragmented(5);
	struct leap_job *cj;
	gate_arm(b, 0); /* the walk's move on b, held at its first extent */
	OK(leap_pool_compact(pool, 0, NULL, &cj));
	gate_wait(&g_held);
	leap_region_destroy(&a); /* not reached yet: skipped, never waited for */
	gate_open();
	int64_t cr = leap_job_wait(cj, HANG_NS);
	struct leap_progress cp = prog(cj);
	EXPECT(cr == 16 && cp.pages_moved == 16 && cp.pages_failed == 0,
	       "compaction: %lld, %llu moved, %llu failed (b's 16 pages only)", (long long)cr,
	       (unsigned long long)cp.pages_moved, (unsigned long long)cp.pages_failed);
	EXPECT(runs_of(b) == 1, "b: %llu runs", (unsigned long long)runs_of(b));
	check_pages(leap_region_addr(b), NPG, 5, "b after the walk");
	leap_job_destroy(&cj);
	leap_region_destroy(&b);
	return 0;
}

static void run(const char *name, int (*fn)(void))
{
	int rc = fn();
	gate_open(); /* a failed case must not leave a job held */
	printf("%s %s\n", rc ? "FAIL" : "PASS", name);
	*(rc ? &failed : &passed) += 1;
}

int main(void)
{
	t_name = "t_walk";
	int rc = leap_ctx_new(NULL, &ctx);
	if (rc)
		FAIL("leap_ctx_new: %s", leap_strerror(rc));
	const struct leap_topo *t = leap_ctx_topo(ctx);
	CHECK(mem_nodes(t, &node0, 1) >= 1, "no node with memory");
	struct leap_region *probe;
	OK(leap_region_new(ctx, PG, node0, &probe));
	rc = page_leap(probe, leap_region_addr(probe), PG, node0, LEAP_RELOCATE, NULL);
	leap_region_destroy(&probe);
	if (rc == -EOPNOTSUPP)
		skip("no userfaultfd write protection here");
	OK(leap_pool_get(ctx, node0, &pool));
	leap__test_extent_hook = extent_hook;
	leap__test_claim_wait_hook = claim_wait_hook;
	run("waits_for_busy_range", waits_for_busy_range);
	run("cancel_while_waiting", cancel_while_waiting);
	run("destroy_while_waiting", destroy_while_waiting);
	run("destroy_skips_region", destroy_skips_region);
	leap__test_extent_hook = NULL;
	leap__test_claim_wait_hook = NULL;
	leap_ctx_destroy(&ctx);
	printf("t_walk: note %d cases passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
