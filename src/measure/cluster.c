/*
 * cluster.c - the inference from measured latencies to domains: average-linkage
 * clustering with a split factor, no system calls, no state (t_cluster tests it against
 * latency models of 1, 2 and 4 sockets, core complexes and noise).
 *
 * Why average linkage with a fixed factor rather than "the largest gap": a machine may
 * have no structure at all (one socket, an emulated guest), and a largest gap always
 * exists; a factor says what counts as structure. Averages, not single pairs, decide a
 * merge, so one noisy sample does not join or split domains.
 */
#include "measure/measure.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Chunks clustered by linkage at most; the rest join the nearest cluster found. */
#define LEAP_CLUSTER_MAX_LINK 256

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double leap__median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* Renumber labels 0 .. k-1 in order of first appearance. */
static int canonical(int *label, int n)
{
	int *map = malloc((size_t)n * sizeof(*map));
	if (!map)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		map[i] = -1;
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (map[label[i]] < 0)
			map[label[i]] = k++;
		label[i] = map[label[i]];
	}
	free(map);
	return k;
}

int leap__cluster(const double *d, int n, double limit, int *label, double *confidence)
{
	if (confidence)
		*confidence = 1;
	if (n <= 0)
		return 0;
	/* s[i * n + j]: sum of dissimilarities between clusters i and j; sz[i]: members */
	double *s = malloc((size_t)n * (size_t)n * sizeof(*s));
	int *sz = malloc((size_t)n * sizeof(*sz));
	if (!s || !sz) {
		free(s);
		free(sz);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		sz[i] = 1;
		label[i] = i;
		for (int j = 0; j < n; j++)
			s[i * n + j] = i == j ? 0 : (d[i * n + j] + d[j * n + i]) / 2;
	}
	double accepted = 0, refused = INFINITY;
	for (;;) {
		int bi = -1, bj = -1;
		double best = INFINITY;
		for (int i = 0; i < n; i++)
			for (int j = i + 1; sz[i] && j < n; j++) {
				if (!sz[j])
					continue;
				double avg = s[i * n + j] / ((double)sz[i] * sz[j]);
				if (avg < best) {
					best = avg;
					bi = i;
					bj = j;
				}
			}
		if (bi < 0)
			break;
		if (best > limit) {
			refused = best;
			break;
		}
		if (best > accepted)
			accepted = best;
		/* merge bj into bi */
		for (int x = 0; x < n; x++) {
			s[bi * n + x] += s[bj * n + x];
			s[x * n + bi] = s[bi * n + x];
		}
		sz[bi] += sz[bj];
		sz[bj] = 0;
		for (int x = 0; x < n; x++)
			if (label[x] == bj)
				label[x] = bi;
	}
	free(s);
	free(sz);
	if (confidence) {
		double below = limit > 0 ? 1 - accepted / limit : 1;
		double above = isinf(refused) ? 1 : 1 - limit / refused;
		*confidence = clamp01(below < above ? below : above);
	}
	return canonical(label, n);
}

int leap__cluster_cpus(const double *lat, int n, int *label, double *confidence)
{
	if (n <= 1) { /* nothing to compare: one cluster (or none) */
		if (n == 1)
			label[0] = 0;
		if (confidence)
			*confidence = 1;
		return n > 0 ? n : 0;
	}
	size_t nn = (size_t)n * (size_t)n;
	double *d = malloc(nn * sizeof(*d)), *off = malloc(nn * sizeof(*off));
	if (!d || !off) {
		free(d);
		free(off);
		return -ENOMEM;
	}
	/* the base: the median over CPUs of each one's nearest other CPU, a near latency
	 * however few of all the pairs are near (one CPU per socket has none: its nearest
	 * is then far, and nothing splits, which is right) */
	for (int a = 0; a < n; a++) {
		double best = INFINITY;
		for (int b = 0; b < n; b++)
			if (a != b) {
				double v = (lat[a * n + b] + lat[b * n + a]) / 2;
				best = v < best ? v : best;
			}
		off[a] = best;
	}
	double base = leap__median(off, n);
	if (base <= 0)
		base = 1e-9;
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++) {
			double v = (lat[a * n + b] + lat[b * n + a]) / 2 / base;
			d[a * n + b] = a == b || v <= 1 ? 0 : log(v);
		}
	int k = leap__cluster(d, n, log(LEAP_C2C_SPLIT), label, confidence);
	free(d);
	free(off);
	return k;
}

static double chunk_dist(const double *a, const double *b, int k)
{
	double worst = 0;
	for (int c = 0; c < k; c++) {
		double x = a[c] > 0 && b[c] > 0 ? fabs(log(a[c] / b[c])) : 0;
		if (x > worst)
			worst = x;
	}
	return worst;
}

int leap__cluster_chunks(const double *lat, int n, int k, int *label, double *confidence)
{
	if (confidence)
		*confidence = 1;
	if (n <= 0)
		return 0;
	/* link a spread sample of at most LEAP_CLUSTER_MAX_LINK chunks */
	int m = n < LEAP_CLUSTER_MAX_LINK ? n : LEAP_CLUSTER_MAX_LINK;
	int *pick = malloc((size_t)m * sizeof(*pick)), *plabel = malloc((size_t)m * sizeof(*plabel));
	double *d = malloc((size_t)m * (size_t)m * sizeof(*d));
	if (!pick || !plabel || !d) {
		free(pick);
		free(plabel);
		free(d);
		return -ENOMEM;
	}
	for (int i = 0; i < m; i++)
		pick[i] = (int)((int64_t)i * n / m);
	for (int i = 0; i < m; i++)
		for (int j = 0; j < m; j++)
			d[i * m + j] = chunk_dist(&lat[(size_t)pick[i] * k], &lat[(size_t)pick[j] * k], k);
	int nk = leap__cluster(d, m, log(LEAP_MEM_SPLIT), plabel, confidence);
	/* every chunk joins the cluster whose sampled members are nearest on average */
	double *sum = nk > 0 ? calloc((size_t)nk, sizeof(*sum)) : NULL;
	int *cnt = nk > 0 ? calloc((size_t)nk, sizeof(*cnt)) : NULL;
	if (nk > 0 && (!sum || !cnt))
		nk = -ENOMEM;
	for (int i = 0; nk > 0 && i < n; i++) {
		memset(sum, 0, (size_t)nk * sizeof(*sum));
		memset(cnt, 0, (size_t)nk * sizeof(*cnt));
		for (int j = 0; j < m; j++) {
			sum[plabel[j]] += chunk_dist(&lat[(size_t)i * k], &lat[(size_t)pick[j] * k], k);
			cnt[plabel[j]]++;
		}
		int best = 0;
		for (int c = 1; c < nk; c++)
			if (sum[c] / cnt[c] < sum[best] / cnt[best])
				best = c;
		label[i] = best;
	}
	free(sum);
	free(cnt);
	free(pick);
	free(plabel);
	free(d);
	return nk > 0 ? canonical(label, n) : nk;
}

int leap__chunk_near(const double *lat, int k)
{
	if (k <= 0)
		return -1;
	int best = 0;
	for (int c = 1; c < k; c++)
		if (lat[c] < lat[best])
			best = c;
	for (int c = 0; c < k; c++)
		if (c != best && lat[c] < lat[best] * LEAP_MEM_SPLIT)
			return -1;
	return best;
}

int leap__chunk_nearest_cluster(const double *lat, int n, int k, const int *label, int nk,
				const double *row)
{
	int best = -1;
	double best_avg = INFINITY;
	for (int c = 0; c < nk; c++) {
		double sum = 0;
		int cnt = 0;
		for (int i = 0; i < n; i++)
			if (label[i] == c) {
				sum += chunk_dist(row, &lat[(size_t)i * k], k);
				cnt++;
			}
		if (cnt && sum / cnt < best_avg) {
			best_avg = sum / cnt;
			best = c;
		}
	}
	return best;
}
