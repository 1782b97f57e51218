/*
 * sys.c - the one place that makes raw system calls.
 *
 * Contract: every function returns 0 (or a count) on success and -errno on failure,
 * never touches library state and is safe to call from any thread. Offsets and lengths
 * come in pages and are converted to bytes here. NUMA calls go through libnuma.
 *
 * Signals: the program's threads that call into the library may take signals at any rate
 * (a SIGALRM timer installed without SA_RESTART). fallocate stops at any pending signal
 * on hugetlbfs and, before Linux 6.x, on shmem too, and then gives back what it had
 * allocated: under a signal every millisecond a retry never finished (t_signals hung in
 * the 6.1 guest). So the calls that can take long (fallocate, punch, ftruncate, populate)
 * run with the asynchronous signals blocked (quiet()): a signal waits for the end of the
 * call instead of restarting it. EINTR is still repeated (each call is idempotent over its
 * range), so it never reaches the library's callers. The library's own threads block the
 * asynchronous signals for good (leap__sys_thread_create).
 */
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <numa.h>
#include <numaif.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26)
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

/* Create an anonymous memory file (the backing store of a pool): shared memory, or
 * hugetlb memory of 2 MiB pages. */
int leap__sys_memfd(const char *name, int kind)
{
	unsigned flags = MFD_CLOEXEC;
	if (kind == LEAP_PAGES_HUGETLB)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	int fd = memfd_create(name, flags);
	return fd < 0 ? -errno : fd;
}

/* Grow (or shrink) the file to npages. Pages past the end cannot be mapped (SIGBUS), and
 * THP pools allocate by faulting, which does not extend the file as fallocate does. */
/* The asynchronous signals: all but those a fault raises, which must stay deliverable. */
static void async_signals(sigset_t *set)
{
	sigfillset(set);
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS };
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(set, faults[i]);
}

/* Block the asynchronous signals on the calling thread until loud(old). */
static void quiet(sigset_t *old)
{
	sigset_t all;
	async_signals(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void loud(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int leap__sys_truncate(int fd, uint64_t npages)
{
	int rc;
	sigset_t old;
	quiet(&old);
	while ((rc = ftruncate(fd, (off_t)(npages * LEAP_PG))) != 0 && errno == EINTR)
		;
	int err = errno;
	loud(&old);
	errno = err;
	return rc == 0 ? 0 : -errno;
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	int rc = fgets(buf, (int)len, f) ? 0 : -EIO;
	fclose(f);
	return rc;
}

int leap__sys_read_int(const char *path, int *out)
{
	char buf[64];
	int rc = read_line(path, buf, sizeof(buf));
	if (rc)
		return rc;
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || v < INT_MIN || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* The bracketed word of a sysfs choice file ("always [advise] never"), or "". */
static void chosen(const char *path, char *out, size_t len)
{
	char line[256];
	out[0] = 0;
	if (read_line(path, line, sizeof(line)))
		return;
	char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
	if (a && b && (size_t)(b - a) < len) {
		memcpy(out, a + 1, (size_t)(b - a - 1));
		out[b - a - 1] = 0;
	}
}

/*
 * Shared-memory THP needs the kernel's consent: shmem_enabled other than never/deny (the
 * library asks for huge pages with MADV_HUGEPAGE, which "advise" honours). Kernels 6.8+
 * also have a per-size setting for 2 MiB that overrides it unless "inherit".
 */
bool leap__sys_shmem_thp_ok(void)
{
	char top[32], pmd[32];
	chosen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", top, sizeof(top));
	chosen("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled", pmd,
	       sizeof(pmd));
	const char *eff = pmd[0] && strcmp(pmd, "inherit") ? pmd : top;
	return eff[0] && strcmp(eff, "never") && strcmp(eff, "deny");
}

/*
 * A tmpfs mount allocates huge pages by its own huge= option (default never), not by
 * shmem_enabled (which governs memfds): the longest mount point of /proc/self/mounts
 * holding dir must say huge=always, within_size or advise (or shmem_enabled force).
 */
static bool tmpfs_thp_ok(const char *dir)
{
	char top[32];
	chosen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", top, sizeof(top));
	if (!strcmp(top, "deny"))
		return false;
	if (!strcmp(top, "force"))
		return true;
	char real[4096];
	if (!realpath(dir, real))
		return false;
	FILE *f = fopen("/proc/self/mounts", "r");
	if (!f)
		return false;
	char line[4096], best_opts[1024] = "";
	size_t best = 0;
	while (fgets(line, sizeof(line), f)) {
		char dev[256], mnt[2048], type[64], opts[1024];
		if (sscanf(line, "%255s %2047s %63s %1023s", dev, mnt, type, opts) != 4)
			continue;
		size_t n = strlen(mnt);
		bool under = !strncmp(real, mnt, n) && (real[n] == '/' || real[n] == 0 || n == 1);
		if (under && n >= best) {
			best = n;
			snprintf(best_opts, sizeof(best_opts), "%s", !strcmp(type, "tmpfs") ? opts : "");
		}
	}
	fclose(f);
	return strstr(best_opts, "huge=always") || strstr(best_opts, "huge=within_size") ||
	       strstr(best_opts, "huge=advise");
}

uint64_t leap__sys_free_hugepages(int node)
{
	char path[128], line[64];
	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages", node);
	if (read_line(path, line, sizeof(line)))
		return 0;
	return strtoull(line, NULL, 10);
}

/*
 * Open an external pool's file. A directory gets an unnamed file (O_TMPFILE); a file is
 * created if missing and must be empty. The file system decides the kind: hugetlbfs is
 * hugetlb; tmpfs is small pages or THP as asked; a DAX file (statx) is small pages.
 * Anything else is page cache backed by a disk: not memory a pool can promise.
 *
 * Where the name may be another user's to place (a shared /tmp or /dev/shm), a symlink
 * there must not redirect the library to a file of the attacker's choosing: the last
 * component of path is never followed (-ELOOP), neither when creating nor when opening
 * what exists, and what is opened is what was looked at: the name is first pinned with
 * O_PATH, checked (a regular file or a directory; nothing else is opened for writing,
 * a device might act on the open), then opened and compared by device and inode with
 * what was pinned, so a rename in between is refused (-EAGAIN). Files are created 0600
 * (owner only; the umask can only remove bits), the unnamed file too.
 */
static int open_existing(const char *path, bool *is_dir)
{
	int pin = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pin < 0)
		return -errno;
	struct stat ps, st;
	int fd;
	if (fstat(pin, &ps) != 0) {
		int err = errno;
		close(pin);
		return -err;
	}
	if (S_ISLNK(ps.st_mode))
		fd = -ELOOP;
	else if (S_ISDIR(ps.st_mode))
		fd = (fd = openat(pin, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0 ? -errno : fd;
	else if (!S_ISREG(ps.st_mode)) /* device DAX and other devices: not supported yet */
		fd = leap__why(-EOPNOTSUPP, "the pool file is a device, FIFO or socket: only "
					    "regular files and directories are supported");
	else
		fd = (fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)) < 0 ? -errno : fd;
	if (fd >= 0 && !S_ISDIR(ps.st_mode) &&
	    (fstat(fd, &st) != 0 || st.st_dev != ps.st_dev || st.st_ino != ps.st_ino)) {
		close(fd);
		fd = -EAGAIN; /* the name was replaced between the look and the open */
	}
	*is_dir = S_ISDIR(ps.st_mode);
	close(pin);
	return fd;
}

int leap__sys_open_pool_file(const char *path, int *kind, bool *dax, uint64_t *fs_free)
{
	struct stat st;
	bool is_dir = false;
	/* O_EXCL with O_CREAT never follows a symlink (EEXIST), O_NOFOLLOW says so twice */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	bool created = fd >= 0;
	if (fd < 0 && (errno == EEXIST || errno == EISDIR))
		fd = open_existing(path, &is_dir);
	else if (fd < 0)
		fd = -errno;
	if (fd < 0)
		return fd;
	struct statfs sf;
	int rc = 0;
	if (fstat(fd, &st) != 0 || fstatfs(fd, &sf) != 0)
		rc = -errno;
	else if (st.st_size != 0)
		rc = -EEXIST;
	*dax = false;
	if (!rc && (unsigned long)sf.f_type == HUGETLBFS_MAGIC) {
		*kind = LEAP_PAGES_HUGETLB;
	} else if (!rc && (unsigned long)sf.f_type == TMPFS_MAGIC) {
		if (*kind == LEAP_PAGES_HUGETLB) {
			rc = -EINVAL;
		} else if (*kind == LEAP_PAGES_THP) {
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s", path);
			char *slash = strrchr(dir, '/');
			if (!is_dir && slash)
				*slash = 0; /* the file's directory */
			if (!tmpfs_thp_ok(dir[0] ? dir : "/"))
				rc = leap__why(-EOPNOTSUPP, "a THP pool needs a tmpfs mounted with "
							    "huge=always, within_size or advise "
							    "(and shmem THP allowed)");
		}
	} else if (!rc) {
		struct statx sx;
		if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) == 0 &&
		    (sx.stx_attributes_mask & STATX_ATTR_DAX) && (sx.stx_attributes & STATX_ATTR_DAX) &&
		    *kind == LEAP_PAGES_SMALL)
			*dax = true;
		else
			rc = leap__why(-EOPNOTSUPP, "a pool file must be on tmpfs, hugetlbfs or a "
						    "DAX file system (small pages only on DAX)");
	}
	if (rc) {
		close(fd);
		if (created) /* refused: leave no trace of the call */
			unlink(path);
		return rc;
	}
	*fs_free = (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize;
	return fd;
}

/*
 * Node masks for mbind() and set_mempolicy() are built here, on the stack: libnuma's
 * numa_allocate_nodemask() exits the process when its malloc fails (t_failinj found it
 * in the static build), and the library must never exit. MASK_BITS is libnuma's usual
 * mask size; the kernel accepts a longer mask than it has nodes when the bits past them
 * are 0.
 */
#define MASK_BITS 1024
#define MASK_LONGS (MASK_BITS / (8 * sizeof(unsigned long)))
static int node_mask(unsigned long *mask, int node)
{
	if (node < 0 || node >= MASK_BITS)
		return -EINVAL;
	memset(mask, 0, MASK_LONGS * sizeof(*mask));
	mask[(unsigned)node / (8 * sizeof(*mask))] |= 1ul << ((unsigned)node % (8 * sizeof(*mask)));
	return 0;
}

/*
 * Map npages of the pool file's offset space from page pg_off at a fresh address and bind
 * them to node before any page exists. mbind() on a MAP_SHARED mapping of a shmem file sets the
 * file's shared policy (kept in the inode, not in the mapping), so it governs every later
 * allocation of those pages: fallocate, write and faults through any mapping. The
 * mapping is address space only (MAP_NORESERVE) until pages are populated.
 */
int leap__sys_map_pool(int fd, uint64_t pg_off, uint64_t npages, int node, int kind, bool bind,
		       void **out)
{
	size_t bytes = npages * LEAP_PG;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		       (off_t)(pg_off * LEAP_PG));
	if (p == MAP_FAILED)
		return -errno;
	/* THP pools allocate their huge pages by populating this mapping: the advice makes
	 * the kernel allocate 2 MiB folios for it (shmem_enabled=advise suffices) */
	if (kind == LEAP_PAGES_THP && madvise(p, bytes, MADV_HUGEPAGE) != 0) {
		int rc = -errno;
		munmap(p, bytes);
		return rc;
	}
	if (!bind) { /* DAX: the pages are where the device is */
		*out = p;
		return 0;
	}
	unsigned long mask[MASK_LONGS];
	int rc = node_mask(mask, node);
	if (!rc && mbind(p, bytes, MPOL_BIND, mask, MASK_BITS + 1, 0) != 0)
		rc = -errno;
	if (rc) {
		munmap(p, bytes);
		return rc;
	}
	*out = p;
	return 0;
}

/*
 * Fill the page tables of [addr, addr+npages) for writing in one call, instead of one
 * fault per page during a later copy (a minor fault costs far more than its share of
 * one madvise; pageleap bench's page_leap_cold row shows the cold path's cost).
 * Kernels before 5.14 lack MADV_POPULATE_WRITE: the copy then takes the faults.
 */
int leap__sys_populate_write(void *addr, uint64_t npages)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
	int rc;
	sigset_t old;
	quiet(&old);
	while ((rc = madvise(addr, npages * LEAP_PG, MADV_POPULATE_WRITE)) != 0 && errno == EINTR)
		;
	int err = errno;
	loud(&old);
	errno = err;
	if (rc != 0 && errno != EINVAL)
		return errno == EFAULT ? -ENOMEM : -errno;
	return 0;
}

/* Map [addr, addr+npages) again after its entries were dropped, without a fault per page
 * later. A hint: failure costs faults, not data. */
void leap__sys_populate_read(void *addr, uint64_t npages)
{
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
	madvise(addr, npages * LEAP_PG, MADV_POPULATE_READ);
}

/*
 * Allocate the file's pages in [pg_off, pg_off+npages). Shared memory follows the file's
 * shared policy (set by map_pool). hugetlbfs keeps no shared policy: its fallocate takes
 * the calling thread's policy, so the thread binds itself to node for the call and then
 * restores its own policy. Out of hugetlb pages is -ENOSPC (the admin must reserve
 * more), out of memory -ENOMEM.
 */
int leap__sys_fallocate(int fd, uint64_t pg_off, uint64_t npages, int node, int kind)
{
	int old_mode = 0;
	unsigned long old[MASK_LONGS], mask[MASK_LONGS];
	bool bound = kind == LEAP_PAGES_HUGETLB && node >= 0;
	if (bound) {
		int rc = node_mask(mask, node);
		if (!rc && get_mempolicy(&old_mode, old, MASK_BITS + 1, NULL, 0) != 0)
			rc = -errno;
		if (!rc && set_mempolicy(MPOL_BIND, mask, MASK_BITS + 1) != 0)
			rc = -errno;
		if (rc)
			return rc;
	}
	int rc = 0;
	/* see the top: signals wait for the end of the call (t_signals) */
	int frc;
	sigset_t old_sigs;
	quiet(&old_sigs);
	while ((frc = fallocate(fd, 0, (off_t)(pg_off * LEAP_PG), (off_t)(npages * LEAP_PG))) != 0 &&
	       errno == EINTR)
		;
	int err = errno;
	loud(&old_sigs);
	errno = err;
	if (frc != 0)
		rc = errno == ENOSPC ? (kind == LEAP_PAGES_HUGETLB ? -ENOSPC : -ENOMEM) : -errno;
	if (bound)
		set_mempolicy(old_mode, old_mode == MPOL_DEFAULT ? NULL : old,
			      old_mode == MPOL_DEFAULT ? 0 : MASK_BITS + 1);
	return rc;
}

/* Give the file's pages in [pg_off, pg_off+npages) back to the kernel. */
int leap__sys_punch(int fd, uint64_t pg_off, uint64_t npages)
{
	int rc;
	sigset_t old;
	quiet(&old);
	while ((rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(pg_off * LEAP_PG), (off_t)(npages * LEAP_PG))) != 0 &&
	       errno == EINTR)
		;
	int err = errno;
	loud(&old);
	return rc == 0 ? 0 : -err;
}

/*
 * Map file pages [pg_off, pg_off+npages) at addr, replacing whatever is there, and fill
 * the page tables in the same call (MAP_POPULATE) so the program takes no fault per page
 * afterwards. Neighbouring mappings of the same file at contiguous offsets (and the same
 * flags and userfaultfd registration) are merged by the kernel into one mapping.
 */
int leap__sys_map_file(void *addr, uint64_t npages, int fd, uint64_t pg_off, int kind)
{
	/* hugetlb: the pages exist already (fallocate reserved them); no second reservation.
	 * THP: huge folios of the pool are mapped with one entry each by the populate */
	int flags = MAP_SHARED | MAP_FIXED | MAP_POPULATE;
	if (kind == LEAP_PAGES_HUGETLB)
		flags |= MAP_NORESERVE;
	leap__kernel_ordered_begin(); /* over write-protected pages (util.h) */
	void *p = mmap(addr, npages * LEAP_PG, PROT_READ | PROT_WRITE, flags, fd,
		       (off_t)(pg_off * LEAP_PG));
	leap__kernel_ordered_end();
	return p == MAP_FAILED ? -errno : 0;
}

/* A child of fork() must not keep pool pages the parent will reuse: regions are not
 * inherited (every mapping of a region carries the flag, so they still merge). Called on
 * every range leap__sys_map_file() mapped. */
int leap__sys_dontfork(void *addr, uint64_t npages)
{
	return madvise(addr, npages * LEAP_PG, MADV_DONTFORK) == 0 ? 0 : -errno;
}

/* Reserve len bytes of address space aligned to align (no memory, no access). */
int leap__sys_reserve(size_t len, size_t align, void **out)
{
	if (len > SIZE_MAX - align) /* the span would wrap: then the trims below would unmap
				       what was never reserved */
		return -ENOMEM;
	size_t span = len + align;
	char *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = a - (uintptr_t)p;
	if (head)
		munmap(p, head);
	if (span - head - len)
		munmap((char *)a + len, span - head - len);
	*out = (void *)a;
	return 0;
}

/* Unmap [addr, addr+len). */
void leap__sys_unmap(void *addr, size_t len)
{
	munmap(addr, len);
}

/* Monotonic time in nanoseconds. */
uint64_t leap__sys_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A thread's stat file, kept open so each look costs one read, not an open and a close. */
int leap__sys_task_open(int tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

/* The CPU the thread of a leap__sys_task_open() fd last ran on: field 39 of its stat
 * line, read after the command name (which may hold spaces and parentheses, hence the
 * last ')'). -ESRCH once the thread has exited. */
int leap__sys_task_cpu(int fd)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return n < 0 && errno != ESRCH ? -errno : -ESRCH;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* after ") " come fields 3, 4, ...: skip to field 39 */
	for (int field = 3; field <= 39 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -EIO;
	return atoi(p + 1);
}

int leap__sys_gettid(void)
{
	return (int)syscall(SYS_gettid);
}

/*
 * Create a library thread (a copy worker, the fault listener, a coordinator, a prober)
 * with the asynchronous signals blocked: the mask is inherited at creation, so no signal
 * can reach the thread before it runs. Such a signal is the program's (its timer, its
 * SIGINT, SIGCHLD): delivered to a library thread it would run the program's handler
 * there and end the thread's system calls early. Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP, SIGSYS) stay unblocked: a fault in a library thread still acts as a fault.
 */
int leap__sys_thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
			    void *arg)
{
	sigset_t old;
	quiet(&old);
	int rc = pthread_create(t, attr, fn, arg);
	loud(&old);
	return -rc;
}

void leap__sys_close(int fd)
{
	close(fd);
}
