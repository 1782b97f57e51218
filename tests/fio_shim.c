/*
 * fio_shim.c - an LD_PRELOAD shim that puts fio's I/O buffers in a pageleap region that
 * keeps migrating, and declares fio's device I/O to the library (leap_io_begin/end), so
 * the real, unmodified fio can check with --verify that no direct read is lost while its
 * buffers move (issue 19). Built as $(B)/tests/fio_shim.so; tests/fio.sh drives it.
 *
 * Environment:
 *   LEAP_SHIM_DECLARE    1 (default): declare device I/O, as a cooperating program would:
 *                        libaio reads (io_submit .. io_getevents) and io_uring registered
 *                        buffers (IORING_REGISTER_BUFFERS .. unregister or close, with
 *                        LEAP_IO_LONGTERM). 0: declare nothing (the direct-write-only
 *                        case, and the negative control).
 *   LEAP_SHIM_MIN_BYTES  the smallest mapping put in a region (default 1 MiB).
 *   LEAP_SHIM_SEED       seed of the mover's random ranges (default: from the clock); the
 *                        summary prints it so a run can be replayed.
 *   LEAP_SHIM_VERBOSE    1: one line per region, registration and unregistration.
 *
 * Which mapping is fio's buffer. fio 3.33 allocates it with mmap(NULL, size, PROT_READ |
 * PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) for both --iomem=mmap and
 * --iomem=mmapshared: MAP_SHARED is only used with a file (--iomem=mmapshared:FILE). Its
 * MAP_SHARED | MAP_ANONYMOUS mappings of 16 MiB are its smalloc pools (job state shared
 * with the parent), which hold no I/O buffer. So the shim takes exactly that private
 * anonymous read-write call of at least LEAP_SHIM_MIN_BYTES (fio's buffer is the job's
 * largest block size times its iodepth) and returns a region of the length rounded up
 * to 2 MiB on the first node with memory (node 0), zero-filled as anonymous memory is.
 * glibc's own mappings (malloc arenas, thread stacks) do not go through the PLT and
 * never reach the shim. The region's pages are shared memory rather than private: with
 * --thread (one process) nobody can tell the difference; without it each job process
 * makes its own region.
 *
 * The mover: a thread per region, started with it, moves random page-aligned sub-ranges
 * of 64 KiB .. 1 MiB with page_leap(): LEAP_RELOCATE within the node on a one-node
 * machine (fresh physical pages each time), else to the next node with memory in turn.
 * It runs until fio unmaps the buffer (munmap) or the process exits, and at exit the
 * shim prints one line on stderr:
 *   leap-shim: regions=R moves=M pages_moved=P skipped_busy=S waits=W declared=D
 *              errors=E first_error=ERRNO ...
 * (skipped_busy: pages moves left because they were declared LONGTERM; waits: times a
 * move waited for declared I/O to end; declared: leap_io_begin() calls; first_error: the
 * errno of the first library error, 0 if none.)
 * A region is not unmapped before its mover finished at least one move (or gave up with
 * an error), so "moves > 0" does not depend on how fast fio was.
 *
 * What is declared, and why:
 *   libaio: io_submit() declares the buffer of each read iocb (IOCB_CMD_PREAD, PREADV)
 *     that lies in a region before the kernel sees it, and ends the declarations of the
 *     iocbs it did not accept; io_getevents() ends the declaration of each completed
 *     iocb. Writes are not declared: a direct write sends the data the buffer held at
 *     submission even when its page moves meanwhile (see leap_io_begin() in pageleap.h),
 *     which the randwrite case and the direct-write-only case check.
 *   io_uring registered buffers (--fixedbufs): fio registers them with
 *     syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, iovecs, n) through
 *     libc, so syscall() is interposed: each iovec in a region is declared
 *     LEAP_IO_LONGTERM before the kernel pins it, and ended on
 *     IORING_UNREGISTER_BUFFERS or when the ring's fd is closed. Moves skip those pages.
 *   io_uring without registered buffers: NOT declared, and the shim cannot do it. The
 *     kernel pins a plain buffer when it takes the request from the submission queue, so
 *     a declaration would have to begin before the io_uring_enter() that submits it. fio
 *     3.33 makes that call with an inline syscall instruction (its __do_syscall6 on
 *     x86-64: objdump of /usr/bin/fio shows io_uring_enter as `mov $0x1aa,%eax; syscall`
 *     in fio's own code), not through libc, so nothing the dynamic linker can interpose
 *     runs between fio writing a submission and the kernel pinning its buffer. The
 *     completion side alone would be workable (a declaration that ends late only delays
 *     moves, and fio keeps no more requests in flight than the submission queue holds,
 *     half the completion ring, so completions could be read from the ring before they
 *     are overwritten); the
 *     submission side is not. Plain io_uring direct reads into a migrating region are
 *     therefore lost like undeclared libaio reads (fio.sh --long counts them); the shim
 *     says so on stderr when a ring set up through syscall() is closed without having
 *     registered buffers. A seccomp filter that traps io_uring_enter into a SIGSYS
 *     handler could see submissions; that is not attempted here.
 *   Other buffer registrations (IORING_REGISTER_BUFFERS2, _UPDATE, provided-buffer
 *     rings) are not tracked: the shim prints a warning if a program uses them.
 *
 * Not supported: fio's libaio userspace_reap (it reaps from the AIO ring without
 * io_getevents, so read declarations would never end and moves would wait on them until
 * the buffer is unmapped).
 */
#include "pageleap.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SHIM_MAX_REGIONS 64
#define SHIM_MAX_NODES 64
#define SHIM_PG ((size_t)LEAP_PAGE_SIZE)
#define SHIM_MIN_MOVE_PAGES (64u * 1024 / LEAP_PAGE_SIZE)
#define SHIM_MAX_MOVE_PAGES (1024u * 1024 / LEAP_PAGE_SIZE)

/* libaio's types as the kernel lays them out (<linux/aio_abi.h>): libaio's struct iocb
 * and struct io_event are the kernel's, and libaio-dev need not be installed. */
typedef struct shim_aio_ctx *io_context_t;

/* ---------------------------------------------------------------- real functions */

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static long (*real_syscall)(long, ...);
static int (*real_close)(int);
static int (*real_io_submit)(io_context_t, long, struct iocb **);
static int (*real_io_getevents)(io_context_t, long, long, struct io_event *,
				struct timespec *);

/* Looked up once, on first use: a constructor of a library loaded after the shim
 * (libnuma's) may call them before the shim's own constructor runs. */
static void *next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f) {
		fprintf(stderr, "leap-shim: dlsym(%s) failed\n", name);
		abort();
	}
	return f;
}

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void real_lookup(void)
{
	real_mmap = next("mmap");
	real_munmap = next("munmap");
	real_syscall = next("syscall");
	real_close = next("close");
	/* fio's libaio engine loads libaio; a program without it never calls these */
	real_io_submit = dlsym(RTLD_NEXT, "io_submit");
	real_io_getevents = dlsym(RTLD_NEXT, "io_getevents");
}
#define REAL(fn) (pthread_once(&real_once, real_lookup), real_##fn)

/* ---------------------------------------------------------------- state */

/* Set on threads that are inside the library on the shim's behalf (and on the movers):
 * the library's own mmap/munmap/syscall/close go through these interposers too, and must
 * pass straight through. */
static __thread int in_lib;
static atomic_int ready;     /* the constructor ran: configuration is read */
static int declare = 1;	     /* LEAP_SHIM_DECLARE */
static size_t min_bytes = 1u << 20;
static uint64_t seed;
static int verbose;

struct shim_region {
	struct leap_region *r;
	char *addr;
	size_t len;
	pthread_t mover;
	atomic_int stop;
	/* the mover's job in flight, for a cancel at teardown; and its move count, for
	 * the teardown rule (at least one move before the region goes) */
	pthread_mutex_t lock;
	pthread_cond_t moved;
	struct leap_job *job;
	uint64_t moves;
	int mover_done;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leap_ctx *ctx;
static int nodes[SHIM_MAX_NODES], nnodes;
static struct shim_region *regions[SHIM_MAX_REGIONS];

/* Totals for the summary line. */
static atomic_uint_fast64_t n_regions, n_moves, n_pages_moved, n_skipped, n_waits, n_declared,
	n_errors, n_rings_plain;
static atomic_int first_error;

static void note_error(int err, const char *what)
{
	atomic_fetch_add(&n_errors, 1);
	int zero = 0;
	if (atomic_compare_exchange_strong(&first_error, &zero, err))
		fprintf(stderr, "leap-shim: %s: %s\n", what, leap_strerror(err));
}

/* The region holding [addr, addr+len), clipped to it; NULL if none overlaps. */
static struct shim_region *region_of(const void *addr, size_t len, char **a, size_t *l)
{
	const char *p = addr;
	struct shim_region *found = NULL;
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < SHIM_MAX_REGIONS && !found; i++) {
		struct shim_region *s = regions[i];
		if (s && p < s->addr + s->len && p + len > s->addr) {
			char *lo = p > s->addr ? (char *)p : s->addr;
			char *hi = p + len < s->addr + s->len ? (char *)p + len : s->addr + s->len;
			*a = lo;
			*l = (size_t)(hi - lo);
			found = s;
		}
	}
	pthread_mutex_unlock(&table_lock);
	return found;
}

/* ---------------------------------------------------------------- the mover */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *mover_main(void *arg)
{
	struct shim_region *s = arg;
	in_lib = 1;
	uint64_t rng = seed ^ ((uintptr_t)s->addr >> 21) ^ 0x9e3779b97f4a7c15ull;
	size_t pages = s->len / SHIM_PG;
	unsigned flags = nnodes == 1 ? LEAP_RELOCATE : 0;
	for (unsigned k = 0; !atomic_load(&s->stop); k++) {
		size_t n = SHIM_MIN_MOVE_PAGES +
			   xorshift(&rng) % (SHIM_MAX_MOVE_PAGES - SHIM_MIN_MOVE_PAGES + 1);
		if (n > pages)
			n = pages;
		size_t first = xorshift(&rng) % (pages - n + 1);
		struct leap_job *job;
		/* the region starts on nodes[0]: the first move goes elsewhere */
		int node = nodes[(k + 1) % nnodes];
		int rc = page_leap(s->r, s->addr + first * SHIM_PG, n * SHIM_PG, node, flags, &job);
		if (rc < 0) {
			/* nothing started: an error that will not go away (no write protection
			 * for this user, say); stop moving rather than spin on it */
			note_error(rc, "page_leap");
			break;
		}
		pthread_mutex_lock(&s->lock);
		s->job = job;
		pthread_mutex_unlock(&s->lock);
		/* a teardown that came before the job was published could not cancel it */
		if (atomic_load(&s->stop))
			leap_job_cancel(job);
		int64_t res = leap_job_wait(job, -1);
		struct leap_progress p = {.size = sizeof p};
		leap_job_progress(job, &p);
		pthread_mutex_lock(&s->lock);
		s->job = NULL;
		pthread_mutex_unlock(&s->lock);
		leap_job_destroy(&job);
		atomic_fetch_add(&n_pages_moved, p.pages_moved);
		atomic_fetch_add(&n_skipped, p.io_skipped);
		atomic_fetch_add(&n_waits, p.io_waits);
		if (res == -ECANCELED)
			break;
		/* -EBUSY: pages registered LONGTERM stayed, the rest moved; a move all the same */
		if (res < 0 && res != -EBUSY)
			note_error((int)res, "page_leap job");
		atomic_fetch_add(&n_moves, 1);
		pthread_mutex_lock(&s->lock);
		s->moves++;
		pthread_cond_broadcast(&s->moved);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&s->lock);
	s->mover_done = 1;
	pthread_cond_broadcast(&s->moved);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Stop the mover: wait for its first move if asked (the teardown rule), then cancel the
 * move in hand and join. */
static void mover_stop(struct shim_region *s, int first_move)
{
	pthread_mutex_lock(&s->lock);
	while (first_move && s->moves == 0 && !s->mover_done)
		pthread_cond_wait(&s->moved, &s->lock);
	atomic_store(&s->stop, 1);
	if (s->job)
		leap_job_cancel(s->job);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->mover, NULL);
}

/* ---------------------------------------------------------------- regions */

static int ctx_init(void)
{
	if (ctx)
		return 0;
	int rc = leap_ctx_new(NULL, &ctx);
	if (rc < 0)
		return rc;
	const struct leap_topo *t = leap_ctx_topo(ctx);
	for (int n = 0; n < leap_topo_node_count(t) && nnodes < SHIM_MAX_NODES; n++) {
		struct leap_node_info ni = {.size = sizeof ni};
		if (leap_topo_node(t, n, &ni) == 0 && ni.online && ni.has_memory)
			nodes[nnodes++] = n;
	}
	return nnodes ? 0 : -ENODEV;
}

static void *region_map(size_t len)
{
	size_t rlen = (len + LEAP_HUGE_PAGE_SIZE - 1) & ~((size_t)LEAP_HUGE_PAGE_SIZE - 1);
	struct shim_region *s = calloc(1, sizeof *s);
	if (!s) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->moved, NULL);
	in_lib = 1;
	pthread_mutex_lock(&table_lock);
	int slot = -1;
	for (int i = 0; i < SHIM_MAX_REGIONS && slot < 0; i++)
		if (!regions[i])
			slot = i;
	int rc = slot < 0 ? -ENOSPC : ctx_init();
	if (rc == 0)
		rc = leap_region_new(ctx, rlen, nodes[0], &s->r);
	if (rc == 0) {
		s->addr = leap_region_addr(s->r);
		s->len = rlen;
		rc = -pthread_create(&s->mover, NULL, mover_main, s);
		if (rc < 0)
			leap_region_destroy(&s->r);
	}
	if (rc == 0)
		regions[slot] = s;
	pthread_mutex_unlock(&table_lock);
	in_lib = 0;
	if (rc < 0) {
		/* loud, not a silent fallback to ordinary memory: the test would then pass
		 * without testing anything */
		fprintf(stderr, "leap-shim: no region for a %zu-byte mapping: %s\n", len,
			leap_strerror(rc));
		free(s);
		errno = -rc;
		return MAP_FAILED;
	}
	atomic_fetch_add(&n_regions, 1);
	if (verbose)
		fprintf(stderr, "leap-shim: region %p + %zu for a %zu-byte mapping\n",
			(void *)s->addr, rlen, len);
	return s->addr;
}

static void decl_drop_region(const struct leap_region *r);

/* munmap of a region's start: stop its mover and destroy it. 1 if it was one. */
static int region_unmap(void *addr)
{
	struct shim_region *s = NULL;
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < SHIM_MAX_REGIONS && !s; i++)
		if (regions[i] && regions[i]->addr == addr) {
			s = regions[i];
			regions[i] = NULL;
		}
	pthread_mutex_unlock(&table_lock);
	if (!s)
		return 0;
	in_lib = 1;
	mover_stop(s, 1);
	/* fio unmaps its buffers before it closes the ring they are registered with: the
	 * destroy drops those declarations, and they must not be ended later on a region
	 * that no longer exists */
	decl_drop_region(s->r);
	leap_region_destroy(&s->r);
	in_lib = 0;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->moved);
	free(s);
	return 1;
}

static void *shim_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (atomic_load(&ready) && !in_lib && !addr && len >= min_bytes &&
	    prot == (PROT_READ | PROT_WRITE) && flags == (MAP_PRIVATE | MAP_ANONYMOUS) &&
	    fd == -1 && off == 0)
		return region_map(len);
	return REAL(mmap)(addr, len, prot, flags, fd, off);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return shim_mmap(addr, len, prot, flags, fd, off);
}

/* glibc exports the same function under both names; fio imports mmap64 */
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return shim_mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	if (atomic_load(&ready) && !in_lib && region_unmap(addr))
		return 0;
	return REAL(munmap)(addr, len);
}

/* ---------------------------------------------------------------- declarations */

/* One declared range: the declarations of one iocb (key: the iocb) or of one ring's
 * registered buffers (key: the ring's fd), each ended with the flags it began with. */
struct decl {
	struct decl *next;
	uintptr_t key;
	unsigned flags;
	struct leap_region *r;
	char *addr;
	size_t len;
};

static pthread_mutex_t decl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct decl *aio_decls[1024];
static struct decl *ring_decls;	/* few rings: one list */

static size_t aio_hash(uintptr_t key)
{
	return (key >> 6) % (sizeof aio_decls / sizeof aio_decls[0]);
}

/* Declare [addr, addr+len) where it lies in a region; push the declaration on *list. */
static void decl_begin(struct decl **list, uintptr_t key, const void *addr, size_t len,
		       unsigned flags)
{
	char *a;
	size_t l;
	struct shim_region *s = len ? region_of(addr, len, &a, &l) : NULL;
	if (!s)
		return;
	struct decl *d = malloc(sizeof *d);
	if (!d) {
		note_error(-ENOMEM, "declaration");
		return;
	}
	in_lib = 1;
	int rc = leap_io_begin(s->r, a, l, flags);
	in_lib = 0;
	if (rc < 0) {
		free(d);
		note_error(rc, "leap_io_begin");
		return;
	}
	atomic_fetch_add(&n_declared, 1);
	*d = (struct decl){.key = key, .flags = flags, .r = s->r, .addr = a, .len = l};
	pthread_mutex_lock(&decl_lock);
	d->next = *list;
	*list = d;
	pthread_mutex_unlock(&decl_lock);
}

/* End and drop every declaration of key on *list. */
static void decl_end(struct decl **list, uintptr_t key)
{
	struct decl *mine = NULL;
	pthread_mutex_lock(&decl_lock);
	for (struct decl **pp = list; *pp;) {
		struct decl *d = *pp;
		if (d->key == key) {
			*pp = d->next;
			d->next = mine;
			mine = d;
		} else {
			pp = &d->next;
		}
	}
	pthread_mutex_unlock(&decl_lock);
	while (mine) {
		struct decl *d = mine;
		mine = d->next;
		in_lib = 1;
		int rc = leap_io_end(d->r, d->addr, d->len, d->flags);
		in_lib = 0;
		if (rc < 0)
			note_error(rc, "leap_io_end");
		free(d);
	}
}

/* Forget every declaration on r (its destroy drops them in the library). */
static void decl_drop_region(const struct leap_region *r)
{
	size_t nlists = sizeof aio_decls / sizeof aio_decls[0];
	pthread_mutex_lock(&decl_lock);
	for (size_t i = 0; i <= nlists; i++) {
		struct decl **pp = i < nlists ? &aio_decls[i] : &ring_decls;
		while (*pp) {
			struct decl *d = *pp;
			if (d->r == r) {
				*pp = d->next;
				free(d);
			} else {
				pp = &d->next;
			}
		}
	}
	pthread_mutex_unlock(&decl_lock);
}

/* ---------------------------------------------------------------- libaio */

static void aio_begin(struct iocb *cb)
{
	uintptr_t key = (uintptr_t)cb;
	struct decl **list = &aio_decls[aio_hash(key)];
	if (cb->aio_lio_opcode == IOCB_CMD_PREAD) {
		decl_begin(list, key, (void *)(uintptr_t)cb->aio_buf, cb->aio_nbytes, 0);
	} else if (cb->aio_lio_opcode == IOCB_CMD_PREADV) {
		const struct iovec *iov = (const struct iovec *)(uintptr_t)cb->aio_buf;
		for (size_t i = 0; i < cb->aio_nbytes; i++)
			decl_begin(list, key, iov[i].iov_base, iov[i].iov_len, 0);
	}
}

static void aio_end(const struct iocb *cb)
{
	uintptr_t key = (uintptr_t)cb;
	decl_end(&aio_decls[aio_hash(key)], key);
}

int io_submit(io_context_t ctx_id, long nr, struct iocb **iocbs)
{
	if (!declare || in_lib)
		return REAL(io_submit)(ctx_id, nr, iocbs);
	/* before the kernel pins the pages: from here on no move detaches them */
	for (long i = 0; i < nr; i++)
		aio_begin(iocbs[i]);
	int rc = REAL(io_submit)(ctx_id, nr, iocbs);
	int err = errno;
	/* libaio returns the number accepted or -errno; the rest never reached the kernel */
	for (long i = rc < 0 ? 0 : rc; i < nr; i++)
		aio_end(iocbs[i]);
	errno = err;
	return rc;
}

int io_getevents(io_context_t ctx_id, long min_nr, long nr, struct io_event *events,
		 struct timespec *timeout)
{
	int rc = REAL(io_getevents)(ctx_id, min_nr, nr, events, timeout);
	if (!declare || in_lib || rc <= 0)
		return rc;
	int err = errno;
	for (int i = 0; i < rc; i++)
		aio_end((const struct iocb *)(uintptr_t)events[i].obj);
	errno = err;
	return rc;
}

/* ---------------------------------------------------------------- io_uring */

/* The rings set up through syscall(), and whether each registered buffers: a ring
 * closed without them did its direct I/O undeclared (the warning). */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring {
	int fd, registered;
} rings[256];
static atomic_int nrings;

static struct ring *ring_find(int fd)
{
	for (int i = 0; i < atomic_load(&nrings); i++)
		if (rings[i].fd == fd)
			return &rings[i];
	return NULL;
}

static long uring_register(long fd, long op, long arg, long nr, long a4, long a5)
{
	if (op == IORING_REGISTER_BUFFERS) {
		const struct iovec *iov = (const struct iovec *)arg;
		/* before the kernel pins them for the ring's life */
		for (long i = 0; i < nr; i++)
			decl_begin(&ring_decls, (uintptr_t)fd, iov[i].iov_base, iov[i].iov_len,
				   LEAP_IO_LONGTERM);
		long rc = REAL(syscall)(__NR_io_uring_register, fd, op, arg, nr, a4, a5);
		int err = errno;
		if (rc < 0) {
			decl_end(&ring_decls, (uintptr_t)fd);
		} else {
			pthread_mutex_lock(&ring_lock);
			struct ring *rg = ring_find((int)fd);
			if (rg)
				rg->registered = 1;
			pthread_mutex_unlock(&ring_lock);
			if (verbose)
				fprintf(stderr, "leap-shim: ring fd %ld: %ld buffers registered\n",
					fd, nr);
		}
		errno = err;
		return rc;
	}
	long rc = REAL(syscall)(__NR_io_uring_register, fd, op, arg, nr, a4, a5);
	int err = errno;
	if (op == IORING_UNREGISTER_BUFFERS && rc == 0) {
		decl_end(&ring_decls, (uintptr_t)fd);
		if (verbose)
			fprintf(stderr, "leap-shim: ring fd %ld: buffers unregistered\n", fd);
	} else if (op == IORING_REGISTER_BUFFERS2 || op == IORING_REGISTER_BUFFERS_UPDATE ||
		   op == IORING_REGISTER_PBUF_RING) {
		fprintf(stderr, "leap-shim: warning: io_uring_register op %ld is not tracked: "
				"its buffers are not declared\n", op);
	}
	errno = err;
	return rc;
}

long syscall(long nr, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!declare || in_lib)
		return REAL(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (nr == __NR_io_uring_register)
		return uring_register(a[0], a[1], a[2], a[3], a[4], a[5]);
	long rc = REAL(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (nr == __NR_io_uring_setup && rc >= 0) {
		int err = errno;
		pthread_mutex_lock(&ring_lock);
		int n = atomic_load(&nrings);
		if (n < (int)(sizeof rings / sizeof rings[0])) {
			rings[n] = (struct ring){.fd = (int)rc};
			atomic_store(&nrings, n + 1);
		}
		pthread_mutex_unlock(&ring_lock);
		errno = err;
	}
	return rc;
}

int close(int fd)
{
	if (!declare || in_lib || atomic_load(&nrings) == 0)
		return REAL(close)(fd);
	int rc = REAL(close)(fd);
	int err = errno;
	pthread_mutex_lock(&ring_lock);
	struct ring *rg = rc == 0 ? ring_find(fd) : NULL;
	struct ring gone = rg ? *rg : (struct ring){.fd = -1};
	if (rg) {
		int n = atomic_load(&nrings) - 1;
		*rg = rings[n];
		atomic_store(&nrings, n);
	}
	pthread_mutex_unlock(&ring_lock);
	if (gone.fd >= 0) {
		/* the kernel drops the ring's pins once the ring is gone; its requests are
		 * done or cancelled by then, so nothing more reaches the pages */
		decl_end(&ring_decls, (uintptr_t)fd);
		if (!gone.registered) {
			atomic_fetch_add(&n_rings_plain, 1);
			fprintf(stderr, "leap-shim: warning: io_uring ring fd %d had no registered "
					"buffers: its direct reads were NOT declared (see "
					"fio_shim.c)\n", fd);
		}
	}
	errno = err;
	return rc;
}

/* ---------------------------------------------------------------- init, summary */

__attribute__((constructor)) static void shim_init(void)
{
	const char *v = getenv("LEAP_SHIM_DECLARE");
	declare = v ? atoi(v) != 0 : 1;
	if ((v = getenv("LEAP_SHIM_MIN_BYTES")))
		min_bytes = strtoull(v, NULL, 0);
	if ((v = getenv("LEAP_SHIM_SEED"))) {
		seed = strtoull(v, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
	}
	if (!seed)
		seed = 1; /* xorshift's one fixed point */
	verbose = (v = getenv("LEAP_SHIM_VERBOSE")) && atoi(v);
	atomic_store(&ready, 1);
}

__attribute__((destructor)) static void shim_fini(void)
{
	if (!atomic_load(&ready))
		return;
	/* regions still mapped at exit: stop their movers so the counts are final. No
	 * waiting for a first move here: a program that exits with I/O in flight may leave
	 * declarations that a move would wait for forever. */
	for (int i = 0; i < SHIM_MAX_REGIONS; i++) {
		pthread_mutex_lock(&table_lock);
		struct shim_region *s = regions[i];
		pthread_mutex_unlock(&table_lock);
		if (s) {
			in_lib = 1;
			mover_stop(s, 0);
			in_lib = 0;
		}
	}
	fprintf(stderr,
		"leap-shim: regions=%" PRIuFAST64 " moves=%" PRIuFAST64
		" pages_moved=%" PRIuFAST64 " skipped_busy=%" PRIuFAST64 " waits=%" PRIuFAST64
		" declared=%" PRIuFAST64 " errors=%" PRIuFAST64 " first_error=%d"
		" undeclared_rings=%" PRIuFAST64 " declare=%d nodes=%d seed=%" PRIu64 "\n",
		atomic_load(&n_regions), atomic_load(&n_moves), atomic_load(&n_pages_moved),
		atomic_load(&n_skipped), atomic_load(&n_waits), atomic_load(&n_declared),
		atomic_load(&n_errors), -atomic_load(&first_error), atomic_load(&n_rings_plain),
		declare, nnodes, seed);
}
