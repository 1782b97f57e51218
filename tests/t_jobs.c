/*
 * Jobs: the asynchronous API and its defined behaviours. Wait and progress, completion
 * callback, cancel in the middle (every page whole and on exactly one node), overlapping
 * jobs (-EBUSY) and disjoint ones at once, a region destroyed with a job in flight,
 * adaptive granularity (grows to the maximum with no writers, shrinks under a writer
 * hammering scattered pages), a fixed granularity, a single hot word written throughout
 * (the job still ends, the word is exact), and the mode without write protection.
 */
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static struct leap_ctx *ctx;
static int nodes[64], nn;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct leap_progress prog(struct leap_job *j)
{
	struct leap_progress p = { .size = sizeof(p) };
	OK(leap_job_progress(j, &p));
	return p;
}

/* Library and kernel agree on every page; returns the pages on node. */
static size_t agree(struct leap_region *r, int node)
{
	char *p = leap_region_addr(r);
	size_t np = leap_region_length(r) / PG, on = 0;
	int *kn = malloc(np * sizeof(int));
	kernel_nodes(p, np, kn);
	for (size_t k = 0; k < np; k++) {
		CHECK(kn[k] == leap_node_of(r, p + k * PG), "page %zu: kernel %d, library %d", k, kn[k],
		      leap_node_of(r, p + k * PG));
		on += kn[k] == node;
	}
	free(kn);
	return on;
}

static void stuck(int sig)
{
	(void)sig;
	static const char m[] = "t_jobs: FAIL: a write blocked for 60 s after its job ended "
				"(a page left write-protected)\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

/*
 * A range whose pages alternate between the target and another node: extents mix pages
 * that move with pages that stay (and span several kernel mappings, which kernels before
 * 6.5 cannot write-protect in one call). Afterwards every page must take writes: a page
 * left write-protected blocks its writer forever, and the alarm catches it.
 */
static void mixed_then_write(int home, int far)
{
	const size_t len = 16 << 20, np = len / PG, cut = 64 * 1024;
	struct leap_place pl[256];
	size_t n = len / cut;
	for (size_t i = 0; i < n; i++)
		pl[i] = (struct leap_place){ i * cut, cut, i % 2 ? far : home };
	struct leap_region *r;
	OK(leap_region_new_placed(ctx, len, pl, n, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 5);
	CHECK(OK(page_leap(r, p, len, far, 0, NULL)) == (int)(np / 2), "half the pages move");
	signal(SIGALRM, stuck);
	alarm(60);
	for (size_t k = 0; k < np; k++)
		((volatile char *)p)[k * PG + 8] ^= 0;
	alarm(0);
	check_pages(p, np, 5, "mixed placement moved");
	CHECK(agree(r, far) == np, "mixed placement: not all on the target");
	leap_region_destroy(&r);
}

static atomic_int callbacks;
static void on_done(struct leap_job *j, void *arg)
{
	struct leap_progress p = { .size = sizeof(p) };
	if (leap_job_progress(j, &p) == 0 && p.state == LEAP_JOB_DONE && arg == (void *)&callbacks)
		atomic_fetch_add(&callbacks, 1);
}

static atomic_int stop_writer;
static void *hammer(void *arg)
{
	struct leap_region *r = arg;
	char *p = leap_region_addr(r);
	size_t np = leap_region_length(r) / PG;
	uint64_t s = 12345, n = 0;
	while (!atomic_load_explicit(&stop_writer, memory_order_relaxed)) {
		volatile char *x = p + (rnd(&s) % np) * PG + 64;
		*x = (char)(*x + 1);
		n++;
	}
	return (void *)(uintptr_t)n;
}

static volatile uint64_t *hot;
static void *hot_writer(void *arg)
{
	(void)arg;
	uint64_t n = 0;
	while (!atomic_load_explicit(&stop_writer, memory_order_relaxed)) {
		*hot = *hot + 1;
		n++;
	}
	return (void *)(uintptr_t)n;
}

int main(void)
{
	t_name = "t_jobs";
	struct leap_ctx_options o = { .size = sizeof(o), .workers_per_node = 2 };
	OK(leap_ctx_new(&o, &ctx));
	const struct leap_topo *topo = leap_ctx_topo(ctx);
	nn = mem_nodes(topo, nodes, 64);
	int home = nodes[0], far = nodes[nn - 1];
	unsigned fl = home == far ? LEAP_RELOCATE : 0;
	const size_t len = 64 << 20, np = len / PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, home, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 1);

	/* async: returns at once; wait, progress, callback; grows to the maximum unwatched */
	struct leap_job *j;
	struct leap_job_options cb = { .size = sizeof(cb), .done = on_done, .arg = &callbacks };
	OK(page_leap_opts(r, p, len, far, fl, &cb, &j));
	CHECK(leap_job_wait(j, 0) == -ETIMEDOUT || prog(j).state == LEAP_JOB_DONE, "wait(0)");
	CHECK(leap_job_wait(j, -1) == (int64_t)np, "async result");
	struct leap_progress pr = prog(j);
	CHECK(pr.state == LEAP_JOB_DONE && pr.pages_done == np && pr.pages_moved == np &&
		      pr.pages_total == np && pr.bytes_copied == len && pr.pages_failed == 0,
	      "progress after the job");
	CHECK(pr.granularity == 4 << 20 && pr.granularity_max_seen == 4 << 20,
	      "granularity did not grow to 4 MiB without writers: %" PRIu64, pr.granularity);
	CHECK(atomic_load(&callbacks) == 1, "callback ran %d times", atomic_load(&callbacks));
	struct leap_node_info ni = { .size = sizeof(ni) };
	OK(leap_topo_node(topo, far, &ni));
	int cpus[1024], nc = OK(leap_topo_cpus(topo, ni.nearest_cpu_node, cpus, 1024)), found = 0;
	for (int i = 0; i < nc; i++)
		found |= cpus[i] == pr.worker_cpu;
	CHECK(found, "job ran on cpu %d, not on node %d", pr.worker_cpu, ni.nearest_cpu_node);
	leap_job_destroy(&j);
	CHECK(j == NULL, "job destroy sets NULL");
	CHECK(agree(r, far) == np, "not all on target");
	check_pages(p, np, 1, "after async job");
	say("measured no writers: granularity grew to %" PRIu64 " KiB in %" PRIu64 " extents",
	    pr.granularity >> 10, pr.extents);
	uint64_t unwatched_extents = pr.extents;

	/* cancel in the middle: small fixed steps so there is a middle */
	struct leap_job_options small = { .size = sizeof(small), .granularity_min = 16 * PG,
					  .granularity_max = 16 * PG };
	OK(page_leap_opts(r, p, len, home, fl, &small, &j));
	while (prog(j).pages_done == 0 && prog(j).state < LEAP_JOB_DONE)
		sched_yield();
	OK(leap_job_cancel(j));
	int64_t res = leap_job_wait(j, -1);
	pr = prog(j);
	if (res == -ECANCELED) {
		CHECK(pr.state == LEAP_JOB_CANCELLED && pr.pages_moved < np, "cancelled state");
		if (nn > 1)
			CHECK(agree(r, home) == pr.pages_moved, "%" PRIu64 " moved but %zu on target",
			      pr.pages_moved, agree(r, home));
	} else {
		CHECK(res == (int64_t)np, "cancel result %" PRId64, res); /* finished first */
	}
	check_pages(p, np, 1, "after cancel");
	say("measured cancel after %" PRIu64 " of %zu pages", pr.pages_moved, np);
	leap_job_destroy(&j);
	OK(page_leap(r, p, len, home, 0, NULL)); /* finish the move home */
	if (nn > 1)
		CHECK(agree(r, home) == np, "home");

	/* overlapping jobs: -EBUSY; disjoint ones run at once */
	struct leap_job *a, *b, *c;
	for (int tries = 1;; tries++) {
		OK(page_leap_opts(r, p, len / 2, far, fl, &small, &a));
		int rc = page_leap(r, p + len / 4, len / 2, far, fl, &c);
		if (rc == -EBUSY)
			break;
		/* accepted: right only if a had already done every page (it leaves the
		 * region's list after its last extent, before its state says so), which a
		 * descheduled test thread (a loaded emulated guest) can see; then try again */
		struct leap_progress pa = prog(a);
		CHECK(rc == 0 && pa.pages_done == pa.pages_total,
		      "overlapping job accepted (%d) while the first was in flight", rc);
		CHECK(tries < 5, "the first job always ended before the overlapping submission");
		CHECK(leap_job_wait(c, -1) >= 0, "overlapping job after the first ended");
		leap_job_destroy(&c);
		leap_job_destroy(&a);
		OK(page_leap(r, p, len, home, 0, NULL));
	}
	OK(page_leap_opts(r, p + len / 2, len / 2, far, fl, &small, &b));
	CHECK(leap_job_wait(a, -1) == (int64_t)(np / 2) && leap_job_wait(b, -1) == (int64_t)(np / 2),
	      "disjoint jobs");
	leap_job_destroy(&a);
	leap_job_destroy(&b);
	CHECK(agree(r, far) == np, "disjoint jobs placement");
	check_pages(p, np, 1, "after disjoint jobs");

	/* a writer hammering scattered pages: extents shrink; every write lands */
	pthread_t th;
	atomic_store(&stop_writer, 0);
	pthread_create(&th, NULL, hammer, r);
	usleep(10000);
	OK(page_leap(r, p, len, home, fl, &j));
	CHECK(leap_job_wait(j, -1) == (int64_t)np, "job under a writer");
	pr = prog(j);
	atomic_store(&stop_writer, 1);
	void *rv;
	pthread_join(th, &rv);
	CHECK(pr.write_faults > 0, "the writer never waited");
	/* shrank: more extents than the unwatched job's. How much depends on what shrinking
	 * buys on this machine (job.c shrinks only where a smaller extent is measured to
	 * shorten the wait): 3-10x here unloaded, barely on a loaded or emulated machine */
	CHECK(pr.extents > unwatched_extents,
	      "granularity did not shrink under a writer: %" PRIu64 " extents, %" PRIu64
	      " without writers",
	      pr.extents, unwatched_extents);
	say("measured hammering writer (%" PRIu64 " writes): %" PRIu64 " extents (%" PRIu64
	    " without writers), granularity %" PRIu64 "..%" PRIu64 " KiB, last %" PRIu64
	    " KiB, %" PRIu64 " waits, stall p50 %.1f us p99 %.1f us max %.1f us",
	    (uint64_t)(uintptr_t)rv, pr.extents, unwatched_extents, pr.granularity_min_seen >> 10,
	    pr.granularity_max_seen >> 10, pr.granularity >> 10, pr.write_faults,
	    pr.stall_p50_ns / 1e3, pr.stall_p99_ns / 1e3, pr.stall_max_ns / 1e3);
	leap_job_destroy(&j);
	leap_region_destroy(&r);

	/* one hot word written throughout: the job ends, the word is exact */
	OK(leap_region_new(ctx, len, home, &r));
	p = leap_region_addr(r);
	hot = (volatile uint64_t *)(p + len / 2 + 128);
	atomic_store(&stop_writer, 0);
	pthread_create(&th, NULL, hot_writer, NULL);
	usleep(10000);
	double t0 = now();
	OK(page_leap(r, p, len, far, fl, &j));
	CHECK(leap_job_wait(j, 60 * (int64_t)1000000000) == (int64_t)np, "hot-word job");
	double dt = now() - t0;
	usleep(10000);
	atomic_store(&stop_writer, 1);
	pthread_join(th, &rv);
	CHECK(*hot == (uint64_t)(uintptr_t)rv, "hot word %" PRIu64 ", %" PRIu64 " increments", *hot,
	      (uint64_t)(uintptr_t)rv);
	pr = prog(j);
	say("measured hot word: job took %.3f s, %" PRIu64 " increments exact, %" PRIu64 " waits",
	    dt, (uint64_t)(uintptr_t)rv, pr.write_faults);
	leap_job_destroy(&j);

	if (nn > 1)
		mixed_then_write(home, far);

	/* fixed granularity */
	OK(page_leap_opts(r, p, len, home, fl, &small, &j));
	CHECK(leap_job_wait(j, -1) == (int64_t)np, "fixed");
	pr = prog(j);
	CHECK(pr.granularity_min_seen == 16 * PG && pr.granularity_max_seen == 16 * PG &&
		      pr.extents == np / 16,
	      "fixed granularity: %" PRIu64 "..%" PRIu64 " in %" PRIu64 " extents",
	      pr.granularity_min_seen, pr.granularity_max_seen, pr.extents);
	leap_job_destroy(&j);

	/* destroying a region with a job in flight cancels and waits; the job stays readable */
	OK(page_leap_opts(r, p, len, far, fl, &small, &j));
	leap_region_destroy(&r);
	res = leap_job_wait(j, -1);
	CHECK(res == -ECANCELED || res == (int64_t)np, "job of a destroyed region: %" PRId64, res);
	CHECK(prog(j).state >= LEAP_JOB_DONE, "job not finished");
	leap_job_destroy(&j);
	leap_ctx_destroy(&ctx);

	/* without write protection: LEAP_NO_WRITERS is required */
	struct leap_ctx_options nw = { .size = sizeof(nw), .flags = LEAP_CTX_NO_WRITE_PROTECT };
	OK(leap_ctx_new(&nw, &ctx));
	OK(leap_region_new(ctx, 4 << 20, home, &r));
	p = leap_region_addr(r);
	fill_pages(p, 1024, 2);
	ERR(page_leap(r, p, 4 << 20, far, fl, NULL), EOPNOTSUPP);
	CHECK(OK(page_leap(r, p, 4 << 20, far, fl | LEAP_NO_WRITERS, NULL)) == 1024, "no-writers move");
	check_pages(p, 1024, 2, "no-writers move");
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	return 0;
}
