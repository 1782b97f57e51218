/*
 * measure.c - leap_measure: runs the probes (probe.c) over the machine's CPUs and the
 * instance's memory, draws the domains from them (cluster.c) and answers queries.
 *
 * Memory comes from the instance's pools through the public region API: a region on
 * each memory node holds the latency and bandwidth buffers, another the chunks to label,
 * so what is labelled is exactly the memory the library hands out (and, with
 * LEAP_MEASURE_KEEP, the chunks stay for virtual nodes).
 *
 * Threads: leap_measure_new() runs on its caller's thread, pinning it to CPUs in turn
 * and restoring its affinity at the end, plus one prober thread. A finished leap_measure
 * is never written again: readers need no lock.
 */
#include "measure/measure.h"
#include "os/os.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1ull << 20)
#define LEAP_MEASURE_ROUNDS 5
#define LEAP_MEASURE_BUF (256 * MIB)
#define LEAP_MEASURE_LABEL (64 * MIB)
#define LEAP_MEASURE_TRIPS 500
#define LEAP_MEASURE_ROUNDS_MAX 1000
#define LEAP_MEASURE_TRIPS_MAX 1000000
#define LEAP_MEASURE_MAX_CPUS 64
/* Chase steps per latency sample at most, and lines per page of the latency chain. */
#define LEAP_CHASE_STEPS (1u << 18)
#define LEAP_CHASE_PER_PAGE 16
/* The chunk probe's chain: every 8th page, 8 lines in each. */
#define LEAP_CHUNK_PAGE_STEP 8
#define LEAP_CHUNK_PER_PAGE 8
/* Readers per node in the bandwidth probe at most. */
#define LEAP_READERS_MAX 16
/* Nominal local latency (ns) of the model when nothing was measured. */
#define LEAP_LOCAL_NS 80.0

struct stat3 {
	double med, min, max;
	unsigned n; /* samples; 0: not measured */
};

struct leap_measure {
	struct leap_ctx *ctx;
	const struct leap_topo *topo;
	struct leap_measure_opts o;
	int nodes;		/* topo->count */
	struct stat3 *lat, *bw; /* [nodes * nodes]: CPU node x memory node */
	int nallowed;		/* CPUs this thread may run on, each with its node */
	int *allowed, *allowed_node;
	int ncpus;		/* probed CPUs */
	int *cpus, *cpu_node, *cluster;
	struct stat3 *c2c;	/* [ncpus * ncpus] */
	int nclusters;
	uint64_t nchunks;
	int *chunk_node, *chunk_mc, *chunk_near;
	double *chunk_lat; /* [nchunks * nclusters] */
	void **chunk_addr; /* with LEAP_MEASURE_KEEP */
	struct leap_region **regions; /* the kept chunks' regions, [nodes] */
	struct leap_domains dom;
};

static void stat_of(struct stat3 *s, double *v, int n)
{
	if (n <= 0)
		return;
	s->n = (unsigned)n;
	s->med = leap__median(v, n); /* sorts */
	s->min = v[0];
	s->max = v[n - 1];
}

/* ------------------------------------------------------------ which CPUs */

static int node_of_cpu(const struct leap_topo *t, int cpu)
{
	const struct leap__measure_model *mod = leap__test_measure_model;
	if (mod)
		return mod->cpu_node(mod->arg, cpu);
	for (int n = 0; n < t->count; n++)
		for (int i = 0; i < t->ncpus[n]; i++)
			if (t->cpus[n][i] == cpu)
				return n;
	return -1;
}

/* The CPUs this thread may run on, each with its node. */
static int list_cpus(struct leap_measure *m, const cpu_set_t *allowed)
{
	const struct leap__measure_model *mod = leap__test_measure_model;
	int all = mod ? mod->ncpus : CPU_SETSIZE;
	int cap = mod ? mod->ncpus : CPU_COUNT(allowed);
	m->allowed = calloc((size_t)cap + 1, sizeof(int));
	m->allowed_node = calloc((size_t)cap + 1, sizeof(int));
	if (!m->allowed || !m->allowed_node)
		return -ENOMEM;
	for (int c = 0; c < all && m->nallowed < cap; c++)
		if (mod || CPU_ISSET(c, allowed)) {
			m->allowed[m->nallowed] = c;
			m->allowed_node[m->nallowed++] = node_of_cpu(m->topo, c);
		}
	return m->nallowed > 0 ? 0 : -ENODEV;
}

/* The CPUs to probe core to core: at most max, taken from the nodes in turn so that a
 * cap keeps every node represented; listed in CPU order. */
static int pick_cpus(struct leap_measure *m, unsigned max)
{
	m->cpus = calloc((size_t)m->nallowed, sizeof(int));
	m->cpu_node = calloc((size_t)m->nallowed, sizeof(int));
	char *taken = calloc((size_t)m->nallowed, 1);
	if (!m->cpus || !m->cpu_node || !taken) {
		free(taken);
		return -ENOMEM;
	}
	int n = 0;
	for (int more = 1; more && (unsigned)n < max;) {
		more = 0;
		for (int node = -1; node < m->nodes && (unsigned)n < max; node++)
			for (int i = 0; i < m->nallowed; i++)
				if (!taken[i] && m->allowed_node[i] == node) {
					taken[i] = 1;
					n++;
					more = 1;
					break;
				}
	}
	n = 0;
	for (int i = 0; i < m->nallowed; i++)
		if (taken[i]) {
			m->cpus[n] = m->allowed[i];
			m->cpu_node[n++] = m->allowed_node[i];
		}
	free(taken);
	m->ncpus = n;
	return 0;
}

/* ------------------------------------------------------------ core to core */

static int measure_c2c(struct leap_measure *m)
{
	int n = m->ncpus;
	unsigned rounds = m->o.rounds;
	m->c2c = calloc((size_t)n * (size_t)n, sizeof(*m->c2c));
	m->cluster = calloc((size_t)n, sizeof(int));
	double *v = calloc(rounds, sizeof(double)), *med = calloc((size_t)n * (size_t)n, sizeof(double));
	struct leap__prober *p = NULL;
	int rc = !m->c2c || !m->cluster || !v || !med ? -ENOMEM : 0;
	if (!rc && !leap__test_measure_model)
		rc = leap__prober_new(&p);
	for (int a = 0; !rc && a < n; a++)
		for (int b = a + 1; !rc && b < n; b++) {
			int got = 0;
			for (unsigned s = 0; !rc && s < rounds; s++) {
				/* a round trip crosses both ways: (a, b) measures (b, a) too, and
				 * neither thread moves between the pair's samples */
				rc = leap__probe_c2c(p, m->cpus[a], m->cpus[b], m->o.c2c_trips, s,
						     &v[got]);
				if (rc == -ETIMEDOUT) /* the other CPU was not scheduled in time */
					rc = 0;
				else if (!rc)
					got++;
			}
			stat_of(&m->c2c[a * n + b], v, got);
			m->c2c[b * n + a] = m->c2c[a * n + b];
		}
	leap__prober_free(p);
	if (!rc) {
		/* a pair never measured counts as the typical pair: it splits nothing */
		int k = 0;
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				if (a != b && m->c2c[a * n + b].n)
					med[k++] = m->c2c[a * n + b].med;
		double typical = k ? leap__median(med, k) : 1;
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				med[a * n + b] = a == b ? 0 : m->c2c[a * n + b].n ? m->c2c[a * n + b].med : typical;
		rc = leap__cluster_cpus(med, n, m->cluster, &m->dom.cpu_confidence);
		if (rc > 0) {
			m->nclusters = rc;
			rc = 0;
		}
	}
	free(v);
	free(med);
	return rc;
}

/* ------------------------------------------------------------ latency, bandwidth */

static int node_cpus(const struct leap_measure *m, int node, int *out, int max)
{
	int k = 0;
	for (int i = 0; i < m->nallowed && k < max; i++)
		if (m->allowed_node[i] == node)
			out[k++] = m->allowed[i];
	return k;
}

/* Latency and bandwidth from every node with CPUs to memory node mem. */
static int measure_node(struct leap_measure *m, int mem)
{
	unsigned what = m->o.what;
	uint64_t bytes = 0;
	if (what & LEAP_MEASURE_LATENCY)
		bytes = m->o.latency_bytes;
	if ((what & LEAP_MEASURE_BANDWIDTH) && m->o.bandwidth_bytes > bytes)
		bytes = m->o.bandwidth_bytes;
	bytes = bytes / LEAP_PAGE_SIZE * LEAP_PAGE_SIZE;
	struct leap_region *r;
	int rc = leap_region_new(m->ctx, bytes, mem, &r);
	if (rc)
		return rc;
	char *buf = leap_region_addr(r);
	/* map every page now: a fault per page would cost more than the probes */
	leap__sys_populate_write(buf, bytes / LEAP_PAGE_SIZE);
	double *v = calloc(m->o.rounds, sizeof(double));
	int cpus[LEAP_READERS_MAX];
	void *start = NULL;
	uint64_t lat_bytes = m->o.latency_bytes / LEAP_PAGE_SIZE * LEAP_PAGE_SIZE, steps = 0;
	if (!v)
		rc = -ENOMEM;
	if (!rc && (what & LEAP_MEASURE_LATENCY)) {
		start = leap__chain_build(buf, lat_bytes, 1, LEAP_CHASE_PER_PAGE, 0x5eed + (uint64_t)mem);
		steps = lat_bytes / LEAP_PAGE_SIZE * LEAP_CHASE_PER_PAGE;
		steps = steps < LEAP_CHASE_STEPS ? steps : LEAP_CHASE_STEPS;
		if (!start)
			rc = -ENOMEM;
	}
	for (int c = 0; !rc && c < m->nodes; c++) {
		int nc = node_cpus(m, c, cpus, LEAP_READERS_MAX);
		if (nc == 0)
			continue;
		uint64_t t0 = leap__sys_now_ns();
		for (unsigned s = 0; start && !rc && s < m->o.rounds; s++)
			rc = leap__probe_chase(cpus[0], &start, steps, 0, &v[s]);
		if (start && !rc)
			stat_of(&m->lat[c * m->nodes + mem], v, (int)m->o.rounds);
		uint64_t t1 = leap__sys_now_ns();
		for (unsigned s = 0; (what & LEAP_MEASURE_BANDWIDTH) && !rc && s < m->o.rounds; s++)
			rc = leap__probe_read(cpus, nc, buf, m->o.bandwidth_bytes, &v[s]);
		if ((what & LEAP_MEASURE_BANDWIDTH) && !rc)
			stat_of(&m->bw[c * m->nodes + mem], v, (int)m->o.rounds);
		m->dom.latency_seconds += (double)(t1 - t0) / 1e9;
		m->dom.bandwidth_seconds += (double)(leap__sys_now_ns() - t1) / 1e9;
	}
	free(v);
	leap_region_destroy(&r);
	return rc;
}

/* ------------------------------------------------------------ memory domains */

/* The chunks of memory node mem: latency of each from each cluster's first CPU. */
/*
 * Chunk id's latency from each cluster's first CPU into row[nclusters]: the least of
 * `rounds` samples numbered from `sample` (the model seam tells passes apart by them).
 */
static int probe_chunk(struct leap_measure *m, uint64_t id, unsigned sample, double *row)
{
	const struct leap__measure_model *mod = leap__test_measure_model;
	/* 64 pages of the chunk, 8 lines each: few enough pages that the flushing walk leaves
	 * their translations cached, so the timed chase sees memory, not page walks */
	uint64_t lines = LEAP_CHUNK_BYTES / LEAP_PAGE_SIZE / LEAP_CHUNK_PAGE_STEP * LEAP_CHUNK_PER_PAGE;
	double *v = calloc(m->o.rounds, sizeof(double));
	void *start = mod ? NULL : leap__chain_build(m->chunk_addr[id], LEAP_CHUNK_BYTES,
						     LEAP_CHUNK_PAGE_STEP, LEAP_CHUNK_PER_PAGE, 0xc4u + id);
	int rc = !v || (!mod && !start) ? -ENOMEM : 0;
	for (int k = 0; !rc && k < m->nclusters; k++) {
		int rep = -1;
		for (int c = 0; c < m->ncpus && rep < 0; c++)
			if (m->cluster[c] == k)
				rep = m->cpus[c];
		for (unsigned s = 0; !rc && s < m->o.rounds; s++)
			if (mod)
				v[s] = mod->chunk(mod->arg, rep, m->chunk_node[id], id, sample + s);
			else
				rc = leap__probe_chase(rep, &start, lines, 1, &v[s]);
		/* the least of the samples: interference from other work only adds time, and
		 * the least is what the memory itself takes */
		leap__median(v, (int)m->o.rounds); /* sorts */
		row[k] = v[0];
	}
	free(v);
	return rc;
}

/* The chunks of memory node mem: latency of each from each cluster's first CPU. */
static int label_node(struct leap_measure *m, int mem, uint64_t first, uint64_t count)
{
	int rc = leap_region_new(m->ctx, count * LEAP_CHUNK_BYTES, mem, &m->regions[mem]);
	if (rc)
		return rc;
	char *base = leap_region_addr(m->regions[mem]);
	leap__sys_populate_write(base, count * LEAP_CHUNK_BYTES / LEAP_PAGE_SIZE);
	for (uint64_t i = 0; !rc && i < count; i++) {
		uint64_t id = first + i;
		m->chunk_node[id] = mem;
		m->chunk_addr[id] = base + i * LEAP_CHUNK_BYTES;
		rc = probe_chunk(m, id, 0, &m->chunk_lat[id * (uint64_t)m->nclusters]);
	}
	return rc;
}

/* Chunks in memory cluster c. */
static uint64_t cluster_size(const struct leap_measure *m, int c)
{
	uint64_t in = 0;
	for (uint64_t i = 0; i < m->nchunks; i++)
		in += m->chunk_mc[i] == c;
	return in;
}

/*
 * A split must measure again: up to LEAP_MEM_RECHECK chunks, spread over every domain,
 * are measured anew, and in each domain at least LEAP_MEM_RECHECK_AGREE of them must
 * again be nearest to their own domain. A split made of noise (a guest's vCPU
 * descheduled during some chunks' samples, a host busy elsewhere) does not come back.
 */
#define LEAP_MEM_RECHECK 128
#define LEAP_MEM_RECHECK_AGREE 0.75
static int split_reproduces(struct leap_measure *m, int k, int *ok)
{
	int nk = m->nclusters, rc = 0;
	double *row = calloc((size_t)nk, sizeof(double));
	if (!row)
		return -ENOMEM;
	*ok = 1;
	for (int c = 0; !rc && c < k; c++) {
		/* every step-th chunk of domain c, LEAP_MEM_RECHECK / k of them at most */
		uint64_t in = cluster_size(m, c), want = LEAP_MEM_RECHECK / (uint64_t)k;
		uint64_t step = in > want ? in / want : 1, seen = 0, agree = 0;
		for (uint64_t i = 0, nth = 0; !rc && i < m->nchunks; i++) {
			if (m->chunk_mc[i] != c || nth++ % step)
				continue;
			rc = probe_chunk(m, i, m->o.rounds, row);
			if (rc)
				break;
			seen++;
			agree += leap__chunk_nearest_cluster(m->chunk_lat, (int)m->nchunks, nk,
							     m->chunk_mc, k, row) == c;
		}
		if (!seen || (double)agree < LEAP_MEM_RECHECK_AGREE * (double)seen)
			*ok = 0;
	}
	free(row);
	return rc;
}

/*
 * A memory split counts only when it is clear (confidence at least
 * LEAP_MEM_CONFIDENCE_MIN) and every domain holds a share of the chunks
 * (LEAP_MEM_SHARE_MIN): a false memory node sends pages to the wrong place for good,
 * while a missed one leaves things as sysfs has them.
 */
#define LEAP_MEM_CONFIDENCE_MIN 0.25
#define LEAP_MEM_SHARE_MIN 0.03
static int memory_split_holds(const struct leap_measure *m, int k)
{
	if (m->dom.mem_confidence < LEAP_MEM_CONFIDENCE_MIN)
		return 0;
	for (int c = 0; c < k; c++) {
		uint64_t in = cluster_size(m, c);
		if (in < 2 || (double)in < LEAP_MEM_SHARE_MIN * (double)m->nchunks)
			return 0;
	}
	return 1;
}

/* The share of the chunks in the largest cluster: the confidence of "uniform" after a
 * split was judged noise. */
static double main_share(const struct leap_measure *m, int k)
{
	uint64_t best = 0;
	for (int c = 0; c < k; c++) {
		uint64_t in = cluster_size(m, c);
		best = in > best ? in : best;
	}
	return m->nchunks ? (double)best / (double)m->nchunks : 1;
}

static int measure_memory(struct leap_measure *m)
{
	uint64_t per = m->o.label_bytes / LEAP_CHUNK_BYTES, total = 0;
	for (int n = 0; n < m->nodes; n++)
		if (leap__topo_valid_mem_node(m->topo, n))
			total += per;
	if (per == 0)
		return -EINVAL;
	m->nchunks = total;
	m->chunk_node = calloc(total, sizeof(int));
	m->chunk_mc = calloc(total, sizeof(int));
	m->chunk_near = calloc(total, sizeof(int));
	m->chunk_addr = calloc(total, sizeof(void *));
	m->chunk_lat = calloc(total * (uint64_t)m->nclusters, sizeof(double));
	m->regions = calloc((size_t)m->nodes, sizeof(*m->regions));
	if (!m->chunk_node || !m->chunk_mc || !m->chunk_near || !m->chunk_addr || !m->chunk_lat ||
	    !m->regions)
		return -ENOMEM;
	uint64_t first = 0;
	int rc = 0;
	for (int n = 0; !rc && n < m->nodes; n++)
		if (leap__topo_valid_mem_node(m->topo, n)) {
			rc = label_node(m, n, first, per);
			first += per;
		}
	if (rc)
		return rc;
	rc = leap__cluster_chunks(m->chunk_lat, (int)total, m->nclusters, m->chunk_mc,
				  &m->dom.mem_confidence);
	if (rc < 0)
		return rc;
	m->dom.mem_clusters = rc;
	int again = 1;
	if (rc > 1 && memory_split_holds(m, rc)) {
		int err = split_reproduces(m, rc, &again);
		if (err)
			return err;
	}
	if (rc > 1 && (!again || !memory_split_holds(m, rc))) {
		/* a weak split is noise, not a domain: report uniform memory, with the
		 * confidence that it is */
		for (uint64_t i = 0; i < total; i++)
			m->chunk_mc[i] = 0;
		m->dom.mem_clusters = 1;
		m->dom.mem_confidence = main_share(m, rc);
	}
	for (uint64_t i = 0; i < total; i++)
		m->chunk_near[i] = leap__chunk_near(&m->chunk_lat[i * (uint64_t)m->nclusters],
						    m->nclusters);
	return 0;
}

/* ------------------------------------------------------------ verdict */

/* 1 if some node's members (CPUs or chunks) fall in more than one cluster. */
static int splits_a_node(const int *node, const int *cluster, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		for (uint64_t j = i + 1; j < n; j++)
			if (node[i] == node[j] && cluster[i] != cluster[j])
				return 1;
	return 0;
}

static void verdict(struct leap_measure *m)
{
	struct leap_domains *d = &m->dom;
	const struct leap_topo *t = m->topo;
	for (int n = 0; n < t->count; n++) {
		d->sysfs_nodes += t->online[n];
		d->sysfs_cpu_nodes += t->online[n] && t->ncpus[n] > 0;
	}
	int len = snprintf(d->verdict, sizeof(d->verdict), "sysfs shows %d node%s", d->sysfs_nodes,
			   d->sysfs_nodes == 1 ? "" : "s");
	char *at = d->verdict + len;
	size_t room = sizeof(d->verdict) - (size_t)len;
	if (!d->cpu_clusters) {
		snprintf(at, room, "; core-to-core and memory domains not measured");
		return;
	}
	int cpu_split = splits_a_node(m->cpu_node, m->cluster, (uint64_t)m->ncpus);
	if (!d->mem_clusters) {
		snprintf(at, room, "; measured %d CPU cluster%s; memory domains not measured%s",
			 d->cpu_clusters, d->cpu_clusters == 1 ? "" : "s",
			 cpu_split ? ": CPUs of one node split, measure memory to tell hidden NUMA" : "");
		return;
	}
	int mem_split = splits_a_node(m->chunk_node, m->chunk_mc, m->nchunks);
	d->hidden = mem_split;
	int memnodes = 0;
	for (int n = 0; n < t->count; n++)
		memnodes += leap__topo_valid_mem_node(t, n);
	const char *why = mem_split ? ": hidden NUMA, memory domains that sysfs does not show"
			  : d->mem_clusters == 1 && cpu_split
				  ? ": coherence domains over uniform memory, no hidden NUMA"
			  : d->mem_clusters == 1 ? ": uniform: no hidden NUMA"
			  : d->mem_clusters < memnodes ? ": some nodes' memory measured alike, no hidden NUMA"
						 : ": as sysfs shows, no hidden NUMA";
	snprintf(at, room, "; measured %d CPU cluster%s and %d memory cluster%s%s", d->cpu_clusters,
		 d->cpu_clusters == 1 ? "" : "s", d->mem_clusters, d->mem_clusters == 1 ? "" : "s", why);
}

/* ------------------------------------------------------------ the call */

static int run(struct leap_measure *m)
{
	unsigned what = m->o.what;
	int rc = 0;
	if (what & (LEAP_MEASURE_C2C | LEAP_MEASURE_MEMORY)) {
		uint64_t t0 = leap__sys_now_ns();
		rc = pick_cpus(m, m->o.max_cpus);
		if (!rc)
			rc = measure_c2c(m);
		m->dom.c2c_seconds = (double)(leap__sys_now_ns() - t0) / 1e9;
		m->dom.cpus = (unsigned)m->ncpus;
		m->dom.cpu_clusters = m->nclusters;
	}
	if (!rc && (what & (LEAP_MEASURE_LATENCY | LEAP_MEASURE_BANDWIDTH)) &&
	    !leap__test_measure_model)
		for (int n = 0; !rc && n < m->nodes; n++)
			if (leap__topo_valid_mem_node(m->topo, n))
				rc = measure_node(m, n);
	if (!rc && (what & LEAP_MEASURE_MEMORY)) {
		uint64_t t0 = leap__sys_now_ns();
		rc = measure_memory(m);
		m->dom.memory_seconds = (double)(leap__sys_now_ns() - t0) / 1e9;
		m->dom.chunks = m->nchunks;
	}
	if (!rc)
		verdict(m);
	return rc;
}

LEAP_API int leap_measure_new(struct leap_ctx *ctx, const struct leap_measure_opts *opts,
			      struct leap_measure **out)
{
	struct leap_measure_opts o = { .size = sizeof(o) };
	int err = 0;
	opts = leap__opts_in(&o, sizeof(o), opts, &err);
	if (err)
		return err;
	if (!ctx || !out || (o.what & ~(LEAP_MEASURE_ALL | LEAP_MEASURE_KEEP)))
		return -EINVAL;
	if (!(o.what & LEAP_MEASURE_ALL))
		o.what |= LEAP_MEASURE_ALL;
	if (o.what & LEAP_MEASURE_MEMORY)
		o.what |= LEAP_MEASURE_C2C;
	o.rounds = o.rounds ? o.rounds : LEAP_MEASURE_ROUNDS;
	o.latency_bytes = o.latency_bytes ? o.latency_bytes : LEAP_MEASURE_BUF;
	o.bandwidth_bytes = o.bandwidth_bytes ? o.bandwidth_bytes : LEAP_MEASURE_BUF;
	o.label_bytes = o.label_bytes ? o.label_bytes : LEAP_MEASURE_LABEL;
	o.c2c_trips = o.c2c_trips ? o.c2c_trips : LEAP_MEASURE_TRIPS;
	o.max_cpus = o.max_cpus ? o.max_cpus : LEAP_MEASURE_MAX_CPUS;
	o.latency_bytes -= o.latency_bytes % LEAP_PAGE_SIZE;
	o.bandwidth_bytes -= o.bandwidth_bytes % LEAP_PAGE_SIZE;
	if (o.rounds > LEAP_MEASURE_ROUNDS_MAX || o.c2c_trips > LEAP_MEASURE_TRIPS_MAX)
		return -EINVAL;
	if ((o.what & LEAP_MEASURE_LATENCY) && o.latency_bytes < LEAP_PAGE_SIZE)
		return -EINVAL;
	if ((o.what & LEAP_MEASURE_BANDWIDTH) && o.bandwidth_bytes < 64 * LEAP_PAGE_SIZE)
		return -EINVAL;
	if ((o.what & LEAP_MEASURE_MEMORY) && o.label_bytes < LEAP_CHUNK_BYTES)
		return -EINVAL;
	struct leap_measure *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ctx = ctx;
	m->topo = leap_ctx_topo(ctx);
	m->o = o;
	m->nodes = m->topo->count;
	m->dom.size = sizeof(m->dom);
	m->lat = calloc((size_t)m->nodes * (size_t)m->nodes, sizeof(*m->lat));
	m->bw = calloc((size_t)m->nodes * (size_t)m->nodes, sizeof(*m->bw));
	cpu_set_t mine;
	int rc = -pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine);
	if (!rc) {
		if (!m->lat || !m->bw)
			rc = -ENOMEM;
		if (!rc)
			rc = list_cpus(m, &mine);
		if (!rc)
			rc = run(m);
		pthread_setaffinity_np(pthread_self(), sizeof(mine), &mine);
	}
	if (!rc && !(o.what & LEAP_MEASURE_KEEP) && m->regions) {
		for (int n = 0; n < m->nodes; n++)
			leap_region_destroy(&m->regions[n]);
		for (uint64_t i = 0; i < m->nchunks; i++)
			m->chunk_addr[i] = NULL;
	}
	if (rc) {
		leap_measure_destroy(&m);
		return rc;
	}
	*out = m;
	return 0;
}

LEAP_API void leap_measure_destroy(struct leap_measure **mp)
{
	if (!mp || !*mp)
		return;
	struct leap_measure *m = *mp;
	for (int n = 0; m->regions && n < m->nodes; n++)
		leap_region_destroy(&m->regions[n]);
	free(m->regions);
	free(m->lat);
	free(m->bw);
	free(m->allowed);
	free(m->allowed_node);
	free(m->cpus);
	free(m->cpu_node);
	free(m->cluster);
	free(m->c2c);
	free(m->chunk_node);
	free(m->chunk_mc);
	free(m->chunk_near);
	free(m->chunk_lat);
	free(m->chunk_addr);
	free(m);
	*mp = NULL;
}

/* ------------------------------------------------------------ queries */

static int sample_out(const struct stat3 *s, struct leap_sample *out)
{
	if (!s->n)
		return -ENODATA;
	struct leap_sample full = { .size = sizeof(full), .median = s->med, .min = s->min,
				    .max = s->max, .samples = s->n };
	return leap__struct_out(out, out->size, &full, sizeof(full));
}

static int matrix(const struct leap_measure *m, const struct stat3 *v, int a, int b,
		  struct leap_sample *out)
{
	if (!m || !out)
		return -EINVAL;
	if (a < 0 || b < 0 || a >= m->nodes || b >= m->nodes)
		return -ENODEV;
	return sample_out(&v[a * m->nodes + b], out);
}

LEAP_API int leap_measure_latency(const struct leap_measure *m, int cpu_node, int mem_node,
				  struct leap_sample *ns)
{
	return matrix(m, m ? m->lat : NULL, cpu_node, mem_node, ns);
}

LEAP_API int leap_measure_bandwidth(const struct leap_measure *m, int cpu_node, int mem_node,
				    struct leap_sample *gbps)
{
	return matrix(m, m ? m->bw : NULL, cpu_node, mem_node, gbps);
}

static int cpu_index(const struct leap_measure *m, int cpu)
{
	for (int i = 0; i < m->ncpus; i++)
		if (m->cpus[i] == cpu)
			return i;
	return -ENODEV;
}

LEAP_API int leap_measure_c2c(const struct leap_measure *m, int cpu_a, int cpu_b,
			      struct leap_sample *ns)
{
	if (!m || !ns)
		return -EINVAL;
	if (!m->c2c)
		return -ENODATA;
	int a = cpu_index(m, cpu_a), b = cpu_index(m, cpu_b);
	if (a < 0 || b < 0 || a == b)
		return -ENODEV;
	return sample_out(&m->c2c[a * m->ncpus + b], ns);
}

LEAP_API int leap_measure_cpus(const struct leap_measure *m, int *cpus, size_t max)
{
	if (!m || (!cpus && max))
		return -EINVAL;
	for (int i = 0; i < m->ncpus && (size_t)i < max; i++)
		cpus[i] = m->cpus[i];
	return m->ncpus;
}

LEAP_API int leap_measure_cpu_cluster(const struct leap_measure *m, int cpu)
{
	if (!m)
		return -EINVAL;
	if (!m->cluster)
		return -ENODATA;
	int i = cpu_index(m, cpu);
	return i < 0 ? i : m->cluster[i];
}

LEAP_API int leap_measure_domains(const struct leap_measure *m, struct leap_domains *out)
{
	if (!m || !out)
		return -EINVAL;
	return leap__struct_out(out, out->size, &m->dom, sizeof(m->dom));
}

LEAP_API int leap_measure_chunk(const struct leap_measure *m, uint64_t i, struct leap_chunk_info *out)
{
	if (!m || !out)
		return -EINVAL;
	if (i >= m->nchunks)
		return m->nchunks ? -ENOENT : -ENODATA;
	struct leap_chunk_info full = { .size = sizeof(full), .node = m->chunk_node[i],
					.mem_cluster = m->chunk_mc[i], .near_cluster = m->chunk_near[i],
					.addr = m->chunk_addr[i] };
	return leap__struct_out(out, out->size, &full, sizeof(full));
}

LEAP_API int leap_measure_chunk_latency(const struct leap_measure *m, uint64_t i, int cluster,
					double *ns)
{
	if (!m || !ns)
		return -EINVAL;
	if (i >= m->nchunks)
		return m->nchunks ? -ENOENT : -ENODATA;
	if (cluster < 0 || cluster >= m->nclusters)
		return -ENODEV;
	*ns = m->chunk_lat[i * (uint64_t)m->nclusters + (uint64_t)cluster];
	return 0;
}

int leap__measure_clusters(const struct leap_measure *m, const int **cpus, const int **cluster,
			   int *ncpus, int *nclusters)
{
	*cpus = m->cpus;
	*cluster = m->cluster;
	*ncpus = m->ncpus;
	*nclusters = m->nclusters;
	return m->cluster ? 0 : -ENODATA;
}

/* ------------------------------------------------------------ model, virtual nodes */

LEAP_API int leap_latency_model(const struct leap_topo *topo, const struct leap_measure *m,
				int from, int to, double *ns)
{
	if (!topo && m)
		topo = m->topo;
	if (!topo || !ns)
		return -EINVAL;
	int d = leap_topo_distance(topo, from, to);
	if (d < 0)
		return d;
	if (m && from < m->nodes && to < m->nodes && m->lat[from * m->nodes + to].n) {
		*ns = m->lat[from * m->nodes + to].med;
		return 1;
	}
	/* scale from the measured local latency where there is one */
	double local = 0;
	int nl = 0;
	for (int n = 0; m && n < m->nodes; n++)
		if (m->lat[n * m->nodes + n].n)
			local += m->lat[n * m->nodes + n].med, nl++;
	local = nl ? local / nl : LEAP_LOCAL_NS;
	*ns = local * d / 10.0;
	return 0;
}

LEAP_API int leap_vnode_count(const struct leap_measure *m)
{
	if (!m)
		return -EINVAL;
	return m->nclusters ? m->nclusters : -ENODATA;
}

LEAP_API int leap_vnode_cpus(const struct leap_measure *m, int v, int *cpus, size_t max)
{
	if (!m || (!cpus && max))
		return -EINVAL;
	if (!m->nclusters)
		return -ENODATA;
	if (v < 0 || v >= m->nclusters)
		return -ENODEV;
	int k = 0;
	for (int i = 0; i < m->ncpus; i++)
		if (m->cluster[i] == v) {
			if ((size_t)k < max)
				cpus[k] = m->cpus[i];
			k++;
		}
	return k;
}

LEAP_API int leap_vnode_chunk(const struct leap_measure *m, int v, uint64_t k, void **addr)
{
	if (!m || !addr)
		return -EINVAL;
	if (!m->nclusters)
		return -ENODATA;
	if (v < 0 || v >= m->nclusters)
		return -ENODEV;
	if (!(m->o.what & LEAP_MEASURE_KEEP) || !m->nchunks)
		return -ENODATA;
	/* chunks near v first, then those equally near every domain */
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t i = 0; i < m->nchunks; i++)
			if (m->chunk_near[i] == (pass ? -1 : v) && k-- == 0) {
				*addr = m->chunk_addr[i];
				return 0;
			}
	return -ENOENT;
}
