/*
 * hist.c - the tools' latency histogram (see hist.h for the buckets and the invariant).
 */
#include "hist.h"

/* Bucket of a sample: exact below 4 ns, then 4 per power of two (the two bits after the
 * leading one pick the quarter). */
static unsigned bucket(uint64_t ns)
{
	if (ns < 4)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns);
	return 4 * e + (unsigned)((ns >> (e - 2)) & 3);
}

/* The smallest sample that lands in bucket k. */
static uint64_t bucket_low(unsigned k)
{
	if (k < 4)
		return k;
	unsigned e = k / 4;
	return (UINT64_C(1) << e) | ((uint64_t)(k % 4) << (e - 2));
}

void hist_add(struct hist *h, uint64_t ns)
{
	if (h->count == 0) /* lazily cleared: callers only zero count */
		*h = (struct hist){ 0 };
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->b[bucket(ns)]++;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	if (!dst->count)
		*dst = (struct hist){ 0 };
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	for (unsigned k = 0; k < HIST_BUCKETS; k++)
		dst->b[k] += src->b[k];
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned k = 0; k < HIST_BUCKETS; k++) {
		seen += h->b[k];
		if (seen > want)
			return bucket_low(k) < h->max_ns ? bucket_low(k) : h->max_ns;
	}
	return h->max_ns;
}

double hist_quantile_us(const struct hist *h, double q)
{
	return (double)hist_quantile(h, q) * 1e-3;
}
