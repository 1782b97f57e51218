/*
 * hook.h - the library's test seam (src/core/job.c), for tests linked with the static
 * library: a function called on a job's thread before each extent. A test sets it to
 * hold a job at a known point (a gate) instead of judging by how far it got meanwhile.
 */
#ifndef LEAP_TEST_HOOK_H
#define LEAP_TEST_HOOK_H

#include "pageleap.h"

#include <stddef.h>

extern void (*leap__test_extent_hook)(struct leap_job *j, struct leap_region *r, size_t offset);

#endif
