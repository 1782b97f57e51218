/*
 * hist.c - latency histograms for writer stalls.
 *
 * Log-scale buckets, four per power of two of nanoseconds, so a quantile (its bucket's
 * lower bound) is less than 20% below the sample at any scale from nanoseconds to
 * minutes, in a fixed 1 KiB. Not thread safe: the owner
 * (a job, on its worker thread) adds, readers copy under the owner's lock.
 */
#include "util/util.h"

static unsigned bucket(uint64_t ns)
{
	if (ns < 4)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns);
	return 4 * e + (unsigned)((ns >> (e - 2)) & 3);
}

static uint64_t bucket_low(unsigned k)
{
	if (k < 4)
		return k;
	unsigned e = k / 4;
	return (UINT64_C(1) << e) | ((uint64_t)(k % 4) << (e - 2));
}

void leap__hist_add(struct leap__hist *h, uint64_t ns)
{
	if (h->count == 0) /* lazily cleared: callers only zero count */
		*h = (struct leap__hist){ 0 };
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->b[bucket(ns)]++;
}

uint64_t leap__hist_quantile(const struct leap__hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned k = 0; k < LEAP_HIST_BUCKETS; k++) {
		seen += h->b[k];
		if (seen > want)
			return bucket_low(k) < h->max_ns ? bucket_low(k) : h->max_ns;
	}
	return h->max_ns;
}

/* Add src's samples to dst. */
void leap__hist_merge(struct leap__hist *dst, const struct leap__hist *src)
{
	if (!src->count)
		return;
	if (!dst->count)
		*dst = (struct leap__hist){ 0 };
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	for (unsigned k = 0; k < LEAP_HIST_BUCKETS; k++)
		dst->b[k] += src->b[k];
}
