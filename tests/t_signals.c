/*
 * t_signals: a program that takes SIGALRM every millisecond, with a handler installed
 * WITHOUT SA_RESTART, while its regions migrate. A blocking system call interrupted by
 * such a signal returns EINTR; the library must retry its own and never hand -EINTR to
 * its caller, and the program's signals must never run on the library's threads (a
 * process-directed signal goes to any thread that does not block it).
 *
 * Named cases:
 *   thread_timers    a 1 ms timer per thread (timer_create, SIGEV_THREAD_ID) on the
 *                    oracle's writers and on two waiter threads that move the halves of
 *                    the region back and forth (LEAP_RELOCATE on one node, between nodes
 *                    where there are several), wait with and without a timeout, and
 *                    create, move and destroy scratch regions of their own (the pool grows
 *                    by fallocate in the signalled thread): every job moves every page,
 *                    no write lost (oracle), placement exact (kernel), every thread took
 *                    at least SIG_MIN signals (counted: the test cannot pass vacuously);
 *   process_timer    the same under setitimer(ITIMER_REAL, 1 ms), the main thread blocking
 *                    SIGALRM: no signal ever runs on a thread the test did not start (a
 *                    library worker or listener);
 *   blocking_calls   a job held at a gate (hook.h) while a signalled thread sits in
 *                    leap_job_wait(), leap_region_destroy(), leap_io_begin() over the
 *                    extent in flight, and leap_job_wait() after leap_job_cancel(), until it
 *                    took SIG_MIN signals inside the call: each returns what it would
 *                    without signals (the pages, cancelled, 0), a writer exact meanwhile.
 * Exit 0 pass, 1 fail, 77 skip (no userfaultfd write protection).
 */
#include "oracle.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define SIG_MIN 100   /* signals each signalled thread must take (>= 100 ms of 1 ms ticks) */
#define SIG_HELD 50   /* signals a thread must take while blocked in one library call */
#define MAX_MINE 16   /* threads the test signals */
#define HANG_S 120    /* a count that never grows fails here instead of hanging (no timing) */
#define RMB 8	      /* MiB: the region the writers write */
#define SCRATCH_MB 8  /* MiB: the waiters' scratch regions (a pool growth each) */

static struct leap_ctx *ctx;
static int nodes[64], nn;

/* ------------------------------------------------------------ counting signals */

/* The test's own threads, by tid, with the signals each took; any other thread that
 * runs the handler is the library's (or libc's): counted in sig_foreign. */
static struct {
	atomic_int tid;
	atomic_ulong n;
} mine[MAX_MINE];
static atomic_int nmine;
static atomic_ulong sig_foreign;

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	int tid = (int)syscall(SYS_gettid);
	int k = atomic_load(&nmine);
	for (int i = 0; i < k; i++)
		if (atomic_load(&mine[i].tid) == tid) {
			atomic_fetch_add(&mine[i].n, 1);
			errno = saved;
			return;
		}
	atomic_fetch_add(&sig_foreign, 1);
	errno = saved;
}

/* The handler, without SA_RESTART: an interrupted system call returns EINTR. */
static void install_handler(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
}

/* Register thread tid as the test's; returns its slot. */
static int add_mine(int tid)
{
	int i = atomic_fetch_add(&nmine, 1);
	CHECK(i < MAX_MINE, "too many threads");
	atomic_store(&mine[i].tid, tid);
	return i;
}

static unsigned long sigs_of(int slot)
{
	return atomic_load(&mine[slot].n);
}

static unsigned long total_sigs(void)
{
	unsigned long t = 0;
	for (int i = 0; i < atomic_load(&nmine); i++)
		t += sigs_of(i);
	return t;
}

/* A 1 ms timer whose SIGALRM goes to thread tid only. */
static timer_t thread_timer(int tid)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGALRM;
	sev.sigev_notify_thread_id = tid;
	timer_t t;
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create: %s", strerror(errno));
	struct itimerspec its = { { 0, 1000000 }, { 0, 1000000 } };
	CHECK(timer_settime(t, 0, &its, NULL) == 0, "timer_settime: %s", strerror(errno));
	return t;
}

/* Wait until slot took n more signals than base (counts, not time; HANG_S only turns a
 * signal that never comes into a failure). */
static void await_sigs(int slot, unsigned long base, unsigned long n, const char *what)
{
	double t0 = now();
	while (sigs_of(slot) < base + n) {
		CHECK(now() - t0 < HANG_S, "%s: %lu signals in %d s, want %lu", what,
		      sigs_of(slot) - base, HANG_S, n);
		sched_yield();
	}
}

static void block_alarm(int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	pthread_sigmask(how, &s, NULL);
}

/* The threads of this process now. */
static int list_tids(int *out, int max)
{
	DIR *d = opendir("/proc/self/task");
	CHECK(d != NULL, "/proc/self/task: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] != '.')
			out[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

/* Start the oracle's writers on r and register them as the test's (the threads that
 * appeared meanwhile: nothing else starts threads then). Returns their first slot. */
static int start_writers(struct oracle *o, int nw, struct leap_region *r)
{
	int before[256], after[256];
	int nb = list_tids(before, 256);
	oracle_start_region(o, nw, r);
	int na = list_tids(after, 256), first = -1, found = 0;
	for (int i = 0; i < na; i++) {
		int old = 0;
		for (int k = 0; k < nb; k++)
			old |= after[i] == before[k];
		if (!old) {
			int s = add_mine(after[i]);
			first = first < 0 ? s : first;
			found++;
		}
	}
	CHECK(found == nw, "found %d new threads for %d writers", found, nw);
	return first;
}

static void setup(void)
{
	struct leap_ctx_options o = { .size = sizeof(o), .workers_per_node = 2 };
	OK(leap_ctx_new(&o, &ctx));
	nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	CHECK(nn >= 1, "no memory node");
	/* a first move on every node starts the library's threads (workers, the fault
	 * listener) and tells whether this process may write-protect */
	struct leap_region *r;
	OK(leap_region_new(ctx, 16 * PG, nodes[0], &r));
	for (int i = 0; i < nn; i++) {
		long rc = page_leap(r, leap_region_addr(r), 16 * PG, nodes[i], LEAP_RELOCATE, NULL);
		if (rc == -EOPNOTSUPP)
			skip("no userfaultfd write protection for this process");
		CHECK(rc == 16, "warm-up move to node %d: %ld", nodes[i], rc);
	}
	leap_region_destroy(&r);
	install_handler();
}

/* The target of move k: the next node in turn, or the same node relocated. */
static int target_of(int k)
{
	return nodes[(size_t)k % (size_t)nn];
}

/* ------------------------------------------------------------ waiters */

struct waiter {
	int id, slot;
	bool own_timer;
	struct leap_region *r;
	size_t off, len; /* its half of r */
	int last;	 /* the node its half went to last */
	int moves, scratch;
	pthread_t th;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	int tid = (int)syscall(SYS_gettid);
	w->slot = add_mine(tid);
	block_alarm(SIG_UNBLOCK); /* main blocked it before starting us */
	timer_t t = { 0 };
	if (w->own_timer)
		t = thread_timer(tid);
	size_t np = w->len / PG;
	char *base = (char *)leap_region_addr(w->r) + w->off;
	/* per-thread timer: until this thread took SIG_MIN; a process timer: until the
	 * test's threads took 4 * SIG_MIN together */
	for (int k = 1; w->moves < 6 || (w->own_timer ? sigs_of(w->slot) < SIG_MIN
						      : total_sigs() < 4 * SIG_MIN);
	     k++) {
		int to = target_of(k);
		unsigned fl = nn == 1 ? LEAP_RELOCATE : 0;
		struct leap_job *j;
		OK(page_leap(w->r, base, w->len, to, fl, &j));
		/* a deadline wait (the timed condition wait) and an endless one in turn */
		int64_t res = k % 2 ? leap_job_wait(j, (int64_t)HANG_S * 1000000000) : leap_job_wait(j, -1);
		CHECK(res == (int64_t)np, "waiter %d move %d: leap_job_wait returned %" PRId64
					  " (%s), want %zu pages",
		      w->id, k, res, res < 0 ? leap_strerror((int)res) : "pages", np);
		leap_job_destroy(&j);
		w->last = to;
		w->moves++;
		/* a region of its own: its pool grows (fallocate) on this signalled thread,
		 * and a synchronous move waits on it */
		struct leap_region *s;
		OK(leap_region_new(ctx, (size_t)SCRATCH_MB << 20, target_of(k + 1), &s));
		size_t snp = ((size_t)SCRATCH_MB << 20) / PG;
		fill_pages(leap_region_addr(s), snp, (uint64_t)(w->id * 1000 + k));
		long m = page_leap(s, leap_region_addr(s), (size_t)SCRATCH_MB << 20, target_of(k),
				   LEAP_RELOCATE, NULL);
		CHECK(m == (long)snp, "waiter %d: synchronous move of its scratch region: %ld (%s)",
		      w->id, m, m < 0 ? leap_strerror((int)m) : "pages");
		check_pages(leap_region_addr(s), snp, (uint64_t)(w->id * 1000 + k), "scratch");
		expect_kernel_node(leap_region_addr(s), snp, target_of(k), "scratch region");
		leap_region_destroy(&s);
		w->scratch++;
	}
	if (w->own_timer)
		timer_delete(t);
	return NULL;
}

/* Writers and two waiters on one region; per-thread timers or one process timer. */
static void run_load(bool per_thread)
{
	setup();
	struct leap_region *r;
	size_t len = (size_t)RMB << 20, np = len / PG;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	struct oracle o;
	int ws = start_writers(&o, 2, r);
	timer_t wt[2];
	if (per_thread)
		for (int i = 0; i < 2; i++)
			wt[i] = thread_timer(atomic_load(&mine[ws + i].tid));
	/* from here on the main thread takes no SIGALRM: a process timer's signals go to the
	 * writers, the waiters, or (the bug this checks for) a library thread */
	block_alarm(SIG_BLOCK);
	struct itimerval itv = { { 0, 1000 }, { 0, 1000 } };
	if (!per_thread)
		CHECK(setitimer(ITIMER_REAL, &itv, NULL) == 0, "setitimer: %s", strerror(errno));
	struct waiter w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = (struct waiter){ .id = i, .own_timer = per_thread, .r = r, .off = i * len / 2,
					.len = len / 2, .last = nodes[0] };
		CHECK(pthread_create(&w[i].th, NULL, waiter_main, &w[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].th, NULL);
	unsigned long total = 0;
	if (per_thread) {
		for (int i = 0; i < 2; i++)
			await_sigs(ws + i, 0, SIG_MIN, "a writer");
	} else {
		/* which thread takes a process signal is the kernel's choice: the waiters
		 * ran until the test's threads took 4 * SIG_MIN together */
		CHECK(total_sigs() >= 4 * SIG_MIN, "%lu process signals", total_sigs());
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	if (per_thread)
		for (int i = 0; i < 2; i++)
			timer_delete(wt[i]);
	uint64_t writes = oracle_stop(&o);
	oracle_check(&o, "after the moves");
	oracle_free(&o);
	total = total_sigs();
	for (int i = 0; i < 2; i++) {
		size_t on = 0;
		int *kn = placement(r, "after the moves");
		for (size_t k = w[i].off / PG; k < (w[i].off + w[i].len) / PG; k++)
			on += kn[k] == w[i].last;
		free(kn);
		CHECK(on == np / 2, "half %d: %zu of %zu pages on node %d", i, on, np / 2, w[i].last);
	}
	CHECK(atomic_load(&sig_foreign) == 0,
	      "%lu SIGALRM ran on threads the test did not start (the library's)",
	      atomic_load(&sig_foreign));
	say("measured %s: %lu signals taken (writers %lu %lu, waiters %lu %lu), %d + %d moves, "
	    "%d + %d scratch regions, %" PRIu64 " writes exact",
	    per_thread ? "per-thread timers" : "process timer", total, sigs_of(ws), sigs_of(ws + 1),
	    sigs_of(w[0].slot), sigs_of(w[1].slot), w[0].moves, w[1].moves, w[0].scratch,
	    w[1].scratch, writes);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

CASE(thread_timers)
{
	run_load(true);
}

CASE(process_timer)
{
	run_load(false);
}

/* ------------------------------------------------------------ one blocking call at a time */

/* A signalled thread that makes one library call: it registers, arms its own timer, and
 * calls fn. The case waits until it sleeps inside the call (blocked_call) and took
 * SIG_HELD signals there, then releases what it waits for. */
struct sigcall {
	void (*fn)(void *);
	void *arg;
	int slot;
	atomic_int ready;
};
static void sigcall_main(void *a)
{
	struct sigcall *c = a;
	int tid = (int)syscall(SYS_gettid);
	c->slot = add_mine(tid);
	block_alarm(SIG_UNBLOCK); /* the main thread blocks it */
	timer_t t = thread_timer(tid);
	atomic_store(&c->ready, 1);
	c->fn(c->arg);
	timer_delete(t);
}
/* Run fn on a signalled thread; returns once it blocks in the call and took SIG_HELD
 * signals while blocked. */
static void signalled_call(struct blocked_call *b, struct sigcall *c, void (*fn)(void *),
			   void *arg, const char *what)
{
	*c = (struct sigcall){ .fn = fn, .arg = arg };
	blocked_call(b, sigcall_main, c);
	CHECK(atomic_load(&c->ready) && !atomic_load(&b->done), "%s returned while it should wait",
	      what);
	await_sigs(c->slot, sigs_of(c->slot), SIG_HELD, what);
	CHECK(!atomic_load(&b->done), "%s returned before it was released (signals: %lu)", what,
	      sigs_of(c->slot));
}

static struct leap_job *bj;
static int64_t bres;
static void call_wait(void *a)
{
	(void)a;
	bres = leap_job_wait(bj, -1);
}
static void call_destroy(void *a)
{
	leap_region_destroy(a);
}
static struct leap_region *br;
static int bio_rc;
static void call_io_begin(void *a)
{
	(void)a;
	bio_rc = leap_io_begin(br, (char *)leap_region_addr(br) + 20 * PG, 4 * PG, 0);
}
static void call_cancel_wait(void *a)
{
	(void)a;
	OK(leap_job_cancel(bj));
	bres = leap_job_wait(bj, (int64_t)HANG_S * 1000000000);
}


CASE(blocking_calls)
{
	setup();
	size_t np = 256, len = np * PG;
	unsigned fl = LEAP_RELOCATE;
	struct leap_job_options fixed16 = { .size = sizeof(fixed16), .granularity_min = 16 * PG,
					  .granularity_max = 16 * PG };
	struct leap_region *r;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	struct oracle o;
	int ws = start_writers(&o, 1, r);
	timer_t wt = thread_timer(atomic_load(&mine[ws].tid));
	block_alarm(SIG_BLOCK);
	struct blocked_call b;
	struct sigcall c;

	/* leap_job_wait() on a job held at its 4th extent */
	gate_arm(3, r);
	OK(page_leap_opts(r, leap_region_addr(r), len, target_of(1), fl, &fixed16, &bj));
	gate_wait();
	signalled_call(&b, &c, call_wait, NULL, "leap_job_wait");
	gate_release();
	blocked_join(&b);
	CHECK(bres == (int64_t)np, "leap_job_wait under signals returned %" PRId64 " (%s), want %zu",
	      bres, bres < 0 ? leap_strerror((int)bres) : "pages", np);
	leap_job_destroy(&bj);
	expect_all_on(r, target_of(1), "after the waited move");

	/* leap_job_cancel() then leap_job_wait() with a deadline, the job held at extent 2 */
	gate_arm(2, r);
	OK(page_leap_opts(r, leap_region_addr(r), len, target_of(2), fl, &fixed16, &bj));
	gate_wait();
	signalled_call(&b, &c, call_cancel_wait, NULL, "leap_job_wait after leap_job_cancel");
	gate_release();
	blocked_join(&b);
	CHECK(bres == -ECANCELED, "cancelled job: leap_job_wait returned %" PRId64 " (%s)", bres,
	      bres < 0 ? leap_strerror((int)bres) : "pages");
	CHECK(prog(bj).pages_moved == 32, "cancelled at extent 2: %" PRIu64 " pages moved, want 32",
	      prog(bj).pages_moved);
	leap_job_destroy(&bj);
	free(placement(r, "after the cancel"));

	/* leap_io_begin() over the extent in flight waits for it */
	br = r;
	ine.at = 16 * PG;
	leap__test_in_extent_hook = in_extent_hook;
	OK(page_leap_opts(r, leap_region_addr(r), 64 * PG, target_of(3), fl, &fixed16, &bj));
	pthread_mutex_lock(&ine.m);
	while (!ine.held)
		pthread_cond_wait(&ine.cv, &ine.m);
	pthread_mutex_unlock(&ine.m);
	signalled_call(&b, &c, call_io_begin, NULL, "leap_io_begin");
	pthread_mutex_lock(&ine.m);
	ine.released = 1;
	pthread_cond_broadcast(&ine.cv);
	pthread_mutex_unlock(&ine.m);
	blocked_join(&b);
	CHECK(bio_rc == 0, "leap_io_begin under signals returned %d (%s)", bio_rc,
	      leap_strerror(bio_rc));
	CHECK(leap_job_wait(bj, -1) == 64, "the move past the declaration did not finish");
	leap_job_destroy(&bj);
	OK(leap_io_end(r, (char *)leap_region_addr(r) + 20 * PG, 4 * PG, 0));
	leap__test_in_extent_hook = NULL;

	/* stop the writer before the region goes: then leap_region_destroy() while a job is
	 * held (the destroy cancels it and waits for it) */
	timer_delete(wt);
	await_sigs(ws, 0, SIG_MIN, "the writer");
	uint64_t writes = oracle_stop(&o);
	oracle_check(&o, "after the blocking calls");
	oracle_free(&o);
	free(placement(r, "before the destroy"));
	gate_arm(3, r);
	OK(page_leap_opts(r, leap_region_addr(r), len, target_of(4), fl, &fixed16, &bj));
	gate_wait();
	signalled_call(&b, &c, call_destroy, &r, "leap_region_destroy");
	gate_release();
	blocked_join(&b);
	CHECK(r == NULL, "the destroy did not clear the handle");
	int64_t dres = leap_job_wait(bj, -1);
	CHECK(dres == -ECANCELED, "job of the destroyed region ended %" PRId64 " (%s), want "
				  "-ECANCELED",
	      dres, dres < 0 ? leap_strerror((int)dres) : "pages");
	leap_job_destroy(&bj);
	CHECK(atomic_load(&sig_foreign) == 0, "%lu SIGALRM ran on the library's threads",
	      atomic_load(&sig_foreign));
	say("measured blocking calls: %lu signals on the writer, %" PRIu64 " writes exact",
	    sigs_of(ws), writes);
	leap_ctx_destroy(&ctx);
}

int main(void)
{
	t_name = "t_signals";
	return RUN_CASES(thread_timers, process_timer, blocking_calls);
}
