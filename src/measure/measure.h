/*
 * measure.h - measured topology (leap_measure), virtual nodes and the affinity monitor:
 * a client of the core through the public region API, and of topo. Not installed.
 *
 * Words: a "sample" is one measurement of a quantity (one round); the value kept is the
 * median of its samples. A "coherence domain" (CPU cluster) is a set of CPUs that pass
 * cache lines between them markedly faster than to the others; a "memory domain" (memory
 * cluster) a set of 2 MiB chunks whose latency from every coherence domain is alike.
 */
#ifndef LEAP_MEASURE_H
#define LEAP_MEASURE_H

#include "topo/topo.h"

#include <stdint.h>

/* A 2 MiB chunk of pool memory: the unit memory domains are labelled in. */
#define LEAP_CHUNK_BYTES (2u << 20)
/* Clusters separate when their latencies differ by this factor or more: CPUs (sockets
 * show ~2.5x on hardware, core complexes ~4x) and memory (remote/local ~1.6x; CXL ~2x). */
#define LEAP_C2C_SPLIT 1.5
#define LEAP_MEM_SPLIT 1.25

/* ------------------------------------------------------------ cluster.c (pure) */
/*
 * Cluster n items given their pairwise dissimilarities d[n * n] (symmetric, >= 0; the
 * diagonal is ignored) by average linkage: merge the two closest clusters while their
 * average dissimilarity is at most `limit`. label[i] gets 0 .. k-1, numbered in order of
 * each cluster's smallest item; returns k. *confidence (0..1): how clearly the merges
 * made lie below the limit and the one refused above it. -ENOMEM.
 */
int leap__cluster(const double *d, int n, double limit, int *label, double *confidence);
/* CPUs by core-to-core latency lat[n * n] (ns): dissimilarity log(lat / base), base the
 * 5th percentile of the off-diagonal latencies; split at LEAP_C2C_SPLIT. */
int leap__cluster_cpus(const double *lat, int n, int *label, double *confidence);
/* Chunks by their latency from each of k CPU clusters, lat[chunk * k + cluster] (ns):
 * dissimilarity max over clusters of |log(lat_a / lat_b)|, split at LEAP_MEM_SPLIT. */
int leap__cluster_chunks(const double *lat, int n, int k, int *label, double *confidence);
/* The memory cluster (of nk, as label[] gives the n chunks of lat) whose chunks are
 * nearest on average to a chunk measured as row[k]; -1 if no cluster has a chunk. */
int leap__chunk_nearest_cluster(const double *lat, int n, int k, const int *label, int nk,
				const double *row);
/* The cluster a chunk is nearest to: argmin of its k latencies, or -1 when the second
 * nearest is within LEAP_MEM_SPLIT of it (equally near). */
int leap__chunk_near(const double *lat, int k);
/* Median of n values (sorts v). */
double leap__median(double *v, int n);

/* ------------------------------------------------------------ probe.c */
/*
 * The test seam: a latency model replaces the probes (tests/t_measure.c). With it,
 * CPUs 0 .. ncpus-1 stand for the machine's, each in node cpu_node(cpu), and no thread
 * is pinned or timed.
 */
struct leap__measure_model {
	int ncpus;
	void *arg;
	double (*c2c)(void *arg, int a, int b, unsigned sample);		 /* ns one-way */
	double (*chunk)(void *arg, int cpu, int node, uint64_t chunk, unsigned sample); /* ns */
	int (*cpu_node)(void *arg, int cpu);
};
extern const struct leap__measure_model *leap__test_measure_model;

/* A probing thread: pinned to one CPU in turn, runs one probe at a time for its owner. */
struct leap__prober;
int leap__prober_new(struct leap__prober **out);
void leap__prober_free(struct leap__prober *p);
/* One-way core-to-core latency between CPUs a and b (ns): the caller pins to a and the
 * prober to b, a cache line passes back and forth `trips` times, bounded in time. */
int leap__probe_c2c(struct leap__prober *p, int a, int b, unsigned trips, unsigned sample,
		    double *ns);
/* Build a dependent chain (a cycle) through per_page cache lines of every page_step-th
 * page of buf[0, bytes), pages and lines in random order; returns its start (NULL: no
 * memory). */
void *leap__chain_build(char *buf, uint64_t bytes, uint64_t page_step, uint64_t per_page,
			uint64_t seed);
/* Latency of one step of the chain at *pos (ns), `steps` steps on CPU cpu. flush: the
 * lines leave the caches first (clflush), so every step comes from memory, and *pos
 * stays; else the chase leaves *pos where it stopped, for the next sample to go on from
 * lines that are not in the caches (the chain must be far larger than they are). */
int leap__probe_chase(int cpu, void **pos, uint64_t steps, int flush, double *ns);
/* Read bandwidth of buf (GB/s) with one thread on each of cpus[0 .. n-1]. */
int leap__probe_read(const int *cpus, int n, const char *buf, uint64_t bytes, double *gbps);
/* Pin the calling thread to one CPU. */
int leap__pin(int cpu);

/* ------------------------------------------------------------ measure.c */
/* For the affinity monitor: the probed CPUs and their clusters. Arrays owned by m;
 * -ENODATA if core-to-core was not measured. */
int leap__measure_clusters(const struct leap_measure *m, const int **cpus, const int **cluster,
			   int *ncpus, int *nclusters);

#endif /* LEAP_MEASURE_H */
