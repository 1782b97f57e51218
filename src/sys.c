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
 * Bind file pages [pg_off, pg_off+npages) to node before any of them exist.
 * mbind() on a MAP_SHARED mapping of a shmem file sets the file's shared policy (kept
 * in the inode, not in the mapping), so it outlives the temporary mapping and governs
 * every later allocation of those pages: fallocate, write and faults through any
 * mapping. PROT_NONE is enough: no page is touched.
 */
int leap__sys_bind_file(int fd, uint64_t pg_off, uint64_t npages, int node)
{
	size_t len = npages * LEAP_PG;
	void *p = mmap(NULL, len, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd,
		       (off_t)(pg_off * LEAP_PG));
	if (p == MAP_FAILED)
		return -errno;
	struct bitmask *bm = numa_allocate_nodemask();
	if (!bm) {
		munmap(p, len);
		return -ENOMEM;
	}
	numa_bitmask_setbit(bm, (unsigned)node);
	int rc = 0;
	if (mbind(p, len, MPOL_BIND, bm->maskp, bm->size + 1, 0) != 0)
		rc = -errno;
	numa_bitmask_free(bm);
	munmap(p, len);
	return rc;
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
 * Copy npages from src (mapped user memory) into the file at pg_off.
 * Why pwrite and not memcpy into a mapping of the pool: the kernel copies straight into
 * the file's pages, so the destination costs no page-table setup and no page faults
 * (about 14 us each on the development machine), and pages that did not exist yet are
 * not zeroed first. One call moves up to 2 GiB.
 */
int leap__sys_copy_to_file(int fd, uint64_t pg_off, const void *src, uint64_t npages)
{
	const char *p = src;
	uint64_t left = npages * LEAP_PG;
	off_t off = (off_t)(pg_off * LEAP_PG);
	while (left) {
		size_t chunk = left > (UINT64_C(1) << 30) ? (size_t)1 << 30 : (size_t)left;
		ssize_t w = pwrite(fd, p, chunk, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == ENOSPC ? -ENOMEM : -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		off += w;
		left -= (uint64_t)w;
	}
	return 0;
}

/*
 * Map file pages [pg_off, pg_off+npages) at addr, replacing whatever is there, and fill
 * the page tables in the same call (MAP_POPULATE) so the program takes no fault per page
 * afterwards. Neighbouring mappings of the same file at contiguous offsets are merged by
 * the kernel into one mapping.
 */
int leap__sys_map_file(void *addr, uint64_t npages, int fd, uint64_t pg_off)
{
	void *p = mmap(addr, npages * LEAP_PG, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, (off_t)(pg_off * LEAP_PG));
	if (p == MAP_FAILED)
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
