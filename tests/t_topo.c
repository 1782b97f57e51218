/* Topology matches what libnuma and sysfs say: nodes, memory, CPUs, distances, and the
 * nearest node with CPUs for memory-only nodes. */
#include "util.h"

int main(void)
{
	t_name = "t_topo";
	struct leap_topo *t;
	OK(leap_topo_new(&t));
	int count = leap_topo_node_count(t);
	CHECK(count == numa_max_node() + 1, "count %d, numa_max_node %d", count, numa_max_node());
	int with_mem = 0, with_cpu = 0;
	struct bitmask *cpus = numa_allocate_cpumask();
	for (int n = 0; n < count; n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		OK(leap_topo_node(t, n, &ni));
		char path[64];
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		CHECK(ni.online == (access(path, F_OK) == 0), "node %d online", n);
		if (!ni.online)
			continue;
		long long fr;
		long long total = numa_node_size64(n, &fr);
		CHECK(ni.has_memory == (total > 0), "node %d has_memory", n);
		CHECK(!ni.has_memory || (ni.mem_total == (uint64_t)total && ni.mem_free <= ni.mem_total),
		      "node %d memory", n);
		numa_node_to_cpus(n, cpus);
		CHECK(ni.ncpus == (int)numa_bitmask_weight(cpus), "node %d cpus", n);
		int list[1024];
		int k = OK(leap_topo_cpus(t, n, list, 1024));
		CHECK(k == ni.ncpus, "cpu list length");
		for (int i = 0; i < k; i++)
			CHECK(numa_bitmask_isbitset(cpus, (unsigned)list[i]), "cpu %d on node %d", list[i], n);
		CHECK(leap_topo_distance(t, n, n) == 10, "local distance");
		for (int m = 0; m < count; m++) {
			struct leap_node_info mi = { .size = sizeof(mi) };
			OK(leap_topo_node(t, m, &mi));
			if (mi.online)
				CHECK(leap_topo_distance(t, n, m) == numa_distance(n, m), "distance %d-%d", n, m);
		}
		/* the nearest node with CPUs: itself, or the closest one */
		int near = ni.nearest_cpu_node;
		if (ni.ncpus)
			CHECK(near == n, "node %d has CPUs but nearest is %d", n, near);
		else {
			CHECK(near >= 0 && near != n, "memory-only node %d nearest %d", n, near);
			for (int m = 0; m < count; m++) {
				struct leap_node_info mi = { .size = sizeof(mi) };
				leap_topo_node(t, m, &mi);
				if (mi.online && mi.ncpus)
					CHECK(numa_distance(n, m) >= numa_distance(n, near),
					      "node %d closer than %d to %d", m, near, n);
			}
		}
		with_mem += ni.has_memory;
		with_cpu += ni.ncpus > 0;
		say("node %d: memory %s (%" PRIu64 " MiB), %d cpus, nearest cpu node %d", n,
		    ni.has_memory ? "yes" : "no", ni.mem_total >> 20, ni.ncpus, near);
	}
	numa_bitmask_free(cpus);
	CHECK(with_mem >= 1 && with_cpu >= 1, "no node with memory or with CPUs");
	ERR(leap_topo_node(t, count, &(struct leap_node_info){ .size = sizeof(struct leap_node_info) }), ENODEV);
	ERR(leap_topo_node(t, -1, &(struct leap_node_info){ .size = sizeof(struct leap_node_info) }), ENODEV);
	ERR(leap_topo_node(NULL, 0, &(struct leap_node_info){ .size = sizeof(struct leap_node_info) }), EINVAL);
	ERR(leap_topo_node(t, 0, &(struct leap_node_info){ .size = 4 }), EINVAL);
	ERR(leap_topo_distance(t, 0, count), ENODEV);
	leap_topo_destroy(&t);
	CHECK(t == NULL, "destroy sets NULL");
	say("measured %d nodes, %d with memory, %d with CPUs", count, with_mem, with_cpu);
	return 0;
}
