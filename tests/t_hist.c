/*
 * Unit test of the latency histogram (src/util/hist.c), no kernel needed: random samples
 * against the sorted samples. A quantile is the lower bound of its bucket: never above
 * the exact quantile, and less than 20% below it (four buckets per power of two: a
 * bucket's upper end is 1.25 times its lower bound); never above the maximum. Merging two
 * histograms gives the histogram of all their samples; an empty one answers 0.
 */
#include "util/util.h"
#include "util.h"

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void check_quantiles(const struct leap__hist *h, uint64_t *v, size_t n, const char *what)
{
	qsort(v, n, sizeof(*v), cmp);
	CHECK(h->count == n && h->max_ns == v[n - 1], "%s: count %" PRIu64 " max %" PRIu64, what,
	      h->count, h->max_ns);
	static const double qs[] = { 0, 0.1, 0.5, 0.9, 0.99, 0.999, 1 };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t k = (size_t)(qs[i] * (double)n);
		if (k >= n)
			k = n - 1;
		uint64_t exact = v[k], got = leap__hist_quantile(h, qs[i]);
		CHECK(got <= exact && (double)got * 1.25 > (double)exact - 1e-9,
		      "%s: q%.3f = %" PRIu64 ", exact %" PRIu64 " (more than 20%% below, or above)",
		      what, qs[i], got, exact);
	}
}

int main(void)
{
	t_name = "t_hist";
	uint64_t s = test_seed();
	struct leap__hist e = { 0 };
	CHECK(leap__hist_quantile(&e, 0.5) == 0, "empty histogram: not 0");
	for (int round = 0; round < 200; round++) {
		size_t n1 = 1 + rnd(&s) % 2000, n2 = rnd(&s) % 2000;
		uint64_t *v = malloc((n1 + n2) * sizeof(*v));
		CHECK(v != NULL, "out of memory");
		struct leap__hist a, b;
		a.count = b.count = 0; /* as the library clears them */
		memset(a.b, 0xff, sizeof(a.b)); /* stale contents do not count */
		int shift = (int)(rnd(&s) % 40);
		for (size_t i = 0; i < n1 + n2; i++) {
			v[i] = rnd(&s) >> (24 + rnd(&s) % 40) << (shift % 8);
			leap__hist_add(i < n1 ? &a : &b, v[i]);
		}
		check_quantiles(&a, v, n1, "one histogram");
		/* v was sorted over [0, n1): rebuild a from the sorted samples is the same set */
		leap__hist_merge(&a, &b);
		check_quantiles(&a, v, n1 + n2, "merged");
		free(v);
	}
	say("note 200 random rounds: quantiles within 20%% below the exact ones, merges exact");
	return 0;
}
