/*
 * oracle.h - what the job tests share beyond util.h: the "no write lost" oracle (writer
 * threads with exact shadow counts, started behind a barrier), the library-vs-kernel
 * placement check, progress/stats snapshots, and a gate on the library's test seam
 * (hook.h) that holds a job before a chosen extent. Header only; tests that use the gate
 * link the static library (the seam is hidden in the shared one).
 */
#ifndef LEAP_TEST_ORACLE_H
#define LEAP_TEST_ORACLE_H

#include "hook.h"
#include "util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* ------------------------------------------------------------------ snapshots */

static inline struct leap_progress prog(struct leap_job *j)
{
	struct leap_progress p = { .size = sizeof(p) };
	OK(leap_job_progress(j, &p));
	return p;
}

static inline struct leap_region_stats rstats(struct leap_region *r)
{
	struct leap_region_stats s = { .size = sizeof(s) };
	OK(leap_region_stats(r, &s));
	return s;
}

static inline struct leap_pool_stats pstats(struct leap_pool *p)
{
	struct leap_pool_stats s = { .size = sizeof(s) };
	OK(leap_pool_stats(p, &s));
	return s;
}

/* ------------------------------------------------------------------ placement */

/*
 * Where each page of r is per the kernel (move_pages status query); the library
 * (leap_node_of) must agree on every page. Returns the kernel's nodes (free() them).
 */
static inline int *placement(struct leap_region *r, const char *what)
{
	char *p = leap_region_addr(r);
	size_t np = leap_region_length(r) / PG;
	int *kn = malloc(np * sizeof(int));
	CHECK(kn != NULL, "out of memory");
	kernel_nodes(p, np, kn);
	for (size_t k = 0; k < np; k++) {
		int lib = leap_node_of(r, p + k * PG);
		CHECK(kn[k] == lib, "%s: page %zu: kernel says node %d, library %d", what, k, kn[k],
		      lib);
	}
	return kn;
}

/* Library and kernel agree on every page of r; returns how many are on node. */
static inline size_t pages_on(struct leap_region *r, int node, const char *what)
{
	int *kn = placement(r, what);
	size_t np = leap_region_length(r) / PG, on = 0;
	for (size_t k = 0; k < np; k++)
		on += kn[k] == node;
	free(kn);
	return on;
}

/* Library and kernel agree, and every page of r is on node. */
static inline void expect_all_on(struct leap_region *r, int node, const char *what)
{
	int *kn = placement(r, what);
	size_t np = leap_region_length(r) / PG;
	for (size_t k = 0; k < np; k++)
		CHECK(kn[k] == node, "%s: page %zu on node %d, want %d", what, k, kn[k], node);
	free(kn);
}

/* ------------------------------------------------------------------ no write lost */

/*
 * Writer w increments the 64-bit word at byte 64 + 8w of random pages of the areas (only
 * it writes that word; fill_pages() uses the words at multiples of 512 bytes, so the
 * pattern checks still hold) and keeps a private count per page. oracle_start() returns
 * once every writer has written (a start barrier: the writers are running, whatever the
 * scheduler does); oracle_check() after oracle_stop(): every word equals its count.
 */
#define ORACLE_WRITERS 4
#define ORACLE_AREAS 4
struct oracle_area {
	char *p;
	size_t np;
};
struct oracle;
struct oracle_writer {
	struct oracle *o;
	int id;
	uint32_t *shadow[ORACLE_AREAS];
	atomic_uint_least64_t count; /* written by the writer only; read for oracle_more() */
	pthread_t th;
};
struct oracle {
	int nw, na;
	struct oracle_area a[ORACLE_AREAS];
	struct oracle_writer w[ORACLE_WRITERS];
	atomic_int stop;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int started;
};

static inline volatile uint64_t *oracle_word(char *p, size_t page, int id)
{
	return (volatile uint64_t *)(p + page * PG + 64 + 8 * (size_t)id);
}

static inline void *oracle_writer_main(void *arg)
{
	struct oracle_writer *w = arg;
	struct oracle *o = w->o;
	uint64_t s = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->id * 104729 + 1);
	for (uint64_t n = 0; !atomic_load_explicit(&o->stop, memory_order_relaxed); n++) {
		uint64_t x = rnd(&s);
		int i = (int)(x % (uint64_t)o->na);
		size_t k = (size_t)((x >> 8) % o->a[i].np);
		volatile uint64_t *c = oracle_word(o->a[i].p, k, w->id);
		*c = *c + 1;
		w->shadow[i][k]++;
		atomic_store_explicit(&w->count, n + 1, memory_order_release);
		if (n == 0) { /* the start barrier: this writer is running */
			pthread_mutex_lock(&o->lock);
			o->started++;
			pthread_cond_broadcast(&o->cv);
			pthread_mutex_unlock(&o->lock);
		}
	}
	return NULL;
}

/* Start nw writers over the areas; returns after each has written at least once. */
static inline void oracle_start(struct oracle *o, int nw, const struct oracle_area *a, int na)
{
	CHECK(nw >= 1 && nw <= ORACLE_WRITERS && na >= 1 && na <= ORACLE_AREAS,
	      "oracle: %d writers over %d areas", nw, na);
	memset(o, 0, sizeof(*o));
	o->nw = nw;
	o->na = na;
	for (int i = 0; i < na; i++) {
		o->a[i] = a[i];
		for (size_t k = 0; k < a[i].np; k++)
			for (int n = 0; n < nw; n++)
				*oracle_word(a[i].p, k, n) = 0;
	}
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cv, NULL);
	for (int n = 0; n < nw; n++) {
		struct oracle_writer *w = &o->w[n];
		w->o = o;
		w->id = n;
		for (int i = 0; i < na; i++) {
			w->shadow[i] = calloc(a[i].np, sizeof(uint32_t));
			CHECK(w->shadow[i] != NULL, "out of memory");
		}
		CHECK(pthread_create(&w->th, NULL, oracle_writer_main, w) == 0, "pthread_create");
	}
	pthread_mutex_lock(&o->lock);
	while (o->started < nw)
		pthread_cond_wait(&o->cv, &o->lock);
	pthread_mutex_unlock(&o->lock);
}

/* One area: the whole region. */
static inline void oracle_start_region(struct oracle *o, int nw, struct leap_region *r)
{
	struct oracle_area a = { leap_region_addr(r), leap_region_length(r) / PG };
	oracle_start(o, nw, &a, 1);
}

/* Returns once every writer has written n more times (e.g. after a job: writes land
 * on the moved pages too). Counts writes, not time. */
static inline void oracle_more(struct oracle *o, uint64_t n)
{
	uint64_t base[ORACLE_WRITERS];
	for (int i = 0; i < o->nw; i++)
		base[i] = atomic_load_explicit(&o->w[i].count, memory_order_acquire);
	for (int i = 0; i < o->nw; i++)
		while (atomic_load_explicit(&o->w[i].count, memory_order_acquire) < base[i] + n)
			sched_yield();
}

/* Stop and join the writers; returns the writes they made. */
static inline uint64_t oracle_stop(struct oracle *o)
{
	atomic_store(&o->stop, 1);
	uint64_t writes = 0;
	for (int i = 0; i < o->nw; i++) {
		pthread_join(o->w[i].th, NULL);
		writes += atomic_load(&o->w[i].count);
	}
	return writes;
}

/* After oracle_stop(): every word equals its writer's count for that page. */
static inline void oracle_check(struct oracle *o, const char *what)
{
	for (int n = 0; n < o->nw; n++) {
		uint64_t sum = 0;
		for (int i = 0; i < o->na; i++)
			for (size_t k = 0; k < o->a[i].np; k++) {
				uint64_t v = *oracle_word(o->a[i].p, k, n);
				CHECK(v == o->w[n].shadow[i][k],
				      "%s: writer %d area %d page %zu: word %" PRIu64
				      ", %u increments (lost writes)",
				      what, n, i, k, v, o->w[n].shadow[i][k]);
				sum += v;
			}
		uint64_t count = atomic_load(&o->w[n].count);
		CHECK(sum == count, "%s: writer %d: words sum to %" PRIu64 ", %" PRIu64 " writes",
		      what, n, sum, count);
	}
}

static inline void oracle_free(struct oracle *o)
{
	for (int n = 0; n < o->nw; n++)
		for (int i = 0; i < o->na; i++)
			free(o->w[n].shadow[i]);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cv);
}

/* ---------------------------------------------------------- the in-extent gate */

/* Holds the job whose extent starts at byte offset ine.at, under the region's lock, in
 * the middle of its move (hook.h's leap__test_in_extent_hook = in_extent_hook): ine.held
 * says it is held, ine.released lets it go (both under ine.m, signalled on ine.cv). */
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	size_t at;
	int held, released;
} ine = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static inline void in_extent_hook(struct leap_job *j, struct leap_region *r, size_t offset)
{
	(void)j;
	(void)r;
	pthread_mutex_lock(&ine.m);
	if (offset == ine.at && !ine.released) {
		ine.held = 1;
		pthread_cond_broadcast(&ine.cv);
		while (!ine.released)
			pthread_cond_wait(&ine.cv, &ine.m);
	}
	pthread_mutex_unlock(&ine.m);
}

/* ------------------------------------------------------------------ the gate */

/*
 * Holds a job at extent `at` (counted from 0 over the extents of region `region`, or of
 * every region when NULL) through the library's extent hook: that call blocks until
 * gate_release(); other jobs' extents pass. gate_wait() returns once a job is held, so
 * exactly `at` extents of that region have been started (and, for one job walking one
 * region at a time, finished). After the release the job checks its cancel flag before
 * the extent.
 */
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct leap_region *region;
	long at, seen;
	int held, released;
	size_t offset;		 /* of the extent held */
	struct leap_region *held_region; /* the region of the extent held */
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0, NULL };

static void gate_hook(struct leap_job *j, struct leap_region *r, size_t offset)
{
	(void)j;
	pthread_mutex_lock(&gate.m);
	if (!gate.region || r == gate.region) {
		if (gate.seen++ == gate.at && !gate.released) {
			gate.offset = offset;
			gate.held_region = r;
			gate.held++;
			pthread_cond_broadcast(&gate.cv);
			while (!gate.released)
				pthread_cond_wait(&gate.cv, &gate.m);
		}
	}
	pthread_mutex_unlock(&gate.m);
}

static inline void gate_arm(long at, struct leap_region *region)
{
	pthread_mutex_lock(&gate.m);
	gate.region = region;
	gate.at = at;
	gate.seen = gate.held = gate.released = 0;
	gate.offset = 0;
	gate.held_region = NULL;
	pthread_mutex_unlock(&gate.m);
	leap__test_extent_hook = gate_hook;
}

/* Wait until a job is held at the gate; returns the offset of the extent it holds. */
static inline size_t gate_wait(void)
{
	pthread_mutex_lock(&gate.m);
	while (!gate.held)
		pthread_cond_wait(&gate.cv, &gate.m);
	size_t off = gate.offset;
	pthread_mutex_unlock(&gate.m);
	return off;
}

/* Let the held job (and every later extent) go; the hook stays off from now on. */
static inline void gate_release(void)
{
	pthread_mutex_lock(&gate.m);
	gate.released = 1;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.m);
}

/* The region of the extent held (after gate_wait()). */
static inline struct leap_region *gate_region(void)
{
	pthread_mutex_lock(&gate.m);
	struct leap_region *r = gate.held_region;
	pthread_mutex_unlock(&gate.m);
	return r;
}

/* Extents that reached the hook (of the gated region), the held one included. */
static inline long gate_seen(void)
{
	pthread_mutex_lock(&gate.m);
	long n = gate.seen;
	pthread_mutex_unlock(&gate.m);
	return n;
}

/*
 * A thread that calls something which must block (a destroy waiting for a held job):
 * the check "it has not returned" can only pass wrongly, never fail wrongly, so the
 * /proc heuristic below is safe for that direction; the other direction uses finishes().
 * blocked_call() runs fn(arg) on a new thread and returns once that thread sleeps in the
 * kernel (its /proc state is S or D: it waits, having done what comes before the wait).
 * blocked_join() then joins it.
 */
#include <sys/syscall.h>
struct blocked_call {
	void (*fn)(void *);
	void *arg;
	atomic_int tid, done;
	pthread_t th;
};
static inline void *blocked_main(void *a)
{
	struct blocked_call *b = a;
	atomic_store(&b->tid, (int)syscall(SYS_gettid));
	b->fn(b->arg);
	atomic_store(&b->done, 1);
	return NULL;
}
static inline int thread_sleeps(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *e = strrchr(buf, ')');
	return e && (e[2] == 'S' || e[2] == 'D');
}
static inline void blocked_call(struct blocked_call *b, void (*fn)(void *), void *arg)
{
	b->fn = fn;
	b->arg = arg;
	atomic_store(&b->tid, 0);
	atomic_store(&b->done, 0);
	CHECK(pthread_create(&b->th, NULL, blocked_main, b) == 0, "pthread_create");
	while (!atomic_load(&b->tid))
		sched_yield();
	while (!atomic_load(&b->done) && !thread_sleeps(atomic_load(&b->tid)))
		sched_yield();
}
static inline void blocked_join(struct blocked_call *b)
{
	pthread_join(b->th, NULL);
}

/*
 * For a call that must NOT wait for what the test holds (a destroy of a region the held
 * walk has not reached): runs fn(arg) on a thread and returns 1 once it returned. A call
 * that waited for the held job would never return while the test holds it, so the
 * deadline (ORACLE_HANG_S) only turns that hang into a failure (0); it judges no speed.
 */
#define ORACLE_HANG_S 60
static inline int finishes(void (*fn)(void *), void *arg)
{
	struct blocked_call b = { .fn = fn, .arg = arg };
	CHECK(pthread_create(&b.th, NULL, blocked_main, &b) == 0, "pthread_create");
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl); /* pthread_timedjoin_np's clock */
	dl.tv_sec += ORACLE_HANG_S;
	return pthread_timedjoin_np(b.th, NULL, &dl) == 0;
}

#endif
