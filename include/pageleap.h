/*
 * pageleap.h - move memory between NUMA nodes from user space.
 *
 * The only public header of libpageleap. C11; compiles as C and C++.
 *
 * Objects (all opaque):
 *   leap_topo    the machine's NUMA topology (nodes, CPUs, distances, memory).
 *   leap_ctx     a library instance: topology, one pool per memory node, copy workers.
 *   leap_pool    a node's pool of physical pages (a memfd bound to the node).
 *   leap_region  a reserved virtual range whose pages live in pool pages; page_leap()
 *                moves its pages between nodes while its virtual addresses never change.
 *   leap_job     one asynchronous page_leap(): wait, poll progress, cancel.
 *
 * Conventions: calls that can fail return 0 (or a count) on success and -errno on
 * failure; errno is not part of the contract. The library prints nothing. Destructors
 * take a pointer to the handle, cannot fail and set the handle to NULL, so a call on
 * a destroyed handle sees NULL and returns -EINVAL.
 *
 * Caller-filled structs start with a `size` field (set it to sizeof the struct) so they
 * can grow, under the rule of the kernel's copy_struct_from_user():
 *   options (in): a shorter struct, from a program built against an older header, is
 *     accepted and the fields it lacks act as 0 (their defaults; nothing past size is
 *     read); a longer one, from a newer header, is accepted when every byte past the
 *     fields this version knows is zero, and is -E2BIG otherwise (nothing is done);
 *     a size over 4096 is -E2BIG.
 *   stats, progress, node info (out): min(size, sizeof) bytes are written and size keeps
 *     the caller's value; fields this version does not know are left as they were.
 *   Either way a size smaller than the size field itself is -EINVAL.
 */
#ifndef PAGELEAP_H
#define PAGELEAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LEAP_VERSION_MAJOR 0
#define LEAP_VERSION_MINOR 4
#define LEAP_VERSION_PATCH 0

/* The page size page_leap() works in (bytes). Addresses and lengths must be multiples. */
#define LEAP_PAGE_SIZE 4096u
/* The huge page size of huge-page regions and pools (bytes): x86-64's PMD size. */
#define LEAP_HUGE_PAGE_SIZE (2u << 20)

/* What a region's or pool's pages are (leap_region_options.pages, leap_pool_stats.pages). */
enum leap_pages {
	LEAP_PAGES_SMALL = 0,	/* 4 KiB pages (shared memory) */
	LEAP_PAGES_THP = 1,	/* transparent huge pages: shared memory allocated in 2 MiB
				   folios, mapped with one page-table entry each */
	LEAP_PAGES_HUGETLB = 2	/* hugetlb pages of 2 MiB, reserved per node by the admin */
};

struct leap_topo;
struct leap_ctx;
struct leap_pool;
struct leap_region;
struct leap_job;

/* ---------------------------------------------------------------- topology */

/* One NUMA node as the kernel reports it. */
struct leap_node_info {
	size_t size;		/* in: sizeof(struct leap_node_info) */
	int node;		/* node id */
	int online;		/* 1 if the node exists */
	int has_memory;		/* 1 if the node has memory (pools can live there) */
	int ncpus;		/* CPUs on the node; 0 for a memory-only node (e.g. CXL) */
	int nearest_cpu_node;	/* this node if it has CPUs, else the closest node that has */
	uint64_t mem_total;	/* bytes */
	uint64_t mem_free;	/* bytes, at the time of the call */
};

/* Read the topology from the kernel (sysfs and libnuma). MT-Safe. */
int leap_topo_new(struct leap_topo **out);
/* Free a topology. Not for a topology returned by leap_ctx_topo(). */
void leap_topo_destroy(struct leap_topo **topo);
/* Number of node ids: valid ids are 0 .. count-1 (some may be offline). */
int leap_topo_node_count(const struct leap_topo *topo);
/* Fill *info for node; free memory is read anew. -ENODEV for an unknown node. MT-Safe. */
int leap_topo_node(const struct leap_topo *topo, int node, struct leap_node_info *info);
/* The kernel's distance between two nodes (10 = local), or -ENODEV. MT-Safe. */
int leap_topo_distance(const struct leap_topo *topo, int from, int to);
/* Store up to max CPU ids of node in cpus[]; return how many the node has, or -errno. */
int leap_topo_cpus(const struct leap_topo *topo, int node, int *cpus, size_t max);

/* ---------------------------------------------------------------- context */

/* leap_ctx_options.flags: never write-protect (every page_leap() then needs
 * LEAP_NO_WRITERS); for measurements and for kernels without userfaultfd. */
#define LEAP_CTX_NO_WRITE_PROTECT 0x1u
/* Where full userfaultfd is refused to the process (an ordinary user under Debian's
 * vm.unprivileged_userfaultfd = 0 without access to /dev/userfaultfd), accept the
 * user-mode-only kind (Linux 5.11+): the program's own writes to a moving page wait as
 * usual, but a system call that writes into one (read(2), recv(2), io_uring) fails with
 * EFAULT, and a datagram received that way is lost. Declare such buffers with
 * leap_io_begin(). See pageleap(7), "Unprivileged operation". */
#define LEAP_CTX_ALLOW_USER_MODE 0x2u
/* User-mode-only even where the full kind is allowed: to try a program under it. */
#define LEAP_CTX_USER_MODE_ONLY 0x4u

struct leap_ctx_options {
	size_t size;		 /* in: sizeof(struct leap_ctx_options) */
	uint64_t pool_cap_bytes; /* cap of each node's pool; 0: the node's memory size */
	unsigned workers_per_node; /* copy threads per node with CPUs; 0: 1. Jobs towards a
				      node run this many at once, the rest wait queued */
	unsigned flags;		 /* LEAP_CTX_* */
	/* Address space (not memory) the library maps a pool in, per step: a multiple of
	 * LEAP_PAGE_SIZE; 0: 16 GiB. Smaller steps fit tight address spaces. */
	uint64_t pool_map_chunk_bytes;
	/* (added in 0.4) The keep bound: when a job ends, each of the instance's own pools
	 * (not external ones) keeps at most pool_keep_percent percent of the pages the
	 * instance's regions use in pools of that kind as free pages for reuse, and at least
	 * pool_keep_min_bytes of them; the rest go back to the kernel (leap_pool_stats:
	 * keep_limit_bytes, trimmed_bytes). 0: 100 percent, which keeps one move of
	 * everything warm; at most 100000, or LEAP_POOL_KEEP_ALL: no bound (trim by hand). */
	unsigned pool_keep_percent;
	uint64_t pool_keep_min_bytes;
};
#define LEAP_POOL_KEEP_ALL 0xffffffffu

/* Create a library instance. opts may be NULL for defaults. MT-Safe. */
int leap_ctx_new(const struct leap_ctx_options *opts, struct leap_ctx **out);
/*
 * Release the caller's reference. Regions still alive keep the instance alive until
 * they are destroyed. Must not race with other calls using *ctx.
 */
void leap_ctx_destroy(struct leap_ctx **ctx);
/* The instance's topology (owned by the instance). MT-Safe. */
const struct leap_topo *leap_ctx_topo(const struct leap_ctx *ctx);

/* How an instance protects moving pages from writers (leap_ctx_write_protect()). */
enum leap_wp_mode {
	LEAP_WP_NONE = 0,      /* none: every page_leap() needs LEAP_NO_WRITERS */
	LEAP_WP_FULL = 1,      /* userfaultfd: every write waits, kernel-mode ones too */
	LEAP_WP_USER_ONLY = 2, /* user-mode-only userfaultfd: kernel-mode writes fail */
};
/*
 * The instance's write protection (opened now if it was not yet): returns an enum
 * leap_wp_mode, or -EINVAL. *why (may be NULL) receives a static text: how it was
 * opened, or which cause refused it and what to do. MT-Safe.
 */
int leap_ctx_write_protect(struct leap_ctx *ctx, const char **why);

/* ---------------------------------------------------------------- pools */

struct leap_pool_stats {
	size_t size;		     /* in: sizeof(struct leap_pool_stats) */
	int node;		     /* node the pool's pages are bound to */
	uint64_t cap_bytes;	     /* most memory the pool may hold */
	uint64_t capacity_bytes;     /* memory the pool holds now (allocated pages) */
	uint64_t used_bytes;	     /* of which mapped by regions */
	uint64_t free_bytes;	     /* of which kept for reuse (capacity - used) */
	uint64_t largest_free_bytes; /* largest contiguous free extent */
	uint64_t extents_in_use;     /* contiguous extents mapped by regions */
	uint64_t free_extents;	     /* contiguous free extents */
	int pages;		     /* enum leap_pages */
	int external;		     /* 1 for a pool opened by leap_pool_open() */
	uint64_t page_bytes;	     /* 4096 or LEAP_HUGE_PAGE_SIZE */
	/* the pool's file is handed out to regions in windows (one per region and slot);
	 * these count the ranges of it no window holds (where new windows go) */
	uint64_t free_space_extents;
	uint64_t largest_free_space_bytes;
	/* (added in 0.4) */
	uint64_t keep_limit_bytes; /* free bytes the pool keeps after a job, at most, now (the
				      keep bound, see leap_ctx_options); UINT64_MAX: no bound
				      (an external pool, or LEAP_POOL_KEEP_ALL) */
	uint64_t trimmed_bytes;	   /* returned to the kernel by that bound, over the pool's
				      life (not counting leap_pool_trim() and the cap) */
};

/*
 * Get the pool of a node that has memory (created on first use). The pool is owned by
 * ctx. -ENODEV if the node does not exist or has no memory. MT-Safe.
 */
int leap_pool_get(struct leap_ctx *ctx, int node, struct leap_pool **out);
/* The same for the node's pool of another kind of page (pages: enum leap_pages). */
int leap_pool_get_kind(struct leap_ctx *ctx, int node, int pages, struct leap_pool **out);
/* Snapshot of the pool's accounting. MT-Safe. */
int leap_pool_stats(struct leap_pool *pool, struct leap_pool_stats *st);
/*
 * Set the pool's cap in bytes (rounded down to pages). Lowering it below the current
 * capacity first returns free pages to the kernel; -EBUSY if used pages alone exceed
 * it (the cap is then unchanged). MT-Safe.
 */
int leap_pool_set_cap(struct leap_pool *pool, uint64_t bytes);
/* Return every free page of the pool to the kernel; the number of bytes released. */
int64_t leap_pool_trim(struct leap_pool *pool);

struct leap_pool_options {
	size_t size;		/* in: sizeof(struct leap_pool_options) */
	uint64_t cap_bytes;	/* most memory the pool may hold; 0: the file system's free
				   space or the node's memory, whichever is smaller */
	int pages;		/* enum leap_pages: LEAP_PAGES_SMALL or LEAP_PAGES_THP for a
				   tmpfs file (THP needs a mount with huge=advise, always or
				   within_size: -EOPNOTSUPP otherwise); a hugetlbfs file is
				   always LEAP_PAGES_HUGETLB */
};

/*
 * Open an external pool: memory the user names, declared to belong to node (a file on
 * tmpfs or hugetlbfs, a file on a DAX file system, a tmpfs file bound to a CXL memory
 * node). path is either a directory (the pool is then an unnamed file in it, gone when
 * the pool is closed) or a file, created if missing, that must be empty: the library
 * owns its contents and never reads what was there. Pages of tmpfs and hugetlbfs files
 * are bound to node like the library's own pools; a DAX file's pages are where the
 * device is. Regions draw from the pool through leap_region_options.pool, and
 * page_leap_pool() moves pages into it; page_leap() moves them out to a node's own pool.
 * Errors: -EINVAL (NULL, bad options), -ENODEV (node), -EEXIST (file not empty),
 * -EOPNOTSUPP (not tmpfs, hugetlbfs or DAX: a disk file's pages are page cache; device
 * DAX is not supported yet), or the -errno of open(2). MT-Safe.
 */
int leap_pool_open(struct leap_ctx *ctx, const char *path, int node,
		   const struct leap_pool_options *opts, struct leap_pool **out);
/*
 * Release the caller's reference to an external pool and set *pool to NULL. Regions with
 * pages in it keep it open until they are destroyed. A pool of leap_pool_get() is the
 * instance's: nothing is released, *pool is set to NULL all the same.
 */
void leap_pool_close(struct leap_pool **pool);
/*
 * The memfd behind the pool, for inspection (e.g. map it read-only to check where its
 * pages are). Do not truncate, write or close it.
 */
int leap_pool_fd(const struct leap_pool *pool);

/* ---------------------------------------------------------------- regions */

/* One piece of an initial placement: [offset, offset+length) of the region on node. */
struct leap_place {
	size_t offset;
	size_t length;
	int node;
};

/*
 * Create a region of length bytes (a multiple of LEAP_PAGE_SIZE), zero-filled, with
 * every page on node. Its address is 2 MiB aligned and never changes. MT-Safe.
 * Errors: -EINVAL (NULL, length 0 or unaligned), -ENODEV (node), -ENOMEM (pool cap or
 * kernel memory).
 */
int leap_region_new(struct leap_ctx *ctx, size_t length, int node, struct leap_region **out);
/*
 * Like leap_region_new() with a per-range initial placement: place[] must be sorted,
 * page aligned and cover [0, length) exactly without overlap.
 */
int leap_region_new_placed(struct leap_ctx *ctx, size_t length, const struct leap_place *place,
			   size_t nplace, struct leap_region **out);

struct leap_region_options {
	size_t size;		 /* in: sizeof(struct leap_region_options) */
	int pages;		 /* enum leap_pages: what backs the region; for huge pages its
				    length and placement offsets must be multiples of
				    LEAP_HUGE_PAGE_SIZE. Every pool the region uses holds
				    this kind of page. */
	struct leap_pool *pool;	 /* optional: place the whole region in this pool (e.g. an
				    external one) instead of on place[]'s nodes; pages is
				    then the pool's kind (0 takes it, another is -EINVAL).
				    A DAX pool needs LEAP_CTX_NO_WRITE_PROTECT (userfaultfd
				    cannot write-protect DAX mappings): -EOPNOTSUPP */
};

/*
 * The general form: leap_region_new_placed() with options (opts may be NULL). With
 * opts->pool, place must be NULL and nplace 0. Huge pages: LEAP_PAGES_HUGETLB needs
 * free hugetlb pages on each node the region uses (-ENOSPC says none are free: reserve
 * them in /sys/devices/system/node/nodeN/hugepages/hugepages-2048kB/nr_hugepages);
 * LEAP_PAGES_THP needs shared-memory THP allowed (-EOPNOTSUPP when
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled is never or deny: set advise).
 */
int leap_region_new_ex(struct leap_ctx *ctx, size_t length, const struct leap_place *place,
		       size_t nplace, const struct leap_region_options *opts,
		       struct leap_region **out);
/* Cancel the region's jobs and wait for them (a job still queued behind other jobs ends
 * at once, its done callback on the calling thread), unmap the region and give its pages
 * back to their pools. Must not race with other calls on *region. */
void leap_region_destroy(struct leap_region **region);
/* First byte of the region, or NULL for a NULL handle. MT-Safe. */
void *leap_region_addr(const struct leap_region *region);
/* Length in bytes, or 0 for a NULL handle. MT-Safe. */
size_t leap_region_length(const struct leap_region *region);
/*
 * The node the page holding addr is on, from the library's own metadata (no syscall).
 * -EINVAL for NULL, -EFAULT if addr is outside the region. MT-Safe.
 */
int leap_node_of(struct leap_region *region, const void *addr);

struct leap_region_stats {
	size_t size;		/* in: sizeof(struct leap_region_stats) */
	uint64_t length;	/* bytes */
	uint64_t runs;		/* maximal ranges with one backing extent (in one pool, at
				   consecutive offsets); see mappings */
	uint64_t leaps;		/* page_leap() calls that moved at least one page */
	uint64_t pages_moved;	/* pages copied and remapped, over the region's life */
	uint64_t bytes_copied;
	uint64_t copy_ns;	/* time spent copying */
	uint64_t remap_ns;	/* time spent remapping (mmap + populate) */
	int last_worker_cpu;	/* CPU the last copy ran on; -1 before the first */
	int last_worker_node;	/* that CPU's node */
	uint64_t metadata_bytes; /* library memory used to describe the region */
	uint64_t write_faults;	/* writers that waited for an extent, over the region's life */
	uint64_t stall_max_ns;	/* the longest such wait */
	int pages;		/* enum leap_pages */
	uint64_t huge_splits;	/* THP cut by page_leap() ranges and split (counted when
				   the job starts) */
	uint64_t huge_whole;	/* THP cut by page_leap() ranges and taken whole (idem) */
	/* (added in 0.2) */
	uint64_t io_declared;	/* leap_io_begin() declarations in force now */
	uint64_t io_waits;	/* times a move waited for declared device I/O to end */
	uint64_t io_skipped;	/* pages a move left in place because they were busy */
	/* (added in 0.4) */
	uint64_t mappings;	/* kernel mappings (lines of /proc/self/maps) the region has:
				   runs for small pages and THP (the kernel merges neighbours);
				   for hugetlb one per extent that mapped its pages (hugetlb
				   mappings never merge), at most one per huge page */
};

/* Snapshot of the region's counters. MT-Safe. */
int leap_region_stats(struct leap_region *region, struct leap_region_stats *st);

/* ---------------------------------------------------------------- page_leap */

/* Move pages even when they are already on the target node (to fresh physical pages). */
#define LEAP_RELOCATE 0x1u
/* The caller guarantees that nobody writes to the range while it moves: skip write
 * protection (two system calls per extent fewer). Required with
 * LEAP_CTX_NO_WRITE_PROTECT or where the kernel lacks userfaultfd write protection. */
#define LEAP_NO_WRITERS 0x2u
/* THP regions, a range that cuts through a huge page: move that whole huge page along
 * (LEAP_HUGE_WHOLE) or only the range's pages, splitting it (LEAP_HUGE_SPLIT). Without
 * either, the cost rule decides per huge page: whole when at least
 * LEAP_HUGE_WHOLE_MIN_PAGES of its 512 small pages are in the range (see page_leap(3)).
 * A hugetlb page cannot split: a range that cuts one is -EINVAL. */
#define LEAP_HUGE_WHOLE 0x4u
#define LEAP_HUGE_SPLIT 0x8u
#define LEAP_HUGE_WHOLE_MIN_PAGES 64u
/* Pages declared busy for device I/O (leap_io_begin()) are left where they are and
 * reported (status[] -EBUSY, pages_failed, result -EBUSY), like move_pages(2)'s busy
 * pages, instead of waited for. */
#define LEAP_SKIP_BUSY 0x10u

/* Job states. */
enum leap_job_state {
	LEAP_JOB_QUEUED = 0,
	LEAP_JOB_RUNNING = 1,
	LEAP_JOB_DONE = 2,	/* every page of the range is on the target */
	LEAP_JOB_CANCELLED = 3, /* stopped by leap_job_cancel(): pages_moved tells how far */
	LEAP_JOB_FAILED = 4	/* some pages could not move: pages_failed, error, status[] */
};

struct leap_job_options {
	size_t size;		 /* in: sizeof(struct leap_job_options) */
	size_t granularity_min;	 /* bytes per copy-and-remap step, at least; 0: 4 KiB */
	size_t granularity_max;	 /* at most; 0: 4 MiB. min == max forces a fixed size */
	int *status;		 /* optional, one int per page of the range: the node the
				    page ended on, or -errno why it could not move */
	/* optional: called once when the job ends, on the job's worker thread (on the
	 * calling thread of the cancel or destroy that ended it while still queued); it may
	 * read the job's final progress but must not wait for, or destroy, the job.
	 * leap_job_wait() and a synchronous call return only after it has returned. */
	void (*done)(struct leap_job *job, void *arg);
	void *arg;
	/* how long a writer may wait for one extent, in ns, before extents that writers
	 * touch shrink; 0: 250 us. Extents nobody touches grow regardless. */
	uint64_t stall_target_ns;
};

struct leap_progress {
	size_t size;		   /* in: sizeof(struct leap_progress) */
	int state;		   /* enum leap_job_state */
	int error;		   /* first -errno met, 0 if none */
	uint64_t pages_total;	   /* pages in the range */
	uint64_t pages_done;	   /* pages handled so far (moved, already there, or failed) */
	uint64_t pages_moved;	   /* pages copied and remapped */
	uint64_t pages_failed;	   /* pages that could not move (see status[] and error) */
	uint64_t bytes_copied;
	uint64_t extents;	   /* copy-and-remap steps taken */
	uint64_t granularity;	   /* current step size, bytes */
	uint64_t granularity_min_seen, granularity_max_seen;
	uint64_t write_faults;	   /* writers that waited for an extent */
	uint64_t stall_p50_ns, stall_p99_ns, stall_max_ns, stall_total_ns;
	uint64_t recopied_bytes;   /* reserved: always 0 in this version (pages are never
				      copied again because of writes, writers wait for their
				      extent instead: see pageleap(7)) */
	uint64_t elapsed_ns;	   /* since the job started running */
	int worker_cpu;		   /* CPU the job ran on (-1 before it starts) */
	uint64_t retries;	   /* extents tried again at half the size after finding no
				      room in the target pool */
	/* (added in 0.2) */
	uint64_t io_waits;	   /* times the job waited for declared device I/O to end */
	uint64_t io_skipped;	   /* pages left in place because they were busy (also in
				      pages_failed) */
};

/*
 * Move [addr, addr+len) of region to node: take pages from node's pool, copy, remap in
 * place, give the old pages back to their pool. Virtual addresses do not change. Pages
 * already on node are left alone unless LEAP_RELOCATE is given.
 *
 * The work runs on a worker thread bound to node's CPUs (the nearest node with CPUs for
 * a memory-only node), one extent at a time; the extent size adapts between the
 * granularity bounds: it grows while no writer touches the extents being moved and
 * shrinks when writers do. Threads keep reading and writing the range throughout: an
 * extent is write-protected while it is copied and remapped, so a writer to it waits
 * (for that extent only) and its write lands in the new page; readers never wait.
 *
 * job == NULL: synchronous; returns the number of pages moved, or -errno.
 * job != NULL: returns 0 at once and *job to wait for, poll or cancel (destroy it).
 *
 * Errors (nothing is started, the region is unchanged):
 *   -EINVAL  NULL region, unknown flags, len 0, addr or len not page aligned, bad options
 *   -EFAULT  the range is not inside the region
 *   -ENODEV  node does not exist or has no memory
 *   -EBUSY   the range overlaps a job in flight on this region
 *   -EOPNOTSUPP  write protection is unavailable and LEAP_NO_WRITERS was not given
 * Errors of the moves themselves (synchronous return, or the job's error):
 *   -ENOMEM  the target pool is at its cap, or the kernel is out of memory: the pages
 *            concerned stay whole on their old node, and are reported (pages_failed,
 *            status[]); the rest of the range still moves
 *   -EBUSY   pages declared busy for device I/O with LEAP_IO_LONGTERM, or any declared
 *            pages with LEAP_SKIP_BUSY, stay where they are (see leap_io_begin()); the
 *            rest of the range still moves. Without LEAP_SKIP_BUSY the job waits for
 *            other declared pages to be released, then moves them.
 *
 * Thread safety: MT-Safe. Jobs on disjoint ranges of one region (and on other regions)
 * may be in flight together; up to workers_per_node of them (leap_ctx_options, default 1)
 * run at once on the worker of the target's node, the others wait queued in submission
 * order (LEAP_JOB_QUEUED) until a thread is free.
 */
int page_leap(struct leap_region *region, void *addr, size_t len, int node, unsigned flags,
	      struct leap_job **job);
/* page_leap() with options (opts may be NULL). */
int page_leap_opts(struct leap_region *region, void *addr, size_t len, int node, unsigned flags,
		   const struct leap_job_options *opts, struct leap_job **job);
/*
 * page_leap_opts() into a given pool instead of a node's own pool: an external pool
 * (leap_pool_open()), or a node's pool of the region's kind. The pool's pages must be of
 * the region's kind (-EINVAL otherwise); pages already in the pool stay unless
 * LEAP_RELOCATE. A region can use up to 16 external pools (-ENOSPC beyond).
 */
int page_leap_pool(struct leap_region *region, void *addr, size_t len, struct leap_pool *pool,
		   unsigned flags, const struct leap_job_options *opts, struct leap_job **job);

/*
 * Evacuate a node: move every page of every region of ctx off node (before hot-unplug,
 * or when a DIMM reports corrected errors), each range to the nearest node (by the
 * kernel's distance) whose pool has room for it, spilling to the next nearest when it
 * fills. Pages in external pools declared on node move too (to the nodes' own pools).
 * Runs asynchronously like page_leap(): job reports progress over all regions (pages
 * total = pages on node when the evacuation starts) and can be cancelled; the result
 * counts pages moved. Regions created during the evacuation are not included. Pages
 * that no node has room for fail with -ENOMEM and stay (progress: pages_failed).
 * flags: LEAP_NO_WRITERS, LEAP_SKIP_BUSY. -ENODEV for an unknown node or one without memory. MT-Safe.
 */
int leap_node_evacuate(struct leap_ctx *ctx, int node, unsigned flags,
		       const struct leap_job_options *opts, struct leap_job **job);

/*
 * Compact a pool: after many migrations (relocations in particular) a region's pages in
 * a pool alternate between slots of it, each alternation one more kernel mapping, and
 * the pool's free pages are scattered. Compaction moves, for every region with pages in
 * the pool, the pages of its minority slots into its main slot, online, with
 * page_leap()'s guarantees (writers wait for one extent at most, nothing is lost).
 * Afterwards each stretch of a region's pages in the pool is one kernel mapping, and the
 * slots it left are large free extents (leap_pool_stats: largest_free_bytes). job and
 * flags as for page_leap() (LEAP_NO_WRITERS, LEAP_SKIP_BUSY); the result counts pages moved. MT-Safe.
 */
int leap_pool_compact(struct leap_pool *pool, unsigned flags, const struct leap_job_options *opts,
		      struct leap_job **job);

/* ---------------------------------------------------------------- device I/O */

/*
 * What reaches a region's pages during a move. A CPU write, and every copy the kernel
 * makes on the program's behalf through its page tables (read(2), recv(2), buffered
 * file I/O, io_uring reads into plain buffers through them), reaches the region's
 * current pages: during a move it waits like any writer. A transfer that works on
 * physical pages does not: an O_DIRECT read or write, an io_uring request on a
 * registered buffer, RDMA, vfio. The kernel pins the pages when the request is
 * submitted (a registered buffer when it is registered) and the transfer uses those
 * pages until it ends, whatever the region maps meanwhile. A move in between detaches
 * them: a read then lands in the old page and never reaches the region; a registered
 * buffer keeps sending and receiving the old pages. The kernel does not show user space
 * which pages are pinned (see pageleap(7)), so the program declares them:
 *
 * leap_io_begin() declares [addr, addr+len) busy for device I/O, rounded out to pages
 * (to huge pages in a huge-page region): no part of it moves until the matching
 * leap_io_end(). Call it before submitting the I/O or registering the buffer, and
 * leap_io_end() once the I/O completed or the buffer was unregistered. leap_io_begin()
 * waits only while an extent overlapping the range is being moved (as a writer to it
 * would), never for moves elsewhere. A move
 * that reaches a busy page waits until it is released, then moves it; with
 * LEAP_SKIP_BUSY, and always for a LEAP_IO_LONGTERM declaration, it leaves the page where
 * it is and reports it (status[] -EBUSY, pages_failed, io_skipped; the job's result
 * -EBUSY). Busy pages already on the target (and not to be relocated) are passed by.
 * Declarations may overlap and repeat; each leap_io_begin() is ended by one leap_io_end()
 * with the same addr, len and flags (the same pages after rounding). Destroying the
 * region drops them.
 *
 * Direct writes (memory to device) need no declaration: an old page is used again only
 * by the same page of the same region, when it moves back, and then gets that page's
 * current contents; so a write in flight sends what the buffer held when it was submitted
 * (a buffer must not change while an O_DIRECT write from it is in flight anyway).
 *
 * Errors (nothing changes): -EINVAL (NULL region, len 0, unknown flags; for
 * leap_io_end(), no such declaration in force), -EFAULT (the range is not inside the
 * region), -ENOMEM (leap_io_begin() only). MT-Safe.
 */
/* The declaration lasts an open-ended time (an io_uring registered buffer, an RDMA memory
 * region): moves skip its pages instead of waiting for them. */
#define LEAP_IO_LONGTERM 0x1u
int leap_io_begin(struct leap_region *region, const void *addr, size_t len, unsigned flags);
int leap_io_end(struct leap_region *region, const void *addr, size_t len, unsigned flags);

/*
 * Wait until the job ends or timeout_ns passes (negative: no limit). Returns the job's
 * result: pages moved, -ECANCELED if cancelled, the first -errno if pages failed; or
 * -ETIMEDOUT. MT-Safe.
 */
int64_t leap_job_wait(struct leap_job *job, int64_t timeout_ns);
/* Snapshot of the job's progress. MT-Safe. */
int leap_job_progress(struct leap_job *job, struct leap_progress *p);
/*
 * Ask the job to stop after the extent in hand; every page stays whole and on exactly
 * one node. Returns at once (0); leap_job_wait() tells when it stopped. A job still
 * queued behind other jobs on its node's worker ends before this returns (its done
 * callback runs on the calling thread), without waiting for them. MT-Safe.
 */
int leap_job_cancel(struct leap_job *job);
/* Cancel if still running, wait, free, set *job to NULL. Must not race with other calls
 * on *job. */
void leap_job_destroy(struct leap_job **job);

/* ---------------------------------------------------------------- measured topology */
/*
 * leap_measure: the machine measured from inside, unprivileged (no msr module, no root),
 * next to what sysfs says (pageleap topo --measure; man leap_measure_new(3)):
 *   - idle memory latency (a dependent pointer chase over a buffer far beyond the
 *     last-level cache) and read bandwidth, per CPU node x memory node;
 *   - core-to-core latency (a cache line passed back and forth), per pair of CPUs;
 *   - coherence domains: the CPUs clustered by core-to-core latency;
 *   - memory domains: pool memory, in 2 MiB chunks, clustered by its latency from each
 *     coherence domain. The two are reported separately: a chip whose core complexes
 *     look like nodes to a core-to-core probe may have uniform memory.
 * A verdict says whether measurement found structure that sysfs does not show (hidden
 * NUMA, as in a VM whose vCPUs sit on several sockets but which sees one node).
 *
 * Virtual nodes: with LEAP_MEASURE_KEEP the measurement keeps the labelled chunks, and
 * each measured coherence domain becomes a virtual node: its CPUs and the chunks found
 * near them, for threads to run on and first-touch (leap_vnode_cpus(), leap_vnode_chunk()).
 * The guest cannot choose host pages; it can choose which measured chunks it uses and
 * which threads touch them first. page_leap() still targets the kernel's nodes.
 *
 * A leap_measure is immutable after leap_measure_new(): every reader is MT-Safe.
 */
struct leap_measure;

#define LEAP_MEASURE_LATENCY 0x1u   /* latency matrix, CPU node x memory node */
#define LEAP_MEASURE_BANDWIDTH 0x2u /* read bandwidth matrix, CPU node x memory node */
#define LEAP_MEASURE_C2C 0x4u	    /* core-to-core latency and coherence domains */
#define LEAP_MEASURE_MEMORY 0x8u    /* memory domains (implies LEAP_MEASURE_C2C) */
#define LEAP_MEASURE_ALL 0xfu
#define LEAP_MEASURE_KEEP 0x100u    /* keep the labelled chunks: virtual nodes */

struct leap_measure_opts {
	size_t size;		  /* in: sizeof(struct leap_measure_opts) */
	unsigned what;		  /* LEAP_MEASURE_* bits; 0 means LEAP_MEASURE_ALL */
	unsigned rounds;	  /* samples of each quantity (median kept; for chunks the
				     least); 0: 5, at most 1000 */
	uint64_t latency_bytes;	  /* pointer-chase buffer per memory node; 0: 256 MiB */
	uint64_t bandwidth_bytes; /* read buffer per memory node; 0: 256 MiB */
	uint64_t label_bytes;	  /* pool memory labelled per memory node; 0: 64 MiB */
	unsigned c2c_trips;	  /* round trips per CPU pair and sample; 0: 500, at most 10^6 */
	unsigned max_cpus;	  /* CPUs probed core-to-core (spread over the nodes); 0: 64 */
};

/* One measured quantity over its samples. */
struct leap_sample {
	size_t size;	 /* in: sizeof(struct leap_sample) */
	double median;	 /* ns for latencies, GB/s for bandwidth */
	double min;
	double max;
	unsigned samples;
};

struct leap_domains {
	size_t size;		/* in: sizeof(struct leap_domains) */
	int sysfs_nodes;	/* online nodes sysfs shows */
	int sysfs_cpu_nodes;	/* of which have CPUs */
	int cpu_clusters;	/* coherence domains measured (1: uniform); 0: not measured */
	int mem_clusters;	/* memory domains measured (1: uniform); 0: not measured */
	double cpu_confidence;	/* 0..1: how clearly the clusters separate */
	double mem_confidence;
	int hidden;		/* 1: memory domains that sysfs does not show (a node's
				   chunks in several domains); CPU-only structure is not */
	unsigned cpus;		/* CPUs probed core-to-core */
	uint64_t chunks;	/* 2 MiB chunks labelled */
	double c2c_seconds;	/* time each part took */
	double latency_seconds;
	double bandwidth_seconds;
	double memory_seconds;
	char verdict[160];	/* one line, e.g. "sysfs shows 1 node; measured 2 CPU
				   clusters and 2 memory clusters" */
};

/* One labelled chunk of pool memory. */
struct leap_chunk_info {
	size_t size;	  /* in: sizeof(struct leap_chunk_info) */
	int node;	  /* the kernel node of its pool */
	int mem_cluster;  /* its memory domain */
	int near_cluster; /* the coherence domain it is nearest to; -1: equally near all */
	void *addr;	  /* its 2 MiB, with LEAP_MEASURE_KEEP; else NULL */
};

/*
 * Measure. ctx provides the memory (regions on each memory node); opts may be NULL.
 * Takes seconds: each part's time is in leap_domains. Pins its own threads to CPUs in
 * turn; the calling thread's affinity is left as it was. Errors: -EINVAL (NULL ctx or
 * out, unknown bits in what, a buffer smaller than its minimum: a page for latency, 64 pages
 * for bandwidth, a chunk to label), -E2BIG, -ENOMEM (also: a node has too little memory
 * for the buffers), -ENODEV (no CPU to run on), -EAGAIN (no thread), and what
 * leap_region_new() returns. The time is bounded per sample (a CPU that answers late is
 * given up on) as long as every CPU gets some time: a CPU taken whole by a real-time
 * thread can hold it up.
 */
int leap_measure_new(struct leap_ctx *ctx, const struct leap_measure_opts *opts,
		     struct leap_measure **out);
/* Free the measurement and the chunks it kept. Must not race with other calls on *m. */
void leap_measure_destroy(struct leap_measure **m);
/* Latency (ns) and bandwidth (GB/s) from CPU node to memory node. -ENODEV: no such node;
 * -ENODATA: not measured for this pair (not asked for, a node without CPUs as the CPU
 * side, a node without memory as the memory side). MT-Safe. */
int leap_measure_latency(const struct leap_measure *m, int cpu_node, int mem_node,
			 struct leap_sample *ns);
int leap_measure_bandwidth(const struct leap_measure *m, int cpu_node, int mem_node,
			   struct leap_sample *gbps);
/* One-way core-to-core latency between two probed CPUs (ns; half a round trip, which
 * crosses both ways: the same for (a, b) and (b, a)). -ENODEV: a CPU not probed, or
 * a == b; -ENODATA: no sample of the pair completed (a CPU never scheduled in time). */
int leap_measure_c2c(const struct leap_measure *m, int cpu_a, int cpu_b, struct leap_sample *ns);
/* The CPUs probed core-to-core, in order: the first max written; returns how many there
 * are (which may exceed max). */
int leap_measure_cpus(const struct leap_measure *m, int *cpus, size_t max);
/* The coherence domain of a probed CPU (>= 0), -ENODEV if not probed, -ENODATA if
 * core-to-core was not measured. */
int leap_measure_cpu_cluster(const struct leap_measure *m, int cpu);
int leap_measure_domains(const struct leap_measure *m, struct leap_domains *out);
/* Chunk i (0 .. leap_domains.chunks - 1) and its latency (ns) from coherence domain k. */
int leap_measure_chunk(const struct leap_measure *m, uint64_t i, struct leap_chunk_info *out);
int leap_measure_chunk_latency(const struct leap_measure *m, uint64_t i, int cluster,
			       double *ns);
/*
 * The latency model (ns) the library's policies use for an access from CPU node `from`
 * to memory on node `to`: the measured median when m measured it, else the SLIT distance
 * scaled from a local latency (measured local latency when m has one, else 80 ns):
 * local * distance / 10. m may be NULL. Returns 1 (measured) or 0 (from distances) and
 * sets *ns; -ENODEV for an unknown node.
 */
int leap_latency_model(const struct leap_topo *topo, const struct leap_measure *m, int from,
		       int to, double *ns);

/* Virtual nodes (LEAP_MEASURE_KEEP): one per coherence domain. */
int leap_vnode_count(const struct leap_measure *m);
/* The CPUs of virtual node v: the first max written; returns how many there are. */
int leap_vnode_cpus(const struct leap_measure *m, int v, int *cpus, size_t max);
/* The k-th kept chunk for virtual node v (2 MiB, its address in *addr): first those
 * nearest to v, then those equally near every domain (uniform memory), which every
 * virtual node lists: hand those out once. Contents undefined; valid until
 * leap_measure_destroy(). Returns 0, or -ENOENT past the last one, -ENODATA without
 * LEAP_MEASURE_KEEP. */
int leap_vnode_chunk(const struct leap_measure *m, int v, uint64_t k, void **addr);

/* ---------------------------------------------------------------- affinity monitor */
/*
 * leap_affinity: notices that a watched thread now runs in another coherence domain (its
 * CPU moved by the scheduler) or that a CPU itself moved to another domain (a hypervisor
 * placed the vCPU on another socket: re-probed core-to-core). Events go to a callback,
 * from the monitor's own thread (or from leap_affinity_poll()'s caller).
 */
enum leap_affinity_kind {
	LEAP_AFFINITY_THREAD = 1, /* a watched thread runs in another domain */
	LEAP_AFFINITY_VCPU = 2	  /* a CPU measured nearer another domain than before */
};
struct leap_affinity_event {
	size_t size;	  /* sizeof(struct leap_affinity_event) of the library */
	int kind;	  /* enum leap_affinity_kind */
	int tid;	  /* the thread (LEAP_AFFINITY_THREAD), else 0 */
	int cpu;	  /* the CPU it now runs on / the CPU that moved */
	int from_cluster; /* its domain before, -1 if unknown */
	int to_cluster;	  /* its domain now */
};
typedef void (*leap_affinity_fn)(const struct leap_affinity_event *ev, void *arg);
struct leap_affinity_opts {
	size_t size;		/* in: sizeof(struct leap_affinity_opts) */
	unsigned period_ms;	/* between checks of the watched threads; 0: 1000 */
	unsigned reprobe_every; /* re-probe the CPUs every that many periods; 0: never */
	int no_thread;		/* 1: no monitor thread, checks only by leap_affinity_poll() */
	leap_affinity_fn fn;	/* the event callback; may be NULL (stats only) */
	void *arg;
};
struct leap_affinity_stats {
	size_t size;		/* in: sizeof(struct leap_affinity_stats) */
	uint64_t checks;	/* checks made */
	uint64_t thread_events; /* LEAP_AFFINITY_THREAD events */
	uint64_t vcpu_events;	/* LEAP_AFFINITY_VCPU events */
	uint64_t cpu_ns;	/* CPU time the monitor spent (its thread's clock) */
	int watched;		/* threads watched now */
};
struct leap_affinity;
/*
 * Start a monitor over the domains of m (NULL: the kernel's nodes from topo). Needs m
 * for reprobe_every. Errors: -EINVAL, -E2BIG, -ENOMEM, -EAGAIN (no thread).
 */
int leap_affinity_start(const struct leap_topo *topo, const struct leap_measure *m,
			const struct leap_affinity_opts *opts, struct leap_affinity **out);
/* Watch / stop watching thread tid of this process (0: the caller). -ESRCH: no such
 * thread, -EEXIST / -ENOENT: already / not watched, -ENOMEM. A watched thread that
 * exits raises no event; unwatch it. Each watched thread holds a file descriptor (its
 * /proc stat file) until unwatched. MT-Safe. */
int leap_affinity_watch(struct leap_affinity *a, int tid);
int leap_affinity_unwatch(struct leap_affinity *a, int tid);
/* Check now, on the calling thread (reprobe: re-probe the CPUs first; -ENODATA without
 * a measurement); returns the number of events raised. MT-Safe, except from the
 * callback (checks are serialized, the callback runs inside one). */
int leap_affinity_poll(struct leap_affinity *a, int reprobe);
int leap_affinity_stats(const struct leap_affinity *a, struct leap_affinity_stats *out);
/* Stop the thread and free. Must not be called from the callback. A watched thread on
 * a CPU the measurement did not probe is in domain -1. */
void leap_affinity_stop(struct leap_affinity **a);

/* Library version as "major.minor.patch". */
const char *leap_version(void);
/* A static English description of a -errno value returned by this library. */
const char *leap_strerror(int err);
/*
 * Which cause was behind the last refusal with a specific cause (-EOPNOTSUPP from
 * page_leap(), region or pool creation; -EINVAL for a bad PAGELEAP_WP) that a call
 * on this thread returned, and what to do: a static text, or "" when none yet. It is not
 * cleared by later calls that succeed. MT-Safe (per thread).
 */
const char *leap_errormsg(void);

#ifdef __cplusplus
}
#endif

#endif /* PAGELEAP_H */
