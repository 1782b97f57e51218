/*
 * affinity.c - the affinity monitor: which coherence domain each watched thread runs
 * in, and, re-probed, which domain each CPU belongs to now (a hypervisor may place a
 * vCPU on another socket while the guest runs).
 *
 * A check reads each watched thread's last CPU from /proc (one small read per thread)
 * and maps it to a domain; a re-probe passes a cache line between each probed CPU and
 * one CPU of every domain, and moves the CPU to the domain it is now nearest to when it
 * is clearly (LEAP_C2C_SPLIT) nearer to it than to its own. Both raise events.
 *
 * Threads: the monitor thread (unless no_thread) and any caller of leap_affinity_poll();
 * a watched thread's /proc stat file stays open while it is watched (a look is one read);
 * checks are serialized by a->poll_lock, which is held while the callback runs (so the
 * callback must not call leap_affinity_poll or _stop). a->lock guards the watched list
 * and is never held across a check's reads or the callback.
 */
#include "measure/measure.h"
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAP_AFFINITY_PERIOD_MS 1000
/* Round trips per CPU pair in a re-probe: fewer than a measurement, it only decides. */
#define LEAP_REPROBE_TRIPS 200
#define LEAP_REPROBE_SAMPLES 3

struct watched {
	int tid, fd, cpu, cluster; /* fd: its /proc stat file, open while watched */
};

struct leap_affinity {
	struct leap_affinity_opts o;
	pthread_mutex_t lock; /* w, nw, capw, gone, ngone */
	struct watched *w;
	int nw, capw;
	int *gone, ngone; /* fds of threads unwatched, closed by the next check or stop: a
			     check in progress may still read them, and a closed number
			     could meanwhile name another file */
	pthread_mutex_t poll_lock; /* map, probed CPUs, prober, sample */
	_Atomic int *map;	   /* [CPU_SETSIZE]: CPU -> domain, -1 unknown (written by
				      re-probes, read by watch without poll_lock) */
	int ncpus, nclusters, *cpus; /* probed CPUs (from the measurement) */
	struct leap__prober *prober;
	unsigned sample;
	pthread_t thread;
	bool has_thread;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;
	_Atomic uint64_t checks, thread_events, vcpu_events, cpu_ns;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int domain_of(const struct leap_affinity *a, int cpu)
{
	return cpu >= 0 && cpu < CPU_SETSIZE ? atomic_load_explicit(&a->map[cpu], memory_order_relaxed) : -1;
}

static void raise_event(struct leap_affinity *a, int kind, int tid, int cpu, int from, int to)
{
	atomic_fetch_add(kind == LEAP_AFFINITY_THREAD ? &a->thread_events : &a->vcpu_events, 1);
	struct leap_affinity_event ev = { .size = sizeof(ev), .kind = kind, .tid = tid, .cpu = cpu,
					  .from_cluster = from, .to_cluster = to };
	if (a->o.fn)
		a->o.fn(&ev, a->o.arg);
}

/* The first probed CPU of domain k other than cpu, or -1. */
static int rep_of(const struct leap_affinity *a, int k, int cpu)
{
	for (int i = 0; i < a->ncpus; i++)
		if (a->cpus[i] != cpu && domain_of(a, a->cpus[i]) == k)
			return a->cpus[i];
	return -1;
}

/* Re-probe every probed CPU against one CPU of each domain. */
static int reprobe(struct leap_affinity *a)
{
	int events = 0, rc = 0;
	double *lat = calloc((size_t)a->nclusters, sizeof(double)), v[LEAP_REPROBE_SAMPLES];
	if (!lat)
		return -ENOMEM;
	if (!a->prober && !leap__test_measure_model)
		rc = leap__prober_new(&a->prober);
	cpu_set_t mine;
	if (!rc)
		rc = -pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine);
	if (rc) {
		free(lat);
		return rc;
	}
	for (int i = 0; !rc && i < a->ncpus; i++) {
		int cpu = a->cpus[i], now = domain_of(a, cpu), best = -1;
		for (int k = 0; !rc && k < a->nclusters; k++) {
			int rep = rep_of(a, k, cpu), got = 0;
			lat[k] = -1;
			for (int s = 0; rep >= 0 && s < LEAP_REPROBE_SAMPLES; s++) {
				int r = leap__probe_c2c(a->prober, cpu, rep, LEAP_REPROBE_TRIPS,
							a->sample++, &v[got]);
				if (!r)
					got++;
				else if (r == -ENOMEM)
					rc = r;
				/* else: not answered in time, or a CPU this thread may no longer
				 * run on (offline, outside the cpuset): no sample, no move */
			}
			if (got)
				lat[k] = leap__median(v, got);
			if (lat[k] >= 0 && (best < 0 || lat[k] < lat[best]))
				best = k;
		}
		/* move only when measured clearly nearer elsewhere than home: a CPU alone in its
		 * domain, or whose home did not answer, has no home figure and stays */
		if (!rc && best >= 0 && best != now && now >= 0 && lat[now] >= 0 &&
		    lat[now] >= LEAP_C2C_SPLIT * lat[best]) {
			atomic_store_explicit(&a->map[cpu], best, memory_order_relaxed);
			raise_event(a, LEAP_AFFINITY_VCPU, 0, cpu, now, best);
			events++;
		}
	}
	pthread_setaffinity_np(pthread_self(), sizeof(mine), &mine);
	free(lat);
	return rc ? rc : events;
}

static int check_threads(struct leap_affinity *a)
{
	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < a->ngone; i++) /* no check reads them now (poll_lock) */
		leap__sys_close(a->gone[i]);
	a->ngone = 0;
	int n = a->nw, events = 0;
	struct watched *snap = n ? malloc((size_t)n * sizeof(*snap)) : NULL;
	if (n && !snap) {
		pthread_mutex_unlock(&a->lock);
		return -ENOMEM;
	}
	if (n)
		memcpy(snap, a->w, (size_t)n * sizeof(*snap));
	pthread_mutex_unlock(&a->lock);
	for (int i = 0; i < n; i++) {
		int cpu = leap__sys_task_cpu(snap[i].fd);
		if (cpu < 0)
			continue; /* exited: unwatch is the owner's business */
		int d = domain_of(a, cpu);
		if (d != snap[i].cluster) {
			raise_event(a, LEAP_AFFINITY_THREAD, snap[i].tid, cpu, snap[i].cluster, d);
			events++;
		}
		snap[i].cpu = cpu;
		snap[i].cluster = d;
	}
	/* write back what was seen, for threads still watched */
	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < a->nw; j++)
			if (a->w[j].tid == snap[i].tid)
				a->w[j] = snap[i];
	pthread_mutex_unlock(&a->lock);
	free(snap);
	return events;
}

LEAP_API int leap_affinity_poll(struct leap_affinity *a, int do_reprobe)
{
	if (!a)
		return -EINVAL;
	if (do_reprobe && !a->ncpus)
		return -ENODATA;
	pthread_mutex_lock(&a->poll_lock);
	uint64_t t0 = thread_cpu_ns();
	/* the threads are checked whatever the re-probe's fate */
	int events = 0, rp = do_reprobe ? reprobe(a) : 0, rc = check_threads(a);
	if (rp > 0)
		events += rp;
	if (rc >= 0)
		events += rc;
	if (rp < 0)
		rc = rp;
	atomic_fetch_add(&a->checks, 1);
	atomic_fetch_add(&a->cpu_ns, thread_cpu_ns() - t0);
	pthread_mutex_unlock(&a->poll_lock);
	return rc < 0 ? rc : events;
}

static void *monitor_main(void *arg)
{
	struct leap_affinity *a = arg;
	uint64_t period = (uint64_t)a->o.period_ms * 1000000u;
	for (unsigned n = 1;; n++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + period;
		ts.tv_sec = (time_t)(at / 1000000000u);
		ts.tv_nsec = (long)(at % 1000000000u);
		pthread_mutex_lock(&a->stop_lock);
		while (!a->stop && pthread_cond_timedwait(&a->stop_cond, &a->stop_lock, &ts) == 0)
			;
		bool stop = a->stop;
		pthread_mutex_unlock(&a->stop_lock);
		if (stop)
			return NULL;
		leap_affinity_poll(a, a->o.reprobe_every && a->ncpus && n % a->o.reprobe_every == 0);
	}
}

LEAP_API int leap_affinity_start(const struct leap_topo *topo, const struct leap_measure *m,
				 const struct leap_affinity_opts *opts, struct leap_affinity **out)
{
	struct leap_affinity_opts o = { .size = sizeof(o) };
	int err = 0;
	opts = leap__opts_in(&o, sizeof(o), opts, &err);
	if (err)
		return err;
	const int *cpus = NULL, *cluster = NULL;
	int ncpus = 0, nclusters = 0;
	if (!out || (!topo && !m) || (m && leap__measure_clusters(m, &cpus, &cluster, &ncpus, &nclusters)))
		return -EINVAL;
	if (o.reprobe_every && !m)
		return -EINVAL;
	o.period_ms = o.period_ms ? o.period_ms : LEAP_AFFINITY_PERIOD_MS;
	struct leap_affinity *a = calloc(1, sizeof(*a));
	_Atomic int *map = malloc(CPU_SETSIZE * sizeof(*map));
	int *pc = calloc((size_t)ncpus + 1, sizeof(int));
	if (!a || !map || !pc) {
		free(a);
		free(map);
		free(pc);
		return -ENOMEM;
	}
	a->o = o;
	a->map = map;
	a->cpus = pc;
	for (int c = 0; c < CPU_SETSIZE; c++)
		atomic_init(&map[c], -1);
	if (m) {
		a->ncpus = ncpus;
		a->nclusters = nclusters;
		for (int i = 0; i < ncpus; i++) {
			pc[i] = cpus[i];
			if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE)
				atomic_init(&map[cpus[i]], cluster[i]);
		}
	} else {
		for (int n = 0; n < topo->count; n++)
			for (int i = 0; i < topo->ncpus[n]; i++)
				if (topo->cpus[n][i] < CPU_SETSIZE)
					atomic_init(&map[topo->cpus[n][i]], n);
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->poll_lock, NULL);
	pthread_mutex_init(&a->stop_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!o.no_thread) {
		int rc = -leap__sys_thread_create(&a->thread, NULL, monitor_main, a);
		if (rc) {
			a->has_thread = false;
			leap_affinity_stop(&a);
			return rc == EAGAIN ? -EAGAIN : -rc;
		}
		a->has_thread = true;
	}
	*out = a;
	return 0;
}

LEAP_API int leap_affinity_watch(struct leap_affinity *a, int tid)
{
	if (!a || tid < 0)
		return -EINVAL;
	if (tid == 0)
		tid = leap__sys_gettid();
	int fd = leap__sys_task_open(tid);
	if (fd < 0)
		return fd;
	int cpu = leap__sys_task_cpu(fd);
	if (cpu < 0) {
		leap__sys_close(fd);
		return cpu;
	}
	pthread_mutex_lock(&a->lock);
	int rc = 0;
	for (int i = 0; i < a->nw; i++)
		if (a->w[i].tid == tid)
			rc = -EEXIST;
	if (!rc && a->nw == a->capw) {
		int cap = a->capw ? 2 * a->capw : 8;
		struct watched *w = realloc(a->w, (size_t)cap * sizeof(*w));
		if (w) {
			a->w = w;
			a->capw = cap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc)
		a->w[a->nw++] = (struct watched){ .tid = tid, .fd = fd, .cpu = cpu,
						  .cluster = domain_of(a, cpu) };
	pthread_mutex_unlock(&a->lock);
	if (rc)
		leap__sys_close(fd);
	return rc;
}

LEAP_API int leap_affinity_unwatch(struct leap_affinity *a, int tid)
{
	if (!a || tid < 0)
		return -EINVAL;
	if (tid == 0)
		tid = leap__sys_gettid();
	int rc = -ENOENT;
	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < a->nw; i++)
		if (a->w[i].tid == tid) {
			int *g = realloc(a->gone, (size_t)(a->ngone + 1) * sizeof(*g));
			if (!g) {
				rc = -ENOMEM;
				break;
			}
			a->gone = g;
			a->gone[a->ngone++] = a->w[i].fd;
			a->w[i] = a->w[--a->nw];
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

LEAP_API int leap_affinity_stats(const struct leap_affinity *a, struct leap_affinity_stats *out)
{
	if (!a || !out)
		return -EINVAL;
	struct leap_affinity *w = (struct leap_affinity *)a; /* the lock only */
	struct leap_affinity_stats s = { .size = sizeof(s), .checks = atomic_load(&a->checks),
					 .thread_events = atomic_load(&a->thread_events),
					 .vcpu_events = atomic_load(&a->vcpu_events),
					 .cpu_ns = atomic_load(&a->cpu_ns) };
	pthread_mutex_lock(&w->lock);
	s.watched = a->nw;
	pthread_mutex_unlock(&w->lock);
	return leap__struct_out(out, out->size, &s, sizeof(s));
}

LEAP_API void leap_affinity_stop(struct leap_affinity **ap)
{
	if (!ap || !*ap)
		return;
	struct leap_affinity *a = *ap;
	if (a->has_thread) {
		pthread_mutex_lock(&a->stop_lock);
		a->stop = true;
		pthread_cond_broadcast(&a->stop_cond);
		pthread_mutex_unlock(&a->stop_lock);
		pthread_join(a->thread, NULL);
	}
	leap__prober_free(a->prober);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->poll_lock);
	pthread_mutex_destroy(&a->stop_lock);
	pthread_cond_destroy(&a->stop_cond);
	for (int i = 0; i < a->nw; i++)
		leap__sys_close(a->w[i].fd);
	for (int i = 0; i < a->ngone; i++)
		leap__sys_close(a->gone[i]);
	free(a->gone);
	free(a->w);
	free(a->map);
	free(a->cpus);
	free(a);
	*ap = NULL;
}
