/*
 * util.h - pure helpers of libpageleap: no system calls, no locks, no knowledge of
 * regions or pools; each is unit-tested on its own (t_ivset, t_hist). Also the
 * library-wide macros. Not installed.
 */
#ifndef LEAP_UTIL_H
#define LEAP_UTIL_H

#include "pageleap.h"

#include <stddef.h>
#include <stdint.h>

/* Marks the library's public entry points; everything else is hidden. */
#define LEAP_API __attribute__((visibility("default")))
/* errors.c: record the cause of a refusal for leap_errormsg() (a static text) on the
 * calling thread, and return err, so that `return leap__why(-EOPNOTSUPP, "...")` reads
 * as one statement. */
int leap__why(int err, const char *msg);
/* Its texts for refusals that more than one file makes. */
extern const char leap__dax_why[], leap__thp_off_why[];

/* Bytes per page, as the library's page counts' unit. */
#define LEAP_PG ((uint64_t)LEAP_PAGE_SIZE)

/*
 * Accesses that the kernel orders and a thread sanitizer cannot see: the copy of a
 * write-protected extent, and the remap over it, race with the application's writers
 * only in TSan's eyes (the writers wait in the kernel until the extent is woken). In a
 * TSan build they are hidden from it: reported, they were noise at best, and the report
 * itself could deadlock (it takes TSan's locks while a writer that holds one waits in
 * the kernel for this very copy). Nothing in other builds.
 */
#if defined(__SANITIZE_THREAD__)
#define LEAP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LEAP_TSAN 1
#endif
#endif
#ifdef LEAP_TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
static inline void leap__kernel_ordered_begin(void)
{
	AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
	AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
}
static inline void leap__kernel_ordered_end(void)
{
	AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
	AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
}
#else
static inline void leap__kernel_ordered_begin(void)
{
}
static inline void leap__kernel_ordered_end(void)
{
}
#endif

/* ------------------------------------------------------------ hist.c */
/* A latency histogram: 4 buckets per power of two of nanoseconds (a bucket's lower bound is less than 20% below any value in it). */
#define LEAP_HIST_BUCKETS 256
struct leap__hist {
	uint64_t count, sum_ns, max_ns;
	uint32_t b[LEAP_HIST_BUCKETS];
};
/* Add a sample. A histogram whose count is 0 is empty, whatever its other fields hold. */
void leap__hist_add(struct leap__hist *h, uint64_t ns);
void leap__hist_merge(struct leap__hist *dst, const struct leap__hist *src);
/* The q-quantile (0..1) in ns: the lower bound of its bucket; 0 when empty. */
uint64_t leap__hist_quantile(const struct leap__hist *h, double q);

/* ------------------------------------------------------------ ivset.c */
/* A set of page numbers kept as sorted, disjoint, non-adjacent intervals [lo, hi). */
struct leap__iv {
	uint64_t lo, hi;
};
struct leap__ivset {
	struct leap__iv *v;
	size_t n, cap;
	uint64_t total; /* pages in the set */
};
int leap__ivset_add(struct leap__ivset *s, uint64_t lo, uint64_t hi);
int leap__ivset_remove(struct leap__ivset *s, uint64_t lo, uint64_t hi);
uint64_t leap__ivset_covered(const struct leap__ivset *s, uint64_t lo, uint64_t hi);
void leap__ivset_free(struct leap__ivset *s);
/* Call fn for each maximal interval of a \ b; stops early when fn returns non-zero. */
int leap__ivset_diff_each(const struct leap__ivset *a, const struct leap__ivset *b,
			  int (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg);
/* Call fn for each maximal interval of [lo, hi) \ s. */
int leap__ivset_gaps_each(const struct leap__ivset *s, uint64_t lo, uint64_t hi,
			  int (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg);

/* ------------------------------------------------------------ abi.c */
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
 * The options form of leap__struct_in(): opts (NULL for none, else starting with its
 * size field) read into dst. Returns what the library reads from then on: dst, or NULL
 * when opts is NULL or on error (*err: 0 or leap__struct_in()'s -errno).
 */
const void *leap__opts_in(void *dst, size_t dst_size, const void *opts, int *err);

/*
 * Copy this version's output struct src (src_size bytes) to the caller's dst (dst_size
 * bytes, its own size field): exactly min(dst_size, src_size) bytes, less the size field,
 * which keeps the caller's value. Bytes of dst past src_size are not touched.
 * pre: both structs start with a size_t size field.
 * Returns 0, or -EINVAL (dst not written) if dst_size cannot hold the size field.
 */
int leap__struct_out(void *dst, size_t dst_size, const void *src, size_t src_size);

#endif /* LEAP_UTIL_H */
