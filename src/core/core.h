/*
 * core.h - the core of libpageleap: instances, pools, regions, the extent move, jobs and
 * their workers. Not installed. The other folders are leaves the core uses (os, util,
 * topo, wp) or clients of it (coord); each has its own header.
 *
 * Glossary (the words every file uses):
 *   page         LEAP_PAGE_SIZE bytes; inside the library positions and lengths are
 *                counted in pages as uint64_t, bytes only at the system-call boundary.
 *   kind         what backs a pool or region: small pages, THP or hugetlb (enum
 *                leap_pages); unit = pages per huge page of the kind (1 for small).
 *   pool         one memfd (or a user's file) whose pages all live on one node.
 *   slot         a region's view of a pool: slot n < node count is node n's own pool of
 *                the region's kind, the slots above are external pools (region.c).
 *   bank         one of LEAP_BANKS_MAX windows a region may hold in one slot; a second
 *                bank lets pages move to fresh pages on the node they are on.
 *   window       a region-sized range of a pool's offset space, one per (slot, bank):
 *                page p of the region in (slot, bank) lives at offset win[slot][bank] + p.
 *   run          a maximal range of region pages in one (slot, bank): one file extent,
 *                one kernel mapping for small pages and THP: mappings == runs, whatever
 *                the history. Hugetlb mappings never merge (VM_DONTEXPAND): there a
 *                run is one mapping per extent that mapped it (vma_start below).
 *   extent       the unit one move handles under the region lock (extent.c); a job moves
 *                its range extent by extent.
 *   piece        the part of an extent inside one run (extent.c's plan).
 *   step         consecutive moving pieces copied and remapped together (extent.c).
 *   granularity  the extent size a job uses now, chosen by the controller (gran.c).
 *   claim        a job's hold on a range of a region: claims never overlap (lifetime.c).
 *   walker       a coordinating job that visits every region of an instance (coord/).
 *   declaration  a range of a region the program does device I/O on (leap_io_begin):
 *                no extent moves it while it is in force (io.c).
 *
 * Invariants (under region->lock): the runs are sorted, disjoint and cover [0, npages);
 * for every pool, used <= alloc and used == the pages of the runs in its windows.
 *
 * Lock order (take left before right, never the reverse):
 *     region->lock  ->  ctx->lock  ->  pool->lock  ->  wp->lock  ->  job->lock
 *     worker->lock and region->io_lock (io.c) are leaves (nothing is taken under them)
 * ctx->lock only guards lazy creation of pools, workers and the userfaultfd, and the
 * instance's list of regions; it is never held while copying or remapping.
 * region->lock is held for one extent at a time.
 */
#ifndef LEAP_CORE_H
#define LEAP_CORE_H

#include "pageleap.h"
#include "os/os.h"
#include "topo/topo.h"
#include "util/util.h"
#include "wp/wp.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>


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
	uint64_t trimmed; /* pages returned by the keep bound (leap__pool_keep) */
};
/* A pool's fields from the instance's settings; fd is the pool's (taken over). */
struct leap_pool *leap__pool_init(struct leap_ctx *ctx, int fd, int node, int kind);
int leap__pool_new(struct leap_ctx *ctx, int node, int kind, struct leap_pool **out);
void leap__pool_free(struct leap_pool *pool);
/* External pools (extpool.c): one more user / one fewer (the last frees it). */
void leap__pool_ref(struct leap_pool *pool);
void leap__pool_unref(struct leap_pool *pool);
/* The keep bound (leap_ctx_options.pool_keep_percent): return the free pages over it
 * to the kernel, highest offsets first. No-op for external pools. pre: no pool lock held
 * (takes ctx->lock, then each pool's) */
void leap__pool_keep(struct leap_pool *pool);
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
/* A queued call in the caller's memory: queued again without allocating, so it cannot
 * fail (a job parked for device I/O resumes this way, see io.c). */
struct leap__work {
	void (*fn)(void *);
	void *arg;
	struct leap__work *next;
	bool owned; /* allocated by leap__worker_submit(), freed after the call */
};
void leap__worker_push(struct leap__worker *w, struct leap__work *it);
/* Take a caller's item off the queue if it is still there, not yet run: true if it was. */
bool leap__worker_remove(struct leap__worker *w, struct leap__work *it);

/* ------------------------------------------------------------ ctx.c */
struct leap_ctx {
	struct leap_topo *topo;
	uint64_t pool_cap; /* pages; 0 = node size */
	uint64_t chunk_pages; /* pool mapping chunk */
	unsigned workers_per_node;
	unsigned flags;	   /* LEAP_CTX_* */
	unsigned keep_percent; /* the pools' keep bound (pool.c): LEAP_POOL_KEEP_ALL for none */
	uint64_t keep_min;     /* pages */
	atomic_int refs;   /* the user's reference + one per live region */
	pthread_mutex_t lock;
	struct leap_pool **pools;	 /* [LEAP_KINDS * topo->count]: kind * count + node,
					    created lazily under lock */
	struct leap__worker **workers; /* [topo->count], created lazily under lock */
	struct leap__wp *wp;	       /* created lazily under lock; NULL if unavailable */
	int wp_rc;		       /* 0 before the first try (or after a transient failure),
					  1 ready, -EOPNOTSUPP if unavailable */
	const char *wp_why;	       /* how wp was opened, or why not (static text) */
	struct leap_region *regions;	/* under lock: live regions, for walkers (lifetime.c) */
};
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
	struct leap__run *spare; /* what leap__region_assign() builds the next runs in */
	size_t spare_cap;
	struct leap_pool **slot;	 /* [nslots]: the pool of each slot, NULL until used */
	/* [slot][bank] pool offset, UINT64_MAX if none; a slot's row is allocated when the
	 * region first uses the slot (most regions use one or two of them) */
	uint64_t **win;
	uint64_t win_rows;
	struct leap_region_stats st;
	/* hugetlb regions only (else NULL): bit h set when a kernel mapping starts at huge
	 * page h, and how many are set (allocated with the region: kept without failing) */
	uint64_t *vma_start;
	uint64_t nvmas;
	struct leap__wp *wp;		 /* write protection, or NULL (LEAP_CTX_NO_WRITE_PROTECT) */
	/* lifetime.c owns these: */
	atomic_int refs;		 /* the user's handle + one per walker holding it */
	bool dying;			 /* under lock: destroy began, no new claims */
	struct leap__claim *claims;	 /* under lock: ranges held by jobs, disjoint */
	pthread_cond_t claims_cond;	 /* a claim ended, the region is dying, or a cancel */
	struct leap_region *ctx_next;	 /* under ctx->lock: the instance's list */
	/* io.c owns these, under io_lock (taken after lock, if both): device I/O declared
	 * with leap_io_begin(), and the extent in flight [moving_a, moving_b) */
	pthread_mutex_t io_lock;
	pthread_cond_t io_cond;
	struct leap__io *io;
	size_t nio, io_cap;
	uint64_t io_declared; /* declarations, counted */
	uint64_t moving_a, moving_b;
	struct leap__parked *parked; /* jobs waiting for declared I/O to end */
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
/* Check that place[] is sorted, aligned (to unit pages) and covers [0, length) exactly. */
int leap__region_check_placement(struct leap_ctx *ctx, size_t length, const struct leap_place *place,
				 size_t nplace, uint64_t unit);
/* [pg, pg+n) was just mapped with one mmap: count the kernel mappings that changes
 * (hugetlb; for other kinds the kernel merges and mappings == runs). pre: lock held */
void leap__region_mapped(struct leap_region *r, uint64_t pg, uint64_t n);
/* The kernel mappings of the region. pre: lock held */
uint64_t leap__region_mappings(const struct leap_region *r);
/* Back [pg, pg+n) with fresh pages of slot's pool, bank 0, and record the run. */
int leap__region_place(struct leap_region *r, uint64_t pg, uint64_t n, int slot);
/* Give back the address range, pages, windows and external pools of r (the struct stays).
 * pre: no job runs on r (lifetime.c). */
void leap__region_release(struct leap_region *r);
/* Give back the windows of slot that no run uses any more (their pages return to the
 * kernel, their offset space to the pool). pre: lock held */
void leap__region_release_unused(struct leap_region *r, int slot);
/* Where an extent's pages go. */
struct leap__move {
	int target;	/* slot */
	int bank;	/* compaction: the bank pages in target gather in; else -1 */
	bool relocate;	/* pages already in target move too (to another bank) */
	bool protect;	/* write-protect while moving */
	bool skip_busy;	/* leave pages declared for device I/O, do not wait (io.c) */
};
/* Whether a page in (slot, bank) is to move. */
static inline bool leap__moves(const struct leap__move *m, int slot, int bank)
{
	if (m->bank >= 0)
		return slot == m->target && bank != m->bank;
	return slot != m->target || m->relocate;
}
/*
 * The bank the pages of [a, b) that move as mv says go to (pure: reads r's runs). A page
 * relocating on the target must change bank, so banks that relocating pages are in are
 * out; a page from another slot has no page on the target, so any other bank is free for
 * it. Prefer the bank of a neighbour on the target, then that of pages staying in the
 * range, so the range merges with them into one mapping; else bank 0. -EAGAIN when the
 * range spans every bank (the caller splits it). pre: r->lock held
 */
int leap__region_choose_bank(const struct leap_region *r, uint64_t a, uint64_t b,
			     const struct leap__move *mv);
/* Room for `more` runs beyond the current ones: assigns adding up to that many cannot
 * fail. pre: lock held */
int leap__region_runs_reserve(struct leap_region *r, size_t more);
/* Make [pg, pg+n) one run on (node, bank) and merge with equal neighbours (at most 2
 * runs more). */
int leap__region_assign(struct leap_region *r, uint64_t pg, uint64_t n, int node, int bank);

/* ------------------------------------------------------------ io.c */
/* One device I/O declaration: pages [a, b) (whole huge pages), its flags, how many times
 * it was made. */
struct leap__io {
	uint64_t a, b;
	unsigned flags; /* LEAP_IO_* */
	unsigned count;
};
/* What the declarations say about [a, b) (io.c): the first declared page lo (b if none); when
 * that is a itself, whether a declaration holding it is long-term, and next, the first
 * page after a where the answer may change. */
struct leap__busy {
	uint64_t lo, next;
	bool longterm;
};
void leap__io_init(struct leap_region *r);
void leap__io_fini(struct leap_region *r);
/* Before an extent [pos, pos+*n) of a job (under r->lock): true if page pos is declared
 * busy (*bz says how; nothing recorded); else the extent is cut short before the first
 * busy page and recorded as in flight until leap__io_extent_end(). */
bool leap__io_extent_begin(struct leap_region *r, uint64_t pos, uint64_t *n,
			   struct leap__busy *bz);
void leap__io_extent_end(struct leap_region *r);
/*
 * A job waiting for page pos to be free of transient declarations does not hold its
 * worker's thread (other jobs of the node run meanwhile): it parks, and its work item is
 * queued on its worker again when the page is free, a long-term declaration covers it,
 * or the job is cancelled.
 */
struct leap__parked {
	uint64_t pos;
	atomic_bool *cancel;
	struct leap__worker *w;
	struct leap__work work;
	struct leap__parked *next;
};
/* Park p (true), or false when page p->pos needs no wait any more (or p is cancelled):
 * the job then goes on at once. */
bool leap__io_park(struct leap_region *r, struct leap__parked *p);
/* Queue the cancelled parked jobs again (a cancel, a destroy). */
void leap__io_kick(struct leap_region *r);
/* Declarations in force, and the bytes their records take. */
void leap__io_stats(struct leap_region *r, uint64_t *declared, uint64_t *bytes);

/* ------------------------------------------------------------ lifetime.c */
/* A job's hold on pages [a, b) of a region; a region's claims never overlap. cancel is
 * the holder's flag: a destroy sets it and waits for the claim to go. */
struct leap__claim {
	uint64_t a, b;
	atomic_bool *cancel;
	/* A holder that is still waiting in a queue (a job behind other jobs on its worker)
	 * can end at once: unqueue() takes it off the queue and does its end's work under
	 * r->lock but for letting go of the claim (true), and then, once the claim is gone
	 * and r->lock released, finish() ends it. false: the holder ends by itself, at its
	 * next extent boundary. NULL: it always does. */
	bool (*unqueue)(struct leap__claim *c);
	void (*finish)(struct leap__claim *c);
	struct leap__claim *next;
	struct leap__claim *ended_next; /* leap_region_destroy()'s own list */
};
void leap__region_ref(struct leap_region *r);
/* Drop a reference; the last one frees the struct (its memory went at destroy). */
void leap__region_unref(struct leap_region *r);
/*
 * Claim [c->a, c->b) of r for its holder. pre: r->lock held (released while waiting).
 *   0            claimed: listed on r until leap__unclaim()
 *   -EBUSY       it overlaps a claim and wait is false
 *   -ENODEV      r is being destroyed
 *   -ECANCELED   *c->cancel was set (before, or while waiting: see leap__claim_kick)
 */
int leap__claim(struct leap_region *r, struct leap__claim *c, bool wait);
/* Let go of a claim and wake those waiting for r. pre: r->lock held */
void leap__unclaim(struct leap_region *r, struct leap__claim *c);
/* Wake the claimers waiting on r so they see a cancel flag just set. pre: lock not held */
void leap__claim_kick(struct leap_region *r);
/* Every live region of ctx, each with a reference the caller drops (unref): an array
 * the caller frees. */
int leap__regions_hold(struct leap_ctx *ctx, struct leap_region ***out, size_t *n);

/* ------------------------------------------------------------ extent.c */
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
int leap__extent_move(struct leap_region *r, uint64_t a, uint64_t b, const struct leap__move *mv,
		      struct leap__extent_out *out, struct leap__hist *stalls);

/* ------------------------------------------------------------ gran.c */
#define LEAP_GRAN_START 16 /* pages: first extent size */
/* The granularity controller of one job (pure: see gran.c). Sizes in pages. */
struct leap__gran {
	uint64_t unit;	       /* every size is a multiple (huge pages) */
	uint64_t gmin, gmax;   /* bounds, multiples of unit */
	uint64_t stall_target; /* ns */
	uint64_t tlast[64];    /* ns of the last whole extent per log2(pages) */
};
void leap__gran_init(struct leap__gran *c, uint64_t unit, uint64_t gmin, uint64_t gmax,
		     uint64_t stall_target_ns);
/* The first extent's size. */
uint64_t leap__gran_first(const struct leap__gran *c);
/* An extent planned at g pages moved n of them (whole: all n moved) in ns while faults
 * writers waited on it: the next extent's size. */
uint64_t leap__gran_next(struct leap__gran *c, uint64_t g, uint64_t n, bool whole,
			 uint32_t faults, uint64_t ns);
/* An extent of n pages found no room: the size to retry with (a smaller extent needs
 * less room at the destination). */
uint64_t leap__gran_no_room(const struct leap__gran *c, uint64_t n);

/* ------------------------------------------------------------ job.c */
/* The one check of a job's options, for page_leap() and for the walkers at submission
 * (o already zero-extended, or NULL): -EINVAL for bounds that are not whole pages, a
 * minimum above the maximum, a maximum above 1 GiB. *gmin: the minimum in pages (0:
 * none given), *gmax: the maximum in pages with its default applied. */
int leap__job_opts_check(const struct leap_job_options *o, uint64_t *gmin, uint64_t *gmax);
/* A job for page_leap() on [addr, addr+len) of r, checked (the target comes at go). */
int leap__job_prepare(struct leap_region *r, void *addr, size_t len, unsigned flags,
		      const struct leap_job_options *opts, struct leap_job **out);
/* Start a prepared job towards node (pool NULL) or pool, then hand it out (out) or wait
 * for it and return its result (out NULL). On failure the job is freed. */
int leap__job_go(struct leap_job *j, int node, struct leap_pool *pool, unsigned flags,
		 struct leap_job **out);
/* Free a prepared job that will not start. */
void leap__job_discard(struct leap_job *j);
/* Submit a child of the coordinating job parent moving pages [a, b) of r as mv says (no
 * range rounding, no status array). It waits for a range busy with another job; a
 * cancel of parent reaches the child, waiting or running. -ENODEV if r is being
 * destroyed, -ECANCELED if parent was cancelled first. */
int leap__job_submit(struct leap_job *parent, struct leap_region *r, uint64_t a, uint64_t b,
		     const struct leap__move *mv, const struct leap_job_options *opts,
		     struct leap_job **out);
/* A job that runs fn(job) on its own thread (evacuation, compaction): progress, wait,
 * cancel and destroy work as for page_leap() jobs. */
int leap__job_spawn(void (*fn)(struct leap_job *), void *arg,
		     const struct leap_job_options *opts, struct leap_job **out);
void *leap__job_arg(struct leap_job *j);
bool leap__job_cancelled(struct leap_job *j);
/* Fold a finished child's counters (and stop showing it as in flight) into a coordinating job's progress. */
void leap__job_absorb(struct leap_job *parent, struct leap_job *child);
/* Add to a coordinating job's totals (pages found to do, pages failed without a child). */
void leap__job_add(struct leap_job *j, uint64_t total, uint64_t failed, int error);
/* Timed waits on a job's condition variable count on this clock, not the wall clock: a
 * wall-clock step (NTP, settimeofday) must neither cut a wait short nor stretch it. */
#define LEAP_WAIT_CLOCK CLOCK_MONOTONIC
/* The absolute deadline, on LEAP_WAIT_CLOCK, timeout_ns (>= 0) from now. */
void leap__job_deadline(struct timespec *dl, int64_t timeout_ns);

#endif /* LEAP_CORE_H */
