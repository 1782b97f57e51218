/*
 * sys.c - the one place that makes raw system calls.
 *
 * Contract: every function returns 0 (or a count) on success and -errno on failure,
 * never touches library state and is safe to call from any thread. Offsets and lengths
 * come in pages and are converted to bytes here. NUMA calls go through libnuma.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Create an anonymous shared-memory file (the backing store of a pool). */
int leap__sys_memfd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Map npages of the pool file's offset space from page pg_off at a fresh address and bind
 * them to node before any page exists. mbind() on a MAP_SHARED mapping of a shmem file sets the
 * file's shared policy (kept in the inode, not in the mapping), so it governs every later
 * allocation of those pages: fallocate, write and faults through any mapping. The
 * mapping is address space only (MAP_NORESERVE) until pages are populated.
 */
int leap__sys_map_pool(int fd, uint64_t pg_off, uint64_t npages, int node, void **out)
{
	size_t bytes = npages * LEAP_PG;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		       (off_t)(pg_off * LEAP_PG));
	if (p == MAP_FAILED)
		return -errno;
	struct bitmask *bm = numa_allocate_nodemask();
	if (!bm) {
		munmap(p, bytes);
		return -ENOMEM;
	}
	numa_bitmask_setbit(bm, (unsigned)node);
	int rc = 0;
	if (mbind(p, bytes, MPOL_BIND, bm->maskp, bm->size + 1, 0) != 0)
		rc = -errno;
	numa_bitmask_free(bm);
	if (rc) {
		munmap(p, bytes);
		return rc;
	}
	*out = p;
	return 0;
}

/*
 * Fill the page tables of [addr, addr+npages) for writing in one call, instead of one
 * fault per page (about 14 us each on the development machine) during a later copy.
 * Kernels before 5.14 lack MADV_POPULATE_WRITE: the copy then takes the faults.
 */
int leap__sys_populate_write(void *addr, uint64_t npages)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
	if (madvise(addr, npages * LEAP_PG, MADV_POPULATE_WRITE) != 0 && errno != EINVAL)
		return errno == EFAULT ? -ENOMEM : -errno;
	return 0;
}

/* Allocate the file's pages in [pg_off, pg_off+npages) (they follow the shared policy). */
int leap__sys_fallocate(int fd, uint64_t pg_off, uint64_t npages)
{
	if (fallocate(fd, 0, (off_t)(pg_off * LEAP_PG), (off_t)(npages * LEAP_PG)) != 0)
		return errno == ENOSPC ? -ENOMEM : -errno;
	return 0;
}

/* Give the file's pages in [pg_off, pg_off+npages) back to the kernel. */
int leap__sys_punch(int fd, uint64_t pg_off, uint64_t npages)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(pg_off * LEAP_PG),
		      (off_t)(npages * LEAP_PG)) != 0)
		return -errno;
	return 0;
}

/*
 * Map file pages [pg_off, pg_off+npages) at addr, replacing whatever is there, and fill
 * the page tables in the same call (MAP_POPULATE) so the program takes no fault per page
 * afterwards. Neighbouring mappings of the same file at contiguous offsets (and the same
 * flags and userfaultfd registration) are merged by the kernel into one mapping.
 */
int leap__sys_map_file(void *addr, uint64_t npages, int fd, uint64_t pg_off)
{
	void *p = mmap(addr, npages * LEAP_PG, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, (off_t)(pg_off * LEAP_PG));
	if (p == MAP_FAILED)
		return -errno;
	/* a child of fork() must not keep pool pages the parent will reuse: regions are not
	 * inherited (every mapping of a region carries the flag, so they still merge) */
	if (madvise(addr, npages * LEAP_PG, MADV_DONTFORK) != 0)
		return -errno;
	return 0;
}

/* Reserve len bytes of address space aligned to align (no memory, no access). */
int leap__sys_reserve(size_t len, size_t align, void **out)
{
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
