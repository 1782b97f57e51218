/*
 * util.h - helpers shared by the test programs (header only: each test is one file).
 *
 * Exit codes: 0 pass, 1 fail, 77 skip. Placement is always cross-checked with the kernel
 * (move_pages status query), never taken from the library alone.
 */
#ifndef LEAP_TEST_UTIL_H
#define LEAP_TEST_UTIL_H

#include "pageleap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numa.h>
#include <numaif.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PG ((size_t)LEAP_PAGE_SIZE)

static const char *t_name = "test";

/* Set by run_cases() in a case's process: FAIL also writes its reason there (a page
 * shared with the runner), so the runner's "FAIL name: reason" line can carry it. */
static char *t_reason;
#define T_REASON_MAX 512

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "%s: FAIL at %s:%d: ", t_name, __FILE__, __LINE__);    \
		fprintf(stderr, __VA_ARGS__);                                          \
		fprintf(stderr, "\n");                                                 \
		if (t_reason)                                                          \
			snprintf(t_reason, T_REASON_MAX, __VA_ARGS__);                 \
		exit(1);                                                               \
	} while (0)
#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s: FAIL at %s:%d: check '%s' failed: ", t_name, \
				__FILE__, __LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                                  \
			fprintf(stderr, "\n");                                        \
			if (t_reason)                                                  \
				snprintf(t_reason, T_REASON_MAX, __VA_ARGS__);         \
			exit(1);                                                       \
		}                                                                      \
	} while (0)
/* A library call that must succeed (return >= 0). */
#define OK(call)                                                                       \
	({                                                                             \
		long long ok_rc_ = (long long)(call);                                  \
		if (ok_rc_ < 0)                                                        \
			FAIL("%s returned %lld (%s%s%s)", #call, ok_rc_,               \
			     leap_strerror((int)ok_rc_),                               \
			     ok_rc_ == -EOPNOTSUPP ? ": " : "",                        \
			     ok_rc_ == -EOPNOTSUPP ? leap_errormsg() : "");            \
		ok_rc_;                                                                \
	})
/* A library call that must fail with exactly -err. */
#define ERR(call, err)                                                                 \
	do {                                                                           \
		long long er_rc_ = (long long)(call);                                  \
		if (er_rc_ != -(err))                                                  \
			FAIL("%s returned %lld, want -%s", #call, er_rc_, #err);       \
	} while (0)

static inline void skip(const char *why)
{
	printf("%s: SKIP: %s\n", t_name, why);
	if (t_reason)
		snprintf(t_reason, T_REASON_MAX, "%s", why);
	exit(77);
}

static inline void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s: ", t_name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

/* Integer parameter from the environment (stress knobs), with a default. */
static inline long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 0) : def;
}

/* Nodes that have memory, in ascending order; returns how many. */
static inline int mem_nodes(const struct leap_topo *t, int *out, int max)
{
	int k = 0;
	for (int n = 0; n < leap_topo_node_count(t) && k < max; n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		if (leap_topo_node(t, n, &ni) == 0 && ni.online && ni.has_memory)
			out[k++] = n;
	}
	return k;
}

/*
 * The kernel's view of where each page of [p, p+npages) is: move_pages() with no target
 * only reports. Fills nodes[] (negative errno for a page with no frame). Pages must be
 * mapped (touched) first.
 */
static inline void kernel_nodes(const void *p, size_t npages, int *nodes)
{
	const size_t B = 4096;
	void **pages = malloc(B * sizeof(void *));
	if (!pages)
		FAIL("out of memory");
	for (size_t i = 0; i < npages; i += B) {
		size_t n = npages - i < B ? npages - i : B;
		for (size_t j = 0; j < n; j++)
			pages[j] = (char *)p + (i + j) * PG;
		if (move_pages(0, (unsigned long)n, pages, NULL, nodes + i, 0) != 0)
			FAIL("move_pages query: %s", strerror(errno));
	}
	free(pages);
}

/* Check every page of [p, p+npages) is on node per the kernel; reports the first miss. */
static inline void expect_kernel_node(const void *p, size_t npages, int node, const char *what)
{
	int *nodes = malloc(npages * sizeof(int));
	if (!nodes)
		FAIL("out of memory");
	kernel_nodes(p, npages, nodes);
	for (size_t i = 0; i < npages; i++)
		if (nodes[i] != node)
			FAIL("%s: page %zu is on node %d per the kernel, want %d", what, i, nodes[i],
			     node);
	free(nodes);
}

/* Physical frame number of the page at p, from /proc/self/pagemap (needs root); 0 if hidden. */
static inline uint64_t pfn_of(const void *p)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return 0;
	uint64_t e = 0;
	if (pread(fd, &e, 8, (off_t)((uintptr_t)p / PG * 8)) != 8)
		e = 0;
	close(fd);
	return (e & (UINT64_C(1) << 63)) ? (e & ((UINT64_C(1) << 55) - 1)) : 0;
}

/* Kernel mappings (lines of /proc/self/maps) that overlap [lo, hi). */
static inline int count_maps(const void *lo, const void *hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		FAIL("open /proc/self/maps: %s", strerror(errno));
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t a, b;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) == 2 && a < (uintptr_t)hi &&
		    b > (uintptr_t)lo)
			n++;
	}
	fclose(f);
	return n;
}

/* xorshift64* for reproducible tests. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

/* The seed: $LEAP_SEED or the time; printed so a failure can be replayed. */
static inline uint64_t test_seed(void)
{
	uint64_t s = (uint64_t)env_long("LEAP_SEED", 0);
	if (!s)
		s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	printf("%s: seed %" PRIu64 " (replay with LEAP_SEED=%" PRIu64 ")\n", t_name, s, s);
	return s;
}

/* Fill page i of p with a pattern derived from (tag, i); check it back. */
static inline void fill_pages(void *p, size_t npages, uint64_t tag)
{
	for (size_t i = 0; i < npages; i++) {
		uint64_t *w = (uint64_t *)((char *)p + i * PG);
		for (size_t j = 0; j < PG / 8; j += 64)
			w[j] = tag * 0x9e3779b97f4a7c15ull + i * 4096 + j;
	}
}
static inline void check_pages(const void *p, size_t npages, uint64_t tag, const char *what)
{
	for (size_t i = 0; i < npages; i++) {
		const uint64_t *w = (const uint64_t *)((const char *)p + i * PG);
		for (size_t j = 0; j < PG / 8; j += 64)
			if (w[j] != tag * 0x9e3779b97f4a7c15ull + i * 4096 + j)
				FAIL("%s: page %zu word %zu holds %" PRIx64 ", want %" PRIx64, what,
				     i, j, w[j], (uint64_t)(tag * 0x9e3779b97f4a7c15ull + i * 4096 + j));
	}
}

/* The one clock of the tests: monotonic seconds. */
static inline double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Named cases: a test with several scenarios defines each with CASE(name) { ... } and
 * ends main with RUN_CASES(case_a, case_b, ...). Each case runs in a process of its own
 * (a FAIL or a crash in one does not hide the others, and none inherits another's
 * threads), printed as "PASS name", "SKIP name: why" or "FAIL name: reason". The exit
 * code: 1 if any failed, 77 only if every case skipped, else 0. LEAP_CASES="a b" runs
 * only those. Cases share nothing but what main set up before RUN_CASES (no threads).
 */
#include <sys/mman.h>
#include <sys/wait.h>

struct t_case {
	const char *name;
	void (*fn)(void);
};
#define CASE(name) static void case_##name(void)
#define T_CASE_ENTRY_(name) { #name, case_##name }
/* up to 16 cases per test */
#define T_ENTRIES_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, \
		   ...)                                                                       \
	N
#define RUN_CASES(...) run_cases((const struct t_case[]){ T_CASE_LIST_(__VA_ARGS__) },        \
				 T_ENTRIES_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,  \
					    4, 3, 2, 1, 0))
#define T_CASE_LIST_(...) T_FOREACH_(T_CASE_ENTRY_, __VA_ARGS__)
#define T_FE1_(m, a) m(a)
#define T_FE2_(m, a, ...) m(a), T_FE1_(m, __VA_ARGS__)
#define T_FE3_(m, a, ...) m(a), T_FE2_(m, __VA_ARGS__)
#define T_FE4_(m, a, ...) m(a), T_FE3_(m, __VA_ARGS__)
#define T_FE5_(m, a, ...) m(a), T_FE4_(m, __VA_ARGS__)
#define T_FE6_(m, a, ...) m(a), T_FE5_(m, __VA_ARGS__)
#define T_FE7_(m, a, ...) m(a), T_FE6_(m, __VA_ARGS__)
#define T_FE8_(m, a, ...) m(a), T_FE7_(m, __VA_ARGS__)
#define T_FE9_(m, a, ...) m(a), T_FE8_(m, __VA_ARGS__)
#define T_FE10_(m, a, ...) m(a), T_FE9_(m, __VA_ARGS__)
#define T_FE11_(m, a, ...) m(a), T_FE10_(m, __VA_ARGS__)
#define T_FE12_(m, a, ...) m(a), T_FE11_(m, __VA_ARGS__)
#define T_FE13_(m, a, ...) m(a), T_FE12_(m, __VA_ARGS__)
#define T_FE14_(m, a, ...) m(a), T_FE13_(m, __VA_ARGS__)
#define T_FE15_(m, a, ...) m(a), T_FE14_(m, __VA_ARGS__)
#define T_FE16_(m, a, ...) m(a), T_FE15_(m, __VA_ARGS__)
#define T_FOREACH_(m, ...)                                                                    \
	T_ENTRIES_(__VA_ARGS__, T_FE16_, T_FE15_, T_FE14_, T_FE13_, T_FE12_, T_FE11_, T_FE10_,    \
		   T_FE9_, T_FE8_, T_FE7_, T_FE6_, T_FE5_, T_FE4_, T_FE3_, T_FE2_, T_FE1_, )      \
	(m, __VA_ARGS__)

static inline int run_cases(const struct t_case *c, int n)
{
	char *reason = mmap(NULL, T_REASON_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
	if (reason == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	const char *only = getenv("LEAP_CASES");
	int failed = 0, skipped = 0, ran = 0;
	for (int i = 0; i < n; i++) {
		if (only && *only) {
			char pad[256];
			snprintf(pad, sizeof(pad), " %s ", only);
			char key[128];
			snprintf(key, sizeof(key), " %s ", c[i].name);
			if (!strstr(pad, key))
				continue;
		}
		ran++;
		reason[0] = 0;
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		if (pid < 0)
			FAIL("fork: %s", strerror(errno));
		if (pid == 0) {
			t_reason = reason;
			c[i].fn();
			fflush(stdout);
			exit(0);
		}
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (code == 0) {
			printf("PASS %s\n", c[i].name);
		} else if (code == 77) {
			skipped++;
			printf("SKIP %s: %s\n", c[i].name, reason);
		} else {
			failed++;
			if (!reason[0])
				snprintf(reason, T_REASON_MAX, "%s %d",
					 WIFEXITED(st) ? "exit" : "signal",
					 WIFEXITED(st) ? code : WTERMSIG(st));
			printf("FAIL %s: %s\n", c[i].name, reason);
		}
		fflush(stdout);
	}
	munmap(reason, T_REASON_MAX);
	if (failed)
		return 1;
	if (ran && skipped == ran) {
		printf("%s: SKIP: every case skipped (see above)\n", t_name);
		return 77;
	}
	return 0;
}

#endif
