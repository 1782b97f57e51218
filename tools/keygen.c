/*
 * keygen.c - YCSB key choosers (see keygen.h). The formulas are YCSB's
 * (core/generator/ZipfianGenerator.java, Gray et al., "Quickly generating billion-record
 * synthetic databases", SIGMOD 1994), written from their description.
 */
#include "keygen.h"

#include <math.h>

/* YCSB: ScrambledZipfianGenerator.ITEM_COUNT and ZETAN (zeta(10^10, 0.99)) */
#define KG_ITEMS 10000000000.0
#define KG_ZETAN 26.46902820178302

uint64_t kg_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double kg_rand01(uint64_t *state)
{
	return (double)(kg_rand(state) >> 11) * 0x1.0p-53;
}

uint64_t kg_fnv64(uint64_t v)
{
	int64_t h = (int64_t)0xcbf29ce484222325ull;
	for (int i = 0; i < 8; i++) {
		h ^= (int64_t)(v & 0xff);
		h = (int64_t)((uint64_t)h * 1099511628211ull);
		v >>= 8;
	}
	return h < 0 ? (uint64_t)0 - (uint64_t)h : (uint64_t)h; /* Java's Math.abs */
}

uint64_t kg_key(uint64_t x)
{
	/* each step (xor-shift, multiply by an odd constant) is invertible */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* x from x ^ (x >> s) */
static uint64_t unxorshift(uint64_t y, unsigned s)
{
	uint64_t x = y;
	for (unsigned i = 0; i * s < 64; i++)
		x = y ^ (x >> s);
	return x;
}

/* The inverse of an odd number modulo 2^64 (Newton's iteration doubles the bits). */
static uint64_t inverse(uint64_t a)
{
	uint64_t x = a; /* right to 3 bits for any odd a */
	for (int i = 0; i < 5; i++)
		x *= 2 - a * x;
	return x;
}

uint64_t kg_keynum(uint64_t key)
{
	uint64_t x = unxorshift(key, 31) * inverse(0x94d049bb133111ebull);
	x = unxorshift(x, 27) * inverse(0xbf58476d1ce4e5b9ull);
	return unxorshift(x, 30);
}

void kg_zipf_init(struct kg_zipf *z)
{
	z->theta = KG_ZIPF_CONSTANT;
	z->items = KG_ITEMS;
	z->zetan = KG_ZETAN;
	z->alpha = 1.0 / (1.0 - z->theta);
	double zeta2 = 1.0 + pow(0.5, z->theta);
	z->half_pow_theta = pow(0.5, z->theta);
	z->eta = (1.0 - pow(2.0 / z->items, 1.0 - z->theta)) / (1.0 - zeta2 / z->zetan);
}

static uint64_t zipf_next(const struct kg_zipf *z, uint64_t *state)
{
	double u = kg_rand01(state), uz = u * z->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < 1.0 + z->half_pow_theta)
		return 1;
	return (uint64_t)(z->items * pow(z->eta * u - z->eta + 1.0, z->alpha));
}

uint64_t kg_scrambled_zipf(const struct kg_zipf *z, uint64_t *state, uint64_t n)
{
	return kg_fnv64(zipf_next(z, state)) % n;
}

uint64_t kg_uniform(uint64_t *state, uint64_t n)
{
	/* n is far below 2^64: the modulo bias is negligible */
	return kg_rand(state) % n;
}
