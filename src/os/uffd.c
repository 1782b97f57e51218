/*
 * uffd.c - userfaultfd for write protection, and the stoppable wait its listener uses.
 *
 * Opening: the userfaultfd(2) system call; where that is denied (EPERM: Debian's
 * vm.unprivileged_userfaultfd = 0), /dev/userfaultfd if the process may open it; and,
 * only when the caller asks, a user-mode-only one, which any process may open (Linux
 * 5.11+) but whose protection kernel-mode writes do not wait for (they fail with
 * EFAULT). What was tried and why it failed is reported, for the library's error text.
 * The descriptor is non-blocking so the listener drains it without blocking.
 * Negotiation: a userfaultfd accepts UFFDIO_API once, so the kernel's features are asked
 * on a first descriptor, which is closed, and a second one enables what we use.
 * Threads: no state; each call is a system call on the caller's descriptor.
 */
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
_Static_assert(LEAP_UFFD_WP_UNPOPULATED == UFFD_FEATURE_WP_UNPOPULATED, "os.h copy of the bit");
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static bool transient(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM;
}

/* Open a userfaultfd: the syscall, else /dev/userfaultfd where the syscall is denied;
 * user-mode-only (flag UFFD_USER_MODE_ONLY) only when asked. -errno of the last try. */
static int open_uffd(int user, struct leap__uffd_how *how)
{
	int flags = O_CLOEXEC | O_NONBLOCK | (user ? UFFD_USER_MODE_ONLY : 0);
	int fd = (int)syscall(SYS_userfaultfd, flags);
	if (fd >= 0 || errno != EPERM || user) {
		if (fd < 0 && !user)
			how->sys_err = errno;
		return fd >= 0 ? fd : -errno;
	}
	how->sys_err = EPERM;
	int dev, err;
	while ((dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)) < 0 && errno == EINTR)
		;
	while ((fd = dev < 0 ? -1 : ioctl(dev, USERFAULTFD_IOC_NEW, flags)) < 0 && errno == EINTR)
		;
	err = errno;
	if (dev >= 0)
		close(dev);
	if (fd >= 0) {
		how->via_dev = true;
		return fd;
	}
	how->dev_err = err;
	/* out of descriptors or memory is a shortage, not a refusal */
	return transient(err) ? -err : -EPERM;
}

/* Ask a fresh descriptor what the kernel offers, then enable what we use on a second one
 * (UFFDIO_API is accepted once per descriptor). */
static int negotiate(int user, struct leap__uffd_how *how)
{
	int fd = open_uffd(user, how);
	if (fd < 0)
		return fd;
	struct uffdio_api api = { .api = UFFD_API };
	/* write protection of shmem needs WP_HUGETLBFS_SHMEM (Linux 5.19) */
	int ok = ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	close(fd);
	if (!ok) {
		how->no_shmem_wp = true;
		return -EOPNOTSUPP;
	}
	uint64_t avail = api.features;
	fd = open_uffd(user, how);
	if (fd < 0)
		return fd;
	/* pages are always populated, but protect unpopulated ones too where the kernel can */
	api = (struct uffdio_api){ .api = UFFD_API,
				   .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
					       (avail & UFFD_FEATURE_WP_UNPOPULATED) };
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		close(fd);
		how->no_shmem_wp = true;
		return -EOPNOTSUPP;
	}
	how->features = avail;
	how->user_only = user;
	return fd;
}

int leap__uffd_open_wp(unsigned modes, struct leap__uffd_how *how)
{
	*how = (struct leap__uffd_how){ 0 };
	int fd = -EPERM;
	if (!(modes & LEAP_UFFD_FORCE_USER))
		fd = negotiate(0, how);
	/* user-mode-only: what an ordinary user may open under vm.unprivileged_userfaultfd = 0
	 * (Linux 5.11+), taken only on request: kernel-mode writes fail instead of waiting */
	if (fd == -EPERM && (modes & (LEAP_UFFD_ALLOW_USER | LEAP_UFFD_FORCE_USER))) {
		fd = negotiate(1, how);
		if (fd < 0 && fd != -EOPNOTSUPP)
			how->user_err = -fd;
	}
	/* a shortage is the caller's to retry; any other refusal (EPERM, EACCES from a
	 * security module, ENOSYS, EINVAL...) means no write protection for this process */
	if (fd < 0 && !transient(-fd))
		return -EOPNOTSUPP;
	return fd;
}

int leap__uffd_register_wp(int fd, void *addr, uint64_t npages)
{
	struct uffdio_register r = { .range = { (uintptr_t)addr, npages * LEAP_PG },
				     .mode = UFFDIO_REGISTER_MODE_WP };
	return ioctl(fd, UFFDIO_REGISTER, &r) == 0 ? 0 : -errno;
}

/* Before Linux 6.5 UFFDIO_WRITEPROTECT refuses (-ENOENT) a range over several mappings:
 * callers pass a range inside one. -EAGAIN (the address space changing under us) is
 * retried. */
int leap__uffd_writeprotect(int fd, void *addr, uint64_t npages, bool on)
{
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)addr, npages * LEAP_PG },
					  .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP
						     : UFFDIO_WRITEPROTECT_MODE_DONTWAKE };
	for (int tries = 0; tries < 100; tries++) {
		if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) == 0)
			return 0;
		if (errno != EAGAIN)
			break;
	}
	return -errno;
}

void leap__uffd_wake(int fd, uintptr_t lo, uintptr_t hi)
{
	struct uffdio_range r = { lo, hi - lo };
	ioctl(fd, UFFDIO_WAKE, &r);
}

int leap__uffd_drain(int fd, void (*fn)(uintptr_t addr, void *arg), void *arg)
{
	struct uffd_msg m[16];
	int n = 0;
	for (;;) {
		ssize_t r = read(fd, m, sizeof(m));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n; /* EAGAIN: drained */
		for (size_t i = 0; i < (size_t)r / sizeof(m[0]); i++, n++)
			if (m[i].event == UFFD_EVENT_PAGEFAULT)
				fn((uintptr_t)m[i].arg.pagefault.address, arg);
	}
}

int leap__sys_stopper_new(int stop[2])
{
	return pipe2(stop, O_CLOEXEC) == 0 ? 0 : -errno;
}

void leap__sys_stopper_signal(const int stop[2])
{
	char c = 0;
	/* the pipe cannot be full: one byte is ever written; a signal may interrupt it */
	while (write(stop[1], &c, 1) != 1 && errno == EINTR)
		;
}

void leap__sys_stopper_close(const int stop[2])
{
	close(stop[0]);
	close(stop[1]);
}

int leap__sys_wait_readable(int fd, const int stop[2])
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop[0], .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return 0;
		if (p[0].revents & POLLIN)
			return 1;
	}
}
