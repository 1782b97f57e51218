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

const char leap__wp_thp_why[] =
	"this kernel cannot write-protect shared-memory THP that a move splits "
	"(UFFD_FEATURE_WP_UNPOPULATED, Linux 6.4+): writes could be lost, so THP regions move "
	"here only with LEAP_NO_WRITERS (nothing writes during the move)";

#define NO_WRITERS_HINT "or pass LEAP_NO_WRITERS when nothing writes during the move"
/* A grant an administrator makes once; pageleap(7) "Unprivileged operation" has the udev
 * rule that makes it survive a reboot. */
#define GRANT_HINT                                                                           \
	"ask the administrator to grant /dev/userfaultfd to a group (groupadd pageleap; "    \
	"chgrp pageleap /dev/userfaultfd; chmod 0660 /dev/userfaultfd; usermod -aG pageleap " \
	"USER; see pageleap(7))"
#define USER_HINT                                                                            \
	"opt in to user-mode-only protection (LEAP_CTX_ALLOW_USER_MODE or PAGELEAP_WP=user; "  \
	"then a system call that writes into a moving page fails with EFAULT)"

/* Why no write protection could be opened, and what to do: one text per cause. */
static const char *why_not(const struct leap__uffd_how *h, int rc, unsigned modes)
{
	if (rc == -EMFILE || rc == -ENFILE)
		return "could not open a userfaultfd: too many open files (raise RLIMIT_NOFILE)";
	if (rc == -ENOMEM)
		return "could not open a userfaultfd: out of memory";
	if (h->sys_err == ENOSYS)
		return "this kernel has no userfaultfd (built without CONFIG_USERFAULTFD): "
		       NO_WRITERS_HINT;
	if (h->no_shmem_wp)
		return "this kernel's userfaultfd cannot write-protect shared memory "
		       "(UFFD_FEATURE_WP_HUGETLBFS_SHMEM, Linux 5.19+): " NO_WRITERS_HINT;
	if (h->user_err == EINVAL && (modes & LEAP_UFFD_FORCE_USER))
		return "this kernel has no user-mode-only userfaultfd (Linux 5.11+), which "
		       "LEAP_CTX_USER_MODE_ONLY (PAGELEAP_WP=user-only) asks for: " NO_WRITERS_HINT;
	if (h->user_err == EINVAL)
		return "userfaultfd is refused to this process and this kernel has no "
		       "user-mode-only kind (Linux 5.11+): " GRANT_HINT ", " NO_WRITERS_HINT;
	if (h->user_err)
		return "userfaultfd is refused to this process, user-mode-only too: a seccomp "
		       "filter or security module blocks it (container runtimes do by default); "
		       "allow the userfaultfd system call, " NO_WRITERS_HINT;
	if (h->sys_err == EACCES)
		return "userfaultfd is denied to this process by a security module (EACCES, "
		       "e.g. an SELinux policy): allow it, " NO_WRITERS_HINT;
	if (h->sys_err != EPERM && !(modes & LEAP_UFFD_FORCE_USER))
		return "userfaultfd write protection is unavailable here: " NO_WRITERS_HINT;
	int unpriv = 0;
	if (leap__sys_read_int("/proc/sys/vm/unprivileged_userfaultfd", &unpriv) == 0 && unpriv)
		return "the userfaultfd system call is refused although "
		       "vm.unprivileged_userfaultfd = 1: a seccomp filter or security module "
		       "blocks it (container runtimes do by default); allow it, " GRANT_HINT
		       ", " USER_HINT ", " NO_WRITERS_HINT;
	if (modes & LEAP_UFFD_ALLOW_USER)
		return "userfaultfd is refused to this process: " NO_WRITERS_HINT;
	if (h->dev_err == ENOENT)
		return "userfaultfd is for privileged processes here "
		       "(vm.unprivileged_userfaultfd = 0) and this kernel has no /dev/userfaultfd "
		       "(Linux 6.1+): ask the administrator to set vm.unprivileged_userfaultfd = 1, "
		       "" USER_HINT ", " NO_WRITERS_HINT;
	return "userfaultfd is for privileged processes here (vm.unprivileged_userfaultfd = 0) "
	       "and /dev/userfaultfd is not open to this user: " GRANT_HINT ", " USER_HINT
	       ", " NO_WRITERS_HINT;
}

/* Open, negotiate (os/uffd.c) and start the listener. */
int leap__wp_new(unsigned modes, struct leap__wp **out, const char **how)
{
	struct leap__wp *w = calloc(1, sizeof(*w));
	if (!w) {
		*how = "out of memory";
		return -ENOMEM;
	}
	struct leap__uffd_how h;
	w->fd = leap__uffd_open_wp(modes, &h);
	int rc = w->fd < 0 ? w->fd : leap__sys_stopper_new(w->stop);
	if (rc < 0) {
		*how = w->fd < 0 ? why_not(&h, rc, modes) : "could not create a pipe";
		if (w->fd >= 0)
			leap__sys_close(w->fd);
		free(w);
		return rc;
	}
	w->thp_ok = h.features & LEAP_UFFD_WP_UNPOPULATED;
	w->user_only = h.user_only;
	pthread_mutex_init(&w->lock, NULL);
	rc = leap__sys_thread_create(&w->thread, NULL, listener_main, w);
	if (rc) {
		*how = "could not start the userfaultfd listener thread";
		leap__sys_stopper_close(w->stop);
		leap__sys_close(w->fd);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return rc;
	}
	*how = h.user_only ? "user-mode-only userfaultfd (opted in): the program's own writes to "
			     "a moving page wait, but a system call that writes into one "
			     "(read(2), recv(2), io_uring) fails with EFAULT and a datagram is "
			     "lost; declare such buffers with leap_io_begin()"
	       : h.via_dev ? "userfaultfd through /dev/userfaultfd: every write to a moving page "
			     "waits, kernel-mode ones too"
			   : "userfaultfd: every write to a moving page waits, kernel-mode ones too";
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
