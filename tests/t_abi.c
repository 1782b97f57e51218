/*
 * ABI: caller-filled structs that grow (include/pageleap.h, src/util/abi.c), and the clock
 * of leap_job_wait()'s timeout.
 *
 * Inputs: every public call that takes an options struct gets the struct cut short (just
 * the size field, and cut before its last fields), exact, and longer ("new") with a zero
 * tail, which must behave exactly like the exact one, and with a non-zero tail, which must
 * be -E2BIG and change nothing; sizes below the size field are -EINVAL, a size over a page
 * -E2BIG. Short structs end right at a PROT_NONE page, so a library that read past the
 * caller's size would fault; fields past it must act as 0 (their defaults).
 * Outputs: every call that fills a struct writes into a canary-filled buffer: exactly
 * min(size, sizeof) bytes change (the fields in them as an exact call has them), the size
 * field stays the caller's; sizes below the size field are -EINVAL and change nothing.
 * Clock: the deadline is on CLOCK_MONOTONIC, and a job held on the test seam makes
 * leap_job_wait(50 ms) time out no earlier than 50 ms later on that clock.
 *
 * Named cases (PASS/FAIL each); a failed case does not stop the others.
 */
#include "hook.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define BIG_SIZE 8192 /* a size over LEAP_STRUCT_SIZE_MAX (src/util/util.h) */
#define NEW_TAIL 16   /* bytes a "new" struct has past this version's */

static int cases_failed;
static bool case_ok;
static char case_name[128];

/* A check inside a case: report and go on. */
#define EXPECT(cond, ...)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			case_ok = false;                                               \
			fprintf(stderr, "%s: %s: %s:%d: '%s' failed: ", t_name, case_name, \
				__FILE__, __LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                                  \
			fprintf(stderr, "\n");                                        \
		}                                                                      \
	} while (0)

static void begin(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(case_name, sizeof(case_name), fmt, ap);
	va_end(ap);
	case_ok = true;
}

static void end(void)
{
	printf("%s %s\n", case_ok ? "PASS" : "FAIL", case_name);
	fflush(stdout);
	if (!case_ok)
		cases_failed++;
}

static struct leap_ctx *ctx, *ectx; /* ectx has no regions: evacuation and compaction */
static struct leap_region *R;	    /* 1 MiB on home: what the job options move */
static char *Rp;
static const size_t Rlen = 1 << 20;
static int home;
static unsigned char *guard; /* one read-write page, then a PROT_NONE one */
static char sentinel_obj;
#define SENTINEL ((void *)&sentinel_obj)

/* The first n bytes of s, placed to end where the PROT_NONE page begins. pre: n % 8 == 0 */
static const void *guarded(const void *s, size_t n)
{
	unsigned char *p = guard + PG - n;
	memcpy(p, s, n);
	return p;
}

/* Whether a struct of n bytes holds the whole of field [off, off+len). */
static bool has(size_t n, size_t off, size_t len)
{
	return n >= off + len;
}
#define HAS(n, S, f) has(n, offsetof(S, f), sizeof(((S *)0)->f))

/* ---------------------------------------------------------------- inputs */

struct in_spec {
	const char *name;     /* call/struct */
	size_t sz;	      /* sizeof the struct */
	const void *full;     /* every field set, size = sz */
	size_t olds[2];	      /* shorter sizes (besides the size field alone), 0: none */
	int (*call)(const void *opts);
	/* after an accepted call with the first n bytes of full (n > sz: a zero tail):
	 * fields past n must have acted as 0 */
	void (*check)(size_t n, int rc);
	void (*snap)(void);	    /* before a call that must be rejected */
	void (*unchanged)(void);    /* after it: EXPECT nothing changed */
};

static void in_run(const struct in_spec *s)
{
	static unsigned char buf[BIG_SIZE];
	size_t bad[] = { 0, sizeof(size_t) - 1 };
	for (size_t i = 0; i < 2; i++) {
		begin("%s: size %zu (less than the size field): EINVAL, nothing changed", s->name,
		      bad[i]);
		memcpy(buf, s->full, s->sz);
		memcpy(buf, &bad[i], sizeof(size_t));
		s->snap();
		int rc = s->call(buf);
		EXPECT(rc == -EINVAL, "returned %d", rc);
		s->unchanged();
		end();
	}
	size_t shorts[] = { sizeof(size_t), s->olds[0], s->olds[1] };
	for (size_t i = 0; i < 3; i++) {
		size_t n = shorts[i];
		if (!n)
			continue;
		begin("%s: old size %zu of %zu (missing fields act as 0, none read)", s->name, n,
		      s->sz);
		memcpy(buf, s->full, n);
		memcpy(buf, &n, sizeof(n));
		s->snap();
		s->check(n, s->call(guarded(buf, n)));
		end();
	}
	begin("%s: exact size %zu", s->name, s->sz);
	memcpy(buf, s->full, s->sz);
	s->snap();
	s->check(s->sz, s->call(buf));
	end();

	size_t n = s->sz + NEW_TAIL;
	begin("%s: new size %zu, zero tail: as exact", s->name, n);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, s->full, s->sz);
	memcpy(buf, &n, sizeof(n));
	s->snap();
	s->check(n, s->call(buf));
	end();

	size_t dirty[] = { s->sz, n - 1 };
	for (size_t i = 0; i < 2; i++) {
		begin("%s: new size %zu, byte %zu not zero: E2BIG, nothing changed", s->name, n,
		      dirty[i]);
		buf[dirty[i]] = 0x01;
		s->snap();
		int rc = s->call(buf);
		EXPECT(rc == -E2BIG, "returned %d", rc);
		s->unchanged();
		buf[dirty[i]] = 0;
		end();
	}

	begin("%s: size %d (over a page, zero tail): E2BIG, nothing changed", s->name, BIG_SIZE);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, s->full, s->sz);
	size_t big = BIG_SIZE;
	memcpy(buf, &big, sizeof(big));
	s->snap();
	int rc = s->call(buf);
	EXPECT(rc == -E2BIG, "returned %d", rc);
	s->unchanged();
	end();
}

/* leap_ctx_new: the cap reaches the pools */
static struct leap_ctx *made_ctx;
static const uint64_t CAP = 64 << 20;

static int ctx_call(const void *o)
{
	made_ctx = SENTINEL;
	return leap_ctx_new(o, &made_ctx);
}

static void ctx_check(size_t n, int rc)
{
	EXPECT(rc == 0, "returned %d", rc);
	if (rc)
		return;
	struct leap_pool *pool;
	struct leap_pool_stats st = { .size = sizeof(st) };
	EXPECT(leap_pool_get(made_ctx, home, &pool) == 0 && leap_pool_stats(pool, &st) == 0,
	       "pool of node %d", home);
	if (HAS(n, struct leap_ctx_options, pool_cap_bytes))
		EXPECT(st.cap_bytes == CAP, "cap %" PRIu64 ", want %" PRIu64, st.cap_bytes, CAP);
	else
		EXPECT(st.cap_bytes != CAP, "cap %" PRIu64 " from a field past size", st.cap_bytes);
	leap_ctx_destroy(&made_ctx);
}

/* nothing to take: what must not change is checked from the call's own out-parameter */
static void no_snap(void)
{
}

static void ctx_unchanged(void)
{
	EXPECT(made_ctx == SENTINEL, "*out was written");
}

/* leap_pool_open: a new file in /dev/shm; the cap */
static struct leap_pool *made_pool;
static char pool_path[128];
static int pool_seq;
static const uint64_t POOL_CAP = 8 << 20;

static int pool_call(const void *o)
{
	snprintf(pool_path, sizeof(pool_path), "/dev/shm/leap-t_abi-%d-%d", (int)getpid(),
		 pool_seq++);
	made_pool = SENTINEL;
	return leap_pool_open(ctx, pool_path, home, o, &made_pool);
}

static void pool_check(size_t n, int rc)
{
	EXPECT(rc == 0, "returned %d", rc);
	if (rc)
		return;
	struct leap_pool_stats st = { .size = sizeof(st) };
	EXPECT(leap_pool_stats(made_pool, &st) == 0 && st.external == 1, "stats");
	if (HAS(n, struct leap_pool_options, cap_bytes))
		EXPECT(st.cap_bytes == POOL_CAP, "cap %" PRIu64, st.cap_bytes);
	else
		EXPECT(st.cap_bytes != POOL_CAP, "cap %" PRIu64 " from a field past size",
		       st.cap_bytes);
	EXPECT(st.pages == LEAP_PAGES_SMALL, "pages %d", st.pages);
	leap_pool_close(&made_pool);
	unlink(pool_path);
}

static void pool_unchanged(void)
{
	struct stat sb;
	EXPECT(made_pool == SENTINEL, "*out was written");
	EXPECT(stat(pool_path, &sb) != 0 && errno == ENOENT, "%s was created", pool_path);
	unlink(pool_path);
}

/* leap_region_new_ex: a region on home; its pool's use */
static struct leap_region *made_region;
static uint64_t used0;

static uint64_t home_used(void)
{
	struct leap_pool *pool;
	struct leap_pool_stats st = { .size = sizeof(st) };
	OK(leap_pool_get(ctx, home, &pool));
	OK(leap_pool_stats(pool, &st));
	return st.used_bytes;
}

static int region_call(const void *o)
{
	struct leap_place pl = { 0, 4 * PG, home };
	made_region = SENTINEL;
	return leap_region_new_ex(ctx, 4 * PG, &pl, 1, o, &made_region);
}

static void region_check(size_t n, int rc)
{
	(void)n;
	EXPECT(rc == 0, "returned %d", rc);
	if (rc)
		return;
	struct leap_region_stats st = { .size = sizeof(st) };
	EXPECT(leap_region_stats(made_region, &st) == 0 && st.pages == LEAP_PAGES_SMALL &&
		       st.length == 4 * PG,
	       "stats: pages %d length %" PRIu64, st.pages, st.length);
	EXPECT(leap_node_of(made_region, leap_region_addr(made_region)) == home, "node");
	leap_region_destroy(&made_region);
}

static void region_snap(void)
{
	used0 = home_used();
}

static void region_unchanged(void)
{
	EXPECT(made_region == SENTINEL, "*out was written");
	EXPECT(home_used() == used0, "pool use %" PRIu64 " -> %" PRIu64, used0, home_used());
}

/* page_leap_opts, page_leap_pool: granularity, status[], the done callback */
static int status[256]; /* one per page of R */
static atomic_int dones;
static bool via_pool;
static struct leap_job *made_job;
static struct leap_region_stats rst0;
static int dones0;
static const int UNSET = 12345;
static const size_t GRAN = 64 << 10;

static void on_done(struct leap_job *j, void *arg)
{
	(void)j;
	atomic_fetch_add((atomic_int *)arg, 1);
}

static int leap_call(const void *o)
{
	for (size_t k = 0; k < Rlen / PG; k++)
		status[k] = UNSET;
	made_job = SENTINEL;
	unsigned fl = LEAP_RELOCATE | LEAP_NO_WRITERS;
	if (!via_pool)
		return page_leap_opts(R, Rp, Rlen, home, fl, o, &made_job);
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, home, &pool));
	return page_leap_pool(R, Rp, Rlen, pool, fl, o, &made_job);
}

static void leap_check(size_t n, int rc)
{
	typedef struct leap_job_options S;
	EXPECT(rc == 0, "returned %d", rc);
	if (rc)
		return;
	int d0 = dones0; /* snapped before the call: the job may be done already */
	int64_t res = leap_job_wait(made_job, -1);
	EXPECT(res == (int64_t)(Rlen / PG), "moved %" PRId64, res);
	struct leap_progress p = { .size = sizeof(p) };
	EXPECT(leap_job_progress(made_job, &p) == 0, "progress");
	leap_job_destroy(&made_job);
	if (HAS(n, S, granularity_max))
		EXPECT(p.extents == Rlen / GRAN && p.granularity_max_seen == GRAN,
		       "%" PRIu64 " extents up to %" PRIu64 " B, want fixed %zu B", p.extents,
		       p.granularity_max_seen, GRAN);
	else /* the default grows past the first extent's 64 KiB */
		EXPECT(p.granularity_max_seen > GRAN, "granularity stayed %" PRIu64,
		       p.granularity_max_seen);
	bool st = HAS(n, S, status), dn = HAS(n, S, done) && HAS(n, S, arg);
	size_t bad = 0;
	for (size_t k = 0; k < Rlen / PG; k++)
		bad += status[k] != (st ? home : UNSET);
	EXPECT(!bad, "%zu entries of status[] %s", bad, st ? "not filled" : "written");
	/* the callback runs before the job counts as finished: it has run by now */
	EXPECT(atomic_load(&dones) == d0 + dn, "done ran %d times, want %d",
	       atomic_load(&dones) - d0, dn);
	check_pages(Rp, Rlen / PG, 7, "contents after the move");
}

static void leap_snap(void)
{
	rst0 = (struct leap_region_stats){ .size = sizeof(rst0) };
	OK(leap_region_stats(R, &rst0));
	dones0 = atomic_load(&dones);
}

static void leap_unchanged(void)
{
	struct leap_region_stats st = { .size = sizeof(st) };
	OK(leap_region_stats(R, &st));
	EXPECT(made_job == SENTINEL, "*job was written");
	EXPECT(st.leaps == rst0.leaps && st.pages_moved == rst0.pages_moved, "the region moved");
	EXPECT(atomic_load(&dones) == dones0, "done ran");
	size_t bad = 0;
	for (size_t k = 0; k < Rlen / PG; k++)
		bad += status[k] != UNSET;
	EXPECT(!bad, "%zu entries of status[] written", bad);
}

/* leap_node_evacuate, leap_pool_compact on ectx (nothing to move): the done callback */
static bool via_compact;

static int coord_call(const void *o)
{
	made_job = SENTINEL;
	if (!via_compact)
		return leap_node_evacuate(ectx, home, LEAP_NO_WRITERS, o, &made_job);
	struct leap_pool *pool;
	OK(leap_pool_get(ectx, home, &pool));
	return leap_pool_compact(pool, LEAP_NO_WRITERS, o, &made_job);
}

static void coord_check(size_t n, int rc)
{
	typedef struct leap_job_options S;
	EXPECT(rc == 0, "returned %d", rc);
	if (rc)
		return;
	int d0 = dones0; /* snapped before the call: the job may be done already */
	int64_t res = leap_job_wait(made_job, -1);
	leap_job_destroy(&made_job);
	EXPECT(res == 0, "result %" PRId64 " with nothing to move", res);
	int dn = HAS(n, S, done) && HAS(n, S, arg);
	EXPECT(atomic_load(&dones) == d0 + dn, "done ran %d times, want %d",
	       atomic_load(&dones) - d0, dn);
}

static void coord_snap(void)
{
	dones0 = atomic_load(&dones);
}

static void coord_unchanged(void)
{
	EXPECT(made_job == SENTINEL, "*job was written");
	EXPECT(atomic_load(&dones) == dones0, "done ran");
}

static void inputs(void)
{
	struct leap_ctx_options co = { .size = sizeof(co), .pool_cap_bytes = CAP,
				       .workers_per_node = 2,
				       .pool_map_chunk_bytes = 64 << 20 };
	in_run(&(struct in_spec){ "leap_ctx_new/leap_ctx_options", sizeof(co), &co,
				  { offsetof(struct leap_ctx_options, pool_map_chunk_bytes) },
				  ctx_call, ctx_check, no_snap, ctx_unchanged });

	struct leap_pool_options po = { .size = sizeof(po), .cap_bytes = POOL_CAP,
					.pages = LEAP_PAGES_SMALL };
	begin("leap_pool_open/leap_pool_options: /dev/shm takes a pool");
	int rc = pool_call(&po);
	if (rc == 0) {
		leap_pool_close(&made_pool);
		unlink(pool_path);
		end();
		in_run(&(struct in_spec){ "leap_pool_open/leap_pool_options", sizeof(po), &po,
					  { offsetof(struct leap_pool_options, pages) }, pool_call,
					  pool_check, no_snap, pool_unchanged });
	} else {
		printf("SKIP-CASE %s: %s\n", case_name, leap_strerror(rc));
	}

	struct leap_region_options ro = { .size = sizeof(ro), .pages = LEAP_PAGES_SMALL };
	in_run(&(struct in_spec){ "leap_region_new_ex/leap_region_options", sizeof(ro), &ro,
				  { offsetof(struct leap_region_options, pool) }, region_call,
				  region_check, region_snap, region_unchanged });

	struct leap_job_options jo = { .size = sizeof(jo), .granularity_min = GRAN,
				       .granularity_max = GRAN, .status = status,
				       .done = on_done, .arg = &dones,
				       .stall_target_ns = 1000000 };
	/* cut before status[] and the callback: the job must still run, with neither */
	size_t jolds[2] = { offsetof(struct leap_job_options, status),
			    offsetof(struct leap_job_options, stall_target_ns) };
	via_pool = false;
	in_run(&(struct in_spec){ "page_leap_opts/leap_job_options", sizeof(jo), &jo,
				  { jolds[0], jolds[1] }, leap_call, leap_check, leap_snap,
				  leap_unchanged });
	via_pool = true;
	in_run(&(struct in_spec){ "page_leap_pool/leap_job_options", sizeof(jo), &jo,
				  { jolds[0], jolds[1] }, leap_call, leap_check, leap_snap,
				  leap_unchanged });

	struct leap_job_options co2 = { .size = sizeof(co2), .granularity_min = GRAN,
					.granularity_max = GRAN, .done = on_done, .arg = &dones };
	via_compact = false;
	in_run(&(struct in_spec){ "leap_node_evacuate/leap_job_options", sizeof(co2), &co2,
				  { jolds[0], jolds[1] }, coord_call, coord_check, coord_snap,
				  coord_unchanged });
	via_compact = true;
	in_run(&(struct in_spec){ "leap_pool_compact/leap_job_options", sizeof(co2), &co2,
				  { jolds[0], jolds[1] }, coord_call, coord_check, coord_snap,
				  coord_unchanged });
}

/* ---------------------------------------------------------------- outputs */

#define CANARY 0xa5
#define OUT_BUF 512

struct out_spec {
	const char *name;
	size_t sz;
	size_t last; /* offset of the last field */
	int (*call)(void *st);
	/* EXPECT the fields held whole or in part by the first n bytes of got match ref */
	void (*same)(const unsigned char *ref, const unsigned char *got, size_t n);
};

/* Bytes [off, off+len) of a field that fall within the first n agree. */
static void same_field(const unsigned char *ref, const unsigned char *got, size_t n, size_t off,
		       size_t len, const char *f)
{
	if (off >= n)
		return;
	if (off + len > n)
		len = n - off;
	EXPECT(!memcmp(ref + off, got + off, len), "field %s (%zu bytes written of it) differs",
	       f, len);
}
#define SAME(S, f) same_field(ref, got, n, offsetof(S, f), sizeof(((S *)0)->f), #f)

static void out_run(const struct out_spec *s)
{
	unsigned char ref[OUT_BUF], buf[OUT_BUF];
	memset(ref, 0, sizeof(ref));
	size_t sz = s->sz;
	memcpy(ref, &sz, sizeof(sz));
	OK(s->call(ref));
	size_t sizes[] = { 0,	       sizeof(size_t) - 1, sizeof(size_t), sizeof(size_t) + 3,
			   s->last, s->sz - 1,	       s->sz,	       s->sz + NEW_TAIL };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		begin("%s: size %zu of %zu%s", s->name, n, s->sz,
		      n < sizeof(size_t) ? " (less than the size field): EINVAL, nothing written"
		      : n < s->sz	  ? " (old): that many bytes written"
		      : n == s->sz	  ? " (exact)"
					  : " (new): sizeof bytes written, the rest untouched");
		memset(buf, CANARY, sizeof(buf));
		memcpy(buf, &n, sizeof(n));
		int rc = s->call(buf);
		size_t w = n < sizeof(size_t) ? 0 : n < s->sz ? n : s->sz;
		EXPECT(rc == (w ? 0 : -EINVAL), "returned %d", rc);
		size_t got_size;
		memcpy(&got_size, buf, sizeof(got_size));
		EXPECT(got_size == n, "size field %zu, want the caller's %zu", got_size, n);
		size_t from = w > sizeof(size_t) ? w : sizeof(size_t), touched = 0;
		for (size_t k = from; k < sizeof(buf); k++)
			touched += buf[k] != CANARY;
		EXPECT(!touched, "%zu bytes past the first %zu written", touched, w);
		if (w)
			s->same(ref, buf, w);
		end();
	}
}

static int node_call(void *st)
{
	return leap_topo_node(leap_ctx_topo(ctx), home, st);
}

static void node_same(const unsigned char *ref, const unsigned char *got, size_t n)
{
	typedef struct leap_node_info S;
	SAME(S, node);
	SAME(S, online);
	SAME(S, has_memory);
	SAME(S, ncpus);
	SAME(S, nearest_cpu_node);
	SAME(S, mem_total); /* mem_free is read anew each call */
}

static struct leap_pool *stats_pool;

static int pstats_call(void *st)
{
	return leap_pool_stats(stats_pool, st);
}

static void pstats_same(const unsigned char *ref, const unsigned char *got, size_t n)
{
	typedef struct leap_pool_stats S;
	SAME(S, node);
	SAME(S, cap_bytes);
	SAME(S, capacity_bytes);
	SAME(S, used_bytes);
	SAME(S, free_bytes);
	SAME(S, largest_free_bytes);
	SAME(S, extents_in_use);
	SAME(S, free_extents);
	SAME(S, pages);
	SAME(S, external);
	SAME(S, page_bytes);
	SAME(S, free_space_extents);
	SAME(S, largest_free_space_bytes);
}

static int rstats_call(void *st)
{
	return leap_region_stats(R, st);
}

static void rstats_same(const unsigned char *ref, const unsigned char *got, size_t n)
{
	typedef struct leap_region_stats S;
	SAME(S, length);
	SAME(S, runs);
	SAME(S, leaps);
	SAME(S, pages_moved);
	SAME(S, bytes_copied);
	SAME(S, copy_ns);
	SAME(S, remap_ns);
	SAME(S, last_worker_cpu);
	SAME(S, last_worker_node);
	SAME(S, metadata_bytes);
	SAME(S, write_faults);
	SAME(S, stall_max_ns);
	SAME(S, pages);
	SAME(S, huge_splits);
	SAME(S, huge_whole);
}

static struct leap_job *done_job; /* finished: its progress no longer changes */

static int prog_call(void *st)
{
	return leap_job_progress(done_job, st);
}

static void prog_same(const unsigned char *ref, const unsigned char *got, size_t n)
{
	typedef struct leap_progress S;
	SAME(S, state);
	SAME(S, error);
	SAME(S, pages_total);
	SAME(S, pages_done);
	SAME(S, pages_moved);
	SAME(S, pages_failed);
	SAME(S, bytes_copied);
	SAME(S, extents);
	SAME(S, granularity);
	SAME(S, granularity_min_seen);
	SAME(S, granularity_max_seen);
	SAME(S, write_faults);
	SAME(S, stall_p50_ns);
	SAME(S, stall_p99_ns);
	SAME(S, stall_max_ns);
	SAME(S, stall_total_ns);
	SAME(S, recopied_bytes);
	SAME(S, elapsed_ns);
	SAME(S, worker_cpu);
	SAME(S, retries);
}

static void outputs(void)
{
	out_run(&(struct out_spec){ "leap_topo_node/leap_node_info", sizeof(struct leap_node_info),
				    offsetof(struct leap_node_info, mem_free), node_call,
				    node_same });
	OK(leap_pool_get(ctx, home, &stats_pool));
	out_run(&(struct out_spec){ "leap_pool_stats/leap_pool_stats",
				    sizeof(struct leap_pool_stats),
				    offsetof(struct leap_pool_stats, largest_free_space_bytes),
				    pstats_call, pstats_same });
	out_run(&(struct out_spec){ "leap_region_stats/leap_region_stats",
				    sizeof(struct leap_region_stats),
				    offsetof(struct leap_region_stats, huge_whole), rstats_call,
				    rstats_same });
	OK(page_leap(R, Rp, Rlen, home, LEAP_RELOCATE | LEAP_NO_WRITERS, &done_job));
	OK(leap_job_wait(done_job, -1));
	out_run(&(struct out_spec){ "leap_job_progress/leap_progress", sizeof(struct leap_progress),
				    offsetof(struct leap_progress, retries), prog_call,
				    prog_same });
	leap_job_destroy(&done_job);
}

/* ---------------------------------------------------------------- the wait's clock */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_entered, gate_open;

/* The test seam: hold the job before its first extent until the gate opens. */
static void gate_hook(struct leap_job *j, struct leap_region *r, size_t offset)
{
	(void)j, (void)r, (void)offset;
	pthread_mutex_lock(&gate_mu);
	gate_entered = true;
	pthread_cond_broadcast(&gate_cv);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
}

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int64_t now_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return ns_of(&t);
}

static void clock_cases(void)
{
	const int64_t T = 50000000; /* 50 ms */

	/* The deadline lies T after now on CLOCK_MONOTONIC. Were it on CLOCK_REALTIME it
	 * would be decades away from that (the epoch against boot), so this tells the clock
	 * apart; it says nothing yet about the condition variable: the next case does. */
	begin("leap_job_wait: its deadline is on CLOCK_MONOTONIC");
	struct timespec dl;
	int64_t a = now_ns(CLOCK_MONOTONIC);
	leap__job_deadline(&dl, T);
	int64_t b = now_ns(CLOCK_MONOTONIC);
	EXPECT(ns_of(&dl) >= a + T && ns_of(&dl) <= b + T,
	       "deadline %" PRId64 " ns, monotonic now + 50 ms in [%" PRId64 ", %" PRId64 "]",
	       ns_of(&dl), a + T, b + T);
	EXPECT(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000, "tv_nsec %ld", dl.tv_nsec);
	end();

	/* A job held before its first extent: the wait must time out, and not before T has
	 * passed on CLOCK_MONOTONIC. With the deadline on the monotonic clock (above), a
	 * condition variable still on CLOCK_REALTIME would take it as decades past and time
	 * out at once, so this also proves the condition counts on CLOCK_MONOTONIC. */
	begin("leap_job_wait: 50 ms on a held job is -ETIMEDOUT after >= 50 ms monotonic");
	gate_entered = gate_open = false;
	leap__test_extent_hook = gate_hook;
	struct leap_job *j;
	OK(page_leap(R, Rp, Rlen, home, LEAP_RELOCATE | LEAP_NO_WRITERS, &j));
	pthread_mutex_lock(&gate_mu);
	while (!gate_entered)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	int64_t rc = leap_job_wait(j, T);
	int64_t took = now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT(rc == -ETIMEDOUT, "returned %" PRId64 " on a held job", rc);
	EXPECT(took >= T, "returned after %" PRId64 " ns, before 50 ms", took);
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	rc = leap_job_wait(j, -1);
	EXPECT(rc == (int64_t)(Rlen / PG), "the released job moved %" PRId64, rc);
	leap_job_destroy(&j);
	leap__test_extent_hook = NULL; /* no job runs now: no race with the job thread */
	check_pages(Rp, Rlen / PG, 7, "contents after the held job");
	say("measured leap_job_wait(50 ms) on a held job returned after %.1f ms", took / 1e6);
	end();
}

int main(void)
{
	t_name = "t_abi";
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = leap_ctx_new(NULL, &ctx);
	if (rc == -ENOSYS || rc == -EOPNOTSUPP)
		skip("no NUMA support");
	OK(rc);
	int nodes[64];
	if (mem_nodes(leap_ctx_topo(ctx), nodes, 64) < 1)
		skip("no node with memory");
	home = nodes[0];
	OK(leap_ctx_new(NULL, &ectx));
	OK(leap_region_new(ctx, Rlen, home, &R));
	Rp = leap_region_addr(R);
	fill_pages(Rp, Rlen / PG, 7);
	guard = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED || mprotect(guard + PG, PG, PROT_NONE) != 0)
		FAIL("guard page: %s", strerror(errno));

	inputs();
	outputs();
	clock_cases();

	leap_region_destroy(&R);
	leap_ctx_destroy(&ectx);
	leap_ctx_destroy(&ctx);
	munmap(guard, 2 * PG);
	if (cases_failed) {
		printf("%s: %d cases failed\n", t_name, cases_failed);
		return 1;
	}
	return 0;
}
