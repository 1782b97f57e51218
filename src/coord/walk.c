/*
 * walk.c - the walker framework: a coordinating job over every region of an instance.
 *
 * The walk runs as a coordinating job (job.c, leap__job_spawn) on its own thread:
 *   1. hold every live region (lifetime.c: one reference each);
 *   2. if the walker counts, ask it per region (progress shows the total early);
 *   3. visit each region in turn, dropping its reference once past it;
 *   4. fini, then the job's result from its counters.
 * Each move is an ordinary job, a child of the walk (leap__job_submit): every guarantee
 * of page_leap() holds (writers wait for one extent at most, cancel leaves every page
 * whole, counters exact). A range busy with a user's job makes the child wait on the
 * region's claims condition; a cancel or a destroy wakes it. Nothing here sleeps or
 * polls.
 *
 * Threads: the walk's own; the walker's callbacks run on it. The regions' and jobs'
 * locks as everywhere else.
 */
#include "coord/coord.h"

#include <errno.h>
#include <stdlib.h>

struct leap__walk {
	struct leap_ctx *ctx;
	const struct leap__walker *ops;
	void *arg;
	struct leap_job *job; /* the coordinating job */
	bool protect;
	bool skip_busy;
	bool has_opts;
	struct leap_job_options opts;
	struct leap_region **held; /* NULL where let go */
	size_t nheld;
};

void *leap__walk_arg(struct leap__walk *w)
{
	return w->arg;
}

struct leap_ctx *leap__walk_ctx(struct leap__walk *w)
{
	return w->ctx;
}

bool leap__walk_cancelled(struct leap__walk *w)
{
	return leap__job_cancelled(w->job);
}

void leap__walk_add(struct leap__walk *w, uint64_t total, uint64_t failed, int error)
{
	leap__job_add(w->job, total, failed, error);
}

int leap__walk_move(struct leap__walk *w, struct leap_region *r, uint64_t a, uint64_t b,
		    int target, int bank)
{
	struct leap__move mv = { .target = target, .bank = bank, .protect = w->protect,
				  .skip_busy = w->skip_busy };
	struct leap_job *child;
	int rc = leap__job_submit(w->job, r, a, b, &mv, w->has_opts ? &w->opts : NULL, &child);
	if (rc)
		return rc;
	leap_job_wait(child, -1); /* a cancel of the walk reaches the child */
	leap__job_absorb(w->job, child); /* also takes it off the walk's progress */
	leap_job_destroy(&child);
	return 0;
}

static void walk_free(struct leap__walk *w)
{
	for (size_t i = 0; i < w->nheld; i++)
		if (w->held[i])
			leap__region_unref(w->held[i]);
	free(w->held);
	if (w->ops->fini)
		w->ops->fini(w->arg);
	leap__ctx_unref(w->ctx);
	free(w);
}

static void walk_main(struct leap_job *j)
{
	struct leap__walk *w = leap__job_arg(j);
	w->job = j;
	if (w->ops->count) {
		uint64_t total = 0;
		for (size_t i = 0; i < w->nheld; i++)
			total += w->ops->count(w, w->held[i]);
		leap__job_add(j, total, 0, 0);
	}
	for (size_t i = 0; i < w->nheld && !leap__job_cancelled(j); i++) {
		w->ops->visit(w, w->held[i]);
		leap__region_unref(w->held[i]); /* past it: its last user may free it now */
		w->held[i] = NULL;
	}
	walk_free(w);
}

/* The synchronous form: wait, destroy, return the result. */
static int walk_sync(struct leap_job *j)
{
	int64_t res = leap_job_wait(j, -1);
	leap_job_destroy(&j);
	return res > INT32_MAX ? INT32_MAX : (int)res;
}

int leap__walk_start(struct leap_ctx *ctx, const struct leap__walker *ops, void *arg,
		     unsigned flags, const struct leap_job_options *opts, struct leap_job **job)
{
	struct leap__walk *w = calloc(1, sizeof(*w));
	struct leap_job_options o; /* the caller's, zero-extended to this version's size */
	int rc = w ? 0 : -ENOMEM;
	if (!rc && flags & ~(LEAP_NO_WRITERS | LEAP_SKIP_BUSY))
		rc = -EINVAL;
	if (!rc)
		opts = leap__opts_in(&o, sizeof(o), opts, &rc);
	uint64_t gmin, gmax;
	if (!rc) /* page_leap()'s rule, before anything starts (not per move) */
		rc = leap__job_opts_check(opts, &gmin, &gmax);
	if (rc) {
		free(w);
		if (ops->fini)
			ops->fini(arg);
		return rc;
	}
	w->ctx = ctx;
	w->ops = ops;
	w->arg = arg;
	w->protect = !(flags & LEAP_NO_WRITERS);
	w->skip_busy = flags & LEAP_SKIP_BUSY;
	if (opts) {
		w->has_opts = true;
		w->opts = *opts;
		w->opts.status = NULL; /* per-page status is per job: not offered here */
	}
	leap__ctx_ref(ctx);
	struct leap__wp *wp;
	if (w->protect)
		rc = leap__ctx_wp(ctx, &wp);
	if (!rc)
		rc = leap__regions_hold(ctx, &w->held, &w->nheld);
	struct leap_job *j = NULL;
	if (!rc)
		rc = leap__job_spawn(walk_main, w, opts, &j);
	if (rc) {
		walk_free(w);
		return rc;
	}
	if (job) {
		*job = j;
		return 0;
	}
	return walk_sync(j);
}
