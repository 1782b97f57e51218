/*
 * keygen.h - YCSB's key choosers for `pageleap ycsb`: uniform, and scrambled zipfian with
 * YCSB's semantics (ZipfianGenerator over 10^10 items with constant 0.99 and its
 * precomputed zeta, the item hashed with 64-bit FNV-1a and taken modulo the key count,
 * so the hot keys are spread over the key space). Keys in the tree are keynum scrambled
 * by a bijection (like YCSB's hashed insert order): unique, unordered by keynum.
 * Private to tools/. All functions are pure or use only the caller's state: MT-Safe.
 */
#ifndef LEAP_KEYGEN_H
#define LEAP_KEYGEN_H

#include <stdint.h>

#define KG_ZIPF_CONSTANT 0.99

/* splitmix64: the per-thread random stream. */
uint64_t kg_rand(uint64_t *state);
/* Uniform in [0, 1). */
double kg_rand01(uint64_t *state);
/* YCSB's fnvhash64 (FNV-1a over the 8 bytes, then made non-negative as a Java long). */
uint64_t kg_fnv64(uint64_t v);
/* The tree key of keynum: a bijection of 64-bit integers (splitmix64's finalizer). */
uint64_t kg_key(uint64_t keynum);
/* Its inverse: the keynum of a key. */
uint64_t kg_keynum(uint64_t key);

struct kg_zipf {
	double theta, alpha, zetan, eta, half_pow_theta;
	double items;
};
/* YCSB's ScrambledZipfianGenerator's inner generator (10^10 items, zeta precomputed). */
void kg_zipf_init(struct kg_zipf *z);
/* A keynum in [0, n): scrambled zipfian. */
uint64_t kg_scrambled_zipf(const struct kg_zipf *z, uint64_t *state, uint64_t n);
/* A keynum in [0, n): uniform. */
uint64_t kg_uniform(uint64_t *state, uint64_t n);

#endif /* LEAP_KEYGEN_H */
