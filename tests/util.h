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

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "%s: FAIL at %s:%d: ", t_name, __FILE__, __LINE__);    \
		fprintf(stderr, __VA_ARGS__);                                          \
		fprintf(stderr, "\n");                                                 \
		exit(1);                                                               \
	} while (0)
#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s: FAIL at %s:%d: check '%s' failed: ", t_name, \
				__FILE__, __LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                                  \
			fprintf(stderr, "\n");                                        \
			exit(1);                                                       \
		}                                                                      \
	} while (0)
/* A library call that must succeed (return >= 0). */
#define OK(call)                                                                       \
	({                                                                             \
		long long ok_rc_ = (long long)(call);                                  \
		if (ok_rc_ < 0)                                                        \
			FAIL("%s returned %lld (%s)", #call, ok_rc_,                   \
			     leap_strerror((int)ok_rc_));                              \
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

#endif
