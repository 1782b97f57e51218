/*
 * coord.h - walkers: coordinating jobs that visit every region of an instance and move
 * ranges of them with ordinary jobs (node evacuation, pool compaction; next the
 * balancer and persistent recovery). Clients of the core; not installed.
 *
 * A walk holds (references) the regions that exist when it starts and lets go of each
 * as soon as it is past it. A region destroyed meanwhile is skipped: its destroy waits
 * for the walk's job on it to end at its next extent, never for the walk. A walker's
 * move waits for a range busy with another job (a condition, never a poll); a cancel of
 * the walk reaches it, waiting or moving.
 */
#ifndef LEAP_COORD_H
#define LEAP_COORD_H

#include "core/core.h"

struct leap__walk;

/* What a walker does; visit is required, count and fini optional. */
struct leap__walker {
	/* First pass (before any move): pages the walk will try on r, for progress. */
	uint64_t (*count)(struct leap__walk *w, struct leap_region *r);
	/* Second pass: do the work on r (with leap__walk_move()). */
	void (*visit)(struct leap__walk *w, struct leap_region *r);
	/* The walk is over: free the walker's own state (arg). */
	void (*fini)(void *arg);
};

/*
 * Start a walk over every region of ctx as a coordinating job (progress, wait, cancel
 * and destroy as for page_leap() jobs). flags: LEAP_NO_WRITERS or 0. arg belongs to the
 * walker from here on, also on failure (fini is called). With job NULL, waits and
 * returns the result as the synchronous calls do.
 */
int leap__walk_start(struct leap_ctx *ctx, const struct leap__walker *ops, void *arg,
		     unsigned flags, const struct leap_job_options *opts, struct leap_job **job);
void *leap__walk_arg(struct leap__walk *w);
struct leap_ctx *leap__walk_ctx(struct leap__walk *w);
bool leap__walk_cancelled(struct leap__walk *w);
/* Move pages [a, b) of r: target slot, bank (compaction: the bank to gather in, else
 * -1). Waits for the child job and folds its counters into the walk's. Returns 0, or
 * the -errno that kept it from starting: -ENODEV (r is being destroyed), -ECANCELED. */
int leap__walk_move(struct leap__walk *w, struct leap_region *r, uint64_t a, uint64_t b,
		    int target, int bank);
/* Count pages as to do (total) or failed without a move, with the error that failed them. */
void leap__walk_add(struct leap__walk *w, uint64_t total, uint64_t failed, int error);

#endif /* LEAP_COORD_H */
