/*
 * probe.c - the measurements themselves: core-to-core ping-pong, dependent pointer
 * chases, parallel reads. Unprivileged: threads pinned with sched_setaffinity, cache
 * lines flushed with clflush (an unprivileged instruction), time from CLOCK_MONOTONIC.
 *
 * Threads: the measuring thread (leap_measure_new's caller) and one prober thread that
 * it owns; they meet on a mutex for each command and on one cache line while probing.
 * Every wait on the cache line has a deadline, so a CPU that never gets scheduled (a
 * vCPU the host starves) bounds the probe's time instead of hanging it.
 */
#include "measure/measure.h"
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define LEAP_LINE 64
/* The longest one core-to-core sample may take (ns): its trips are cut short after. */
#define LEAP_C2C_SAMPLE_NS 20000000ull
/* Spins between looks at the clock, and before a spinning thread yields its CPU. */
#define LEAP_SPIN_CLOCK 256
#define LEAP_SPIN_YIELD 65536
/* Trips between clock reads in a core-to-core sample (for a sample cut short). */
#define LEAP_C2C_MARK 64
/* How long the prober and its owner spin for the next command or answer before sleeping. */
#define LEAP_HANDOFF_SPIN_NS 1000000ull

const struct leap__measure_model *leap__test_measure_model;

int leap__pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct leap__prober {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int cmd_cpu;	 /* CPU to pong from; -1: exit */
	_Atomic uint64_t seq;  /* commands given (written under lock) */
	_Atomic uint64_t done; /* commands finished (written under lock) */
	int pin_rc;
	_Alignas(LEAP_LINE) _Atomic uint64_t line; /* the cache line passed back and forth */
	_Alignas(LEAP_LINE) _Atomic int ready;	   /* prober pinned and spinning */
	_Atomic int stop;			   /* the sample's end (or its deadline) */
};

/* Spin until *v == want or stop is set; yields now and then so a starved vCPU runs. */
static int spin_until(_Atomic uint64_t *v, uint64_t want, _Atomic int *stop, uint64_t deadline)
{
	for (unsigned long i = 1;; i++) {
		if (atomic_load_explicit(v, memory_order_acquire) == want)
			return 0;
		if (i % LEAP_SPIN_CLOCK == 0) {
			if (stop && atomic_load_explicit(stop, memory_order_relaxed))
				return -EINTR;
			if (deadline && leap__sys_now_ns() > deadline)
				return -ETIMEDOUT;
			if (i % LEAP_SPIN_YIELD == 0)
				sched_yield();
		}
	}
}

/*
 * Wait until *v is no longer `old`: spin a short while (the next command or answer
 * usually comes at once, and a sleep and wake would cost more than a sample's trips),
 * then sleep on the condition variable. Writers change *v under the lock and broadcast.
 */
static void await(_Atomic uint64_t *v, uint64_t old, struct leap__prober *p)
{
	uint64_t until = leap__sys_now_ns() + LEAP_HANDOFF_SPIN_NS;
	for (unsigned i = 1; atomic_load(v) == old; i++) {
		if (i % LEAP_SPIN_CLOCK == 0 && leap__sys_now_ns() > until) {
			pthread_mutex_lock(&p->lock);
			while (atomic_load(v) == old)
				pthread_cond_wait(&p->cond, &p->lock);
			pthread_mutex_unlock(&p->lock);
			return;
		}
	}
}

static void *prober_main(void *arg)
{
	struct leap__prober *p = arg;
	uint64_t seen = 0;
	int pinned = -1; /* pinning again to the same CPU would cost a system call a sample */
	pthread_mutex_lock(&p->lock);
	for (;;) {
		pthread_mutex_unlock(&p->lock);
		await(&p->seq, seen, p);
		pthread_mutex_lock(&p->lock);
		seen = p->seq;
		int cpu = p->cmd_cpu;
		pthread_mutex_unlock(&p->lock);
		if (cpu < 0)
			return NULL;
		int rc = cpu == pinned ? 0 : leap__pin(cpu);
		pinned = rc ? -1 : cpu;
		atomic_store(&p->ready, rc ? -1 : 1);
		/* pong every odd value with the next even one until the sample stops */
		for (uint64_t v = 1; !rc; v += 2) {
			if (spin_until(&p->line, v, &p->stop, 0))
				break;
			atomic_store_explicit(&p->line, v + 1, memory_order_release);
		}
		pthread_mutex_lock(&p->lock);
		p->pin_rc = rc;
		p->done = seen;
		pthread_cond_broadcast(&p->cond);
	}
}

int leap__prober_new(struct leap__prober **out)
{
	struct leap__prober *p = aligned_alloc(LEAP_LINE, sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	int rc = -leap__sys_thread_create(&p->thread, NULL, prober_main, p);
	if (rc) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p);
		return -rc;
	}
	*out = p;
	return 0;
}

void leap__prober_free(struct leap__prober *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->cmd_cpu = -1;
	p->seq++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

int leap__probe_c2c(struct leap__prober *p, int a, int b, unsigned trips, unsigned sample,
		    double *ns)
{
	const struct leap__measure_model *mod = leap__test_measure_model;
	if (mod) {
		*ns = mod->c2c(mod->arg, a, b, sample);
		return 0;
	}
	int rc = leap__pin(a);
	if (rc)
		return rc;
	atomic_store(&p->line, 0);
	atomic_store(&p->ready, 0);
	atomic_store(&p->stop, 0);
	pthread_mutex_lock(&p->lock);
	p->cmd_cpu = b;
	uint64_t my = ++p->seq;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	uint64_t deadline = leap__sys_now_ns() + LEAP_C2C_SAMPLE_NS;
	while (!atomic_load(&p->ready) && leap__sys_now_ns() < deadline)
		sched_yield();
	/* a sample cut short at the deadline counts the trips up to the last mark taken (a
	 * clock read every LEAP_C2C_MARK trips), not the stall that cut it */
	uint64_t t0 = 0, t1 = 0, i = 0, timed = 0;
	if (atomic_load(&p->ready) == 1) {
		/* a few trips to bring both threads and the line in, then the timed ones */
		for (; i < 16 + (uint64_t)trips; i++) {
			if (i == 16)
				t0 = t1 = leap__sys_now_ns();
			atomic_store_explicit(&p->line, 2 * i + 1, memory_order_release);
			if (spin_until(&p->line, 2 * i + 2, NULL, deadline))
				break;
			if (i >= 16 && (i + 1 - 16) % LEAP_C2C_MARK == 0) {
				t1 = leap__sys_now_ns();
				timed = i + 1 - 16;
			}
		}
		if (i == 16 + (uint64_t)trips) {
			t1 = leap__sys_now_ns();
			timed = trips;
		}
	}
	atomic_store(&p->stop, 1);
	await(&p->done, my - 1, p);
	pthread_mutex_lock(&p->lock);
	rc = p->pin_rc;
	pthread_mutex_unlock(&p->lock);
	if (rc)
		return rc;
	if (!timed)
		return -ETIMEDOUT; /* the other CPU never answered in time */
	*ns = (double)(t1 - t0) / (double)timed / 2;
	return 0;
}

/* xorshift64*: the chains' shuffles; fixed seeds make a run repeatable. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void shuffle(uint32_t *v, uint64_t n, uint64_t *s)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rnd(s) % i;
		uint32_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/*
 * Every page_step-th page, pages in random order, and in each page `per_page` lines
 * spread over it (at a random offset) in random order: a step misses the caches, and the
 * translation misses only once per page, so the chase measures memory rather than page
 * walks (whose cost, in a VM, depends on how the host maps the page); no stride for a
 * prefetcher to follow.
 */
void *leap__chain_build(char *buf, uint64_t bytes, uint64_t page_step, uint64_t per_page,
			uint64_t seed)
{
	if (page_step < 1)
		page_step = 1;
	uint64_t pages = bytes / LEAP_PAGE_SIZE / page_step, lines_pp = LEAP_PAGE_SIZE / LEAP_LINE;
	if (per_page < 1)
		per_page = 1;
	if (per_page > lines_pp)
		per_page = lines_pp;
	uint64_t stride = lines_pp / per_page, s = seed | 1;
	uint32_t *order = malloc(pages * sizeof(*order)), inner[LEAP_PAGE_SIZE / LEAP_LINE];
	if (!order || pages == 0) {
		free(order);
		return NULL;
	}
	for (uint64_t i = 0; i < pages; i++)
		order[i] = (uint32_t)i;
	shuffle(order, pages, &s);
	void **first = NULL, **prev = NULL;
	for (uint64_t i = 0; i < pages; i++) {
		char *page = buf + (uint64_t)order[i] * page_step * LEAP_PAGE_SIZE;
		uint64_t off = rnd(&s) % stride;
		for (uint64_t k = 0; k < per_page; k++)
			inner[k] = (uint32_t)(k * stride + off);
		shuffle(inner, per_page, &s);
		for (uint64_t k = 0; k < per_page; k++) {
			void **line = (void **)(page + (uint64_t)inner[k] * LEAP_LINE);
			if (prev)
				*prev = line;
			else
				first = line;
			prev = line;
		}
	}
	*prev = first; /* a cycle: the chase may run any number of steps */
	free(order);
	return first;
}

static void flush_line(void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_clflush(p);
#else
	(void)p; /* no unprivileged flush: the chase then measures what the caches leave */
#endif
}

static void fence(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_mfence();
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* The chase's end, kept so the compiler cannot drop the loads. */
static void *volatile chase_sink;

int leap__probe_chase(int cpu, void **pos, uint64_t steps, int flush, double *ns)
{
	int rc = leap__pin(cpu);
	if (rc)
		return rc;
	void **p = *pos;
	if (flush) {
		for (uint64_t i = 0; i < steps; i++) {
			void **next = *p;
			flush_line(p);
			p = next;
		}
		fence();
		p = *pos;
	}
	uint64_t t0 = leap__sys_now_ns();
	for (uint64_t i = 0; i < steps; i++)
		p = *p;
	uint64_t t1 = leap__sys_now_ns();
	chase_sink = p;
	if (!flush) /* the next sample goes on where this one stopped: lines not in cache */
		*pos = p;
	*ns = (double)(t1 - t0) / (double)steps;
	return 0;
}

struct reader {
	pthread_t thread;
	int cpu, rc;
	const uint64_t *from;
	uint64_t words;
	_Atomic int *go; /* 1: read; -1: give up (a reader could not be made) */
	uint64_t t0, t1, sum;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	r->rc = leap__pin(r->cpu);
	while (!atomic_load(r->go))
		sched_yield();
	if (atomic_load(r->go) < 0)
		return NULL;
	r->t0 = leap__sys_now_ns();
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (uint64_t i = 0; i + 4 <= r->words; i += 4) {
		a += r->from[i];
		b += r->from[i + 1];
		c += r->from[i + 2];
		d += r->from[i + 3];
	}
	r->t1 = leap__sys_now_ns();
	r->sum = a + b + c + d;
	return NULL;
}

int leap__probe_read(const int *cpus, int n, const char *buf, uint64_t bytes, double *gbps)
{
	struct reader *r = calloc((size_t)n, sizeof(*r));
	_Atomic int go = 0;
	if (!r)
		return -ENOMEM;
	uint64_t words = bytes / sizeof(uint64_t) / (uint64_t)n / 4 * 4;
	int made = 0, rc = 0;
	/* readers 0 .. n-2 are threads, the caller is the last one */
	for (; made < n; made++) {
		r[made] = (struct reader){ .cpu = cpus[made], .go = &go, .words = words,
					   .from = (const uint64_t *)buf + (uint64_t)made * words };
		if (made < n - 1 && (rc = leap__sys_thread_create(&r[made].thread, NULL, reader_main, &r[made])))
			break;
	}
	atomic_store(&go, rc ? -1 : 1);
	if (!rc)
		reader_main(&r[n - 1]);
	uint64_t t0 = UINT64_MAX, t1 = 0;
	for (int i = 0; i < made && i < n - 1; i++)
		pthread_join(r[i].thread, NULL);
	for (int i = 0; !rc && i < n; i++) {
		rc = r[i].rc;
		t0 = r[i].t0 < t0 ? r[i].t0 : t0;
		t1 = r[i].t1 > t1 ? r[i].t1 : t1;
	}
	if (!rc) {
		chase_sink = (void *)(uintptr_t)r[0].sum;
		*gbps = t1 > t0 ? (double)(words * 8 * (uint64_t)n) / (double)(t1 - t0) : 0;
	}
	free(r);
	return rc;
}
