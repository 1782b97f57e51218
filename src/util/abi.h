/*
 * abi.h - the rule for caller-filled structs that grow (see abi.c). Not installed.
 */
#ifndef LEAP_UTIL_ABI_H
#define LEAP_UTIL_ABI_H

#include <stddef.h>

/* A caller's struct larger than this is -E2BIG without reading it: no struct of this
 * library comes near it, so such a size is garbage (an unset size field), not a newer
 * version. The kernel's clone3() and sched_setattr() cap theirs at a page the same way. */
#define LEAP_STRUCT_SIZE_MAX 4096u /* bytes */

/*
 * Copy the caller's input struct src (src_size bytes, its own size field) into dst
 * (dst_size bytes, this version's struct), as the kernel's copy_struct_from_user() does:
 * a shorter src is zero-extended (fields it lacks read as 0, their defaults); a longer
 * one is accepted only if every byte past dst_size is zero. Never reads src past
 * src_size. dst's size field then says dst_size: it is a whole struct of this version,
 * safe to hand on inside the library.
 * pre: both structs start with a size_t size field.
 * Returns 0; -EINVAL if src_size cannot hold the size field; -E2BIG if a byte past
 * dst_size is not zero, or src_size > LEAP_STRUCT_SIZE_MAX. On error dst is not written.
 */
int leap__struct_in(void *dst, size_t dst_size, const void *src, size_t src_size);

/*
 * Copy this version's output struct src (src_size bytes) to the caller's dst (dst_size
 * bytes, its own size field): exactly min(dst_size, src_size) bytes, less the size field,
 * which keeps the caller's value. Bytes of dst past src_size are not touched.
 * pre: both structs start with a size_t size field.
 * Returns 0, or -EINVAL (dst not written) if dst_size cannot hold the size field.
 */
int leap__struct_out(void *dst, size_t dst_size, const void *src, size_t src_size);

#endif
