/*
 * wp.h - write protection of extents in flight (userfaultfd), and the timing of the
 * writers it makes wait. See wp.c for the mechanism. Not installed.
 */
#ifndef LEAP_WP_H
#define LEAP_WP_H

#include "util/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define LEAP_WP_FAULTS_MAX 64 /* faults timed per extent; more are counted */
/* An extent in flight: write protected, listed so the listener can time its faults. */
struct leap__wp_extent {
	uintptr_t lo, hi;
	uint64_t start_ns;
	uint32_t nfaults;
	uint64_t fault_ns[LEAP_WP_FAULTS_MAX];
	struct leap__wp_extent *next;
};
struct leap__wp {
	int fd;	     /* the userfaultfd */
	int stop[2]; /* stops the listener */
	pthread_t thread;
	pthread_mutex_t lock;		   /* guards inflight and the extents' fault records */
	struct leap__wp_extent *inflight;
	/* protecting a huge-mapped shmem THP splits its entry into unpopulated ones; the
	 * 6.1 guest lost writes there (t_huge). Kernels with UFFD_FEATURE_WP_UNPOPULATED
	 * protect those too: THP moves with writers need it. */
	bool thp_ok;
	/* user-mode-only userfaultfd (LEAP_CTX_ALLOW_USER_MODE): kernel-mode writes to a
	 * protected page fail with EFAULT instead of waiting */
	bool user_only;
};
/* Open write protection; modes: LEAP_UFFD_* (os.h). On success *how says how it was
 * opened, on failure why not and what to do (static texts, for leap_errormsg()). */
int leap__wp_new(unsigned modes, struct leap__wp **out, const char **how);
/* The text for a THP move refused because the kernel lacks WP_UNPOPULATED. */
extern const char leap__wp_thp_why[];
void leap__wp_free(struct leap__wp *w);
int leap__wp_register(struct leap__wp *w, void *addr, uint64_t npages);
void leap__wp_track(struct leap__wp *w, struct leap__wp_extent *e, void *addr, uint64_t npages);
int leap__wp_set(struct leap__wp *w, void *addr, uint64_t npages, bool on);
void leap__wp_release(struct leap__wp *w, struct leap__wp_extent *e, struct leap__hist *h);

#endif /* LEAP_WP_H */
