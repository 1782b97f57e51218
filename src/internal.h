/*
 * internal.h - declarations shared between libpageleap's source files. Not installed.
 *
 * Units: inside the library, pool offsets and region positions are counted in pages
 * (LEAP_PAGE_SIZE) as uint64_t; bytes appear only at the syscall boundary (sys.c).
 *
 * Lock order (take left before right, never the reverse):
 *     region->lock  ->  ctx->lock  ->  pool->lock  ->  worker->lock
 * ctx->lock only guards lazy creation of pools and workers; it is never held while
 * copying or remapping.
 */
#ifndef LEAP_INTERNAL_H
#define LEAP_INTERNAL_H

#include "pageleap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEAP_API __attribute__((visibility("default")))
#define LEAP_PG ((uint64_t)LEAP_PAGE_SIZE)

/* Region addresses are aligned to this so huge pages can back them later. */
#define LEAP_REGION_ALIGN (2u << 20)
/* A region may use this many banks (see region.c) per node. */
#define LEAP_BANKS_MAX 64
/* A pool's offset space is mapped into the library in chunks of this many bytes by default
 * (16 GiB of address space, not memory), as it grows: small enough to fit anywhere
 * (sanitizers restrict the address space), large enough that a copy rarely crosses one. */
#define LEAP_POOL_CHUNK_DEFAULT (UINT64_C(16) << 30)
/* Offset space of one pool, in bytes (64 TiB): the windows of all regions on a node, one
 * per bank in use, must fit. */
#define LEAP_POOL_SPACE_MAX (UINT64_C(64) << 40)

/* ------------------------------------------------------------ sys.c */
int leap__sys_memfd(const char *name);
int leap__sys_map_pool(int fd, uint64_t pg_off, uint64_t npages, int node, void **out);
int leap__sys_populate_write(void *addr, uint64_t npages);
int leap__sys_fallocate(int fd, uint64_t pg_off, uint64_t npages);
int leap__sys_punch(int fd, uint64_t pg_off, uint64_t npages);
int leap__sys_map_file(void *addr, uint64_t npages, int fd, uint64_t pg_off);
int leap__sys_reserve(size_t len, size_t align, void **out);
void leap__sys_unmap(void *addr, size_t len);
uint64_t leap__sys_now_ns(void);

/* ------------------------------------------------------------ ivset.c */
/* A set of page numbers kept as sorted, disjoint, non-adjacent intervals [lo, hi). */
struct leap__iv {
	uint64_t lo, hi;
};
struct leap__ivset {
	struct leap__iv *v;
	size_t n, cap;
	uint64_t total; /* pages in the set */
};
int leap__ivset_add(struct leap__ivset *s, uint64_t lo, uint64_t hi);
int leap__ivset_remove(struct leap__ivset *s, uint64_t lo, uint64_t hi);
uint64_t leap__ivset_covered(const struct leap__ivset *s, uint64_t lo, uint64_t hi);
void leap__ivset_free(struct leap__ivset *s);
/* Call fn for each maximal interval of a \ b; stops early when fn returns non-zero. */
int leap__ivset_diff_each(const struct leap__ivset *a, const struct leap__ivset *b,
			  int (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg);
/* Call fn for each maximal interval of [lo, hi) \ s. */
int leap__ivset_gaps_each(const struct leap__ivset *s, uint64_t lo, uint64_t hi,
			  int (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg);

/* ------------------------------------------------------------ topo.c */
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
int leap__topo_valid_mem_node(const struct leap_topo *t, int node);

/* ------------------------------------------------------------ pool.c */
/*
 * A node's pool: one memfd whose whole offset space is mapped once (map) and bound to
 * the node (shared memory policy, set before any page exists). Pages are allocated
 * (fallocate) on demand and kept for reuse when a region stops using them; see pool.c.
 */
struct leap_pool {
	struct leap_ctx *ctx;
	int node;
	int fd;
	char **chunk; /* mappings of the offset space, for copying into; grows under lock */
	uint64_t chunk_pages;
	pthread_mutex_t lock;
	/* all below under lock */
	uint64_t cap;		   /* pages */
	uint64_t space_end;	   /* offset space handed out or free: [0, space_end) */
	uint64_t nchunks;	   /* chunk[0 .. nchunks) are mapped */
	struct leap__ivset space_free; /* offset space not owned by any window */
	struct leap__ivset alloc;  /* pages that exist (allocated in the memfd) */
	struct leap__ivset used;   /* pages mapped by a region */
};
int leap__pool_new(struct leap_ctx *ctx, int node, struct leap_pool **out);
void leap__pool_free(struct leap_pool *pool);
int leap__pool_window_get(struct leap_pool *pool, uint64_t npages, uint64_t *off);
void leap__pool_window_put(struct leap_pool *pool, uint64_t off, uint64_t npages);
int leap__pool_reserve(struct leap_pool *pool, uint64_t off, uint64_t npages);
void leap__pool_set_used(struct leap_pool *pool, uint64_t off, uint64_t npages, bool used);
/* Copy npages from src into the pool at off (populate, then memcpy), chunk by chunk. */
int leap__pool_copy_in(struct leap_pool *pool, uint64_t off, const void *src, uint64_t npages);

/* ------------------------------------------------------------ worker.c */
/* A thread bound to one node's CPUs that runs copy work for targets near that node. */
struct leap__worker;
int leap__worker_new(const struct leap_topo *t, int cpu_node, struct leap__worker **out);
void leap__worker_free(struct leap__worker *w);
/* Run fn(arg) on the worker and wait for it; returns fn's result. */
int leap__worker_call(struct leap__worker *w, int (*fn)(void *), void *arg);

/* ------------------------------------------------------------ ctx.c */
struct leap_ctx {
	struct leap_topo *topo;
	uint64_t pool_cap; /* pages; 0 = node size */
	uint64_t chunk_pages; /* pool mapping chunk */
	atomic_int refs;   /* the user's reference + one per live region */
	pthread_mutex_t lock;
	struct leap_pool **pools;	 /* [topo->count], created lazily under lock */
	struct leap__worker **workers; /* [topo->count], created lazily under lock */
};
int leap__ctx_pool(struct leap_ctx *ctx, int node, struct leap_pool **out);
int leap__ctx_worker(struct leap_ctx *ctx, int target_node, struct leap__worker **out);
void leap__ctx_ref(struct leap_ctx *ctx);
void leap__ctx_unref(struct leap_ctx *ctx);

/* ------------------------------------------------------------ region.c */
/*
 * A run: a maximal range of region pages on one node, in one bank. Page p of a run
 * lives at pool offset win[node][bank] + p, so a run is one contiguous file extent and
 * one kernel mapping.
 */
struct leap__run {
	uint64_t pg;	/* first page (region relative) */
	uint64_t n;	/* pages */
	int32_t node;
	int32_t bank;
};
struct leap_region {
	struct leap_ctx *ctx;
	char *base;
	uint64_t npages;
	size_t resv_len;  /* reserved virtual length (base .. base+resv_len) */
	pthread_mutex_t lock;
	/* under lock: */
	struct leap__run *runs; /* sorted by pg, covering [0, npages) */
	size_t nruns, runs_cap;
	uint64_t (*win)[LEAP_BANKS_MAX]; /* [node][bank] pool offset, UINT64_MAX if none */
	struct leap_region_stats st;
};
/* Pool offset of bank `bank` of the region on node; allocates the window on first use. */
int leap__region_window(struct leap_region *r, int node, int bank, uint64_t *off);
/* Index of the run holding page pg. pre: pg < npages, lock held. */
size_t leap__region_find_run(const struct leap_region *r, uint64_t pg);
/* Make [pg, pg+n) one run on (node, bank) and merge with equal neighbours. */
int leap__region_assign(struct leap_region *r, uint64_t pg, uint64_t n, int node, int bank);

#endif /* LEAP_INTERNAL_H */
