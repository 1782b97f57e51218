/*
 * abi.c - caller-filled structs that grow: options in, stats and progress out.
 *
 * Every such struct starts with a size_t size that the caller sets to sizeof the struct
 * as its header had it. A binary built against an older header passes a smaller size, a
 * newer one a larger size; both must work, so every public call that takes such a struct
 * goes through these two functions and then works on a local, whole copy (the kernel's
 * copy_struct_from_user() does the same for clone3(), openat2() and sched_setattr()):
 *
 *   in,  size < sizeof(size_t)          -EINVAL (not even the size field)
 *   in,  size <= sizeof                 accepted; missing fields are 0 (their defaults)
 *   in,  size >  sizeof                 accepted if the unknown tail is all zero (a newer
 *                                       caller that did not ask for anything new), else
 *                                       -E2BIG: it asked for something this version lacks
 *   in,  size >  LEAP_STRUCT_SIZE_MAX   -E2BIG, the tail not read
 *   out, size < sizeof(size_t)          -EINVAL
 *   out, any other size                 min(size, sizeof) bytes written; the caller's size
 *                                       field and the bytes past sizeof are left alone
 *
 * Pure functions of their arguments: no state, any thread.
 */
#include "util/util.h"

#include <errno.h>
#include <string.h>

int leap__struct_in(void *dst, size_t dst_size, const void *src, size_t src_size)
{
	if (src_size < sizeof(size_t))
		return -EINVAL;
	if (src_size > LEAP_STRUCT_SIZE_MAX)
		return -E2BIG;
	const unsigned char *s = src;
	for (size_t i = dst_size; i < src_size; i++)
		if (s[i])
			return -E2BIG;
	size_t n = src_size < dst_size ? src_size : dst_size;
	memcpy(dst, src, n);
	memset((unsigned char *)dst + n, 0, dst_size - n);
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}

const void *leap__opts_in(void *dst, size_t dst_size, const void *opts, int *err)
{
	*err = opts ? leap__struct_in(dst, dst_size, opts, *(const size_t *)opts) : 0;
	return opts && !*err ? dst : NULL;
}

int leap__struct_out(void *dst, size_t dst_size, const void *src, size_t src_size)
{
	if (dst_size < sizeof(size_t))
		return -EINVAL;
	size_t n = dst_size < src_size ? dst_size : src_size;
	memcpy((unsigned char *)dst + sizeof(size_t), (const unsigned char *)src + sizeof(size_t),
	       n - sizeof(size_t));
	return 0;
}
