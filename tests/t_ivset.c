/*
 * Unit test of the interval sets (src/util/ivset.c), no kernel needed: random add/remove
 * against a bitmap model; after each operation the set's intervals are sorted, disjoint,
 * non-adjacent and equal to the bitmap, total counts its pages, covered() counts any range
 * right, and diff_each()/gaps_each() list exactly the maximal intervals of a \ b and of
 * [lo, hi) \ s. The seed is printed (LEAP_SEED replays it).
 */
#include "util/util.h"
#include "util.h"

#define U 512 /* the universe: pages 0 .. U-1 */

static void check_model(const struct leap__ivset *s, const unsigned char *m, uint64_t seed)
{
	uint64_t total = 0, prev_hi = 0;
	for (size_t i = 0; i < s->n; i++) {
		CHECK(s->v[i].lo < s->v[i].hi, "seed %" PRIu64 ": empty interval %zu", seed, i);
		CHECK(i == 0 || s->v[i].lo > prev_hi,
		      "seed %" PRIu64 ": interval %zu [%" PRIu64 ", %" PRIu64 ") touches the one "
		      "before (ends %" PRIu64 ")",
		      seed, i, s->v[i].lo, s->v[i].hi, prev_hi);
		prev_hi = s->v[i].hi;
		total += s->v[i].hi - s->v[i].lo;
	}
	CHECK(total == s->total, "seed %" PRIu64 ": total %" PRIu64 ", intervals %" PRIu64, seed,
	      s->total, total);
	size_t i = 0;
	for (uint64_t k = 0; k < U; k++) {
		while (i < s->n && s->v[i].hi <= k)
			i++;
		int in = i < s->n && s->v[i].lo <= k;
		CHECK(in == m[k], "seed %" PRIu64 ": page %" PRIu64 " %s the set, model says %s", seed,
		      k, in ? "in" : "not in", m[k] ? "in" : "not in");
	}
}

struct runs {
	uint64_t lo[U], hi[U];
	size_t n;
	size_t stop_at; /* stop after this many (0: never) */
};
static int collect(uint64_t lo, uint64_t hi, void *arg)
{
	struct runs *r = arg;
	CHECK(r->n < U, "too many intervals");
	r->lo[r->n] = lo;
	r->hi[r->n] = hi;
	r->n++;
	return r->stop_at && r->n == r->stop_at ? 7 : 0;
}

/* The maximal runs of pages k in [lo, hi) where want(k) holds, compared with got. */
static void expect_runs(const struct runs *got, const unsigned char *want, uint64_t lo,
			uint64_t hi, uint64_t seed, const char *what)
{
	size_t n = 0;
	for (uint64_t k = lo; k < hi;) {
		if (!want[k]) {
			k++;
			continue;
		}
		uint64_t e = k;
		while (e < hi && want[e])
			e++;
		CHECK(n < got->n && got->lo[n] == k && got->hi[n] == e,
		      "seed %" PRIu64 ": %s: run %zu should be [%" PRIu64 ", %" PRIu64 ")", seed, what,
		      n, k, e);
		n++;
		k = e;
	}
	CHECK(n == got->n, "seed %" PRIu64 ": %s: %zu runs, want %zu", seed, what, got->n, n);
}

int main(void)
{
	t_name = "t_ivset";
	uint64_t seed = test_seed(), s = seed;
	static unsigned char ma[U], mb[U], want[U];
	static struct runs got;
	for (int round = 0; round < 50; round++) {
		struct leap__ivset a = { 0 }, b = { 0 };
		memset(ma, 0, U);
		memset(mb, 0, U);
		for (int op = 0; op < 400; op++) {
			int which = (int)(rnd(&s) % 2);
			struct leap__ivset *set = which ? &b : &a;
			unsigned char *m = which ? mb : ma;
			uint64_t lo = rnd(&s) % U, len = rnd(&s) % (rnd(&s) % 4 ? 8 : U / 2);
			uint64_t hi = lo + len > U ? U : lo + len;
			if (rnd(&s) % 3) {
				CHECK(leap__ivset_add(set, lo, hi) == 0, "add failed");
				memset(m + lo, 1, hi - lo);
			} else {
				CHECK(leap__ivset_remove(set, lo, hi) == 0, "remove failed");
				memset(m + lo, 0, hi - lo);
			}
			check_model(set, m, seed);
			/* covered: any range */
			uint64_t clo = rnd(&s) % U, chi = clo + rnd(&s) % (U - clo + 1), c = 0;
			for (uint64_t k = clo; k < chi; k++)
				c += m[k];
			CHECK(leap__ivset_covered(set, clo, chi) == c,
			      "seed %" PRIu64 ": covered [%" PRIu64 ", %" PRIu64 ") = %" PRIu64
			      ", want %" PRIu64,
			      seed, clo, chi, leap__ivset_covered(set, clo, chi), c);
			/* a \ b */
			got.n = 0;
			got.stop_at = 0;
			CHECK(leap__ivset_diff_each(&a, &b, collect, &got) == 0, "diff_each");
			for (int k = 0; k < U; k++)
				want[k] = ma[k] && !mb[k];
			expect_runs(&got, want, 0, U, seed, "a \\ b");
			/* [glo, ghi) \ a */
			got.n = 0;
			CHECK(leap__ivset_gaps_each(&a, clo, chi, collect, &got) == 0, "gaps_each");
			for (int k = 0; k < U; k++)
				want[k] = !ma[k];
			expect_runs(&got, want, clo, chi, seed, "gaps");
			/* stopping early: the callback's value comes back */
			if (got.n >= 2) {
				size_t all = got.n;
				got.n = 0;
				got.stop_at = 1;
				CHECK(leap__ivset_gaps_each(&a, clo, chi, collect, &got) == 7 &&
					      got.n == 1,
				      "seed %" PRIu64 ": gaps_each did not stop (%zu of %zu)", seed,
				      got.n, all);
			}
		}
		leap__ivset_free(&a);
		leap__ivset_free(&b);
	}
	say("note 50 rounds of 400 random operations agree with the bitmap model");
	return 0;
}
