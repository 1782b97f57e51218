/*
 * Device I/O into and out of region memory (leap_io_begin/leap_io_end, LEAP_SKIP_BUSY).
 *
 * Transfers on pinned pages do not follow a move, so the program declares them. The
 * cases prove: bad declarations are refused and change nothing; a move waits at a
 * declared page (the pages before it move first) and finishes once it is released, or
 * skips it (-EBUSY per page) with LEAP_SKIP_BUSY and always for LEAP_IO_LONGTERM; a
 * cancel or a destroy ends the wait; evacuation honours declarations. With io_uring
 * (liburing): an undeclared registered buffer detaches after a move (the caveat the man
 * page states, shown with a pipe, where the kernel copies into the pinned pages like a
 * device would); a declared one keeps working and the re-registration recipe moves it;
 * a stale pin never reaches another page or another region (the old-page rule); O_DIRECT
 * reads and writes into buffers that keep moving, declared, lose nothing; O_DIRECT
 * writes need no declaration. The O_DIRECT cases use $LEAP_DIO_DEV when the harness
 * gives one (the guests' virtual disk), else a file that takes O_DIRECT in $TMPDIR,
 * /var/tmp or /tmp, and skip, saying so, where there is none.
 */
#include "oracle.h"

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

static struct leap_ctx *ctx;
static int nodes[64], nn, home, far;

#define RLEN ((size_t)4 << 20)
#define RNP (RLEN / PG)

static struct leap_region *setup(void)
{
	OK(leap_ctx_new(NULL, &ctx));
	nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	CHECK(nn >= 1, "no node with memory");
	home = nodes[0];
	far = nodes[nn - 1];
	struct leap_region *r;
	OK(leap_region_new(ctx, RLEN, home, &r));
	fill_pages(leap_region_addr(r), RNP, 1);
	return r;
}

static void teardown(struct leap_region **r)
{
	leap_region_destroy(r);
	leap_ctx_destroy(&ctx);
}

static char *pg(struct leap_region *r, size_t page)
{
	return (char *)leap_region_addr(r) + page * PG;
}

/* Pages [first, first+n) of r hold what fill_pages(region start, ..., tag) wrote there,
 * and nothing else: no other word of them was written (a stray kernel write would be). */
static void check_from(struct leap_region *r, size_t first, size_t n, uint64_t tag,
		       const char *what)
{
	for (size_t i = first; i < first + n; i++) {
		const uint64_t *w = (const uint64_t *)(const void *)pg(r, i);
		for (size_t j = 0; j < PG / 8; j++) {
			uint64_t want = j % 64 ? 0 : tag * 0x9e3779b97f4a7c15ull + i * 4096 + j;
			CHECK(w[j] == want, "%s: page %zu word %zu holds %" PRIx64 ", want %" PRIx64,
			      what, i, j, w[j], want);
		}
	}
}

/* ------------------------------------------------------------------ the API */

CASE(bad_input)
{
	struct leap_region *r = setup();
	char *b = leap_region_addr(r);
	ERR(leap_io_begin(NULL, b, PG, 0), EINVAL);
	ERR(leap_io_begin(r, b, 0, 0), EINVAL);
	ERR(leap_io_begin(r, b, PG, 0x100), EINVAL);
	ERR(leap_io_begin(r, b - PG, PG, 0), EFAULT);
	ERR(leap_io_begin(r, b + RLEN, 1, 0), EFAULT);
	ERR(leap_io_begin(r, b + RLEN - PG, 2 * PG, 0), EFAULT);
	ERR(leap_io_begin(r, b, SIZE_MAX, 0), EFAULT);
	ERR(leap_io_end(r, b, PG, 0), EINVAL); /* nothing declared */
	CHECK(rstats(r).io_declared == 0, "a refused call declared something");
	/* declarations stack; an end must match its begin (flags included) */
	OK(leap_io_begin(r, b, PG, 0));
	OK(leap_io_begin(r, b, PG, 0));
	OK(leap_io_begin(r, b + PG, PG, LEAP_IO_LONGTERM));
	CHECK(rstats(r).io_declared == 3, "io_declared %llu, want 3",
	      (unsigned long long)rstats(r).io_declared);
	ERR(leap_io_end(r, b, PG, LEAP_IO_LONGTERM), EINVAL);
	ERR(leap_io_end(r, b, 2 * PG, 0), EINVAL);
	OK(leap_io_end(r, b, PG, 0));
	OK(leap_io_end(r, b, PG, 0));
	ERR(leap_io_end(r, b, PG, 0), EINVAL);
	OK(leap_io_end(r, b + PG, PG, LEAP_IO_LONGTERM));
	CHECK(rstats(r).io_declared == 0, "declarations left after their ends");
	/* a declaration is rounded out to pages: 10 bytes at offset 100 declare page 0 */
	OK(leap_io_begin(r, b + 100, 10, 0));
	int st[4];
	struct leap_job_options o = { .size = sizeof(o), .status = st };
	ERR(page_leap_opts(r, b, 4 * PG, far, LEAP_RELOCATE | LEAP_SKIP_BUSY, &o, NULL), EBUSY);
	CHECK(st[0] == -EBUSY && st[1] == far && st[3] == far, "status %d %d %d", st[0], st[1],
	      st[3]);
	ERR(leap_io_end(r, b, 2 * PG, 0), EINVAL); /* another range than the begin's */
	OK(leap_io_end(r, b + 100, 10, 0));
	check_pages(b, RNP, 1, "contents");
	teardown(&r);
}

/* page_leap over [0, 64) with [16, 32) declared: skipped with LEAP_SKIP_BUSY. */
CASE(skip_busy)
{
	struct leap_region *r = setup();
	OK(leap_io_begin(r, pg(r, 16), 16 * PG, 0));
	int st[64];
	struct leap_job_options o = { .size = sizeof(o), .status = st };
	struct leap_job *j;
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE | LEAP_SKIP_BUSY, &o, &j));
	CHECK(leap_job_wait(j, -1) == -EBUSY, "result not -EBUSY");
	struct leap_progress p = prog(j);
	CHECK(p.state == LEAP_JOB_FAILED && p.pages_failed == 16 && p.io_skipped == 16 &&
		      p.pages_moved == 48 && p.io_waits == 0,
	      "state %d failed %llu skipped %llu moved %llu waits %llu", p.state,
	      (unsigned long long)p.pages_failed, (unsigned long long)p.io_skipped,
	      (unsigned long long)p.pages_moved, (unsigned long long)p.io_waits);
	leap_job_destroy(&j);
	for (int i = 0; i < 64; i++)
		CHECK(st[i] == (i >= 16 && i < 32 ? -EBUSY : far), "status[%d] = %d", i, st[i]);
	if (home != far) {
		expect_kernel_node(pg(r, 0), 16, far, "before the busy pages");
		expect_kernel_node(pg(r, 16), 16, home, "busy pages");
		expect_kernel_node(pg(r, 32), 32, far, "after the busy pages");
	}
	CHECK(rstats(r).io_skipped == 16, "region io_skipped");
	OK(leap_io_end(r, pg(r, 16), 16 * PG, 0));
	CHECK(OK(page_leap(r, pg(r, 0), 64 * PG, far, 0, NULL)) == (home != far ? 16 : 0),
	      "the released pages did not move");
	check_pages(leap_region_addr(r), RNP, 1, "contents");
	teardown(&r);
}

/* A long-term declaration is skipped without LEAP_SKIP_BUSY, and never waited for. */
CASE(longterm_skipped)
{
	struct leap_region *r = setup();
	OK(leap_io_begin(r, pg(r, 8), 4 * PG, LEAP_IO_LONGTERM));
	OK(leap_io_begin(r, pg(r, 10), 8 * PG, 0)); /* overlaps it, and goes on past it */
	int st[32];
	struct leap_job_options o = { .size = sizeof(o), .status = st };
	/* the transient pages past the long-term ones would be waited for: skip them too */
	ERR(page_leap_opts(r, pg(r, 0), 32 * PG, far, LEAP_RELOCATE | LEAP_SKIP_BUSY, &o, NULL),
	    EBUSY);
	for (int i = 0; i < 32; i++)
		CHECK(st[i] == (i >= 8 && i < 18 ? -EBUSY : far), "status[%d] = %d", i, st[i]);
	OK(leap_io_end(r, pg(r, 10), 8 * PG, 0));
	/* no LEAP_SKIP_BUSY: the long-term pages are still skipped, at once */
	ERR(page_leap_opts(r, pg(r, 0), 32 * PG, far, LEAP_RELOCATE, &o, NULL), EBUSY);
	for (int i = 0; i < 32; i++)
		CHECK(st[i] == (i >= 8 && i < 12 ? -EBUSY : far), "status[%d] = %d", i, st[i]);
	CHECK(rstats(r).io_waits == 0, "a long-term declaration was waited for");
	OK(leap_io_end(r, pg(r, 8), 4 * PG, LEAP_IO_LONGTERM));
	check_pages(leap_region_addr(r), RNP, 1, "contents");
	teardown(&r);
}

/* The io-wait seam: tells the test that a job waits for declared I/O. */
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int waits;
} iow = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void io_wait_hook(struct leap_region *r)
{
	(void)r;
	pthread_mutex_lock(&iow.m);
	iow.waits++;
	pthread_cond_broadcast(&iow.cv);
	pthread_mutex_unlock(&iow.m);
}

static void await_io_wait(int n)
{
	pthread_mutex_lock(&iow.m);
	while (iow.waits < n)
		pthread_cond_wait(&iow.cv, &iow.m);
	pthread_mutex_unlock(&iow.m);
}

static const struct leap_job_options fixed16 = { .size = sizeof(fixed16),
						 .granularity_min = 16 * PG,
						 .granularity_max = 16 * PG };

/* A move waits at a declared page: what comes before moved, nothing after; the end of
 * the declaration lets it finish. */
CASE(waits_for_io)
{
	struct leap_region *r = setup();
	leap__test_io_wait_hook = io_wait_hook;
	OK(leap_io_begin(r, pg(r, 32), 16 * PG, 0));
	struct leap_job *j;
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE, &fixed16, &j));
	await_io_wait(1);
	struct leap_progress p = prog(j);
	CHECK(p.state == LEAP_JOB_RUNNING && p.pages_moved == 32 && p.io_waits == 1,
	      "while waiting: state %d moved %llu waits %llu", p.state,
	      (unsigned long long)p.pages_moved, (unsigned long long)p.io_waits);
	if (home != far)
		expect_kernel_node(pg(r, 32), 32, home, "declared and later pages while waiting");
	/* the wait is at a page boundary, not inside an extent: the rest of the region is
	 * free to write (no page left write-protected) */
	fill_pages(pg(r, 64), RNP - 64, 2);
	OK(leap_io_end(r, pg(r, 32), 16 * PG, 0));
	CHECK(leap_job_wait(j, -1) == 64, "the job did not move all 64 pages");
	p = prog(j);
	CHECK(p.state == LEAP_JOB_DONE && p.pages_failed == 0, "state %d", p.state);
	leap_job_destroy(&j);
	if (home != far)
		expect_kernel_node(pg(r, 0), 64, far, "after the declaration ended");
	check_pages(pg(r, 0), 64, 1, "moved pages");
	check_pages(pg(r, 64), RNP - 64, 2, "the rest");
	CHECK(rstats(r).io_waits == 1, "region io_waits");
	teardown(&r);
}

/* A long-term declaration made while a job waits at the page ends the wait: the job
 * skips the page, as it would have had the declaration been there first. */
CASE(longterm_during_wait)
{
	struct leap_region *r = setup();
	leap__test_io_wait_hook = io_wait_hook;
	OK(leap_io_begin(r, pg(r, 16), 16 * PG, 0));
	int st[64];
	struct leap_job_options o = fixed16;
	o.status = st;
	struct leap_job *j;
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE, &o, &j));
	await_io_wait(1);
	OK(leap_io_begin(r, pg(r, 16), 16 * PG, LEAP_IO_LONGTERM));
	CHECK(leap_job_wait(j, -1) == -EBUSY, "the job did not skip the long-term pages");
	leap_job_destroy(&j);
	for (int i = 0; i < 64; i++)
		CHECK(st[i] == (i >= 16 && i < 32 ? -EBUSY : far), "status[%d] = %d", i, st[i]);
	OK(leap_io_end(r, pg(r, 16), 16 * PG, LEAP_IO_LONGTERM));
	OK(leap_io_end(r, pg(r, 16), 16 * PG, 0));
	check_pages(leap_region_addr(r), RNP, 1, "contents");
	teardown(&r);
}

static void move_home(void *a)
{
	struct leap_region *r = a;
	OK(page_leap(r, leap_region_addr(r), RLEN, home, 0, NULL));
}

/* Declared pages that would not move anyway (already on the target) are passed by: no
 * wait, no failure. */
CASE(busy_on_target_passed)
{
	struct leap_region *r = setup();
	OK(leap_io_begin(r, pg(r, 16), 16 * PG, 0));
	CHECK(finishes(move_home, r), "a move waited for declared pages it had nothing to do "
				      "with");
	struct leap_region_stats st = rstats(r);
	CHECK(st.io_waits == 0 && st.io_skipped == 0, "waits %llu skipped %llu",
	      (unsigned long long)st.io_waits, (unsigned long long)st.io_skipped);
	OK(leap_io_end(r, pg(r, 16), 16 * PG, 0));
	teardown(&r);
}


static struct leap_region *beg_r;
static size_t beg_page;
static void begin_call(void *a)
{
	(void)a;
	OK(leap_io_begin(beg_r, pg(beg_r, beg_page), 4 * PG, 0));
}

/* leap_io_begin() waits for the extent in flight over its range, and for nothing else. */
CASE(begin_waits_for_overlapping_extent_only)
{
	struct leap_region *r = setup();
	ine.at = 16 * PG;
	leap__test_in_extent_hook = in_extent_hook;
	struct leap_job *j;
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE, &fixed16, &j));
	pthread_mutex_lock(&ine.m);
	while (!ine.held)
		pthread_cond_wait(&ine.cv, &ine.m);
	pthread_mutex_unlock(&ine.m);
	/* the job is inside extent [16, 32), holding the region's lock */
	beg_r = r;
	beg_page = 200;
	CHECK(finishes(begin_call, NULL), "leap_io_begin() far from the extent waited for it");
	beg_page = 20;
	struct blocked_call b;
	blocked_call(&b, begin_call, NULL);
	CHECK(!atomic_load(&b.done), "leap_io_begin() over the extent in flight did not wait");
	pthread_mutex_lock(&ine.m);
	ine.released = 1;
	pthread_cond_broadcast(&ine.cv);
	pthread_mutex_unlock(&ine.m);
	blocked_join(&b);
	/* pages 20..24 moved with the extent the declaration waited for; the job's later
	 * extents lie past them, so it ends without waiting */
	CHECK(leap_job_wait(j, -1) == 64, "the job did not move its 64 pages");
	leap_job_destroy(&j);
	OK(leap_io_end(r, pg(r, 20), 4 * PG, 0));
	OK(leap_io_end(r, pg(r, 200), 4 * PG, 0));
	check_pages(leap_region_addr(r), RNP, 1, "contents");
	teardown(&r);
}

static struct leap_region *other;
static void move_other(void *a)
{
	(void)a;
	CHECK(OK(page_leap(other, leap_region_addr(other), RLEN, far, LEAP_RELOCATE, NULL)) ==
		      (int)RNP, "the other region did not move whole");
}
static struct leap_job *queued;
static void destroy_queued(void *a)
{
	(void)a;
	leap_job_destroy(&queued);
}

/* A job waiting for declared I/O does not hold its node's worker (one thread here): a
 * move of another region runs meanwhile, and a queued job can be destroyed by the thread
 * that holds the declaration. */
CASE(waiting_job_frees_its_worker)
{
	struct leap_region *r = setup();
	leap__test_io_wait_hook = io_wait_hook;
	OK(leap_region_new(ctx, RLEN, home, &other));
	fill_pages(leap_region_addr(other), RNP, 3);
	OK(leap_io_begin(r, pg(r, 16), PG, 0));
	struct leap_job *j;
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE, &fixed16, &j));
	await_io_wait(1);
	CHECK(finishes(move_other, NULL), "a move of another region waited for the parked job");
	OK(page_leap(other, leap_region_addr(other), RLEN, far, LEAP_RELOCATE, &queued));
	CHECK(finishes(destroy_queued, NULL), "destroying a job queued behind the parked one "
					      "waited for the declaration");
	check_pages(leap_region_addr(other), RNP, 3, "the other region");
	CHECK(prog(j).state == LEAP_JOB_RUNNING, "the parked job is not running any more");
	OK(leap_io_end(r, pg(r, 16), PG, 0));
	CHECK(leap_job_wait(j, -1) == 64, "the parked job did not finish its 64 pages");
	leap_job_destroy(&j);
	check_pages(leap_region_addr(r), RNP, 1, "contents");
	leap_region_destroy(&other);
	teardown(&r);
}

static void destroy_region(void *a)
{
	leap_region_destroy(a);
}

/* A cancel, and a destroy, end a job's wait for declared I/O. */
CASE(wait_ends_on_cancel_and_destroy)
{
	struct leap_region *r = setup();
	leap__test_io_wait_hook = io_wait_hook;
	OK(leap_io_begin(r, pg(r, 16), PG, 0));
	struct leap_job *j;
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE, &fixed16, &j));
	await_io_wait(1);
	OK(leap_job_cancel(j));
	CHECK(leap_job_wait(j, -1) == -ECANCELED, "a cancelled wait did not end cancelled");
	CHECK(prog(j).pages_moved == 16, "moved %llu", (unsigned long long)prog(j).pages_moved);
	leap_job_destroy(&j);
	OK(page_leap_opts(r, pg(r, 0), 64 * PG, far, LEAP_RELOCATE, &fixed16, &j));
	await_io_wait(2);
	CHECK(finishes(destroy_region, &r), "destroy waited for the declared I/O");
	CHECK(r == NULL, "destroy did not clear the handle");
	CHECK(leap_job_wait(j, -1) == -ECANCELED, "the job was not cancelled by the destroy");
	leap_job_destroy(&j);
	leap_ctx_destroy(&ctx);
}

/* Evacuation waits for transient declarations and skips with LEAP_SKIP_BUSY. */
CASE(evacuate)
{
	struct leap_region *r = setup();
	if (home == far)
		skip("evacuation needs two nodes (runs in the guests)");
	leap__test_io_wait_hook = io_wait_hook;
	OK(leap_io_begin(r, pg(r, 100), 8 * PG, 0));
	struct leap_job *j;
	OK(leap_node_evacuate(ctx, home, LEAP_SKIP_BUSY, NULL, &j));
	CHECK(leap_job_wait(j, -1) == -EBUSY, "evacuation with busy pages skipped: not -EBUSY");
	CHECK(prog(j).pages_failed == 8 && prog(j).io_skipped == 8, "failed %llu",
	      (unsigned long long)prog(j).pages_failed);
	leap_job_destroy(&j);
	expect_kernel_node(pg(r, 100), 8, home, "skipped pages");
	CHECK(pages_on(r, home, "after the skipping evacuation") == 8, "pages left on home");
	OK(leap_node_evacuate(ctx, home, 0, NULL, &j));
	await_io_wait(1);
	OK(leap_io_end(r, pg(r, 100), 8 * PG, 0));
	CHECK(leap_job_wait(j, -1) == 8, "evacuation did not move the released pages");
	leap_job_destroy(&j);
	CHECK(pages_on(r, home, "after the evacuation") == 0, "pages left on home");
	check_pages(leap_region_addr(r), RNP, 1, "contents");
	teardown(&r);
}

/* ------------------------------------------------------------------ io_uring */

static struct io_uring ring;

static void ring_init(void)
{
	int rc = io_uring_queue_init(16, &ring, 0);
	if (rc == -ENOSYS || rc == -EPERM)
		skip("io_uring is not available here");
	CHECK(rc == 0, "io_uring_queue_init: %s", strerror(-rc));
}

/* Submit what is queued and reap n completions; each must have moved len bytes. */
static void ring_run(int n, int len)
{
	CHECK(io_uring_submit(&ring) == n, "io_uring_submit");
	for (int i = 0; i < n; i++) {
		struct io_uring_cqe *c;
		CHECK(io_uring_wait_cqe(&ring, &c) == 0, "io_uring_wait_cqe");
		CHECK(c->res == len, "an I/O returned %d, want %d", c->res, len);
		io_uring_cqe_seen(&ring, c);
	}
}

/* A fixed-buffer write of len bytes of registered buffer 0 (at buf) into a pipe; what
 * comes out of the pipe lands in out. The kernel reads the pinned pages directly. */
static void fixed_write(int *pfd, char *buf, size_t len, char *out)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);
	io_uring_prep_write_fixed(s, pfd[1], buf, (unsigned)len, 0, 0);
	ring_run(1, (int)len);
	for (size_t got = 0; got < len;) {
		ssize_t k = read(pfd[0], out + got, len - got);
		CHECK(k > 0, "read from the pipe");
		got += (size_t)k;
	}
}

/* A fixed-buffer read of len bytes from a pipe (filled from in) into the registered
 * buffer: the kernel copies into the pinned pages, as a device's DMA would. */
static void fixed_read(int *pfd, char *buf, size_t len, const char *in)
{
	CHECK(write(pfd[1], in, len) == (ssize_t)len, "write to the pipe");
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);
	io_uring_prep_read_fixed(s, pfd[0], buf, (unsigned)len, 0, 0);
	ring_run(1, (int)len);
}

static void register_buf(char *buf, size_t len)
{
	struct iovec v = { buf, len };
	int rc = io_uring_register_buffers(&ring, &v, 1);
	if (rc == -ENOMEM || rc == -EPERM)
		skip("cannot register io_uring buffers (RLIMIT_MEMLOCK?)");
	CHECK(rc == 0, "io_uring_register_buffers: %s", strerror(-rc));
}

#define BUF (16 * PG)

/* An undeclared registered buffer detaches when its pages move: a write sends what the
 * old pages held, a read never reaches the region. The caveat leap_io_begin(3) states. */
CASE(undeclared_registered_detaches)
{
	struct leap_region *r = setup();
	ring_init();
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	char *buf = pg(r, 64), *out = malloc(BUF), *in = malloc(BUF);
	memset(buf, 'A', BUF);
	register_buf(buf, BUF);
	OK(page_leap(r, buf, BUF, far, LEAP_RELOCATE, NULL));
	memset(buf, 'B', BUF);
	fixed_write(pfd, buf, BUF, out);
	CHECK(out[0] == 'A' && out[BUF - 1] == 'A', "the registered buffer followed the move "
						    "(sent '%c'): the caveat no longer holds",
	      out[0]);
	memset(in, 'C', BUF);
	fixed_read(pfd, buf, BUF, in);
	CHECK(buf[0] == 'B', "the read reached the moved pages");
	io_uring_queue_exit(&ring);
	free(out);
	free(in);
	teardown(&r);
}

/* Declared long-term, a registered buffer stays put through moves and keeps working; the
 * re-registration recipe moves it. */
CASE(registered_declared_and_recipe)
{
	struct leap_region *r = setup();
	ring_init();
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	char *buf = pg(r, 64), *out = malloc(BUF), *in = malloc(BUF);
	OK(leap_io_begin(r, buf, BUF, LEAP_IO_LONGTERM));
	register_buf(buf, BUF);
	memset(buf, 'A', BUF);
	int *st = malloc(RNP * sizeof(int));
	struct leap_job_options o = { .size = sizeof(o), .status = st };
	ERR(page_leap_opts(r, leap_region_addr(r), RLEN, far, LEAP_RELOCATE, &o, NULL), EBUSY);
	for (size_t i = 0; i < RNP; i++)
		CHECK(st[i] == (i >= 64 && i < 80 ? -EBUSY : far), "status[%zu] = %d", i, st[i]);
	memset(buf, 'B', BUF);
	fixed_write(pfd, buf, BUF, out);
	CHECK(out[0] == 'B' && out[BUF - 1] == 'B', "the write sent '%c', want 'B'", out[0]);
	memset(in, 'C', BUF);
	fixed_read(pfd, buf, BUF, in);
	CHECK(buf[0] == 'C' && buf[BUF - 1] == 'C', "the read did not reach the region");
	/* the recipe: unregister, end, move, declare, register again */
	CHECK(io_uring_unregister_buffers(&ring) == 0, "unregister");
	OK(leap_io_end(r, buf, BUF, LEAP_IO_LONGTERM));
	CHECK(OK(page_leap(r, buf, BUF, far, LEAP_RELOCATE, NULL)) == BUF / PG, "buffer moved");
	if (home != far)
		expect_kernel_node(buf, BUF / PG, far, "the buffer after the recipe");
	OK(leap_io_begin(r, buf, BUF, LEAP_IO_LONGTERM));
	register_buf(buf, BUF);
	memset(buf, 'D', BUF);
	fixed_write(pfd, buf, BUF, out);
	CHECK(out[0] == 'D' && out[BUF - 1] == 'D', "after the recipe the write sent '%c'",
	      out[0]);
	memset(in, 'E', BUF);
	fixed_read(pfd, buf, BUF, in);
	CHECK(buf[0] == 'E' && buf[BUF - 1] == 'E', "after the recipe the read was lost");
	CHECK(io_uring_unregister_buffers(&ring) == 0, "unregister");
	OK(leap_io_end(r, buf, BUF, LEAP_IO_LONGTERM));
	io_uring_queue_exit(&ring);
	check_from(r, 0, 64, 1, "pages before the buffer");
	check_from(r, 80, RNP - 80, 1, "pages after the buffer");
	free(st);
	free(out);
	free(in);
	teardown(&r);
}

/* A stale pin reaches nothing but the page it was taken on: after the buffer's pages
 * moved (undeclared), a kernel write into the old pages shows up in no other page of the
 * region, nor in a second region using the same pool, also after pages move back. */
CASE(stale_pin_confined)
{
	struct leap_region *r = setup(), *r2;
	ring_init();
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	char *buf = pg(r, 64), *in = malloc(BUF);
	register_buf(buf, BUF); /* pins the pages that hold tag 1 now */
	/* every page of r moves away and back, twice: old pages are freed and reused */
	for (int k = 0; k < 2; k++) {
		OK(page_leap(r, leap_region_addr(r), RLEN, far, LEAP_RELOCATE, NULL));
		OK(page_leap(r, leap_region_addr(r), RLEN, home, LEAP_RELOCATE, NULL));
	}
	OK(leap_region_new(ctx, RLEN, home, &r2));
	fill_pages(leap_region_addr(r2), RNP, 2);
	OK(page_leap(r2, leap_region_addr(r2), RLEN, far, LEAP_RELOCATE, NULL));
	memset(in, 'M', BUF);
	fixed_read(pfd, buf, BUF, in); /* into the pinned pages, whatever maps them now */
	OK(page_leap(r, leap_region_addr(r), RLEN, far, LEAP_RELOCATE, NULL));
	OK(page_leap(r2, leap_region_addr(r2), RLEN, home, LEAP_RELOCATE, NULL));
	check_from(r, 0, 64, 1, "pages before the pinned ones");
	check_from(r, 80, RNP - 80, 1, "pages after the pinned ones");
	check_from(r2, 0, RNP, 2, "the other region");
	io_uring_queue_exit(&ring);
	leap_region_destroy(&r2);
	free(in);
	teardown(&r);
}

/* ------------------------------------------------------------------ O_DIRECT */

#define DBS (64 * 1024)		 /* bytes per I/O */
#define DFILE ((size_t)16 << 20) /* the file */
#define SLOTS 32		 /* buffers in the region: the first 2 MiB */
#define QD 8

static int dfd = -1;

/* A file that takes O_DIRECT: $LEAP_DIO_DEV (a block device or file of at least DFILE
 * bytes the harness provides, e.g. a virtual disk in the guests), else one in $TMPDIR,
 * /var/tmp or /tmp; or skip. */
static void dio_file(void)
{
	const char *dev = getenv("LEAP_DIO_DEV");
	if (dev && *dev) {
		dfd = open(dev, O_RDWR | O_DIRECT);
		CHECK(dfd >= 0, "open $LEAP_DIO_DEV %s with O_DIRECT: %s", dev, strerror(errno));
		off_t end = lseek(dfd, 0, SEEK_END);
		CHECK(end >= (off_t)DFILE, "$LEAP_DIO_DEV holds %lld bytes, want %zu", (long long)end,
		      DFILE);
		return;
	}
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && dfd < 0; i++) {
		char path[512];
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/t_dio.XXXXXX", dirs[i]);
		int fd = mkstemp(path);
		if (fd < 0)
			continue;
		close(fd);
		dfd = open(path, O_RDWR | O_DIRECT);
		CHECK(dfd >= 0 || errno == EINVAL, "open with O_DIRECT: %s", strerror(errno));
		unlink(path);
	}
	if (dfd < 0)
		skip("no file system here takes O_DIRECT ($TMPDIR, /var/tmp, /tmp)");
	CHECK(ftruncate(dfd, (off_t)DFILE) == 0, "ftruncate");
}

/* The pattern of file byte range [off, off+DBS) at version v. */
static void pattern(char *p, size_t off, uint64_t v)
{
	uint64_t *w = (uint64_t *)(void *)p;
	for (size_t i = 0; i < DBS / 8; i++)
		w[i] = ((off / 8 + i) * UINT64_C(0x9E3779B97F4A7C15)) ^ (v << 48);
}

static int pattern_ok(const char *p, size_t off, uint64_t v)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	for (size_t i = 0; i < DBS / 8; i++)
		if (w[i] != (((off / 8 + i) * UINT64_C(0x9E3779B97F4A7C15)) ^ (v << 48)))
			return 0;
	return 1;
}

/* Moves the buffer area again and again, a fixed number of times, while the I/O runs. */
struct mover {
	struct leap_region *r;
	int moves;
	uint64_t seed;
	atomic_int done;
};

static void *mover_main(void *a)
{
	struct mover *m = a;
	for (int i = 0; i < m->moves; i++) {
		size_t n = 1 + rnd(&m->seed) % 64, at = rnd(&m->seed) % (SLOTS * DBS / PG - n + 1);
		int node = nodes[rnd(&m->seed) % (uint64_t)nn];
		OK(page_leap(m->r, pg(m->r, at), n * PG, node, LEAP_RELOCATE, NULL));
	}
	atomic_store(&m->done, 1);
	return NULL;
}

/*
 * Rounds of QD O_DIRECT requests through io_uring into (reads) or out of (writes)
 * distinct region buffers, until the mover is done (and at least 50 rounds). declare:
 * each buffer is declared from before it is filled or submitted until its completion
 * was reaped. Reads are checked against the file's pattern at once; the file after
 * writes, at the end. Returns the requests made.
 */
static long dio_rounds(struct leap_region *r, int write, int declare, uint64_t *ver)
{
	struct mover m = { .r = r, .moves = 200, .seed = test_seed() };
	uint64_t s = m.seed ^ 0x55;
	pthread_t mt;
	CHECK(pthread_create(&mt, NULL, mover_main, &m) == 0, "pthread_create");
	long ios = 0;
	for (int round = 0; round < 50 || !atomic_load(&m.done); round++) {
		int slot[QD];
		size_t off[QD];
		uint64_t first = rnd(&s);
		for (int k = 0; k < QD; k++) {
			/* distinct slots and distinct file blocks within a round */
			slot[k] = (int)((first + (uint64_t)k) % SLOTS);
			off[k] = ((first >> 8) + (uint64_t)k * 5) % (DFILE / DBS) * DBS;
			char *b = pg(r, (size_t)slot[k] * (DBS / PG));
			if (declare)
				OK(leap_io_begin(r, b, DBS, 0));
			struct io_uring_sqe *q = io_uring_get_sqe(&ring);
			if (write) {
				ver[off[k] / DBS]++;
				pattern(b, off[k], ver[off[k] / DBS]);
				io_uring_prep_write(q, dfd, b, DBS, (off_t)off[k]);
			} else {
				io_uring_prep_read(q, dfd, b, DBS, (off_t)off[k]);
			}
		}
		ring_run(QD, DBS);
		for (int k = 0; k < QD; k++) {
			char *b = pg(r, (size_t)slot[k] * (DBS / PG));
			if (!write)
				CHECK(pattern_ok(b, off[k], ver[off[k] / DBS]),
				      "round %d: the direct read of file offset %zu into slot %d "
				      "did not reach the region", round, off[k], slot[k]);
			if (declare)
				OK(leap_io_end(r, b, DBS, 0));
		}
		ios += QD;
	}
	pthread_join(mt, NULL);
	return ios;
}

/* The file holds every block at its version (read back with O_DIRECT into plain memory). */
static void check_file(const uint64_t *ver)
{
	char *b;
	CHECK(posix_memalign((void **)&b, PG, DBS) == 0, "posix_memalign");
	for (size_t off = 0; off < DFILE; off += DBS) {
		CHECK(pread(dfd, b, DBS, (off_t)off) == DBS, "pread");
		CHECK(pattern_ok(b, off, ver[off / DBS]), "file block at %zu is not version %llu",
		      off, (unsigned long long)ver[off / DBS]);
	}
	free(b);
}

/* The file at version 1, written from plain memory. */
static uint64_t *dio_prepare(void)
{
	uint64_t *ver = calloc(DFILE / DBS, sizeof(*ver));
	char *b;
	CHECK(ver && posix_memalign((void **)&b, PG, DBS) == 0, "out of memory");
	for (size_t off = 0; off < DFILE; off += DBS) {
		ver[off / DBS] = 1;
		pattern(b, off, 1);
		CHECK(pwrite(dfd, b, DBS, (off_t)off) == DBS, "pwrite");
	}
	free(b);
	return ver;
}

CASE(odirect_declared)
{
	dio_file();
	struct leap_region *r = setup();
	ring_init();
	uint64_t *ver = dio_prepare();
	long reads = dio_rounds(r, 0, 1, ver);
	long writes = dio_rounds(r, 1, 1, ver);
	check_file(ver);
	long reads2 = dio_rounds(r, 0, 1, ver); /* what the writes left, read back */
	struct leap_region_stats st = rstats(r);
	say("note: O_DIRECT with declarations: %ld reads, %ld writes, %ld reads while the buffers "
	    "moved %llu pages; moves waited %llu times", reads, writes, reads2,
	    (unsigned long long)st.pages_moved, (unsigned long long)st.io_waits);
	CHECK(st.pages_moved > 0, "nothing moved");
	io_uring_queue_exit(&ring);
	free(ver);
	close(dfd);
	teardown(&r);
}

/* Direct writes need no declaration: the old page keeps what the write sends. */
CASE(odirect_writes_undeclared)
{
	dio_file();
	struct leap_region *r = setup();
	ring_init();
	uint64_t *ver = dio_prepare();
	long writes = dio_rounds(r, 1, 0, ver);
	check_file(ver);
	say("note: O_DIRECT writes without declarations: %ld writes while the buffers moved %llu "
	    "pages", writes, (unsigned long long)rstats(r).pages_moved);
	io_uring_queue_exit(&ring);
	free(ver);
	close(dfd);
	teardown(&r);
}

int main(void)
{
	t_name = "t_dio";
	return RUN_CASES(bad_input, skip_busy, longterm_skipped, waits_for_io, longterm_during_wait,
			 busy_on_target_passed, begin_waits_for_overlapping_extent_only,
			 waiting_job_frees_its_worker, wait_ends_on_cancel_and_destroy, evacuate, undeclared_registered_detaches,
			 registered_declared_and_recipe, stale_pin_confined, odirect_declared,
			 odirect_writes_undeclared);
}
