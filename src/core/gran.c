/*
 * gran.c - the granularity controller: how many pages a job's next extent moves.
 *
 * Pure: inputs are the extent's size, how many writers waited on it and how long it
 * took; the output is the next size. No clock, no lock, no system call: t_gran drives it
 * with synthetic timings. One controller per job, used by the job's thread only.
 *
 * The rule. The extent starts at LEAP_GRAN_START pages (clamped to the bounds) and
 * doubles after an extent no writer touched, up to the maximum. An extent that made
 * writers wait is judged by how long it took, which is how long they waited: longer than
 * the stall target halves it (quarters it when several waited), shorter than half the
 * target doubles it, in between keeps it. Writers wait for at most one extent, so this
 * bounds their stalls near the target while keeping extents as large as the target
 * allows: writers that touch every extent whatever its size (scattered writes) would
 * otherwise drive it down to one page and the job to a system call per page.
 *
 * Shrinking must pay: an extent's time is a fixed cost (system calls, TLB flushes, the
 * writers' own faults) plus its copy, and below the size where the fixed cost dominates
 * a smaller extent takes nearly as long, so writers would wait about as long, more often,
 * and the job would crawl. The controller remembers the last time of each size class
 * (powers of two) and does not shrink to a size known to take more than 60% of the
 * current one; there, or at the minimum, it tries the double size instead unless that is
 * known to take more than 1/0.6 times as long. Where the stall target is below the fixed
 * cost (slow or emulated machines, busy CPUs) the extent thus settles where most of its
 * time is copying, instead of collapsing to one page.
 *
 * Huge pages: every size is a whole number of huge pages (unit), whatever the bounds.
 */
#include "core/core.h"

/* A smaller extent must save writers at least this share of the wait (in tenths). */
#define LEAP_GRAN_PAYS_TENTHS 6

void leap__gran_init(struct leap__gran *c, uint64_t unit, uint64_t gmin, uint64_t gmax,
		     uint64_t stall_target_ns)
{
	*c = (struct leap__gran){ .unit = unit ? unit : 1, .gmin = gmin, .gmax = gmax,
				  .stall_target = stall_target_ns };
}

uint64_t leap__gran_first(const struct leap__gran *c)
{
	uint64_t g = LEAP_GRAN_START < c->gmin ? c->gmin : LEAP_GRAN_START;
	return g > c->gmax ? c->gmax : g;
}

static unsigned size_class(uint64_t pages)
{
	return 63u - (unsigned)__builtin_clzll(pages);
}

/* Time of the last whole extent of g's size class, 0 if none yet. */
static uint64_t last_ns(const struct leap__gran *c, uint64_t g)
{
	return g ? c->tlast[size_class(g)] : 0;
}

/* Whole huge pages within the bounds. */
static uint64_t clamp(const struct leap__gran *c, uint64_t g)
{
	if (g > c->gmax)
		g = c->gmax;
	g = g / c->unit * c->unit;
	return g < c->gmin ? c->gmin : g;
}

uint64_t leap__gran_next(struct leap__gran *c, uint64_t g, uint64_t n, bool whole,
			 uint32_t faults, uint64_t ns)
{
	if (whole && n)
		c->tlast[size_class(n)] = ns;
	const uint64_t t = LEAP_GRAN_PAYS_TENTHS;
	if (faults == 0 || ns < c->stall_target / 2) {
		g *= 2;
	} else if (ns > c->stall_target) {
		uint64_t s = g / (faults > 2 ? 4 : 2), ts, t2;
		if (s < c->gmin)
			s = c->gmin;
		if (s < g && (!(ts = last_ns(c, s)) || ts * 10 <= ns * t))
			g = s; /* saves writers at least 40%, or not measured yet */
		else if (!(t2 = last_ns(c, 2 * g)) || ns * 10 > t2 * t)
			g *= 2; /* fixed cost dominates here: twice the pages for < 1.67x the wait */
	}
	return clamp(c, g);
}

uint64_t leap__gran_no_room(const struct leap__gran *c, uint64_t n)
{
	return clamp(c, n / 2);
}
