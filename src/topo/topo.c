/*
 * topo.c - the machine's NUMA topology, read once from libnuma and sysfs.
 *
 * A leap_topo is immutable after leap_topo_new() (only free memory is read anew per
 * query), so every reader is MT-Safe without locks. Memory-only nodes (CXL memory, or a
 * QEMU node without CPUs) have memory and no CPUs: work for them runs on the nearest
 * node that has CPUs, by the kernel's distance.
 */
#include "os/os.h"
#include "topo/topo.h"

#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysinfo.h>
#include <unistd.h>

static int node_exists(int node)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return access(path, F_OK) == 0;
}

/* Fill per-node facts from libnuma; on a kernel without NUMA, one node 0 holds all. */
static int read_nodes(struct leap_topo *t, int numa)
{
	struct bitmask *cpus = numa ? numa_allocate_cpumask() : NULL;
	if (numa && !cpus)
		return -ENOMEM;
	int ncpu_all = (int)sysconf(_SC_NPROCESSORS_CONF);
	for (int n = 0; n < t->count; n++) {
		t->online[n] = numa ? node_exists(n) : 1;
		long long freeb = 0, total = 0;
		if (numa && t->online[n]) {
			errno = 0;
			total = numa_node_size64(n, &freeb);
			if (total < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM)) {
				/* out of descriptors (t_limits) is not "no memory": a node
				 * read as memoryless would fail every later call -ENODEV */
				int rc = -errno;
				numa_bitmask_free(cpus);
				return rc;
			}
		} else if (!numa) {
			struct sysinfo si;
			sysinfo(&si);
			total = (long long)si.totalram * si.mem_unit;
		}
		t->mem_total[n] = total > 0 ? (uint64_t)total : 0;
		t->has_memory[n] = total > 0;
		int k = 0;
		t->cpus[n] = calloc((size_t)(ncpu_all > 0 ? ncpu_all : 1), sizeof(int));
		if (!t->cpus[n]) {
			if (cpus)
				numa_bitmask_free(cpus);
			return -ENOMEM;
		}
		if (!numa) {
			for (int c = 0; c < ncpu_all; c++)
				t->cpus[n][k++] = c;
		} else if (t->online[n] && (errno = 0, numa_node_to_cpus(n, cpus) == 0)) {
			for (unsigned c = 0; c < cpus->size && k < ncpu_all; c++)
				if (numa_bitmask_isbitset(cpus, c))
					t->cpus[n][k++] = (int)c;
		} else if (t->online[n] && (errno == EMFILE || errno == ENFILE)) {
			int rc = -errno; /* a node read as CPU-less would be wrong for good */
			numa_bitmask_free(cpus);
			return rc;
		}
		t->ncpus[n] = k;
	}
	if (cpus)
		numa_bitmask_free(cpus);
	return 0;
}

/* Distances and, per node, the nearest node that has CPUs (itself if it has some). */
static void read_distances(struct leap_topo *t, int numa)
{
	for (int a = 0; a < t->count; a++)
		for (int b = 0; b < t->count; b++) {
			int d = numa && t->online[a] && t->online[b] ? numa_distance(a, b) : 0;
			if (d <= 0)
				d = a == b ? 10 : 20;
			t->dist[a * t->count + b] = d;
		}
	for (int a = 0; a < t->count; a++) {
		int best = -1;
		for (int b = 0; b < t->count; b++) {
			if (!t->online[b] || t->ncpus[b] == 0)
				continue;
			if (best < 0 || t->dist[a * t->count + b] < t->dist[a * t->count + best] ||
			    (b == a && t->dist[a * t->count + b] == t->dist[a * t->count + best]))
				best = b;
		}
		t->nearest_cpu[a] = best;
	}
}

LEAP_API int leap_topo_new(struct leap_topo **out)
{
	if (!out)
		return -EINVAL;
	int numa = numa_available() >= 0;
	struct leap_topo *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->count = numa ? numa_max_node() + 1 : 1;
	size_t c = (size_t)t->count;
	t->online = calloc(c, sizeof(int));
	t->has_memory = calloc(c, sizeof(int));
	t->ncpus = calloc(c, sizeof(int));
	t->nearest_cpu = calloc(c, sizeof(int));
	t->dist = calloc(c * c, sizeof(int));
	t->cpus = calloc(c, sizeof(int *));
	t->mem_total = calloc(c, sizeof(uint64_t));
	int rc = -ENOMEM;
	if (t->online && t->has_memory && t->ncpus && t->nearest_cpu && t->dist && t->cpus &&
	    t->mem_total)
		rc = read_nodes(t, numa);
	if (rc) {
		leap_topo_destroy(&t);
		return rc;
	}
	read_distances(t, numa);
	*out = t;
	return 0;
}

LEAP_API void leap_topo_destroy(struct leap_topo **topo)
{
	if (!topo || !*topo)
		return;
	struct leap_topo *t = *topo;
	for (int n = 0; t->cpus && n < t->count; n++)
		free(t->cpus[n]);
	free(t->cpus);
	free(t->online);
	free(t->has_memory);
	free(t->ncpus);
	free(t->nearest_cpu);
	free(t->dist);
	free(t->mem_total);
	free(t);
	*topo = NULL;
}

LEAP_API int leap_topo_node_count(const struct leap_topo *topo)
{
	return topo ? topo->count : -EINVAL;
}

static int valid_node(const struct leap_topo *t, int node)
{
	return node >= 0 && node < t->count && t->online[node];
}

/* 1 if node exists and has memory (a pool can live there). */
int leap__topo_valid_mem_node(const struct leap_topo *t, int node)
{
	return valid_node(t, node) && t->has_memory[node];
}

/* From the CPU lists read at creation: no libnuma call, so no allocation (libnuma's
 * numa_node_of_cpu() allocates a mask per call and exits the process when that fails). */
int leap__topo_node_of_cpu(const struct leap_topo *t, int cpu)
{
	for (int n = 0; n < t->count; n++)
		for (int i = 0; i < t->ncpus[n]; i++)
			if (t->cpus[n][i] == cpu)
				return n;
	return -1;
}

LEAP_API int leap_topo_node(const struct leap_topo *topo, int node, struct leap_node_info *out)
{
	if (!topo || !out)
		return -EINVAL;
	if (node < 0 || node >= topo->count)
		return -ENODEV;
	struct leap_node_info full = { .size = sizeof(full) }, *info = &full; /* copied out */
	info->node = node;
	info->online = topo->online[node];
	info->has_memory = topo->has_memory[node];
	info->ncpus = topo->ncpus[node];
	info->nearest_cpu_node = topo->nearest_cpu[node];
	info->mem_total = topo->mem_total[node];
	info->mem_free = 0;
	if (topo->has_memory[node]) {
		long long freeb = 0;
		if (numa_available() >= 0) {
			if (numa_node_size64(node, &freeb) > 0 && freeb > 0)
				info->mem_free = (uint64_t)freeb;
		} else {
			struct sysinfo si;
			sysinfo(&si);
			info->mem_free = (uint64_t)si.freeram * si.mem_unit;
		}
	}
	return leap__struct_out(out, out->size, &full, sizeof(full));
}

LEAP_API int leap_topo_distance(const struct leap_topo *topo, int from, int to)
{
	if (!topo)
		return -EINVAL;
	if (!valid_node(topo, from) || !valid_node(topo, to))
		return -ENODEV;
	return topo->dist[from * topo->count + to];
}

LEAP_API int leap_topo_cpus(const struct leap_topo *topo, int node, int *cpus, size_t max)
{
	if (!topo || (!cpus && max))
		return -EINVAL;
	if (!valid_node(topo, node))
		return -ENODEV;
	for (int i = 0; i < topo->ncpus[node] && (size_t)i < max; i++)
		cpus[i] = topo->cpus[node][i];
	return topo->ncpus[node];
}
