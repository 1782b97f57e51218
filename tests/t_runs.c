/*
 * t_runs - the pure parts of a region's layout (src/core/region.c) against a page-by-page
 * model, on a region built by hand (no pools, no mappings): run assignment
 * (leap__region_assign), run lookup (leap__region_find_run) and bank choice
 * (leap__region_choose_bank). Random operations with a printed seed (LEAP_SEED replays).
 *
 * The invariants: runs sorted, disjoint, covering [0, npages); no two neighbouring runs
 * in the same (slot, bank) (they would be one mapping); every page where the model says.
 */
#include "core/core.h"
#include "util.h"

#define NP 512
#define ROUNDS 4000

struct place {
	int slot, bank;
};

static struct leap_region *fake_region(uint64_t npages)
{
	struct leap_region *r = calloc(1, sizeof(*r));
	CHECK(r, "out of memory");
	r->npages = npages;
	r->runs = malloc(sizeof(*r->runs));
	CHECK(r->runs, "out of memory");
	r->runs[0] = (struct leap__run){ .pg = 0, .n = npages, .slot = 0, .bank = 0 };
	r->nruns = r->runs_cap = 1;
	return r;
}

static void fake_free(struct leap_region *r)
{
	free(r->runs);
	free(r->spare);
	free(r);
}

/* The runs are the model, page for page, and as few as the model allows. */
static void check_runs(const struct leap_region *r, const struct place *m, const char *when)
{
	uint64_t at = 0;
	size_t want_runs = 1;
	for (uint64_t p = 1; p < r->npages; p++)
		want_runs += m[p].slot != m[p - 1].slot || m[p].bank != m[p - 1].bank;
	for (size_t i = 0; i < r->nruns; i++) {
		const struct leap__run *x = &r->runs[i];
		CHECK(x->pg == at && x->n > 0, "%s: run %zu at %llu+%llu, want start %llu", when, i,
		      (unsigned long long)x->pg, (unsigned long long)x->n, (unsigned long long)at);
		for (uint64_t p = x->pg; p < x->pg + x->n; p++)
			CHECK(m[p].slot == x->slot && m[p].bank == x->bank,
			      "%s: page %llu in (%d, %d), model (%d, %d)", when,
			      (unsigned long long)p, x->slot, x->bank, m[p].slot, m[p].bank);
		CHECK(leap__region_find_run(r, x->pg) == i && leap__region_find_run(r, at + x->n - 1) == i,
		      "%s: find_run misses run %zu", when, i);
		at += x->n;
	}
	CHECK(at == r->npages, "%s: runs cover %llu of %llu pages", when, (unsigned long long)at,
	      (unsigned long long)r->npages);
	CHECK(r->nruns == want_runs, "%s: %zu runs, the model needs %zu (not merged)", when,
	      r->nruns, want_runs);
}

CASE(assign_matches_model)
{
	uint64_t seed = test_seed();
	struct leap_region *r = fake_region(NP);
	struct place m[NP] = { { 0, 0 } };
	for (int k = 0; k < ROUNDS; k++) {
		uint64_t a = rnd(&seed) % NP, n = 1 + rnd(&seed) % (rnd(&seed) % 4 ? 8 : NP - a);
		if (n > NP - a)
			n = NP - a;
		int slot = (int)(rnd(&seed) % 3), bank = (int)(rnd(&seed) % 3);
		OK(leap__region_assign(r, a, n, slot, bank));
		for (uint64_t p = a; p < a + n; p++)
			m[p] = (struct place){ slot, bank };
		char when[64];
		snprintf(when, sizeof(when), "round %d (seed %llu)", k, (unsigned long long)seed);
		check_runs(r, m, when);
	}
	fake_free(r);
}

/* What the bank choice must satisfy, from the model: the bank is free for every page
 * that moves (none of them is in it already on the target), and it is the preferred one
 * (left neighbour, right neighbour, staying pages, 0) when that one is free. */
CASE(bank_choice)
{
	uint64_t seed = test_seed();
	struct leap_region *r = fake_region(NP);
	struct place m[NP] = { { 0, 0 } };
	for (int k = 0; k < ROUNDS; k++) {
		/* a random layout over 2 slots and 4 banks */
		uint64_t a = rnd(&seed) % NP, n = 1 + rnd(&seed) % 32;
		if (n > NP - a)
			n = NP - a;
		int slot = (int)(rnd(&seed) % 2), bank = (int)(rnd(&seed) % 4);
		OK(leap__region_assign(r, a, n, slot, bank));
		for (uint64_t p = a; p < a + n; p++)
			m[p] = (struct place){ slot, bank };
		/* a move of a random range to a random slot, relocating or not */
		uint64_t qa = rnd(&seed) % NP, qn = 1 + rnd(&seed) % 64;
		if (qn > NP - qa)
			qn = NP - qa;
		struct leap__move mv = { .target = (int)(rnd(&seed) % 2), .bank = -1,
					 .relocate = rnd(&seed) % 2 };
		int got = leap__region_choose_bank(r, qa, qa + qn, &mv);
		CHECK(got >= 0 && got < LEAP_BANKS_MAX, "round %d: bank %d", k, got);
		uint64_t busy = 0;
		int want[4] = { -1, -1, -1, 0 };
		for (uint64_t p = qa; p < qa + qn; p++) {
			bool moves = m[p].slot != mv.target || mv.relocate;
			if (m[p].slot == mv.target && moves) {
				CHECK(m[p].bank != got, "round %d (seed %llu): page %llu relocates into its own bank %d",
				      k, (unsigned long long)seed, (unsigned long long)p, got);
				busy |= 1u << m[p].bank;
			}
			if (m[p].slot == mv.target && !moves && want[2] < 0)
				want[2] = m[p].bank;
		}
		if (qa > 0 && m[qa - 1].slot == mv.target)
			want[0] = m[qa - 1].bank;
		if (qa + qn < NP && m[qa + qn].slot == mv.target)
			want[1] = m[qa + qn].bank;
		int pref = -1;
		for (int i = 0; i < 4 && pref < 0; i++)
			if (want[i] >= 0 && !(busy & (1u << want[i])))
				pref = want[i];
		if (pref >= 0)
			CHECK(got == pref, "round %d (seed %llu): bank %d, preferred %d", k,
			      (unsigned long long)seed, got, pref);
	}
	/* compaction names its bank */
	struct leap__move gather = { .target = 0, .bank = 3 };
	CHECK(leap__region_choose_bank(r, 0, NP, &gather) == 3, "compaction's bank");
	fake_free(r);
}

int main(void)
{
	t_name = "t_runs";
	return RUN_CASES(assign_matches_model, bank_choice);
}
