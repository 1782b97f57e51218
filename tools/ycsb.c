/*
 * ycsb.c - `pageleap ycsb`: YCSB on a main-memory B+-tree while its pages migrate.
 *
 * The scenario (move_pages2's, arXiv 2503.17685): the key space is split into one
 * partition per node with CPUs, each partition its own B+-tree in its own memory, served
 * by worker threads pinned to that node. The data starts on the wrong node (partition p
 * on the next node with CPUs; on a one-node machine on its own node). After the warm-up
 * every partition migrates to its threads' node with the method under test, while the
 * workers go on; the run continues `after` seconds past the end of the migration. The
 * monitor (the main thread) samples the workers' operation counts every slice (100 ms)
 * and the migration's progress, and records when it ends.
 *
 * Memory: the page_leap, none and all-local methods put each tree in a pageleap region;
 * move_pages and AutoNUMA in anonymous memory (what their users have: move_pages() on a
 * region's shared pages would fight the library's pools). A tree's nodes never move in
 * its memory, so migration happens underneath the running tree.
 *
 * Correctness, checked after every method: the tree's invariants (bt_check), then every
 * key's value against the value last written to it: each update and insert records its
 * value in a shadow array while the leaf is still locked (bt_hook), so the shadow holds
 * exactly the tree's last write; a key never written must still hold its loaded value.
 * Reads of loaded keys must find them; scans must come back ascending.
 *
 * Not thread safe: one run per process (AutoNUMA changes numa_balancing and restores it).
 */
#include "btree.h"
#include "cli.h"
#include "hist.h"
#include "keygen.h"
#include "pageleap.h"
#include "sys.h"
#include "ycsb.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: pageleap ycsb [--workload a|b|c|e] [--dist zipf|uniform] [--method LIST]\n"
	"                     [--keys N] [--threads N] [--warmup S] [--after S]\n"
	"                     [--max-migration S] [--json] [--plot DIR] [--save-json FILE]\n"
	"\n"
	"A main-memory B+-tree (8-byte keys and values) serves YCSB while its pages migrate.\n"
	"One partition of the keys per node with CPUs, served by --threads workers pinned\n"
	"there; the data starts on the next node (on one node: its own node, and page_leap\n"
	"relocates it). After --warmup seconds each partition migrates to its threads' node\n"
	"with each method in turn; the run goes on --after seconds past the migration's end.\n"
	"Prints throughput before, during and after the migration (100 ms slices), ratios\n"
	"against move_pages and against no migration, latency p50/p99, pages moved and the\n"
	"time to finish; then checks the tree's invariants and every key's last value.\n"
	"\n"
	"  --workload W       a: 50% read, 50% update   b: 95% read, 5% update\n"
	"                     c: 100% read              e: 95% scans (1-100 keys), 5% insert\n"
	"                     (default a)\n"
	"  --dist D           zipf: YCSB's scrambled zipfian, constant 0.99 (default)\n"
	"                     uniform\n"
	"  --method LIST      comma-separated, or all (default):\n"
	"                     none all_local move_pages move_pages_b256 page_leap\n"
	"                     page_leap_64k autonuma\n"
	"  --keys N           keys over all partitions (K, M suffixes; default: sized to the\n"
	"                     smallest node's free memory, at most 32M)\n"
	"  --threads N        workers per partition (default: the node's CPUs)\n"
	"  --warmup S         seconds before the migration starts (default 2)\n"
	"  --after S          seconds after it ends (default 2)\n"
	"  --max-migration S  give up a migration after S seconds (default 60)\n"
	"  --json             JSON on stdout instead of the table\n"
	"  --plot DIR         timeline plot (throughput vs time, one line per method) and its\n"
	"                     data into DIR (gnuplot)\n"
	"  --save-json FILE   also write the JSON to FILE\n"
	"  --force            replace output files that exist (else refused, before the run)\n"
	"  --seed N           random seed (default 1)\n"
	"  --no-progress      no progress line on a terminal\n";

#define SLICE_MAX 100000u

struct part {
	int node, from;		/* the threads' node, where the data starts */
	struct leap_region *region; /* NULL: anonymous memory */
	char *mem;
	size_t cap;
	struct btree t;
	uint64_t loaded;
	_Atomic uint64_t next_keynum; /* E: keynums handed to inserts */
	uint64_t keycap;	/* shadow slots: loaded keys plus room for inserts */
	uint64_t *shadow;	/* per keynum: last value written, 0 = the loaded one */
	size_t load_end;	/* bytes of mem the bulk load used; the rest is room for inserts,
				   placed on the threads' node from the start */
	size_t mig_len;		/* bytes migrated from mem: the loaded part */
	struct leap_job *job;
	pthread_t mig;
	bool mig_started;
	_Atomic uint64_t moved;
	_Atomic bool mig_done;
	_Atomic uint64_t mig_end_ns;
	int mig_err;
	unsigned batch;		/* move_pages: pages per call, 0 = all */
	uint64_t sampled_off, sampled;	/* AutoNUMA: sampled pages not on node / asked */
};

struct worker {
	pthread_t th;
	struct run *run;
	struct part *p;
	unsigned id;
	uint64_t rng, seq;
	_Alignas(64) _Atomic uint64_t ops;
	uint64_t missing, bad_scans, inserts, refused;
	struct hist h[PH_N];
};

struct run {
	const struct ycsb_config *c;
	const struct ycsb_method *m;
	struct leap_ctx *ctx;
	struct part parts[YCSB_MAX_NODES];
	unsigned nparts;
	struct worker *w;
	unsigned nw;
	struct kg_zipf zipf;
	_Atomic int phase;
	_Atomic bool stop;
	_Atomic unsigned ready;
	uint64_t t0_ns;
	int nb_old;		/* AutoNUMA: numa_balancing before the run, -1: not changed */
};

static double secs(uint64_t ns)
{
	return (double)ns * 1e-9;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ------------------------------------------------------------------ the workload */

static uint64_t loaded_val(uint64_t key)
{
	return key ^ 0x5bd1e9955bd1e995ull;
}

struct hook_arg {
	struct part *p;
	uint64_t keynum;
};

/* under the leaf's lock: the shadow gets the tree's writes in the tree's order */
static void record(void *arg, uint64_t key, uint64_t val)
{
	struct hook_arg *h = arg;
	(void)key;
	h->p->shadow[h->keynum] = val;
}

static uint64_t choose(struct worker *w, uint64_t n)
{
	return w->run->c->zipf ? kg_scrambled_zipf(&w->run->zipf, &w->rng, n) : kg_uniform(&w->rng, n);
}

static void one_op(struct worker *w)
{
	struct part *p = w->p;
	char wl = w->run->c->workload;
	double r = kg_rand01(&w->rng);
	if (wl == 'e') {
		uint64_t n = atomic_load_explicit(&p->next_keynum, memory_order_relaxed);
		if (r < 0.95) {
			uint64_t keys[100];
			size_t len = 1 + kg_uniform(&w->rng, 100);
			size_t got = bt_scan(&p->t, kg_key(choose(w, n)), len, keys, NULL);
			for (size_t i = 1; i < got; i++)
				if (keys[i] <= keys[i - 1]) {
					w->bad_scans++;
					break;
				}
			return;
		}
		uint64_t k = atomic_fetch_add_explicit(&p->next_keynum, 1, memory_order_relaxed);
		if (k >= p->keycap) {
			w->refused++; /* no shadow slot left: counted, the run says so */
			return;
		}
		struct hook_arg h = { p, k };
		int rc = bt_insert(&p->t, kg_key(k), ((uint64_t)(w->id + 1) << 40) | ++w->seq, record, &h);
		if (rc < 0) {
			p->shadow[k] = UINT64_MAX; /* not in the tree: the check expects it absent */
			w->refused++;
		} else {
			w->inserts++;
		}
		return;
	}
	uint64_t k = choose(w, p->loaded), key = kg_key(k), val;
	double reads = wl == 'a' ? 0.5 : wl == 'b' ? 0.95 : 1.0;
	if (r < reads) {
		if (!bt_lookup(&p->t, key, &val))
			w->missing++;
	} else {
		struct hook_arg h = { p, k };
		if (!bt_update(&p->t, key, ((uint64_t)(w->id + 1) << 40) | ++w->seq, record, &h))
			w->missing++;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	numa_run_on_node(w->p->node);
	atomic_fetch_add(&run->ready, 1);
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		int ph = atomic_load_explicit(&run->phase, memory_order_relaxed);
		uint64_t t0 = sys_now_ns();
		one_op(w);
		hist_add(&w->h[ph], sys_now_ns() - t0);
		atomic_store_explicit(&w->ops, atomic_load_explicit(&w->ops, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
	return NULL;
}

/* ------------------------------------------------------------------ setup */

static uint64_t key_at(size_t i, void *arg)
{
	return ((uint64_t *)arg)[i];
}

static uint64_t val_at(size_t i, void *arg)
{
	return loaded_val(((uint64_t *)arg)[i]);
}

/* LSD radix sort of n keys (11-bit digits), tmp as scratch. */
static void radix_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
	enum { BITS = 11, R = 1 << BITS };
	size_t *cnt = malloc(R * sizeof(*cnt));
	if (!cnt)
		abort();
	for (unsigned shift = 0; shift < 64; shift += BITS) {
		memset(cnt, 0, R * sizeof(*cnt));
		for (size_t i = 0; i < n; i++)
			cnt[(a[i] >> shift) & (R - 1)]++;
		size_t sum = 0;
		for (size_t d = 0; d < R; d++) {
			size_t c = cnt[d];
			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[cnt[(a[i] >> shift) & (R - 1)]++] = a[i];
		uint64_t *s = a;
		a = tmp;
		tmp = s;
	}
	free(cnt); /* 6 passes: the sorted keys are back in the caller's a */
}

#define FILL 0.8 /* bulk-loaded leaves: 80% full, room for inserts before splits */

/* Keys a partition has room to insert (E): a sixteenth of the loaded ones, plus what
 * its workers can insert in the run at up to 150k inserts/s each (5% of 3M ops/s, above
 * E's rate on a small tree: see "inserts" over the run's time in `pageleap ycsb
 * --workload e --json`), counting 2 s for the migration. An insert that
 * finds no room is counted and reported (the test requires none), never lost silently. */
static uint64_t insert_room(const struct ycsb_config *c, uint64_t keys)
{
	if (c->workload != 'e')
		return 0;
	return keys / 16 + 20000 + (uint64_t)(150e3 * c->threads * (c->warmup_s + c->after_s + 2));
}

/* Bytes of arena for a partition: the loaded tree and the room for inserts (a split leaf
 * is half full: 2 x 16 bytes per key). */
static size_t arena_bytes(const struct ycsb_config *c, uint64_t keys)
{
	size_t b = bt_bulk_bytes(keys, FILL) + BT_NODE_BYTES + insert_room(c, keys) * 32;
	return (b + PG2M - 1) & ~(PG2M - 1);
}

static void part_free(struct part *p)
{
	if (p->region)
		leap_region_destroy(&p->region);
	else if (p->mem)
		munmap(p->mem, p->cap);
	free(p->shadow);
	p->mem = NULL;
	p->shadow = NULL;
}

/* none, all_local, page_leap: the partition in a pageleap region. */
static int map_region(struct run *run, struct part *p, int on, bool room_local, char *err,
		      size_t errlen)
{
	struct leap_place pl[2] = { { 0, p->load_end, on },
				    { p->load_end, p->cap - p->load_end, p->node } };
	int rc;
	if (room_local)
		rc = leap_region_new_placed(run->ctx, p->cap, pl, 2, &p->region);
	else
		rc = leap_region_new(run->ctx, p->cap, on, &p->region);
	if (rc)
		return snprintf(err, errlen, "leap_region_new: %s", leap_strerror(rc)), rc;
	p->mem = leap_region_addr(p->region);
	return 0;
}

/* move_pages: anonymous memory bound to the source for the load, the room to the
 * threads' node. */
static int map_bound(struct run *run, struct part *p, int on, bool room_local, char *err,
		     size_t errlen)
{
	(void)run;
	p->mem = sys_anon_map(p->cap, false, on);
	if (!p->mem)
		return snprintf(err, errlen, "cannot map %zu bytes on node %d", p->cap, on), -ENOMEM;
	if (room_local) {
		struct bitmask *bm = numa_allocate_nodemask();
		numa_bitmask_setbit(bm, (unsigned)p->node);
		int rc = mbind(p->mem + p->load_end, p->cap - p->load_end, MPOL_BIND, bm->maskp,
			       bm->size + 1, 0) ? -errno : 0;
		numa_free_nodemask(bm);
		if (rc)
			return snprintf(err, errlen, "mbind: %s", strerror(-rc)), rc;
	}
	return 0;
}

/* AutoNUMA: anonymous memory with no policy, placed by the loading thread's first touch
 * (balancing may move only such pages); the room by the workers' first touch. */
static int map_first_touch(struct run *run, struct part *p, int on, bool room_local, char *err,
			   size_t errlen)
{
	(void)run, (void)room_local;
	p->mem = sys_anon_map(p->cap, false, -1);
	if (!p->mem)
		return snprintf(err, errlen, "cannot map %zu bytes on node %d", p->cap, on), -ENOMEM;
	return 0;
}

/* Memory for partition p on `on` (the method's map), the tree loaded into it. */
static int part_setup(struct run *run, struct part *p, uint64_t keys, int on, char *err,
		      size_t errlen)
{
	const struct ycsb_config *c = run->c;
	p->cap = arena_bytes(c, keys);
	p->loaded = keys;
	p->keycap = keys + insert_room(c, keys);
	atomic_init(&p->next_keynum, keys);
	p->shadow = calloc(p->keycap, sizeof(*p->shadow));
	if (!p->shadow)
		return snprintf(err, errlen, "no memory for the shadow values"), -ENOMEM;
	int rc = 0;
	/* The loaded tree starts on `on`; the room for inserts (E) is new memory, which a
	 * program allocates where its threads run: on the threads' node for every method
	 * that migrates (a region placed so, anonymous memory bound so, or AutoNUMA's first
	 * touch by the workers), so every method migrates the same loaded pages. */
	p->load_end = (bt_bulk_bytes(keys, FILL) + PG4K - 1) & ~(PG4K - 1);
	bool room_local = run->m->caps & (YCSB_MIGRATES | YCSB_STARTS_LOCAL) && p->load_end < p->cap;
	if ((rc = run->m->map(run, p, on, room_local, err, errlen)) != 0)
		return rc;
	uint64_t *a = malloc(keys * sizeof(*a)), *tmp = malloc(keys * sizeof(*tmp));
	if (!a || !tmp) {
		free(a), free(tmp);
		return snprintf(err, errlen, "no memory to sort the keys"), -ENOMEM;
	}
	for (uint64_t i = 0; i < keys; i++)
		a[i] = kg_key(i);
	radix_sort(a, tmp, keys);
	free(tmp);
	numa_run_on_node(on);
	rc = bt_init(&p->t, p->mem, p->cap);
	if (!rc)
		rc = bt_bulk_load(&p->t, keys, key_at, val_at, a, FILL);
	numa_run_on_node(-1);
	free(a);
	if (rc)
		return snprintf(err, errlen, "bulk load: %s", strerror(-rc)), rc;
	return 0;
}

/* ------------------------------------------------------------------ migration */

/* Every partition's migration range: the loaded part. */
static void mig_ranges(struct run *run)
{
	for (unsigned i = 0; i < run->nparts; i++)
		run->parts[i].mig_len = run->parts[i].load_end;
}

/* --- page_leap: a job per partition */

static int leap_start(struct run *run, char *err, size_t errlen)
{
	const struct ycsb_method *m = run->m;
	mig_ranges(run);
	for (unsigned i = 0; i < run->nparts; i++) {
		struct part *p = &run->parts[i];
		struct leap_job_options o = { .size = sizeof(o), .granularity_min = m->gran,
					      .granularity_max = m->gran };
		int rc = page_leap_opts(p->region, p->mem, p->mig_len, p->node,
					p->from == p->node ? LEAP_RELOCATE : 0, &o, &p->job);
		if (rc)
			return snprintf(err, errlen, "page_leap: %s", leap_strerror(rc)), rc;
	}
	return 0;
}

static bool leap_poll(struct run *run, struct part *p, bool slice_edge, uint64_t *moved, bool *all)
{
	(void)run, (void)slice_edge;
	struct leap_progress pr = { .size = sizeof(pr) };
	leap_job_progress(p->job, &pr);
	*moved += pr.pages_moved;
	if (pr.state < LEAP_JOB_DONE)
		*all = false;
	else if (!atomic_load(&p->mig_end_ns))
		atomic_store(&p->mig_end_ns, sys_now_ns());
	return true;
}

/* The library's count (a relocation on one node leaves nothing "not on" the node). */
static void leap_stop(struct run *run, struct ycsb_result *r)
{
	for (unsigned i = 0; i < run->nparts; i++) {
		struct part *p = &run->parts[i];
		if (!p->job)
			continue;
		struct leap_progress pr = { .size = sizeof(pr) };
		leap_job_cancel(p->job);
		leap_job_wait(p->job, -1);
		leap_job_progress(p->job, &pr);
		r->extents += pr.extents;
		r->pages_moved += pr.pages_moved;
		uint64_t lo = pr.granularity_min_seen >> 10, hi = pr.granularity_max_seen >> 10;
		if (lo && (!r->gran_min_kib || lo < r->gran_min_kib))
			r->gran_min_kib = lo;
		if (hi > r->gran_max_kib)
			r->gran_max_kib = hi;
		if (pr.error && !r->status[0])
			snprintf(r->status, sizeof(r->status), "page_leap: %s", leap_strerror(pr.error));
		leap_job_destroy(&p->job);
	}
}

/* --- move_pages: a thread per partition */

static void *move_pages_main(void *arg)
{
	struct part *p = arg;
	numa_run_on_node(p->node);
	sys_move_pages(p->mem, p->mig_len, PG4K, p->node, p->batch, 0, &p->moved, &p->mig_err);
	atomic_store(&p->mig_end_ns, sys_now_ns());
	atomic_store(&p->mig_done, true);
	return NULL;
}

static int mp_start(struct run *run, char *err, size_t errlen)
{
	mig_ranges(run);
	for (unsigned i = 0; i < run->nparts; i++) {
		struct part *p = &run->parts[i];
		/* pages faulted in from now on go to the target too; then move the rest */
		struct bitmask *bm = numa_allocate_nodemask();
		numa_bitmask_setbit(bm, (unsigned)p->node);
		mbind(p->mem, p->mig_len, MPOL_BIND, bm->maskp, bm->size + 1, 0);
		numa_free_nodemask(bm);
		p->batch = run->m->batch;
		if (pthread_create(&p->mig, NULL, move_pages_main, p))
			return snprintf(err, errlen, "cannot start a migration thread"), -EAGAIN;
		p->mig_started = true;
	}
	return 0;
}

static bool mp_poll(struct run *run, struct part *p, bool slice_edge, uint64_t *moved, bool *all)
{
	(void)run, (void)slice_edge;
	*moved += atomic_load(&p->moved);
	if (!atomic_load(&p->mig_done))
		*all = false;
	return true;
}

/* What its calls reported. */
static void mp_stop(struct run *run, struct ycsb_result *r)
{
	for (unsigned i = 0; i < run->nparts; i++) {
		struct part *p = &run->parts[i];
		if (!p->mig_started)
			continue;
		pthread_join(p->mig, NULL);
		p->mig_started = false;
		if (p->mig_err && !r->status[0])
			snprintf(r->status, sizeof(r->status), "move_pages: %s", strerror(-p->mig_err));
		r->pages_moved += atomic_load(&p->moved);
	}
}

/* --- AutoNUMA: numa_balancing on; progress sampled from the kernel's placement */

static int an_start(struct run *run, char *err, size_t errlen)
{
	mig_ranges(run);
	const char *why = NULL;
	run->nb_old = sys_balancing_on(&why);
	if (run->nb_old < 0)
		return snprintf(err, errlen, "%s", why), -EPERM;
	return 0;
}

static bool an_poll(struct run *run, struct part *p, bool slice_edge, uint64_t *moved, bool *all)
{
	(void)run;
	if (!slice_edge) { /* the sample costs system calls: once a slice */
		*moved += p->sampled ? (uint64_t)((double)(p->mig_len / PG4K) *
			(double)(p->sampled - p->sampled_off) / (double)p->sampled) : 0;
		*all = *all && atomic_load(&p->mig_end_ns);
		return false;
	}
	size_t pages = p->mig_len / PG4K, step = pages / 2048 + 1;
	p->sampled = (pages + step - 1) / step;
	p->sampled_off = sys_pages_not_on(p->mem, p->mig_len, PG4K, p->node, step);
	*moved += (uint64_t)((double)pages * (double)(p->sampled - p->sampled_off) /
			     (double)p->sampled);
	if (p->sampled_off * 100 > p->sampled) /* local enough: 99% */
		*all = false;
	else if (!atomic_load(&p->mig_end_ns))
		atomic_store(&p->mig_end_ns, sys_now_ns());
	return true;
}

static void an_stop(struct run *run, struct ycsb_result *r)
{
	(void)r;
	if (run->nb_old >= 0)
		sys_balancing_restore(run->nb_old);
	run->nb_old = -1;
}

/* Every page not left off its target counts as moved. */
static uint64_t an_moved(const struct ycsb_result *r)
{
	return r->pages - (r->pages_left < r->pages ? r->pages_left : r->pages);
}

/* Pages on their target so far (AutoNUMA: estimated from a sample), and whether the
 * migration is over. */
static uint64_t migration_poll(struct run *run, bool slice_edge, bool *done, uint64_t *end_ns)
{
	uint64_t moved = 0, last = 0;
	bool all = true;
	for (unsigned i = 0; i < run->nparts; i++) {
		struct part *p = &run->parts[i];
		if (!run->m->poll(run, p, slice_edge, &moved, &all))
			continue;
		uint64_t e = atomic_load(&p->mig_end_ns);
		last = e > last ? e : last;
	}
	*done = all;
	*end_ns = last;
	return moved;
}

/* ------------------------------------------------------------------ the methods */

const char *const ycsb_cap_names[YCSB_NCAPS] = { "migrates", "starts_local",
						 "baseline_move_pages", "baseline_none" };

#define MIGRATES(name) .start = name##_start, .poll = name##_poll, .stop = name##_stop

/* The order is the table's, the JSON's and the plot's. */
const struct ycsb_method ycsb_methods[] = {
	{ .name = "none", .what = "no migration: every partition stays on the wrong node",
	  .caps = YCSB_BASE_NONE, .dflt = true, .map = map_region },
	{ .name = "all_local", .what = "no migration: every partition on its threads' node from the start",
	  .needs_nodes = 2, .one_node = "same as none on one node", .caps = YCSB_STARTS_LOCAL,
	  .dflt = true, .map = map_region },
	{ .name = "move_pages", .what = "move_pages(), a partition in one call (a thread per partition)",
	  .needs_nodes = 2, MIGRATES(mp), .caps = YCSB_MIGRATES | YCSB_BASE_MOVE_PAGES,
	  .dflt = true, .map = map_bound },
	{ .name = "move_pages_b256", .what = "move_pages(), 256 pages per call", .batch = 256,
	  .needs_nodes = 2, .caps = YCSB_MIGRATES, MIGRATES(mp), .dflt = true, .map = map_bound },
	{ .name = "page_leap", .what = "page_leap(), adaptive granularity",
	  .caps = YCSB_MIGRATES, MIGRATES(leap), .dflt = true, .map = map_region },
	{ .name = "page_leap_64k", .what = "page_leap(), fixed 64 KiB extents", .gran = 64u << 10,
	  .caps = YCSB_MIGRATES, MIGRATES(leap), .dflt = true, .map = map_region },
	{ .name = "autonuma", .what = "numa_balancing=1 from the migration start", .needs_nodes = 2,
	  .caps = YCSB_MIGRATES, MIGRATES(an), .moved = an_moved, .dflt = true, .map = map_first_touch },
};
const size_t ycsb_nmethods = sizeof(ycsb_methods) / sizeof(ycsb_methods[0]);

#undef MIGRATES

/* ------------------------------------------------------------------ one method */

/* After the run, one partition: the invariants, then the whole tree in key order
 * against the shadow. Every key must be one handed out, at most once, with the value last
 * written to it (or its loaded value); every key expected must have been seen. */
static int check_part(struct part *p, unsigned idx, struct ycsb_result *r)
{
	struct bt_report rep;
	char msg[160];
	if (bt_check(&p->t, &rep, msg, sizeof(msg))) {
		snprintf(r->check, sizeof(r->check), "partition %u: %s", idx, msg);
		return -1;
	}
	uint64_t n = atomic_load(&p->next_keynum);
	n = n < p->keycap ? n : p->keycap;
	uint8_t *seen = calloc(n, 1);
	enum { CHUNK = 4096 };
	uint64_t *keys = malloc(CHUNK * sizeof(*keys)), *vals = malloc(CHUNK * sizeof(*vals));
	if (!seen || !keys || !vals) {
		free(seen), free(keys), free(vals);
		snprintf(r->check, sizeof(r->check), "out of memory for the check");
		return -1;
	}
	uint64_t start = 0, total = 0, strays = 0, expected = 0;
	for (;;) {
		size_t got = bt_scan(&p->t, start, CHUNK, keys, vals);
		for (size_t i = 0; i < got; i++) {
			uint64_t k = kg_keynum(keys[i]);
			if (k >= n || seen[k] || p->shadow[k] == UINT64_MAX) {
				strays++; /* never handed out, twice, or refused yet present */
				continue;
			}
			seen[k] = 1;
			uint64_t want = p->shadow[k] ? p->shadow[k] : loaded_val(keys[i]);
			r->lost_values += vals[i] != want;
		}
		total += got;
		if (got < CHUNK || keys[got - 1] == UINT64_MAX)
			break;
		start = keys[got - 1] + 1;
	}
	for (uint64_t k = 0; k < n; k++)
		if (p->shadow[k] != UINT64_MAX) {
			expected++;
			r->lost_values += !seen[k]; /* a key that vanished */
		}
	free(seen), free(keys), free(vals);
	r->keys_final += rep.keys;
	if (strays || total != rep.keys || rep.keys != expected) {
		snprintf(r->check, sizeof(r->check),
			 "partition %u: %" PRIu64 " keys in the tree (scan %" PRIu64 "), %" PRIu64
			 " expected, %" PRIu64 " unexpected", idx, rep.keys, total, expected, strays);
		return -1;
	}
	return 0;
}

static void check_tree(struct run *run, struct ycsb_result *r)
{
	r->invariants_ok = true;
	for (unsigned i = 0; i < run->nparts; i++)
		if (check_part(&run->parts[i], i, r)) {
			r->invariants_ok = false;
			return;
		}
	if (r->lost_values)
		snprintf(r->check, sizeof(r->check), "%" PRIu64 " keys without their last value",
			 r->lost_values);
	else
		snprintf(r->check, sizeof(r->check), "ok");
}

static void progress_line(const struct ycsb_config *c, const char *what, double t)
{
	if (c->progress)
		fprintf(stderr, "\r\033[K%s %.1f s", what, t);
}

static void run_method(struct run *run, struct ycsb_result *r, const int *cpu_nodes,
		       unsigned ncpu_nodes)
{
	const struct ycsb_config *c = run->c;
	const struct ycsb_method *m = run->m;
	r->m = m;
	r->mig_end = NAN;
	if (ncpu_nodes < m->needs_nodes) {
		snprintf(r->status, sizeof(r->status), "%s", m->one_node ? m->one_node : "needs 2 nodes");
		return;
	}
	run->nparts = ncpu_nodes;
	char err[160] = "";
	for (unsigned i = 0; i < run->nparts; i++) {
		struct part *p = &run->parts[i];
		memset(p, 0, sizeof(*p));
		p->node = cpu_nodes[i];
		p->from = cpu_nodes[(i + 1) % ncpu_nodes];
		uint64_t keys = c->keys / run->nparts + (i < c->keys % run->nparts);
		progress_line(c, "loading", 0);
		int on = m->caps & YCSB_STARTS_LOCAL ? p->node : p->from;
		if (part_setup(run, p, keys, on, err, sizeof(err))) {
			snprintf(r->status, sizeof(r->status), "%s", err);
			goto out;
		}
		r->keys_loaded += keys;
		r->pages += p->load_end / PG4K;
	}
	/* workers */
	run->nw = run->nparts * c->threads;
	/* 64-byte aligned: each worker's op counter on its own cache line */
	size_t wbytes = (run->nw * sizeof(*run->w) + 63) & ~(size_t)63;
	run->w = aligned_alloc(64, wbytes);
	if (run->w)
		memset(run->w, 0, wbytes);
	if (!run->w) {
		snprintf(r->status, sizeof(r->status), "out of memory");
		goto out;
	}
	atomic_store(&run->phase, PH_BEFORE);
	atomic_store(&run->stop, false);
	atomic_store(&run->ready, 0);
	unsigned started = 0;
	for (unsigned i = 0; i < run->nw; i++) {
		struct worker *w = &run->w[i];
		w->run = run;
		w->p = &run->parts[i / c->threads];
		w->id = i;
		w->rng = c->seed * 0x100000001b3ull + i * 0x9e3779b97f4a7c15ull + 1;
		if (pthread_create(&w->th, NULL, worker_main, w)) {
			snprintf(r->status, sizeof(r->status), "cannot start worker threads");
			break;
		}
		started++;
	}
	while (atomic_load(&run->ready) < started)
		sched_yield();

	size_t cap = (size_t)((c->warmup_s + c->max_migrate_s + c->after_s) / c->slice_s) + 4;
	if (cap > SLICE_MAX)
		cap = SLICE_MAX;
	r->slices = calloc(cap, sizeof(*r->slices));
	if (!r->slices)
		snprintf(r->status, sizeof(r->status), "out of memory");
	uint64_t tick = (uint64_t)(c->slice_s * 1e9) / 20; /* end detection: 1/20 slice */
	uint64_t t0 = sys_now_ns(), next_slice = t0 + (uint64_t)(c->slice_s * 1e9), prev_ops = 0,
		 prev_t = t0, ops_at[PH_N + 1] = { 0 }, t_at[PH_N + 1] = { t0 };
	run->t0_ns = t0;
	run->nb_old = -1;
	bool migrating = false, done = false;
	uint64_t end_ns = 0, moved = 0;
	bool failed = started < run->nw || !r->slices;
	r->finished = true;
	for (uint64_t now = t0; !failed && r->slices;) {
		sleep_until(now + tick < next_slice ? now + tick : next_slice);
		now = sys_now_ns();
		uint64_t ops = 0;
		for (unsigned i = 0; i < run->nw; i++)
			ops += atomic_load_explicit(&run->w[i].ops, memory_order_relaxed);
		int ph = atomic_load(&run->phase);
		if (ph == PH_BEFORE && secs(now - t0) >= c->warmup_s) {
			ops_at[PH_DURING] = ops, t_at[PH_DURING] = now;
			atomic_store(&run->phase, PH_DURING);
			if (m->caps & YCSB_MIGRATES) {
				if (m->start(run, err, sizeof(err))) {
					snprintf(r->status, sizeof(r->status), "%s", err);
					failed = true;
				}
				migrating = true;
			}
		} else if (ph == PH_DURING) {
			if (migrating)
				moved = migration_poll(run, now >= next_slice, &done, &end_ns);
			else /* baselines: "during" is as long as "after", both steady state */
				done = secs(now - t_at[PH_DURING]) >= c->after_s;
			bool timeout = secs(now - t_at[PH_DURING]) >= c->max_migrate_s;
			if (done || timeout) {
				if (!done)
					r->finished = false, end_ns = now;
				if (!migrating)
					end_ns = now; /* baselines: "during" ends after `after` s */
				ops_at[PH_AFTER] = ops, t_at[PH_AFTER] = now;
				atomic_store(&run->phase, PH_AFTER);
			}
		} else if (ph == PH_AFTER && secs(now - t_at[PH_AFTER]) >= c->after_s) {
			ops_at[PH_N] = ops, t_at[PH_N] = now;
			break;
		}
		if (now >= next_slice) {
			if (r->nslices < cap) {
				struct ycsb_slice *s = &r->slices[r->nslices++];
				s->t = secs(now - t0);
				s->kops = (double)(ops - prev_ops) / secs(now - prev_t) * 1e-3;
				s->migrated = r->pages ? (double)moved / (double)r->pages : 0;
				if ((m->caps & YCSB_STARTS_LOCAL) || (done && migrating))
					s->migrated = 1;
			}
			prev_ops = ops, prev_t = now;
			next_slice += (uint64_t)(c->slice_s * 1e9);
			progress_line(c, m->name, secs(now - t0));
		}
	}
	atomic_store(&run->stop, true);
	for (unsigned i = 0; i < started; i++)
		pthread_join(run->w[i].th, NULL);
	if (migrating) {
		if (!done)
			r->finished = false;
		m->stop(run, r);
		moved = 0;
		for (unsigned i = 0; i < run->nparts; i++) {
			struct part *p = &run->parts[i];
			size_t used = (atomic_load(&p->t.used) + PG4K - 1) & ~(PG4K - 1);
			r->pages_left += sys_pages_not_on(p->mem, used, PG4K, p->node, 1);
		}
		if (m->moved)
			r->pages_moved = m->moved(r);
	}
	if (c->progress)
		fprintf(stderr, "\r\033[K");
	if (failed) {
		if (!r->status[0])
			snprintf(r->status, sizeof(r->status), "the run failed");
		goto out;
	}
	r->ran = true;
	if (!r->status[0])
		snprintf(r->status, sizeof(r->status), "ok");
	r->mig_start = secs(t_at[PH_DURING] - t0);
	if (r->finished && (migrating || !(m->caps & YCSB_MIGRATES)))
		r->mig_end = secs((end_ns ? end_ns : t_at[PH_AFTER]) - t0);
	for (int ph = 0; ph < PH_N; ph++) {
		double dt = secs(t_at[ph + 1] - t_at[ph]);
		r->kops[ph] = dt > 0 ? (double)(ops_at[ph + 1] - ops_at[ph]) / dt * 1e-3 : NAN;
		struct hist h = { 0 };
		for (unsigned i = 0; i < run->nw; i++)
			hist_merge(&h, &run->w[i].h[ph]);
		r->p50_us[ph] = h.count ? hist_quantile_us(&h, 0.5) : NAN;
		r->p99_us[ph] = h.count ? hist_quantile_us(&h, 0.99) : NAN;
	}
	for (unsigned i = 0; i < run->nw; i++) {
		struct worker *w = &run->w[i];
		r->missing_reads += w->missing;
		r->bad_scans += w->bad_scans;
		r->inserts += w->inserts;
		r->inserts_refused += w->refused;
	}
	for (unsigned i = 0; i < run->nparts; i++)
		r->restarts += atomic_load(&run->parts[i].t.restarts);
	check_tree(run, r);
out:
	free(run->w);
	run->w = NULL;
	for (unsigned i = 0; i < run->nparts; i++)
		part_free(&run->parts[i]);
}

/* ------------------------------------------------------------------ arguments */

static int bad(const char *fmt, const char *arg)
{
	return cli_usage(usage, fmt, arg);
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s)
		return false;
	if (*end == 'K' || *end == 'k')
		v *= 1e3, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1e6, end++;
	if (*end || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct ycsb_config *c)
{
	bool any_method = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		double x;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			exit(0);
		} else if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--no-progress")) {
			c->progress = false;
		} else if (!strcmp(a, "--force")) {
			c->force = true;
		} else if (!v) {
			static const char *const valued[] = { "--workload", "--dist", "--method", "--keys",
				"--threads", "--warmup", "--after", "--max-migration", "--seed", "--plot",
				"--save-json" };
			for (size_t k = 0; k < sizeof(valued) / sizeof(*valued); k++)
				if (!strcmp(a, valued[k]))
					return bad("%s needs a value", a);
			return bad("unknown option '%s'", a);
		} else if (!strcmp(a, "--workload")) {
			if (strlen(v) != 1 || !strchr("abceABCE", v[0]))
				return bad("unknown workload '%s' (a, b, c or e)", v);
			c->workload = (char)(v[0] | 0x20);
			i++;
		} else if (!strcmp(a, "--dist")) {
			if (!strcmp(v, "zipf") || !strcmp(v, "zipfian"))
				c->zipf = true;
			else if (!strcmp(v, "uniform"))
				c->zipf = false;
			else
				return bad("unknown distribution '%s' (zipf or uniform)", v);
			i++;
		} else if (!strcmp(a, "--method")) {
			char *list = strdup(v), *save = NULL;
			if (!list)
				return bad("%s", "out of memory");
			for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				bool found = false;
				for (size_t k = 0; k < ycsb_nmethods; k++)
					if (!strcmp(tok, "all") || !strcmp(tok, ycsb_methods[k].name))
						c->method_on[k] = found = true;
				if (!found) {
					int rc = bad("unknown method '%s' (pageleap ycsb --help lists them)", tok);
					free(list);
					return rc;
				}
			}
			free(list);
			any_method = true;
			i++;
		} else if (!strcmp(a, "--keys")) {
			if (!parse_num(v, 1000, 4e9, &x))
				return bad("--keys wants a number from 1000 to 4000M, not '%s'", v);
			c->keys = (uint64_t)x;
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (!parse_num(v, 1, 256, &x) || x != floor(x))
				return bad("--threads wants a whole number from 1 to 256, not '%s'", v);
			c->threads = (unsigned)x;
			i++;
		} else if (!strcmp(a, "--warmup") || !strcmp(a, "--after") ||
			   !strcmp(a, "--max-migration")) {
			if (!parse_num(v, a[2] == 'm' ? 0.1 : 0, 3600, &x)) {
				char msg[160];
				snprintf(msg, sizeof(msg), "%s wants seconds (%s to 3600), not '%s'", a,
					 a[2] == 'm' ? "0.1" : "0", v);
				return bad("%s", msg);
			}
			*(a[2] == 'w' ? &c->warmup_s : a[2] == 'a' ? &c->after_s : &c->max_migrate_s) = x;
			i++;
		} else if (!strcmp(a, "--seed")) {
			if (!parse_num(v, 0, 1e18, &x))
				return bad("--seed wants a number, not '%s'", v);
			c->seed = (uint64_t)x;
			i++;
		} else if (!strcmp(a, "--plot")) {
			c->plot_dir = v;
			i++;
		} else if (!strcmp(a, "--save-json")) {
			c->save_json = v;
			i++;
		} else {
			return bad("unknown option '%s'", a);
		}
	}
	if (!any_method)
		for (size_t k = 0; k < ycsb_nmethods; k++)
			c->method_on[k] = ycsb_methods[k].dflt;
	return 0;
}

static unsigned node_free_mib(int node)
{
	long long fr = 0;
	long long sz = numa_node_size64(node, &fr);
	return sz > 0 && fr > 0 ? (unsigned)(fr >> 20) : 0;
}

int cmd_ycsb(int argc, char **argv)
{
	struct ycsb_config c = { .workload = 'a', .zipf = true, .warmup_s = 2, .after_s = 2,
				 .max_migrate_s = 60, .slice_s = 0.1, .fill = FILL, .seed = 1,
				 .progress = isatty(2) };
	int rc = parse_args(argc, argv, &c);
	if (rc)
		return rc;
	/* an output file that exists is refused now, not after the run */
	char dat[4096] = "", gp[4096] = "";
	if (c.plot_dir) {
		snprintf(dat, sizeof(dat), "%s/timeline.dat", c.plot_dir);
		snprintf(gp, sizeof(gp), "%s/ycsb.gp", c.plot_dir);
	}
	const char *outs[] = { c.save_json, dat, gp };
	for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++)
		if (outs[k] && outs[k][0] && (rc = sys_may_create(outs[k], c.force))) {
			sys_say_create("ycsb", outs[k], -rc);
			return 1;
		}
	if (numa_available() < 0) {
		fprintf(stderr, "pageleap: ycsb: no NUMA support in this kernel\n");
		return 1;
	}
	struct ycsb_machine mc = { .emulated = sys_emulated() };
	sys_kernel_name(mc.kernel, sizeof(mc.kernel));
	int cpu_nodes[YCSB_MAX_NODES];
	unsigned ncpu = 0, min_cpus = 0;
	struct bitmask *cpus = numa_allocate_cpumask();
	for (int n = 0; n <= numa_max_node() && ncpu < YCSB_MAX_NODES; n++) {
		if (!numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)n))
			continue;
		mc.nodes++;
		if (numa_node_to_cpus(n, cpus) == 0 && numa_bitmask_weight(cpus) > 0) {
			unsigned w = numa_bitmask_weight(cpus);
			cpu_nodes[ncpu++] = n;
			mc.cpus += (int)w;
			min_cpus = !min_cpus || w < min_cpus ? w : min_cpus;
		}
	}
	numa_free_cpumask(cpus);
	mc.cpu_nodes = mc.partitions = (int)ncpu;
	if (!ncpu) {
		fprintf(stderr, "pageleap: ycsb: no node with CPUs\n");
		return 1;
	}
	if (!c.threads)
		c.threads = min_cpus;
	if (!c.keys) {
		/* each node holds its partition and, while migrating, the incoming one: keep
		 * both under a third of its free memory (about 26 bytes per key with E's room) */
		unsigned mib = UINT32_MAX;
		for (unsigned i = 0; i < ncpu; i++) {
			unsigned f = node_free_mib(cpu_nodes[i]);
			mib = f < mib ? f : mib;
		}
		uint64_t per = ((uint64_t)mib << 20) / 3 / 2 / 32;
		c.keys = per * ncpu;
		if (c.keys > 32000000)
			c.keys = 32000000;
		if (c.keys < 100000)
			c.keys = 100000;
	}
	struct run run = { .c = &c };
	kg_zipf_init(&run.zipf);
	if ((rc = leap_ctx_new(NULL, &run.ctx)) != 0) {
		fprintf(stderr, "pageleap: ycsb: leap_ctx_new: %s\n", leap_strerror(rc));
		return 1;
	}
	struct ycsb_result res[16];
	size_t n = 0;
	for (size_t k = 0; k < ycsb_nmethods; k++) {
		if (!c.method_on[k])
			continue;
		memset(&res[n], 0, sizeof(res[n]));
		run.m = &ycsb_methods[k];
		run_method(&run, &res[n], cpu_nodes, ncpu);
		n++;
	}
	leap_ctx_destroy(&run.ctx);
	ycsb_finish(res, n);
	if (c.json)
		ycsb_print_json(stdout, &c, &mc, res, n);
	else
		ycsb_print_table(stdout, &c, &mc, res, n);
	int ret = 0;
	if (c.save_json) {
		FILE *f = sys_create(c.save_json, c.force);
		if (!f) {
			sys_say_create("ycsb", c.save_json, errno);
			ret = 1;
		} else {
			ycsb_print_json(f, &c, &mc, res, n);
			if (fclose(f))
				ret = 1;
		}
	}
	if (c.plot_dir && (rc = ycsb_plot(c.plot_dir, &c, &mc, res, n)) == -ENOENT) {
		/* the emulated guests have no gnuplot: the host draws from the script */
		fprintf(stderr, "pageleap: ycsb: no gnuplot here: the data and script are in %s "
				"(gnuplot %s/ycsb.gp draws them)\n", c.plot_dir, c.plot_dir);
	} else if (c.plot_dir && rc) {
		fprintf(stderr, "pageleap: ycsb: plot into %s failed: %s\n", c.plot_dir, strerror(-rc));
		ret = 1;
	}
	/* a broken tree or a lost value fails the command */
	for (size_t i = 0; i < n; i++) {
		if (res[i].ran && (!res[i].invariants_ok || res[i].lost_values || res[i].missing_reads ||
				   res[i].bad_scans)) {
			fprintf(stderr, "pageleap: ycsb: %s: check failed: %s\n", res[i].m->name, res[i].check);
			ret = 1;
		}
		free(res[i].slices);
	}
	return ret;
}
