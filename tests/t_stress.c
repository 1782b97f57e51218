/*
 * Stress: writers, atomic adders and readers hammer a region while jobs move it back and
 * forth between nodes (relocate on one node) for a fixed time.
 *   - writer i increments word i of random 64-byte lines (only it writes that word) and
 *     keeps a private shadow count per line; it also publishes a sequence number;
 *   - atomic threads atomic_fetch_add shared words spread over the region;
 *   - readers check that no writer's sequence number ever goes backwards.
 * At the end every word equals its shadow exactly, the shared words equal the number of
 * atomic adds, no sequence went backwards, every job moved every page, and every page is
 * on the last job's node (kernel and library).
 * Parameters: LEAP_STRESS_WRITERS (2, at most 7), LEAP_STRESS_ATOMIC (1),
 * LEAP_STRESS_READERS (1), LEAP_STRESS_MB (64), LEAP_STRESS_SECONDS (10), LEAP_SEED;
 * LEAP_STRESS_MIN_WRITES (0): keep migrating past the time until the writers made that
 * many writes, plain and atomic (the soak, `make soak`: 1e9 writes and at least 10
 * minutes, docs/load.md); every shared word is checked against its own count too.
 */
#include "oracle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define NATOM 64 /* shared atomic words */

/*
 * Memory orders of the accesses to the region. What is tested is that the instructions
 * keep their meaning across a migration: a read-modify-write stays atomic (the adds sum
 * exactly) and a location's values never go back (coherence); neither needs more than
 * relaxed order, and on x86 relaxed and seq_cst RMWs are the same `lock xadd`, relaxed and
 * release stores the same `mov`. Relaxed also matters under TSan: its release and seq_cst
 * atomics hold TSan-internal locks around the access, and an access that blocks in the
 * kernel on write protection would then block every other thread's race reports and TSan's
 * periodic reset, while the migration that would wake it waits for them. Plain and
 * relaxed accesses hold nothing.
 */
#define ORDER __ATOMIC_RELAXED

static uint64_t *words; /* the region, as 64-bit words: 8 per line */
static size_t lines;
static atomic_int stop;
static atomic_long errors;
static uint64_t seed0;
static long nwriters;

static size_t atom_line(int k)
{
	return (size_t)k * (lines / NATOM);
}
static size_t seq_line(long i)
{
	return atom_line((int)i) + 1;
}

struct writer {
	long id;
	uint32_t *shadow; /* per line */
	uint64_t count;
	pthread_t th;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t s = seed0 ^ (uint64_t)(w->id + 1) * 0x9e3779b97f4a7c15ull;
	volatile uint64_t *seq = &words[seq_line(w->id) * 8 + 7];
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int k = 0; k < 64; k++) {
			size_t line = rnd(&s) % lines;
			volatile uint64_t *x = &words[line * 8 + (size_t)w->id];
			*x = *x + 1;
			w->shadow[line]++;
			w->count++;
			__atomic_store_n(seq, w->count, ORDER);
		}
	}
	return NULL;
}

/* count[0..NATOM): this thread's adds per shared word; count[NATOM]: its total (read by
 * main during a soak, hence an atomic store; only this thread writes it) */
static void *atomic_main(void *arg)
{
	uint64_t *count = arg, s = seed0 ^ (uint64_t)(uintptr_t)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int k = 0; k < 64; k++) {
			int a = (int)(rnd(&s) % NATOM);
			__atomic_fetch_add(&words[atom_line(a) * 8 + 7], 1, ORDER);
			count[a]++;
			__atomic_store_n(&count[NATOM], count[NATOM] + 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static void *reader_main(void *arg)
{
	(void)arg;
	uint64_t last[8] = { 0 };
	uint64_t checks = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (long i = 0; i < nwriters; i++) {
			uint64_t v = __atomic_load_n(&words[seq_line(i) * 8 + 7], ORDER);
			if (v < last[i]) {
				fprintf(stderr, "t_stress: writer %ld's sequence went back from %" PRIu64
						" to %" PRIu64 "\n", i, last[i], v);
				atomic_fetch_add(&errors, 1);
			}
			last[i] = v;
			checks++;
		}
	}
	return (void *)(uintptr_t)checks;
}

/* Writes so far: each writer publishes its count in its sequence word. */
static uint64_t (*acount_live)[NATOM + 1];
static long natomic_live;
static uint64_t writes_so_far(void)
{
	uint64_t n = 0;
	for (long i = 0; i < natomic_live; i++) /* racy read of a growing count: a lower bound */
		n += __atomic_load_n(&acount_live[i][NATOM], __ATOMIC_RELAXED);
	for (long i = 0; i < nwriters; i++)
		n += __atomic_load_n(&words[seq_line(i) * 8 + 7], ORDER);
	return n;
}

int main(void)
{
	t_name = "t_stress";
	seed0 = test_seed();
	nwriters = env_long("LEAP_STRESS_WRITERS", 2);
	long natomic = env_long("LEAP_STRESS_ATOMIC", 1), nreaders = env_long("LEAP_STRESS_READERS", 1);
	size_t mb = (size_t)env_long("LEAP_STRESS_MB", 64);
	double secs = (double)env_long("LEAP_STRESS_SECONDS", 10);
	uint64_t min_writes = (uint64_t)env_long("LEAP_STRESS_MIN_WRITES", 0); /* both kinds */
	CHECK(nwriters >= 0 && nwriters <= 7 && natomic >= 0 && natomic <= 8 && nreaders >= 0 &&
		      nreaders <= 8,
	      "parameters out of range");
	struct leap_ctx *ctx;
	struct leap_ctx_options o = { .size = sizeof(o), .workers_per_node = 2 };
	OK(leap_ctx_new(&o, &ctx));
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	size_t len = mb << 20, np = len / PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	words = leap_region_addr(r);
	lines = len / 64;

	struct writer w[8];
	static uint64_t acount[8][NATOM + 1];
	pthread_t at[8], rt[8];
	for (long i = 0; i < nwriters; i++) {
		w[i] = (struct writer){ .id = i, .shadow = calloc(lines, sizeof(uint32_t)) };
		pthread_create(&w[i].th, NULL, writer_main, &w[i]);
	}
	acount_live = acount;
	natomic_live = natomic;
	for (long i = 0; i < natomic; i++)
		pthread_create(&at[i], NULL, atomic_main, acount[i]);
	for (long i = 0; i < nreaders; i++)
		pthread_create(&rt[i], NULL, reader_main, NULL);

	/* move it around: whole region, or two halves as two jobs at once */
	unsigned fl = nn == 1 ? LEAP_RELOCATE : 0;
	int last = nodes[0], jobs = 0;
	uint64_t moved = 0, faults = 0, p99max = 0, stallmax = 0, gran_last = 0, gmin = UINT64_MAX,
		 gmax = 0, p50sum = 0, nstat = 0;
	double t0 = now(), busy = 0;
	for (int it = 0; now() - t0 < secs || it % 2 || writes_so_far() < min_writes; it++) {
		int target = nodes[(size_t)(it + 1) % (size_t)nn];
		struct leap_job *j[2] = { 0 };
		int parts = it % 2 ? 2 : 1;
		double a = now();
		for (int k = 0; k < parts; k++)
			OK(page_leap((struct leap_region *)r, (char *)words + k * (len / parts),
				     len / parts, target, fl, &j[k]));
		for (int k = 0; k < parts; k++) {
			int64_t res = leap_job_wait(j[k], -1);
			struct leap_progress pr = { .size = sizeof(pr) };
			OK(leap_job_progress(j[k], &pr));
			if (res != (int64_t)(np / parts) || pr.state != LEAP_JOB_DONE || pr.pages_failed)
				FAIL("job %d part %d: result %" PRId64 ", state %d, %" PRIu64
				     " failed (seed %" PRIu64 ")",
				     it, k, res, pr.state, pr.pages_failed, seed0);
			moved += pr.pages_moved;
			faults += pr.write_faults;
			p99max = pr.stall_p99_ns > p99max ? pr.stall_p99_ns : p99max;
			stallmax = pr.stall_max_ns > stallmax ? pr.stall_max_ns : stallmax;
			if (pr.write_faults) {
				p50sum += pr.stall_p50_ns;
				nstat++;
			}
			gran_last = pr.granularity;
			gmin = pr.granularity_min_seen < gmin ? pr.granularity_min_seen : gmin;
			gmax = pr.granularity_max_seen > gmax ? pr.granularity_max_seen : gmax;
			leap_job_destroy(&j[k]);
			jobs++;
		}
		busy += now() - a;
		last = target;
	}
	atomic_store(&stop, 1);
	for (long i = 0; i < nwriters; i++)
		pthread_join(w[i].th, NULL);
	uint64_t adds = 0, checks = 0;
	for (long i = 0; i < natomic; i++) {
		pthread_join(at[i], NULL);
		adds += acount[i][NATOM];
	}
	for (long i = 0; i < nreaders; i++) {
		void *rv;
		pthread_join(rt[i], &rv);
		checks += (uint64_t)(uintptr_t)rv;
	}
	CHECK(atomic_load(&errors) == 0, "readers saw %ld regressions (seed %" PRIu64 ")",
	      atomic_load(&errors), seed0);
	/* every increment is there, exactly */
	uint64_t writes = 0;
	for (long i = 0; i < nwriters; i++) {
		for (size_t l = 0; l < lines; l++)
			if (words[l * 8 + (size_t)i] != w[i].shadow[l])
				FAIL("writer %ld line %zu: %" PRIu64 " in memory, %u written (seed %" PRIu64 ")",
				     i, l, words[l * 8 + (size_t)i], w[i].shadow[l], seed0);
		CHECK(words[seq_line(i) * 8 + 7] == w[i].count, "writer %ld sequence", i);
		writes += w[i].count;
		free(w[i].shadow);
	}
	uint64_t sum = 0;
	for (int k = 0; k < NATOM; k++) {
		uint64_t want = 0;
		for (long i = 0; i < natomic; i++)
			want += acount[i][k];
		CHECK(words[atom_line(k) * 8 + 7] == want,
		      "atomic word %d: %" PRIu64 " in memory, %" PRIu64 " adds (seed %" PRIu64 ")", k,
		      words[atom_line(k) * 8 + 7], want, seed0);
		sum += words[atom_line(k) * 8 + 7];
	}
	CHECK(sum == adds, "atomic words sum to %" PRIu64 ", %" PRIu64 " adds (seed %" PRIu64 ")", sum,
	      adds, seed0);
	expect_kernel_node(words, np, last, "after the last job");
	for (size_t k = 0; k < np; k += 97)
		CHECK(leap_node_of(r, (char *)words + k * PG) == last, "library node of page %zu", k);
	say("measured %.0f s, %ld writers, %ld atomic, %ld readers, %zu MiB, %d jobs in %.1f s: "
	    "%.2f GB/s migrated, %" PRIu64 " writes + %" PRIu64 " atomic adds exact, %" PRIu64
	    " writer waits, %" PRIu64 " pages (%.1f GiB) moved, stall p50 %.1f us (mean over jobs) p99 %.1f us max %.1f us, granularity "
	    "last %" PRIu64 " KiB (seen %" PRIu64 "..%" PRIu64 " KiB)",
	    now() - t0, nwriters, natomic, nreaders, mb, jobs, busy, (double)moved * PG / busy / 1e9, writes,
	    adds, faults, moved, (double)moved * PG / (double)(1u << 30), nstat ? (double)p50sum / (double)nstat / 1e3 : 0.0, (double)p99max / 1e3,
	    (double)stallmax / 1e3, gran_last >> 10, gmin >> 10, gmax >> 10);
	(void)checks;
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	return 0;
}
