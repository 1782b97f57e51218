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
 * wp->lock guards the list of extents in flight and their fault records. The system
 * calls themselves (userfaultfd, its ioctls, the listener's wait) are in os/uffd.c.
 */
#include "os/os.h"
#include "wp/wp.h"

#include <errno.h>
#include <stdlib.h>

static void *listener_main(void *arg);

/* Open, negotiate (os/uffd.c) and start the listener. */
int leap__wp_new(struct leap__wp **out)
{
	struct leap__wp *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	uint64_t features = 0;
	w->fd = leap__uffd_open_wp(&features);
	int rc = w->fd < 0 ? w->fd : leap__sys_stopper_new(w->stop);
	if (rc < 0) {
		if (w->fd >= 0)
			leap__sys_close(w->fd);
		free(w);
		return rc;
	}
	w->thp_ok = features & LEAP_UFFD_WP_UNPOPULATED;
	pthread_mutex_init(&w->lock, NULL);
	rc = leap__sys_thread_create(&w->thread, NULL, listener_main, w);
	if (rc) {
		leap__sys_stopper_close(w->stop);
		leap__sys_close(w->fd);
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
	leap__sys_stopper_signal(w->stop);
	pthread_join(w->thread, NULL);
	leap__sys_stopper_close(w->stop);
	leap__sys_close(w->fd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Register [addr, addr+npages) for write protection (after mapping or remapping it). */
int leap__wp_register(struct leap__wp *w, void *addr, uint64_t npages)
{
	return leap__uffd_register_wp(w->fd, addr, npages);
}

/* A fault at addr seen at time t (the listener's drain). */
struct seen {
	struct leap__wp *w;
	uint64_t t;
};

/* Record a fault at addr seen at time t against the extent in flight that holds it. */
static void note_fault(uintptr_t addr, void *arg)
{
	struct leap__wp *w = ((struct seen *)arg)->w;
	uint64_t t = ((struct seen *)arg)->t;
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
	struct seen sn = { w, leap__sys_now_ns() };
	return leap__uffd_drain(w->fd, note_fault, &sn);
}

static void *listener_main(void *arg)
{
	struct leap__wp *w = arg;
	while (leap__sys_wait_readable(w->fd, w->stop) > 0)
		drain(w);
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
	return leap__uffd_writeprotect(w->fd, addr, npages, on);
}

/*
 * The extent's new pages are mapped (or its old ones restored): wake every writer
 * blocked on it and unlist it. Stalls (wake time - fault time) go to h.
 */
void leap__wp_release(struct leap__wp *w, struct leap__wp_extent *e, struct leap__hist *h)
{
	/* faults not yet read by the listener would vanish on wake: read them now */
	drain(w);
	leap__uffd_wake(w->fd, e->lo, e->hi);
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
