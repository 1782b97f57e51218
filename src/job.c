/*
 * job.c - asynchronous page_leap(): jobs, their extent loop and the granularity
 * controller.
 *
 * A job moves its range one extent at a time on a worker thread of the target's node.
 * Between extents it drops the region lock, so leap_node_of(), stats and other jobs on
 * disjoint ranges of the region make progress, and a cancel takes effect at the next
 * extent boundary (every page is then whole, on exactly one node).
 *
 * Granularity: the extent starts at LEAP_GRAN_START pages (clamped to the job's bounds)
 * and doubles after an extent no writer touched, up to the maximum. An extent that made
 * writers wait is judged by how long it took, which is how long they waited: longer than
 * the stall target halves it (quarters it when several waited), shorter than half the
 * target doubles it, in between keeps it. Writers wait for at most one extent, so this
 * bounds their stalls near the target while keeping extents as large as the target
 * allows: writers that touch every extent whatever its size (scattered writes) would
 * otherwise drive it down to one page and the job to a system call per page.
 * Shrinking must pay: an extent's time is a fixed cost (system calls, TLB flushes, the
 * writers' own faults) plus its copy, and below the size where the fixed cost dominates,
 * a smaller extent takes nearly as long, so writers would wait about as long, more often,
 * and the job would crawl. The job remembers the last time of each size class (powers of
 * two) and does not shrink to a size known to take more than 60% of the current one;
 * there, or at the minimum, it tries the double size instead unless that is known to take
 * more than 1/0.6 times as long. Where the stall target is below the fixed cost (slow or
 * emulated machines, busy CPUs) the extent thus settles where most of its time is copying,
 * instead of collapsing to one page. An extent
 * that found no room (-ENOMEM, nothing moved) is retried at half the size before its
 * pages are reported as failed.
 *
 * Lifetime: a job has two references, the caller's handle and the running job; the last
 * one frees it. It is listed on its region (region->jobs, under region->lock) from
 * submission until it stops touching the region.
 * Threads: job->lock guards state, result and the progress snapshot; the extent loop's
 * own variables belong to the worker thread.
 */
#include "internal.h"

#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAP_GRAN_START 16			      /* pages: first extent size */
#define LEAP_GRAN_MAX_DEFAULT ((4u << 20) / LEAP_PAGE_SIZE) /* pages */
#define LEAP_GRAN_LIMIT ((1u << 30) / LEAP_PAGE_SIZE)	      /* pages: largest allowed */
#define LEAP_STALL_TARGET_DEFAULT 250000u		      /* ns */

struct leap_job {
	struct leap_region *r;
	uint64_t a, b; /* pages of the region */
	int target;
	bool relocate, protect;
	uint64_t gmin, gmax; /* pages */
	uint64_t stall_target; /* ns */
	int *status;
	void (*done)(struct leap_job *, void *);
	void *arg;
	atomic_int refs;
	atomic_bool cancel;
	struct leap_job *next; /* on the region's list */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when the job ends */
	bool finished;
	int64_t result;
	struct leap_progress prog;
	struct leap__hist stalls;
	/* worker thread only: time (ns) of the last whole extent moved, per log2(pages) */
	uint64_t tlast[64];
	uint64_t t0;
};

static void job_unref(struct leap_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

/* Record what one extent did, for progress and the per-page status. pre: r->lock held */
static void account(struct leap_job *j, uint64_t pos, uint64_t n, int rc,
		    const struct leap__extent_out *o, uint64_t gran, const struct leap__hist *h)
{
	struct leap_region *r = j->r;
	uint64_t failed = 0;
	if (j->status)
		for (uint64_t q = pos; q < o->fail_from; q++)
			j->status[q - j->a] = j->target;
	/* from fail_from on, a page failed if it was to move: it is not on the target, or it
	 * was to be relocated (then it is still on its old pages) */
	for (uint64_t p = o->fail_from; p < pos + n;) {
		const struct leap__run *x = &r->runs[leap__region_find_run(r, p)];
		uint64_t end = x->pg + x->n < pos + n ? x->pg + x->n : pos + n;
		bool ok = x->node == j->target && !j->relocate;
		if (!ok)
			failed += end - p;
		if (j->status)
			for (uint64_t q = p; q < end; q++)
				j->status[q - j->a] = ok ? j->target : rc;
		p = end;
	}
	pthread_mutex_lock(&j->lock);
	struct leap_progress *pr = &j->prog;
	pr->pages_done += n;
	pr->pages_moved += o->moved;
	pr->pages_failed += failed;
	pr->bytes_copied += o->moved * LEAP_PG;
	pr->extents++;
	pr->write_faults += o->faults;
	pr->granularity = gran * LEAP_PG;
	if (!pr->granularity_min_seen || gran * LEAP_PG < pr->granularity_min_seen)
		pr->granularity_min_seen = gran * LEAP_PG;
	if (gran * LEAP_PG > pr->granularity_max_seen)
		pr->granularity_max_seen = gran * LEAP_PG;
	if (rc < 0 && !pr->error)
		pr->error = rc;
	leap__hist_merge(&j->stalls, h);
	pthread_mutex_unlock(&j->lock);
}

static unsigned size_class(uint64_t pages)
{
	return 63u - (unsigned)__builtin_clzll(pages);
}

/* Time of the last extent of size g's class, 0 if none yet. */
static uint64_t last_ns(const struct leap_job *j, uint64_t g)
{
	return g ? j->tlast[size_class(g)] : 0;
}

/* The next extent size: grow when nobody waited; when writers waited, shrink if they
 * waited longer than the target and shrinking is known (or not yet known not) to help;
 * grow if they waited far shorter. */
static uint64_t adapt(const struct leap_job *j, uint64_t g, uint32_t faults, uint64_t ns)
{
	if (faults == 0 || ns < j->stall_target / 2) {
		g *= 2;
	} else if (ns > j->stall_target) {
		uint64_t s = g / (faults > 2 ? 4 : 2), ts, t2;
		if (s < j->gmin)
			s = j->gmin;
		if (s < g && (!(ts = last_ns(j, s)) || ts * 10 <= ns * 6))
			g = s; /* saves writers at least 40%, or not measured yet */
		else if (!(t2 = last_ns(j, 2 * g)) || ns * 10 > t2 * 6)
			g *= 2; /* fixed cost dominates here: twice the pages for < 1.67x the wait */
	}
	if (g < j->gmin)
		g = j->gmin;
	if (g > j->gmax)
		g = j->gmax;
	return g;
}

/* Take the job off its region's list and tell a waiting destroy. pre: r->lock held */
static void unlist(struct leap_job *j)
{
	struct leap_region *r = j->r;
	for (struct leap_job **pp = &r->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pthread_cond_broadcast(&r->jobs_cond);
}

/* The job, on its worker thread. */
static void job_run(void *arg)
{
	struct leap_job *j = arg;
	struct leap_region *r = j->r;
	pthread_mutex_lock(&j->lock);
	j->prog.state = LEAP_JOB_RUNNING;
	j->prog.worker_cpu = sched_getcpu();
	j->t0 = leap__sys_now_ns();
	pthread_mutex_unlock(&j->lock);
	uint64_t g = LEAP_GRAN_START < j->gmin ? j->gmin : LEAP_GRAN_START;
	g = g > j->gmax ? j->gmax : g;
	bool cancelled = false;
	for (uint64_t pos = j->a; pos < j->b;) {
		if (atomic_load(&j->cancel)) {
			cancelled = true;
			break;
		}
		uint64_t n = j->b - pos < g ? j->b - pos : g;
		struct leap__extent_out o = { 0 };
		struct leap__hist h;
		h.count = 0;
		pthread_mutex_lock(&r->lock);
		uint64_t t0 = leap__sys_now_ns();
		int rc = leap__extent_move(r, pos, pos + n, j->target, j->relocate, j->protect, &o, &h);
		uint64_t ns = leap__sys_now_ns() - t0;
		if (rc == -ENOMEM && o.moved == 0 && n > j->gmin) {
			/* the destination needs room before the source pages are freed: a smaller
			 * extent needs less, so a nearly full pool still drains into itself */
			pthread_mutex_unlock(&r->lock);
			g = n / 2 < j->gmin ? j->gmin : n / 2;
			pthread_mutex_lock(&j->lock);
			j->prog.retries++;
			pthread_mutex_unlock(&j->lock);
			continue;
		}
		account(j, pos, n, rc, &o, g, &h);
		pthread_mutex_unlock(&r->lock);
		/* let the API callers waiting now in (a submission must not wait for the
		 * whole job), but not later ones (a caller in a loop must not stall the job);
		 * bounded, since a caller that cannot get a CPU must not stall it either */
		unsigned long long waiting = atomic_load(&r->lock_arrivals);
		for (int spins = 0; atomic_load(&r->lock_served) < waiting && spins < 1000; spins++)
			sched_yield();
		if (rc >= 0 && o.moved == n)
			j->tlast[size_class(n)] = ns;
		g = adapt(j, g, o.faults, ns);
		pos += n;
	}
	pthread_mutex_lock(&r->lock);
	if (j->prog.pages_moved)
		r->st.leaps++;
	r->st.last_worker_cpu = j->prog.worker_cpu;
	r->st.last_worker_node = j->prog.worker_cpu >= 0 ? numa_node_of_cpu(j->prog.worker_cpu) : -1;
	if (j->stalls.max_ns > r->st.stall_max_ns)
		r->st.stall_max_ns = j->stalls.max_ns;
	unlist(j); /* from here on the job does not touch the region */
	pthread_mutex_unlock(&r->lock);

	pthread_mutex_lock(&j->lock);
	struct leap_progress *pr = &j->prog;
	pr->elapsed_ns = leap__sys_now_ns() - j->t0;
	if (cancelled) {
		pr->state = LEAP_JOB_CANCELLED;
		j->result = -ECANCELED;
	} else if (pr->pages_failed) {
		pr->state = LEAP_JOB_FAILED;
		j->result = pr->error ? pr->error : -EIO;
	} else {
		pr->state = LEAP_JOB_DONE;
		j->result = (int64_t)pr->pages_moved;
	}
	pthread_mutex_unlock(&j->lock);
	if (j->done)
		j->done(j, j->arg);
	pthread_mutex_lock(&j->lock);
	j->finished = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	job_unref(j);
}

/* Validate the call; fill the job's fixed fields. */
static int job_init(struct leap_job *j, struct leap_region *r, void *addr, size_t len, int node,
		    unsigned flags, const struct leap_job_options *o)
{
	if ((flags & ~(LEAP_RELOCATE | LEAP_NO_WRITERS)) || len == 0 ||
	    (uintptr_t)addr % LEAP_PAGE_SIZE || len % LEAP_PAGE_SIZE)
		return -EINVAL;
	uint64_t gmin = 1, gmax = LEAP_GRAN_MAX_DEFAULT, target = LEAP_STALL_TARGET_DEFAULT;
	if (o) {
		if (o->size < sizeof(*o) || o->granularity_min % LEAP_PAGE_SIZE ||
		    o->granularity_max % LEAP_PAGE_SIZE)
			return -EINVAL;
		gmin = o->granularity_min ? o->granularity_min / LEAP_PG : 1;
		gmax = o->granularity_max ? o->granularity_max / LEAP_PG
					  : (gmin > LEAP_GRAN_MAX_DEFAULT ? gmin : LEAP_GRAN_MAX_DEFAULT);
		if (gmin > gmax || gmax > LEAP_GRAN_LIMIT)
			return -EINVAL;
		if (o->stall_target_ns)
			target = o->stall_target_ns;
	}
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->base, size = r->npages * LEAP_PG;
	if (a < base || a - base > size || len > size - (a - base))
		return -EFAULT;
	if (!leap__topo_valid_mem_node(r->ctx->topo, node))
		return -ENODEV;
	if (!(flags & LEAP_NO_WRITERS) && !r->wp)
		return -EOPNOTSUPP;
	j->r = r;
	j->a = (a - base) / LEAP_PG;
	j->b = j->a + len / LEAP_PG;
	j->target = node;
	j->relocate = flags & LEAP_RELOCATE;
	j->protect = !(flags & LEAP_NO_WRITERS);
	j->gmin = gmin;
	j->gmax = gmax;
	j->stall_target = target;
	if (o) {
		j->status = o->status;
		j->done = o->done;
		j->arg = o->arg;
	}
	j->prog.pages_total = j->b - j->a;
	j->prog.worker_cpu = -1;
	return 0;
}

LEAP_API int page_leap_opts(struct leap_region *r, void *addr, size_t len, int node,
			    unsigned flags, const struct leap_job_options *opts,
			    struct leap_job **out)
{
	if (!r)
		return -EINVAL;
	struct leap_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	int rc = job_init(j, r, addr, len, node, flags, opts);
	struct leap__worker *w = NULL;
	if (!rc)
		rc = leap__ctx_worker(r->ctx, node, &w);
	if (rc) {
		free(j);
		return rc;
	}
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	atomic_init(&j->refs, 2);
	leap__region_lock(r);
	for (struct leap_job *o = r->jobs; o; o = o->next)
		if (j->a < o->b && o->a < j->b)
			rc = -EBUSY;
	if (!rc) {
		j->next = r->jobs;
		r->jobs = j;
		rc = leap__worker_submit(w, job_run, j);
		if (rc)
			unlist(j);
	}
	pthread_mutex_unlock(&r->lock);
	if (rc) {
		pthread_cond_destroy(&j->cond);
		pthread_mutex_destroy(&j->lock);
		free(j);
		return rc;
	}
	if (out) {
		*out = j;
		return 0;
	}
	/* synchronous */
	int64_t res = leap_job_wait(j, -1);
	leap_job_destroy(&j);
	return res > INT32_MAX ? INT32_MAX : (int)res;
}

LEAP_API int page_leap(struct leap_region *r, void *addr, size_t len, int node, unsigned flags,
		       struct leap_job **job)
{
	return page_leap_opts(r, addr, len, node, flags, NULL, job);
}

LEAP_API int64_t leap_job_wait(struct leap_job *j, int64_t timeout_ns)
{
	if (!j)
		return -EINVAL;
	struct timespec dl;
	if (timeout_ns >= 0) {
		clock_gettime(CLOCK_REALTIME, &dl);
		uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)timeout_ns;
		dl.tv_sec += (time_t)(ns / 1000000000u);
		dl.tv_nsec = (long)(ns % 1000000000u);
	}
	pthread_mutex_lock(&j->lock);
	int rc = 0;
	while (!j->finished && rc == 0)
		rc = timeout_ns >= 0 ? pthread_cond_timedwait(&j->cond, &j->lock, &dl)
				     : pthread_cond_wait(&j->cond, &j->lock);
	int64_t res = j->finished ? j->result : -ETIMEDOUT;
	pthread_mutex_unlock(&j->lock);
	return res;
}

LEAP_API int leap_job_progress(struct leap_job *j, struct leap_progress *p)
{
	if (!j || !p || p->size < sizeof(*p))
		return -EINVAL;
	pthread_mutex_lock(&j->lock);
	size_t size = p->size;
	*p = j->prog;
	p->size = size;
	p->stall_p50_ns = leap__hist_quantile(&j->stalls, 0.5);
	p->stall_p99_ns = leap__hist_quantile(&j->stalls, 0.99);
	p->stall_max_ns = j->stalls.max_ns;
	p->stall_total_ns = j->stalls.sum_ns;
	if (p->state == LEAP_JOB_RUNNING)
		p->elapsed_ns = leap__sys_now_ns() - j->t0;
	pthread_mutex_unlock(&j->lock);
	return 0;
}

LEAP_API int leap_job_cancel(struct leap_job *j)
{
	if (!j)
		return -EINVAL;
	atomic_store(&j->cancel, true);
	return 0;
}

LEAP_API void leap_job_destroy(struct leap_job **job)
{
	if (!job || !*job)
		return;
	struct leap_job *j = *job;
	atomic_store(&j->cancel, true);
	leap_job_wait(j, -1);
	job_unref(j);
	*job = NULL;
}

void leap__jobs_cancel_wait(struct leap_region *r)
{
	for (struct leap_job *j = r->jobs; j; j = j->next)
		atomic_store(&j->cancel, true);
	while (r->jobs)
		pthread_cond_wait(&r->jobs_cond, &r->lock);
}
