/*
 * t_btree: the B+-tree of `pageleap ycsb` (tools/btree.c) on its own, in anonymous memory
 * (no NUMA, no root). The ycsb's correctness verdict is the tree's own checker and its
 * answers, so the tree is tested here against references of its own:
 *  1. one thread against a reference map: random inserts (many leaf and inner splits, the
 *     root's splits counted against the height), re-inserts, lookups of present and absent
 *     keys, updates of present and absent keys (the hook called exactly when a value is
 *     written), scans from many starts and lengths compared exactly with a sorted copy
 *     (0, UINT64_MAX, past the last key, n past what is left), bt_check's report;
 *  2. bt_bulk_load at fills 0.5, 0.7 and 1 and sizes around the node capacities, into an
 *     arena of exactly bt_bulk_bytes() bytes filled with garbage: every key and value, the
 *     report, the bytes used, the errors (-EINVAL for keys not ascending, a bad fill, a
 *     tree not empty; -ENOMEM for an arena a node short, the tree left empty and usable);
 *     then inserts into the loaded tree;
 *  3. a full arena: -ENOMEM changes nothing and leaves a valid tree, exactly where the
 *     room runs out for arenas of 1, 2 and 3 nodes, and at random for a small one;
 *  4. bt_check itself: a valid tree corrupted in each way the checker must catch gives
 *     -EUCLEAN and a message naming that rule, and passes again once repaired. The nodes
 *     are reached through a mirror of btree.c's private node layout (struct mnode), which
 *     is first checked against a live tree, so a layout change fails loudly here instead
 *     of corrupting the wrong bytes;
 *  5. threads: (a) each inserting its own interleaved keys into an empty tree (the root
 *     splits under concurrency) while a reader scans and looks up, once with room and
 *     once with an arena that runs out (-ENOMEM under concurrency); (b) for a fixed time,
 *     a mix of inserts (each thread its own keys, spread over the whole tree and also
 *     swept through it, so that some leaves split all the time), updates, lookups and
 *     scans, many of them where the inserts are, on a bulk-loaded full tree; every answer
 *     checked against what must be there (loaded keys, inserts already published, keys
 *     never written), and afterwards every value against the shadow that the bt_hook
 *     wrote under the leaf lock (TSan sees the shadow as plain memory: a hook run outside
 *     the lock is a reported race).
 * Parameters: LEAP_BTREE_N (300000 keys in 1), LEAP_BTREE_GROW (200000 keys in 5a, a
 * quarter of it, at least 5000, with the tight arena), LEAP_BTREE_KEYS (150000 loaded keys
 * in 5b), LEAP_BTREE_MS (2000, length of 5b), LEAP_THREADS (4), LEAP_BTREE_VERBOSE (say
 * what the checker said and how long each part took), LEAP_SEED.
 */
#include "util.h"

#include "btree.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>

#define NB ((size_t)BT_NODE_BYTES)
#define LEAF_MIN (BT_LEAF_CAP / 2)	  /* keys in a leaf other than the root */
#define INNER_MIN ((BT_INNER_CAP - 1) / 2) /* keys in an inner node other than the root */
#define CANARY UINT64_C(0xdeadbeefcafef00d)

static bool verbose;

/* TSan finds nothing in the single-threaded parts (1 to 4) and makes every atomic access
 * about ten times slower: under TSan they run smaller (LEAP_BTREE_N 100000, large bulk
 * loads checked by a full scan and every 7th lookup), and 5a grows a tree of 100000 keys
 * (still three levels: the root splits twice under concurrency). */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* ---- helpers ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* A seed for one part of the test, never 0 (xorshift stays at 0). */
static uint64_t subseed(uint64_t seed, uint64_t part)
{
	return mix64(seed + part * UINT64_C(0x9e3779b97f4a7c15)) | 1;
}

static size_t round_nodes(size_t bytes)
{
	return (bytes + NB - 1) / NB * NB;
}

/* Anonymous memory for an arena; `garbage` fills it (the tree must not need zeroes). */
static void *arena_new(size_t bytes, bool garbage)
{
	void *p = mmap(NULL, round_nodes(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		FAIL("mmap %zu bytes: %s", bytes, strerror(errno));
	CHECK((uintptr_t)p % NB == 0, "arena at %p not 4 KiB aligned", p);
	if (garbage)
		memset(p, 0xa5, round_nodes(bytes));
	return p;
}

static void arena_free(void *p, size_t bytes)
{
	munmap(p, round_nodes(bytes));
}

static void tree_init(struct btree *t, void *mem, size_t cap)
{
	int rc = bt_init(t, mem, cap);
	CHECK(rc == 0, "bt_init(%zu bytes) = %d", cap, rc);
}

/* bt_check must pass and count want_keys. */
static struct bt_report check_tree(struct btree *t, uint64_t want_keys, const char *what)
{
	struct bt_report r;
	char err[256] = "";
	int rc = bt_check(t, &r, err, sizeof(err));
	if (rc)
		FAIL("%s: bt_check = %d: %s", what, rc, err);
	CHECK(r.keys == want_keys, "%s: bt_check counts %" PRIu64 " keys, want %" PRIu64, what, r.keys,
	      want_keys);
	CHECK(r.height >= 1 && r.leaves >= 1, "%s: height %" PRIu64 ", %" PRIu64 " leaves", what,
	      r.height, r.leaves);
	CHECK(r.leaves == 1 || (r.keys >= r.leaves * LEAF_MIN && r.keys <= r.leaves * BT_LEAF_CAP),
	      "%s: %" PRIu64 " keys in %" PRIu64 " leaves", what, r.keys, r.leaves);
	CHECK(r.leaf_fill >= 0 && r.leaf_fill <= 1, "%s: leaf fill %f", what, r.leaf_fill);
	return r;
}

/* Hook of the single-threaded parts: how often it ran and with what. */
struct rec {
	uint64_t calls, key, val;
};

static void rec_hook(void *arg, uint64_t key, uint64_t val)
{
	struct rec *h = arg;
	h->calls++;
	h->key = key;
	h->val = val;
}

static void expect_hook(const struct rec *h, uint64_t calls0, uint64_t key, uint64_t val,
			const char *what)
{
	CHECK(h->calls == calls0 + 1 && h->key == key && h->val == val,
	      "%s of %#" PRIx64 ": hook ran %" PRIu64 " times (want 1), last with %#" PRIx64 " = %#" PRIx64
	      " (want %#" PRIx64 ")",
	      what, key, h->calls - calls0, h->key, h->val, val);
}

/* ---- reference map: open addressing, key -> value ---- */

struct ref {
	uint64_t *k, *v;
	unsigned char *used;
	size_t mask, n;
	uint64_t *order; /* the keys in the order they went in, to pick present keys */
};

static void ref_init(struct ref *r, size_t max)
{
	size_t cap = 16;
	while (cap < 2 * max)
		cap <<= 1;
	r->k = malloc(cap * sizeof(uint64_t));
	r->v = malloc(cap * sizeof(uint64_t));
	r->used = calloc(cap, 1);
	r->order = malloc(max * sizeof(uint64_t));
	if (!r->k || !r->v || !r->used || !r->order)
		FAIL("out of memory");
	r->mask = cap - 1;
	r->n = 0;
}

static void ref_free(struct ref *r)
{
	free(r->k);
	free(r->v);
	free(r->used);
	free(r->order);
}

static size_t ref_slot(const struct ref *r, uint64_t key)
{
	size_t i = (size_t)mix64(key) & r->mask;
	while (r->used[i] && r->k[i] != key)
		i = (i + 1) & r->mask;
	return i;
}

static bool ref_get(const struct ref *r, uint64_t key, uint64_t *val)
{
	size_t i = ref_slot(r, key);
	if (r->used[i] && val)
		*val = r->v[i];
	return r->used[i];
}

/* Set key's value; true if the key is new. The caller keeps n below max. */
static bool ref_put(struct ref *r, uint64_t key, uint64_t val)
{
	size_t i = ref_slot(r, key);
	r->v[i] = val;
	if (r->used[i])
		return false;
	r->used[i] = 1;
	r->k[i] = key;
	r->order[r->n++] = key;
	return true;
}

/* Every key of the reference (every stride-th) is in the tree with its value. */
static void ref_verify_some(struct btree *t, const struct ref *r, size_t stride, const char *what)
{
	for (size_t i = 0, seen = 0; i <= r->mask; i++) {
		if (!r->used[i] || seen++ % stride)
			continue;
		uint64_t v = CANARY;
		int rc = bt_lookup(t, r->k[i], &v);
		CHECK(rc == 1 && v == r->v[i], "%s: lookup of %#" PRIx64 " = %d, value %#" PRIx64
		      " (want 1, %#" PRIx64 ")", what, r->k[i], rc, v, r->v[i]);
	}
}

static void ref_verify(struct btree *t, const struct ref *r, const char *what)
{
	ref_verify_some(t, r, 1, what);
}

struct kv {
	uint64_t k, v;
};

static int kv_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct kv *)a)->k, y = ((const struct kv *)b)->k;
	return x < y ? -1 : x > y;
}

/* The reference's pairs in key order. */
static struct kv *ref_sorted(const struct ref *r)
{
	struct kv *s = malloc((r->n + 1) * sizeof(*s));
	if (!s)
		FAIL("out of memory");
	size_t m = 0;
	for (size_t i = 0; i <= r->mask; i++)
		if (r->used[i])
			s[m++] = (struct kv){ r->k[i], r->v[i] };
	qsort(s, m, sizeof(*s), kv_cmp);
	return s;
}

static size_t kv_lower_bound(const struct kv *s, size_t m, uint64_t key)
{
	size_t lo = 0, hi = m;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[mid].k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* bt_scan(start, n) against the sorted reference: exactly the next min(n, left) pairs,
 * and nothing written past n. kb and vb hold n + 1. */
static void scan_vs(struct btree *t, const struct kv *s, size_t m, uint64_t start, size_t n,
		    bool with_vals, uint64_t *kb, uint64_t *vb)
{
	size_t p = kv_lower_bound(s, m, start), want = n < m - p ? n : m - p;
	kb[n] = CANARY;
	vb[n] = CANARY;
	size_t got = bt_scan(t, start, n, kb, with_vals ? vb : NULL);
	CHECK(got == want, "scan from %#" PRIx64 " for %zu: %zu keys, want %zu", start, n, got, want);
	for (size_t j = 0; j < got; j++)
		CHECK(kb[j] == s[p + j].k && (!with_vals || vb[j] == s[p + j].v),
		      "scan from %#" PRIx64 " for %zu: item %zu is %#" PRIx64 " = %#" PRIx64
		      ", want %#" PRIx64 " = %#" PRIx64,
		      start, n, j, kb[j], with_vals ? vb[j] : 0, s[p + j].k, s[p + j].v);
	CHECK(kb[n] == CANARY && vb[n] == CANARY, "scan for %zu wrote past the end", n);
}

/* ---- 1. one thread against a reference ---- */

/* Keys of three kinds: uniform, ascending runs (the right-most leaf splits over and
 * over), and a dense low range (many repeats). */
static uint64_t pick_key(uint64_t *s, uint64_t *run)
{
	uint64_t x = rnd(s);
	switch (x % 10) {
	case 0:
	case 1:
		return *run += 1 + (x >> 62);
	case 2:
		return (x >> 8) % 50000;
	default:
		return rnd(s);
	}
}

static void test_single(uint64_t seed)
{
	size_t N = (size_t)env_long("LEAP_BTREE_N", UNDER_TSAN ? 100000 : 300000);
	if (N < 1000)
		N = 1000;
	uint64_t s = subseed(seed, 1), run = UINT64_C(1) << 40;
	struct btree t;

	/* bt_init's arguments */
	void *small = arena_new(4 * NB, true);
	CHECK(bt_init(&t, NULL, 4 * NB) == -EINVAL, "bt_init(NULL)");
	CHECK(bt_init(&t, (char *)small + 8, 3 * NB) == -EINVAL, "bt_init of misaligned memory");
	CHECK(bt_init(&t, small, NB - 1) == -EINVAL, "bt_init of less than a node");
	tree_init(&t, small, 3 * NB + 100);
	CHECK(t.cap == 3 * NB, "cap %zu, want %zu (whole nodes)", t.cap, 3 * NB);
	check_tree(&t, 0, "empty tree");
	uint64_t v0 = 7;
	CHECK(bt_lookup(&t, 0, &v0) == 0 && v0 == 7, "lookup in an empty tree");
	uint64_t kb0[2] = { CANARY, CANARY };
	CHECK(bt_scan(&t, 0, 1, kb0, NULL) == 0 && kb0[0] == CANARY, "scan of an empty tree");
	CHECK(bt_update(&t, 5, 5, NULL, NULL) == 0, "update in an empty tree");
	arena_free(small, 4 * NB);

	/* a node per 100 keys: leaves are at least half full (127 keys), inner nodes too */
	size_t bytes = (N / 100 + 64) * NB;
	void *mem = arena_new(bytes, true);
	tree_init(&t, mem, bytes);
	struct ref ref;
	ref_init(&ref, N);
	struct rec h = { 0, 0, 0 };
	void *root = atomic_load(&t.root);
	int root_changes = 0;
	const uint64_t edge[] = { 0, UINT64_MAX, 1, UINT64_MAX - 1 };
	for (size_t i = 0; i < N; i++) {
		uint64_t key;
		if (i < 4)
			key = edge[i];
		else if (i % 16 == 7)
			key = ref.order[rnd(&s) % ref.n]; /* present: insert sets the value */
		else
			key = pick_key(&s, &run);
		uint64_t val = rnd(&s), c0 = h.calls;
		int want = ref_put(&ref, key, val) ? 1 : 0;
		int rc = bt_insert(&t, key, val, rec_hook, &h);
		CHECK(rc == want, "insert %zu of %#" PRIx64 " = %d, want %d", i, key, rc, want);
		expect_hook(&h, c0, key, val, "insert");
		if (atomic_load(&t.root) != root) {
			root = atomic_load(&t.root);
			root_changes++;
		}
		if ((i + 1) % (N / 8) == 0)
			check_tree(&t, ref.n, "random inserts");
	}
	struct bt_report r = check_tree(&t, ref.n, "random inserts");
	CHECK(r.height > 1 && r.inner >= 1, "height %" PRIu64 " after %zu keys", r.height, ref.n);
	/* more leaves than one inner node can hold children: at least three levels */
	if (ref.n > (size_t)BT_LEAF_CAP * (BT_INNER_CAP + 1))
		CHECK(r.height >= 3, "height %" PRIu64 " for %zu keys", r.height, ref.n);
	CHECK((uint64_t)root_changes == r.height - 1,
	      "the root changed %d times, the tree is %" PRIu64 " high (each root split adds a level)",
	      root_changes, r.height);
	ref_verify(&t, &ref, "after inserts");

	/* absent keys: random ones, and the neighbours of present ones */
	for (size_t i = 0; i < N / 2; i++) {
		uint64_t key = i % 2 ? rnd(&s) : ref.order[rnd(&s) % ref.n] + (i % 4 == 0 ? 1 : -1);
		if (ref_get(&ref, key, NULL))
			continue;
		uint64_t v = CANARY;
		CHECK(bt_lookup(&t, key, &v) == 0 && v == CANARY, "absent %#" PRIx64 " found", key);
	}
	/* lookups without a value pointer */
	for (size_t i = 0; i < 1000; i++)
		CHECK(bt_lookup(&t, ref.order[rnd(&s) % ref.n], NULL) == 1, "lookup with val NULL");

	/* updates of present keys (1, hook), of absent keys (0, no hook, nothing inserted),
	 * inserts of present keys (0, value set, hook) */
	uint64_t absent[512];
	size_t nabsent = 0;
	for (size_t i = 0; i < N / 4; i++) {
		uint64_t key = ref.order[rnd(&s) % ref.n], val = rnd(&s), c0 = h.calls;
		ref_put(&ref, key, val);
		int rc = bt_update(&t, key, val, rec_hook, &h);
		CHECK(rc == 1, "update of present %#" PRIx64 " = %d", key, rc);
		expect_hook(&h, c0, key, val, "update");
		if (i % 8 == 0) {
			uint64_t v = 0;
			CHECK(bt_lookup(&t, key, &v) == 1 && v == val, "updated value not read back");
		}
		key = rnd(&s);
		if (!ref_get(&ref, key, NULL)) {
			c0 = h.calls;
			rc = bt_update(&t, key, val, rec_hook, &h);
			CHECK(rc == 0 && h.calls == c0, "update of absent %#" PRIx64 " = %d, hook ran %" PRIu64
			      " times", key, rc, h.calls - c0);
			if (nabsent < 512)
				absent[nabsent++] = key;
		}
		if (i % 4 == 0) {
			key = ref.order[rnd(&s) % ref.n];
			val = rnd(&s);
			c0 = h.calls;
			ref_put(&ref, key, val);
			rc = bt_insert(&t, key, val, rec_hook, &h);
			CHECK(rc == 0, "insert of present %#" PRIx64 " = %d", key, rc);
			expect_hook(&h, c0, key, val, "re-insert");
		}
	}
	for (size_t i = 0; i < nabsent; i++)
		CHECK(bt_lookup(&t, absent[i], NULL) == 0, "update of absent %#" PRIx64 " inserted it",
		      absent[i]);
	check_tree(&t, ref.n, "after updates");
	ref_verify(&t, &ref, "after updates");

	/* scans against the sorted reference */
	struct kv *sorted = ref_sorted(&ref);
	size_t m = ref.n;
	uint64_t *kb = malloc((m + 64) * sizeof(uint64_t)), *vb = malloc((m + 64) * sizeof(uint64_t));
	if (!kb || !vb)
		FAIL("out of memory");
	const size_t lens[] = { 0, 1, 2, 3, 126, 127, 253, 254, 255, 256, 509, 1000, 5000 };
	const size_t nlens = sizeof(lens) / sizeof(lens[0]);
	uint64_t starts[1100];
	size_t ns = 0;
	const uint64_t fixed[] = { 0, 1, 2, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 2, sorted[0].k,
				   sorted[m - 1].k, sorted[m - 2].k, sorted[m - 2].k + 1,
				   sorted[m / 2].k, sorted[m / 2].k + 1, sorted[m / 2].k - 1 };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		starts[ns++] = fixed[i];
	while (ns < 1100) {
		uint64_t x = rnd(&s);
		starts[ns++] = x % 3 == 0 ? rnd(&s) : sorted[rnd(&s) % m].k + x % 3 - 1;
	}
	for (size_t i = 0; i < ns; i++) {
		for (int j = 0; j < 3; j++)
			scan_vs(&t, sorted, m, starts[i], lens[rnd(&s) % nlens], j != 2, kb, vb);
		if (i < 13 || i % 128 == 0) /* n past the whole tree */
			scan_vs(&t, sorted, m, starts[i], m + 10, true, kb, vb);
	}
	/* the whole tree in chunks, each starting after the last key of the one before */
	size_t at = 0;
	uint64_t start = 0;
	for (;;) {
		size_t got = bt_scan(&t, start, 777, kb, vb);
		for (size_t j = 0; j < got; j++, at++)
			CHECK(at < m && kb[j] == sorted[at].k && vb[j] == sorted[at].v,
			      "chunked scan: item %zu wrong", at);
		if (got < 777 || kb[got - 1] == UINT64_MAX)
			break;
		start = kb[got - 1] + 1;
	}
	CHECK(at == m, "chunked scan saw %zu keys, want %zu", at, m);
	say("single thread: %zu keys, height %" PRIu64 ", %" PRIu64 " leaves (fill %.2f), %" PRIu64
	    " inner nodes, %zu scans checked",
	    m, r.height, r.leaves, r.leaf_fill, r.inner, ns * 3);
	free(kb);
	free(vb);
	free(sorted);
	ref_free(&ref);
	arena_free(mem, bytes);
}

/* ---- 2. bulk load ---- */

struct gen {
	uint64_t base, step;
	size_t bad_at;
	int bad; /* 1: key bad_at equals the one before; 2: it is below it */
};

static uint64_t gen_key(size_t i, void *arg)
{
	const struct gen *g = arg;
	uint64_t k = g->base + i * g->step;
	if (g->bad && i == g->bad_at)
		k -= g->bad == 1 ? g->step : g->step + 1;
	return k;
}

static uint64_t gen_val(size_t i, void *arg)
{
	return gen_key(i, arg) ^ UINT64_C(0x5a5a5a5a5a5a5a5a);
}

/* Keys a bulk-loaded node gets: `fill` of the capacity, at least half of it. */
static size_t per_node(double fill, size_t cap)
{
	size_t per = (size_t)(fill * (double)cap);
	return per < (cap + 1) / 2 ? (cap + 1) / 2 : per > cap ? cap : per;
}

static size_t want_leaves(size_t n, double fill)
{
	size_t k = n / per_node(fill, BT_LEAF_CAP), min = (n + BT_LEAF_CAP - 1) / BT_LEAF_CAP;
	k = k < min ? min : k;
	return k ? k : 1;
}

/* One bulk load of n keys at fill, arena of exactly bt_bulk_bytes(); then the errors
 * that arena size and a loaded tree give; then inserts into a roomier copy. */
static void bulk_case(size_t n, double fill, bool top, uint64_t *s)
{
	char what[64];
	snprintf(what, sizeof(what), "bulk load of %zu at %.1f", n, fill);
	size_t bytes = bt_bulk_bytes(n, fill);
	CHECK(bytes >= NB && bytes % NB == 0, "%s: bt_bulk_bytes = %zu", what, bytes);
	/* keys at steps of 3 (the ones between are absent), ending at UINT64_MAX or from 0 */
	struct gen g = { top && n ? UINT64_MAX - (uint64_t)(n - 1) * 3 : 0, 3, 0, 0 };
	void *mem = arena_new(bytes, true);
	struct btree t;
	tree_init(&t, mem, bytes);
	int rc = bt_bulk_load(&t, n, gen_key, gen_val, &g, fill);
	CHECK(rc == 0, "%s into %zu bytes = %d", what, bytes, rc);
	CHECK(atomic_load(&t.used) == bytes, "%s: %zu bytes used, bt_bulk_bytes says %zu", what,
	      (size_t)atomic_load(&t.used), bytes);
	struct bt_report r = check_tree(&t, n, what);
	CHECK((r.leaves + r.inner) * NB == bytes, "%s: %" PRIu64 " + %" PRIu64 " nodes in %zu bytes",
	      what, r.leaves, r.inner, bytes);
	CHECK(r.leaves == want_leaves(n, fill), "%s: %" PRIu64 " leaves, want %zu", what, r.leaves,
	      want_leaves(n, fill));
	CHECK((r.height == 1) == (r.leaves == 1), "%s: height %" PRIu64 " with %" PRIu64 " leaves",
	      what, r.height, r.leaves);
	/* leaves get `fill` of their capacity, unless n / per leaves would overflow: then
	 * just enough leaves, at least half full (which bt_check checked) */
	size_t per = per_node(fill, BT_LEAF_CAP);
	if (n >= per && n / per >= (n + BT_LEAF_CAP - 1) / BT_LEAF_CAP)
		CHECK(r.leaf_fill * BT_LEAF_CAP >= (double)per - 1e-9,
		      "%s: leaves %.3f full, want at least %zu keys each", what, r.leaf_fill, per);
	size_t stride = UNDER_TSAN && n > 20000 ? 7 : 1;
	for (size_t i = 0; i < n; i += stride) {
		uint64_t k = gen_key(i, &g), v = CANARY;
		CHECK(bt_lookup(&t, k, &v) == 1 && v == gen_val(i, &g), "%s: key %zu (%#" PRIx64
		      ") not found with its value", what, i, k);
		if (k != UINT64_MAX)
			CHECK(bt_lookup(&t, k + 1, NULL) == 0, "%s: absent %#" PRIx64 " found", what, k + 1);
	}
	/* the whole tree in order, in chunks; and short scans from random keys */
	uint64_t kb[301], vb[301];
	size_t at = 0;
	uint64_t start = 0;
	for (;;) {
		size_t got = bt_scan(&t, start, 300, kb, vb);
		for (size_t j = 0; j < got; j++, at++)
			CHECK(at < n && kb[j] == gen_key(at, &g) && vb[j] == gen_val(at, &g),
			      "%s: scan item %zu wrong", what, at);
		if (got < 300 || kb[got - 1] == UINT64_MAX)
			break;
		start = kb[got - 1] + 1;
	}
	CHECK(at == n, "%s: scan saw %zu keys", what, at);
	for (int j = 0; n && j < 20; j++) {
		size_t i = rnd(s) % n, len = 1 + rnd(s) % 300;
		uint64_t k = gen_key(i, &g);
		size_t got = bt_scan(&t, k - (j % 2 && k), len, kb, vb);
		CHECK(got == (len < n - i ? len : n - i), "%s: scan from key %zu got %zu", what, i, got);
		for (size_t x = 0; x < got; x++)
			CHECK(kb[x] == gen_key(i + x, &g), "%s: scan from key %zu item %zu", what, i, x);
	}
	/* a loaded tree is not empty; an empty one can still be loaded */
	rc = bt_bulk_load(&t, 5, gen_key, gen_val, &g, fill);
	if (n) {
		CHECK(rc == -EINVAL, "%s: loading the loaded tree = %d, want -EINVAL", what, rc);
		check_tree(&t, n, "after a refused bulk load");
	} else {
		CHECK(rc == 0, "bulk load after one of 0 keys = %d", rc);
		check_tree(&t, 5, "bulk load after one of 0 keys");
	}
	/* an arena a node short: -ENOMEM, the tree still empty and usable */
	if (bytes > NB) {
		tree_init(&t, mem, bytes - NB);
		rc = bt_bulk_load(&t, n, gen_key, gen_val, &g, fill);
		CHECK(rc == -ENOMEM, "%s into %zu bytes (a node short) = %d, want -ENOMEM", what,
		      bytes - NB, rc);
		check_tree(&t, 0, "after -ENOMEM");
		CHECK(bt_insert(&t, 42, 43, NULL, NULL) == 1, "insert after a bulk load's -ENOMEM");
		check_tree(&t, 1, "insert after -ENOMEM");
	}
	arena_free(mem, bytes);

	/* inserts into a loaded tree: between its keys, and past either end */
	size_t extra = (n < 2000 ? n : 2000) + 300;
	size_t big = bytes + ((n + extra) / 100 + 16) * NB;
	mem = arena_new(big, true);
	tree_init(&t, mem, big);
	CHECK(bt_bulk_load(&t, n, gen_key, gen_val, &g, fill) == 0, "%s again", what);
	struct ref ref;
	ref_init(&ref, n + extra);
	for (size_t i = 0; i < n; i++)
		ref_put(&ref, gen_key(i, &g), gen_val(i, &g));
	for (size_t i = 0; i < extra; i++) {
		uint64_t x = rnd(s), k;
		if (n && x % 4)
			k = gen_key(x % n, &g) + (top ? (uint64_t)-1 : 1); /* between keys */
		else if (top)
			k = g.base - 1 - x % 100000; /* below the first key */
		else
			k = (uint64_t)n * 3 + x % 100000; /* past the last key */
		uint64_t v = rnd(s);
		int want = ref_put(&ref, k, v) ? 1 : 0;
		rc = bt_insert(&t, k, v, NULL, NULL);
		CHECK(rc == want, "%s: insert of %#" PRIx64 " after the load = %d, want %d", what, k, rc,
		      want);
		if ((i + 1) % (extra / 4) == 0)
			check_tree(&t, ref.n, "inserts after a bulk load");
	}
	check_tree(&t, ref.n, "inserts after a bulk load");
	ref_verify_some(&t, &ref, stride, "inserts after a bulk load");
	ref_free(&ref);
	arena_free(mem, big);
}

static void test_bulk(uint64_t seed)
{
	uint64_t s = subseed(seed, 2);
	const size_t sizes[] = { 0,
				 1,
				 2,
				 126,
				 127,
				 128,
				 253,
				 254,
				 255,
				 256,
				 381,
				 508,
				 509,
				 510,
				 127 * 127,
				 127 * 254,
				 254 * 254,
				 254 * 254 + 1,
				 100000 };
	const double fills[] = { 0.5, 0.7, 1.0 };
	int cases = 0;
	for (size_t f = 0; f < 3; f++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++, cases++)
			bulk_case(sizes[i], fills[f], cases % 2, &s);

	/* errors: bad fills, keys not ascending, a tree not empty */
	size_t bytes = bt_bulk_bytes(1000, 0.5) + NB;
	void *mem = arena_new(bytes, true);
	struct btree t;
	struct gen g = { 10, 3, 0, 0 };
	const double bad_fill[] = { 0.49, 1.01, -1, 0, __builtin_nan("") };
	for (int i = 0; i < 5; i++) {
		tree_init(&t, mem, bytes);
		int rc = bt_bulk_load(&t, 1000, gen_key, gen_val, &g, bad_fill[i]);
		CHECK(rc == -EINVAL, "bulk load at fill %f = %d, want -EINVAL", bad_fill[i], rc);
		check_tree(&t, 0, "after a bad fill");
	}
	const size_t bad_at[] = { 1, 2, 100, 176, 177, 178, 253, 254, 500, 998, 999 };
	for (size_t i = 0; i < sizeof(bad_at) / sizeof(bad_at[0]); i++)
		for (int kind = 1; kind <= 2; kind++) {
			struct gen b = { 10, 3, bad_at[i], kind };
			tree_init(&t, mem, bytes);
			int rc = bt_bulk_load(&t, 1000, gen_key, gen_val, &b, 0.7);
			CHECK(rc == -EINVAL, "bulk load with key %zu %s the one before = %d, want -EINVAL",
			      bad_at[i], kind == 1 ? "equal to" : "below", rc);
		}
	tree_init(&t, mem, bytes);
	CHECK(bt_insert(&t, 7, 8, NULL, NULL) == 1, "insert");
	int rc = bt_bulk_load(&t, 10, gen_key, gen_val, &g, 0.7);
	CHECK(rc == -EINVAL, "bulk load into a tree with a key = %d, want -EINVAL", rc);
	check_tree(&t, 1, "after a refused bulk load");
	arena_free(mem, bytes);
	say("bulk load: %d cases of %zu sizes at 3 fills", cases, sizeof(sizes) / sizeof(sizes[0]));
}

/* ---- 3. a full arena ---- */

/* Ascending even keys 2, 4, ... into an arena of `nodes` nodes, until -ENOMEM; how many
 * went in. The tree stays valid and holds exactly those. */
static size_t fill_up(struct btree *t, uint64_t first, uint64_t step, size_t *have)
{
	for (uint64_t k = first;; k += step) {
		uint64_t v = k * 3;
		int rc = bt_insert(t, k, v, NULL, NULL);
		if (rc == -ENOMEM) {
			check_tree(t, *have, "after -ENOMEM");
			CHECK(bt_lookup(t, k, NULL) == 0, "key %" PRIu64 " there after its -ENOMEM", k);
			return *have;
		}
		CHECK(rc == 1, "insert of %" PRIu64 " = %d", k, rc);
		++*have;
	}
}

static void test_full(uint64_t seed)
{
	struct btree t;
	/* one node: the root leaf takes 254 keys; the 255th needs two more nodes */
	for (size_t nodes = 1; nodes <= 3; nodes++) {
		void *mem = arena_new(nodes * NB, true);
		tree_init(&t, mem, nodes * NB);
		size_t have = 0;
		if (nodes < 3) {
			CHECK(fill_up(&t, 2, 2, &have) == BT_LEAF_CAP, "%zu node(s): %zu keys before -ENOMEM",
			      nodes, have);
			/* an existing key in a full leaf: either set (0) or -ENOMEM, value unchanged */
			uint64_t v = 0;
			int rc = bt_insert(&t, 2, 99, NULL, NULL);
			CHECK(rc == 0 || rc == -ENOMEM, "re-insert into a full arena = %d", rc);
			CHECK(bt_lookup(&t, 2, &v) == 1 && v == (rc ? 6 : 99), "re-insert left %" PRIu64, v);
			CHECK(bt_update(&t, 4, 77, NULL, NULL) == 1, "update in a full arena");
			CHECK(bt_lookup(&t, 4, &v) == 1 && v == 77, "update in a full arena not read back");
			struct bt_report r = check_tree(&t, BT_LEAF_CAP, "full root leaf");
			CHECK(r.height == 1, "height %" PRIu64, r.height);
		} else {
			/* the root splits (127 + 127), then ascending keys fill the right leaf */
			CHECK(fill_up(&t, 2, 2, &have) == LEAF_MIN + BT_LEAF_CAP,
			      "3 nodes, ascending keys: %zu before -ENOMEM, want %u", have,
			      LEAF_MIN + BT_LEAF_CAP);
			/* odd keys below the separator fill the left leaf */
			CHECK(fill_up(&t, 1, 2, &have) == 2 * BT_LEAF_CAP, "3 nodes: %zu keys in all", have);
			struct bt_report r = check_tree(&t, 2 * BT_LEAF_CAP, "3 full nodes");
			CHECK(r.height == 2 && r.leaves == 2, "height %" PRIu64 ", %" PRIu64 " leaves",
			      r.height, r.leaves);
		}
		arena_free(mem, nodes * NB);
	}

	/* random keys into 64 nodes until -ENOMEM, then more: each -ENOMEM changes nothing */
	uint64_t s = subseed(seed, 3);
	const size_t nodes = 64;
	void *mem = arena_new(nodes * NB, true);
	tree_init(&t, mem, nodes * NB);
	struct ref ref;
	ref_init(&ref, nodes * BT_LEAF_CAP + 1);
	size_t tries = 0;
	for (;; tries++) {
		CHECK(tries < nodes * BT_LEAF_CAP, "no -ENOMEM after %zu inserts into %zu nodes", tries,
		      nodes);
		uint64_t k = rnd(&s), v = rnd(&s);
		if (ref_get(&ref, k, NULL))
			continue;
		int rc = bt_insert(&t, k, v, NULL, NULL);
		if (rc == -ENOMEM) {
			CHECK(bt_lookup(&t, k, NULL) == 0, "key there after its -ENOMEM");
			break;
		}
		CHECK(rc == 1, "insert = %d", rc);
		ref_put(&ref, k, v);
	}
	check_tree(&t, ref.n, "at the first -ENOMEM");
	ref_verify(&t, &ref, "at the first -ENOMEM");
	size_t ok_after = 0, nomem = 0;
	for (int i = 0; i < 3000; i++) {
		bool old = i % 3 == 0;
		uint64_t k = old ? ref.order[rnd(&s) % ref.n] : rnd(&s), v = rnd(&s), was = 0;
		bool present = ref_get(&ref, k, &was);
		int rc = bt_insert(&t, k, v, NULL, NULL);
		uint64_t got = CANARY;
		int found = bt_lookup(&t, k, &got);
		if (rc == -ENOMEM) {
			nomem++;
			CHECK(present ? found == 1 && got == was : found == 0,
			      "-ENOMEM changed key %#" PRIx64 " (found %d, %#" PRIx64 ")", k, found, got);
		} else {
			CHECK(rc == (present ? 0 : 1), "insert into a full arena = %d, key %s", rc,
			      present ? "present" : "new");
			CHECK(found == 1 && got == v, "insert into a full arena not read back");
			ref_put(&ref, k, v);
			ok_after += !present;
		}
	}
	CHECK(nomem > 0 && ok_after > 0, "after the first -ENOMEM: %zu more -ENOMEM, %zu new keys in",
	      nomem, ok_after);
	CHECK(atomic_load(&t.used) >= t.cap, "arena full but used %zu < cap %zu",
	      (size_t)atomic_load(&t.used), t.cap);
	for (size_t i = 0; i < ref.n; i++) { /* updates take no room */
		uint64_t k = ref.order[i], v = rnd(&s);
		CHECK(bt_update(&t, k, v, NULL, NULL) == 1, "update in a full arena");
		ref_put(&ref, k, v);
	}
	struct bt_report r = check_tree(&t, ref.n, "full arena");
	ref_verify(&t, &ref, "full arena");
	say("full arena: %zu keys in %zu nodes (%" PRIu64 " leaves, fill %.2f), %zu refused later, %zu "
	    "fitted",
	    ref.n, nodes, r.leaves, r.leaf_fill, nomem, ok_after);
	ref_free(&ref);
	arena_free(mem, nodes * NB);
}

/* ---- 4. the checker catches corruption ---- */

/*
 * A mirror of btree.c's private struct bt_node: the same members in the same order, with
 * plain types of the size and alignment of its _Atomic ones (lock-free atomics of 4 and 8
 * bytes have the plain type's representation on the targets this builds on). Only the
 * single-threaded corruption test uses it, and only after mirror_matches() has checked it
 * against a live tree: the root's level, every level on the leftmost path, the leaf chain
 * (counts, keys, values, next pointers) against a bt_scan of the whole tree, and the
 * root's first separator against the smallest key under its second child.
 */
struct mnode {
	uint64_t version;
	uint32_t count;
	uint16_t leaf;
	uint16_t level;
	struct mnode *next;
	union {
		struct {
			uint64_t keys[BT_LEAF_CAP];
			uint64_t vals[BT_LEAF_CAP];
		} l;
		struct {
			uint64_t keys[BT_INNER_CAP];
			struct mnode *child[BT_INNER_CAP + 1];
		} i;
	};
};
_Static_assert(sizeof(struct mnode) <= BT_NODE_BYTES, "mirror larger than a node");

static struct mnode *mroot(struct btree *t)
{
	return (struct mnode *)(void *)atomic_load(&t->root);
}

static struct mnode *leftmost_leaf(struct mnode *n)
{
	while (!n->leaf)
		n = n->i.child[0];
	return n;
}

static void mirror_matches(struct btree *t, size_t n)
{
	struct bt_report r = check_tree(t, n, "tree for the mirror");
	struct mnode *root = mroot(t);
#define MIRROR(cond, ...)                                                                        \
	do {                                                                                     \
		if (!(cond))                                                                     \
			FAIL("struct mnode does not match btree.c's struct bt_node: " __VA_ARGS__); \
	} while (0)
	MIRROR(root->level + 1u == r.height && root->leaf == (r.height == 1), "root level %u, leaf %u",
	       root->level, root->leaf);
	struct mnode *x = root;
	for (unsigned lv = root->level; lv > 0; lv--) {
		MIRROR(!x->leaf && x->level == lv && x->count >= 1 && x->count <= BT_INNER_CAP,
		       "inner node at level %u", lv);
		x = x->i.child[0];
		MIRROR((char *)x >= t->base && (char *)x < t->base + t->cap, "child outside the arena");
	}
	MIRROR(x->leaf && x->level == 0, "leftmost leaf");
	uint64_t *kb = malloc((n + 1) * sizeof(uint64_t)), *vb = malloc((n + 1) * sizeof(uint64_t));
	if (!kb || !vb)
		FAIL("out of memory");
	MIRROR(bt_scan(t, 0, n + 1, kb, vb) == n, "scan");
	size_t at = 0, leaves = 0;
	for (; x; x = x->next, leaves++) {
		MIRROR(x->leaf && x->count <= BT_LEAF_CAP && at + x->count <= n, "leaf %zu", leaves);
		for (uint32_t j = 0; j < x->count; j++, at++)
			MIRROR(x->l.keys[j] == kb[at] && x->l.vals[j] == vb[at], "leaf key %zu", at);
	}
	MIRROR(at == n && leaves == r.leaves, "%zu keys in %zu leaves", at, leaves);
	if (!root->leaf)
		MIRROR(root->i.keys[0] == leftmost_leaf(root->i.child[1])->l.keys[0], "separator");
#undef MIRROR
	free(kb);
	free(vb);
}

static int caught_count;

/* bt_check must fail with -EUCLEAN and a message containing `rule`. */
static void expect_caught(struct btree *t, const char *what, const char *rule)
{
	struct bt_report r;
	char err[256];
	memset(err, 0, sizeof(err));
	int rc = bt_check(t, &r, err, sizeof(err));
	CHECK(rc == -EUCLEAN, "corruption not caught: %s (bt_check = %d)", what, rc);
	CHECK(err[0] && strstr(err, rule), "corruption '%s' caught with message '%s', want '%s' in it",
	      what, err, rule);
	caught_count++;
	if (verbose)
		say("caught %s: %s", what, err);
}

/* Set lvalue to bad, expect the checker to catch it with `rule`, put it back, expect a
 * valid tree of n keys again. */
#define CORRUPT(t, n, what, rule, lv, bad)                                                       \
	do {                                                                                     \
		__typeof__(lv) saved_ = (lv);                                                    \
		(lv) = (bad);                                                                    \
		expect_caught(t, what, rule);                                                    \
		(lv) = saved_;                                                                   \
		check_tree(t, n, "repaired: " what);                                             \
	} while (0)
/* The same for swapping two lvalues. */
#define SWAPPED(t, n, what, rule, a, b)                                                          \
	do {                                                                                     \
		__typeof__(a) tmp_ = (a);                                                        \
		(a) = (b);                                                                       \
		(b) = tmp_;                                                                      \
		expect_caught(t, what, rule);                                                    \
		tmp_ = (a);                                                                      \
		(a) = (b);                                                                       \
		(b) = tmp_;                                                                      \
		check_tree(t, n, "repaired: " what);                                             \
	} while (0)

static void test_corrupt(void)
{
	/* three levels: a root, two inner nodes, 315 leaves of 190 keys (keys 10, 20, ...) */
	const size_t n = 60000;
	struct gen g = { 10, 10, 0, 0 };
	size_t bytes = bt_bulk_bytes(n, 0.75);
	void *mem = arena_new(bytes, true);
	struct btree tree, *t = &tree;
	tree_init(t, mem, bytes);
	CHECK(bt_bulk_load(t, n, gen_key, gen_val, &g, 0.75) == 0, "bulk load");
	mirror_matches(t, n);
	struct mnode *R = mroot(t);
	CHECK(R->level == 2 && R->count == 1, "want a root of 2 children above inner nodes");
	struct mnode *A = R->i.child[0], *B = R->i.child[1];
	CHECK(A->count >= 6 && B->count >= 2, "inner nodes too small");
	struct mnode *L0 = A->i.child[0], *Lm = A->i.child[5], *Ln = A->i.child[6];
	struct mnode *Llast = B->i.child[B->count];
	CHECK(Lm->next == Ln && Llast->leaf && !Llast->next, "leaves not where expected");
	uint32_t cm = Lm->count;
	char *base = t->base;

	/* keys out of order, in a leaf and in an inner node */
	SWAPPED(t, n, "two keys of a leaf swapped", "not above", Lm->l.keys[3], Lm->l.keys[4]);
	CORRUPT(t, n, "a leaf key repeated", "not above", Lm->l.keys[5], Lm->l.keys[4]);
	SWAPPED(t, n, "two keys of an inner node swapped", "not above", A->i.keys[2], A->i.keys[3]);
	CORRUPT(t, n, "an inner key repeated", "not above", A->i.keys[1], A->i.keys[0]);
	/* counts above capacity and below half */
	CORRUPT(t, n, "a leaf above capacity", "holds", Lm->count, BT_LEAF_CAP + 1);
	CORRUPT(t, n, "a leaf far above capacity", "holds", Lm->count, UINT32_MAX);
	CORRUPT(t, n, "a leaf below half", "less than half", Lm->count, LEAF_MIN - 1);
	CORRUPT(t, n, "the last leaf below half", "less than half", Llast->count, 1);
	CORRUPT(t, n, "an inner node above capacity", "holds", A->count, BT_INNER_CAP + 1);
	CORRUPT(t, n, "an inner node below half", "less than half", B->count, INNER_MIN - 1);
	CORRUPT(t, n, "an inner root without keys", "without keys", R->count, 0);
	/* the leaf chain */
	CORRUPT(t, n, "a leaf's next NULL", "leaf chain", Lm->next, NULL);
	CORRUPT(t, n, "a leaf's next skipping one", "leaf chain", Lm->next, Ln->next);
	CORRUPT(t, n, "a leaf's next to itself", "leaf chain", Lm->next, Lm);
	CORRUPT(t, n, "a leaf's next to the first leaf", "leaf chain", Lm->next, L0);
	CORRUPT(t, n, "the last leaf's next to the first", "past the last leaf", Llast->next, L0);
	CORRUPT(t, n, "the last leaf's next to itself", "past the last leaf", Llast->next, Llast);
	/* keys outside the parent's separators (each node still ascending) */
	CORRUPT(t, n, "a leaf's last key at its upper separator", "outside its parent's range",
		Lm->l.keys[cm - 1], Ln->l.keys[0]);
	CORRUPT(t, n, "a leaf's first key just below its separator", "outside its parent's range",
		Ln->l.keys[0], Ln->l.keys[0] - 1);
	CORRUPT(t, n, "an inner key below the root's separator", "outside its parent's range",
		B->i.keys[0], R->i.keys[0] - 1);
	CORRUPT(t, n, "an inner key at the root's separator", "outside its parent's range",
		A->i.keys[A->count - 1], R->i.keys[0]);
	CORRUPT(t, n, "the root's separator above its right child's keys",
		"outside its parent's range", R->i.keys[0], B->i.keys[0]);
	SWAPPED(t, n, "two children swapped", "outside its parent's range", A->i.child[3],
		A->i.child[4]);
	CORRUPT(t, n, "a leaf under two separators", "outside its parent's range", A->i.child[4],
		A->i.child[5]);
	/* nodes left locked */
	CORRUPT(t, n, "a leaf left locked", "locked", Lm->version, Lm->version | 1);
	CORRUPT(t, n, "the last leaf left locked", "locked", Llast->version, Llast->version + 3);
	CORRUPT(t, n, "an inner node left locked", "locked", B->version, B->version | 1);
	CORRUPT(t, n, "the root left locked", "locked", R->version, R->version | 1);
	/* levels and kinds */
	CORRUPT(t, n, "an inner node's level", "level", A->level, 5);
	CORRUPT(t, n, "a leaf's level", "level", Lm->level, 1);
	CORRUPT(t, n, "a leaf marked inner", "leaf level", Lm->leaf, 0);
	CORRUPT(t, n, "the first leaf marked inner", "leaf level", L0->leaf, 0);
	CORRUPT(t, n, "an inner node marked leaf", "at level", B->leaf, 1);
	/* children missing, misaligned, outside the arena (also on the leftmost path) */
	CORRUPT(t, n, "a child NULL", "missing", A->i.child[3], NULL);
	CORRUPT(t, n, "the last child NULL", "missing", B->i.child[B->count], NULL);
	CORRUPT(t, n, "a child misaligned", "outside the arena",
		A->i.child[3], (struct mnode *)(void *)((char *)A->i.child[3] + 8));
	CORRUPT(t, n, "a child past the arena", "outside the arena", A->i.child[3],
		(struct mnode *)(void *)(base + t->cap));
	CORRUPT(t, n, "a child before the arena", "outside the arena", A->i.child[3],
		(struct mnode *)(void *)(base - NB));
	CORRUPT(t, n, "the first child past the arena", "outside the arena", A->i.child[0],
		(struct mnode *)(void *)(base + t->cap));
	CORRUPT(t, n, "the root's first child NULL", "missing", R->i.child[0], NULL);
	CORRUPT(t, n, "a child pointing to its parent", "level", A->i.child[3], A);
	mirror_matches(t, n); /* everything put back */
	arena_free(mem, bytes);

	/* a root leaf may be less than half full, but not unordered, overfull, or chained on */
	size_t n1 = 40;
	bytes = 2 * NB;
	mem = arena_new(bytes, true);
	tree_init(t, mem, bytes);
	for (size_t i = 0; i < n1; i++)
		CHECK(bt_insert(t, i * 5 + 1, i, NULL, NULL) == 1, "insert");
	mirror_matches(t, n1);
	R = mroot(t);
	struct mnode *spare = (struct mnode *)(void *)(t->base + NB); /* an unused node */
	SWAPPED(t, n1, "two keys of the root leaf swapped", "not above", R->l.keys[0], R->l.keys[1]);
	CORRUPT(t, n1, "the root leaf above capacity", "holds", R->count, BT_LEAF_CAP + 1);
	CORRUPT(t, n1, "the root leaf's next set", "past the last leaf", R->next, spare);
	CORRUPT(t, n1, "the root leaf left locked", "locked", R->version, R->version | 1);
	CORRUPT(t, n1, "the root leaf's level", "level", R->level, 1);
	R->count = 1; /* not a violation for the root */
	check_tree(t, 1, "a root leaf of one key");
	R->count = (uint32_t)n1;
	check_tree(t, n1, "root leaf");
	arena_free(mem, bytes);
	say("checker: %d corruptions caught, each repaired tree passed", caught_count);
}

/* ---- 5a. threads growing an empty tree ---- */

struct grow {
	struct btree *t;
	int T;
	size_t K; /* keys per thread */
	bool tight;
	atomic_int running;
};

struct gthr {
	struct grow *g;
	int id;
	pthread_t th;
	uint64_t s;
	uint32_t *perm;
	unsigned char *ok;
	size_t ins, nomem;
	uint64_t reads;
};

/* Thread t's idx-th key: the threads' keys interleave over the whole key space. */
static uint64_t grow_key(int T, size_t idx, int t)
{
	return ((uint64_t)idx * (uint64_t)T + (uint64_t)t) * 8 + 3;
}

static uint64_t grow_val(uint64_t key)
{
	return key * UINT64_C(0x9e3779b97f4a7c15) + 1;
}

static void *grow_inserter(void *arg)
{
	struct gthr *w = arg;
	struct grow *g = w->g;
	for (size_t j = 0; j < g->K; j++) {
		size_t idx = w->perm[j];
		uint64_t key = grow_key(g->T, idx, w->id), v = CANARY;
		int rc = bt_insert(g->t, key, grow_val(key), NULL, NULL);
		if (rc == 1) {
			w->ok[idx] = 1;
			w->ins++;
			CHECK(bt_lookup(g->t, key, &v) == 1 && v == grow_val(key),
			      "thread %d does not read back its insert of %#" PRIx64, w->id, key);
		} else if (rc == -ENOMEM && g->tight) {
			w->nomem++;
			CHECK(bt_lookup(g->t, key, NULL) == 0, "key %#" PRIx64 " there after -ENOMEM", key);
		} else {
			FAIL("thread %d: insert of new key %#" PRIx64 " = %d", w->id, key, rc);
		}
	}
	atomic_fetch_sub(&g->running, 1);
	return NULL;
}

static void *grow_reader(void *arg)
{
	struct gthr *w = arg;
	struct grow *g = w->g;
	uint64_t kb[401], vb[401], span = (uint64_t)g->K * (uint64_t)g->T * 8 + 16;
	while (atomic_load(&g->running) > 0) {
		uint64_t start = rnd(&w->s) % span, prev = 0;
		size_t n = 1 + rnd(&w->s) % 400;
		size_t got = bt_scan(g->t, start, n, kb, vb);
		CHECK(got <= n, "scan returned %zu > %zu", got, n);
		for (size_t j = 0; j < got; j++) {
			uint64_t k = kb[j];
			CHECK(k >= start && (j == 0 || k > prev), "scan from %#" PRIx64 ": item %zu (%#" PRIx64
			      ") not ascending above %#" PRIx64, start, j, k, prev);
			CHECK(k % 8 == 3 && k / 8 < (uint64_t)g->K * (uint64_t)g->T && vb[j] == grow_val(k),
			      "scan returned %#" PRIx64 " = %#" PRIx64 ", never inserted so", k, vb[j]);
			prev = k;
		}
		for (int i = 0; i < 8; i++) {
			uint64_t k = rnd(&w->s) % span, v = CANARY;
			int rc = bt_lookup(g->t, k, &v);
			CHECK(rc == 0 || (k % 8 == 3 && v == grow_val(k)), "lookup of %#" PRIx64 " = %d, %#" PRIx64,
			      k, rc, v);
		}
		w->reads++;
	}
	return NULL;
}

static void shuffle(uint32_t *a, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		a[i] = (uint32_t)i;
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd(s) % i;
		uint32_t x = a[i - 1];
		a[i - 1] = a[j];
		a[j] = x;
	}
}

static void test_grow(uint64_t seed, int T, size_t total, bool tight)
{
	struct grow g = { NULL, T, total / (size_t)T, tight, 0 };
	total = g.K * (size_t)T;
	/* room: a node per 100 keys; tight: a node per 254 keys, which random inserts
	 * (leaves about 70% full) cannot live with */
	size_t bytes = tight ? (total / BT_LEAF_CAP + 1) * NB : (total / 100 + 64) * NB;
	void *mem = arena_new(bytes, true);
	struct btree t;
	tree_init(&t, mem, bytes);
	g.t = &t;
	atomic_store(&g.running, T);
	struct gthr *w = calloc((size_t)T + 1, sizeof(*w));
	if (!w)
		FAIL("out of memory");
	for (int i = 0; i <= T; i++) {
		w[i].g = &g;
		w[i].id = i;
		w[i].s = subseed(seed, 100 + (uint64_t)i + (tight ? 50 : 0));
		if (i < T) {
			w[i].perm = malloc(g.K * sizeof(uint32_t));
			w[i].ok = calloc(g.K, 1);
			if (!w[i].perm || !w[i].ok)
				FAIL("out of memory");
			shuffle(w[i].perm, g.K, &w[i].s);
		}
	}
	double t0 = now_s();
	for (int i = 0; i <= T; i++)
		if (pthread_create(&w[i].th, NULL, i < T ? grow_inserter : grow_reader, &w[i]))
			FAIL("pthread_create");
	for (int i = 0; i <= T; i++)
		pthread_join(w[i].th, NULL);
	double secs = now_s() - t0;
	size_t ins = 0, nomem = 0;
	for (int i = 0; i < T; i++) {
		ins += w[i].ins;
		nomem += w[i].nomem;
	}
	const char *what = tight ? "threads filling a tight arena" : "threads growing a tree";
	struct bt_report r = check_tree(&t, ins, what);
	if (tight) {
		CHECK(nomem > 0, "a tight arena never ran out");
		CHECK(atomic_load(&t.used) >= t.cap, "arena not full");
	} else if (total > (size_t)BT_LEAF_CAP * (BT_INNER_CAP + 1)) {
		CHECK(r.height >= 3, "height %" PRIu64 " after %zu keys", r.height, ins);
	}
	for (int i = 0; i < T; i++)
		for (size_t idx = 0; idx < g.K; idx++) {
			uint64_t k = grow_key(T, idx, i), v = CANARY;
			int rc = bt_lookup(&t, k, &v);
			CHECK(rc == w[i].ok[idx] && (!rc || v == grow_val(k)),
			      "%s: key %#" PRIx64 " lookup %d, inserted %d", what, k, rc, w[i].ok[idx]);
		}
	/* the whole tree in order */
	uint64_t kb[1000], vb[1000], start = 0, prev = 0;
	size_t at = 0, got;
	do {
		got = bt_scan(&t, start, 1000, kb, vb);
		for (size_t j = 0; j < got; j++, at++) {
			uint64_t idx = kb[j] / 8 / (uint64_t)T;
			int owner = (int)(kb[j] / 8 % (uint64_t)T);
			CHECK(kb[j] % 8 == 3 && idx < g.K && w[owner].ok[idx] && vb[j] == grow_val(kb[j]) &&
			      (at == 0 || kb[j] > prev),
			      "%s: full scan item %zu (%#" PRIx64 ")", what, at, kb[j]);
			prev = kb[j];
		}
		if (got)
			start = kb[got - 1] + 1;
	} while (got == 1000);
	CHECK(at == ins, "%s: full scan saw %zu keys, want %zu", what, at, ins);
	say("measured %s: %d threads, %zu inserts (%.0f/s), %zu refused, %" PRIu64
	    " scans meanwhile, %" PRIu64 " restarts, height %" PRIu64,
	    what, T, ins, (double)(ins + nomem) / secs, nomem, w[T].reads,
	    (uint64_t)atomic_load(&t.restarts), r.height);
	for (int i = 0; i < T; i++) {
		free(w[i].perm);
		free(w[i].ok);
	}
	free(w);
	arena_free(mem, bytes);
}

/* ---- 5b. a timed mix on a loaded tree ---- */

/*
 * Keys: i * 32 for i < P are loaded and stay; i * 32 + s for slots s = 1..15 are inserted,
 * slot s by thread (s - 1) % T (its round (s - 1) / T), each thread through the i's in its
 * own order (insert_order); slots 16..31, and keys past P * 32 + 15, are never there. A
 * value is key << 38 | writer << 32 | the writer's counter: unique, and it names its key.
 * Part of the updates, lookups and scans go near an inserting thread's front, where
 * leaves split all the time, and to the keys inserted last.
 */
#define MSTRIDE 32u
#define MSLOTS 16u
#define VAL_SHIFT 38

struct mthr;

struct mix {
	struct btree t;
	size_t P;
	int T;
	uint64_t *shadow; /* [P * MSLOTS]: the last value the hook saw, per key */
	atomic_int stop;
	struct mthr *w;
};

struct mthr {
	struct mix *m;
	int id;
	pthread_t th;
	uint64_t s;
	uint32_t ctr;
	uint32_t *perm, *pos; /* insertion order of the i's, and its inverse */
	size_t quota;
	_Atomic size_t done; /* keys inserted so far: published after each insert returns */
	size_t *snap;
	uint64_t *kb, *vb;
	uint64_t ops, ins, upd, upd_hit, look, scans, scanned, hooks, bad_hooks;
};

static uint64_t mval(uint64_t key, int id, uint32_t ctr)
{
	return key << VAL_SHIFT | (uint64_t)(id + 1) << 32 | ctr;
}

static uint64_t mix_key(size_t i, void *arg)
{
	(void)arg;
	return (uint64_t)i * MSTRIDE;
}

static uint64_t mix_loadval(size_t i, void *arg)
{
	return mix_key(i, arg) << VAL_SHIFT;
}

/* Thread t's k-th insert. */
static uint64_t seq_key(const struct mix *m, int t, size_t k)
{
	size_t r = k / m->P;
	return (uint64_t)m->w[t].perm[k % m->P] * MSTRIDE + 1 + (uint64_t)t + r * (uint64_t)m->T;
}

/* Was key i * 32 + s (s = 1..15) among the first done[owner] inserts of its owner? */
static bool inserted_before(const struct mix *m, uint64_t i, unsigned s, const size_t *done)
{
	int t = (int)((s - 1) % (unsigned)m->T);
	size_t r = (s - 1) / (unsigned)m->T;
	return r * m->P + m->w[t].pos[i] < done[t];
}

static void mix_hook(void *arg, uint64_t key, uint64_t val)
{
	struct mthr *w = arg;
	struct mix *m = w->m;
	w->hooks++;
	uint64_t i = key / MSTRIDE, s = key % MSTRIDE;
	if (i >= m->P || s >= MSLOTS || val >> VAL_SHIFT != key) {
		w->bad_hooks++;
		return;
	}
	m->shadow[i * MSLOTS + s] = val; /* plain memory: ordered by the leaf lock only */
}

/* A thread's order of the i's: alternately the next of a sweep (shuffled in blocks of 16;
 * ascending, or descending when `down`) and the next of a random order, each i once. The
 * sweep keeps a front where the thread's inserts split the same few leaves over and over
 * (descending, each insert shifts the keys inserted just before it); the random half
 * splits leaves everywhere. */
static void insert_order(uint32_t *perm, size_t P, bool down, uint64_t *s)
{
	uint32_t *sweep = malloc(P * sizeof(uint32_t)), *rand_order = malloc(P * sizeof(uint32_t));
	unsigned char *used = calloc(P, 1);
	if (!sweep || !rand_order || !used)
		FAIL("out of memory");
	shuffle(rand_order, P, s);
	for (size_t b = 0; b < P; b += 16) {
		size_t len = P - b < 16 ? P - b : 16;
		shuffle(sweep + b, len, s);
		for (size_t j = 0; j < len; j++)
			sweep[b + j] += (uint32_t)b;
	}
	for (size_t k = 0; down && k < P; k++)
		sweep[k] = (uint32_t)(P - 1) - sweep[k];
	for (size_t k = 0, a = 0, r = 0; k < P; k++) {
		uint32_t x;
		if (k % 2 == 0) {
			while (used[sweep[a]])
				a++;
			x = sweep[a++];
		} else {
			while (used[rand_order[r]])
				r++;
			x = rand_order[r++];
		}
		used[x] = 1;
		perm[k] = x;
	}
	free(sweep);
	free(rand_order);
	free(used);
}

/* An i near the sweep front of a random inserting thread (any i before inserts began). */
static uint64_t hot_i(struct mthr *w)
{
	struct mix *m = w->m;
	const struct mthr *o = &m->w[rnd(&w->s) % (uint64_t)m->T];
	size_t d = atomic_load_explicit(&o->done, memory_order_acquire);
	uint64_t x = rnd(&w->s);
	if (!d)
		return x % m->P;
	uint64_t front = o->perm[((d - 1) % m->P) & ~(size_t)1], off = x % 64;
	return front + off < 32 ? 0 : front + off - 32 >= m->P ? m->P - 1 : front + off - 32;
}

/* A key for an update or lookup, and whether it must be there (1), must not (0) or may (-1). */
static uint64_t pick_mkey(struct mthr *w, int *must)
{
	struct mix *m = w->m;
	uint64_t x = rnd(&w->s), i = (x >> 8) % m->P;
	*must = 1;
	switch (x % 20) {
	case 4: case 5: case 6: case 7: case 8: /* a loaded key where leaves split now */
		return hot_i(w) * MSTRIDE;
	case 9: case 10: case 11: case 12: case 13: case 14: { /* a published insert, often fresh */
		int t = (int)(rnd(&w->s) % (uint64_t)m->T);
		size_t d = atomic_load_explicit(&m->w[t].done, memory_order_acquire);
		if (!d)
			break;
		size_t back = x % 20 >= 11 ? 1 + rnd(&w->s) % (d < 16 ? d : 16) : 1 + rnd(&w->s) % d;
		return seq_key(m, t, d - back);
	}
	case 15: case 16: /* never inserted, between keys that are there */
		*must = 0;
		return i * MSTRIDE + MSLOTS + (x >> 4) % (MSTRIDE - MSLOTS);
	case 17: /* past the last key */
		*must = 0;
		return (uint64_t)m->P * MSTRIDE + MSLOTS + (x >> 4) % 100000;
	case 18: case 19: /* may be there: near a front */
		*must = -1;
		return hot_i(w) * MSTRIDE + 1 + (x >> 4) % (MSLOTS - 1);
	}
	return i * MSTRIDE;
}

static void mix_scan(struct mthr *w)
{
	struct mix *m = w->m;
	for (int t = 0; t < m->T; t++)
		w->snap[t] = atomic_load_explicit(&m->w[t].done, memory_order_acquire);
	uint64_t x = rnd(&w->s);
	uint64_t start = x % 8 == 0   ? (x >> 8) % m->P * MSTRIDE
			 : x % 8 < 4 ? hot_i(w) * MSTRIDE + (x >> 8) % MSTRIDE
				      : (x >> 8) % ((uint64_t)m->P * MSTRIDE + 64);
	size_t n = x % 16 == 1 ? 1000 : 1 + (x >> 40) % 300;
	size_t got = bt_scan(&m->t, start, n, w->kb, w->vb);
	w->scans++;
	w->scanned += got;
	CHECK(got <= n, "scan returned %zu > %zu", got, n);
	uint64_t maxload = (uint64_t)(m->P - 1) * MSTRIDE;
	for (size_t j = 0; j < got; j++) {
		uint64_t k = w->kb[j];
		CHECK(k >= start && (j == 0 || k > w->kb[j - 1]),
		      "scan from %#" PRIx64 ": item %zu (%#" PRIx64 ") not ascending", start, j, k);
		CHECK(k / MSTRIDE < m->P && k % MSTRIDE < MSLOTS && w->vb[j] >> VAL_SHIFT == k,
		      "scan from %#" PRIx64 ": item %zu is %#" PRIx64 " = %#" PRIx64 ", never written so",
		      start, j, k, w->vb[j]);
	}
	if (!got) {
		CHECK(start > maxload, "scan from %#" PRIx64 " found nothing", start);
		return;
	}
	/* every key that was there before the scan began, from start to the last key
	 * returned (to the end if the scan stopped short) must be in it */
	uint64_t last = got < n ? UINT64_MAX : w->kb[got - 1];
	size_t ri = 0;
	for (uint64_t i = start / MSTRIDE; i < m->P && i * MSTRIDE <= last; i++)
		for (unsigned s = 0; s < MSLOTS; s++) {
			uint64_t k = i * MSTRIDE + s;
			if (k < start || k > last)
				continue;
			if (s && !inserted_before(m, i, s, w->snap))
				continue;
			while (ri < got && w->kb[ri] < k)
				ri++;
			CHECK(ri < got && w->kb[ri] == k,
			      "scan from %#" PRIx64 " for %zu (got %zu, last %#" PRIx64 ") misses %#" PRIx64
			      ", there before it began",
			      start, n, got, w->kb[got - 1], k);
		}
}

static void *mix_thread(void *arg)
{
	struct mthr *w = arg;
	struct mix *m = w->m;
	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		uint64_t x = rnd(&w->s) % 100, v = CANARY;
		size_t k = atomic_load_explicit(&w->done, memory_order_relaxed);
		w->ops++;
		if (x < 30 && k < w->quota) {
			uint64_t key = seq_key(m, w->id, k), val = mval(key, w->id, ++w->ctr), h0 = w->hooks;
			int rc = bt_insert(&m->t, key, val, mix_hook, w);
			CHECK(rc == 1 && w->hooks == h0 + 1, "thread %d: insert of new %#" PRIx64 " = %d, hook ran "
			      "%" PRIu64 " times", w->id, key, rc, w->hooks - h0);
			atomic_store_explicit(&w->done, k + 1, memory_order_release);
			w->ins++;
			CHECK(bt_lookup(&m->t, key, &v) == 1 && v >> VAL_SHIFT == key,
			      "thread %d does not read back its insert of %#" PRIx64 " (%#" PRIx64 ")", w->id,
			      key, v);
		} else if (x < 60) {
			int must;
			uint64_t key = pick_mkey(w, &must), h0 = w->hooks;
			int rc = bt_update(&m->t, key, mval(key, w->id, ++w->ctr), mix_hook, w);
			CHECK((must < 0 ? rc == 0 || rc == 1 : rc == must) && w->hooks == h0 + (uint64_t)rc,
			      "thread %d: update of %#" PRIx64 " = %d (must %d), hook ran %" PRIu64 " times",
			      w->id, key, rc, must, w->hooks - h0);
			w->upd++;
			w->upd_hit += (uint64_t)rc;
		} else if (x < 90) {
			int must;
			uint64_t key = pick_mkey(w, &must);
			int rc = bt_lookup(&m->t, key, &v);
			CHECK((must < 0 || rc == must) && (!rc || v >> VAL_SHIFT == key),
			      "thread %d: lookup of %#" PRIx64 " = %d (must %d), value %#" PRIx64, w->id, key,
			      rc, must, v);
			w->look++;
		} else {
			mix_scan(w);
		}
	}
	return NULL;
}

static void test_mixed(uint64_t seed, int T)
{
	struct mix *m = calloc(1, sizeof(*m));
	if (!m)
		FAIL("out of memory");
	m->P = (size_t)env_long("LEAP_BTREE_KEYS", 150000);
	m->P = m->P < 1000 ? 1000 : m->P > (1u << 20) ? (1u << 20) : m->P;
	m->T = T > 15 ? 15 : T;
	long ms = env_long("LEAP_BTREE_MS", 2000);
	m->shadow = malloc(m->P * MSLOTS * sizeof(uint64_t));
	m->w = calloc((size_t)m->T, sizeof(struct mthr));
	if (!m->shadow || !m->w)
		FAIL("out of memory");
	/* loaded full: the first insert into any leaf splits it, and the inner nodes above */
	size_t P = m->P, bytes = bt_bulk_bytes(P, 1.0) + (P * (MSLOTS - 1) / 100 + 64) * NB;
	void *mem = arena_new(bytes, false);
	tree_init(&m->t, mem, bytes);
	CHECK(bt_bulk_load(&m->t, P, mix_key, mix_loadval, NULL, 1.0) == 0, "bulk load");
	for (size_t i = 0; i < P; i++)
		m->shadow[i * MSLOTS] = mix_loadval(i, NULL);
	for (int t = 0; t < m->T; t++) {
		struct mthr *w = &m->w[t];
		w->m = m;
		w->id = t;
		w->s = subseed(seed, 200 + (uint64_t)t);
		w->perm = malloc(P * sizeof(uint32_t));
		w->pos = malloc(P * sizeof(uint32_t));
		w->snap = malloc((size_t)m->T * sizeof(size_t));
		w->kb = malloc(1001 * sizeof(uint64_t));
		w->vb = malloc(1001 * sizeof(uint64_t));
		if (!w->perm || !w->pos || !w->snap || !w->kb || !w->vb)
			FAIL("out of memory");
		insert_order(w->perm, P, t % 2, &w->s);
		for (size_t i = 0; i < P; i++)
			w->pos[w->perm[i]] = (uint32_t)i;
		w->quota = ((MSLOTS - 2 - (size_t)t) / (size_t)m->T + 1) * P; /* its slots' rounds */
		atomic_init(&w->done, 0);
	}
	double t0 = now_s();
	for (int t = 0; t < m->T; t++)
		if (pthread_create(&m->w[t].th, NULL, mix_thread, &m->w[t]))
			FAIL("pthread_create");
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };
	nanosleep(&ts, NULL);
	atomic_store(&m->stop, 1);
	for (int t = 0; t < m->T; t++)
		pthread_join(m->w[t].th, NULL);
	double secs = now_s() - t0;

	uint64_t ops = 0, ins = 0, upd = 0, hit = 0, look = 0, scans = 0, scanned = 0, hooks = 0;
	size_t *done = malloc((size_t)m->T * sizeof(size_t));
	if (!done)
		FAIL("out of memory");
	for (int t = 0; t < m->T; t++) {
		struct mthr *w = &m->w[t];
		CHECK(w->bad_hooks == 0, "the hook saw %" PRIu64 " keys or values never written",
		      w->bad_hooks);
		done[t] = atomic_load(&w->done);
		CHECK(done[t] == w->ins, "thread %d: %zu published, %" PRIu64 " inserted", t, done[t], w->ins);
		ops += w->ops;
		ins += w->ins;
		upd += w->upd;
		hit += w->upd_hit;
		look += w->look;
		scans += w->scans;
		scanned += w->scanned;
		hooks += w->hooks;
	}
	CHECK(hooks == ins + hit, "the hook ran %" PRIu64 " times for %" PRIu64 " inserts and %" PRIu64
	      " updates", hooks, ins, hit);
	struct bt_report r = check_tree(&m->t, P + ins, "after the mix");
	/* every key there has the hook's last value; nothing else is there */
	for (size_t i = 0; i < P; i++) {
		uint64_t v = CANARY;
		CHECK(bt_lookup(&m->t, i * MSTRIDE, &v) == 1 && v == m->shadow[i * MSLOTS],
		      "loaded key %#zx: %#" PRIx64 ", the hook last wrote %#" PRIx64, i * MSTRIDE, v,
		      m->shadow[i * MSLOTS]);
	}
	for (int t = 0; t < m->T; t++)
		for (size_t k = 0; k < done[t]; k++) {
			uint64_t key = seq_key(m, t, k), v = CANARY;
			uint64_t want = m->shadow[key / MSTRIDE * MSLOTS + key % MSTRIDE];
			CHECK(bt_lookup(&m->t, key, &v) == 1 && v == want,
			      "inserted key %#" PRIx64 ": %#" PRIx64 ", the hook last wrote %#" PRIx64, key, v,
			      want);
		}
	uint64_t s = subseed(seed, 300);
	for (int i = 0; i < 10000; i++) {
		uint64_t key = (rnd(&s) % P) * MSTRIDE + MSLOTS + rnd(&s) % (MSTRIDE - MSLOTS);
		CHECK(bt_lookup(&m->t, key, NULL) == 0, "never-written %#" PRIx64 " found", key);
	}
	/* the whole tree in chunks against the expected keys, in order */
	uint64_t kb[4096], vb[4096], start = 0;
	size_t have = 0, at = 0, seen = 0;
	bool end = false;
	for (uint64_t i = 0; i < P; i++)
		for (unsigned sl = 0; sl < MSLOTS; sl++) {
			if (sl && !inserted_before(m, i, sl, done))
				continue;
			uint64_t key = i * MSTRIDE + sl;
			if (at == have) {
				CHECK(!end, "full scan ended before %#" PRIx64, key);
				have = bt_scan(&m->t, start, 4096, kb, vb);
				end = have < 4096;
				at = 0;
				CHECK(have > 0, "full scan ended before %#" PRIx64, key);
				start = kb[have - 1] + 1;
			}
			CHECK(kb[at] == key && vb[at] == m->shadow[i * MSLOTS + sl],
			      "full scan item %zu: %#" PRIx64 " = %#" PRIx64 ", want %#" PRIx64 " = %#" PRIx64,
			      seen, kb[at], vb[at], key, m->shadow[i * MSLOTS + sl]);
			at++;
			seen++;
		}
	CHECK(at == have && (end || bt_scan(&m->t, start, 1, kb, NULL) == 0),
	      "full scan: keys past the expected ones");
	CHECK(seen == P + ins, "full scan saw %zu keys, want %" PRIu64, seen, P + ins);
	say("measured mix: %d threads for %.2f s, %.0f ops/s (%" PRIu64 " inserts, %" PRIu64
	    " updates (%" PRIu64 " found), %" PRIu64 " lookups, %" PRIu64 " scans of %.1f keys), %" PRIu64
	    " restarts, height %" PRIu64 " with %" PRIu64 " keys, all values as the hook recorded",
	    m->T, secs, (double)ops / secs, ins, upd, hit, look, scans,
	    scans ? (double)scanned / (double)scans : 0.0, (uint64_t)atomic_load(&m->t.restarts),
	    r.height, r.keys);
	for (int t = 0; t < m->T; t++) {
		struct mthr *w = &m->w[t];
		free(w->perm);
		free(w->pos);
		free(w->snap);
		free(w->kb);
		free(w->vb);
	}
	free(done);
	free(m->w);
	free(m->shadow);
	arena_free(mem, bytes);
	free(m);
}

int main(void)
{
	t_name = "t_btree";
	uint64_t seed = test_seed();
	verbose = env_long("LEAP_BTREE_VERBOSE", 0) != 0;
	int T = (int)env_long("LEAP_THREADS", 4);
	T = T < 1 ? 1 : T > 64 ? 64 : T;
	double t0 = now_s(), t1 = t0;
#define PHASE(call)                                                                              \
	do {                                                                                     \
		call;                                                                            \
		if (verbose)                                                                     \
			say("%s took %.2f s", #call, now_s() - t1);                              \
		t1 = now_s();                                                                    \
	} while (0)
	PHASE(test_single(seed));
	PHASE(test_bulk(seed));
	PHASE(test_full(seed));
	PHASE(test_corrupt());
	size_t grow = (size_t)env_long("LEAP_BTREE_GROW", UNDER_TSAN ? 100000 : 200000);
	grow = grow < 1000 ? 1000 : grow;
	PHASE(test_grow(seed, T, grow, false));
	PHASE(test_grow(seed, T, grow / 4 < 5000 ? 5000 : grow / 4, true));
	PHASE(test_mixed(seed, T));
	say("all parts passed in %.1f s", now_s() - t0);
	return 0;
}
