/*
 * os.h - the OS layer: the only place in libpageleap that makes raw system calls
 * (memfd, mmap, fallocate, madvise, mbind, userfaultfd and its ioctls, sysfs reads).
 * Every call returns 0 (or a count) or -errno; nothing here knows about regions, pools
 * or jobs. Not installed.
 *
 * Units: pool offsets and lengths are counted in pages (LEAP_PAGE_SIZE) as uint64_t;
 * bytes appear only inside this layer.
 */
#ifndef LEAP_OS_H
#define LEAP_OS_H

#include "util/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
int leap__sys_dontfork(void *addr, uint64_t npages);
/* Open path as an external pool file (see leap_pool_open); *kind in: wanted, out: found. */
int leap__sys_open_pool_file(const char *path, int *kind, bool *dax, uint64_t *fs_free);
/* The integer in the first line of a /proc or sysfs file. */
int leap__sys_read_int(const char *path, int *out);
/* Whether the kernel allows shared-memory THP (shmem_enabled not never/deny). */
bool leap__sys_shmem_thp_ok(void);
/* Free hugetlb pages of 2 MiB on node (sysfs), or 0. */
uint64_t leap__sys_free_hugepages(int node);
int leap__sys_reserve(size_t len, size_t align, void **out);
void leap__sys_unmap(void *addr, size_t len);
/* CLOCK_MONOTONIC in ns: the library's one clock for durations and deadlines. */
uint64_t leap__sys_now_ns(void);
void leap__sys_close(int fd);
/* Open thread tid's /proc stat file (an fd, or -ESRCH); the CPU it last ran on, read
 * from that fd (or -ESRCH once it has exited). */
int leap__sys_task_open(int tid);
int leap__sys_task_cpu(int fd);
int leap__sys_gettid(void);
/* pthread_create() for the library's own threads, with every asynchronous signal blocked
 * in the new thread (a program's signals go to the program's threads). 0 or -errno. */
int leap__sys_thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
			    void *arg);

/* ------------------------------------------------------------ uffd.c */
/* What leap__uffd_open_wp() got, or what refused it (errno values, 0: not tried or fine). */
struct leap__uffd_how {
	uint64_t features; /* what the kernel offers (UFFD_FEATURE_*) */
	bool user_only;	   /* a user-mode-only descriptor */
	bool via_dev;	   /* opened through /dev/userfaultfd */
	bool no_shmem_wp;  /* the kernel cannot write-protect shared memory */
	int sys_err;	   /* the userfaultfd(2) call's errno */
	int dev_err;	   /* opening /dev/userfaultfd or its ioctl: errno */
	int user_err;	   /* the user-mode-only try's errno */
};
#define LEAP_UFFD_ALLOW_USER 0x1u /* user-mode-only when the full kind is refused */
#define LEAP_UFFD_FORCE_USER 0x2u /* user-mode-only even where the full kind is allowed */
/* A write-protect userfaultfd (returned), non-blocking, feature-negotiated; *how says
 * which kind and, on failure, what refused it. -EOPNOTSUPP when unavailable or lacking
 * shmem WP; other -errno (EMFILE, ENOMEM) as the kernel said. */
int leap__uffd_open_wp(unsigned modes, struct leap__uffd_how *how);
/* The feature bit of UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4+), for callers without the
 * kernel header. */
#define LEAP_UFFD_WP_UNPOPULATED (UINT64_C(1) << 13)
/* Register [addr, addr+npages) for write protection. */
int leap__uffd_register_wp(int fd, void *addr, uint64_t npages);
/* Protect (on) or unprotect without waking [addr, addr+npages); -EAGAIN is retried. */
int leap__uffd_writeprotect(int fd, void *addr, uint64_t npages, bool on);
/* Wake the writers blocked in [lo, hi) (bytes). */
void leap__uffd_wake(int fd, uintptr_t lo, uintptr_t hi);
/* Read every pending message; call fn(address, arg) for each page fault. Returns the
 * number of messages read. */
int leap__uffd_drain(int fd, void (*fn)(uintptr_t addr, void *arg), void *arg);
/* A stoppable wait for a listener thread: a pipe (stop[0] read, stop[1] write). */
int leap__sys_stopper_new(int stop[2]);
void leap__sys_stopper_signal(const int stop[2]);
void leap__sys_stopper_close(const int stop[2]);
/* Wait until fd is readable (1) or the stopper was signalled (0); -errno on failure. */
int leap__sys_wait_readable(int fd, const int stop[2]);

#endif /* LEAP_OS_H */
