/*
 * wp.c - write protection of extents in flight, with userfaultfd.
 *
 * Why userfaultfd write-protect: while an extent is copied and remapped, a write to it
 * must not land in the old pages (it would be lost). With UFFDIO_WRITEPROTECT on the
 * extent, a writer blocks in the kernel on its first write; readers are not affected.
 * After the new pages are mapped over the extent, UFFDIO_WAKE lets the writer retry its
 * fault, which now finds the new page: the write lands there, exactly once. Atomic
 * read-modify-write instructions are writes and behave the same. No signal handler, no
 * mprotect, and kernel-mode writes (read(2) into the region) wait the same way.
 * A MAP_FIXED remap drops the registration of its range, so every remapped range is
 * registered again (and merges back with its registered neighbours into one mapping).
 *
 * One userfaultfd per library instance, opened on first use. A listener thread reads the
 * fault messages as they come, so each blocked writer is timed from the moment it
 * faulted to the moment its extent is woken: the writer-stall statistics. Messages of a
 * fault are dropped by the kernel once it is woken, so the listener must read promptly;
 * wp->lock guards the list of extents in flight and their fault records.
 */
#include "os/os.h"
#include "wp/wp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

/* Open a userfaultfd: the syscall; /dev/userfaultfd where the syscall is denied. */
static int open_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 || errno != EPERM)
		return fd >= 0 ? fd : -errno;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd >= 0 ? fd : -EPERM;
}

static void *listener_main(void *arg);

/* Open and probe; write protection of shmem needs UFFD_FEATURE_WP_HUGETLBFS_SHMEM. */
int leap__wp_new(struct leap__wp **out)
{
	struct leap__wp *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = open_uffd();
	if (w->fd < 0) {
		int rc = w->fd;
		free(w);
		return rc == -ENOSYS || rc == -EPERM ? -EOPNOTSUPP : rc;
	}
	struct uffdio_api api = { .api = UFFD_API };
	/* ask what the kernel has, then enable what we use */
	if (ioctl(w->fd, UFFDIO_API, &api) != 0 ||
	    !(api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)) {
		close(w->fd);
		free(w);
		return -EOPNOTSUPP;
	}
	uint64_t avail = api.features;
	close(w->fd);
	w->fd = open_uffd();
	if (w->fd < 0) {
		free(w);
		return -EOPNOTSUPP;
	}
	/* pages are always populated, but protect unpopulated ones too where the kernel can */
	api = (struct uffdio_api){ .api = UFFD_API,
				   .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
					       (avail & UFFD_FEATURE_WP_UNPOPULATED) };
	if (ioctl(w->fd, UFFDIO_API, &api) != 0 || pipe2(w->stop, O_CLOEXEC) != 0) {
		close(w->fd);
		free(w);
		return -EOPNOTSUPP;
	}
	w->thp_ok = avail & UFFD_FEATURE_WP_UNPOPULATED;
	pthread_mutex_init(&w->lock, NULL);
	int rc = -pthread_create(&w->thread, NULL, listener_main, w);
	if (rc) {
		close(w->stop[0]);
		close(w->stop[1]);
		close(w->fd);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void leap__wp_free(struct leap__wp *w)
{
	if (!w)
		return;
	char c = 0;
	if (write(w->stop[1], &c, 1) != 1) {
		/* the pipe cannot be full: nothing else writes to it */
	}
	pthread_join(w->thread, NULL);
	close(w->stop[0]);
	close(w->stop[1]);
	close(w->fd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Register [addr, addr+npages) for write protection (after mapping or remapping it). */
int leap__wp_register(struct leap__wp *w, void *addr, uint64_t npages)
{
	struct uffdio_register r = { .range = { (uintptr_t)addr, npages * LEAP_PG },
				     .mode = UFFDIO_REGISTER_MODE_WP };
	return ioctl(w->fd, UFFDIO_REGISTER, &r) == 0 ? 0 : -errno;
}

/* Record a fault at addr seen at time t against the extent in flight that holds it. */
static void note_fault(struct leap__wp *w, uintptr_t addr, uint64_t t)
{
	pthread_mutex_lock(&w->lock);
	for (struct leap__wp_extent *e = w->inflight; e; e = e->next) {
		if (addr < e->lo || addr >= e->hi)
			continue;
		if (e->nfaults < LEAP_WP_FAULTS_MAX)
			e->fault_ns[e->nfaults] = t;
		e->nfaults++;
		break;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Read every pending fault message; returns how many. */
static int drain(struct leap__wp *w)
{
	struct uffd_msg m[16];
	int n = 0;
	for (;;) {
		ssize_t r = read(w->fd, m, sizeof(m));
		if (r <= 0)
			return n;
		uint64_t t = leap__sys_now_ns();
		for (size_t i = 0; i < (size_t)r / sizeof(m[0]); i++, n++)
			if (m[i].event == UFFD_EVENT_PAGEFAULT)
				note_fault(w, (uintptr_t)m[i].arg.pagefault.address, t);
	}
}

static void *listener_main(void *arg)
{
	struct leap__wp *w = arg;
	struct pollfd p[2] = { { .fd = w->fd, .events = POLLIN }, { .fd = w->stop[0], .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			drain(w);
	}
	return NULL;
}

/*
 * Track an extent in flight: faults in [addr, addr+npages) are timed against it until
 * release. pre: e is not listed.
 */
void leap__wp_track(struct leap__wp *w, struct leap__wp_extent *e, void *addr, uint64_t npages)
{
	e->lo = (uintptr_t)addr;
	e->hi = e->lo + npages * LEAP_PG;
	e->nfaults = 0;
	pthread_mutex_lock(&w->lock);
	e->next = w->inflight;
	w->inflight = e;
	pthread_mutex_unlock(&w->lock);
}

/*
 * Write-protect (on) or unprotect [addr, addr+npages): from protection on, writers to
 * the range block until it is woken. The range must lie in one mapping: before Linux 6.5
 * UFFDIO_WRITEPROTECT refuses (-ENOENT) a range over several, so callers go run by run.
 * Unprotecting does not wake: release does. -EAGAIN (the address space changing under
 * us) is retried.
 */
int leap__wp_set(struct leap__wp *w, void *addr, uint64_t npages, bool on)
{
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)addr, npages * LEAP_PG },
					  .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP
						     : UFFDIO_WRITEPROTECT_MODE_DONTWAKE };
	for (int tries = 0; tries < 100; tries++) {
		if (ioctl(w->fd, UFFDIO_WRITEPROTECT, &wp) == 0)
			return 0;
		if (errno != EAGAIN)
			break;
	}
	return -errno;
}

/*
 * The extent's new pages are mapped (or its old ones restored): wake every writer
 * blocked on it and unlist it. Stalls (wake time - fault time) go to h.
 */
void leap__wp_release(struct leap__wp *w, struct leap__wp_extent *e, struct leap__hist *h)
{
	/* faults not yet read by the listener would vanish on wake: read them now */
	drain(w);
	struct uffdio_range r = { e->lo, e->hi - e->lo };
	ioctl(w->fd, UFFDIO_WAKE, &r);
	uint64_t now = leap__sys_now_ns();
	pthread_mutex_lock(&w->lock);
	for (struct leap__wp_extent **pp = &w->inflight; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	if (!h)
		return;
	for (uint32_t i = 0; i < e->nfaults && i < LEAP_WP_FAULTS_MAX; i++)
		leap__hist_add(h, now > e->fault_ns[i] ? now - e->fault_ns[i] : 0);
	/* faults beyond the record table stalled at most as long as the extent */
	for (uint32_t i = LEAP_WP_FAULTS_MAX; i < e->nfaults; i++)
		leap__hist_add(h, now - e->start_ns);
}
