/*
 * btree.c - the B+-tree of `pageleap ycsb`: optimistic lock coupling (see btree.h).
 *
 * Version word: even = unlocked, odd = a writer holds the node. A reader's protocol is a
 * seqlock's: v = version (acquire), read fields (relaxed), acquire fence, version == v.
 * A writer: CAS v -> v+1, release fence, write fields (relaxed), version = v+2 (release).
 * Child, sibling and root pointers are published with release stores and read with
 * acquire loads, so a node is fully written before anyone can reach it.
 *
 * Inner node: keys k[0..count-1], children c[0..count]; c[j] holds the keys in
 * [k[j-1], k[j]) (k[-1] = -inf, k[count] = +inf); k[j] is the smallest key of c[j+1].
 */
#include "btree.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

struct bt_node {
	_Atomic uint64_t version;
	_Atomic uint32_t count;
	uint16_t leaf;	/* written before the node is published, never changed */
	uint16_t level; /* 0 for leaves */
	_Atomic(struct bt_node *) next; /* leaves: right sibling */
	union {
		struct {
			_Atomic uint64_t keys[BT_LEAF_CAP];
			_Atomic uint64_t vals[BT_LEAF_CAP];
		} l;
		struct {
			_Atomic uint64_t keys[BT_INNER_CAP];
			_Atomic(struct bt_node *) child[BT_INNER_CAP + 1];
		} i;
	};
};
_Static_assert(sizeof(struct bt_node) <= BT_NODE_BYTES, "node larger than 4 KiB");

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

/* ---- version word ---- */

static void pause_or_yield(unsigned *spins)
{
	if (++*spins % 64 == 0)
		sched_yield(); /* the holder may be off-CPU (2 cores, or waiting for a page) */
	else
		__builtin_ia32_pause();
}

/* Version of an unlocked node; false if a writer holds it (the caller restarts). */
static bool read_lock(struct bt_node *n, uint64_t *v)
{
	*v = atomic_load_explicit(&n->version, ACQ);
	return !(*v & 1);
}

/* Did the node stay unchanged since read_lock() gave v? */
static bool validate(struct bt_node *n, uint64_t v)
{
	atomic_thread_fence(ACQ);
	return atomic_load_explicit(&n->version, RLX) == v;
}

/* Lock the node if it is still at version v. */
static bool upgrade(struct bt_node *n, uint64_t v)
{
	if (!atomic_compare_exchange_strong_explicit(&n->version, &v, v + 1, ACQ, RLX))
		return false;
	atomic_thread_fence(REL);
	return true;
}

static void write_unlock(struct bt_node *n)
{
	atomic_store_explicit(&n->version, atomic_load_explicit(&n->version, RLX) + 1, REL);
}

/* ---- nodes ---- */

static uint32_t count_of(struct bt_node *n)
{
	uint32_t c = atomic_load_explicit(&n->count, RLX);
	uint32_t cap = n->leaf ? BT_LEAF_CAP : BT_INNER_CAP;
	return c > cap ? cap : c; /* a torn read is caught by validate(); stay in bounds */
}

static bool is_full(struct bt_node *n)
{
	return count_of(n) >= (n->leaf ? BT_LEAF_CAP : BT_INNER_CAP);
}

static struct bt_node *node_new(struct btree *t, bool leaf, unsigned level)
{
	size_t off = atomic_fetch_add_explicit(&t->used, BT_NODE_BYTES, RLX);
	if (off + BT_NODE_BYTES > t->cap)
		return NULL;
	struct bt_node *n = (struct bt_node *)(t->base + off);
	atomic_store_explicit(&n->version, 0, RLX);
	atomic_store_explicit(&n->count, 0, RLX);
	n->leaf = leaf;
	n->level = (uint16_t)level;
	atomic_store_explicit(&n->next, NULL, RLX);
	return n;
}

/* First index in keys[0..count) whose key is >= key (leaves) or > key (inner: the child
 * to follow). Keys read relaxed; a torn view only yields a wrong index that the
 * caller's validate() rejects. */
static uint32_t lower_bound(_Atomic uint64_t *keys, uint32_t count, uint64_t key, bool upper)
{
	uint32_t lo = 0, hi = count;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		uint64_t k = atomic_load_explicit(&keys[mid], RLX);
		if (k < key || (upper && k == key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct bt_node *child_at(struct bt_node *n, uint64_t key)
{
	uint32_t j = lower_bound(n->i.keys, count_of(n), key, true);
	return atomic_load_explicit(&n->i.child[j], ACQ);
}

int bt_init(struct btree *t, void *mem, size_t cap)
{
	if (!t || !mem || cap < BT_NODE_BYTES || (uintptr_t)mem % BT_NODE_BYTES)
		return -EINVAL;
	t->base = mem;
	t->cap = cap - cap % BT_NODE_BYTES;
	atomic_init(&t->used, 0);
	atomic_init(&t->restarts, 0);
	struct bt_node *root = node_new(t, true, 0);
	atomic_init(&t->root, root);
	return 0;
}

/* ---- reads ---- */

/* Descend to the leaf that holds key. Returns it with its version, or NULL to restart. */
static struct bt_node *find_leaf(struct btree *t, uint64_t key, uint64_t *v)
{
	struct bt_node *n = atomic_load_explicit(&t->root, ACQ);
	if (!read_lock(n, v) || n != atomic_load_explicit(&t->root, ACQ))
		return NULL; /* the root split after we read it: its upper half is elsewhere */
	while (!n->leaf) {
		struct bt_node *c = child_at(n, key);
		uint64_t cv;
		if (!validate(n, *v) || !read_lock(c, &cv) || !validate(n, *v))
			return NULL;
		n = c;
		*v = cv;
	}
	return n;
}

static void restarted(struct btree *t, unsigned *spins)
{
	atomic_fetch_add_explicit(&t->restarts, 1, RLX);
	pause_or_yield(spins);
}

int bt_lookup(struct btree *t, uint64_t key, uint64_t *val)
{
	for (unsigned spins = 0;; restarted(t, &spins)) {
		uint64_t v;
		struct bt_node *n = find_leaf(t, key, &v);
		if (!n)
			continue;
		uint32_t c = count_of(n), j = lower_bound(n->l.keys, c, key, false);
		bool found = j < c && atomic_load_explicit(&n->l.keys[j], RLX) == key;
		uint64_t x = found ? atomic_load_explicit(&n->l.vals[j], RLX) : 0;
		if (!validate(n, v))
			continue;
		if (found && val)
			*val = x;
		return found;
	}
}

size_t bt_scan(struct btree *t, uint64_t start, size_t n, uint64_t *keys, uint64_t *vals)
{
	size_t got = 0;
	unsigned spins = 0;
	while (got < n) {
		uint64_t v;
		struct bt_node *leaf = find_leaf(t, start, &v);
		if (!leaf) {
			restarted(t, &spins);
			continue;
		}
		/* along the siblings; a leaf that changed while read is read again from a fresh
		 * descent to the first key not yet taken */
		for (;;) {
			uint32_t c = count_of(leaf), j = lower_bound(leaf->l.keys, c, start, false);
			size_t take = 0;
			for (; j < c && got + take < n; j++, take++) {
				keys[got + take] = atomic_load_explicit(&leaf->l.keys[j], RLX);
				if (vals)
					vals[got + take] = atomic_load_explicit(&leaf->l.vals[j], RLX);
			}
			struct bt_node *next = atomic_load_explicit(&leaf->next, ACQ);
			if (!validate(leaf, v))
				break; /* take nothing from this reading */
			got += take;
			if (take)
				start = keys[got - 1] + 1;
			if (got == n || !next || (take && start == 0))
				return got;
			while (!read_lock(next, &v))
				pause_or_yield(&spins);
			leaf = next;
		}
		restarted(t, &spins);
	}
	return got;
}

/* ---- writes ---- */

int bt_update(struct btree *t, uint64_t key, uint64_t val, bt_hook hook, void *arg)
{
	for (unsigned spins = 0;; restarted(t, &spins)) {
		uint64_t v;
		struct bt_node *n = find_leaf(t, key, &v);
		if (!n)
			continue;
		uint32_t c = count_of(n), j = lower_bound(n->l.keys, c, key, false);
		bool found = j < c && atomic_load_explicit(&n->l.keys[j], RLX) == key;
		if (!found) {
			if (!validate(n, v))
				continue;
			return 0;
		}
		if (!upgrade(n, v))
			continue;
		atomic_store_explicit(&n->l.vals[j], val, RLX);
		if (hook)
			hook(arg, key, val);
		write_unlock(n);
		return 1;
	}
}

/* Split the locked full node n (its parent, if any, locked and not full). Returns
 * -ENOMEM if the arena has no room for the new node(s); nothing changed then. */
static int split(struct btree *t, struct bt_node *n, struct bt_node *parent)
{
	struct bt_node *right = node_new(t, n->leaf, n->level);
	struct bt_node *root = parent ? NULL : node_new(t, false, n->level + 1u);
	if (!right || (!parent && !root))
		return -ENOMEM; /* what node_new took stays unused: the arena is full anyway */
	uint32_t c = atomic_load_explicit(&n->count, RLX);
	uint64_t sep;
	if (n->leaf) {
		uint32_t keep = c / 2;
		for (uint32_t j = keep; j < c; j++) {
			atomic_store_explicit(&right->l.keys[j - keep], atomic_load_explicit(&n->l.keys[j], RLX), RLX);
			atomic_store_explicit(&right->l.vals[j - keep], atomic_load_explicit(&n->l.vals[j], RLX), RLX);
		}
		atomic_store_explicit(&right->count, c - keep, RLX);
		atomic_store_explicit(&right->next, atomic_load_explicit(&n->next, RLX), RLX);
		sep = atomic_load_explicit(&right->l.keys[0], RLX);
		atomic_store_explicit(&n->count, keep, RLX);
		atomic_store_explicit(&n->next, right, REL);
	} else {
		/* keys [0, mid) stay, keys[mid] goes up, keys (mid, c) move with their children */
		uint32_t mid = c / 2;
		sep = atomic_load_explicit(&n->i.keys[mid], RLX);
		for (uint32_t j = mid + 1; j < c; j++)
			atomic_store_explicit(&right->i.keys[j - mid - 1], atomic_load_explicit(&n->i.keys[j], RLX), RLX);
		for (uint32_t j = mid + 1; j <= c; j++)
			atomic_store_explicit(&right->i.child[j - mid - 1], atomic_load_explicit(&n->i.child[j], RLX), RLX);
		atomic_store_explicit(&right->count, c - mid - 1, RLX);
		atomic_store_explicit(&n->count, mid, RLX);
	}
	if (parent) {
		uint32_t pc = atomic_load_explicit(&parent->count, RLX);
		uint32_t j = lower_bound(parent->i.keys, pc, sep, true);
		for (uint32_t k = pc; k > j; k--) {
			atomic_store_explicit(&parent->i.keys[k], atomic_load_explicit(&parent->i.keys[k - 1], RLX), RLX);
			atomic_store_explicit(&parent->i.child[k + 1], atomic_load_explicit(&parent->i.child[k], RLX), RLX);
		}
		atomic_store_explicit(&parent->i.keys[j], sep, RLX);
		atomic_store_explicit(&parent->i.child[j + 1], right, REL);
		atomic_store_explicit(&parent->count, pc + 1, RLX);
	} else {
		atomic_store_explicit(&root->i.keys[0], sep, RLX);
		atomic_store_explicit(&root->i.child[0], n, RLX);
		atomic_store_explicit(&root->i.child[1], right, RLX);
		atomic_store_explicit(&root->count, 1, RLX);
		atomic_store_explicit(&t->root, root, REL);
	}
	return 0;
}

int bt_insert(struct btree *t, uint64_t key, uint64_t val, bt_hook hook, void *arg)
{
	for (unsigned spins = 0;; restarted(t, &spins)) {
		uint64_t v, pv = 0;
		struct bt_node *parent = NULL;
		struct bt_node *n = atomic_load_explicit(&t->root, ACQ);
		if (!read_lock(n, &v) || n != atomic_load_explicit(&t->root, ACQ))
			continue;
		bool again = false;
		for (;;) {
			if (is_full(n)) {
				/* split on the way down: lock the parent, then the node */
				if (parent && !upgrade(parent, pv)) {
					again = true;
					break;
				}
				if (!upgrade(n, v)) {
					if (parent)
						write_unlock(parent);
					again = true;
					break;
				}
				if (!parent && n != atomic_load_explicit(&t->root, ACQ)) {
					write_unlock(n); /* no longer the root: its parent must be locked */
					again = true;
					break;
				}
				int rc = split(t, n, parent);
				write_unlock(n);
				if (parent)
					write_unlock(parent);
				if (rc)
					return rc;
				again = true; /* descend again through the split nodes */
				break;
			}
			if (n->leaf)
				break;
			if (parent && !validate(parent, pv)) {
				again = true;
				break;
			}
			struct bt_node *c = child_at(n, key);
			uint64_t cv;
			if (!validate(n, v) || !read_lock(c, &cv) || !validate(n, v)) {
				again = true;
				break;
			}
			parent = n;
			pv = v;
			n = c;
			v = cv;
		}
		if (again)
			continue;
		if (!upgrade(n, v))
			continue;
		uint32_t c = atomic_load_explicit(&n->count, RLX);
		uint32_t j = lower_bound(n->l.keys, c, key, false);
		int inserted = !(j < c && atomic_load_explicit(&n->l.keys[j], RLX) == key);
		if (inserted) {
			for (uint32_t k = c; k > j; k--) {
				atomic_store_explicit(&n->l.keys[k], atomic_load_explicit(&n->l.keys[k - 1], RLX), RLX);
				atomic_store_explicit(&n->l.vals[k], atomic_load_explicit(&n->l.vals[k - 1], RLX), RLX);
			}
			atomic_store_explicit(&n->l.keys[j], key, RLX);
			atomic_store_explicit(&n->count, c + 1, RLX);
		}
		atomic_store_explicit(&n->l.vals[j], val, RLX);
		if (hook)
			hook(arg, key, val);
		write_unlock(n);
		return inserted;
	}
}

/* ---- bulk load ---- */

/* Nodes for m items (keys, or children) at `per` items per node and at most `cap`:
 * enough that none overflows, few enough that each gets at least `per` (or at least
 * half of cap when overflow forces more nodes). */
static size_t nodes_for(size_t m, size_t per, size_t cap)
{
	size_t k = m / per, min = (m + cap - 1) / cap;
	if (k < min)
		k = min;
	return k ? k : 1;
}

static size_t per_node(double fill, size_t cap)
{
	size_t per = (size_t)(fill * (double)cap);
	return per < (cap + 1) / 2 ? (cap + 1) / 2 : per > cap ? cap : per;
}

size_t bt_bulk_bytes(size_t n, double fill)
{
	size_t nodes = 0, m = nodes_for(n, per_node(fill, BT_LEAF_CAP), BT_LEAF_CAP);
	nodes += m;
	while (m > 1) {
		m = nodes_for(m, per_node(fill, BT_INNER_CAP + 1), BT_INNER_CAP + 1);
		nodes += m;
	}
	return nodes * BT_NODE_BYTES;
}

int bt_bulk_load(struct btree *t, size_t n, uint64_t (*key_of)(size_t, void *),
		 uint64_t (*val_of)(size_t, void *), void *arg, double fill)
{
	struct bt_node *root = atomic_load_explicit(&t->root, RLX);
	if (!(fill >= 0.5 && fill <= 1) || !root->leaf || atomic_load_explicit(&root->count, RLX))
		return -EINVAL;
	if (n == 0)
		return 0;
	/* the empty root leaf is the first of the nodes bt_bulk_bytes() counts */
	if (bt_bulk_bytes(n, fill) > t->cap)
		return -ENOMEM;
	/* leaves, left to right, each written in full; the empty root leaf (the arena's first
	 * node) is the first, so the leaves are contiguous, and so is each inner level */
	size_t nl = nodes_for(n, per_node(fill, BT_LEAF_CAP), BT_LEAF_CAP);
	struct bt_node *first = root, *prev = NULL;
	uint64_t last = 0;
	for (size_t li = 0, i = 0; li < nl; li++) {
		struct bt_node *leaf = li ? node_new(t, true, 0) : first;
		size_t take = n / nl + (li < n % nl);
		for (size_t j = 0; j < take; j++, i++) {
			uint64_t k = key_of(i, arg);
			if (i && k <= last)
				return -EINVAL; /* the tree is half built; the caller drops it */
			last = k;
			atomic_store_explicit(&leaf->l.keys[j], k, RLX);
			atomic_store_explicit(&leaf->l.vals[j], val_of(i, arg), RLX);
		}
		atomic_store_explicit(&leaf->count, (uint32_t)take, RLX);
		if (prev)
			atomic_store_explicit(&prev->next, leaf, RLX);
		prev = leaf;
	}
	/* inner levels: each level's nodes are contiguous in the arena, in key order */
	struct bt_node *lvl = first;
	size_t m = nl;
	unsigned level = 0;
	while (m > 1) {
		size_t np = nodes_for(m, per_node(fill, BT_INNER_CAP + 1), BT_INNER_CAP + 1);
		struct bt_node *up = NULL;
		size_t ci = 0;
		for (size_t pi = 0; pi < np; pi++) {
			struct bt_node *p = node_new(t, false, level + 1);
			if (!up)
				up = p;
			size_t take = m / np + (pi < m % np);
			for (size_t j = 0; j < take; j++, ci++) {
				struct bt_node *c = (struct bt_node *)((char *)lvl + ci * BT_NODE_BYTES);
				atomic_store_explicit(&p->i.child[j], c, RLX);
				if (j) {
					/* separator: the smallest key under c */
					struct bt_node *d = c;
					while (!d->leaf)
						d = atomic_load_explicit(&d->i.child[0], RLX);
					atomic_store_explicit(&p->i.keys[j - 1], atomic_load_explicit(&d->l.keys[0], RLX), RLX);
				}
			}
			atomic_store_explicit(&p->count, (uint32_t)(take - 1), RLX);
		}
		lvl = up;
		m = np;
		level++;
	}
	atomic_store_explicit(&t->root, lvl, REL);
	return 0;
}

/* ---- checker ---- */

struct walk {
	struct btree *t;
	struct bt_report *r;
	char *err;
	size_t errlen;
	struct bt_node *expect_leaf; /* the next leaf the chain must reach (after the first) */
	int leaf_level_seen;
};

#define BAD(...) (snprintf(w->err, w->errlen, __VA_ARGS__), -EUCLEAN)

static int walk(struct walk *w, struct bt_node *n, bool is_root, bool has_lo, uint64_t lo,
		bool has_hi, uint64_t hi, unsigned level)
{
	struct btree *t = w->t;
	if ((char *)n < t->base || (char *)n + BT_NODE_BYTES > t->base + t->cap ||
	    (size_t)((char *)n - t->base) % BT_NODE_BYTES)
		return BAD("node %p outside the arena or misaligned", (void *)n);
	if (atomic_load_explicit(&n->version, RLX) & 1)
		return BAD("node %p left locked", (void *)n);
	if (n->level != level)
		return BAD("node %p at level %u says level %u", (void *)n, level, n->level);
	uint32_t c = atomic_load_explicit(&n->count, RLX);
	uint32_t cap = n->leaf ? BT_LEAF_CAP : BT_INNER_CAP;
	uint32_t min = n->leaf ? BT_LEAF_CAP / 2 : (BT_INNER_CAP - 1) / 2;
	if (c > cap)
		return BAD("node %p holds %u > %u keys", (void *)n, c, cap);
	if (!is_root && c < min)
		return BAD("node %p holds %u keys, less than half (%u)", (void *)n, c, min);
	if (!n->leaf && c == 0)
		return BAD("inner node %p without keys", (void *)n);
	_Atomic uint64_t *keys = n->leaf ? n->l.keys : n->i.keys;
	for (uint32_t j = 0; j < c; j++) {
		uint64_t k = atomic_load_explicit(&keys[j], RLX);
		if (j && k <= atomic_load_explicit(&keys[j - 1], RLX))
			return BAD("node %p: key %u (%llu) not above key %u", (void *)n, j,
				   (unsigned long long)k, j - 1);
		if ((has_lo && k < lo) || (has_hi && k >= hi))
			return BAD("node %p: key %llu outside its parent's range [%llu, %llu)", (void *)n,
				   (unsigned long long)k, (unsigned long long)lo, (unsigned long long)hi);
	}
	if (n->leaf) {
		/* leaves are visited in key order: the first one starts the chain */
		bool first = w->leaf_level_seen < 0;
		if (first)
			w->leaf_level_seen = (int)level;
		if (level != 0)
			return BAD("leaf %p at level %u", (void *)n, level);
		if (!first && n != w->expect_leaf)
			return BAD("leaf chain reaches %p where the tree has leaf %p", (void *)w->expect_leaf,
				   (void *)n);
		w->expect_leaf = atomic_load_explicit(&n->next, RLX);
		w->r->leaves++;
		w->r->keys += c;
		return 0;
	}
	if (level == 0)
		return BAD("inner node %p at leaf level", (void *)n);
	w->r->inner++;
	for (uint32_t j = 0; j <= c; j++) {
		struct bt_node *ch = atomic_load_explicit(&n->i.child[j], RLX);
		if (!ch)
			return BAD("node %p: child %u missing", (void *)n, j);
		bool clo = j > 0 || has_lo, chi = j < c || has_hi;
		uint64_t l = j > 0 ? atomic_load_explicit(&n->i.keys[j - 1], RLX) : lo;
		uint64_t h = j < c ? atomic_load_explicit(&n->i.keys[j], RLX) : hi;
		int rc = walk(w, ch, false, clo, l, chi, h, level - 1);
		if (rc)
			return rc;
	}
	return 0;
}

int bt_check(struct btree *t, struct bt_report *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	struct bt_node *root = atomic_load_explicit(&t->root, RLX);
	/* no walk down the leftmost path here: walk() checks each node before reading it */
	struct walk w = { t, r, err, errlen, NULL, -1 };
	int rc = walk(&w, root, true, false, 0, false, 0, root->level);
	if (rc)
		return rc;
	if (w.expect_leaf) {
		snprintf(err, errlen, "leaf chain goes on past the last leaf, to %p", (void *)w.expect_leaf);
		return -EUCLEAN;
	}
	r->height = root->level + 1u;
	r->leaf_fill = r->leaves ? (double)r->keys / ((double)r->leaves * BT_LEAF_CAP) : 0;
	return 0;
}
