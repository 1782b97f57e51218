/*
 * t_failinj.c - systematic failure injection, the way SQLite fails its N-th allocation
 * (issue 18, "every failure injected, nothing lost"; docs/inject.md).
 *
 * Every libc entry point the library reaches is wrapped (-Wl,--wrap=, see the Makefile:
 * tests link the static library, so the wrap applies to its objects). Calls are counted
 * per site (a function, split by what the call does: mmap of a reservation, of a pool
 * chunk or a remap; each madvise advice; fallocate or punch; each userfaultfd ioctl) only
 * while the test is armed: just around a library call and its wait, when the test's own
 * threads make no libc call (the writers only store to memory), so every counted call is
 * the library's. Per operation a first run counts N calls per site; then for each k in
 * 1..N (sampled evenly when N is large: LEAP_FAILINJ_FULL=1 takes every k) the k-th call
 * of one site fails once with each errno that call can really return. After each case:
 *   - the call returned -errno (partial results consistent: status[] against the
 *     kernel's placement, the region's moved count) or completed;
 *   - library and kernel agree on every page's node, mappings == runs;
 *   - every byte is intact: the fill pattern and the writers' counts (oracle.h);
 *   - the instance keeps working: a following, uninjected run of the operation succeeds
 *     and is verified the same way;
 *   - nothing leaks: pool accounting (used pages == the live regions' pages), open file
 *     descriptors, the library's memfd mappings; memory under ASan's leak check;
 *   - no hang: a watchdog (alarm) aborts with the case's name.
 * Each operation is a named case (its own process); each prints its table: site x errno
 * x outcome (completed, -errno, not reached, FAIL). LEAP_FAILINJ_K=n bounds the k per
 * site (default 5).
 */
#include "hp.h"
#include "oracle.h"

#include <dirent.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <numa.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* ------------------------------------------------------------------ sites */

enum site {
	S_MALLOC, S_CALLOC, S_REALLOC, S_ALIGNED_ALLOC,
	S_MMAP_RESERVE, S_MMAP_POOL, S_MMAP_REMAP, S_MUNMAP,
	S_MADV_POPW, S_MADV_POPR, S_MADV_DONTFORK, S_MADV_HUGE,
	S_FALLOCATE, S_PUNCH, S_FTRUNCATE, S_MEMFD,
	S_UFFD, S_UFFD_NEW, S_IOC_API, S_IOC_REGISTER, S_IOC_WP, S_IOC_WAKE,
	S_MBIND, S_SET_MEMPOLICY, S_PTHREAD_CREATE, S_OPEN, S_FOPEN, S_PIPE2, S_POLL,
	S_NUMA_ALLOC,
	S_N
};

#define MAX_ERRS 3
/* Each site and the errors its call can really return (0 ends the list; none: the call
 * cannot fail as the library makes it, counted only). */
static const struct {
	const char *name;
	int err[MAX_ERRS];
} site_info[S_N] = {
	[S_MALLOC] = { "malloc", { ENOMEM } },
	[S_CALLOC] = { "calloc", { ENOMEM } },
	[S_REALLOC] = { "realloc", { ENOMEM } },
	[S_ALIGNED_ALLOC] = { "aligned_alloc", { ENOMEM } },
	[S_MMAP_RESERVE] = { "mmap(reserve)", { ENOMEM, EAGAIN } },
	[S_MMAP_POOL] = { "mmap(pool chunk)", { ENOMEM, EAGAIN } },
	[S_MMAP_REMAP] = { "mmap(MAP_FIXED)", { ENOMEM, EAGAIN } },
	/* munmap fails (ENOMEM) only where it would split a mapping past vm.max_map_count;
	 * the library unmaps whole mappings it made, except the trims of a reservation
	 * (address space, no memory) */
	[S_MUNMAP] = { "munmap", { 0 } },
	[S_MADV_POPW] = { "madvise(POPULATE_WRITE)", { ENOMEM, EAGAIN, EINTR } },
	[S_MADV_POPR] = { "madvise(POPULATE_READ)", { ENOMEM, EAGAIN, EINTR } },
	[S_MADV_DONTFORK] = { "madvise(DONTFORK)", { ENOMEM, EAGAIN } },
	[S_MADV_HUGE] = { "madvise(HUGEPAGE)", { ENOMEM, EAGAIN } },
	[S_FALLOCATE] = { "fallocate", { ENOMEM, ENOSPC, EINTR } },
	[S_PUNCH] = { "fallocate(PUNCH_HOLE)", { ENOMEM, EINTR } },
	[S_FTRUNCATE] = { "ftruncate", { EINTR, EPERM } },
	[S_MEMFD] = { "memfd_create", { ENOMEM, EMFILE } },
	[S_UFFD] = { "syscall(userfaultfd)", { ENOMEM, EMFILE, EPERM } },
	[S_UFFD_NEW] = { "ioctl(USERFAULTFD_IOC_NEW)", { ENOMEM, EMFILE } },
	/* its errors (EINVAL, EFAULT) say the kernel lacks the API or a feature: for good */
	[S_IOC_API] = { "ioctl(UFFDIO_API)", { 0 } },
	[S_IOC_REGISTER] = { "ioctl(UFFDIO_REGISTER)", { ENOMEM, EAGAIN } },
	[S_IOC_WP] = { "ioctl(UFFDIO_WRITEPROTECT)", { ENOMEM, EAGAIN, EINTR } },
	[S_IOC_WAKE] = { "ioctl(UFFDIO_WAKE)", { 0 } }, /* a valid range cannot fail */
	[S_MBIND] = { "mbind", { ENOMEM, EIO } },
	[S_SET_MEMPOLICY] = { "set_mempolicy", { ENOMEM } },
	[S_PTHREAD_CREATE] = { "pthread_create", { EAGAIN } },
	[S_OPEN] = { "open", { EMFILE, EINTR, ENOMEM } },
	[S_FOPEN] = { "fopen", { EMFILE, ENOMEM } },
	[S_PIPE2] = { "pipe2", { EMFILE, ENFILE } },
	[S_POLL] = { "poll", { EINTR, ENOMEM } },
	/* libnuma's functions that allocate and exit the process when that fails (see the
	 * libnuma wraps): counted, and only leap_ctx_new() may reach them */
	[S_NUMA_ALLOC] = { "libnuma (exits on ENOMEM)", { 0 } },
};

/* Counting and injection. inj_* are written only while disarmed; armed is stored with
 * release and loaded with acquire, so the library's threads see them. They are atomic
 * all the same: a library thread (the listener's poll) that found the test armed just
 * before disarm() may still read them while the next case sets them. */
static atomic_int armed;
static atomic_long ncalls[S_N];
static atomic_int inj_site = -1, inj_err;
static atomic_long inj_k;
static atomic_int inj_hit;
/* Inside a libnuma function the library called (this thread): its own calls are not
 * counted (see the libnuma wraps). */
static _Thread_local int in_libnuma;

static void arm(void)
{
	atomic_store_explicit(&armed, 1, memory_order_release);
}

static void disarm(void)
{
	atomic_store_explicit(&armed, 0, memory_order_release);
}

/* Count a call of site s; true when it is the one to fail (errno set). */
static bool fail_now(enum site s)
{
	if (!atomic_load_explicit(&armed, memory_order_acquire) || in_libnuma)
		return false;
	long c = atomic_fetch_add(&ncalls[s], 1) + 1;
	if ((int)s != inj_site || c != inj_k)
		return false;
	atomic_store(&inj_hit, 1);
	errno = inj_err;
	return true;
}

/* ------------------------------------------------------------------ the wraps */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __real_madvise(void *addr, size_t len, int advice);
int __real_fallocate(int fd, int mode, off_t off, off_t len);
int __real_ftruncate(int fd, off_t len);
int __real_memfd_create(const char *name, unsigned flags);
int __real_ioctl(int fd, unsigned long req, ...);
long __real_syscall(long n, ...);
long __real_mbind(void *start, unsigned long len, int mode, const unsigned long *nmask,
		  unsigned long maxnode, unsigned flags);
long __real_set_mempolicy(int mode, const unsigned long *nmask, unsigned long maxnode);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_open(const char *path, int flags, ...);
FILE *__real_fopen(const char *path, const char *mode);
int __real_pipe2(int fds[2], int flags);
int __real_poll(struct pollfd *p, nfds_t n, int timeout);

void *__wrap_malloc(size_t n)
{
	return fail_now(S_MALLOC) ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
	return fail_now(S_CALLOC) ? NULL : __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
	return fail_now(S_REALLOC) ? NULL : __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
	return fail_now(S_ALIGNED_ALLOC) ? NULL : __real_aligned_alloc(a, n);
}
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	enum site s = flags & MAP_FIXED ? S_MMAP_REMAP
		      : flags & MAP_ANONYMOUS ? S_MMAP_RESERVE : S_MMAP_POOL;
	return fail_now(s) ? MAP_FAILED : __real_mmap(addr, len, prot, flags, fd, off);
}
int __wrap_munmap(void *addr, size_t len)
{
	fail_now(S_MUNMAP); /* counted: see site_info */
	return __real_munmap(addr, len);
}
int __wrap_madvise(void *addr, size_t len, int advice)
{
	enum site s = advice == MADV_POPULATE_WRITE ? S_MADV_POPW
		      : advice == MADV_POPULATE_READ ? S_MADV_POPR
		      : advice == MADV_DONTFORK ? S_MADV_DONTFORK : S_MADV_HUGE;
	return fail_now(s) ? -1 : __real_madvise(addr, len, advice);
}
int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	enum site s = mode & FALLOC_FL_PUNCH_HOLE ? S_PUNCH : S_FALLOCATE;
	return fail_now(s) ? -1 : __real_fallocate(fd, mode, off, len);
}
int __wrap_ftruncate(int fd, off_t len)
{
	return fail_now(S_FTRUNCATE) ? -1 : __real_ftruncate(fd, len);
}
int __wrap_memfd_create(const char *name, unsigned flags)
{
	return fail_now(S_MEMFD) ? -1 : __real_memfd_create(name, flags);
}
int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	enum site s = req == UFFDIO_API		   ? S_IOC_API
		      : req == UFFDIO_REGISTER	   ? S_IOC_REGISTER
		      : req == UFFDIO_WRITEPROTECT ? S_IOC_WP
		      : req == UFFDIO_WAKE	   ? S_IOC_WAKE
		      : req == USERFAULTFD_IOC_NEW ? S_UFFD_NEW : S_N;
	if (s != S_N && site_info[s].err[0] && fail_now(s))
		return -1;
	if (s == S_IOC_WAKE || s == S_IOC_API)
		fail_now(s); /* counted only: see site_info */
	return __real_ioctl(fd, req, arg);
}
long __wrap_syscall(long n, ...)
{
	/* six arguments, as syscall() itself reads them (libnuma's calls in a static link
	 * come here too: mbind, get_mempolicy, sched_getaffinity) */
	va_list ap;
	va_start(ap, n);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (n == SYS_userfaultfd && fail_now(S_UFFD))
		return -1;
	return __real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
long __wrap_mbind(void *start, unsigned long len, int mode, const unsigned long *nmask,
		  unsigned long maxnode, unsigned flags)
{
	return fail_now(S_MBIND) ? -1 : __real_mbind(start, len, mode, nmask, maxnode, flags);
}
long __wrap_set_mempolicy(int mode, const unsigned long *nmask, unsigned long maxnode)
{
	return fail_now(S_SET_MEMPOLICY) ? -1 : __real_set_mempolicy(mode, nmask, maxnode);
}
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	return fail_now(S_PTHREAD_CREATE) ? errno : __real_pthread_create(t, a, fn, arg);
}
int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int mode = flags & (O_CREAT | O_TMPFILE) ? va_arg(ap, int) : 0;
	va_end(ap);
	return fail_now(S_OPEN) ? -1 : __real_open(path, flags, mode);
}
FILE *__wrap_fopen(const char *path, const char *mode)
{
	return fail_now(S_FOPEN) ? NULL : __real_fopen(path, mode);
}
int __wrap_pipe2(int fds[2], int flags)
{
	return fail_now(S_PIPE2) ? -1 : __real_pipe2(fds, flags);
}
int __wrap_poll(struct pollfd *p, nfds_t n, int timeout)
{
	return fail_now(S_POLL) ? -1 : __real_poll(p, n, timeout);
}

/*
 * libnuma. In a static link its own malloc, fopen and syscall calls reach the wraps
 * above too; in a dynamic one they do not. They are not the library's calls: while a
 * libnuma function the library called runs, nothing is counted or failed, so both links
 * count the same calls. Failing them would test libnuma, which handles a failed
 * allocation by printing "Out of memory allocating bitmask" and exiting the process: the
 * library must therefore not call libnuma's allocating functions where a failure could
 * happen on the user's behalf. They are counted (S_NUMA_ALLOC), and only a new
 * instance, which reads the topology through them, may reach them.
 */
struct bitmask *__real_numa_allocate_cpumask(void);
int __real_numa_node_to_cpus(int node, struct bitmask *mask);
int __real_numa_node_of_cpu(int cpu);
int __real_numa_distance(int a, int b);
long long __real_numa_node_size64(int node, long long *freep);

struct bitmask *__wrap_numa_allocate_cpumask(void)
{
	fail_now(S_NUMA_ALLOC);
	in_libnuma++;
	struct bitmask *m = __real_numa_allocate_cpumask();
	in_libnuma--;
	return m;
}
int __wrap_numa_node_to_cpus(int node, struct bitmask *mask)
{
	fail_now(S_NUMA_ALLOC);
	in_libnuma++;
	int rc = __real_numa_node_to_cpus(node, mask);
	in_libnuma--;
	return rc;
}
int __wrap_numa_node_of_cpu(int cpu)
{
	fail_now(S_NUMA_ALLOC);
	in_libnuma++;
	int rc = __real_numa_node_of_cpu(cpu);
	in_libnuma--;
	return rc;
}
int __wrap_numa_distance(int a, int b)
{
	in_libnuma++; /* reads the distances once: allocates, but fails cleanly */
	int rc = __real_numa_distance(a, b);
	in_libnuma--;
	return rc;
}
long long __wrap_numa_node_size64(int node, long long *freep)
{
	in_libnuma++; /* reads the node's meminfo: fails cleanly (-1) */
	long long rc = __real_numa_node_size64(node, freep);
	in_libnuma--;
	return rc;
}

/* ------------------------------------------------------------------ the watchdog */

#define WATCHDOG_S 60 /* per case: only a hang comes near it */
static char cur_case[256];

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "t_failinj: FAIL: hang (watchdog) in case ";
	if (write(2, m, sizeof(m) - 1) < 0 || write(2, cur_case, strlen(cur_case)) < 0 ||
	    write(2, "\n", 1) < 0) {
	}
	if (t_reason)
		snprintf(t_reason, T_REASON_MAX, "hang in %s", cur_case);
	_exit(1);
}

/* ------------------------------------------------------------------ soft checks */

/* The first failed check of a case (empty: none). */
static char why[256];

static bool bad(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(bool cond, const char *fmt, ...)
{
	if (!cond)
		return false;
	if (!why[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	return true;
}

static int nodes[64], nn;
static struct leap_ctx *ctx;

/* Open file descriptors of the process. */
static int nfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		FAIL("opendir /proc/self/fd: %s", strerror(errno));
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The directory of the pool case's external pools (a tmpfs: CASE(pool) chooses it). */
static char pool_dir[256] = "/dev/shm";

/* Mappings of the library's memfds (pools) and of files in pool_dir (external pools). */
static int lib_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		FAIL("open /proc/self/maps: %s", strerror(errno));
	char line[512], in_dir[sizeof(pool_dir) + 2];
	snprintf(in_dir, sizeof(in_dir), " %s/", pool_dir);
	int n = 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "pageleap-node") || strstr(line, in_dir);
	fclose(f);
	return n;
}

static struct leap_region *R; /* the long-lived region of some operations */

/* The library's mappings other than R's runs (each one mapping, checked by agree()). */
static int other_maps(void)
{
	return lib_maps() - (R ? (int)rstats(R).runs : 0);
}

/* Pages used, over every node's own pool of the kind. */
static uint64_t used_pages(int kind)
{
	uint64_t u = 0;
	for (int i = 0; i < nn; i++) {
		struct leap_pool *p;
		if (leap_pool_get_kind(ctx, nodes[i], kind, &p) != 0)
			continue;
		struct leap_pool_stats s = pstats(p);
		bad(s.used_bytes > s.capacity_bytes, "pool %d: used %" PRIu64 " > capacity %" PRIu64,
		    nodes[i], s.used_bytes, s.capacity_bytes);
		u += s.used_bytes / PG;
	}
	return u;
}

static void trim_pools(void)
{
	for (int i = 0; i < nn; i++)
		for (int k = 0; k < 3; k++) {
			struct leap_pool *p;
			if (leap_pool_get_kind(ctx, nodes[i], k, &p) == 0)
				leap_pool_trim(p);
		}
}

/* Library and kernel agree on every page of r (the kernel's nodes in kn, np entries);
 * for small and THP pages also mappings == runs. */
static bool agree(struct leap_region *r, int *kn, int kind)
{
	char *p = leap_region_addr(r);
	size_t np = leap_region_length(r) / PG;
	kernel_nodes(p, np, kn);
	for (size_t k = 0; k < np; k++) {
		int lib = leap_node_of(r, p + k * PG);
		if (bad(kn[k] != lib, "page %zu: kernel says node %d, library %d", k, kn[k], lib))
			return false;
	}
	if (kind != LEAP_PAGES_HUGETLB) {
		int maps = count_maps(p, p + np * PG);
		uint64_t runs = rstats(r).runs;
		if (bad(maps != (int)runs, "%d kernel mappings, %" PRIu64 " runs", maps, runs))
			return false;
	}
	return true;
}

/* The fill pattern of fill_pages() (words at multiples of 512 bytes). */
static bool pattern_ok(const char *p, size_t np, uint64_t tag)
{
	for (size_t i = 0; i < np; i++) {
		const uint64_t *w = (const uint64_t *)(p + i * PG);
		for (size_t j = 0; j < PG / 8; j += 64)
			if (bad(w[j] != tag * 0x9e3779b97f4a7c15ull + i * 4096 + j,
				"page %zu word %zu lost its contents", i, j))
				return false;
	}
	return true;
}

/* The oracle's words against the writers' counts (after oracle_stop). */
static bool oracle_ok(struct oracle *o)
{
	for (int n = 0; n < o->nw; n++)
		for (int i = 0; i < o->na; i++)
			for (size_t k = 0; k < o->a[i].np; k++) {
				uint64_t v = *oracle_word(o->a[i].p, k, n);
				if (bad(v != o->w[n].shadow[i][k],
					"writer %d page %zu: word %" PRIu64 ", %u increments (lost writes)",
					n, k, v, o->w[n].shadow[i][k]))
					return false;
			}
	return true;
}

/* An error the library may return for an injected failure: the errno itself, or what it
 * stands for at the API (-ENOMEM for a failed allocation of any kind, -EOPNOTSUPP for
 * write protection or huge pages that could not be set up, -ENOSPC for huge pages). */
static bool clean_err(long rc)
{
	return rc == -inj_err || rc == -ENOMEM || rc == -EOPNOTSUPP || rc == -ENOSPC ||
	       rc == -EAGAIN || rc == -EINTR || rc == -EMFILE || rc == -ENFILE;
}

/* ------------------------------------------------------------------ operations */

#define LEN (512u << 10) /* 8 extents of GRAN */
#define NP ((unsigned)(LEN / PG))
/* The region of the pool and ctx cases: they test an external pool's and a new
 * instance's setup and teardown (a move of 4 extents each way); the leap case walks the
 * extents. Smaller keeps the run short in the emulated guests. */
#define SLEN (LEN / 2)
#define SNP ((unsigned)(SLEN / PG))
#define GRAN (64u << 10)
#define WRITERS 1

static struct leap_job_options gran_opts(int *status)
{
	return (struct leap_job_options){ .size = sizeof(struct leap_job_options),
					  .granularity_min = GRAN, .granularity_max = GRAN,
					  .status = status };
}

/* Outcome of one run of an operation: 0 completed, 1 returned -errno (why[] set: FAIL). */
struct op {
	const char *name;
	void (*setup)(void);
	int (*run)(void);
	void (*teardown)(void);
};

static int other_node(int n)
{
	return nn > 1 ? (n == nodes[0] ? nodes[1] : nodes[0]) : n;
}

/*
 * A page_leap() of all of r to tgt (relocating when tgt is where the pages are) under
 * writers, armed; then the checks: result and status[] consistent with the kernel, the
 * moved count, and a following uninjected page_leap() finishes the move. from: where the
 * pages are. Returns 0 (completed) or 1 (-errno); why[] on a failed check.
 */
static int leap_checked(struct leap_region *r, int from, int tgt, unsigned fl, struct oracle *o)
{
	char *base = leap_region_addr(r);
	size_t np = leap_region_length(r) / PG;
	int *st = malloc(np * sizeof(int)), *kn = malloc(np * sizeof(int));
	CHECK(st && kn, "out of memory");
	for (size_t i = 0; i < np; i++)
		st[i] = INT32_MIN;
	struct leap_job_options jo = gran_opts(st);
	uint64_t moved0 = rstats(r).pages_moved;
	arm();
	int rc = page_leap_opts(r, base, np * PG, tgt, fl, &jo, NULL);
	disarm();
	size_t on = 0;
	for (size_t i = 0; i < np; i++)
		on += st[i] == tgt;
	uint64_t moved = rstats(r).pages_moved - moved0;
	if (rc >= 0) {
		bad(rc != (int)np || on != np, "completed: %d moved, %zu of %zu pages say the target",
		    rc, on, np);
	} else {
		bad(!clean_err(rc), "returned %d (%s)", rc, leap_strerror(rc));
		/* refused before it started (status untouched, nothing moved), or every page's
		 * entry says its node or why it did not move */
		bool untouched = true;
		for (size_t i = 0; i < np; i++)
			untouched &= st[i] == INT32_MIN;
		for (size_t i = 0; !untouched && i < np; i++)
			if (bad(st[i] != tgt && (st[i] >= 0 || st[i] == INT32_MIN),
				"page %zu: status %d", i, st[i]))
				break;
	}
	bad(moved != on, "%" PRIu64 " pages moved, %zu statuses say moved", moved, on);
	if (agree(r, kn, LEAP_PAGES_SMALL))
		for (size_t i = 0; i < np; i++)
			if (bad(kn[i] != (st[i] == tgt ? tgt : from),
				"page %zu on node %d, status %d (from %d)", i, kn[i], st[i], from))
				break;
	/* the instance keeps working: the same move again, uninjected, finishes it */
	struct leap_job_options jo2 = gran_opts(NULL);
	int rc2 = page_leap_opts(r, base, np * PG, tgt, fl, &jo2, NULL);
	bad(rc2 < 0, "the following page_leap returned %d (%s)", rc2, leap_strerror(rc2));
	if (agree(r, kn, LEAP_PAGES_SMALL))
		for (size_t i = 0; i < np; i++)
			if (bad(kn[i] != tgt, "after the following page_leap: page %zu on node %d",
				i, kn[i]))
				break;
	if (o) {
		oracle_stop(o);
		oracle_ok(o);
		oracle_free(o);
	}
	free(st);
	free(kn);
	return rc < 0;
}

/* ---- page_leap with writers (relocation on one node, between nodes where two) */

static int r_node;
static int base_fds, base_maps;

static void leap_setup(void)
{
	OK(leap_ctx_new(NULL, &ctx));
	OK(leap_region_new(ctx, LEN, nodes[0], &R));
	fill_pages(leap_region_addr(R), NP, 5);
	r_node = nodes[0];
	OK(page_leap(R, leap_region_addr(R), LEN, r_node, LEAP_RELOCATE, NULL)); /* warm */
	/* pools map their memory chunk by chunk as it is first needed and keep it mapped:
	 * the move to the other node, where there is one, maps that node's pool now, not in
	 * the first case (the baseline counts every pool the case uses) */
	if (nn > 1) {
		OK(page_leap(R, leap_region_addr(R), LEN, other_node(r_node), 0, NULL));
		OK(page_leap(R, leap_region_addr(R), LEN, r_node, 0, NULL));
	}
	trim_pools(); /* creates every kind's pool: their memfds count in the baseline */
	base_fds = nfds();
	base_maps = other_maps();
}

static void leap_teardown(void)
{
	leap_region_destroy(&R);
	leap_ctx_destroy(&ctx);
}

static int leap_run(void)
{
	trim_pools(); /* destination pages must be allocated again: fallocate, populate */
	int tgt = other_node(r_node);
	struct oracle o;
	oracle_start_region(&o, WRITERS, R);
	int out = leap_checked(R, r_node, tgt, tgt == r_node ? LEAP_RELOCATE : 0, &o);
	r_node = tgt;
	pattern_ok(leap_region_addr(R), NP, 5);
	uint64_t used = used_pages(LEAP_PAGES_SMALL);
	bad(used != NP, "pools use %" PRIu64 " pages, the region has %u", used, NP);
	bad(nfds() != base_fds, "%d file descriptors, %d before", nfds(), base_fds);
	bad(other_maps() != base_maps, "%d pool mappings, %d before", other_maps(), base_maps);
	return out;
}

/* ---- region create and destroy, per kind */

static struct leap_place places[2];
static size_t nplaces;
static int r_kind;
static size_t r_len;
static uint64_t used0;

static void region_setup_common(void)
{
	OK(leap_ctx_new(NULL, &ctx));
	struct leap_region *w;
	struct leap_region_options ro = { .size = sizeof(ro), .pages = r_kind };
	/* the kind's pools, write protection, the worker */
	OK(leap_region_new_ex(ctx, r_len, places, nplaces, &ro, &w));
	OK(page_leap(w, leap_region_addr(w), r_len, nodes[0], LEAP_RELOCATE, NULL));
	leap_region_destroy(&w);
	trim_pools();
	used0 = used_pages(r_kind);
	base_fds = nfds();
	base_maps = other_maps();
}

static void region_small_setup(void)
{
	r_kind = LEAP_PAGES_SMALL;
	r_len = LEN;
	places[0] = (struct leap_place){ 0, LEN, nodes[0] };
	nplaces = 1;
	region_setup_common();
}

static void region_placed_setup(void)
{
	r_kind = LEAP_PAGES_SMALL;
	r_len = LEN;
	places[0] = (struct leap_place){ 0, LEN / 2, nodes[0] };
	places[1] = (struct leap_place){ LEN / 2, LEN / 2, nodes[nn - 1] };
	nplaces = 2;
	region_setup_common();
}

static void region_thp_setup(void)
{
	r_kind = LEAP_PAGES_THP;
	r_len = 2 * LEAP_HUGE_PAGE_SIZE;
	places[0] = (struct leap_place){ 0, r_len, nodes[0] };
	nplaces = 1;
	region_setup_common();
}

static void region_hugetlb_setup(void)
{
	r_kind = LEAP_PAGES_HUGETLB;
	r_len = LEAP_HUGE_PAGE_SIZE;
	places[0] = (struct leap_place){ 0, r_len, nodes[0] };
	nplaces = 1;
	region_setup_common();
}

static void ctx_teardown(void)
{
	leap_ctx_destroy(&ctx);
}

/* Create (armed), check, fill, destroy (armed); then an uninjected one that moves. */
static int region_run(void)
{
	struct leap_region_options ro = { .size = sizeof(ro), .pages = r_kind };
	struct leap_region *r = NULL;
	size_t np = r_len / PG;
	int *kn = malloc(np * sizeof(int));
	CHECK(kn, "out of memory");
	arm();
	int rc = leap_region_new_ex(ctx, r_len, places, nplaces, &ro, &r);
	disarm();
	if (rc == 0) {
		char *p = leap_region_addr(r);
		if (agree(r, kn, r_kind))
			for (size_t i = 0; i < np; i++) {
				int want = places[i * PG >= places[0].length ? 1 : 0].node;
				if (bad(kn[i] != want, "new region: page %zu on %d, want %d", i, kn[i],
					want))
					break;
			}
		for (size_t i = 0; i < np; i++)
			if (bad(*(uint64_t *)(p + i * PG) != 0, "new region: page %zu not zero", i))
				break;
		fill_pages(p, np, 9);
		pattern_ok(p, np, 9);
		arm();
		leap_region_destroy(&r);
		disarm();
	} else {
		bad(!clean_err(rc), "returned %d (%s)", rc, leap_strerror(rc));
		bad(r != NULL, "failed, but the handle was set");
	}
	uint64_t used = used_pages(r_kind);
	bad(used != used0, "pools use %" PRIu64 " pages after destroy, %" PRIu64 " before", used,
	    used0);
	bad(nfds() != base_fds, "%d file descriptors, %d before", nfds(), base_fds);
	bad(other_maps() != base_maps, "%d pool mappings, %d before", other_maps(), base_maps);
	/* the instance keeps working */
	int rc2 = leap_region_new_ex(ctx, r_len, places, nplaces, &ro, &r);
	if (!bad(rc2 != 0, "the following region_new returned %d (%s)", rc2, leap_strerror(rc2))) {
		fill_pages(leap_region_addr(r), np, 10);
		int m = page_leap(r, leap_region_addr(r), r_len, nodes[0], LEAP_RELOCATE, NULL);
		bad(m != (int)np, "the following page_leap returned %d", m);
		if (agree(r, kn, r_kind))
			for (size_t i = 0; i < np; i++)
				if (bad(kn[i] != nodes[0], "page %zu on %d after a move", i, kn[i]))
					break;
		pattern_ok(leap_region_addr(r), np, 10);
		leap_region_destroy(&r);
	}
	free(kn);
	return rc != 0;
}

/* ---- an external pool: open (an unnamed file in pool_dir), a region in it, moves out
 * and back, close */

static void pool_setup(void)
{
	r_kind = LEAP_PAGES_SMALL;
	r_len = SLEN;
	places[0] = (struct leap_place){ 0, SLEN, nodes[0] };
	nplaces = 1;
	region_setup_common();
}

static int pool_run(void)
{
	struct leap_pool *p = NULL;
	struct leap_region *r = NULL;
	int *kn = malloc(SNP * sizeof(int));
	CHECK(kn, "out of memory");
	int out = 0;
	arm();
	int rc = leap_pool_open(ctx, pool_dir, nodes[0], NULL, &p);
	disarm();
	if (rc) {
		bad(!clean_err(rc), "pool_open returned %d (%s)", rc, leap_strerror(rc));
		bad(p != NULL, "pool_open failed, but the handle was set");
		out = 1;
	} else {
		struct leap_region_options ro = { .size = sizeof(ro), .pool = p };
		arm();
		rc = leap_region_new_ex(ctx, SLEN, NULL, 0, &ro, &r);
		disarm();
		if (rc) {
			bad(!clean_err(rc), "region in the pool: %d (%s)", rc, leap_strerror(rc));
			out = 1;
		}
	}
	if (r) {
		fill_pages(leap_region_addr(r), SNP, 11);
		agree(r, kn, LEAP_PAGES_SMALL);
		/* out of the pool to the node's own pool, then back into the pool */
		struct oracle o;
		oracle_start_region(&o, WRITERS, r);
		out |= leap_checked(r, nodes[0], nodes[0], 0, NULL);
		arm();
		rc = page_leap_pool(r, leap_region_addr(r), SLEN, p, 0, NULL, NULL);
		disarm();
		if (rc < 0) {
			bad(!clean_err(rc), "page_leap_pool returned %d (%s)", rc, leap_strerror(rc));
			out = 1;
		}
		agree(r, kn, LEAP_PAGES_SMALL);
		rc = page_leap_pool(r, leap_region_addr(r), SLEN, p, LEAP_RELOCATE, NULL, NULL);
		bad(rc != (int)SNP, "the following page_leap_pool returned %d", rc);
		oracle_stop(&o);
		oracle_ok(&o);
		oracle_free(&o);
		pattern_ok(leap_region_addr(r), SNP, 11);
		arm();
		leap_region_destroy(&r);
		disarm();
	}
	if (p) {
		arm();
		leap_pool_close(&p);
		disarm();
		bad(p != NULL, "pool_close left the handle");
	}
	uint64_t used = used_pages(LEAP_PAGES_SMALL);
	bad(used != used0, "pools use %" PRIu64 " pages, %" PRIu64 " before", used, used0);
	bad(nfds() != base_fds, "%d file descriptors, %d before", nfds(), base_fds);
	bad(other_maps() != base_maps, "%d pool mappings, %d before", other_maps(), base_maps);
	/* the instance keeps working */
	if (!bad(leap_pool_open(ctx, pool_dir, nodes[0], NULL, &p) != 0, "following open")) {
		struct leap_region_options ro = { .size = sizeof(ro), .pool = p };
		if (!bad(leap_region_new_ex(ctx, SLEN, NULL, 0, &ro, &r) != 0, "following region")) {
			int m = page_leap(r, leap_region_addr(r), SLEN, nodes[0], 0, NULL);
			bad(m != (int)SNP, "following page_leap out of the pool: %d", m);
			leap_region_destroy(&r);
		}
		leap_pool_close(&p);
	}
	free(kn);
	return out;
}

/* ---- evacuation and compaction: walkers over the instance's regions */

static int64_t walk_wait(int rc, struct leap_job **j)
{
	if (rc)
		return rc;
	int64_t res = leap_job_wait(*j, -1);
	leap_job_destroy(j);
	return res;
}

static int64_t walk_base; /* the result without injection */

static void evac_setup(void)
{
	leap_setup();
	struct leap_job_options jo = gran_opts(NULL);
	struct leap_job *j;
	walk_base = walk_wait(leap_node_evacuate(ctx, nodes[0], 0, &jo, &j), &j);
	if (nn > 1)
		OK(page_leap(R, leap_region_addr(R), LEN, nodes[0], 0, NULL));
	r_node = nodes[0];
	/* the baseline again: the evacuation warmed the pools of every node it moves to */
	trim_pools();
	base_fds = nfds();
	base_maps = other_maps();
}

static int evac_run(void)
{
	trim_pools();
	struct oracle o;
	oracle_start_region(&o, WRITERS, R);
	struct leap_job_options jo = gran_opts(NULL);
	struct leap_job *j = NULL;
	int *kn = malloc(NP * sizeof(int));
	CHECK(kn, "out of memory");
	arm();
	int64_t res = walk_wait(leap_node_evacuate(ctx, nodes[0], 0, &jo, &j), &j);
	disarm();
	int out = res != walk_base;
	if (out)
		bad(res >= 0 || !clean_err(res), "evacuate returned %" PRId64 " (%s), %" PRId64
		    " without injection", res, leap_strerror((int)res), walk_base);
	if (agree(R, kn, LEAP_PAGES_SMALL) && nn > 1 && res >= 0)
		for (size_t i = 0; i < NP; i++)
			if (bad(kn[i] == nodes[0], "evacuated, but page %zu is on node %d", i, kn[i]))
				break;
	/* the instance keeps working: evacuate again, then all back */
	int64_t res2 = walk_wait(leap_node_evacuate(ctx, nodes[0], 0, &jo, &j), &j);
	bad(nn > 1 ? res2 < 0 : res2 != walk_base, "the following evacuation returned %" PRId64,
	    res2);
	out |= leap_checked(R, nn > 1 ? nodes[1] : nodes[0], nodes[0], nn > 1 ? 0 : LEAP_RELOCATE,
			    &o);
	pattern_ok(leap_region_addr(R), NP, 5);
	uint64_t used = used_pages(LEAP_PAGES_SMALL);
	bad(used != NP, "pools use %" PRIu64 " pages, the region has %u", used, NP);
	bad(nfds() != base_fds, "%d file descriptors, %d before", nfds(), base_fds);
	bad(other_maps() != base_maps, "%d pool mappings, %d before", other_maps(), base_maps);
	free(kn);
	return out;
}

static void compact_setup(void)
{
	leap_setup();
	walk_base = 0;
}

static int compact_run(void)
{
	char *base = leap_region_addr(R);
	/* two banks: the second half relocated */
	int m = page_leap(R, base + LEN / 2, LEN / 2, nodes[0], LEAP_RELOCATE | LEAP_NO_WRITERS,
			  NULL);
	CHECK(m == (int)NP / 2, "fragmenting: %d", m);
	trim_pools();
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, nodes[0], &pool));
	int *kn = malloc(NP * sizeof(int));
	CHECK(kn, "out of memory");
	struct oracle o;
	oracle_start_region(&o, WRITERS, R);
	struct leap_job_options jo = gran_opts(NULL);
	struct leap_job *j = NULL;
	arm();
	int64_t res = walk_wait(leap_pool_compact(pool, 0, &jo, &j), &j);
	disarm();
	if (res < 0)
		bad(!clean_err(res), "compact returned %" PRId64 " (%s)", res, leap_strerror((int)res));
	else
		bad(res != NP / 2, "compact moved %" PRId64 ", want %u", res, NP / 2);
	if (agree(R, kn, LEAP_PAGES_SMALL) && res >= 0)
		bad(rstats(R).runs != 1, "compacted, but %" PRIu64 " runs", rstats(R).runs);
	/* the instance keeps working */
	int64_t res2 = walk_wait(leap_pool_compact(pool, 0, &jo, &j), &j);
	bad(res2 < 0, "the following compaction returned %" PRId64, res2);
	if (agree(R, kn, LEAP_PAGES_SMALL))
		bad(rstats(R).runs != 1, "after the following compaction: %" PRIu64 " runs",
		    rstats(R).runs);
	oracle_stop(&o);
	oracle_ok(&o);
	oracle_free(&o);
	pattern_ok(base, NP, 5);
	uint64_t used = used_pages(LEAP_PAGES_SMALL);
	bad(used != NP, "pools use %" PRIu64 " pages, the region has %u", used, NP);
	bad(nfds() != base_fds, "%d file descriptors, %d before", nfds(), base_fds);
	free(kn);
	return res < 0;
}

/* ---- an instance from scratch: new, first region, first move (lazy pools, write
 * protection, workers), destroy */

static void fresh_setup(void)
{
	base_fds = nfds();
	base_maps = other_maps();
}

static void nothing(void)
{
}

static int fresh_run(void)
{
	struct leap_ctx *c = NULL;
	struct leap_region *r = NULL;
	int out = 0;
	arm();
	int rc = leap_ctx_new(NULL, &c);
	disarm();
	if (rc) {
		bad(!clean_err(rc), "ctx_new returned %d (%s)", rc, leap_strerror(rc));
		bad(c != NULL, "ctx_new failed, but the handle was set");
		out = 1;
		OK(leap_ctx_new(NULL, &c)); /* the machine still works */
	} else {
		arm();
		rc = leap_region_new(c, SLEN, nodes[0], &r);
		disarm();
		if (rc) {
			bad(!clean_err(rc), "region_new returned %d (%s)", rc, leap_strerror(rc));
			out = 1;
		}
	}
	if (!r)
		bad(leap_region_new(c, SLEN, nodes[0], &r) != 0, "the following region_new failed");
	/* an injected refusal (EPERM from userfaultfd, where no other way is open, as for
	 * an ordinary user in user-mode-only mode) is the kernel's "no" for this instance:
	 * no write protection for good, by design. Anything else must leave it able. */
	if (r && leap_ctx_write_protect(c, NULL) == LEAP_WP_NONE) {
		bad(!atomic_load(&inj_hit) || inj_err != EPERM,
		    "no write protection after a transient failure");
		int e = page_leap(r, leap_region_addr(r), PG, nodes[0], LEAP_RELOCATE, NULL);
		bad(e != -EOPNOTSUPP, "a move with writers on an instance without protection: %d",
		    e);
		leap_region_destroy(&r);
		leap_ctx_destroy(&c);
		OK(leap_ctx_new(NULL, &c));
		bad(leap_region_new(c, SLEN, nodes[0], &r) != 0, "a fresh instance's region failed");
	}
	if (r) {
		fill_pages(leap_region_addr(r), SNP, 13);
		struct oracle o;
		oracle_start_region(&o, WRITERS, r);
		out |= leap_checked(r, nodes[0], nodes[0], LEAP_RELOCATE, &o);
		pattern_ok(leap_region_addr(r), SNP, 13);
	}
	arm();
	leap_region_destroy(&r);
	leap_ctx_destroy(&c);
	disarm();
	bad(nfds() != base_fds, "%d file descriptors, %d before", nfds(), base_fds);
	bad(other_maps() != base_maps, "%d pool mappings, %d before", other_maps(), base_maps);
	return out;
}

/* ------------------------------------------------------------------ the sweep */

enum { O_DONE, O_ERR, O_MISS, O_FAIL, O_N };
static const char *const out_name[O_N] = { "completed", "-errno", "not reached", "FAIL" };

static const char *errname(int e)
{
	switch (e) {
	case ENOMEM: return "ENOMEM";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EPERM: return "EPERM";
	case ENOSPC: return "ENOSPC";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	default: return "?";
	}
}

/* One case: the operation with the k-th call of site s failing with err (s < 0: none). */
static int one(const struct op *op, int s, long k, int err)
{
	snprintf(cur_case, sizeof(cur_case), "%s %s k=%ld %s", op->name,
		 s >= 0 ? site_info[s].name : "count", k, s >= 0 ? errname(err) : "-");
	for (int i = 0; i < S_N; i++)
		atomic_store(&ncalls[i], 0);
	inj_site = s;
	inj_k = k;
	inj_err = err;
	atomic_store(&inj_hit, 0);
	why[0] = 0;
	alarm(WATCHDOG_S);
	int out = op->run();
	alarm(0);
	bool hit = atomic_load(&inj_hit);
	if (!why[0] && !hit && s >= 0 && out)
		bad(true, "failed with nothing injected");
	if (why[0]) {
		printf("FAIL %s: %s\n", cur_case, why);
		fflush(stdout);
		if (t_reason && !t_reason[0])
			snprintf(t_reason, T_REASON_MAX, "%s: %s", cur_case, why);
		return O_FAIL;
	}
	return s >= 0 && !hit ? O_MISS : out ? O_ERR : O_DONE;
}

static const struct op op_fresh;

static void sweep(const struct op *op)
{
	long kmax = env_long("LEAP_FAILINJ_K", 5);
	bool full = env_long("LEAP_FAILINJ_FULL", 0) != 0;
	op->setup();
	if (one(op, -1, 0, 0) == O_FAIL) {
		op->teardown();
		FAIL("%s without injection: %s", op->name, why);
	}
	long n[S_N];
	for (int i = 0; i < S_N; i++)
		n[i] = atomic_load(&ncalls[i]);
	if (n[S_NUMA_ALLOC] && op != &op_fresh) {
		op->teardown();
		FAIL("%s calls libnuma's allocating functions %ld times: a failed allocation there "
		     "exits the process", op->name, n[S_NUMA_ALLOC]);
	}
	long count[S_N][MAX_ERRS][O_N];
	memset(count, 0, sizeof(count));
	int fails = 0, cases = 0;
	double t0 = now();
	for (int s = 0; s < S_N; s++) {
		if (!n[s] || !site_info[s].err[0])
			continue;
		/* k = 1..n[s], or kmax of them spread evenly (first and last included) */
		long nk = full || n[s] <= kmax ? n[s] : kmax;
		for (long i = 0; i < nk; i++) {
			long k = nk == n[s] ? i + 1 : nk == 1 ? 1 : 1 + i * (n[s] - 1) / (nk - 1);
			for (int e = 0; e < MAX_ERRS && site_info[s].err[e]; e++) {
				int o = one(op, s, k, site_info[s].err[e]);
				count[s][e][o]++;
				cases++;
				if (o == O_FAIL) { /* start again from a clean instance */
					fails++;
					op->teardown();
					op->setup();
				}
			}
		}
	}
	op->teardown();
	say("%s: %d cases in %.1f s, %d FAIL%s", op->name, cases, now() - t0, fails,
	    full ? " (every k)" : "");
	printf("%-8s %-28s %-7s %6s %9s %7s %12s %5s\n", "op", "site", "errno", "calls", "completed",
	       "-errno", "not reached", "FAIL");
	for (int s = 0; s < S_N; s++) {
		if (!n[s])
			continue;
		if (!site_info[s].err[0]) {
			printf("%-8s %-28s %-7s %6ld %9s %7s %12s %5s\n", op->name, site_info[s].name,
			       "-", n[s], "(counted", "only)", "", "");
			continue;
		}
		for (int e = 0; e < MAX_ERRS && site_info[s].err[e]; e++) {
			long *c = count[s][e];
			printf("%-8s %-28s %-7s %6ld %9ld %7ld %12ld %5ld%s\n", op->name,
			       site_info[s].name, errname(site_info[s].err[e]), n[s], c[O_DONE],
			       c[O_ERR], c[O_MISS], c[O_FAIL],
			       !full && n[s] > kmax ? " (k sampled)" : "");
		}
	}
	(void)out_name;
	fflush(stdout);
	if (fails)
		FAIL("%s: %d of %d cases failed (see above)", op->name, fails, cases);
}

static const struct op op_leap = { "leap", leap_setup, leap_run, leap_teardown };
static const struct op op_region = { "region", region_small_setup, region_run, ctx_teardown };
static const struct op op_placed = { "placed", region_placed_setup, region_run, ctx_teardown };
static const struct op op_thp = { "thp", region_thp_setup, region_run, ctx_teardown };
static const struct op op_hugetlb = { "hugetlb", region_hugetlb_setup, region_run, ctx_teardown };
static const struct op op_pool = { "pool", pool_setup, pool_run, ctx_teardown };
static const struct op op_evac = { "evacuate", evac_setup, evac_run, leap_teardown };
static const struct op op_compact = { "compact", compact_setup, compact_run, leap_teardown };
static const struct op op_fresh = { "ctx", fresh_setup, fresh_run, nothing };

CASE(leap)
{
	sweep(&op_leap);
}
CASE(region)
{
	sweep(&op_region);
}
CASE(placed)
{
	sweep(&op_placed);
}
CASE(thp)
{
	struct leap_ctx *c;
	struct leap_region *r;
	struct leap_region_options ro = { .size = sizeof(ro), .pages = LEAP_PAGES_THP };
	struct leap_place pl = { 0, 2 * LEAP_HUGE_PAGE_SIZE, nodes[0] };
	if (geteuid() == 0) { /* allow shared-memory THP where it is off: restored at exit */
		char mode[32];
		hp_thp_mode(mode, sizeof(mode));
		if (!strcmp(mode, "never") || !strcmp(mode, "deny")) {
			hp_setup(nodes[nn - 1] + 1);
			hp_write(HP_THP_PATH, "advise");
		}
	}
	OK(leap_ctx_new(NULL, &c));
	/* a region, and a move with writers (a kernel before 6.4 cannot write-protect the
	 * THP a move splits) */
	char why_not[200] = "";
	int rc = leap_region_new_ex(c, pl.length, &pl, 1, &ro, &r);
	if (rc == 0) {
		rc = page_leap(r, leap_region_addr(r), pl.length, nodes[0], LEAP_RELOCATE, NULL);
		if (rc < 0)
			snprintf(why_not, sizeof(why_not), "THP regions cannot move with writers here: "
				 "%s", *leap_errormsg() ? leap_errormsg() : leap_strerror(rc));
		leap_region_destroy(&r);
	} else {
		snprintf(why_not, sizeof(why_not), "no THP regions here: %s",
			 *leap_errormsg() ? leap_errormsg() : leap_strerror(rc));
	}
	leap_ctx_destroy(&c);
	if (rc < 0)
		skip(why_not);
	sweep(&op_thp);
}
/* Free hugetlb pages the hugetlb case wants on the first node: the region's, a
 * relocation's and what the pools keep between cases. */
#define HUGETLB_FREE 4

CASE(hugetlb)
{
	struct leap_ctx *c;
	struct leap_region *r = NULL; /* a failed region_new leaves it as it was */
	struct leap_region_options ro = { .size = sizeof(ro), .pages = LEAP_PAGES_HUGETLB };
	struct leap_place pl = { 0, LEAP_HUGE_PAGE_SIZE, nodes[0] };
	if (geteuid() == 0) { /* reserve (never fewer than there are), restored at exit */
		hp_setup(nodes[nn - 1] + 1);
		char path[128];
		hp_node_path(path, sizeof(path), nodes[0], "free_hugepages");
		long fr = hp_read(path);
		hp_node_path(path, sizeof(path), nodes[0], "nr_hugepages");
		long have = hp_read(path);
		if (fr >= 0 && have >= 0 && fr < HUGETLB_FREE)
			hp_reserve(nodes[0], have + HUGETLB_FREE - fr);
	}
	OK(leap_ctx_new(NULL, &c));
	int rc = leap_region_new_ex(c, pl.length, &pl, 1, &ro, &r);
	if (rc == 0)
		rc = page_leap(r, leap_region_addr(r), pl.length, nodes[0], LEAP_RELOCATE, NULL);
	leap_region_destroy(&r);
	leap_ctx_destroy(&c);
	if (rc < 0)
		skip("no two free hugetlb pages on the first node");
	sweep(&op_hugetlb);
}
/* An external pool can be opened in dir (a directory: a path that is missing would be
 * created as the pool's file). */
static bool pool_dir_works(const char *dir)
{
	struct stat sb;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return false;
	struct leap_ctx *c;
	struct leap_pool *p = NULL;
	OK(leap_ctx_new(NULL, &c));
	int rc = leap_pool_open(c, dir, nodes[0], NULL, &p);
	leap_pool_close(&p);
	leap_ctx_destroy(&c);
	return rc == 0;
}

static void pool_unmount(void)
{
	umount2(pool_dir, MNT_DETACH);
	rmdir(pool_dir);
}

CASE(pool)
{
	/* /dev/shm, else TMPDIR, else (root) a tmpfs of its own: the guests' initramfs has
	 * no /dev/shm */
	const char *tmp = getenv("TMPDIR");
	char real[PATH_MAX];
	if (pool_dir_works(pool_dir)) {
	} else if (tmp && realpath(tmp, real) && strlen(real) < sizeof(pool_dir) &&
		   pool_dir_works(real)) {
		snprintf(pool_dir, sizeof(pool_dir), "%s", real);
	} else if (geteuid() == 0) {
		snprintf(pool_dir, sizeof(pool_dir), "/tmp/t_failinj.XXXXXX");
		if (!mkdtemp(pool_dir))
			FAIL("mkdtemp %s: %s", pool_dir, strerror(errno));
		if (mount("none", pool_dir, "tmpfs", 0, "size=64m") != 0) {
			int e = errno;
			rmdir(pool_dir);
			FAIL("mount -t tmpfs %s: %s", pool_dir, strerror(e));
		}
		atexit(pool_unmount);
		CHECK(pool_dir_works(pool_dir), "no external pool on a fresh tmpfs at %s", pool_dir);
	} else {
		skip("no tmpfs for an external pool: /dev/shm and TMPDIR cannot hold one, and "
		     "mounting a tmpfs needs root");
	}
	say("external pools in %s", pool_dir);
	sweep(&op_pool);
}
CASE(evacuate)
{
	sweep(&op_evac);
}
CASE(compact)
{
	sweep(&op_compact);
}
CASE(ctx)
{
	sweep(&op_fresh);
}

int main(void)
{
	t_name = "t_failinj";
	struct leap_ctx *c;
	OK(leap_ctx_new(NULL, &c));
	nn = mem_nodes(leap_ctx_topo(c), nodes, 64);
	struct leap_region *r;
	OK(leap_region_new(c, LEN, nodes[0], &r));
	int rc = page_leap(r, leap_region_addr(r), LEN, nodes[0], LEAP_RELOCATE, NULL);
	leap_region_destroy(&r);
	leap_ctx_destroy(&c);
	if (rc == -EOPNOTSUPP)
		skip("no userfaultfd write protection (the writers need it)");
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	say("%d memory node(s); k per site: %ld (LEAP_FAILINJ_K)%s", nn,
	    env_long("LEAP_FAILINJ_K", 5),
	    env_long("LEAP_FAILINJ_FULL", 0) ? ", every k (LEAP_FAILINJ_FULL)" : "");
	return RUN_CASES(leap, region, placed, thp, hugetlb, pool, evacuate, compact, ctx);
}
