/*
 * job.c - asynchronous page_leap(): jobs, their extent loop and the granularity
 * controller.
 *
 * A job moves its range one extent at a time on a worker thread of the target's node.
 * Between extents it drops the region lock, so leap_node_of(), stats and other jobs on
 * disjoint ranges of the region make progress, and a cancel takes effect at the next
 * extent boundary (every page is then whole, on exactly one node).
 *
 * Granularity: each extent's size comes from the job's controller (gran.c), fed with
 * how long the extent took and how many writers waited on it. An extent that found no
 * room (-ENOMEM, nothing moved) is retried smaller before its pages count as failed.
 *
 * Huge pages: in a huge-page region the extent is a whole number of huge pages (the
 * minimum granularity is one huge page), so the controller works in units of huge
 * pages. A THP region's range that cuts through a huge page is first rounded per cut
 * huge page (job_init): the whole huge page moves along, or only the range's pages move
 * (the huge page is split: the moved pages land in small pages, the rest stay in the
 * old huge folio, mapped by small entries). The cost rule: moving a whole 2 MiB huge
 * page costs about as much as moving a few dozen small pages one by one (an extent's
 * fixed cost plus per-page page-table work, against one copy and one entry of 2 MiB;
 * t_huge and pageleap bench's page_leap_2m rows measure both), and a split also costs
 * the huge page's TLB reach for good, so the whole huge page moves when at least
 * LEAP_HUGE_WHOLE_MIN_PAGES (64) of its 512 pages are in the range. An extent never crosses a huge page boundary part-way.
 *
 * Coordinating jobs (leap__job_spawn: the walkers of coord/) run a function on their
 * own thread that submits ordinary jobs, its children, and folds their counters into
 * its own. A child waits for its range (lifetime.c's claims) where a user's job would
 * be refused, and a cancel of the parent reaches it, waiting or running.
 *
 * Queued jobs: a job waits in its worker's queue until a thread of the worker takes it
 * (every job of the node's worker runs on workers_per_node threads, in submission
 * order). A cancel (or its region's destroy) of a job still in the queue takes it off
 * and ends it at once, on the cancelling thread, instead of after the jobs ahead of it.
 *
 * Lifetime: a job has two references, the caller's handle and the running job; the last
 * one frees it. It holds a claim on its range of the region (lifetime.c, under
 * region->lock) from submission until it stops touching the region; a destroy of the
 * region cancels it through the claim and waits for the claim to go.
 * Threads: job->lock guards state, result and the progress snapshot; the extent loop's
 * own variables belong to the worker thread.
 */
#include "core/core.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAP_GRAN_MAX_DEFAULT ((4u << 20) / LEAP_PAGE_SIZE) /* pages */
#define LEAP_GRAN_LIMIT ((1u << 30) / LEAP_PAGE_SIZE)	      /* pages: largest allowed */
#define LEAP_STALL_TARGET_DEFAULT 250000u		      /* ns */

/* Test seam (not exported from the shared library; tests link the static one): called on
 * the job's thread before each extent, with the extent's first byte offset in the
 * region, so a test can hold a job at a known point instead of racing it. */
void (*leap__test_extent_hook)(struct leap_job *j, struct leap_region *r, size_t offset);
/* Test seam: called under r->lock once a job parked to wait for declared device I/O to
 * end (io.c), so a test knows the job waits. */
void (*leap__test_io_wait_hook)(struct leap_region *r);
/* Test seam: called under r->lock once an extent is recorded in flight (io.c), before it
 * moves, so a test can hold a job in the middle of an extent. */
void (*leap__test_in_extent_hook)(struct leap_job *j, struct leap_region *r, size_t offset);

struct leap_job {
	struct leap_region *r;
	uint64_t a, b;	 /* pages of the region */
	uint64_t sa, sb; /* the range asked for (status[] covers it); a THP huge page cut
			    by it may widen [a, b) */
	struct leap__move mv;
	struct leap__gran gran; /* worker thread only, after init */
	int *status;
	void (*done)(struct leap_job *, void *);
	void *arg;
	void (*fn)(struct leap_job *); /* coordinating jobs: the function run */
	void *fn_arg;
	struct leap_job *child;	       /* coordinating jobs: the job in flight (under lock) */
	atomic_int refs;
	atomic_bool cancel;
	struct leap__claim claim; /* its range on the region, while it may touch it */
	bool io_waiting;	  /* under lock: parked for declared device I/O (io.c) */
	bool queued;		  /* under lock: in its worker's queue or parked, on no thread */
	/* where the extent loop stands, kept while the job is parked (worker thread only) */
	bool started;
	uint64_t pos, g;
	struct leap__parked park;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when the job ends */
	bool finished;
	int64_t result;
	struct leap_progress prog;
	struct leap__hist stalls;
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

/*
 * The per-page status of [pos, end) after an extent: pages before fail_from moved; from
 * there on a page failed (status rc) if it was to move: it is not in the target, or it
 * was to be relocated (then it is still on its old pages). Returns the pages that failed.
 * pre: r->lock held
 */
static uint64_t mark(struct leap_job *j, uint64_t pos, uint64_t fail_from, uint64_t end, int rc)
{
	struct leap_region *r = j->r;
	uint64_t failed = 0;
	int node = leap__slot_node(r, j->mv.target);
	if (j->status)
		for (uint64_t q = pos; q < fail_from; q++)
			if (q >= j->sa && q < j->sb)
				j->status[q - j->sa] = node;
	for (uint64_t p = fail_from; p < end;) {
		const struct leap__run *x = &r->runs[leap__region_find_run(r, p)];
		uint64_t e = x->pg + x->n < end ? x->pg + x->n : end;
		bool ok = !leap__moves(&j->mv, x->slot, x->bank) && !j->mv.relocate;
		if (!ok)
			failed += e - p;
		if (j->status)
			for (uint64_t q = p; q < e; q++)
				if (q >= j->sa && q < j->sb)
					j->status[q - j->sa] = ok ? node : rc;
		p = e;
	}
	return failed;
}

/* Record what one extent did, for progress and the per-page status. pre: r->lock held */
static void account(struct leap_job *j, uint64_t pos, uint64_t n, int rc,
		    const struct leap__extent_out *o, uint64_t gran, const struct leap__hist *h)
{
	uint64_t failed = mark(j, pos, o->fail_from, pos + n, rc);
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

/*
 * The job is over: its state and result from its counters, the completion callback,
 * then the waiters. A cancelled job is CANCELLED; one with failed pages (or, for a
 * coordinating job, any error: a child that could not start) FAILED; else DONE.
 */
static void job_end(struct leap_job *j, bool cancelled, bool error_fails)
{
	pthread_mutex_lock(&j->lock);
	struct leap_progress *pr = &j->prog;
	pr->elapsed_ns = j->started || j->fn ? leap__sys_now_ns() - j->t0 : 0; /* never ran: 0 */
	if (cancelled) {
		pr->state = LEAP_JOB_CANCELLED;
		j->result = -ECANCELED;
	} else if (pr->pages_failed || (error_fails && pr->error)) {
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
}

/* Pages [pos, end) are declared busy and stay where they are: those that were to move
 * failed with -EBUSY. pre: r->lock held */
static void account_busy(struct leap_job *j, uint64_t pos, uint64_t end)
{
	uint64_t failed = mark(j, pos, pos, end, -EBUSY);
	j->r->st.io_skipped += failed;
	pthread_mutex_lock(&j->lock);
	j->prog.pages_done += end - pos;
	j->prog.pages_failed += failed;
	j->prog.io_skipped += failed;
	if (failed && !j->prog.error)
		j->prog.error = -EBUSY;
	pthread_mutex_unlock(&j->lock);
}

/*
 * Park the job until page pos is no longer declared busy, or it is cancelled (io.c); the
 * worker's thread goes on with other jobs meanwhile, and job_run() is queued again to go
 * on from pos. Returns false when the page needs no wait any more: go on now. The job
 * keeps its claim while parked. pre: r->lock held
 */
static bool park(struct leap_job *j, uint64_t pos)
{
	struct leap_region *r = j->r;
	pthread_mutex_lock(&j->lock);
	j->io_waiting = true; /* leap_job_cancel() kicks the region's parked jobs */
	j->queued = true;     /* once queued again, a cancel may take it off the queue */
	pthread_mutex_unlock(&j->lock);
	j->park.pos = pos;
	j->park.cancel = &j->cancel;
	bool parked = leap__io_park(r, &j->park);
	/* queued again meanwhile, the job still waits for r->lock before it goes on */
	pthread_mutex_lock(&j->lock);
	if (parked)
		j->prog.io_waits++;
	else
		j->io_waiting = j->queued = false;
	pthread_mutex_unlock(&j->lock);
	if (parked) {
		r->st.io_waits++;
		if (leap__test_io_wait_hook)
			leap__test_io_wait_hook(r);
	}
	return parked;
}

/* Whether any page of [a, b) is to move. pre: r->lock held */
static bool any_moves(struct leap_job *j, uint64_t a, uint64_t b)
{
	struct leap_region *r = j->r;
	for (uint64_t p = a; p < b;) {
		const struct leap__run *x = &r->runs[leap__region_find_run(r, p)];
		if (leap__moves(&j->mv, x->slot, x->bank))
			return true;
		p = x->pg + x->n;
	}
	return false;
}

/*
 * Fit the extent [pos, pos + *n) around declared device I/O. Returns 0 to move it (cut
 * short before the first busy page, and in flight for io.c until leap__io_extent_end()),
 * 1 when pos itself is busy and was dealt with: its pages skipped (*skip_to: where to go
 * on) or no longer busy (*skip_to == pos: look again), 2 when the job parked to wait for
 * it. Busy pages that would not move anyway (already on the target) are simply passed.
 * pre: r->lock held
 */
static int fit_busy(struct leap_job *j, uint64_t pos, uint64_t *n, uint64_t *skip_to)
{
	struct leap__busy bz;
	if (!leap__io_extent_begin(j->r, pos, n, &bz))
		return 0;
	uint64_t next = bz.next < j->b ? bz.next : j->b;
	if (bz.longterm || j->mv.skip_busy || !any_moves(j, pos, next)) {
		*skip_to = next;
		account_busy(j, pos, next);
	} else {
		if (park(j, pos))
			return 2;
		*skip_to = pos;
	}
	return 1;
}

/*
 * A job that stops before its end (cancelled, or its region destroyed) leaves the pages
 * it never reached, [pos, b), where they are; their entries say so, as page_leap(3)
 * promises one for every page: -ECANCELED. Pages before pos were marked per extent.
 */
static void mark_unreached(struct leap_job *j, uint64_t pos)
{
	if (!j->status)
		return;
	for (uint64_t q = pos > j->sa ? pos : j->sa; q < j->sb; q++)
		j->status[q - j->sa] = -ECANCELED;
}

/*
 * The job stops touching the region: the status of the pages it never reached (pos on,
 * when cancelled), and the region's counters. Its claim goes next (the caller's).
 * pre: r->lock held; the caller owns the job's run
 */
static void job_retire(struct leap_job *j, uint64_t pos, bool cancelled)
{
	struct leap_region *r = j->r;
	if (cancelled)
		mark_unreached(j, pos);
	if (!j->started)
		return; /* taken off its queue before it ran: no counter to add */
	if (j->prog.pages_moved) /* pages it left are kept for reuse, up to the bound */
		for (int s = 0; s < r->nslots; s++)
			if (r->slot[s])
				leap__pool_keep(r->slot[s]);
	if (j->prog.pages_moved)
		r->st.leaps++;
	r->st.last_worker_cpu = j->prog.worker_cpu;
	r->st.last_worker_node = j->prog.worker_cpu >= 0
				 ? leap__topo_node_of_cpu(r->ctx->topo, j->prog.worker_cpu) : -1;
	if (j->stalls.max_ns > r->st.stall_max_ns)
		r->st.stall_max_ns = j->stalls.max_ns;
}

/* The job, on its worker thread. */
static void job_run(void *arg)
{
	struct leap_job *j = arg;
	struct leap_region *r = j->r;
	pthread_mutex_lock(&j->lock);
	if (!j->started) {
		j->prog.state = LEAP_JOB_RUNNING;
		j->prog.worker_cpu = sched_getcpu();
		j->t0 = leap__sys_now_ns();
		j->started = true;
		j->pos = j->a;
		j->g = leap__gran_first(&j->gran);
	}
	j->io_waiting = false; /* queued again after parking (io.c), or never parked */
	j->queued = false;     /* on this thread now: a cancel reaches it between extents */
	pthread_mutex_unlock(&j->lock);
	uint64_t g = j->g;
	bool cancelled = false;
	uint64_t pos = j->pos;
	while (pos < j->b) {
		if (atomic_load(&j->cancel)) {
			cancelled = true;
			break;
		}
		if (leap__test_extent_hook)
			leap__test_extent_hook(j, r, (size_t)(pos * LEAP_PG));
		if (atomic_load(&j->cancel)) {
			cancelled = true;
			break;
		}
		uint64_t n = j->b - pos < g ? j->b - pos : g;
		if (pos % r->unit && n > r->unit - pos % r->unit)
			n = r->unit - pos % r->unit; /* the split head of a THP range */
		struct leap__extent_out o = { 0 };
		struct leap__hist h;
		h.count = 0;
		pthread_mutex_lock(&r->lock);
		uint64_t skip_to;
		/* kept before a park: the job may be queued again (on another thread of the
		 * worker) as soon as it is parked */
		j->pos = pos;
		j->g = g;
		int busy = fit_busy(j, pos, &n, &skip_to);
		if (busy == 2) { /* parked: queued again when the page is free, from pos */
			pthread_mutex_unlock(&r->lock);
			return; /* the job is not ours any more: touch nothing */
		}
		if (busy) {
			pthread_mutex_unlock(&r->lock);
			pos = skip_to;
			continue;
		}
		if (leap__test_in_extent_hook)
			leap__test_in_extent_hook(j, r, (size_t)(pos * LEAP_PG));
		uint64_t t0 = leap__sys_now_ns();
		int rc = leap__extent_move(r, pos, pos + n, &j->mv, &o, &h);
		uint64_t ns = leap__sys_now_ns() - t0;
		leap__io_extent_end(r);
		if ((rc == -ENOMEM || rc == -ENOSPC) && o.moved == 0 && n > j->gran.gmin) {
			/* the destination needs room before the source pages are freed: a smaller
			 * extent needs less, so a nearly full pool still drains into itself */
			pthread_mutex_unlock(&r->lock);
			g = leap__gran_no_room(&j->gran, n);
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
		g = leap__gran_next(&j->gran, g, n, rc >= 0 && o.moved == n, o.faults, ns);
		pos += n;
	}
	pthread_mutex_lock(&r->lock);
	job_retire(j, pos, cancelled);
	leap__unclaim(r, &j->claim); /* from here on the job does not touch the region */
	pthread_mutex_unlock(&r->lock);

	job_end(j, cancelled, false);
	job_unref(j);
}

/*
 * Take a job off its worker's queue if it waits there (queued, or parked and queued
 * again by a cancel): true if so, and then the caller owns its run (job_retire,
 * unclaim, job_end, job_unref). A job a worker's thread took already is not touched.
 * The job's claim keeps its region, the instance and so the worker alive while it is
 * queued. Lock order: job->lock, then the worker's (a leaf).
 */
static bool job_take(struct leap_job *j)
{
	pthread_mutex_lock(&j->lock);
	bool mine = j->queued && leap__worker_remove(j->park.w, &j->park.work);
	if (mine)
		j->queued = j->io_waiting = false; /* a later cancel must not kick its region */
	pthread_mutex_unlock(&j->lock);
	return mine;
}

/* A cancelled job still in its worker's queue ends now, on the calling thread (its
 * callback too), instead of after the jobs ahead of it. */
static void job_stop_queued(struct leap_job *j)
{
	if (!job_take(j)) /* a coordinator is never queued */
		return;
	struct leap_region *r = j->r;
	leap__region_lock(r);
	job_retire(j, j->started ? j->pos : j->a, true);
	leap__unclaim(r, &j->claim);
	pthread_mutex_unlock(&r->lock);
	job_end(j, true, false);
	job_unref(j);
}

/* The region's destroy reaches a queued job through its claim (lifetime.c). */
static struct leap_job *claim_job(struct leap__claim *c)
{
	return (struct leap_job *)(void *)((char *)c - offsetof(struct leap_job, claim));
}

/* pre: r->lock held */
static bool claim_unqueue(struct leap__claim *c)
{
	struct leap_job *j = claim_job(c);
	if (!job_take(j))
		return false;
	job_retire(j, j->started ? j->pos : j->a, true);
	return true;
}

/* pre: the claim is gone, r->lock not held */
static void claim_finish(struct leap__claim *c)
{
	struct leap_job *j = claim_job(c);
	job_end(j, true, false);
	job_unref(j);
}

/*
 * Round a THP region's range at a huge page it cuts: whole (widen [a, b) to it) or split
 * (keep), by the flags or the cost rule (see the top). k: pages of the huge page in the
 * range.
 */
static bool take_whole(unsigned flags, uint64_t k)
{
	if (flags & LEAP_HUGE_WHOLE)
		return true;
	if (flags & LEAP_HUGE_SPLIT)
		return false;
	return k >= LEAP_HUGE_WHOLE_MIN_PAGES;
}

static void round_thp(struct leap_job *j, unsigned flags, uint64_t *whole, uint64_t *split)
{
	uint64_t u = j->r->unit, a = j->a, b = j->b;
	uint64_t ha = a / u * u, hz = (b - 1) / u * u; /* first and last huge page touched */
	if (ha == hz) {
		if (a % u || b % u) { /* one huge page, cut */
			bool w = take_whole(flags, b - a);
			*(w ? whole : split) += 1;
			if (w) {
				j->a = ha;
				j->b = ha + u;
			}
		}
		return;
	}
	if (a % u) {
		bool w = take_whole(flags, ha + u - a);
		*(w ? whole : split) += 1;
		if (w)
			j->a = ha;
	}
	if (b % u) {
		bool w = take_whole(flags, b - hz);
		*(w ? whole : split) += 1;
		if (w)
			j->b = hz + u;
	}
}

int leap__job_opts_check(const struct leap_job_options *o, uint64_t *gmin, uint64_t *gmax)
{
	*gmin = *gmax = 0;
	if (!o)
		return 0;
	if (o->granularity_min % LEAP_PAGE_SIZE || o->granularity_max % LEAP_PAGE_SIZE)
		return -EINVAL;
	/* in pages; a bound left 0 takes its default (a page; 4 MiB, or the minimum above) */
	uint64_t lo = o->granularity_min / LEAP_PG, hi = o->granularity_max / LEAP_PG;
	uint64_t min = lo ? lo : 1;
	uint64_t max = hi ? hi : (min > LEAP_GRAN_MAX_DEFAULT ? min : LEAP_GRAN_MAX_DEFAULT);
	if (min > max || max > LEAP_GRAN_LIMIT)
		return -EINVAL;
	*gmin = lo;
	*gmax = hi ? hi : max;
	return 0;
}

/* Validate the call; fill the job's fixed fields. The target slot is filled in by the
 * caller under the region lock. */
static int job_init(struct leap_job *j, struct leap_region *r, void *addr, size_t len,
		    unsigned flags, const struct leap_job_options *o)
{
	const unsigned known = LEAP_RELOCATE | LEAP_NO_WRITERS | LEAP_HUGE_WHOLE | LEAP_HUGE_SPLIT |
			       LEAP_SKIP_BUSY;
	if ((flags & ~known) || len == 0 || (uintptr_t)addr % LEAP_PAGE_SIZE ||
	    len % LEAP_PAGE_SIZE || (flags & LEAP_HUGE_WHOLE && flags & LEAP_HUGE_SPLIT))
		return -EINVAL;
	uint64_t u = r->unit;
	uint64_t gmin = u, gmax = LEAP_GRAN_MAX_DEFAULT, target = LEAP_STALL_TARGET_DEFAULT;
	struct leap_job_options local; /* the caller's, zero-extended to this version's size */
	int err;
	o = leap__opts_in(&local, sizeof(local), o, &err);
	if (err)
		return err;
	uint64_t omin, omax;
	err = leap__job_opts_check(o, &omin, &omax);
	if (err)
		return err;
	if (o) {
		gmin = omin ? omin : u;
		gmax = omax;
		if (o->stall_target_ns)
			target = o->stall_target_ns;
	}
	/* huge-page regions move whole huge pages: bounds in whole huge pages, at least one */
	gmin = (gmin + u - 1) / u * u;
	gmax = gmax / u * u;
	if (gmax < gmin)
		gmax = gmin;
	uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->base, size = r->npages * LEAP_PG;
	if (a < base || a - base > size || len > size - (a - base))
		return -EFAULT;
	if (r->kind == LEAP_PAGES_HUGETLB && ((a - base) % LEAP_HUGE_PAGE_SIZE ||
					      len % LEAP_HUGE_PAGE_SIZE))
		return -EINVAL; /* a hugetlb page cannot be split */
	if (!(flags & LEAP_NO_WRITERS) && !r->wp) {
		struct leap__wp *wp; /* sets leap_errormsg() to the instance's reason */
		return leap__ctx_wp(r->ctx, &wp) ? -EOPNOTSUPP
						 : leap__why(-EOPNOTSUPP, "the region was created "
									  "without write protection");
	}
	if (!(flags & LEAP_NO_WRITERS) && r->kind == LEAP_PAGES_THP && !r->wp->thp_ok)
		return leap__why(-EOPNOTSUPP, leap__wp_thp_why); /* see leap__wp.thp_ok */
	j->r = r;
	j->a = j->sa = (a - base) / LEAP_PG;
	j->b = j->sb = j->a + len / LEAP_PG;
	j->mv = (struct leap__move){ .target = -1, .bank = -1,
				     .relocate = flags & LEAP_RELOCATE,
				     .protect = !(flags & LEAP_NO_WRITERS),
				     .skip_busy = flags & LEAP_SKIP_BUSY };
	leap__gran_init(&j->gran, u, gmin, gmax, target);
	if (o) {
		j->status = o->status;
		j->done = o->done;
		j->arg = o->arg;
	}
	j->prog.worker_cpu = -1;
	return 0;
}

/* Allocate a job and its synchronisation; two references (the caller's, the run's). */
static struct leap_job *job_alloc(void)
{
	struct leap_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	pthread_mutex_init(&j->lock, NULL);
	/* leap_job_wait()'s deadline is on LEAP_WAIT_CLOCK: the condition must count on it */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, LEAP_WAIT_CLOCK);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&j->refs, 2);
	return j;
}

static void job_free_unstarted(struct leap_job *j)
{
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

/*
 * Claim the job's range and queue it on the worker of the target's node. The target is
 * a node (pool == NULL) or a pool; it becomes a slot under the region lock. A child of a
 * coordinating job (parent) becomes its child first, so a cancel reaches it, and waits
 * for a busy range instead of failing.
 */
static int job_start(struct leap_job *j, int node, struct leap_pool *pool, unsigned flags,
		     struct leap_job *parent)
{
	struct leap_region *r = j->r;
	int rc = 0;
	leap__region_lock(r);
	if (r->dying)
		rc = -ENODEV;
	if (!rc && pool)
		rc = j->mv.target = leap__region_pool_slot(r, pool);
	else if (!rc && j->mv.target < 0)
		j->mv.target = node;
	if (rc >= 0)
		rc = 0;
	if (!rc && j->mv.bank < 0 && !leap__topo_valid_mem_node(r->ctx->topo,
								 leap__slot_node(r, j->mv.target)))
		rc = -ENODEV;
	uint64_t whole = 0, split = 0;
	if (!rc && r->kind == LEAP_PAGES_THP)
		round_thp(j, flags, &whole, &split);
	j->prog.pages_total = j->b - j->a;
	j->claim = (struct leap__claim){ .a = j->a, .b = j->b, .cancel = &j->cancel,
					 .unqueue = claim_unqueue, .finish = claim_finish };
	if (!rc && parent) {
		pthread_mutex_lock(&parent->lock);
		parent->child = j;
		if (atomic_load(&parent->cancel)) /* cancelled before it had a child */
			atomic_store(&j->cancel, true);
		pthread_mutex_unlock(&parent->lock);
	}
	if (!rc)
		rc = leap__claim(r, &j->claim, parent != NULL);
	struct leap__worker *w = NULL;
	if (!rc) {
		rc = leap__ctx_worker(r->ctx, leap__slot_node(r, j->mv.target), &w);
		j->park = (struct leap__parked){ .w = w, .work = { job_run, j, NULL, false } };
		if (rc) {
			leap__unclaim(r, &j->claim);
		} else {
			/* the job's own item: a cancel can find it in the queue (job_take);
			 * under j->lock, since a coordinator's cancel may already see the
			 * child (and read park) */
			pthread_mutex_lock(&j->lock);
			j->queued = true;
			pthread_mutex_unlock(&j->lock);
			leap__worker_push(w, &j->park.work);
		}
	}
	if (!rc) {
		r->st.huge_whole += whole;
		r->st.huge_splits += split;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc && parent) {
		pthread_mutex_lock(&parent->lock);
		parent->child = NULL;
		pthread_mutex_unlock(&parent->lock);
	}
	return rc;
}

int leap__job_prepare(struct leap_region *r, void *addr, size_t len, unsigned flags,
		      const struct leap_job_options *opts, struct leap_job **out)
{
	struct leap_job *j = job_alloc();
	if (!j)
		return -ENOMEM;
	int rc = job_init(j, r, addr, len, flags, opts);
	if (rc) {
		job_free_unstarted(j);
		return rc;
	}
	*out = j;
	return 0;
}

int leap__job_go(struct leap_job *j, int node, struct leap_pool *pool, unsigned flags,
		 struct leap_job **out)
{
	int rc = job_start(j, node, pool, flags, NULL);
	if (rc) {
		job_free_unstarted(j);
		return rc;
	}
	if (out) {
		*out = j;
		return 0;
	}
	int64_t res = leap_job_wait(j, -1);
	leap_job_destroy(&j);
	return res > INT32_MAX ? INT32_MAX : (int)res;
}

void leap__job_discard(struct leap_job *j)
{
	job_free_unstarted(j);
}

int leap__job_submit(struct leap_job *parent, struct leap_region *r, uint64_t a, uint64_t b,
		     const struct leap__move *mv, const struct leap_job_options *opts,
		     struct leap_job **out)
{
	struct leap_job *j = job_alloc();
	if (!j)
		return -ENOMEM;
	unsigned flags = (mv->relocate ? LEAP_RELOCATE : 0) | (mv->protect ? 0 : LEAP_NO_WRITERS);
	struct leap_job_options o = { .size = sizeof(o) };
	if (opts) {
		o.granularity_min = opts->granularity_min;
		o.granularity_max = opts->granularity_max;
		o.stall_target_ns = opts->stall_target_ns;
	}
	int rc = job_init(j, r, r->base + a * LEAP_PG, (b - a) * LEAP_PG, flags, &o);
	if (rc) {
		job_free_unstarted(j);
		return rc;
	}
	j->mv = *mv;
	rc = job_start(j, -1, NULL, LEAP_HUGE_SPLIT, parent);
	if (rc) {
		/* it was the parent's child for a while: a leap_job_cancel() of the parent
		 * may hold a reference to it now. Drop both of ours; the last one frees it */
		job_unref(j);
		job_unref(j);
		return rc;
	}
	*out = j;
	return 0;
}

/* ---------------------------------------------------------------- coordinating jobs */

static void *spawn_main(void *arg)
{
	struct leap_job *j = arg;
	pthread_mutex_lock(&j->lock);
	j->prog.state = LEAP_JOB_RUNNING;
	j->t0 = leap__sys_now_ns();
	pthread_mutex_unlock(&j->lock);
	j->fn(j);
	job_end(j, atomic_load(&j->cancel), true);
	job_unref(j);
	return NULL;
}

int leap__job_spawn(void (*fn)(struct leap_job *), void *arg,
		     const struct leap_job_options *opts, struct leap_job **out)
{
	struct leap_job *j = job_alloc();
	if (!j)
		return -ENOMEM;
	if (opts) {
		j->done = opts->done;
		j->arg = opts->arg;
	}
	j->fn = fn;
	j->fn_arg = arg;
	j->prog.worker_cpu = -1;
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = leap__sys_thread_create(&t, &at, spawn_main, j);
	pthread_attr_destroy(&at);
	if (rc) {
		job_free_unstarted(j);
		return rc;
	}
	*out = j;
	return 0;
}

void *leap__job_arg(struct leap_job *j)
{
	return j->fn_arg;
}

bool leap__job_cancelled(struct leap_job *j)
{
	return atomic_load(&j->cancel);
}

void leap__job_absorb(struct leap_job *p, struct leap_job *c)
{
	pthread_mutex_lock(&c->lock);
	struct leap_progress cp = c->prog;
	struct leap__hist h = c->stalls;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&p->lock);
	/* the child leaves the progress and its counters join it in one step: a snapshot in
	 * between must not see them in neither place (progress never goes back) */
	if (p->child == c)
		p->child = NULL;
	struct leap_progress *pr = &p->prog;
	pr->pages_moved += cp.pages_moved;
	pr->pages_failed += cp.pages_failed;
	pr->pages_done += cp.pages_moved + cp.pages_failed;
	/* a walk counts a region's pages when it visits it; a move in flight there may
	 * since have given the child more to do: done never passes total (fuzz_api) */
	if (pr->pages_done > pr->pages_total)
		pr->pages_total = pr->pages_done;
	pr->bytes_copied += cp.bytes_copied;
	pr->extents += cp.extents;
	pr->write_faults += cp.write_faults;
	pr->retries += cp.retries;
	pr->io_waits += cp.io_waits;
	pr->io_skipped += cp.io_skipped;
	pr->granularity = cp.granularity;
	if (cp.granularity_min_seen &&
	    (!pr->granularity_min_seen || cp.granularity_min_seen < pr->granularity_min_seen))
		pr->granularity_min_seen = cp.granularity_min_seen;
	if (cp.granularity_max_seen > pr->granularity_max_seen)
		pr->granularity_max_seen = cp.granularity_max_seen;
	if (cp.error && !pr->error)
		pr->error = cp.error;
	if (pr->worker_cpu < 0)
		pr->worker_cpu = cp.worker_cpu;
	leap__hist_merge(&p->stalls, &h);
	pthread_mutex_unlock(&p->lock);
}

void leap__job_add(struct leap_job *j, uint64_t total, uint64_t failed, int error)
{
	pthread_mutex_lock(&j->lock);
	j->prog.pages_total += total;
	j->prog.pages_failed += failed;
	j->prog.pages_done += failed;
	if (error && !j->prog.error)
		j->prog.error = error;
	pthread_mutex_unlock(&j->lock);
}

void leap__job_deadline(struct timespec *dl, int64_t timeout_ns)
{
	clock_gettime(LEAP_WAIT_CLOCK, dl);
	uint64_t ns = (uint64_t)dl->tv_nsec + (uint64_t)timeout_ns;
	dl->tv_sec += (time_t)(ns / 1000000000u);
	dl->tv_nsec = (long)(ns % 1000000000u);
}

LEAP_API int64_t leap_job_wait(struct leap_job *j, int64_t timeout_ns)
{
	if (!j)
		return -EINVAL;
	struct timespec dl;
	if (timeout_ns >= 0)
		leap__job_deadline(&dl, timeout_ns);
	pthread_mutex_lock(&j->lock);
	int rc = 0;
	while (!j->finished && rc == 0)
		rc = timeout_ns >= 0 ? pthread_cond_timedwait(&j->cond, &j->lock, &dl)
				     : pthread_cond_wait(&j->cond, &j->lock);
	int64_t res = j->finished ? j->result : -ETIMEDOUT;
	pthread_mutex_unlock(&j->lock);
	return res;
}

LEAP_API int leap_job_progress(struct leap_job *j, struct leap_progress *out)
{
	if (!j || !out)
		return -EINVAL;
	struct leap_progress full, *p = &full; /* copied out */
	pthread_mutex_lock(&j->lock);
	*p = j->prog;
	p->stall_p50_ns = leap__hist_quantile(&j->stalls, 0.5);
	p->stall_p99_ns = leap__hist_quantile(&j->stalls, 0.99);
	p->stall_max_ns = j->stalls.max_ns;
	p->stall_total_ns = j->stalls.sum_ns;
	if (j->child) { /* a coordinator: count its child's progress so far (lock order:
			   coordinator, then child) */
		pthread_mutex_lock(&j->child->lock);
		p->pages_moved += j->child->prog.pages_moved;
		p->pages_failed += j->child->prog.pages_failed;
		p->pages_done += j->child->prog.pages_moved + j->child->prog.pages_failed;
		p->bytes_copied += j->child->prog.bytes_copied;
		p->extents += j->child->prog.extents;
		p->io_waits += j->child->prog.io_waits;
		p->io_skipped += j->child->prog.io_skipped;
		p->granularity = j->child->prog.granularity;
		pthread_mutex_unlock(&j->child->lock);
		if (p->pages_done > p->pages_total) /* (see leap__job_absorb) */
			p->pages_total = p->pages_done;
	}
	if (p->state == LEAP_JOB_RUNNING)
		p->elapsed_ns = leap__sys_now_ns() - j->t0;
	pthread_mutex_unlock(&j->lock);
	return leap__struct_out(out, out->size, &full, sizeof(full));
}

LEAP_API int leap_job_cancel(struct leap_job *j)
{
	if (!j)
		return -EINVAL;
	atomic_store(&j->cancel, true);
	/* a coordinator's child stops after its extent in hand, or stops waiting for its
	 * range. The child's region stays alive while it is the child (the walker holds it
	 * until the child is absorbed, which clears j->child under j->lock): hold it for the
	 * kick. */
	pthread_mutex_lock(&j->lock);
	struct leap_region *kick = NULL;
	struct leap_job *child = j->child;
	if (child) {
		atomic_store(&child->cancel, true);
		atomic_fetch_add(&child->refs, 1); /* for job_stop_queued() below */
		kick = child->r;
		leap__region_ref(kick);
	} else if (j->io_waiting) {
		/* parked for declared I/O (io.c): its claim keeps the region alive */
		kick = j->r;
		leap__region_ref(kick);
	}
	pthread_mutex_unlock(&j->lock);
	if (kick) {
		leap__claim_kick(kick);
		leap__io_kick(kick); /* a parked job is queued again: taken off below */
	}
	/* a job still queued behind other jobs ends now instead of after them */
	job_stop_queued(child ? child : j);
	if (child)
		job_unref(child);
	if (kick)
		leap__region_unref(kick);
	return 0;
}

LEAP_API void leap_job_destroy(struct leap_job **job)
{
	if (!job || !*job)
		return;
	struct leap_job *j = *job;
	leap_job_cancel(j);
	leap_job_wait(j, -1);
	job_unref(j);
	*job = NULL;
}
