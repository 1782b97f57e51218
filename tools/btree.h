/*
 * btree.h - a main-memory B+-tree of 8-byte keys and values, for `pageleap ycsb`.
 * Private to tools/ (and tests/t_btree.c).
 *
 * The tree's nodes are 4 KiB, carved from one caller-given block of memory (the arena): a
 * pageleap region, or anonymous memory for the kernel's methods. Nodes never move inside
 * the arena and are never freed (no deletes), so the arena can be migrated underneath the
 * tree while threads use it: the virtual addresses stay the same.
 *
 * Concurrency: optimistic lock coupling (Leis et al., "The ART of practical
 * synchronization", DaMoN 2016). Every node carries a version word, odd while a writer
 * holds it. Readers never write shared memory: they read a node's version, read the
 * node, and check the version again; a change means a writer was there, and the operation
 * restarts from the root. Writers lock only the nodes they change (the leaf; for a split
 * the node and its parent). Full nodes are split on the way down, so a split never has to
 * go back up. Every field that a reader may see while a writer changes it is accessed
 * with C11 atomics (relaxed, ordered by the version word's fences, as in a seqlock), so
 * the tree is data-race free and TSan-clean. Scans read leaf by leaf along the sibling
 * links; each leaf is read consistently, a scan as a whole is not a snapshot.
 *
 * Thread safety: bt_lookup, bt_update, bt_insert and bt_scan are MT-Safe with each other.
 * bt_init, bt_bulk_load and bt_check need the tree to themselves.
 */
#ifndef LEAP_BTREE_H
#define LEAP_BTREE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BT_NODE_BYTES 4096u
#define BT_LEAF_CAP 254u  /* keys and values per leaf */
#define BT_INNER_CAP 253u /* separator keys per inner node (one more child) */

struct bt_node;

struct btree {
	char *base; /* the arena */
	size_t cap;
	_Atomic size_t used;		/* bytes handed out, may exceed cap when full */
	_Atomic(struct bt_node *) root;
	_Atomic uint64_t restarts;	/* optimistic reads that had to start again */
};

/* Called by bt_update/bt_insert while the key's leaf is still locked, right after the
 * value was written: what it records is ordered exactly like the tree's own writes (the
 * YCSB driver keeps its expected values this way). */
typedef void (*bt_hook)(void *arg, uint64_t key, uint64_t val);

/* An empty tree in [mem, mem+cap) (4 KiB aligned, cap >= one node; contents ignored).
 * 0 or -EINVAL. */
int bt_init(struct btree *t, void *mem, size_t cap);
/* Fill an empty tree with n keys in ascending order: key_of(i, arg), value val_of(i, arg),
 * each node filled to `fill` (0.5 .. 1) of its capacity. 0, -EINVAL (not ascending,
 * tree not empty, bad fill) or -ENOMEM (arena too small). */
int bt_bulk_load(struct btree *t, size_t n, uint64_t (*key_of)(size_t, void *),
		 uint64_t (*val_of)(size_t, void *), void *arg, double fill);
/* Bytes a bulk load of n keys at `fill` takes from the arena. */
size_t bt_bulk_bytes(size_t n, double fill);

/* 1 and *val if the key is there, else 0. */
int bt_lookup(struct btree *t, uint64_t key, uint64_t *val);
/* Set an existing key's value: 1, or 0 if the key is not there. */
int bt_update(struct btree *t, uint64_t key, uint64_t val, bt_hook hook, void *arg);
/* Insert a key (or set its value if present): 1 inserted, 0 was there (value set),
 * -ENOMEM when the arena is full (nothing changed). */
int bt_insert(struct btree *t, uint64_t key, uint64_t val, bt_hook hook, void *arg);
/* Up to n keys >= start in ascending order, with their values (vals may be NULL).
 * Returns how many. */
size_t bt_scan(struct btree *t, uint64_t start, size_t n, uint64_t *keys, uint64_t *vals);

/* What bt_check() found. */
struct bt_report {
	uint64_t keys, leaves, inner, height;
	double leaf_fill; /* mean keys per leaf / capacity */
};
/* Check every invariant of a quiescent tree: node counts within bounds (at least half
 * full, root excepted), keys strictly ascending in every node, every key inside the range
 * its parent's separators give its child, every leaf at the same depth, the leaf chain
 * visiting exactly the leaves in key order and ending there, no node unlocked-odd, every
 * node inside the arena. 0 with *r filled, or -EUCLEAN with the first violation in err. */
int bt_check(struct btree *t, struct bt_report *r, char *err, size_t errlen);

#endif /* LEAP_BTREE_H */
