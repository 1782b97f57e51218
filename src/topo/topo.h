/*
 * topo.h - the machine's NUMA topology as the rest of the library sees it. A leap_topo
 * is immutable after creation: readers need no lock. Not installed.
 */
#ifndef LEAP_TOPO_H
#define LEAP_TOPO_H

#include "util/util.h"

#include <stdint.h>

struct leap_topo {
	int count;	   /* node ids 0 .. count-1 */
	int *online;	   /* [count] */
	int *has_memory;   /* [count] */
	int *ncpus;	   /* [count] */
	int *nearest_cpu;  /* [count] nearest node with CPUs, -1 if none */
	int *dist;	   /* [count * count] */
	int **cpus;	   /* [count][ncpus] */
	uint64_t *mem_total; /* [count] bytes */
};
/* 1 if node is a node with memory that pages can be placed on, else 0. */
int leap__topo_valid_mem_node(const struct leap_topo *t, int node);
/* The node of a CPU (-1: none); allocates nothing. */
int leap__topo_node_of_cpu(const struct leap_topo *t, int cpu);

#endif /* LEAP_TOPO_H */
