/*
 * Threads: several threads migrate their own regions and share one region (calls on it
 * are serialized by the library), while reader threads read the shared region and ask
 * leap_node_of() the whole time. Overlapping jobs on the shared region get -EBUSY and
 * retry. Readers must never see a wrong byte (reads are safe
 * during a migration), and at the end every page is where the library says, per the
 * kernel. Pools and workers are created concurrently on first use.
 * Parameters: LEAP_THREADS (4), LEAP_ITER (200), LEAP_SEED.
 */
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>

static struct leap_ctx *ctx;
static struct leap_region *shared;
static int nodes[64], nn;
static long iters;
static uint64_t seed0;
static atomic_int stop, errors, busy;
static const size_t own_len = 4 << 20, sh_len = 16 << 20;

static void *mover(void *arg)
{
	long id = (long)arg;
	uint64_t s = seed0 + (uint64_t)id * 7919;
	struct leap_region *r;
	if (leap_region_new(ctx, own_len, nodes[id % nn], &r) != 0) {
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	char *p = leap_region_addr(r);
	fill_pages(p, own_len / PG, (uint64_t)id + 100);
	unsigned fl = nn == 1 ? LEAP_RELOCATE : 0;
	for (long i = 0; i < iters; i++) {
		int target = nodes[rnd(&s) % (uint64_t)nn];
		/* alternate: own region whole, then a random page-aligned piece of the shared one */
		if (page_leap(r, p, own_len, target, fl, NULL) < 0)
			atomic_fetch_add(&errors, 1);
		size_t np = sh_len / PG, n = 1 + rnd(&s) % (np / 4), lo = rnd(&s) % (np - n + 1);
		char *sp = leap_region_addr(shared);
		/* another mover may hold an overlapping job: -EBUSY, by design; try again */
		int rc;
		while ((rc = page_leap(shared, sp + lo * PG, n * PG, target, fl, NULL)) == -EBUSY)
			atomic_fetch_add(&busy, 1);
		if (rc < 0)
			atomic_fetch_add(&errors, 1);
	}
	check_pages(p, own_len / PG, (uint64_t)id + 100, "own region");
	for (size_t k = 0; k < own_len / PG; k += 61) {
		int kn;
		kernel_nodes(p + k * PG, 1, &kn);
		if (kn != leap_node_of(r, p + k * PG))
			atomic_fetch_add(&errors, 1);
	}
	leap_region_destroy(&r);
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	const char *sp = leap_region_addr(shared);
	size_t np = sh_len / PG;
	uint64_t reads = 0;
	while (!atomic_load(&stop)) {
		for (size_t i = 0; i < np; i += 3) {
			const uint64_t *w = (const uint64_t *)(sp + i * PG);
			if (w[0] != 42 * 0x9e3779b97f4a7c15ull + i * 4096) {
				fprintf(stderr, "t_threads: reader saw a wrong value in page %zu\n", i);
				atomic_fetch_add(&errors, 1);
			}
			if (leap_node_of(shared, sp + i * PG) < 0)
				atomic_fetch_add(&errors, 1);
			reads++;
		}
	}
	return (void *)(uintptr_t)reads;
}

int main(void)
{
	t_name = "t_threads";
	seed0 = test_seed();
	long threads = env_long("LEAP_THREADS", 4);
	iters = env_long("LEAP_ITER", 200);
	/* small pool mapping chunks: the chunk table grows while other threads copy */
	struct leap_ctx_options o = { .size = sizeof(o), .pool_map_chunk_bytes = 260 << 10 };
	OK(leap_ctx_new(&o, &ctx));
	nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	OK(leap_region_new(ctx, sh_len, nodes[0], &shared));
	fill_pages(leap_region_addr(shared), sh_len / PG, 42);
	pthread_t mv[64], rd[2];
	threads = threads > 64 ? 64 : threads;
	for (int i = 0; i < 2; i++)
		pthread_create(&rd[i], NULL, reader, NULL);
	for (long i = 0; i < threads; i++)
		pthread_create(&mv[i], NULL, mover, (void *)i);
	for (long i = 0; i < threads; i++)
		pthread_join(mv[i], NULL);
	atomic_store(&stop, 1);
	uint64_t reads = 0;
	for (int i = 0; i < 2; i++) {
		void *rv;
		pthread_join(rd[i], &rv);
		reads += (uint64_t)(uintptr_t)rv;
	}
	CHECK(atomic_load(&errors) == 0, "%d errors (seed %" PRIu64 ")", atomic_load(&errors), seed0);
	char *sp = leap_region_addr(shared);
	size_t np = sh_len / PG;
	check_pages(sp, np, 42, "shared region");
	int *kn = malloc(np * sizeof(int));
	kernel_nodes(sp, np, kn);
	for (size_t k = 0; k < np; k++)
		CHECK(kn[k] == leap_node_of(shared, sp + k * PG), "shared page %zu: kernel %d", k, kn[k]);
	struct leap_region_stats st = { .size = sizeof(st) };
	OK(leap_region_stats(shared, &st));
	CHECK(count_maps(sp, sp + sh_len) == (int)st.runs, "maps vs runs");
	say("measured %ld movers x %ld iterations, %" PRIu64 " page reads during migrations, all "
	    "correct; %d overlapping submissions refused with -EBUSY",
	    threads, iters, reads, atomic_load(&busy));
	free(kn);
	leap_region_destroy(&shared);
	leap_ctx_destroy(&ctx);
	return 0;
}
