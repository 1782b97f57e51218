/*
 * hook.h - the library's test seams (src/core/job.c, src/core/lifetime.c), for tests
 * linked with the static library: a function called on a job's thread before each
 * extent, one called when a walker's move starts waiting for a busy range, and one when a
 * job starts waiting for declared device I/O. A test sets one to
 * hold a job at a known point (a gate) instead of judging by how far it got meanwhile.
 * Also the internal deadline of leap_job_wait(), so a test can see which clock it is on.
 */
#ifndef LEAP_TEST_HOOK_H
#define LEAP_TEST_HOOK_H

#include "pageleap.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

extern void (*leap__test_extent_hook)(struct leap_job *j, struct leap_region *r, size_t offset);
/* Called under the region's lock just before a walker's move starts waiting for a range
 * busy with another job (src/core/lifetime.c). It must not call into the library. */
extern void (*leap__test_claim_wait_hook)(struct leap_region *r);
/* Called under the region's lock when a job has parked to wait for device I/O declared
 * with leap_io_begin() to end (src/core/job.c): its io_waits counts it. It must not call
 * into the library. */
extern void (*leap__test_io_wait_hook)(struct leap_region *r);
/* Called under the region's lock once a job's extent is recorded as in flight for the
 * device-I/O declarations, before it moves (src/core/job.c). It must not call into the
 * library. */
extern void (*leap__test_in_extent_hook)(struct leap_job *j, struct leap_region *r,
					 size_t offset);
/* Called on the moving thread, under the region's lock, once an extent's moving pages
 * [addr, addr+len) are write-protected and before they are copied (src/core/extent.c).
 * It must not call into the library; under full write protection a write to those pages
 * from this thread would wait forever. */
extern void (*leap__test_protected_hook)(struct leap_region *r, void *addr, size_t len);
/* The absolute deadline leap_job_wait() waits until, timeout_ns from now, on the clock
 * its condition variable counts on (CLOCK_MONOTONIC). */
void leap__job_deadline(struct timespec *dl, int64_t timeout_ns);

#endif
