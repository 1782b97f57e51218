/*
 * errors.c - the library's words for its -errno values, and its version string.
 *
 * One -errno can stand for several causes; leap_strerror()'s text names each of them,
 * and leap_errormsg() says which one applied to the calling thread's last refusal with a
 * specific cause (as libpmem2's pmem2_errormsg() does). State: one thread-local pointer
 * to a static text; MT-Safe.
 */
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

const char leap__dax_why[] =
	"userfaultfd cannot write-protect DAX mappings: regions on a DAX pool need an instance "
	"created with LEAP_CTX_NO_WRITE_PROTECT, and their moves LEAP_NO_WRITERS";
const char leap__thp_off_why[] =
	"shared-memory THP is disabled: echo advise > "
	"/sys/kernel/mm/transparent_hugepage/shmem_enabled (as root)";

static _Thread_local const char *last_why;

int leap__why(int err, const char *msg)
{
	last_why = msg;
	return err;
}

LEAP_API const char *leap_errormsg(void)
{
	return last_why ? last_why : "";
}

LEAP_API const char *leap_version(void)
{
#define LEAP_STR2(x) #x
#define LEAP_STR(x) LEAP_STR2(x)
	return LEAP_STR(LEAP_VERSION_MAJOR) "." LEAP_STR(LEAP_VERSION_MINOR) "." LEAP_STR(
		LEAP_VERSION_PATCH);
}

LEAP_API const char *leap_strerror(int err)
{
	/* INT_MIN has no negation: it is no errno anyway */
	switch (err == INT_MIN ? -1 : err < 0 ? -err : err) {
	case 0:
		return "success";
	case EINVAL:
		return "invalid argument (NULL handle, unknown flag, zero or unaligned address "
		       "or length)";
	case EFAULT:
		return "range is not inside the region";
	case ENODEV:
		return "no such NUMA node, or the node has no memory";
	case ENOMEM:
		return "out of memory: the target pool is at its cap or the node is full";
	case EBUSY:
		return "busy: pages are in use, or the range overlaps a job in flight";
	case EOPNOTSUPP:
		return "not supported: no userfaultfd write protection for this process (pass "
		       "LEAP_NO_WRITERS if nothing writes during the move), shared-memory THP "
		       "disabled (echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled), "
		       "or a pool file that is not on tmpfs, hugetlbfs or a DAX file system; "
		       "leap_errormsg() says which";
	case ENOSPC:
		return "no free huge pages on the node: reserve them as root with echo N > "
		       "/sys/devices/system/node/nodeX/hugepages/hugepages-2048kB/nr_hugepages "
		       "(or the region has no pool slot left)";
	case EEXIST:
		return "the pool file is not empty: pageleap only takes an empty or new file";
	case ECANCELED:
		return "the job was cancelled";
	case ETIMEDOUT:
		return "timed out waiting for the job";
	default: {
		/* a static text, as the header promises (strerror() may format unknown values
		 * into a buffer that the next call overwrites) */
		const char *d = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
		if (err != INT_MIN)
			d = strerrordesc_np(err < 0 ? -err : err);
#endif
		return d ? d : "unknown error";
	}
	}
}
