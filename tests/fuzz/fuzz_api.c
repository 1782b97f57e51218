/*
 * fuzz_api.c - libFuzzer harness for the public API (pageleap.h): the input is a
 * program of API calls on a few live handles (one context, up to 6 regions, 6 jobs,
 * 3 external pools, io declarations). After each step the harness checks what must
 * hold whatever the calls were:
 *   - contents: every region's bytes equal the shadow copy the harness writes through;
 *   - placement: with no job in flight, leap_node_of() equals the kernel's node for
 *     every page (move_pages status query);
 *   - stats: region length, runs in [1, pages], io_declared equal to the harness's own
 *     count; pools used <= capacity, free == capacity - used, largest free <= free;
 *   - calls: a call with an invalid argument returns -errno and hands out no handle;
 *     a finished job's done callback ran exactly once, and its status[] entries are
 *     all written (node or -errno) once it ended DONE or FAILED.
 * Any violation abort()s with a message. Everything is destroyed at the end of each
 * input (in an order the input picks), so no state leaks into the next.
 * Threads: the fuzzer's thread only (the library's workers run the jobs).
 * Build: make fuzz-build (tests/fuzz/fuzz.mk); run: make fuzz / make fuzz-ci.
 */
#include "pageleap.h"

#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG ((size_t)LEAP_PAGE_SIZE)
#define HP ((size_t)LEAP_HUGE_PAGE_SIZE)
#define MAX_REGIONS 6
#define MAX_JOBS 6
#define MAX_XPOOLS 3
#define MAX_IO 16
#define MAX_STEPS 64
#define LIVE_LIMIT (16u << 20) /* bytes of regions alive at once */

#define DIE(...)                                                                          \
	do {                                                                              \
		fprintf(stderr, "fuzz_api: invariant violated at step %d (%s): ", step, op);   \
		fprintf(stderr, __VA_ARGS__);                                                \
		fputc('\n', stderr);                                                         \
		abort();                                                                     \
	} while (0)

/* ------------------------------------------------------------------ input reader */

static const uint8_t *in;
static size_t in_left;
static int step;
static const char *op = "start";

static uint8_t u8(void)
{
	if (!in_left)
		return 0;
	in_left--;
	return *in++;
}
static uint32_t u32(void)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | u8();
	return v;
}
/* 0 .. n-1 */
static uint32_t pick(uint32_t n)
{
	return n ? (n <= 256 ? u8() % n : u32() % n) : 0;
}

/* ------------------------------------------------------------------ live handles */

struct region {
	struct leap_region *r;
	char *shadow;
	size_t len;
	int kind;
};
struct job {
	struct leap_job *j;
	int ri;		   /* region index, -1 for evacuate / compact */
	size_t off, len;   /* range (page_leap jobs) */
	bool no_writers;   /* LEAP_NO_WRITERS: the harness must not write the range */
	bool ended;	   /* leap_job_wait() returned a result */
	int *status;	   /* one per page, or NULL */
	size_t npages;
	atomic_int *done;  /* the done callback's count (heap: outlives a destroyed job) */
	int64_t result;
};
struct io {
	int ri;
	size_t off, len;
	unsigned flags;
};

static struct leap_ctx *ctx;
static bool ctx_nowp;
static struct region reg[MAX_REGIONS];
static struct job jobs[MAX_JOBS];
static struct leap_pool *xpool[MAX_XPOOLS];
static char xpath[MAX_XPOOLS][96];
static struct io ios[MAX_IO];
static int nio;
static size_t live_bytes;
static unsigned name_seq;

static void on_done(struct leap_job *j, void *arg)
{
	(void)j;
	if (arg) /* NULL: an older caller's options reached done but not arg */
		atomic_fetch_add((atomic_int *)arg, 1);
}

static int kernel_node(const void *p)
{
	void *pages[1] = { (void *)p };
	int st = -1;
	if (move_pages(0, 1, pages, NULL, &st, 0) != 0)
		return -1000 - errno;
	return st;
}

/* ------------------------------------------------------------------ invariants */

static bool any_job_running(void)
{
	for (int i = 0; i < MAX_JOBS; i++)
		if (jobs[i].j && !jobs[i].ended && leap_job_wait(jobs[i].j, 0) == -ETIMEDOUT)
			return true;
	return false;
}

/* a job that ended: its callback ran once, its status[] is complete */
static void job_ended(struct job *jb, int64_t rc)
{
	if (jb->ended)
		return;
	jb->ended = true;
	jb->result = rc;
	struct leap_progress p = { .size = sizeof(p) };
	if (leap_job_progress(jb->j, &p))
		DIE("leap_job_progress failed on an ended job");
	if (p.state != LEAP_JOB_DONE && p.state != LEAP_JOB_FAILED && p.state != LEAP_JOB_CANCELLED)
		DIE("job ended (result %lld) in state %d", (long long)rc, p.state);
	if (p.pages_done > p.pages_total || p.pages_moved + p.pages_failed > p.pages_done)
		DIE("progress: total %llu done %llu moved %llu failed %llu",
		    (unsigned long long)p.pages_total, (unsigned long long)p.pages_done,
		    (unsigned long long)p.pages_moved, (unsigned long long)p.pages_failed);
	if (p.state == LEAP_JOB_DONE && rc != (int64_t)p.pages_moved)
		DIE("DONE job returned %lld, moved %llu", (long long)rc,
		    (unsigned long long)p.pages_moved);
	if (p.state == LEAP_JOB_CANCELLED && rc != -ECANCELED)
		DIE("cancelled job returned %lld", (long long)rc);
	if (p.state == LEAP_JOB_FAILED && rc >= 0)
		DIE("failed job returned %lld", (long long)rc);
	if (jb->ri >= 0 && p.state == LEAP_JOB_DONE && p.pages_done != p.pages_total)
		DIE("DONE job handled %llu of %llu pages", (unsigned long long)p.pages_done,
		    (unsigned long long)p.pages_total);
	if (jb->done && atomic_load(jb->done) != 1)
		DIE("done callback ran %d times by the time wait returned", atomic_load(jb->done));
	if (jb->status) /* cancelled ones too: -ECANCELED for the pages never reached */
		for (size_t k = 0; k < jb->npages; k++)
			if (jb->status[k] == INT32_MIN)
				DIE("status[%zu] unwritten after the job ended in state %d", k, p.state);
}

static void check_region(int i, bool placement)
{
	struct region *g = &reg[i];
	char *p = leap_region_addr(g->r);
	if (!p || leap_region_length(g->r) != g->len)
		DIE("region %d: addr %p length %zu, want %zu", i, (void *)p,
		    leap_region_length(g->r), g->len);
	if ((uintptr_t)p % HP)
		DIE("region %d: address %p not 2 MiB aligned", i, (void *)p);
	if (memcmp(p, g->shadow, g->len)) {
		size_t k = 0;
		while (p[k] == g->shadow[k])
			k++;
		DIE("region %d: byte %zu is %02x, shadow %02x", i, k, (unsigned char)p[k],
		    (unsigned char)g->shadow[k]);
	}
	struct leap_region_stats s = { .size = sizeof(s) };
	if (leap_region_stats(g->r, &s))
		DIE("region %d: leap_region_stats failed", i);
	uint64_t declared = 0;
	for (int k = 0; k < nio; k++)
		declared += ios[k].ri == i;
	if (s.length != g->len || s.runs < 1 || s.runs > g->len / PG || s.pages != g->kind ||
	    s.io_declared != declared || s.bytes_copied < s.pages_moved * PG)
		DIE("region %d stats: length %llu runs %llu pages %d io_declared %llu (want %llu) "
		    "moved %llu copied %llu",
		    i, (unsigned long long)s.length, (unsigned long long)s.runs, s.pages,
		    (unsigned long long)s.io_declared, (unsigned long long)declared,
		    (unsigned long long)s.pages_moved, (unsigned long long)s.bytes_copied);
	if (!placement)
		return;
	for (size_t off = 0; off < g->len; off += PG) {
		int lib = leap_node_of(g->r, p + off);
		int kn = kernel_node(p + off);
		if (lib != kn)
			DIE("region %d page %zu: library node %d, kernel %d", i, off / PG, lib, kn);
	}
}

static void check_pool(struct leap_pool *pool, const char *what)
{
	struct leap_pool_stats s = { .size = sizeof(s) };
	if (leap_pool_stats(pool, &s))
		DIE("%s: leap_pool_stats failed", what);
	if (s.used_bytes > s.capacity_bytes || s.free_bytes != s.capacity_bytes - s.used_bytes ||
	    s.largest_free_bytes > s.free_bytes || s.capacity_bytes > s.cap_bytes ||
	    (s.page_bytes != PG && s.page_bytes != HP) || s.capacity_bytes % PG ||
	    /* a THP pool holds the small pages of split huge pages too (pageleap(7)) */
	    (s.pages == LEAP_PAGES_HUGETLB && s.capacity_bytes % HP) ||
	    (s.used_bytes == 0) != (s.extents_in_use == 0) ||
	    (s.free_bytes == 0) != (s.free_extents == 0))
		DIE("%s stats (pages %d): cap %llu capacity %llu used %llu free %llu largest %llu in_use %llu "
		    "free_extents %llu page %llu",
		    what, s.pages, (unsigned long long)s.cap_bytes, (unsigned long long)s.capacity_bytes,
		    (unsigned long long)s.used_bytes, (unsigned long long)s.free_bytes,
		    (unsigned long long)s.largest_free_bytes,
		    (unsigned long long)s.extents_in_use, (unsigned long long)s.free_extents,
		    (unsigned long long)s.page_bytes);
}

static void check_all(void)
{
	for (int i = 0; i < MAX_JOBS; i++)
		if (jobs[i].j && !jobs[i].ended) {
			int64_t rc = leap_job_wait(jobs[i].j, 0);
			if (rc != -ETIMEDOUT)
				job_ended(&jobs[i], rc);
		}
	bool placement = !any_job_running();
	for (int i = 0; i < MAX_REGIONS; i++)
		if (reg[i].r)
			check_region(i, placement);
	for (int i = 0; i < MAX_XPOOLS; i++)
		if (xpool[i])
			check_pool(xpool[i], "external pool");
	if (ctx)
		for (int kind = 0; kind < 3; kind++) {
			struct leap_pool *p = NULL;
			if (leap_pool_get_kind(ctx, 0, kind, &p) == 0)
				check_pool(p, "node pool");
		}
}

/* ------------------------------------------------------------------ choices */

static int pick_node(void)
{
	static const int nodes[] = { 0, 0, 0, 0, 0, 1, -1, 63, 1024, INT32_MIN };
	return nodes[pick(sizeof(nodes) / sizeof(nodes[0]))];
}

static unsigned pick_flags(void)
{
	uint8_t b = u8();
	unsigned f = b & 0x1f;
	if (b & 0x80)
		f |= 1u << (5 + (b >> 5 & 3)); /* an unknown bit */
	return f;
}

static int live_region(void)
{
	int n = 0, idx[MAX_REGIONS];
	for (int i = 0; i < MAX_REGIONS; i++)
		if (reg[i].r)
			idx[n++] = i;
	return n ? idx[pick((uint32_t)n)] : -1;
}

static int free_slot_region(void)
{
	for (int i = 0; i < MAX_REGIONS; i++)
		if (!reg[i].r)
			return i;
	return -1;
}

static int free_slot_job(void)
{
	for (int i = 0; i < MAX_JOBS; i++)
		if (!jobs[i].j)
			return i;
	return -1;
}

static int live_job(void)
{
	int n = 0, idx[MAX_JOBS];
	for (int i = 0; i < MAX_JOBS; i++)
		if (jobs[i].j)
			idx[n++] = i;
	return n ? idx[pick((uint32_t)n)] : -1;
}

/* a length: mostly small valid multiples of the unit, sometimes bad */
static size_t pick_len(size_t unit, size_t maxlen, bool *bad)
{
	uint8_t m = u8();
	*bad = false;
	switch (m % 16) {
	case 0:
		*bad = true;
		return 0;
	case 1:
		*bad = true;
		return unit * (1 + pick(4)) + 1 + pick(PG - 1);
	case 2:
		*bad = true;
		return (u8() & 1 ? SIZE_MAX : SIZE_MAX & ~(PG - 1)) - pick(1u << 20) * PG;
	default: {
		size_t units = maxlen / unit;
		if (!units)
			units = 1;
		size_t n = m < 200 ? 1 + pick((uint32_t)(units < 16 ? units : 16))
				   : 1 + pick((uint32_t)units);
		return n * unit;
	}
	}
}

/* a range in region g: valid (aligned, inside), or misaligned, or outside */
static void pick_range(struct region *g, char **addr, size_t *len, int *bad)
{
	size_t unit = g->kind == LEAP_PAGES_HUGETLB ? HP : PG;
	size_t units = g->len / unit;
	uint8_t m = u8();
	char *base = leap_region_addr(g->r);
	size_t a = pick((uint32_t)units), n = 1 + pick((uint32_t)(units - a));
	*addr = base + a * unit;
	*len = n * unit;
	*bad = 0;
	switch (m % 12) {
	case 0:
		*addr += 1 + pick(PG - 1);
		*bad = 1;
		break;
	case 1:
		*len += 1 + pick(PG - 1);
		*bad = 1;
		break;
	case 2:
		*len = g->len - a * unit + PG * (1 + pick(8)); /* runs past the end */
		*bad = 1;
		break;
	case 3:
		*addr = base - PG * (1 + pick(4)); /* starts before it */
		*bad = 1;
		break;
	case 4:
		*len = 0;
		*bad = 1;
		break;
	case 5:
		*addr = base;
		*len = g->len;
		break;
	case 6:
		if (g->kind != LEAP_PAGES_HUGETLB && units) { /* small pieces of huge pages */
			size_t pages = g->len / PG, s = pick((uint32_t)pages);
			*addr = base + s * PG;
			*len = (1 + pick((uint32_t)(pages - s))) * PG;
		}
		break;
	default:
		break;
	}
}

static void write_region(int i, size_t off, size_t len, uint8_t v)
{
	memset(reg[i].shadow + off, v, len);
	memset((char *)leap_region_addr(reg[i].r) + off, v, len);
}

/* may the harness write [off, off+len) of region i now? (no LEAP_NO_WRITERS move on it) */
static bool writable(int i, size_t off, size_t len)
{
	for (int k = 0; k < MAX_JOBS; k++) {
		struct job *jb = &jobs[k];
		if (!jb->j || !jb->no_writers || jb->ended)
			continue;
		if (leap_job_wait(jb->j, 0) != -ETIMEDOUT)
			continue;
		if (jb->ri < 0)
			return false;
		if (jb->ri == i && off < jb->off + jb->len && jb->off < off + len)
			return false;
	}
	return true;
}

/* a move of region i without LEAP_SKIP_BUSY waits for short-term io declarations to
 * end: the harness is the only thread that could end them, so never wait for one */
static bool io_short(int i)
{
	for (int k = 0; k < nio; k++)
		if ((i < 0 || ios[k].ri == i) && !(ios[k].flags & LEAP_IO_LONGTERM))
			return true;
	return false;
}

/* ------------------------------------------------------------------ teardown */

static void drop_ios(int ri)
{
	for (int k = 0; k < nio;)
		if (ios[k].ri == ri)
			ios[k] = ios[--nio];
		else
			k++;
}

static void job_destroy(int k)
{
	struct job *jb = &jobs[k];
	leap_job_destroy(&jb->j);
	if (jb->j)
		DIE("leap_job_destroy left the handle set");
	if (jb->done && atomic_load(jb->done) != 1)
		DIE("done callback ran %d times by the time destroy returned", atomic_load(jb->done));
	free(jb->status);
	free(jb->done);
	memset(jb, 0, sizeof(*jb));
}

static void region_destroy(int i)
{
	struct region *g = &reg[i];
	check_region(i, false);
	/* destroy cancels and waits for the region's jobs: with short-term declarations
	 * on it, those would wait for leap_io_end(); the declarations go with the region */
	leap_region_destroy(&g->r);
	if (g->r)
		DIE("leap_region_destroy left the handle set");
	drop_ios(i);
	live_bytes -= g->len;
	free(g->shadow);
	memset(g, 0, sizeof(*g));
	for (int k = 0; k < MAX_JOBS; k++)
		if (jobs[k].j && jobs[k].ri == i) {
			/* destroy returns once the region's jobs stopped using it; each then ends
			 * on its own thread (state, callback, waiters), or, queued behind other
			 * jobs on its worker, when the worker reaches it */
			int64_t rc = leap_job_wait(jobs[k].j, 10 * 1000000000ll);
			if (rc == -ETIMEDOUT)
				DIE("job of a destroyed region still running 10 s later");
			job_ended(&jobs[k], rc);
			jobs[k].ri = -2; /* its region is gone */
		}
}

static void xpool_close(int i)
{
	leap_pool_close(&xpool[i]);
	if (xpool[i])
		DIE("leap_pool_close left the handle set");
	if (xpath[i][0]) {
		unlink(xpath[i]);
		xpath[i][0] = 0;
	}
}

static void teardown(void)
{
	op = "teardown";
	/* end the short-term io declarations first: a job destroy waits for its move,
	 * which may be waiting for them */
	while (nio) {
		struct io *d = &ios[nio - 1];
		if (leap_io_end(reg[d->ri].r, (char *)leap_region_addr(reg[d->ri].r) + d->off,
				d->len, d->flags))
			DIE("leap_io_end of a declaration in force failed");
		nio--;
	}
	uint8_t order = u8();
	if (order & 1)
		for (int k = 0; k < MAX_JOBS; k++)
			if (jobs[k].j)
				job_destroy(k);
	if (order & 2) {
		leap_ctx_destroy(&ctx);
		if (ctx)
			DIE("leap_ctx_destroy left the handle set");
	}
	if (order & 4)
		for (int i = 0; i < MAX_XPOOLS; i++)
			if (xpool[i])
				xpool_close(i);
	for (int i = MAX_REGIONS - 1; i >= 0; i--)
		if (reg[i].r)
			region_destroy(i);
	for (int k = 0; k < MAX_JOBS; k++)
		if (jobs[k].j)
			job_destroy(k);
	for (int i = 0; i < MAX_XPOOLS; i++)
		if (xpool[i])
			xpool_close(i);
	leap_ctx_destroy(&ctx);
	live_bytes = 0;
	nio = 0;
}

/* ------------------------------------------------------------------ steps */

static void do_ctx_new(void)
{
	op = "leap_ctx_new";
	static const uint64_t caps[] = { 0, 0, 1u << 20, 4u << 20, 8u << 20, 64u << 20, 12345,
					 UINT64_MAX };
	static const uint64_t chunks[] = { 0, 0, 2u << 20, 64u << 20, 4096, 4097, 1u << 30 };
	/* a newer caller's struct: the library's followed by a tail it does not know */
	struct {
		struct leap_ctx_options o;
		unsigned char tail[16];
	} big = { .o = { .size = sizeof(big.o) } };
	struct leap_ctx_options *op_ = &big.o;
#define o (*op_)
	uint8_t m = u8();
	o.pool_cap_bytes = caps[m & 7];
	o.workers_per_node = m >> 3 & 3;
	o.flags = (m & 0x20) ? LEAP_CTX_NO_WRITE_PROTECT : 0;
	if (m & 0x40)
		o.flags |= 0x100;
	o.pool_map_chunk_bytes = chunks[pick(sizeof(chunks) / sizeof(chunks[0]))];
	if (m & 0x80) {
		o.size = pick(sizeof(big) + 1);
		if (u8() & 1)
			big.tail[pick(16)] = 1; /* something this version lacks: -E2BIG */
	}
#undef o
	struct leap_ctx_options o = big.o;
	int rc = leap_ctx_new(op_, &ctx);
	if (rc) {
		if (ctx)
			DIE("leap_ctx_new failed (%d) but set *out", rc);
		rc = leap_ctx_new(NULL, &ctx);
		if (rc)
			DIE("leap_ctx_new(NULL) failed: %d", rc);
		o.flags = 0;
	}
	ctx_nowp = o.flags & LEAP_CTX_NO_WRITE_PROTECT;
}

static void do_region_new(int how)
{
	op = how == 0 ? "leap_region_new" : how == 1 ? "leap_region_new_placed" : "leap_region_new_ex";
	int i = free_slot_region();
	if (i < 0)
		return;
	int kind = LEAP_PAGES_SMALL;
	struct leap_region_options ro = { .size = sizeof(ro) };
	bool use_pool = false;
	if (how == 2) {
		uint8_t m = u8();
		kind = m % 4 == 3 ? 7 : m % 4 == 2 ? (m & 4 ? LEAP_PAGES_HUGETLB : LEAP_PAGES_THP)
						   : m % 4;
		ro.pages = kind;
		if (m & 0x10) {
			int x = pick(MAX_XPOOLS);
			ro.pool = xpool[x];
			use_pool = ro.pool != NULL;
		}
	}
	bool kind_bad = kind > 2;
	size_t unit = kind == LEAP_PAGES_SMALL || kind_bad ? PG : HP;
	bool bad;
	size_t len = pick_len(unit, kind == LEAP_PAGES_SMALL ? 1024 * PG : 2 * HP, &bad);
	if (!bad && len > LIVE_LIMIT - live_bytes)
		return;
	struct leap_place pl[4];
	size_t npl = 0;
	bool place_bad = false;
	int node = pick_node();
	if (how >= 1 && !use_pool && !bad) {
		size_t units = len / unit, at = 0;
		npl = 1 + pick(4);
		for (size_t k = 0; k < npl; k++) {
			size_t n = k + 1 == npl ? units - at : pick((uint32_t)(units - at + 1));
			pl[k] = (struct leap_place){ at * unit, n * unit, pick_node() };
			if (pl[k].node != 0 || n == 0)
				place_bad = true;
			at += n;
		}
		uint8_t m = u8();
		if (m % 8 == 0) { /* a gap or overlap */
			pl[npl - 1].length += (m & 8) ? PG : -PG;
			place_bad = true;
		} else if (m % 8 == 1 && npl > 1) { /* unsorted */
			struct leap_place t = pl[0];
			pl[0] = pl[npl - 1];
			pl[npl - 1] = t;
			place_bad = true;
		}
	} else if (how == 0 && node != 0) {
		place_bad = true;
	}
	struct leap_region *r = NULL;
	int rc;
	if (how == 0)
		rc = leap_region_new(ctx, len, node, &r);
	else if (how == 1)
		rc = leap_region_new_placed(ctx, len, npl ? pl : NULL, npl, &r);
	else
		rc = leap_region_new_ex(ctx, len, use_pool ? NULL : (npl ? pl : NULL), use_pool ? 0 : npl,
					&ro, &r);
	bool invalid = bad || kind_bad || (how == 1 && !npl) || (how != 2 ? place_bad :
				(!use_pool && npl ? place_bad : false));
	if (rc) {
		if (r)
			DIE("failed (%d) but set *out", rc);
		return;
	}
	if (!r)
		DIE("returned 0 without a region");
	if (invalid)
		DIE("accepted an invalid call (len %zu kind %d node %d nplace %zu)", len, kind, node,
		    npl);
	struct leap_region_stats s = { .size = sizeof(s) };
	if (leap_region_stats(r, &s))
		DIE("stats of a new region failed");
	reg[i] = (struct region){ r, calloc(1, len), len, s.pages };
	if (!reg[i].shadow)
		abort();
	if (!use_pool && s.pages != kind)
		DIE("region of kind %d reports pages %d", kind, s.pages);
	live_bytes += len;
	char *p = leap_region_addr(r);
	for (size_t k = 0; k < len; k += PG)
		if (p[k] || p[k + PG - 1])
			DIE("new region not zero-filled at %zu", k);
}

static void do_write(void)
{
	op = "write";
	int i = live_region();
	if (i < 0)
		return;
	size_t pages = reg[i].len / PG, a = pick((uint32_t)pages);
	size_t n = 1 + pick((uint32_t)(pages - a < 64 ? pages - a : 64));
	size_t off = a * PG + pick(PG), len = n * PG - (off - a * PG);
	if (off + len > reg[i].len)
		len = reg[i].len - off;
	if (!writable(i, off, len))
		return;
	write_region(i, off, len, u8() | 1);
}

static struct leap_job_options *pick_job_opts(struct leap_job_options *o, struct job *jb,
					      size_t npages, bool *bad)
{
	static const size_t grans[] = { 0, 4096, 8192, 65536, 2u << 20, 4u << 20, 1u << 30,
					(1u << 30) + 4096, 4097, 12288 };
	uint8_t m = u8();
	*bad = false;
	if (!(m & 1))
		return NULL;
	*o = (struct leap_job_options){ .size = sizeof(*o) };
	o->granularity_min = grans[pick(10)];
	o->granularity_max = grans[pick(10)];
	if (o->granularity_min % PG || o->granularity_max % PG ||
	    (o->granularity_max && o->granularity_min > o->granularity_max) ||
	    o->granularity_max > (1u << 30) || o->granularity_min > (1u << 30))
		*bad = true;
	if (m & 2 && npages) {
		jb->status = malloc(npages * sizeof(int));
		if (!jb->status)
			abort();
		for (size_t k = 0; k < npages; k++)
			jb->status[k] = INT32_MIN;
		jb->npages = npages;
		o->status = jb->status;
	}
	if (m & 4) {
		jb->done = calloc(1, sizeof(*jb->done));
		if (!jb->done)
			abort();
		o->done = on_done;
		o->arg = jb->done;
	}
	if (m & 8)
		o->stall_target_ns = (uint64_t)u8() * 1000;
	if (m & 0x10) { /* an older caller's smaller struct: the fields past it are unseen */
		static const size_t ends[] = {
			offsetof(struct leap_job_options, granularity_min) + sizeof(size_t),
			offsetof(struct leap_job_options, granularity_max) + sizeof(size_t),
			offsetof(struct leap_job_options, status) + sizeof(int *),
			offsetof(struct leap_job_options, arg) + sizeof(void *),
		};
		o->size = ends[pick(4)]; /* where an older version's struct ended */
		if (o->size < offsetof(struct leap_job_options, granularity_max) + sizeof(size_t))
			*bad = false;
		if (o->size < offsetof(struct leap_job_options, status) + sizeof(int *)) {
			free(jb->status);
			jb->status = NULL;
		}
		if (o->size < offsetof(struct leap_job_options, arg) + sizeof(void *)) {
			free(jb->done);
			jb->done = NULL;
		}
	}
	return o;
}

static void start_job(int how)
{
	static const char *names[] = { "page_leap", "page_leap_opts", "page_leap_pool",
				       "leap_node_evacuate", "leap_pool_compact" };
	op = names[how];
	int k = free_slot_job();
	int i = how <= 2 ? live_region() : -1;
	if (how <= 2 && i < 0)
		return;
	uint8_t m = u8();
	/* a synchronous call may wait for a job in flight (its range, its worker), and that
	 * job for a short-term declaration only the harness could end: async then */
	bool must_async = io_short(-1) && any_job_running();
	if (must_async && k < 0)
		return;
	bool async = k >= 0 && (!(m & 1) || must_async);
	struct job jb = { .ri = i };
	char *addr = NULL;
	size_t len = 0;
	int bad = 0;
	unsigned flags = pick_flags();
	if (how <= 2)
		pick_range(&reg[i], &addr, &len, &bad);
	if (flags & ~0x1fu || (flags & LEAP_HUGE_WHOLE && flags & LEAP_HUGE_SPLIT))
		bad = 1;
	/* never wait (synchronously, or in a job the harness cannot end) for a declaration
	 * only the harness could end */
	if (io_short(i))
		flags |= LEAP_SKIP_BUSY;
	if (ctx_nowp)
		flags |= m & 2 ? LEAP_NO_WRITERS : 0;
	if (flags & LEAP_NO_WRITERS && !async && (m & 4))
		flags &= ~LEAP_NO_WRITERS;
	struct leap_pool *pool = NULL;
	if (how == 2 || how == 4) {
		uint8_t pm = u8();
		if (pm & 1)
			pool = xpool[pick(MAX_XPOOLS)];
		else if (ctx)
			leap_pool_get_kind(ctx, 0, pm >> 1 & 3, &pool);
		if (!pool)
			return;
	}
	struct leap_job_options o, *opts = NULL;
	bool obad = false;
	size_t npages = bad ? 0 : len / PG;
	if (how != 0)
		opts = pick_job_opts(&o, &jb, how <= 2 ? npages : 0, &obad);
	struct leap_job *j = NULL;
	int64_t rc;
	int node = pick_node();
	jb.no_writers = flags & LEAP_NO_WRITERS;
	jb.off = addr ? (size_t)(addr - (char *)leap_region_addr(reg[i < 0 ? 0 : i].r)) : 0;
	jb.len = len;
	struct leap_job **out = async ? &j : NULL;
	switch (how) {
	case 0:
		rc = page_leap(reg[i].r, addr, len, node, flags, out);
		break;
	case 1:
		rc = page_leap_opts(reg[i].r, addr, len, node, flags, opts, out);
		break;
	case 2:
		rc = page_leap_pool(reg[i].r, addr, len, pool, flags, opts, out);
		break;
	case 3:
		rc = leap_node_evacuate(ctx, node, flags, opts, out);
		break;
	default:
		rc = leap_pool_compact(pool, flags, opts, out);
		break;
	}
	bool invalid = bad || ((how <= 1 || how == 3) && node != 0) || obad;
	if (invalid && rc >= 0)
		DIE("accepted an invalid call (rc %lld, flags %#x, node %d, offset %td len %zu of "
		    "region %zu, bad range %d options %d)",
		    (long long)rc, flags, node,
		    addr ? addr - (char *)leap_region_addr(reg[i].r) : 0, len,
		    i >= 0 ? reg[i].len : 0, bad, obad);
	if (rc < 0 || !async) {
		if (j)
			DIE("returned %lld and set *job", (long long)rc);
		if (!async && rc >= 0 && jb.status && how <= 2)
			for (size_t p = 0; p < jb.npages; p++)
				if (jb.status[p] == INT32_MIN)
					DIE("synchronous call: status[%zu] unwritten", p);
		if (!async && rc >= 0 && jb.done && atomic_load(jb.done) != 1)
			DIE("synchronous call returned, done callback ran %d times",
			    atomic_load(jb.done));
		free(jb.status);
		free(jb.done);
		return;
	}
	if (!j)
		DIE("async call returned 0 without a job");
	jb.j = j;
	jobs[k] = jb;
}

static void do_wait(void)
{
	op = "leap_job_wait";
	int k = live_job();
	if (k < 0)
		return;
	static const int64_t t[] = { 0, 1000, 100000, 1000000, 5000000, 20000000 };
	int64_t rc = leap_job_wait(jobs[k].j, t[pick(6)]);
	if (rc == -ETIMEDOUT)
		return;
	job_ended(&jobs[k], rc);
	int64_t again = leap_job_wait(jobs[k].j, 0);
	if (again != rc)
		DIE("wait returned %lld, then %lld", (long long)rc, (long long)again);
}

static void do_cancel(void)
{
	op = "leap_job_cancel";
	int k = live_job();
	if (k < 0)
		return;
	int rc = leap_job_cancel(jobs[k].j);
	if (rc && rc != -EALREADY && rc != -EINVAL && rc != -ESRCH)
		DIE("leap_job_cancel: %d", rc);
}

static void do_job_destroy(void)
{
	op = "leap_job_destroy";
	int k = live_job();
	if (k < 0)
		return;
	if (!jobs[k].ended && jobs[k].ri >= 0 && io_short(-1)) /* (see io_short) */
		return;
	job_destroy(k);
}

static void do_region_destroy(void)
{
	op = "leap_region_destroy";
	int i = live_region();
	if (i < 0)
		return;
	region_destroy(i);
}

static void do_pool(void)
{
	op = "pool";
	uint8_t m = u8();
	struct leap_pool *p = NULL;
	int x = pick(MAX_XPOOLS);
	switch (m % 6) {
	case 0: {
		op = "leap_pool_get";
		int node = pick_node(), kind = pick(4);
		int rc = leap_pool_get_kind(ctx, node, kind, &p);
		if (rc == 0 && (node != 0 || kind > 2))
			DIE("leap_pool_get_kind(%d, %d) accepted", node, kind);
		if (rc == 0)
			check_pool(p, "leap_pool_get");
		break;
	}
	case 1: {
		op = "leap_pool_open";
		if (xpool[x])
			return;
		struct leap_pool_options o = { .size = sizeof(o) };
		static const uint64_t caps[] = { 0, 1u << 20, 4u << 20, 4097, 16u << 20 };
		o.cap_bytes = caps[pick(5)];
		o.pages = pick(4);
		const char *path = "/dev/shm";
		if (m & 0x10) {
			snprintf(xpath[x], sizeof(xpath[x]), "/dev/shm/pageleap-fuzz-%d-%u", (int)getpid(),
				 name_seq++);
			path = xpath[x];
			if (m & 0x20) { /* a file that is not empty */
				int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
				if (fd >= 0) {
					if (write(fd, "x", 1) != 1)
						abort();
					close(fd);
				}
			}
		}
		int node = pick_node();
		int rc = leap_pool_open(ctx, path, node, &o, &xpool[x]);
		if (rc) {
			if (xpool[x])
				DIE("failed (%d) but set *out", rc);
			if (xpath[x][0]) {
				unlink(xpath[x]);
				xpath[x][0] = 0;
			}
			return;
		}
		if (node != 0 || o.pages > 2 || (m & 0x30) == 0x30)
			DIE("accepted node %d pages %d (non-empty file: %d)", node, o.pages,
			    (m & 0x30) == 0x30);
		check_pool(xpool[x], "opened pool");
		break;
	}
	case 2:
		op = "leap_pool_close";
		if (xpool[x])
			xpool_close(x);
		break;
	case 3: {
		op = "leap_pool_set_cap";
		p = xpool[x];
		if (!p || (m & 0x40))
			leap_pool_get_kind(ctx, 0, m >> 3 & 3, &p);
		if (!p)
			return;
		static const uint64_t caps[] = { 0, 4096, 1u << 20, 8u << 20, 64u << 20, 4097,
						 UINT64_MAX };
		int rc = leap_pool_set_cap(p, caps[pick(7)]);
		if (rc && rc != -EBUSY && rc != -EINVAL)
			DIE("leap_pool_set_cap: %d", rc);
		check_pool(p, "set_cap");
		break;
	}
	case 4: {
		op = "leap_pool_trim";
		p = xpool[x];
		if (!p || (m & 0x40))
			leap_pool_get_kind(ctx, 0, m >> 3 & 3, &p);
		if (!p)
			return;
		struct leap_pool_stats before = { .size = sizeof(before) };
		if (leap_pool_stats(p, &before))
			DIE("stats failed");
		int64_t rc = leap_pool_trim(p);
		if (rc < 0)
			DIE("leap_pool_trim: %lld", (long long)rc);
		if (!any_job_running() && (uint64_t)rc > before.free_bytes)
			DIE("trim released %lld, %llu were free", (long long)rc,
			    (unsigned long long)before.free_bytes);
		check_pool(p, "trim");
		break;
	}
	default: {
		op = "leap_pool_stats";
		p = xpool[x];
		if (p) {
			struct leap_pool_stats s = { .size = 8 + pick(sizeof(s)) };
			int rc = leap_pool_stats(p, &s);
			(void)rc;
		}
		break;
	}
	}
}

static void do_io(bool begin)
{
	op = begin ? "leap_io_begin" : "leap_io_end";
	if (!begin && nio && (u8() & 1)) {
		int k = pick((uint32_t)nio);
		struct io d = ios[k];
		int rc = leap_io_end(reg[d.ri].r, (char *)leap_region_addr(reg[d.ri].r) + d.off, d.len,
				     d.flags);
		if (rc)
			DIE("leap_io_end of a declaration in force: %d", rc);
		ios[k] = ios[--nio];
		return;
	}
	int i = live_region();
	if (i < 0)
		return;
	char *addr;
	size_t len;
	int bad;
	pick_range(&reg[i], &addr, &len, &bad);
	if (bad == 1 && len && (char *)addr >= (char *)leap_region_addr(reg[i].r) &&
	    (size_t)(addr - (char *)leap_region_addr(reg[i].r)) + len <= reg[i].len)
		bad = 0; /* io ranges are rounded out to pages: misaligned is fine */
	unsigned flags = u8() & 1 ? LEAP_IO_LONGTERM : 0;
	if (u8() == 0xff)
		flags |= 2, bad = 1;
	char *base = leap_region_addr(reg[i].r);
	if (!begin) { /* no such declaration (unless it happens to match one) */
		for (int k = 0; k < nio; k++)
			if (ios[k].ri == i)
				return; /* it might match one: ending that is the branch above */
		if (leap_io_end(reg[i].r, addr, len, flags) == 0)
			DIE("leap_io_end without a declaration succeeded");
		return;
	}
	if (nio == MAX_IO)
		return;
	int rc = leap_io_begin(reg[i].r, addr, len, flags);
	if (rc == 0 && bad)
		DIE("leap_io_begin accepted a bad range (off %td len %zu flags %#x)", addr - base, len,
		    flags);
	if (rc == 0) {
		/* rounded out to pages (huge pages in huge regions): remember the rounding */
		size_t unit = reg[i].kind == LEAP_PAGES_SMALL ? PG : HP;
		size_t off = (size_t)(addr - base), a = off / unit * unit;
		size_t e = (off + len + unit - 1) / unit * unit;
		ios[nio++] = (struct io){ i, a, e - a, flags };
	} else if (rc != -EINVAL && rc != -EFAULT && rc != -ENOMEM) {
		DIE("leap_io_begin: %d", rc);
	}
}

static void do_query(void)
{
	op = "leap_node_of / stats";
	int i = live_region();
	if (i < 0) {
		if (leap_node_of(NULL, NULL) != -EINVAL)
			DIE("leap_node_of(NULL) not -EINVAL");
		return;
	}
	char *base = leap_region_addr(reg[i].r);
	uint32_t off = u32();
	const char *a = base + (int64_t)(int32_t)off % (int64_t)(reg[i].len * 2);
	int n = leap_node_of(reg[i].r, a);
	bool inside = a >= base && a < base + reg[i].len;
	if (inside ? n < 0 : n != -EFAULT)
		DIE("leap_node_of(%+td of %zu) = %d", a - base, reg[i].len, n);
	struct leap_region_stats s = { .size = 8 + pick(sizeof(s)) };
	(void)leap_region_stats(reg[i].r, &s);
}

/* ------------------------------------------------------------------ entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in = data;
	in_left = size;
	step = 0;
	do_ctx_new();
	while (in_left && step < MAX_STEPS) {
		step++;
		switch (u8() % 20) {
		case 0:
		case 1:
			do_region_new(0);
			break;
		case 2:
			do_region_new(1);
			break;
		case 3:
			do_region_new(2);
			break;
		case 4:
		case 5:
			do_write();
			break;
		case 6:
			start_job(0);
			break;
		case 7:
			start_job(1);
			break;
		case 8:
			start_job(2);
			break;
		case 9:
			start_job(3);
			break;
		case 10:
			start_job(4);
			break;
		case 11:
		case 12:
			do_wait();
			break;
		case 13:
			do_cancel();
			break;
		case 14:
			do_job_destroy();
			break;
		case 15:
			do_region_destroy();
			break;
		case 16:
			do_pool();
			break;
		case 17:
			do_io(true);
			break;
		case 18:
			do_io(false);
			break;
		default:
			do_query();
			break;
		}
		op = "check";
		check_all();
	}
	teardown();
	return 0;
}
