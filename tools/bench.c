/*
 * bench.c - `pageleap bench`: every migration method on the same memory, in one run.
 *
 * Each row is one method on one page size, region size and number of writer threads.
 * A row runs `warmup` unmeasured moves and then `reps` measured ones; the table shows
 * the median with min and max, because this kind of machine is noisy (a first write to
 * memory after a pause can be several times slower than the next).
 *
 * One measured move = the range goes from node `from` to node `to` (on a one-node
 * machine both are the same node: page_leap and copy + mremap then relocate the range to
 * fresh physical pages, and the kernel's methods have nothing to do, so they report
 * "needs 2 nodes" instead of a number). Writers, when asked for, run through the move:
 * each increments its own word in random pages and keeps a private count, so after the
 * move every lost write is counted exactly, and every write slower than BENCH_STALL_NS is
 * timed as a stall. CPU time is the process's, less the writer threads' own.
 *
 * Not thread safe: one benchmark per process (it changes numa_balancing for the
 * autonuma method and restores it).
 */
#include "bench.h"
#include "cli.h"
#include "hist.h"
#include "pageleap.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static const char bench_usage[] =
	"usage: pageleap bench [--quick | --full] [OPTIONS]\n"
	"  --quick              64 MiB, 0 and 2 writers, 3 repetitions (the default; < 1 min)\n"
	"  --full               64 MiB .. 2 GiB (up to 40% of a node's free memory), 0/1/2\n"
	"                       writers, 5 repetitions after 2 warm-up moves\n"
	"                       Under emulation (QEMU TCG, or LEAP_EMULATED=1) --full is scaled\n"
	"                       down to finish in the guests: 3 repetitions after 1 warm-up,\n"
	"                       a row stops after 8 s of measured moves, no move_pages_b16 or\n"
	"                       _b256, and writer rows only for page_leap, page_leap_64k,\n"
	"                       page_leap_2m, move_pages and copy_mremap; every row left\n"
	"                       out says \"" SCALED_REASON "\".\n"
	"                       --reps, --warmup, --methods and --writers given on the\n"
	"                       command line are taken as given.\n"
	"  --from N --to M      source and target node (default: the first node with CPUs and\n"
	"                       the nearest other memory node; on one node both are node 0)\n"
	"  --sizes A,B,...      region sizes in MiB         --writers A,B,...  writer threads\n"
	"  --pages 4,2048       page sizes in KiB (2048: transparent huge pages)\n"
	"  --reps N --warmup N  measured and unmeasured moves per row (default 3, --full 5;\n"
	"                       warm-up 2; emulated --full: 3 and 1)\n"
	"  --methods A,B,...    only these methods (see the table legend for names)\n"
	"  --budget-ms MS       batched move_pages: stop after MS (partial migration)\n"
	"  --autonuma-timeout S how long to wait for automatic NUMA balancing (default 10)\n"
	"  --json | --csv       machine-readable output instead of the table\n"
	"  --plot DIR           also write DIR/bench.csv and PNG/SVG plots (gnuplot)\n"
	"  --save-json FILE     also write the JSON to FILE   --save-csv FILE  the CSV\n"
	"  --force              replace output files that exist (else refused, before the run)\n"
	"  --no-progress        no progress bar (there is none when stderr is not a terminal)\n"
	"  --row-log            one line per row on stderr as it ends, with its wall time\n";

/* ------------------------------------------------------------------ small helpers */

static double clock_s(clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------ memory */

/* sys_anon_map(), populated with a pattern (bind: on node; else where the caller runs). */
static char *anon_on(size_t len, int node, bool huge, bool bind)
{
	char *p = sys_anon_map(len, huge, bind ? node : -1);
	if (p)
		memset(p, 0x5a, len);
	return p;
}

/* Bytes of [p, p+len) that the kernel backs with transparent huge pages (smaps). */
static uint64_t thp_bytes(const char *p, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	char line[256];
	bool in = false;
	uint64_t total = 0;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		unsigned long kb;
		/* a mapping's header starts with its hex address, its fields with a Name: */
		bool header = (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
		if (header && sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2)
			in = lo < (uintptr_t)p + len && hi > (uintptr_t)p;
		else if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			total += (uint64_t)kb << 10;
	}
	fclose(f);
	return total;
}

/* ------------------------------------------------------------------ writers */

/* Writer t owns the 8-byte word at offset 64 * (t + 1) of every 4 KiB page: it increments
 * the word of a random page and counts that in seen[page]. */
struct writer {
	pthread_t th;
	struct writers *all;
	unsigned id;
	uint64_t *seen; /* per page: the value the word must hold */
	struct hist stalls;
	uint64_t writes;
};
struct writers {
	char *base;
	size_t npages;
	unsigned n;
	atomic_bool stop;
	atomic_uint running;
	struct writer w[BENCH_MAX_WRITERS];
};

static volatile uint64_t *slot(struct writers *ws, unsigned t, size_t page)
{
	return (volatile uint64_t *)(ws->base + page * PG4K + 64 * (t + 1));
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct writers *ws = w->all;
	uint64_t x = 0x9e3779b97f4a7c15ull * (w->id + 1);
	atomic_fetch_add(&ws->running, 1);
	while (!atomic_load_explicit(&ws->stop, memory_order_relaxed)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t page = (size_t)(x % ws->npages);
		uint64_t t0 = sys_now_ns();
		(*slot(ws, w->id, page))++;
		uint64_t dt = sys_now_ns() - t0;
		w->seen[page]++;
		w->writes++;
		if (dt > BENCH_STALL_NS)
			hist_add(&w->stalls, dt);
	}
	return NULL;
}

/* Start n writers on [base, base + len) (they keep their counts between starts). */
static int writers_start(struct writers *ws, char *base, size_t len, unsigned n)
{
	ws->base = base;
	ws->npages = len / PG4K;
	ws->n = 0; /* threads running: n once they all are */
	atomic_store(&ws->stop, false);
	atomic_store(&ws->running, 0);
	for (unsigned t = 0; t < n; t++) {
		struct writer *w = &ws->w[t];
		w->all = ws;
		w->id = t;
		w->writes = 0;
		w->stalls = (struct hist){ 0 };
		if (!(w->seen = calloc(ws->npages, sizeof(uint64_t)))) {
			for (unsigned u = 0; u < t; u++)
				free(ws->w[u].seen), ws->w[u].seen = NULL;
			return -ENOMEM;
		}
		for (size_t p = 0; p < ws->npages; p++)
			w->seen[p] = *slot(ws, t, p);
	}
	for (unsigned t = 0; t < n; t++) {
		int rc = pthread_create(&ws->w[t].th, NULL, writer_main, &ws->w[t]);
		if (rc) {
			atomic_store(&ws->stop, true);
			for (unsigned u = 0; u < t; u++)
				pthread_join(ws->w[u].th, NULL);
			for (unsigned u = 0; u < n; u++)
				free(ws->w[u].seen), ws->w[u].seen = NULL;
			return -rc;
		}
	}
	ws->n = n;
	while (atomic_load(&ws->running) < n)
		sched_yield();
	return 0;
}

/* CPU seconds the writer threads have used so far. */
static double writers_cpu(struct writers *ws)
{
	double s = 0;
	for (unsigned t = 0; t < ws->n; t++) {
		clockid_t id;
		if (pthread_getcpuclockid(ws->w[t].th, &id) == 0)
			s += clock_s(id);
	}
	return s;
}

/* Stop the writers; return the writes lost (or invented) since writers_start(). */
static uint64_t writers_stop(struct writers *ws, struct hist *stalls)
{
	atomic_store(&ws->stop, true);
	uint64_t lost = 0;
	for (unsigned t = 0; t < ws->n; t++) {
		struct writer *w = &ws->w[t];
		pthread_join(w->th, NULL);
		hist_merge(stalls, &w->stalls);
		for (size_t p = 0; p < ws->npages; p++) {
			uint64_t have = *slot(ws, t, p);
			lost += have > w->seen[p] ? have - w->seen[p] : w->seen[p] - have;
		}
		free(w->seen);
		w->seen = NULL;
	}
	ws->n = 0;
	return lost;
}

/* ------------------------------------------------------------------ one move */

/* What one measured move gave. */
struct bench_sample {
	double s, cpu_s;
	uint64_t moved_bytes, left, lost;
	struct leap_progress pr; /* page_leap's own account of the move */
	char err[128]; /* non-empty: the move could not be measured */
};

/* Times the move between start() and end(): wall clock, and CPU time without writers. */
struct stopwatch {
	uint64_t t0;
	double cpu0, wcpu0;
};
static void sw_start(struct stopwatch *w, struct writers *ws)
{
	w->cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	w->wcpu0 = writers_cpu(ws);
	w->t0 = sys_now_ns();
}
static void sw_end(struct stopwatch *w, struct writers *ws, struct bench_sample *s)
{
	s->s = (double)(sys_now_ns() - w->t0) * 1e-9;
	s->cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID) - w->cpu0 - (writers_cpu(ws) - w->wcpu0);
	if (s->cpu_s < 0)
		s->cpu_s = 0;
}

/* The run's state shared by the methods. */
struct bench {
	const struct bench_config *c;
	struct bench_machine mc;
	struct leap_ctx *ctx;
	struct writers ws;
	bool multi; /* from != to */
};

/* One row's memory: what setup made, the moves use and teardown undoes. */
struct pl_row {
	struct leap_region *r;
	unsigned flags;
	struct leap_job_options o;
};
struct bench_row {
	size_t len, pgsz;	/* the range; its page size */
	struct pl_row pl;	/* page_leap: the region, moved to and fro */
	char *bufs[2];		/* memcpy: the buffers on from and to */
	struct sigaction thp_before[3];
	bool thp_switched;	/* page_leap: shared-memory THP allowed for the row */
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Run the writers (if any) around fn, which times the move itself with sw. */
#define WITH_WRITERS(b, base, len, nw, stalls, smp, body)                              \
	do {                                                                           \
		int wrc_ = (nw) ? writers_start(&(b)->ws, (base), (len), (nw)) : 0;    \
		if (wrc_) {                                                            \
			snprintf((smp)->err, sizeof((smp)->err), "cannot start writers: %s", \
				 strerror(-wrc_));                                     \
			break;                                                         \
		}                                                                      \
		if (nw)                                                                \
			sleep_ms(2); /* writers at full speed before the move starts */ \
		body;                                                                  \
		if (nw)                                                                \
			(smp)->lost = writers_stop(&(b)->ws, (stalls));                \
	} while (0)

static void set_err(struct bench_sample *s, const char *fmt, const char *arg)
{
	snprintf(s->err, sizeof(s->err), fmt, arg);
}

/* --- page_leap: the region is made once per row, moved from -> to and back */

static int pl_move(struct pl_row *row, int node, struct leap_progress *pr)
{
	struct leap_job *job;
	char *p = leap_region_addr(row->r);
	int rc = page_leap_opts(row->r, p, leap_region_length(row->r), node, row->flags, &row->o,
				&job);
	if (rc)
		return rc;
	int64_t moved = leap_job_wait(job, -1);
	if (pr) {
		*pr = (struct leap_progress){ .size = sizeof(*pr) };
		leap_job_progress(job, pr);
	}
	leap_job_destroy(&job);
	return moved < 0 ? (int)moved : 0;
}

static void pl_sample(struct bench *b, const struct bench_method *m, struct bench_row *brow,
		      unsigned nw, struct bench_sample *s, struct hist *stalls)
{
	const struct bench_config *c = b->c;
	struct pl_row *row = &brow->pl;
	char *p = leap_region_addr(row->r);
	size_t len = leap_region_length(row->r);
	struct leap_progress pr = { .size = sizeof(pr) };
	int rc = 0;
	if (m->cold) {
		struct leap_pool *pool;
		struct leap_region_stats rs = { .size = sizeof(rs) };
		if (leap_region_stats(row->r, &rs) == 0 &&
		    leap_pool_get_kind(b->ctx, c->to, rs.pages, &pool) == 0)
			leap_pool_trim(pool);
	}
	struct stopwatch sw;
	WITH_WRITERS(b, p, len, nw, stalls, s, {
		sw_start(&sw, &b->ws);
		rc = pl_move(row, c->to, &pr);
		sw_end(&sw, &b->ws, s);
	});
	if (s->err[0])
		return;
	if (rc) {
		snprintf(s->err, sizeof(s->err), "page_leap failed: %s", leap_strerror(rc));
		return;
	}
	s->pr = pr;
	s->moved_bytes = pr.pages_moved * PG4K;
	s->left = pr.pages_total - pr.pages_moved;
	if (b->multi) {
		uint64_t k = sys_pages_not_on(p, len, PG4K, c->to, 1);
		s->left = k > s->left ? k : s->left;
	}
	/* pages left in the row's page size (a huge page is left if any part of it is) */
	struct leap_region_stats rs = { .size = sizeof(rs) };
	if (s->left && leap_region_stats(row->r, &rs) == 0 && rs.pages != LEAP_PAGES_SMALL)
		s->left = (s->left + PG2M / PG4K - 1) / (PG2M / PG4K);
	if (b->multi) {
		/* back home, unmeasured, so every repetition moves the same way; the writers
		 * have stopped, so the fastest way will do */
		struct pl_row back = { .r = row->r, .flags = LEAP_NO_WRITERS,
				       .o = { .size = sizeof(back.o) } };
		if ((rc = pl_move(&back, c->from, NULL)) != 0)
			snprintf(s->err, sizeof(s->err), "page_leap back failed: %s", leap_strerror(rc));
	}
}

/* --- the kernel's methods and copy + mremap: fresh memory on `from` for every move */

/* The naive way: new memory on the target, copy, swap the mapping in. It races with
 * the writers on purpose (what they write after a page was copied is lost, and counted):
 * tests/tsan.supp names this function. */
__attribute__((noinline)) static int naive_copy_remap(char *p, size_t len, bool huge, int to)
{
	char *fresh = sys_anon_map(len, huge, to);
	if (!fresh)
		return -ENOMEM;
	memcpy(fresh, p, len);
	if (mremap(fresh, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED) {
		int rc = -errno;
		munmap(fresh, len);
		return rc;
	}
	return 0;
}

static int mp_move(struct bench *b, const struct bench_method *m, char *p, size_t len, bool huge)
{
	int err = 0;
	sys_move_pages(p, len, huge ? PG2M : PG4K, b->c->to, m->batch, b->c->budget_ms, NULL, &err);
	return err;
}

static int mbind_move(struct bench *b, const struct bench_method *m, char *p, size_t len,
		      bool huge)
{
	(void)m, (void)huge;
	unsigned long mask[16] = { 0 };
	mask[b->c->to / 64] |= 1ul << (b->c->to % 64);
	return mbind(p, len, MPOL_BIND, mask, 1024, MPOL_MF_MOVE) ? -errno : 0;
}

static int copy_move(struct bench *b, const struct bench_method *m, char *p, size_t len, bool huge)
{
	(void)m;
	return naive_copy_remap(p, len, huge, b->c->to);
}

/* The kernel's methods and copy + mremap: fresh memory on `from`, moved by m->move. */
static void kernel_sample(struct bench *b, const struct bench_method *m, struct bench_row *row,
			  unsigned nw, struct bench_sample *s, struct hist *stalls)
{
	const struct bench_config *c = b->c;
	size_t len = row->len, pgsz = row->pgsz;
	bool huge = pgsz == PG2M;
	char *p = anon_on(len, c->from, huge, true);
	if (!p) {
		snprintf(s->err, sizeof(s->err), "cannot allocate %zu MiB on node %d", len >> 20,
			 c->from);
		return;
	}
	if (huge && thp_bytes(p, len) < len / 2) {
		snprintf(s->err, sizeof(s->err), "no transparent huge pages (THP disabled or none free)");
		munmap(p, len);
		return;
	}
	struct stopwatch sw;
	int err = 0;
	WITH_WRITERS(b, p, len, nw, stalls, s, {
		sw_start(&sw, &b->ws);
		err = m->move(b, m, p, len, huge);
		sw_end(&sw, &b->ws, s);
	});
	if (err)
		snprintf(s->err, sizeof(s->err), "%s failed: %s", m->name, strerror(-err));
	s->left = b->multi ? sys_pages_not_on(p, len, pgsz, c->to, 1) : 0;
	s->moved_bytes = (len / pgsz - s->left) * pgsz;
	munmap(p, len);
}

/* --- memcpy between two pre-faulted buffers, one on each node */

static void memcpy_sample(struct bench *b, const struct bench_method *m, struct bench_row *row,
			  unsigned nw, struct bench_sample *s, struct hist *stalls)
{
	(void)m, (void)nw, (void)stalls; /* no writers: memcpy is the limit, not a move */
	size_t len = row->len;
	char **bufs = row->bufs;
	bool huge = row->pgsz == PG2M;
	if (!bufs[0])
		bufs[0] = anon_on(len, b->c->from, huge, true);
	if (!bufs[1])
		bufs[1] = anon_on(len, b->c->to, huge, true);
	if (!bufs[0] || !bufs[1]) {
		set_err(s, "%s", "cannot allocate the buffers");
		return;
	}
	struct stopwatch sw;
	sw_start(&sw, &b->ws);
	memcpy(bufs[1], bufs[0], len);
	sw_end(&sw, &b->ws, s);
	s->moved_bytes = len;
}

static void memcpy_teardown(struct bench *b, struct bench_row *row, struct bench_result *r)
{
	(void)b, (void)r;
	for (int i = 0; i < 2; i++)
		if (row->bufs[i])
			munmap(row->bufs[i], row->len);
}

/* --- automatic NUMA balancing: how long until a thread on `to` has its data local */

struct toucher {
	char *p;
	size_t len;
	int node;
	atomic_bool stop;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	numa_run_on_node(t->node);
	while (!atomic_load_explicit(&t->stop, memory_order_relaxed))
		for (size_t o = 0; o < t->len && !atomic_load_explicit(&t->stop, memory_order_relaxed);
		     o += PG4K)
			((volatile char *)t->p)[o]++;
	return NULL;
}


/* --- shared-memory THP for page_leap's 2 MiB rows: switched to "advise" for the row if
 * it is off and we may (root), and put back after, also on a signal, like balancing */
static const char thp_path[] = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
static char thp_old[16]; /* the word to write back, "" when nothing to restore */

static void thp_restore_and_die(int sig)
{
	if (thp_old[0]) {
		int fd = open(thp_path, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, thp_old, strlen(thp_old)) < 0) {
				/* nothing more can be done here */
			}
			close(fd);
		}
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int thp_sigs[] = { SIGINT, SIGTERM, SIGHUP };

/* Allow shared-memory THP; true if it was switched (restore with thp_restore()). */
static bool thp_allow(struct sigaction before[3])
{
	char line[128] = "";
	FILE *f = fopen(thp_path, "r");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	char *a = strchr(line, '['), *e = a ? strchr(a, ']') : NULL;
	if (!a || !e || e - a - 1 >= (long)sizeof(thp_old))
		return false;
	memcpy(thp_old, a + 1, (size_t)(e - a - 1));
	thp_old[e - a - 1] = 0;
	struct sigaction sa = { .sa_handler = thp_restore_and_die };
	for (int i = 0; i < 3; i++)
		sigaction(thp_sigs[i], &sa, &before[i]);
	f = fopen(thp_path, "w");
	bool ok = f && fputs("advise", f) >= 0;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok) {
		thp_old[0] = 0;
		for (int i = 0; i < 3; i++)
			sigaction(thp_sigs[i], &before[i], NULL);
	}
	return ok;
}

static void thp_restore(struct sigaction before[3])
{
	FILE *f = fopen(thp_path, "w");
	if (f) {
		fputs(thp_old, f);
		fclose(f);
	}
	thp_old[0] = 0;
	for (int i = 0; i < 3; i++)
		sigaction(thp_sigs[i], &before[i], NULL);
}

static void autonuma_sample(struct bench *b, const struct bench_method *m, struct bench_row *row,
			    unsigned nw, struct bench_sample *s, struct hist *stalls)
{
	(void)m, (void)nw, (void)stalls; /* no writers: its touching thread is the workload */
	const struct bench_config *c = b->c;
	size_t len = row->len, pgsz = row->pgsz;
	bool huge = pgsz == PG2M;
	const char *why = NULL;
	int old = sys_balancing_on(&why);
	if (old < 0) {
		set_err(s, "%s", why);
		return;
	}
	/* placed by first touch from the source node, no policy: balancing may move it */
	numa_run_on_node(c->from);
	char *p = anon_on(len, c->from, huge, false);
	numa_run_on_node(-1);
	if (!p) {
		set_err(s, "%s", "cannot allocate the range");
		goto restore;
	}
	uint64_t total = len / pgsz, off = sys_pages_not_on(p, len, pgsz, c->to, 1);
	struct toucher t = { .p = p, .len = len, .node = c->to };
	pthread_t th;
	struct stopwatch sw;
	sw_start(&sw, &b->ws);
	if (pthread_create(&th, NULL, toucher_main, &t)) {
		snprintf(s->err, sizeof(s->err), "cannot start the touching thread");
	} else {
		uint64_t t0 = sys_now_ns();
		/* local enough = 99% of the pages on the target */
		while (off > total / 100 && (double)(sys_now_ns() - t0) * 1e-9 < c->autonuma_timeout_s) {
			sleep_ms(50);
			off = sys_pages_not_on(p, len, pgsz, c->to, 1);
		}
		sw_end(&sw, &b->ws, s);
		atomic_store(&t.stop, true);
		pthread_join(th, NULL);
	}
	s->left = off;
	s->moved_bytes = (total - off) * pgsz;
	munmap(p, len);
restore:
	sys_balancing_restore(old);
}

/* ------------------------------------------------------------------ rows */

static void set_status(struct bench_result *r, const char *fmt, const char *arg)
{
	snprintf(r->status, sizeof(r->status), fmt, arg);
}

/* page_leap's row: a region on `from`, filled; 2 MiB pages make it a THP region, like
 * the kernel methods' THP-backed memory. */
static int pl_setup(struct bench *b, const struct bench_method *m, struct bench_row *row,
		    struct bench_result *r)
{
	size_t len = row->len;
	bool huge = row->pgsz == PG2M;
	struct leap_place all = { 0, len, b->c->from };
	struct leap_region_options ro = { .size = sizeof(ro),
					  .pages = huge ? LEAP_PAGES_THP : LEAP_PAGES_SMALL };
	int rc = leap_region_new_ex(b->ctx, len, &all, 1, &ro, &row->pl.r);
	if (rc == -EOPNOTSUPP && huge && (row->thp_switched = thp_allow(row->thp_before)))
		rc = leap_region_new_ex(b->ctx, len, &all, 1, &ro, &row->pl.r);
	if (rc) {
		if (row->thp_switched)
			thp_restore(row->thp_before);
		set_status(r, "cannot create the region: %s",
			   rc == -EOPNOTSUPP && huge ? "shared-memory THP is off (needs root to allow it)"
						     : leap_strerror(rc));
		return -1;
	}
	memset(leap_region_addr(row->pl.r), 0x5a, len);
	row->pl.flags = b->multi ? 0 : LEAP_RELOCATE;
	row->pl.o = (struct leap_job_options){ .size = sizeof(row->pl.o), .granularity_min = m->gran,
					       .granularity_max = m->gran };
	return 0;
}

/* The region's metadata per 4 KiB page into r, then the region and the pools' pages go. */
static void pl_teardown(struct bench *b, struct bench_row *row, struct bench_result *r)
{
	struct leap_region_stats st = { .size = sizeof(st) };
	if (leap_region_stats(row->pl.r, &st) == 0)
		r->meta_per_page = (double)st.metadata_bytes / (double)(row->len / PG4K);
	leap_region_destroy(&row->pl.r);
	/* the pools keep the pages for reuse: give them back, the next row needs room */
	for (int node = 0; node <= numa_max_node(); node++) {
		struct leap_pool *pool;
		if (numa_node_size64(node, NULL) > 0 &&
		    leap_pool_get_kind(b->ctx, node,
				       row->pgsz == PG2M ? LEAP_PAGES_THP : LEAP_PAGES_SMALL,
				       &pool) == 0)
			leap_pool_trim(pool);
	}
	if (row->thp_switched)
		thp_restore(row->thp_before);
}

/* ------------------------------------------------------------------ the methods */

const char *const bench_cap_names[BENCH_NCAPS] = { "page_leap", "keeps_writes",
	"baseline_move_pages", "baseline_memcpy", "one_rep", "target_cpus", "balancing",
	"may_time_out" };

#define PAGE_LEAP .caps = BENCH_PAGE_LEAP | BENCH_KEEPS_WRITES, .setup = pl_setup, \
		  .sample = pl_sample, .teardown = pl_teardown
#define KERNEL(fn) .sample = kernel_sample, .move = fn
#define SCALED_ALL (SCALED_METHOD | SCALED_WRITERS)

/* The order is the table's, the JSON's and the plots'. scaled: the emulated --full keeps
 * writer rows only where they tell something new (adaptive and coarse page_leap, the
 * whole-range move_pages, copy_mremap's lost writes) and drops the batch sizes between
 * the ones kept; fixed 4 KiB steps under writers are the slowest rows of all (see the
 * page_leap_4k rows with writers in `pageleap bench --row-log`). */
const struct bench_method bench_methods[] = {
	{ .name = "page_leap", .what = "page_leap(), adaptive granularity, warm pool",
	  .quick = true, PAGE_LEAP },
	{ .name = "page_leap_cold", .what = "page_leap(), adaptive, target pool emptied first",
	  .cold = true, .scaled = SCALED_WRITERS, .quick = true, PAGE_LEAP },
	{ .name = "page_leap_4k", .what = "page_leap(), fixed 4 KiB steps", .gran = 4u << 10,
	  .scaled = SCALED_WRITERS, .quick = true, PAGE_LEAP },
	{ .name = "page_leap_64k", .what = "page_leap(), fixed 64 KiB steps", .gran = 64u << 10,
	  .quick = true, PAGE_LEAP },
	{ .name = "page_leap_2m", .what = "page_leap(), fixed 2 MiB steps", .gran = 2u << 20,
	  .quick = true, PAGE_LEAP },
	{ .name = "move_pages", .what = "move_pages(), the whole range in one call",
	  .needs_nodes = 2, .caps = BENCH_KEEPS_WRITES | BENCH_BASE_MOVE_PAGES, .quick = true,
	  KERNEL(mp_move) },
	{ .name = "move_pages_b1", .what = "move_pages(), 1 page per call", .batch = 1,
	  .needs_nodes = 2, .caps = BENCH_KEEPS_WRITES, .scaled = SCALED_WRITERS, .quick = true,
	  KERNEL(mp_move) },
	{ .name = "move_pages_b16", .what = "move_pages(), 16 pages per call", .batch = 16,
	  .needs_nodes = 2, .caps = BENCH_KEEPS_WRITES, .scaled = SCALED_ALL, KERNEL(mp_move) },
	{ .name = "move_pages_b64", .what = "move_pages(), 64 pages per call", .batch = 64,
	  .needs_nodes = 2, .caps = BENCH_KEEPS_WRITES, .scaled = SCALED_WRITERS, .quick = true,
	  KERNEL(mp_move) },
	{ .name = "move_pages_b256", .what = "move_pages(), 256 pages per call", .batch = 256,
	  .needs_nodes = 2, .caps = BENCH_KEEPS_WRITES, .scaled = SCALED_ALL, KERNEL(mp_move) },
	{ .name = "move_pages_b512", .what = "move_pages(), 512 pages per call", .batch = 512,
	  .needs_nodes = 2, .caps = BENCH_KEEPS_WRITES, .scaled = SCALED_WRITERS, .quick = true,
	  KERNEL(mp_move) },
	{ .name = "mbind", .what = "mbind(MPOL_BIND, MPOL_MF_MOVE)", .needs_nodes = 2,
	  .caps = BENCH_KEEPS_WRITES, .scaled = SCALED_WRITERS, .quick = true, KERNEL(mbind_move) },
	{ .name = "copy_mremap", .what = "copy to new memory + mremap(FIXED): unsafe under writers",
	  .quick = true, KERNEL(copy_move) },
	{ .name = "autonuma", .what = "numa_balancing=1, a thread on the target touches the data",
	  .needs_nodes = 2,
	  .caps = BENCH_ONE_REP | BENCH_TARGET_CPUS | BENCH_BALANCING | BENCH_MAY_TIME_OUT,
	  .no_writers = "n/a: its touching thread is the workload", .scaled = SCALED_WRITERS,
	  .quick = true, .sample = autonuma_sample },
	{ .name = "memcpy", .what = "memcpy between pre-faulted buffers: the limit",
	  .caps = BENCH_BASE_MEMCPY, .no_writers = "n/a: no writers", .scaled = SCALED_WRITERS,
	  .quick = true, .sample = memcpy_sample, .teardown = memcpy_teardown },
};
const size_t bench_nmethods = sizeof(bench_methods) / sizeof(bench_methods[0]);

#undef PAGE_LEAP
#undef KERNEL
#undef SCALED_ALL

/* ------------------------------------------------------------------ rows */


/* Why a method has no figures on this row, or NULL if it can run. */
static const char *cannot_run(struct bench *b, const struct bench_method *m, unsigned page_kib,
			      unsigned nw)
{
	if (page_kib != 4 && m->gran && m->gran < PG2M)
		return "n/a: huge pages move whole (steps of 2 MiB at least)";
	if (m->needs_nodes > 1 && !b->multi)
		return "needs 2 nodes";
	if (nw && m->no_writers)
		return m->no_writers;
	if ((m->caps & BENCH_TARGET_CPUS) && numa_node_size64(b->c->to, NULL) > 0) {
		struct bitmask *cpus = numa_allocate_cpumask();
		int none = numa_node_to_cpus(b->c->to, cpus) || numa_bitmask_weight(cpus) == 0;
		numa_free_cpumask(cpus);
		if (none)
			return "needs CPUs on the target node";
	}
	return NULL;
}

/* Is the row part of the run? Writers run at one size only, and only with methods that
 * can run at all (a method that cannot shows its reason once, in its no-writer row; so
 * does a method the emulated full run leaves out). */
static bool planned(struct bench *b, const struct bench_method *m, unsigned page_kib,
		    unsigned size_mib, unsigned nw)
{
	if (!b->c->method_on[m - bench_methods])
		return false;
	if (nw == 0)
		return true;
	if (b->c->scaled_out[m - bench_methods] & SCALED_METHOD)
		return false;
	return size_mib == b->c->writers_size_mib && !cannot_run(b, m, page_kib, 0) &&
	       !m->no_writers;
}

/* Why the emulated full run leaves this row out, or NULL. A row that cannot run at all
 * keeps that reason (run_row gives it): it says more than "skipped". */
static const char *scaled_out(struct bench *b, const struct bench_method *m, unsigned page_kib,
			      unsigned nw)
{
	unsigned out = b->c->scaled_out[m - bench_methods];
	if (!out || cannot_run(b, m, page_kib, nw))
		return NULL;
	if ((out & SCALED_METHOD) || (nw && (out & SCALED_WRITERS)))
		return SCALED_REASON;
	return NULL;
}

static void run_row(struct bench *b, const struct bench_method *m, unsigned page_kib,
		    unsigned size_mib, unsigned nw, struct bench_result *r)
{
	const struct bench_config *c = b->c;
	size_t len = (size_t)size_mib << 20;
	size_t pgsz = page_kib == 2048 ? PG2M : PG4K;
	*r = (struct bench_result){ .m = m, .page_kib = page_kib, .size_mib = size_mib,
				    .writers = nw, .vs_move_pages = NAN, .vs_memcpy = NAN,
				    .meta_per_page = NAN, .pages = len / pgsz };
	const char *why = cannot_run(b, m, page_kib, nw);
	if (why) {
		set_status(r, "%s", why);
		return;
	}

	struct bench_row row = { .len = len, .pgsz = pgsz };
	if (m->setup && m->setup(b, m, &row, r))
		return;
	/* automatic balancing takes seconds per move: one repetition, no warm-up */
	unsigned warm = m->caps & BENCH_ONE_REP ? 0 : c->warmup;
	unsigned reps = m->caps & BENCH_ONE_REP ? 1 : c->reps;
	double gbps[64], secs[64], cpu[64];
	struct hist stalls = { 0 };
	int n = 0;
	/* a row stops after row_budget_s of measured moves (at least one): the slowest
	 * methods under emulation would otherwise take many minutes each */
	double spent = 0;
	for (unsigned i = 0; i < warm + reps && (n == 0 || spent < c->row_budget_s); i++) {
		struct bench_sample s = { 0 };
		struct hist *h = i < warm ? &(struct hist){ 0 } : &stalls;
		m->sample(b, m, &row, nw, &s, h);
		if (s.err[0]) {
			set_status(r, "%s", s.err);
			break;
		}
		if (i < warm)
			continue;
		r->lost_writes += s.lost;
		if (m->caps & BENCH_PAGE_LEAP) {
			r->extents = s.pr.extents;
			r->gran_min_kib = s.pr.granularity_min_seen >> 10;
			r->gran_max_kib = s.pr.granularity_max_seen >> 10;
			r->gran_last_kib = s.pr.granularity >> 10;
		}
		r->pages_left = s.left > r->pages_left ? s.left : r->pages_left;
		spent += s.s;
		secs[n] = s.s;
		cpu[n] = s.cpu_s;
		gbps[n++] = s.s > 0 ? (double)s.moved_bytes / s.s / 1e9 : 0;
	}
	if (m->teardown)
		m->teardown(b, &row, r);
	if (r->status[0])
		return;
	strcpy(r->status, "ok");
	r->reps = n;
	r->gbps_med = median(gbps, n);
	r->gbps_min = gbps[0];
	r->gbps_max = gbps[n - 1];
	r->seconds = median(secs, n);
	r->cpu_s = median(cpu, n);
	r->pages_per_s = r->gbps_med * 1e9 / (double)pgsz;
	r->stall = (struct bench_stall){
		.count = stalls.count,
		.p50_us = hist_quantile_us(&stalls, 0.5),
		.p90_us = hist_quantile_us(&stalls, 0.9),
		.p99_us = hist_quantile_us(&stalls, 0.99),
		.p999_us = hist_quantile_us(&stalls, 0.999),
		.max_us = (double)stalls.max_ns * 1e-3,
	};
	if (r->stall.max_us < r->stall.p999_us)
		r->stall.max_us = r->stall.p999_us;
}

/* ------------------------------------------------------------------ options */

static int parse_list(const char *s, unsigned *out, unsigned max, unsigned lo, unsigned hi)
{
	unsigned n = 0;
	char *dup = strdup(s), *save = NULL;
	if (!dup)
		return -1;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);
		if (*end || end == tok || v < lo || v > hi || n == max) {
			free(dup);
			return -1;
		}
		out[n++] = (unsigned)v;
	}
	free(dup);
	return n ? (int)n : -1;
}

static int pick_nodes(struct bench_config *c, int *from_set, int *to_set)
{
	int max = numa_max_node();
	if (*from_set < 0) {
		for (int n = 0; n <= max; n++) {
			struct bitmask *cpus = numa_allocate_cpumask();
			bool has = numa_node_to_cpus(n, cpus) == 0 && numa_bitmask_weight(cpus) > 0;
			numa_free_cpumask(cpus);
			if (has && numa_node_size64(n, NULL) > 0) {
				c->from = n;
				break;
			}
		}
	} else {
		c->from = *from_set;
	}
	if (*to_set < 0) {
		c->to = c->from;
		int best = 1 << 30;
		for (int n = 0; n <= max; n++)
			if (n != c->from && numa_node_size64(n, NULL) > 0 &&
			    numa_distance(c->from, n) < best) {
				best = numa_distance(c->from, n);
				c->to = n;
			}
	} else {
		c->to = *to_set;
	}
	if (c->from < 0 || c->from > max || numa_node_size64(c->from, NULL) <= 0)
		return -1;
	if (c->to < 0 || c->to > max || numa_node_size64(c->to, NULL) <= 0)
		return -2;
	return 0;
}

static int parse_args(int argc, char **argv, struct bench_config *c)
{
	bool full = false;
	int from = -1, to = -1, reps = -1, warmup = -1;
	const char *sizes = NULL, *writers = NULL, *pages = NULL, *methods = NULL;
	char *end;
	*c = (struct bench_config){ .quick = true, .progress = isatty(2) };
	c->autonuma_timeout_s = 10;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG                                                                       \
	do {                                                                           \
		if (!v)                                                                \
			return cli_usage(bench_usage, "bench: %s needs a value", a);   \
		i++;                                                                   \
	} while (0)
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(bench_usage, stdout);
			return -1;
		} else if (!strcmp(a, "--quick")) {
			full = false;
		} else if (!strcmp(a, "--full")) {
			full = true;
		} else if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--csv")) {
			c->csv = true;
		} else if (!strcmp(a, "--no-progress")) {
			c->progress = false;
		} else if (!strcmp(a, "--row-log")) {
			c->row_log = true;
		} else if (!strcmp(a, "--force")) {
			c->force = true;
		} else if (!strcmp(a, "--from") || !strcmp(a, "--to")) {
			NEED_ARG;
			long n = strtol(v, &end, 10);
			if (*end || end == v || n < 0 || n > 4095)
				return cli_usage(bench_usage, "bench: %s wants a node number", a);
			*(a[2] == 'f' ? &from : &to) = (int)n;
		} else if (!strcmp(a, "--sizes")) {
			NEED_ARG;
			sizes = v;
		} else if (!strcmp(a, "--writers")) {
			NEED_ARG;
			writers = v;
		} else if (!strcmp(a, "--pages")) {
			NEED_ARG;
			pages = v;
		} else if (!strcmp(a, "--methods")) {
			NEED_ARG;
			methods = v;
		} else if (!strcmp(a, "--reps") || !strcmp(a, "--warmup")) {
			NEED_ARG;
			long n = strtol(v, &end, 10);
			if (*end || end == v || n < (a[2] == 'r') || n > 32)
				return cli_usage(bench_usage, "bench: %s wants a number (up to 32)", a);
			*(a[2] == 'r' ? &reps : &warmup) = (int)n;
		} else if (!strcmp(a, "--budget-ms") || !strcmp(a, "--autonuma-timeout")) {
			NEED_ARG;
			double d = strtod(v, &end);
			if (*end || end == v || !(d > 0) || d > 3600e3)
				return cli_usage(bench_usage, "bench: %s wants a positive number", a);
			*(a[2] == 'b' ? &c->budget_ms : &c->autonuma_timeout_s) = d;
		} else if (!strcmp(a, "--plot")) {
			NEED_ARG;
			c->plot_dir = v;
		} else if (!strcmp(a, "--save-json") || !strcmp(a, "--save-csv")) {
			NEED_ARG;
			*(a[7] == 'j' ? &c->save_json : &c->save_csv) = v;
		} else {
			return cli_usage(bench_usage, "bench: unknown option '%s'", a);
		}
#undef NEED_ARG
	}
	if (c->json && c->csv)
		return cli_usage(bench_usage, "bench: %s", "--json and --csv exclude each other");
	c->quick = !full;
	/* The full run under QEMU's software emulation does not finish in the 4-node guest
	 * (`make bench-full` with --row-log shows the time each row takes): scale it down.
	 * Fewer moves per row, a shorter row, and the rows that add least left out (and said
	 * so in the output): the batch sizes between the ones kept, and writers with the
	 * methods whose writer rows only repeat their no-writer story (the kernel's batched
	 * and mbind paths, the cold pool): bench_methods[].scaled. What the command line
	 * names is taken as given. */
	c->scaled = full && sys_emulated();
	c->reps = reps >= 0 ? (unsigned)reps : c->scaled ? 3 : full ? 5 : 3;
	/* two: the first move after a single warm-up is still slower than the rest (compare
	 * gbps min and max of a row run with --warmup 1) */
	c->warmup = warmup >= 0 ? (unsigned)warmup : c->scaled ? 1 : 2;
	c->max_move_s = full && !c->scaled ? 8 : 4;
	c->row_budget_s = c->scaled ? 8 : 4 * c->max_move_s;
	for (size_t k = 0; c->scaled && k < bench_nmethods; k++) {
		unsigned out = bench_methods[k].scaled;
		c->scaled_out[k] = (methods ? 0 : out & SCALED_METHOD) | (writers ? 0 : out & SCALED_WRITERS);
	}
	static const unsigned full_sizes[] = { 64, 256, 1024, 2048 };
	if (sizes) {
		int n = parse_list(sizes, c->sizes_mib, BENCH_MAX_SIZES, 1, 1u << 20);
		if (n < 0)
			return cli_usage(bench_usage, "bench: --sizes wants MiB values, not '%s'", sizes);
		c->nsizes = (unsigned)n;
	} else if (full) {
		memcpy(c->sizes_mib, full_sizes, sizeof(full_sizes));
		c->nsizes = 4;
	} else {
		c->sizes_mib[0] = 64;
		c->nsizes = 1;
	}
	if (writers) {
		int n = parse_list(writers, c->writers, BENCH_MAX_LIST, 0, BENCH_MAX_WRITERS);
		if (n < 0)
			return cli_usage(bench_usage, "bench: --writers wants 0..16 per entry, not '%s'",
					 writers);
		c->nwriters = (unsigned)n;
	} else {
		unsigned q[] = { 0, 2 }, f[] = { 0, 1, 2 };
		memcpy(c->writers, full ? f : q, full ? sizeof(f) : sizeof(q));
		c->nwriters = full ? 3 : 2;
	}
	if (pages) {
		int n = parse_list(pages, c->page_kib, 2, 4, 2048);
		for (int i = 0; i < n; i++)
			if (c->page_kib[i] != 4 && c->page_kib[i] != 2048)
				n = -1;
		if (n < 0)
			return cli_usage(bench_usage, "bench: --pages wants 4 and/or 2048, not '%s'", pages);
		c->npage = (unsigned)n;
	} else {
		c->page_kib[0] = 4, c->page_kib[1] = 2048;
		c->npage = 2;
	}
	/* writers run at the smallest size (the one the writer plot compares) */
	c->writers_size_mib = c->sizes_mib[0];
	for (unsigned i = 1; i < c->nsizes; i++)
		if (c->sizes_mib[i] < c->writers_size_mib)
			c->writers_size_mib = c->sizes_mib[i];
	if (methods) {
		char *dup = strdup(methods), *save = NULL;
		for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			size_t k = 0;
			while (k < bench_nmethods && strcmp(bench_methods[k].name, tok))
				k++;
			if (k == bench_nmethods) {
				int rc = cli_usage(bench_usage, "bench: unknown method '%s'", tok);
				free(dup);
				return rc;
			}
			c->method_on[k] = true;
		}
		free(dup);
	} else {
		for (size_t k = 0; k < bench_nmethods; k++)
			c->method_on[k] = full || bench_methods[k].quick;
	}
	int rc = pick_nodes(c, &from, &to);
	if (rc) {
		fprintf(stderr, "pageleap: bench: node %d does not exist or has no memory\n",
			rc == -1 ? c->from : c->to);
		return 2;
	}
	return 0;
}

/* ------------------------------------------------------------------ the run */

static void progress(const struct bench_config *c, size_t done, size_t total, const char *what)
{
	if (!c->progress)
		return;
	int w = 30, k = total ? (int)(done * (size_t)w / total) : w;
	fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-40.40s", k, "##############################", w - k,
		"", done, total, what);
	if (done == total)
		fprintf(stderr, "\r%*s\r", w + 60, "");
	fflush(stderr);
}

static void machine_info(struct bench_machine *mc)
{
	sys_kernel_name(mc->kernel, sizeof(mc->kernel));
	for (int n = 0; n <= numa_max_node(); n++) {
		if (numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)n))
			mc->nodes++;
		if (numa_node_size64(n, NULL) > 0)
			mc->memory_nodes++;
	}
	mc->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	mc->emulated = sys_emulated();
}

/* Free memory on node in MiB, now. */
static unsigned node_free_mib(int node)
{
	long long fr = 0;
	numa_node_size64(node, &fr);
	return (unsigned)(fr >> 20);
}

/* Write the JSON (print != NULL) or the CSV to path; 0, or 1 after saying why not. */
static int save(const char *path,
		void (*print)(FILE *, const struct bench_config *, const struct bench_machine *,
			      const struct bench_result *, size_t),
		const struct bench_config *c, const struct bench_machine *mc,
		const struct bench_result *res, size_t n)
{
	FILE *f = sys_create(path, c->force);
	if (f) {
		if (print)
			print(f, c, mc, res, n);
		else
			bench_print_csv(f, mc, res, n);
		if (fclose(f) == 0)
			return 0;
	}
	sys_say_create("bench", path, errno);
	return 1;
}

int cmd_bench(int argc, char **argv)
{
	struct bench b = { 0 };
	struct bench_config c;
	int rc = parse_args(argc, argv, &c);
	if (rc)
		return rc < 0 ? 0 : rc; /* -1: --help printed */
	b.c = &c;
	b.multi = c.from != c.to;
	/* a plot directory that cannot be made fails now, not after the run */
	if (c.plot_dir && mkdir(c.plot_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "pageleap: bench: cannot create %s: %s\n", c.plot_dir, strerror(errno));
		return 1;
	}
	/* and an output file that exists is refused now, not after the run */
	char plot_csv[4096] = "", plot_gp[4096] = "";
	if (c.plot_dir) {
		snprintf(plot_csv, sizeof(plot_csv), "%s/bench.csv", c.plot_dir);
		snprintf(plot_gp, sizeof(plot_gp), "%s/bench.gp", c.plot_dir);
	}
	const char *outs[] = { c.save_json, c.save_csv, plot_csv, plot_gp };
	for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++)
		if (outs[k] && outs[k][0] && (rc = sys_may_create(outs[k], c.force))) {
			sys_say_create("bench", outs[k], -rc);
			return 1;
		}
	machine_info(&b.mc);
	if ((rc = leap_ctx_new(NULL, &b.ctx)) != 0) {
		fprintf(stderr, "pageleap: bench: cannot start the library: %s\n", leap_strerror(rc));
		return 1;
	}
	size_t cap = (size_t)c.nsizes * c.npage * bench_nmethods * c.nwriters;
	struct bench_result *res = calloc(cap, sizeof(*res));
	if (!res) {
		leap_ctx_destroy(&b.ctx);
		return 1;
	}
	/* the plan: every size, page size, method; writers only at the writers' size */
	size_t total = 0, n = 0;
	for (unsigned si = 0; si < c.nsizes; si++)
		for (unsigned pi = 0; pi < c.npage; pi++)
			for (size_t k = 0; k < bench_nmethods; k++)
				for (unsigned wi = 0; wi < c.nwriters; wi++)
					total += planned(&b, &bench_methods[k], c.page_kib[pi],
							 c.sizes_mib[si], c.writers[wi]);
	/* per method: seconds per move at the last size it ran, to skip what would crawl */
	double last_s[64][2] = { { 0 } };
	unsigned last_mib[64][2] = { { 0 } };
	for (unsigned si = 0; si < c.nsizes; si++) {
		unsigned mib = c.sizes_mib[si];
		/* a method needs the range and its copy at once (rows free what they took);
		 * half a size more leaves the system room */
		unsigned room = node_free_mib(c.from) < node_free_mib(c.to) ? node_free_mib(c.from)
									     : node_free_mib(c.to);
		for (unsigned pi = 0; pi < c.npage; pi++)
			for (size_t k = 0; k < bench_nmethods; k++)
				for (unsigned wi = 0; wi < c.nwriters; wi++) {
					const struct bench_method *m = &bench_methods[k];
					unsigned nw = c.writers[wi];
					if (!planned(&b, m, c.page_kib[pi], mib, nw))
						continue;
					struct bench_result *r = &res[n++];
					char what[96];
					snprintf(what, sizeof(what), "%s %u KiB pages, %u MiB, %u writers",
						 m->name, c.page_kib[pi], mib, nw);
					progress(&c, n - 1, total, what);
					uint64_t t0 = sys_now_ns();
					/* move_pages and memcpy are what the ratios compare with: a
					 * slow baseline still runs (the row budget bounds it) */
					bool baseline = m->caps & (BENCH_BASE_MOVE_PAGES |
								   BENCH_BASE_MEMCPY);
					double guess = last_mib[k][pi] && !baseline
							       ? last_s[k][pi] * mib / last_mib[k][pi]
							       : 0;
					/* the most basic reason first: a size that does not fit would not
					 * fit on hardware of this size either */
					bool fits = (uint64_t)mib * 5 / 2 <= room;
					const char *out = scaled_out(&b, m, c.page_kib[pi], nw);
					if (!fits || out || guess > c.max_move_s) {
						*r = (struct bench_result){ .m = m, .page_kib = c.page_kib[pi],
							.size_mib = mib, .writers = nw };
						if (!fits)
							snprintf(r->status, sizeof(r->status),
								 "skipped: %u MiB free on a node, needs 2.5x the size",
								 room);
						else if (out)
							set_status(r, "%s", out);
						else
							snprintf(r->status, sizeof(r->status),
								 "skipped: ~%.0f s per move (%.1f s at %u MiB)",
								 guess, last_s[k][pi], last_mib[k][pi]);
					} else {
						run_row(&b, m, c.page_kib[pi], mib, nw, r);
						if (!strcmp(r->status, "ok") && nw == 0 && mib != last_mib[k][pi]) {
							last_s[k][pi] = r->seconds;
							last_mib[k][pi] = mib;
						}
					}
					/* where the time goes, also when stderr is a log (the guests) */
					if (c.row_log)
						fprintf(stderr, "bench: row %zu/%zu: %s: %s (%.1f s)\n", n, total,
							what, r->status, (double)(sys_now_ns() - t0) * 1e-9);
				}
	}
	progress(&c, total, total, "");
	leap_ctx_destroy(&b.ctx);
	bench_finish(res, n);
	if (c.json)
		bench_print_json(stdout, &c, &b.mc, res, n);
	else if (c.csv)
		bench_print_csv(stdout, &b.mc, res, n);
	else
		bench_print_table(stdout, &c, &b.mc, res, n);
	rc = 0;
	if (c.save_json && save(c.save_json, bench_print_json, &c, &b.mc, res, n))
		rc = 1;
	if (c.save_csv && save(c.save_csv, NULL, &c, &b.mc, res, n))
		rc = 1;
	if (c.plot_dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/bench.csv", c.plot_dir);
		FILE *f = sys_create(path, c.force);
		if (!f) {
			sys_say_create("bench", path, errno);
			rc = 1;
		} else {
			bench_print_csv(f, &b.mc, res, n);
			fclose(f);
			char title[320];
			snprintf(title, sizeof(title), "%s, %d node(s)%s", b.mc.kernel, b.mc.memory_nodes,
				 b.mc.emulated ? ", emulated (not hardware timings)" : "");
			int prc = bench_plot(path, c.plot_dir, title, c.force);
			if (prc) {
				fprintf(stderr, "pageleap: bench: plots not made: %s%s\n", strerror(-prc),
					prc == -EEXIST ? " (bench.gp exists; --force replaces it)" : "");
				rc = 1;
			}
		}
	}
	free(res);
	return rc;
}
