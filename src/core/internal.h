/*
 * internal.h - declarations shared between libpageleap's source files. Not installed.
 *
 * Units: inside the library, pool offsets and region positions are counted in pages
 * (LEAP_PAGE_SIZE) as uint64_t; bytes appear only at the syscall boundary (sys.c).
 *
 * Lock order (take left before right, never the reverse):
 *     region->lock  ->  ctx->lock  ->  pool->lock  ->  wp->lock  ->  job->lock
 *     worker->lock is a leaf (nothing is taken under it)
 * ctx->lock only guards lazy creation of pools, workers and the userfaultfd; it is never
 * held while copying or remapping. region->lock is held for one extent at a time.
 */
#ifndef LEAP_INTERNAL_H
#define LEAP_INTERNAL_H

#include "pageleap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LEAP_API __attribute__((visibility("default")))
#define LEAP_PG ((uint64_t)LEAP_PAGE_SIZE)

/* Region addresses are aligned to this so huge pages can back them. */
#define LEAP_REGION_ALIGN (2u << 20)
/* Pages (LEAP_PAGE_SIZE) per huge page. */
#define LEAP_HUGE_PG ((uint64_t)(LEAP_HUGE_PAGE_SIZE / LEAP_PAGE_SIZE))
/* Pool kinds (enum leap_pages) and external pools a region may use at once. */
#define LEAP_KINDS 3
#define LEAP_EXT_SLOTS 16
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
int leap__sys_memfd(const char *name, int kind);
int leap__sys_map_pool(int fd, uint64_t pg_off, uint64_t npages, int node, int kind, bool bind,
		       void **out);
int leap__sys_populate_write(void *addr, uint64_t npages);
void leap__sys_populate_read(void *addr, uint64_t npages);
int leap__sys_fallocate(int fd, uint64_t pg_off, uint64_t npages, int node, int kind);
int leap__sys_punch(int fd, uint64_t pg_off, uint64_t npages);
int leap__sys_truncate(int fd, uint64_t npages);
int leap__sys_map_file(void *addr, uint64_t npages, int fd, uint64_t pg_off, int kind);
/* Open path as an external pool file (see leap_pool_open); *kind in: wanted, out: found. */
int leap__sys_open_pool_file(const char *path, int *kind, bool *dax, uint64_t *fs_free);
/* Whether the kernel allows shared-memory THP (shmem_enabled not never/deny). */
bool leap__sys_shmem_thp_ok(void);
/* Free hugetlb pages of 2 MiB on node (sysfs), or 0. */
uint64_t leap__sys_free_hugepages(int node);
int leap__sys_reserve(size_t len, size_t align, void **out);
void leap__sys_unmap(void *addr, size_t len);
uint64_t leap__sys_now_ns(void);

/* ------------------------------------------------------------ stats.c */
/* A latency histogram: 4 buckets per power of two of nanoseconds (within 19%). */
#define LEAP_HIST_BUCKETS 256
struct leap__hist {
	uint64_t count, sum_ns, max_ns;
	uint32_t b[LEAP_HIST_BUCKETS];
};
/* Add a sample. A histogram whose count is 0 is empty, whatever its other fields hold. */
void leap__hist_add(struct leap__hist *h, uint64_t ns);
void leap__hist_merge(struct leap__hist *dst, const struct leap__hist *src);
/* The q-quantile (0..1) in ns: the lower bound of its bucket; 0 when empty. */
uint64_t leap__hist_quantile(const struct leap__hist *h, double q);

/* ------------------------------------------------------------ wp.c */
#define LEAP_WP_FAULTS_MAX 64 /* faults timed per extent; more are counted */
/* An extent in flight: write protected, listed so the listener can time its faults. */
struct leap__wp_extent {
	uintptr_t lo, hi;
	uint64_t start_ns;
	uint32_t nfaults;
	uint64_t fault_ns[LEAP_WP_FAULTS_MAX];
	struct leap__wp_extent *next;
};
struct leap__wp {
	int fd;	     /* the userfaultfd */
	int stop[2]; /* pipe that stops the listener */
	pthread_t thread;
	pthread_mutex_t lock;		   /* guards inflight and the extents' fault records */
	struct leap__wp_extent *inflight;
	/* protecting a huge-mapped shmem THP splits its entry into unpopulated ones; the
	 * 6.1 guest lost writes there (t_huge). Kernels with UFFD_FEATURE_WP_UNPOPULATED
	 * protect those too: THP moves with writers need it. */
	bool thp_ok;
};
int leap__wp_new(struct leap__wp **out);
void leap__wp_free(struct leap__wp *w);
int leap__wp_register(struct leap__wp *w, void *addr, uint64_t npages);
void leap__wp_track(struct leap__wp *w, struct leap__wp_extent *e, void *addr, uint64_t npages);
int leap__wp_set(struct leap__wp *w, void *addr, uint64_t npages, bool on);
void leap__wp_release(struct leap__wp *w, struct leap__wp_extent *e, struct leap__hist *h);

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
	int kind;	  /* enum leap_pages */
	uint64_t unit;	  /* pages per huge page of the kind, 1 for small pages */
	bool external;	  /* opened by leap_pool_open(): refcounted, freed by the last user */
	bool dax;	  /* pages are where the device is: no binding */
	atomic_int refs;  /* external pools: the user's + one per region using it */
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
	/* pages whose entries in chunk[]'s page tables were populated: copying into them
	 * needs no populate call. A hint: should the kernel drop an entry, a copy takes a
	 * fault there, and no data is lost. */
	struct leap__ivset mapped;
};
int leap__pool_new(struct leap_ctx *ctx, int node, int kind, struct leap_pool **out);
void leap__pool_free(struct leap_pool *pool);
/* External pools: one more user / one fewer (the last frees it). */
void leap__pool_ref(struct leap_pool *pool);
void leap__pool_unref(struct leap_pool *pool);
/* Pages the pool could still take (cap, the kernel's free memory or huge pages). */
uint64_t leap__pool_room(struct leap_pool *pool);
int leap__pool_window_get(struct leap_pool *pool, uint64_t npages, uint64_t *off);
void leap__pool_window_put(struct leap_pool *pool, uint64_t off, uint64_t npages);
int leap__pool_reserve(struct leap_pool *pool, uint64_t off, uint64_t npages);
void leap__pool_set_used(struct leap_pool *pool, uint64_t off, uint64_t npages, bool used);
/* The pool's own mapping of page off; *avail: pages to the end of that chunk. */
const char *leap__pool_addr(struct leap_pool *pool, uint64_t off, uint64_t *avail);
/* Copy npages from src into the pool at off (populate, then memcpy), chunk by chunk. */
int leap__pool_copy_in(struct leap_pool *pool, uint64_t off, const void *src, uint64_t npages);

/* ------------------------------------------------------------ worker.c */
/* Threads bound to one node's CPUs that run jobs for targets near that node. */
struct leap__worker;
int leap__worker_new(const struct leap_topo *t, int cpu_node, unsigned nthreads,
		     struct leap__worker **out);
/* Run every queued item, then stop the threads and free. */
void leap__worker_free(struct leap__worker *w);
/* Queue fn(arg) to run on one of the worker's threads. */
int leap__worker_submit(struct leap__worker *w, void (*fn)(void *), void *arg);

/* ------------------------------------------------------------ ctx.c */
struct leap_ctx {
	struct leap_topo *topo;
	uint64_t pool_cap; /* pages; 0 = node size */
	uint64_t chunk_pages; /* pool mapping chunk */
	unsigned workers_per_node;
	unsigned flags;	   /* LEAP_CTX_* */
	atomic_int refs;   /* the user's reference + one per live region */
	pthread_mutex_t lock;
	struct leap_pool **pools;	 /* [LEAP_KINDS * topo->count]: kind * count + node,
					    created lazily under lock */
	struct leap__worker **workers; /* [topo->count], created lazily under lock */
	struct leap__wp *wp;	       /* created lazily under lock; NULL if unavailable */
	int wp_rc;		       /* 0 before the first try, 1 ready, -errno if unavailable */
	/* under lock: live regions (for evacuation and compaction), and a signal for
	 * leap_region_destroy() waiting until no evacuation or compaction pins its region */
	struct leap_region *regions;
	pthread_cond_t pins_cond;
	struct leap__pinset *pinsets; /* under lock: evacuations and compactions running */
};
/* The regions an evacuation or compaction walks (coord.c), each pinned (region->pins)
 * until the walk is done with it. A region being destroyed is dropped from the sets at
 * once unless it is the one being worked on (busy): then its destroy waits for that. */
struct leap__pinset {
	struct leap_region **r; /* NULL where released */
	size_t n;
	struct leap_region *busy;
	struct leap__pinset *next;
};
/* Drop r from every pin set where it is not busy. pre: ctx->lock held */
void leap__pins_drop(struct leap_ctx *ctx, struct leap_region *r);
/* The instance's write protection, opened on first use; -EOPNOTSUPP if unavailable. */
int leap__ctx_wp(struct leap_ctx *ctx, struct leap__wp **out);
int leap__ctx_pool(struct leap_ctx *ctx, int node, int kind, struct leap_pool **out);
int leap__ctx_worker(struct leap_ctx *ctx, int target_node, struct leap__worker **out);
void leap__ctx_ref(struct leap_ctx *ctx);
void leap__ctx_unref(struct leap_ctx *ctx);

/* ------------------------------------------------------------ region.c */
/*
 * A run: a maximal range of region pages in one pool slot, in one bank. Page p of a run
 * lives at pool offset win[slot][bank] + p, so a run is one contiguous file extent and
 * one kernel mapping. Slot s < topo->count is node s's own pool of the region's kind;
 * the slots above are external pools (region->slot[]).
 */
struct leap__run {
	uint64_t pg;	/* first page (region relative) */
	uint64_t n;	/* pages */
	int32_t slot;
	int32_t bank;
};
struct leap_region {
	struct leap_ctx *ctx;
	char *base;
	uint64_t npages;
	int kind;	  /* enum leap_pages */
	uint64_t unit;	  /* pages per huge page (1 for small pages) */
	int nslots;	  /* topo->count + LEAP_EXT_SLOTS */
	size_t resv_len;  /* reserved virtual length (base .. base+resv_len) */
	pthread_mutex_t lock;
	/* callers of the API that asked for lock (leap__region_lock) and that got it: a
	 * job's worker lets those waiting in between extents (not later arrivals), since a
	 * mutex is not fair and the worker would take it right back */
	atomic_ullong lock_arrivals, lock_served;
	/* under lock: */
	struct leap__run *runs; /* sorted by pg, covering [0, npages) */
	size_t nruns, runs_cap;
	struct leap_pool **slot;	 /* [nslots]: the pool of each slot, NULL until used */
	/* [slot][bank] pool offset, UINT64_MAX if none; a slot's row is allocated when the
	 * region first uses the slot (most regions use one or two of them) */
	uint64_t **win;
	uint64_t win_rows;
	bool dying;			 /* destroy began: no new jobs */
	struct leap_region_stats st;
	struct leap__wp *wp;		 /* write protection, or NULL (LEAP_CTX_NO_WRITE_PROTECT) */
	struct leap_job *jobs;		 /* jobs queued or running on the region */
	pthread_cond_t jobs_cond;	 /* signalled when a job leaves the list */
	/* under ctx->lock: the instance's list, and evacuations/compactions using it */
	struct leap_region *ctx_next;
	int pins;
};
/* Take r->lock for a caller of the API, counted in lock_arrivals and lock_served. */
void leap__region_lock(struct leap_region *r);
/* Pool offset of bank `bank` of the region in slot; allocates the window on first use. */
int leap__region_window(struct leap_region *r, int slot, int bank, uint64_t *off);
/* The pool of slot (created on first use for node slots). pre: lock held. */
int leap__region_slot_pool(struct leap_region *r, int slot, struct leap_pool **out);
/* The slot of pool in r (attached on first use). -EINVAL wrong kind, -ENOSPC no slot left.
 * pre: lock held. */
int leap__region_pool_slot(struct leap_region *r, struct leap_pool *pool);
/* The node a slot's pages are on. */
static inline int leap__slot_node(const struct leap_region *r, int slot)
{
	return slot < r->ctx->topo->count ? slot : r->slot[slot]->node;
}
/* Index of the run holding page pg. pre: pg < npages, lock held. */
size_t leap__region_find_run(const struct leap_region *r, uint64_t pg);
/* Give back the windows of slot that no run uses any more (their pages return to the
 * kernel, their offset space to the pool). pre: lock held */
void leap__region_release_unused(struct leap_region *r, int slot);
/* Make [pg, pg+n) one run on (node, bank) and merge with equal neighbours. */
int leap__region_assign(struct leap_region *r, uint64_t pg, uint64_t n, int node, int bank);

/* ------------------------------------------------------------ leap.c */
/* What moving one extent did. */
struct leap__extent_out {
	uint64_t moved;	    /* pages now on new pages */
	uint64_t copy_ns, remap_ns;
	uint32_t faults;    /* writers that blocked on the extent */
	uint64_t fail_from; /* pages of the extent from here on that were to move did not */
};
/*
 * Move pages [a, b) of r to target: plan, reserve, write-protect (unless protect is
 * false), copy, remap, wake writers, switch the metadata. Returns pages moved or -errno
 * (then nothing moved, unless even the rollback failed: out->moved tells).
 * pre: r->lock held.
 */
/* Where an extent's pages go. */
struct leap__move {
	int target;	/* slot */
	int bank;	/* compaction: the bank pages in target gather in; else -1 */
	bool relocate;	/* pages already in target move too (to another bank) */
	bool protect;	/* write-protect while moving */
};
/* Whether a page in (slot, bank) is to move. */
static inline bool leap__moves(const struct leap__move *m, int slot, int bank)
{
	if (m->bank >= 0)
		return slot == m->target && bank != m->bank;
	return slot != m->target || m->relocate;
}
int leap__extent_move(struct leap_region *r, uint64_t a, uint64_t b, const struct leap__move *mv,
		      struct leap__extent_out *out, struct leap__hist *stalls);

/* ------------------------------------------------------------ job.c */
/* Cancel every job of r and wait until none is left. pre: r->lock held (released while
 * waiting). */
void leap__jobs_cancel_wait(struct leap_region *r);
/* Submit a job moving pages [a, b) of r as mv says (internal: no range rounding, no
 * status array). -EBUSY if it overlaps a job in flight, -ENODEV if r is being destroyed. */
int leap__job_submit(struct leap_region *r, uint64_t a, uint64_t b, const struct leap__move *mv,
		     const struct leap_job_options *opts, struct leap_job **out);
/* A job that runs fn(job) on its own thread (evacuation, compaction): progress, wait,
 * cancel and destroy work as for page_leap() jobs. */
int leap__job_spawn(void (*fn)(struct leap_job *), void *arg,
		     const struct leap_job_options *opts, struct leap_job **out);
void *leap__job_arg(struct leap_job *j);
bool leap__job_cancelled(struct leap_job *j);
/* The child a coordinating job waits for now (NULL: none), shown in its progress. */
void leap__job_set_child(struct leap_job *j, struct leap_job *child);
/* Fold a finished child's counters (and stop showing it as in flight) into a coordinating job's progress. */
void leap__job_absorb(struct leap_job *parent, struct leap_job *child);
/* Add to a coordinating job's totals (pages found to do, pages failed without a child). */
void leap__job_add(struct leap_job *j, uint64_t total, uint64_t failed, int error);
/* The coordinating function ends: set the result from the counters. */
void leap__job_finish(struct leap_job *j);
/* Timed waits on a job's condition variable count on this clock, not the wall clock: a
 * wall-clock step (NTP, settimeofday) must neither cut a wait short nor stretch it. */
#define LEAP_WAIT_CLOCK CLOCK_MONOTONIC
/* The absolute deadline, on LEAP_WAIT_CLOCK, timeout_ns (>= 0) from now. */
void leap__job_deadline(struct timespec *dl, int64_t timeout_ns);

#endif /* LEAP_INTERNAL_H */
