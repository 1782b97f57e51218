/*
 * Unit test of the inference from latencies to domains (src/measure/cluster.c), no
 * kernel needed: latency models with known truth (1, 2 and 4 sockets, interleaved CPU
 * numbering, core complexes over uniform memory, hidden NUMA memory, CXL-like far
 * memory, outlier samples, more chunks than the linkage sample) must give exactly the
 * true partition, numbered as the library numbers it (the cluster of item 0 is 0, then in
 * order of first appearance). Noise comes from a fixed-seed xorshift: every run is the
 * same. Each case prints the confidence it got.
 */
#include "measure/measure.h"
#include "util.h"

#include <math.h>

#define MAXN 2000

static uint64_t seed = 0x5eed1234abcdULL;

/* Uniform in [0, 1). */
static double uniform(void)
{
	return (double)(rnd(&seed) >> 11) / (double)(UINT64_C(1) << 53);
}

/* A factor in [1 - frac, 1 + frac). */
static double noise(double frac)
{
	return 1 + frac * (2 * uniform() - 1);
}

/* A value in [lo, hi). */
static double between(double lo, double hi)
{
	return lo + (hi - lo) * uniform();
}

/* truth[] renumbered as the library numbers clusters: in order of first appearance. */
static int canonical(const int *truth, int *out, int n)
{
	int map[MAXN], k = 0;
	for (int i = 0; i < n; i++)
		map[i] = -1;
	for (int i = 0; i < n; i++) {
		if (map[truth[i]] < 0)
			map[truth[i]] = k++;
		out[i] = map[truth[i]];
	}
	return k;
}

static void list(char *buf, size_t len, const int *v, int n)
{
	size_t o = 0;
	for (int i = 0; i < n && i < 48 && o + 8 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%d%s", v[i], i + 1 < n ? " " : "");
	if (n > 48)
		snprintf(buf + o, len - o, " ...");
}

/* Exactly the partition truth[] with k clusters: the count, then label by label. */
static void expect_partition(const char *what, int got_k, const int *label, const int *truth,
			     int n)
{
	int want[MAXN], k = canonical(truth, want, n);
	char g[200], w[200];
	list(g, sizeof(g), label, n);
	list(w, sizeof(w), want, n);
	CHECK(got_k == k, "%s: %d clusters, want %d; labels [%s], want [%s]", what, got_k, k, g, w);
	for (int i = 0; i < n; i++)
		CHECK(label[i] == want[i], "%s: item %d in cluster %d, want %d; labels [%s], want [%s]",
		      what, i, label[i], want[i], g, w);
}

/* Core-to-core latencies: intra/inter ranges by socket, each entry (both directions
 * drawn apart) with its own noise. */
static void c2c_model(double *lat, const int *sock, int n, double ilo, double ihi, double xlo,
		      double xhi, double frac)
{
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			lat[a * n + b] = a == b ? 0 :
					 sock[a] == sock[b] ? between(ilo, ihi) * noise(frac) :
							      between(xlo, xhi) * noise(frac);
}

static double cpus(const char *what, const double *lat, const int *truth, int n)
{
	int label[MAXN];
	double conf = -1;
	int k = leap__cluster_cpus(lat, n, label, &conf);
	expect_partition(what, k, label, truth, n);
	CHECK(conf >= 0 && conf <= 1, "%s: confidence %.3f outside [0, 1]", what, conf);
	say("%s: %d CPU clusters, confidence %.3f", what, k, conf);
	return conf;
}

CASE(one_socket)
{
	int sock[8] = { 0 };
	double lat[64];
	c2c_model(lat, sock, 8, 45, 45, 0, 0, 0.10);
	double conf = cpus("1 socket x 8", lat, sock, 8);
	CHECK(conf > 0.5, "1 socket: confidence %.3f, want > 0.5", conf);
}

CASE(two_sockets_interleaved)
{
	int sock[16];
	double lat[256];
	for (int i = 0; i < 16; i++)
		sock[i] = i % 2; /* even CPUs on socket 0, odd on 1 */
	c2c_model(lat, sock, 16, 45, 50, 110, 140, 0);
	double conf = cpus("2 sockets x 8, interleaved", lat, sock, 16);
	CHECK(conf > 0.3, "2 sockets: confidence %.3f, want > 0.3", conf);
}

CASE(four_sockets)
{
	int sock[16];
	double lat[256];
	for (int i = 0; i < 16; i++)
		sock[i] = (i * 7 + 3) % 16 / 4; /* scattered, not in blocks */
	c2c_model(lat, sock, 16, 45, 45, 120, 140, 0.10);
	cpus("4 sockets x 4, scattered", lat, sock, 16);
}

/* Chunk latencies lat[chunk * k + c]: far[t][c] for a chunk of truth t, with noise. */
static void chunk_model(double *lat, const int *truth, int n, int k, const double far[][4],
			double frac)
{
	for (int i = 0; i < n; i++)
		for (int c = 0; c < k; c++)
			lat[i * k + c] = far[truth[i]][c] * noise(frac);
}

static double chunks(const char *what, const double *lat, const int *truth, int n, int k)
{
	static int label[MAXN];
	double conf = -1;
	int nk = leap__cluster_chunks(lat, n, k, label, &conf);
	expect_partition(what, nk, label, truth, n);
	CHECK(conf >= 0 && conf <= 1, "%s: confidence %.3f outside [0, 1]", what, conf);
	say("%s: %d memory clusters, confidence %.3f", what, nk, conf);
	return conf;
}

/* Every chunk near cluster want[truth[i]] (-1: equally near all). */
static void expect_near(const char *what, const double *lat, const int *truth, int n, int k,
			const int *want)
{
	for (int i = 0; i < n; i++) {
		int got = leap__chunk_near(&lat[i * k], k);
		CHECK(got == want[truth[i]], "%s: chunk %d (%.1f %.1f ...) near %d, want %d", what, i,
		      lat[i * k], lat[i * k + (k > 1)], got, want[truth[i]]);
	}
}

CASE(ccx_uniform_memory)
{
	int ccx[16];
	double lat[256];
	for (int i = 0; i < 16; i++)
		ccx[i] = i / 4;
	c2c_model(lat, ccx, 16, 23, 23, 107, 107, 0.05);
	cpus("4 CCX x 4", lat, ccx, 16);
	/* memory measured from those 4 clusters: one pool, alike from all */
	static const double far[1][4] = { { 90, 90, 90, 90 } };
	int truth[64] = { 0 }, none[1] = { -1 };
	double mem[64 * 4];
	chunk_model(mem, truth, 64, 4, far, 0.08);
	chunks("4 CCX, uniform memory", mem, truth, 64, 4);
	expect_near("4 CCX, uniform memory", mem, truth, 64, 4, none);
}

CASE(hidden_numa_memory)
{
	static const double far[2][4] = { { 80, 130 }, { 130, 80 } };
	int truth[64], near[2] = { 0, 1 };
	double mem[64 * 2];
	for (int i = 0; i < 64; i++)
		truth[i] = (int)(rnd(&seed) % 2);
	chunk_model(mem, truth, 64, 2, far, 0.08);
	chunks("2 clusters, 64 chunks", mem, truth, 64, 2);
	expect_near("2 clusters, 64 chunks", mem, truth, 64, 2, near);
	/* two nodes alike from cluster 0, told apart only from cluster 1 */
	static const double ring[2][4] = { { 100, 80 }, { 100, 130 } };
	chunk_model(mem, truth, 64, 2, ring, 0.08);
	chunks("alike from cluster 0 only", mem, truth, 64, 2);
}

CASE(cxl_far_memory)
{
	static const double far[2][4] = { { 80 }, { 170 } };
	int truth[48];
	double mem[48];
	for (int i = 0; i < 48; i++)
		truth[i] = (i * 5) % 7 < 3; /* mixed, not in blocks */
	chunk_model(mem, truth, 48, 1, far, 0.08);
	chunks("1 CPU cluster, 80 and 170 ns", mem, truth, 48, 1);
	/* with one CPU cluster the nearest is always it */
	int near[2] = { 0, 0 };
	expect_near("1 CPU cluster, 80 and 170 ns", mem, truth, 48, 1, near);
}

CASE(outliers)
{
	int sock[16];
	double lat[256];
	for (int i = 0; i < 16; i++)
		sock[i] = i % 2;
	c2c_model(lat, sock, 16, 45, 50, 110, 140, 0);
	/* three intra-socket pairs, both directions, one sample far off */
	static const int bad[3][2] = { { 0, 2 }, { 4, 6 }, { 3, 9 } };
	for (int p = 0; p < 3; p++)
		lat[bad[p][0] * 16 + bad[p][1]] = lat[bad[p][1] * 16 + bad[p][0]] = 300;
	cpus("2 sockets, 3 pairs at 300 ns", lat, sock, 16);
}

CASE(many_chunks)
{
	static const double far[2][4] = { { 80, 130 }, { 130, 80 } };
	static int truth[MAXN];
	static double mem[MAXN * 2];
	int near[2] = { 0, 1 };
	/* the far node holds the pool's last 1/16 and a few chunks of its second half: the
	 * sample must span the pool, and a small cluster win by its members' average
	 * distance, not by their count */
	for (int i = 0; i < MAXN; i++)
		truth[i] = i >= MAXN - MAXN / 16 || (i >= MAXN / 2 && rnd(&seed) % 64 == 0);
	chunk_model(mem, truth, MAXN, 2, far, 0.08);
	chunks("2000 chunks, 2 clusters", mem, truth, MAXN, 2);
	expect_near("2000 chunks, 2 clusters", mem, truth, MAXN, 2, near);
}

CASE(edges)
{
	int label[4] = { -1, -1, -1, -1 };
	double conf = -1, one = 0;
	int k = leap__cluster_cpus(&one, 1, label, &conf);
	CHECK(k == 1 && label[0] == 0 && conf == 1, "1 CPU: %d clusters, label %d, confidence %.3f",
	      k, label[0], conf);
	say("1 CPU: confidence %.3f", conf);
	/* one pair: nothing to compare it with, even when the two directions disagree */
	double two[2][4] = { { 0, 45, 45, 0 }, { 0, 45, 300, 0 } };
	for (int t = 0; t < 2; t++) {
		conf = -1;
		k = leap__cluster_cpus(two[t], 2, label, &conf);
		CHECK(k == 1 && label[0] == 0 && label[1] == 0,
		      "2 CPUs (%.0f/%.0f ns): %d clusters, labels %d %d", two[t][1], two[t][2], k,
		      label[0], label[1]);
		say("2 CPUs (%.0f/%.0f ns): confidence %.3f", two[t][1], two[t][2], conf);
	}
	/* leap__cluster itself: the limit decides, a refused merge sets the confidence */
	/* d(0,1) = (2 + 4) / 2 = 3 = d(0,2), d(1,2) = 1; confidence min(1 - merged / limit,
	 * 1 - limit / refused) */
	double d[9] = { 0, 2, 3, 4, 0, 1, 3, 1, 0 };
	static const struct {
		double limit, conf;
		int k, l[3];
	} lim[3] = { { 2, 1.0 / 3, 2, { 0, 1, 1 } }, { 6, 0.5, 1, { 0, 0, 0 } },
		     { 0.5, 0.5, 3, { 0, 1, 2 } } };
	for (int t = 0; t < 3; t++) {
		conf = -1;
		k = leap__cluster(d, 3, lim[t].limit, label, &conf);
		CHECK(k == lim[t].k && !memcmp(label, lim[t].l, sizeof(lim[t].l)) &&
			      fabs(conf - lim[t].conf) < 1e-9,
		      "3 items, limit %.1f: %d clusters, labels %d %d %d, confidence %.3f; want %d, "
		      "%d %d %d, %.3f", lim[t].limit, k, label[0], label[1], label[2], conf,
		      lim[t].k, lim[t].l[0], lim[t].l[1], lim[t].l[2], lim[t].conf);
	}

	double odd[5] = { 9, 1, 7, 3, 5 }, even[4] = { 4, 1, 3, 2 }, single = 42;
	CHECK(leap__median(odd, 5) == 5, "median of 9 1 7 3 5: %g", leap__median(odd, 5));
	CHECK(leap__median(even, 4) == 2.5, "median of 4 1 3 2: %g", leap__median(even, 4));
	CHECK(leap__median(&single, 1) == 42, "median of 42: %g", leap__median(&single, 1));
	CHECK(leap__median(NULL, 0) == 0, "median of nothing: %g", leap__median(NULL, 0));

	double near1[1] = { 80 }, eq[2] = { 80, 99 }, far2[2] = { 101, 80 };
	CHECK(leap__chunk_near(near1, 1) == 0, "one cluster: not 0");
	CHECK(leap__chunk_near(eq, 2) == -1, "80 vs 99 ns (< 1.25x): not -1");
	CHECK(leap__chunk_near(far2, 2) == 1, "101 vs 80 ns (> 1.25x): not 1");
}

int main(void)
{
	t_name = "t_cluster";
	return RUN_CASES(one_socket, two_sockets_interleaved, four_sockets, ccx_uniform_memory,
			 hidden_numa_memory, cxl_far_memory, outliers, many_chunks, edges);
}
