/*
 * Jobs: the asynchronous API and its defined behaviours. Wait and progress, completion
 * callback, cancel in the middle (every page whole and on exactly one node), overlapping
 * jobs (-EBUSY) and disjoint ones at once, a region destroyed with a job in flight,
 * adaptive granularity (grows to the maximum with no writers; no write lost under writers
 * on scattered pages), a fixed granularity, a single hot word written throughout (the
 * job still ends, the word is exact), and the mode without write protection.
 * Cancel, overlap and destroy hold the job at a known extent (the gate of oracle.h) instead
 * of racing it. Each scenario is a named case (util.h, RUN_CASES).
 */
#include "oracle.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static struct leap_ctx *ctx;
static int nodes[64], nn, home, far;
static unsigned fl;
#define len ((size_t)64 << 20)
#define np (len / PG)
/* small fixed steps so there is a middle */
static const struct leap_job_options small = { .size = sizeof(small), .granularity_min = 16 * PG,
					       .granularity_max = 16 * PG };

/* Library and kernel agree on every page; returns the pages on node. */
static size_t agree(struct leap_region *r, int node)
{
	return pages_on(r, node, "placement");
}

/* Each case: a context and a 64 MiB region on home, filled with tag 1. */
static struct leap_region *setup(void)
{
	struct leap_ctx_options o = { .size = sizeof(o), .workers_per_node = 2 };
	OK(leap_ctx_new(&o, &ctx));
	nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	CHECK(nn >= 1, "no node with memory");
	home = nodes[0];
	far = nodes[nn - 1];
	fl = home == far ? LEAP_RELOCATE : 0;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, home, &r));
	fill_pages(leap_region_addr(r), np, 1);
	return r;
}

static void teardown(struct leap_region **r)
{
	leap_region_destroy(r);
	leap_ctx_destroy(&ctx);
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
static void mixed_then_write(void)
{
	const size_t mlen = 16 << 20, mnp = mlen / PG, cut = 64 * 1024;
	struct leap_place pl[256];
	size_t n = mlen / cut;
	for (size_t i = 0; i < n; i++)
		pl[i] = (struct leap_place){ i * cut, cut, i % 2 ? far : home };
	struct leap_region *r;
	OK(leap_region_new_placed(ctx, mlen, pl, n, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, mnp, 5);
	CHECK(OK(page_leap(r, p, mlen, far, 0, NULL)) == (int)(mnp / 2), "half the pages move");
	signal(SIGALRM, stuck);
	alarm(60);
	for (size_t k = 0; k < mnp; k++)
		((volatile char *)p)[k * PG + 8] ^= 0;
	alarm(0);
	check_pages(p, mnp, 5, "mixed placement moved");
	CHECK(agree(r, far) == mnp, "mixed placement: not all on the target");
	leap_region_destroy(&r);
}

/* A status[] array for the whole region, every entry a value no page gets. */
#define STATUS_UNSET 0x7eadbeef
static int *status_new(void)
{
	int *st = malloc(np * sizeof(int));
	CHECK(st != NULL, "malloc");
	for (size_t i = 0; i < np; i++)
		st[i] = STATUS_UNSET;
	return st;
}

/* page_leap(3): every page's entry receives its node or -errno. A job that stopped
 * (cancel, destroy) after `moved` pages: those hold the target, the rest -ECANCELED. */
static void status_check(int *st, size_t n, size_t moved, int node, const char *what)
{
	size_t bad = 0, first = n;
	for (size_t i = 0; i < n; i++)
		if (st[i] != (i < moved ? node : -ECANCELED) && bad++ == 0)
			first = i;
	CHECK(bad == 0, "%s: %zu status[] entries wrong, the first at page %zu holds %d (want %d)",
	      what, bad, first, first < n ? st[first] : 0,
	      first < moved ? node : -ECANCELED);
	free(st);
}

static atomic_int callbacks;
static void on_done(struct leap_job *j, void *arg)
{
	struct leap_progress p = { .size = sizeof(p) };
	if (leap_job_progress(j, &p) == 0 && p.state == LEAP_JOB_DONE && arg == (void *)&callbacks)
		atomic_fetch_add(&callbacks, 1);
}

/* async: returns at once; wait, progress, callback; grows to the maximum unwatched */
CASE(async)
{
	struct leap_region *r = setup();
	char *p = leap_region_addr(r);
	const struct leap_topo *topo = leap_ctx_topo(ctx);
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
	teardown(&r);
}

/* cancel in the middle: the job is held before extent GATE_AT (16-page extents), then
 * cancelled and let go. It must end cancelled with exactly the extents before the gate
 * moved; a job that finished before the cancel fails here. */
#define GATE_AT 5
CASE(cancel)
{
	struct leap_region *r = setup();
	char *p = leap_region_addr(r);
	struct leap_job *j;
	int *status = status_new();
	struct leap_job_options so = small;
	so.status = status;
	gate_arm(GATE_AT, r);
	OK(page_leap_opts(r, p, len, far, fl, &so, &j));
	size_t off = gate_wait();
	CHECK(off == GATE_AT * 16 * PG, "held at offset %zu, want extent %d", off, GATE_AT);
	OK(leap_job_cancel(j));
	gate_release();
	int64_t res = leap_job_wait(j, -1);
	struct leap_progress pr = prog(j);
	CHECK(res == -ECANCELED, "cancelled job returned %" PRId64 " (finished before the cancel?)",
	      res);
	CHECK(pr.state == LEAP_JOB_CANCELLED, "state %d", pr.state);
	CHECK(pr.pages_moved == GATE_AT * 16 && pr.pages_done == GATE_AT * 16,
	      "%" PRIu64 " pages moved (%" PRIu64 " done), want exactly the %d extents before the "
	      "cancel (%d pages)",
	      pr.pages_moved, pr.pages_done, GATE_AT, GATE_AT * 16);
	if (nn > 1)
		CHECK(agree(r, far) == pr.pages_moved, "%" PRIu64 " moved but %zu on target",
		      pr.pages_moved, agree(r, far));
	else
		agree(r, far);
	check_pages(p, np, 1, "after cancel");
	status_check(status, np, GATE_AT * 16, far, "cancelled job");
	leap_job_destroy(&j);
	OK(page_leap(r, p, len, far, fl, NULL)); /* the rest */
	if (nn > 1)
		CHECK(agree(r, far) == np, "after the rest");
	check_pages(p, np, 1, "after the rest");
	teardown(&r);
}

/* overlapping jobs: -EBUSY while the first is held in flight; a disjoint one runs (and
 * ends) while it is held */
CASE(overlap)
{
	struct leap_region *r = setup();
	char *p = leap_region_addr(r);
	struct leap_job *a, *b, *c = NULL;
	gate_arm(1, r);
	OK(page_leap_opts(r, p, len / 2, far, fl, &small, &a));
	gate_wait();
	ERR(page_leap(r, p + len / 4, len / 2, far, fl, &c), EBUSY);
	CHECK(c == NULL, "a rejected job handed out a job");
	OK(page_leap_opts(r, p + len / 2, len / 2, far, fl, &small, &b));
	CHECK(leap_job_wait(b, -1) == (int64_t)(np / 2), "disjoint job while the first is held");
	CHECK(prog(a).state < LEAP_JOB_DONE, "the held job ended");
	gate_release();
	CHECK(leap_job_wait(a, -1) == (int64_t)(np / 2), "the first job after the release");
	leap_job_destroy(&a);
	leap_job_destroy(&b);
	if (nn > 1)
		CHECK(agree(r, far) == np, "disjoint jobs placement");
	else
		agree(r, far);
	check_pages(p, np, 1, "after disjoint jobs");
	teardown(&r);
}

/*
 * Writers on scattered pages: every write lands. Whether and how far the granularity
 * shrinks under them depends on what shrinking buys on the machine; the controller's
 * behaviour is proven by its unit test (t_gran), not by counting extents under load.
 */
CASE(writers)
{
	struct leap_region *r = setup();
	char *p = leap_region_addr(r);
	struct oracle o;
	oracle_start_region(&o, 2, r);
	uint64_t faults = 0;
	struct leap_progress pr;
	/* the writers are running (start barrier); a move without one write fault would not
	 * prove anything, so move back and forth until one was counted */
	int moves = 0;
	do {
		struct leap_job *j;
		int to = moves % 2 ? home : far;
		OK(page_leap(r, p, len, to, fl, &j));
		CHECK(leap_job_wait(j, -1) == (int64_t)np, "job under writers");
		pr = prog(j);
		faults += pr.write_faults;
		leap_job_destroy(&j);
		moves++;
		oracle_more(&o, 1000);
	} while (faults == 0 && moves < 50);
	uint64_t writes = oracle_stop(&o);
	CHECK(faults > 0, "the writers never waited in %d moves", moves);
	oracle_check(&o, "writers");
	check_pages(p, np, 1, "after moves under writers");
	say("measured writers on scattered pages (%" PRIu64 " writes, %d moves): last move %" PRIu64
	    " extents, granularity %" PRIu64 "..%" PRIu64 " KiB, %" PRIu64 " waits, stall p50 %.1f us "
	    "p99 %.1f us max %.1f us",
	    writes, moves, pr.extents, pr.granularity_min_seen >> 10, pr.granularity_max_seen >> 10,
	    pr.write_faults, pr.stall_p50_ns / 1e3, pr.stall_p99_ns / 1e3, pr.stall_max_ns / 1e3);
	oracle_free(&o);
	teardown(&r);
}

/* one hot word written throughout: the job ends, the word is exact */
CASE(hot_word)
{
	struct leap_region *r = setup();
	char *p = leap_region_addr(r);
	struct oracle o;
	struct oracle_area hot = { p + len / 2, 1 };
	oracle_start(&o, 1, &hot, 1);
	struct leap_job *j;
	double t0 = now();
	OK(page_leap(r, p, len, far, fl, &j));
	CHECK(leap_job_wait(j, 60 * (int64_t)1000000000) == (int64_t)np, "hot-word job");
	double dt = now() - t0;
	oracle_more(&o, 1000); /* writes after the job too */
	uint64_t writes = oracle_stop(&o);
	oracle_check(&o, "hot word");
	struct leap_progress pr = prog(j);
	say("measured hot word: job took %.3f s, %" PRIu64 " increments exact, %" PRIu64 " waits",
	    dt, writes, pr.write_faults);
	oracle_free(&o);
	leap_job_destroy(&j);
	teardown(&r);
}

CASE(mixed)
{
	struct leap_region *r = setup();
	leap_region_destroy(&r);
	if (nn < 2)
		skip("one memory node: no mixed placement");
	mixed_then_write();
	leap_ctx_destroy(&ctx);
}

/* fixed granularity */
CASE(fixed)
{
	struct leap_region *r = setup();
	struct leap_job *j;
	OK(page_leap_opts(r, leap_region_addr(r), len, far, fl, &small, &j));
	CHECK(leap_job_wait(j, -1) == (int64_t)np, "fixed");
	struct leap_progress pr = prog(j);
	CHECK(pr.granularity_min_seen == 16 * PG && pr.granularity_max_seen == 16 * PG &&
		      pr.extents == np / 16,
	      "fixed granularity: %" PRIu64 "..%" PRIu64 " in %" PRIu64 " extents",
	      pr.granularity_min_seen, pr.granularity_max_seen, pr.extents);
	leap_job_destroy(&j);
	teardown(&r);
}

/* destroying a region with a job in flight cancels and waits; the job stays readable.
 * The job is held before extent GATE_AT; the destroy must block (it waits for the job),
 * and once let go the job ends cancelled with exactly the extents before the gate. */
static void destroy_fn(void *arg)
{
	leap_region_destroy(arg);
}
CASE(destroy_in_flight)
{
	struct leap_region *r = setup();
	struct leap_job *j;
	int *status = status_new();
	struct leap_job_options so = small;
	so.status = status;
	gate_arm(GATE_AT, r);
	OK(page_leap_opts(r, leap_region_addr(r), len, far, fl, &so, &j));
	gate_wait();
	struct blocked_call bc;
	blocked_call(&bc, destroy_fn, &r);
	CHECK(!atomic_load(&bc.done), "the destroy returned while its job was held");
	gate_release();
	blocked_join(&bc);
	CHECK(r == NULL, "destroy did not clear the handle");
	int64_t res = leap_job_wait(j, -1);
	struct leap_progress pr = prog(j);
	CHECK(res == -ECANCELED, "job of a destroyed region: %" PRId64, res);
	CHECK(pr.state == LEAP_JOB_CANCELLED && pr.pages_moved == GATE_AT * 16,
	      "state %d, %" PRIu64 " moved, want %d", pr.state, pr.pages_moved, GATE_AT * 16);
	status_check(status, np, GATE_AT * 16, far, "job of a destroyed region");
	leap_job_destroy(&j);
	leap_ctx_destroy(&ctx);
}

/*
 * Jobs still queued: with one worker per node, a job held at the gate keeps the node's
 * only thread, and every later job for that node waits in its queue (state QUEUED). A
 * cancel, a job destroy and a region destroy of a queued job must end it at once, not
 * after the jobs ahead of it (other regions' too): result -ECANCELED, no page moved, every
 * status[] entry -ECANCELED, its callback run once, before the call that ended it returns.
 */
static void count_done(struct leap_job *j, void *arg)
{
	(void)j;
	atomic_fetch_add((atomic_int *)arg, 1);
}
static void job_destroy_fn(void *arg)
{
	leap_job_destroy(arg);
}
/* A job queued on r behind the held one, with a status array and a callback counter. */
static struct leap_job *queued_job(struct leap_region *r, size_t off, size_t n, int **status,
				   atomic_int *done)
{
	*status = status_new();
	struct leap_job_options o = small;
	o.status = *status;
	o.done = count_done;
	o.arg = done;
	struct leap_job *j;
	OK(page_leap_opts(r, (char *)leap_region_addr(r) + off, n, far, fl, &o, &j));
	CHECK(prog(j).state == LEAP_JOB_QUEUED, "the job is not queued behind the held one: state %d",
	      prog(j).state);
	return j;
}
CASE(queued)
{
	struct leap_ctx_options co = { .size = sizeof(co), .workers_per_node = 1 };
	OK(leap_ctx_new(&co, &ctx));
	nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	home = nodes[0];
	far = nodes[nn - 1];
	fl = home == far ? LEAP_RELOCATE : 0;
	struct leap_region *a, *b, *c;
	OK(leap_region_new(ctx, len, home, &a));
	OK(leap_region_new(ctx, len, home, &b));
	OK(leap_region_new(ctx, len, home, &c));
	fill_pages(leap_region_addr(a), np, 1);
	struct leap_job *held, *j;
	gate_arm(1, a);
	OK(page_leap_opts(a, leap_region_addr(a), len / 2, far, fl, &small, &held));
	gate_wait();
	int *st;
	atomic_int done = 0;

	/* the same region, a disjoint range: leap_job_cancel() ends it before returning */
	j = queued_job(a, len / 2, len / 2, &st, &done);
	OK(leap_job_cancel(j));
	CHECK(leap_job_wait(j, 0) == -ECANCELED, "a cancelled queued job did not end at once");
	CHECK(atomic_load(&done) == 1, "callback ran %d times", atomic_load(&done));
	struct leap_progress pr = prog(j);
	CHECK(pr.state == LEAP_JOB_CANCELLED && pr.pages_moved == 0 && pr.extents == 0,
	      "state %d, %" PRIu64 " moved", pr.state, pr.pages_moved);
	status_check(st, np / 2, 0, far, "cancelled queued job");
	leap_job_destroy(&j);
	CHECK(atomic_load(&done) == 1, "callback ran %d times", atomic_load(&done));

	/* another region's job: leap_job_destroy() does not wait for the held job */
	atomic_store(&done, 0);
	j = queued_job(b, 0, len, &st, &done);
	CHECK(finishes(job_destroy_fn, &j), "destroying a queued job waited for the job ahead");
	CHECK(j == NULL && atomic_load(&done) == 1, "destroyed queued job: callback ran %d times",
	      atomic_load(&done));
	status_check(st, np, 0, far, "destroyed queued job");

	/* a region destroyed with a queued job ends it and returns while the other is held */
	atomic_store(&done, 0);
	j = queued_job(c, 0, len, &st, &done);
	CHECK(finishes(destroy_fn, &c), "destroying a region with a queued job waited for another "
					"region's job");
	CHECK(c == NULL, "destroy did not clear the handle");
	CHECK(leap_job_wait(j, 0) == -ECANCELED && atomic_load(&done) == 1,
	      "job of a destroyed region: %" PRId64 ", callback ran %d times", leap_job_wait(j, 0),
	      atomic_load(&done));
	status_check(st, np, 0, far, "queued job of a destroyed region");
	leap_job_destroy(&j);

	/* the held job was never disturbed, and the worker goes on with the next job */
	CHECK(prog(held).state == LEAP_JOB_RUNNING, "the held job: state %d", prog(held).state);
	gate_release();
	CHECK(leap_job_wait(held, -1) == (int64_t)(np / 2), "the held job after the release");
	leap_job_destroy(&held);
	CHECK(OK(page_leap(b, leap_region_addr(b), len, far, fl, NULL)) == (int)np, "next job");
	check_pages(leap_region_addr(a), np, 1, "after the queued jobs");
	leap_region_destroy(&b);
	teardown(&a);
}

/*
 * The done callback runs before leap_job_wait() returns and before a synchronous call
 * returns (page_leap(3)): the callback records the order it saw and what the job's
 * progress said; the waiter checks the callback already ran when its call returned.
 */
static atomic_int order_step, cb_step, cb_state;
static void order_done(struct leap_job *j, void *arg)
{
	(void)arg;
	struct leap_progress pr = { .size = sizeof(pr) };
	atomic_store(&cb_state, leap_job_progress(j, &pr) == 0 ? pr.state : -1);
	atomic_store(&cb_step, atomic_fetch_add(&order_step, 1));
}
CASE(callback_order)
{
	struct leap_region *r = setup();
	char *p = leap_region_addr(r);
	struct leap_job_options o = { .size = sizeof(o), .done = order_done };
	struct leap_job *j;
	atomic_store(&cb_step, -1);
	OK(page_leap_opts(r, p, len, far, fl, &o, &j));
	CHECK(leap_job_wait(j, -1) == (int64_t)np, "async job");
	int waited = atomic_fetch_add(&order_step, 1);
	CHECK(atomic_load(&cb_step) >= 0 && atomic_load(&cb_step) < waited,
	      "leap_job_wait() returned before the callback ran (callback step %d, wait %d)",
	      atomic_load(&cb_step), waited);
	CHECK(atomic_load(&cb_state) == LEAP_JOB_DONE, "the callback saw state %d",
	      atomic_load(&cb_state));
	leap_job_destroy(&j);
	atomic_store(&cb_step, -1);
	CHECK(OK(page_leap_opts(r, p, len, home, fl, &o, NULL)) == (int)np,
	      "synchronous job");
	int returned = atomic_fetch_add(&order_step, 1);
	CHECK(atomic_load(&cb_step) >= 0 && atomic_load(&cb_step) < returned,
	      "page_leap() returned before the callback ran (callback step %d, return %d)",
	      atomic_load(&cb_step), returned);
	teardown(&r);
}

/* without write protection: LEAP_NO_WRITERS is required */
CASE(no_write_protect)
{
	struct leap_region *r0 = setup();
	teardown(&r0);
	struct leap_ctx_options nw = { .size = sizeof(nw), .flags = LEAP_CTX_NO_WRITE_PROTECT };
	struct leap_region *r;
	OK(leap_ctx_new(&nw, &ctx));
	OK(leap_region_new(ctx, 4 << 20, home, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, 1024, 2);
	ERR(page_leap(r, p, 4 << 20, far, fl, NULL), EOPNOTSUPP);
	CHECK(OK(page_leap(r, p, 4 << 20, far, fl | LEAP_NO_WRITERS, NULL)) == 1024, "no-writers move");
	check_pages(p, 1024, 2, "no-writers move");
	teardown(&r);
}

int main(void)
{
	t_name = "t_jobs";
	return RUN_CASES(async, cancel, overlap, writers, hot_word, mixed, fixed, destroy_in_flight,
			 queued, callback_order, no_write_protect);
}
