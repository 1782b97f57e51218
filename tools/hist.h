/*
 * hist.h - a latency histogram for the tool's benchmarks (bench: writer stalls; ycsb:
 * operation latency per phase). Private to tools/: the tools see only the public
 * pageleap.h, so they keep their own copy of what the library keeps for its stalls.
 *
 * Log-scale buckets, four per power of two of nanoseconds: a quantile is the lower bound
 * of its bucket, less than 20% below the sample at any scale from nanoseconds to
 * minutes, in a fixed 1 KiB. Invariant: count == sum of b[]; a histogram whose count is 0 is empty,
 * whatever its other fields hold (so `h.count = 0` or `= { 0 }` clears it).
 *
 * Thread safety: none. Each writer thread adds to its own histogram; the thread that
 * joined the writers merges them.
 */
#ifndef LEAP_TOOLS_HIST_H
#define LEAP_TOOLS_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 256 /* 4 per power of two of 1 ns .. 2^64 ns */

struct hist {
	uint64_t count, sum_ns, max_ns;
	uint32_t b[HIST_BUCKETS];
};

/* Add a sample of ns nanoseconds. */
void hist_add(struct hist *h, uint64_t ns);
/* Add src's samples to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The q-quantile (0..1) in ns: the lower bound of its bucket, at most max_ns; 0 when
 * empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/* The same in microseconds, as the reports print it (0 when empty). */
double hist_quantile_us(const struct hist *h, double q);

#endif /* LEAP_TOOLS_HIST_H */
