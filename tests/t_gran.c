/*
 * t_gran - the granularity controller (src/core/gran.c) on synthetic timings.
 *
 * The controller is pure (size, writers, duration in; next size out), so its behaviour
 * is proven here exactly, not by counting extents of a real job on a loaded machine.
 * An extent's time is modelled as fixed + per_page * pages, the shape measured by
 * pageleap bench (a fixed cost per extent plus its copy).
 */
#include "core/core.h"

#include "util.h"

#define US 1000u
#define MS 1000000u

/* Time of an extent of g pages: fixed + per-page cost. */
static uint64_t model(uint64_t g, uint64_t fixed, uint64_t per_page)
{
	return fixed + per_page * g;
}

/* Run the controller for iters extents on the model, writers on every extent (faults >
 * 0) or none; returns the last size and the smallest and largest seen after warm-up. */
static uint64_t drive(struct leap__gran *c, int iters, uint32_t faults, uint64_t fixed,
		      uint64_t per_page, uint64_t *lo, uint64_t *hi)
{
	uint64_t g = leap__gran_first(c);
	*lo = UINT64_MAX;
	*hi = 0;
	for (int i = 0; i < iters; i++) {
		g = leap__gran_next(c, g, g, true, faults, model(g, fixed, per_page));
		if (i >= iters / 2) {
			*lo = g < *lo ? g : *lo;
			*hi = g > *hi ? g : *hi;
		}
	}
	return g;
}

/* Without writers the size doubles from the start size up to the maximum, never beyond. */
CASE(grows_without_writers)
{
	struct leap__gran c;
	leap__gran_init(&c, 1, 1, 1024, 250 * US);
	uint64_t g = leap__gran_first(&c);
	CHECK(g == LEAP_GRAN_START, "first %llu", (unsigned long long)g);
	for (int i = 0; i < 20; i++) {
		uint64_t n = leap__gran_next(&c, g, g, true, 0, 10 * MS /* slow, no writer */);
		CHECK(n == (g * 2 > 1024 ? 1024 : g * 2), "%llu -> %llu", (unsigned long long)g,
		       (unsigned long long)n);
		g = n;
	}
}

/* One or two writers over the target halve it; three or more quarter it. */
CASE(shrinks_under_writers)
{
	struct leap__gran c;
	leap__gran_init(&c, 1, 1, 1024, 250 * US);
	uint64_t g = leap__gran_next(&c, 256, 256, true, 1, 1 * MS);
	CHECK(g == 128, "one writer: %llu", (unsigned long long)g);
	leap__gran_init(&c, 1, 1, 1024, 250 * US);
	g = leap__gran_next(&c, 256, 256, true, 5, 1 * MS);
	CHECK(g == 64, "five writers: %llu", (unsigned long long)g);
}

/* Writers that waited between half the target and the target keep the size; far
 * shorter than the target, it grows. */
CASE(keeps_near_target_grows_below)
{
	struct leap__gran c;
	leap__gran_init(&c, 1, 1, 1024, 250 * US);
	uint64_t g = leap__gran_next(&c, 64, 64, true, 1, 200 * US);
	CHECK(g == 64, "near target: %llu", (unsigned long long)g);
	g = leap__gran_next(&c, 64, 64, true, 1, 100 * US);
	CHECK(g == 128, "below half the target: %llu", (unsigned long long)g);
}

/* Never below the minimum, never above the maximum, whatever the input. */
CASE(respects_bounds)
{
	struct leap__gran c;
	leap__gran_init(&c, 1, 8, 64, 250 * US);
	uint64_t g = 8;
	for (int i = 0; i < 50; i++) {
		g = leap__gran_next(&c, g, g, true, 9, 50 * MS);
		CHECK(g >= 8 && g <= 64, "step %d: %llu", i, (unsigned long long)g);
	}
	for (int i = 0; i < 50; i++) {
		g = leap__gran_next(&c, g, g, true, 0, 1);
		CHECK(g >= 8 && g <= 64, "step %d: %llu", i, (unsigned long long)g);
	}
	CHECK(g == 64, "ends at the maximum: %llu", (unsigned long long)g);
	CHECK(leap__gran_no_room(&c, 8) == 8, "no room at the minimum stays there");
	CHECK(leap__gran_no_room(&c, 64) == 32, "no room halves");
}

/* Huge pages: every size a whole number of units, also after a quartering. */
CASE(whole_huge_pages)
{
	struct leap__gran c;
	leap__gran_init(&c, 512, 512, 8 * 512, 250 * US);
	CHECK(leap__gran_first(&c) == 512, "first %llu", (unsigned long long)leap__gran_first(&c));
	uint64_t g = 4 * 512;
	for (int i = 0; i < 30; i++) {
		g = leap__gran_next(&c, g, g, true, (uint32_t)(i % 4), (i % 3) * MS);
		CHECK(g % 512 == 0 && g >= 512 && g <= 8 * 512, "step %d: %llu", i,
		       (unsigned long long)g);
	}
	CHECK(leap__gran_no_room(&c, 3 * 512) == 512, "no room rounds to whole huge pages");
}

/* Shrinking must pay: when the smaller size is known to take more than 60% of the
 * current time, it does not shrink, and tries the double size unless that is known to
 * take more than 1/0.6 times as long. */
CASE(shrinks_only_when_it_pays)
{
	struct leap__gran c;
	leap__gran_init(&c, 1, 1, 1024, 100 * US);
	/* 32 pages measured at 400 us, then 64 at 500 us with a writer: 32 would save 20% */
	leap__gran_next(&c, 32, 32, true, 0, 400 * US);
	uint64_t g = leap__gran_next(&c, 64, 64, true, 1, 500 * US);
	CHECK(g == 128, "tries the double size: %llu", (unsigned long long)g);
	/* 128 known at 1000 us (2x 64's time): neither helps, it stays */
	leap__gran_next(&c, 128, 128, true, 0, 1000 * US);
	g = leap__gran_next(&c, 64, 64, true, 1, 500 * US);
	CHECK(g == 64, "stays: %llu", (unsigned long long)g);
	/* a shrink that saves 40% or more is taken */
	leap__gran_init(&c, 1, 1, 1024, 100 * US);
	leap__gran_next(&c, 32, 32, true, 0, 300 * US);
	g = leap__gran_next(&c, 64, 64, true, 1, 500 * US);
	CHECK(g == 32, "takes a shrink that pays: %llu", (unsigned long long)g);
	/* a partial extent (not whole) is not remembered as its size's time */
	leap__gran_init(&c, 1, 1, 1024, 100 * US);
	leap__gran_next(&c, 32, 32, false, 0, 400 * US);
	g = leap__gran_next(&c, 64, 64, true, 1, 500 * US);
	CHECK(g == 32, "partial extent ignored: %llu", (unsigned long long)g);
}

/* Scattered writers on every extent, stall target below the fixed cost (a slow or
 * emulated machine): the size settles where copying is most of the time instead of
 * collapsing to one page. */
CASE(settles_above_fixed_cost)
{
	struct leap__gran c;
	uint64_t lo, hi;
	leap__gran_init(&c, 1, 1, 1024, 100 * US);
	drive(&c, 200, 1, 500 * US /* fixed */, 2 * US /* per page */, &lo, &hi);
	/* at 256 pages the copy (512 us) is about the fixed cost; 1 page would cost 502 us */
	CHECK(lo >= 128, "collapsed to %llu pages", (unsigned long long)lo);
	CHECK(hi <= 1024, "grew to %llu", (unsigned long long)hi);
}

/* Scattered writers, a target the machine can meet: the size settles where an extent
 * takes about the target, so writers wait near it. */
CASE(settles_near_target)
{
	struct leap__gran c;
	uint64_t lo, hi;
	leap__gran_init(&c, 1, 1, 4096, 250 * US);
	drive(&c, 200, 1, 20 * US, 1 * US, &lo, &hi);
	/* model(g) within [125, 250] us for g in [105, 230]: the powers of two 64..256 */
	CHECK(lo >= 64 && hi <= 256, "settled in [%llu, %llu]", (unsigned long long)lo,
	       (unsigned long long)hi);
	CHECK(model(hi, 20 * US, 1 * US) <= 2 * 250 * US, "stalls %llu ns at %llu pages",
	       (unsigned long long)model(hi, 20 * US, US), (unsigned long long)hi);
}

int main(void)
{
	t_name = "t_gran";
	return RUN_CASES(grows_without_writers, shrinks_under_writers,
			 keeps_near_target_grows_below, respects_bounds, whole_huge_pages,
			 shrinks_only_when_it_pays, settles_above_fixed_cost, settles_near_target);
}
