/*
 * measure_out.c - `pageleap topo --measure`: the machine measured from inside
 * (leap_measure_new(3)) next to what sysfs says, as a table, as one JSON object, and as a
 * gnuplot figure (heat maps of the core-to-core and memory-latency matrices, and each
 * labelled chunk's latency from each coherence domain). Then the affinity monitor is
 * timed, and the time targets are judged from it and the measurement ("targets").
 *
 * The measurement is taken once; everything printed is read from it through struct view,
 * gathered once. Words as in pageleap.h: a coherence domain (CPU cluster) is written
 * "c0", "c1", ..., a memory domain (memory cluster) "m0", "m1", ...
 *
 * Single-threaded: the library's probing threads are its own.
 */
#include "cli.h"
#include "pageleap.h"
#include "sys.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 256
#define MAX_CPUS 4096

/* The time targets, judged in the "targets" block. */
#define T_C2C_CPUS 64	     /* the core-to-core partition of this many CPUs ... */
#define T_C2C_S 5.0	     /* ... within this many seconds */
#define T_LABEL_S_GIB 1.0    /* memory labelled at this many seconds per GiB or less */
#define T_MON_THREADS 64     /* the monitor watching this many threads ... */
#define T_MON_PCT 0.1	     /* ... at the default 1 s period: at most this % of one CPU */
#define MON_CHECKS 200	     /* checks timed (leap_affinity_poll) */
#define MON_REPROBE_EVERY 60 /* the example re-probe period, in periods of 1 s */

static const char measure_usage[] =
	"usage: pageleap topo --measure [OPTIONS]\n"
	"  measure the machine from inside, unprivileged, and show it next to what sysfs says:\n"
	"  memory latency and bandwidth per CPU node x memory node, core-to-core latency and\n"
	"  the coherence domains it shows, memory domains, and a verdict (hidden NUMA or not).\n"
	"  Takes seconds to minutes; each part's time is printed, and the time targets\n"
	"  (core-to-core for 64 CPUs, memory labelling, affinity monitor) judged: MET or NOT MET.\n"
	"  --json               one JSON object instead of the table\n"
	"  --save-json FILE     also write the JSON to FILE\n"
	"  --force              replace output files that exist (else refused, before measuring)\n"
	"  --plot FILE.png      also draw heat maps of the core-to-core and latency matrices and\n"
	"                       each chunk's latency from each coherence domain (gnuplot; the\n"
	"                       script, its data inline, is kept as FILE.gp)\n"
	"  --what LIST          latency,bandwidth,c2c,memory or all (default all; memory also\n"
	"                       measures c2c)\n"
	"  --rounds N           samples of each quantity, the median kept (default 5)\n"
	"  --latency-mb N       pointer-chase buffer per memory node, MiB (default 256)\n"
	"  --bandwidth-mb N     read buffer per memory node, MiB (default 256)\n"
	"  --label-mb N         memory labelled per memory node, MiB, in 2 MiB chunks (default 64)\n"
	"  --trips N            core-to-core round trips per CPU pair and sample (default 500)\n"
	"  --max-cpus N         CPUs probed core to core, spread over the nodes (default 64)\n"
	"  --keep               keep the labelled chunks and list the virtual nodes (each\n"
	"                       coherence domain's CPUs and the chunks near it)\n";

static const struct {
	const char *name;
	unsigned bit;
} parts[] = {
	{ "latency", LEAP_MEASURE_LATENCY },
	{ "bandwidth", LEAP_MEASURE_BANDWIDTH },
	{ "c2c", LEAP_MEASURE_C2C },
	{ "memory", LEAP_MEASURE_MEMORY },
};

/* The numeric options, in MiB where the name says so; 0 leaves the library's default. */
enum { O_ROUNDS, O_LATENCY_MB, O_BANDWIDTH_MB, O_LABEL_MB, O_TRIPS, O_MAX_CPUS, O_N };
static const struct {
	const char *name;
	unsigned long min, max;
} nums[O_N] = {
	[O_ROUNDS] = { "--rounds", 1, 1000 },
	[O_LATENCY_MB] = { "--latency-mb", 1, 1ul << 20 },
	[O_BANDWIDTH_MB] = { "--bandwidth-mb", 1, 1ul << 20 },
	[O_LABEL_MB] = { "--label-mb", 2, 1ul << 20 },
	[O_TRIPS] = { "--trips", 1, 100000000 },
	[O_MAX_CPUS] = { "--max-cpus", 2, MAX_CPUS },
};

struct mopts {
	int json;
	const char *plot, *save_json;
	bool force; /* --force: replace existing output files */
	struct leap_measure_opts o;
};

static int bad(const char *fmt, const char *arg)
{
	return cli_usage(measure_usage, fmt, arg);
}

/* --what: the LEAP_MEASURE_* bits of a comma-separated list; 0 for a bad list. */
static unsigned parse_what(const char *s)
{
	unsigned bits = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		unsigned bit = 0;
		if (n == 3 && !strncmp(s, "all", 3))
			bit = LEAP_MEASURE_ALL;
		for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
			if (strlen(parts[k].name) == n && !strncmp(s, parts[k].name, n))
				bit = parts[k].bit;
		if (!bit)
			return 0;
		bits |= bit;
		s += n + (s[n] == ',');
	}
	return bits;
}

/* Fill *c from the options. Returns -1 to go on, 0 after --help, 2 for bad usage. */
static int parse(int argc, char **argv, struct mopts *c)
{
	unsigned long v[O_N] = { 0 };
	char msg[160];
	*c = (struct mopts){ .o = { .size = sizeof(c->o), .what = LEAP_MEASURE_ALL } };
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int k = 0;
		while (k < O_N && strcmp(a, nums[k].name))
			k++;
		int wants = k < O_N || !strcmp(a, "--what") || !strcmp(a, "--plot") ||
			    !strcmp(a, "--save-json");
		if (wants && i + 1 == argc)
			return bad("topo: %s needs a value", a);
		if (!strcmp(a, "--measure")) {
			continue;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(measure_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			c->json = 1;
		} else if (!strcmp(a, "--keep")) {
			c->o.what |= LEAP_MEASURE_KEEP;
		} else if (!strcmp(a, "--force")) {
			c->force = true;
		} else if (!strcmp(a, "--plot")) {
			c->plot = argv[++i];
		} else if (!strcmp(a, "--save-json")) {
			c->save_json = argv[++i];
		} else if (!strcmp(a, "--what")) {
			unsigned w = parse_what(argv[++i]);
			if (!w)
				return bad("topo: --what wants a list of latency, bandwidth, c2c, memory "
					   "or all, not '%s'", argv[i]);
			c->o.what = (c->o.what & LEAP_MEASURE_KEEP) | w;
		} else if (k < O_N) {
			const char *s = argv[++i];
			char *end;
			errno = 0;
			v[k] = strtoul(s, &end, 10);
			if (*s < '0' || *s > '9' || *end || errno || v[k] < nums[k].min ||
			    v[k] > nums[k].max) {
				snprintf(msg, sizeof(msg), "topo: %s wants a whole number %lu..%lu, not '%s'",
					 a, nums[k].min, nums[k].max, s);
				return bad("%s", msg);
			}
		} else {
			return bad("topo: unknown option '%s'", a);
		}
	}
	if (c->plot && !(c->o.what & (LEAP_MEASURE_LATENCY | LEAP_MEASURE_C2C | LEAP_MEASURE_MEMORY)))
		return bad("topo: %s", "--plot draws latency, c2c and memory: --what has none of them");
	c->o.rounds = (unsigned)v[O_ROUNDS];
	c->o.latency_bytes = (uint64_t)v[O_LATENCY_MB] << 20;
	c->o.bandwidth_bytes = (uint64_t)v[O_BANDWIDTH_MB] << 20;
	c->o.label_bytes = (uint64_t)v[O_LABEL_MB] << 20;
	c->o.c2c_trips = (unsigned)v[O_TRIPS];
	c->o.max_cpus = (unsigned)v[O_MAX_CPUS];
	return -1; /* go on */
}

/* ------------------------------------------------------------------ the view */

typedef int (*sample_fn)(const struct leap_measure *, int, int, struct leap_sample *);

/* What every output shows, read from the measurement once. */
struct view {
	const struct leap_topo *t;
	const struct leap_measure *m;
	struct leap_domains d;
	int emulated;
	int cnode[MAX_NODES], ncnode; /* nodes with CPUs: rows of latency and bandwidth */
	int mnode[MAX_NODES], nmnode; /* nodes with memory: their columns */
	int lat_ok, bw_ok;	      /* the matrix has at least one measured cell */
	int cpu[MAX_CPUS], ncpu;      /* CPUs probed core to core, in the library's order */
	int cl[MAX_CPUS];	      /* the coherence domain of each */
	int ord[MAX_CPUS];	      /* indices of cpu[]: by domain, then as probed */
	int K, M;		      /* coherence and memory domains */
	uint64_t nchunk;
	int *cnode_ix, *cmc, *cnear; /* per chunk: index into mnode[] (-1: none), m, c */
	double *clat;		     /* [chunk * K + k]: latency from domain k (ns), NaN unknown */
	uint64_t *per_node;	     /* [node index * M + m]: chunks */
	uint64_t *mc_chunks;	     /* [m]: chunks of memory domain m */
	double *mc_lat;		     /* [m * K + k]: median latency of m's chunks from k */
	/* the affinity monitor's cost, timed after the measurement (monitor_cost()) */
	int mon_rc;		     /* 0, or why it could not be timed (-errno) */
	uint64_t mon_checks, mon_ns; /* checks of the watched threads, their CPU time */
	int mon_watched;
	int rp_rc;		 /* one re-probe: 0, 1 (not made: fewer than 2 CPUs), -errno */
	double rp_cpu, rp_thread; /* its CPU time (s): every thread, the calling thread */
};

static int sample(sample_fn fn, const struct leap_measure *m, int a, int b, struct leap_sample *s)
{
	*s = (struct leap_sample){ .size = sizeof(*s) };
	return fn(m, a, b, s);
}

static int any_sample(const struct view *v, sample_fn fn)
{
	struct leap_sample s;
	for (int i = 0; i < v->ncnode; i++)
		for (int j = 0; j < v->nmnode; j++)
			if (sample(fn, v->m, v->cnode[i], v->mnode[j], &s) == 0)
				return 1;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void view_free(struct view *v)
{
	free(v->cnode_ix), free(v->cmc), free(v->cnear), free(v->clat);
	free(v->per_node), free(v->mc_chunks), free(v->mc_lat);
}

/* The memory domains: each chunk, the chunks per node and domain, each domain's latency. */
static int view_chunks(struct view *v)
{
	uint64_t n = v->nchunk;
	size_t K = (size_t)v->K, M = (size_t)v->M;
	v->cnode_ix = calloc(n, sizeof(int));
	v->cmc = calloc(n, sizeof(int));
	v->cnear = calloc(n, sizeof(int));
	v->clat = calloc(n * K, sizeof(double));
	v->per_node = calloc((size_t)v->nmnode * M, sizeof(uint64_t));
	v->mc_chunks = calloc(M, sizeof(uint64_t));
	v->mc_lat = calloc(M * K, sizeof(double));
	double *tmp = calloc(n, sizeof(double));
	if (!v->cnode_ix || !v->cmc || !v->cnear || !v->clat || !v->per_node || !v->mc_chunks ||
	    !v->mc_lat || !tmp) {
		free(tmp);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct leap_chunk_info ci = { .size = sizeof(ci) };
		if (leap_measure_chunk(v->m, i, &ci))
			ci.node = -1, ci.mem_cluster = -1, ci.near_cluster = -1;
		v->cnode_ix[i] = -1;
		for (int j = 0; j < v->nmnode; j++)
			if (v->mnode[j] == ci.node)
				v->cnode_ix[i] = j;
		v->cmc[i] = ci.mem_cluster >= 0 && ci.mem_cluster < v->M ? ci.mem_cluster : -1;
		v->cnear[i] = ci.near_cluster;
		if (v->cmc[i] >= 0) {
			v->mc_chunks[v->cmc[i]]++;
			if (v->cnode_ix[i] >= 0)
				v->per_node[(size_t)v->cnode_ix[i] * M + (size_t)v->cmc[i]]++;
		}
		for (size_t k = 0; k < K; k++)
			if (leap_measure_chunk_latency(v->m, i, (int)k, &v->clat[i * K + k]))
				v->clat[i * K + k] = NAN;
	}
	for (size_t mc = 0; mc < M; mc++)
		for (size_t k = 0; k < K; k++) {
			size_t c = 0;
			for (uint64_t i = 0; i < n; i++)
				if (v->cmc[i] == (int)mc && !isnan(v->clat[i * K + k]))
					tmp[c++] = v->clat[i * K + k];
			qsort(tmp, c, sizeof(*tmp), cmp_double);
			v->mc_lat[mc * K + k] = !c ? NAN : c % 2 ? tmp[c / 2] : (tmp[c / 2 - 1] + tmp[c / 2]) / 2;
		}
	free(tmp);
	return 0;
}

static int view_build(struct view *v, const struct leap_topo *t, const struct leap_measure *m)
{
	v->t = t, v->m = m;
	v->emulated = sys_emulated();
	v->d = (struct leap_domains){ .size = sizeof(v->d) };
	int rc = leap_measure_domains(m, &v->d);
	if (rc)
		return rc;
	for (int n = 0, count = leap_topo_node_count(t); n < count; n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		if (leap_topo_node(t, n, &ni) || !ni.online)
			continue;
		if (ni.ncpus > 0 && v->ncnode < MAX_NODES)
			v->cnode[v->ncnode++] = n;
		if (ni.has_memory && v->nmnode < MAX_NODES)
			v->mnode[v->nmnode++] = n;
	}
	v->lat_ok = any_sample(v, leap_measure_latency);
	v->bw_ok = any_sample(v, leap_measure_bandwidth);
	rc = v->d.cpus ? leap_measure_cpus(m, v->cpu, MAX_CPUS) : 0; /* 0: no core to core */
	v->ncpu = rc < 0 ? 0 : rc > MAX_CPUS ? MAX_CPUS : rc;
	for (int i = 0; i < v->ncpu; i++) {
		v->cl[i] = leap_measure_cpu_cluster(m, v->cpu[i]);
		int j = i; /* insertion sort: by domain, stable */
		while (j > 0 && v->cl[v->ord[j - 1]] > v->cl[i]) {
			v->ord[j] = v->ord[j - 1];
			j--;
		}
		v->ord[j] = i;
	}
	v->K = v->d.cpu_clusters, v->M = v->d.mem_clusters, v->nchunk = v->d.chunks;
	if (v->K > 0 && v->M > 0 && v->nchunk)
		return view_chunks(v);
	v->nchunk = 0;
	return 0;
}

/* ------------------------------------------------------------------ targets */

static double cpu_seconds(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time the affinity monitor on the measured domains (the kernel's nodes without them):
 * MON_CHECKS checks of the calling thread, then one re-probe when core to core was
 * measured with 2 CPUs or more. A re-probe's prober thread spins with the caller, so its
 * CPU time is read for the whole process as well as from the monitor's stats. */
static void monitor_cost(struct view *v)
{
	struct leap_affinity_opts o = { .size = sizeof(o), .no_thread = 1 };
	struct leap_affinity_stats s = { .size = sizeof(s) };
	struct leap_affinity *a = NULL;
	int rc = leap_affinity_start(v->t, v->K > 0 ? v->m : NULL, &o, &a);
	if (!rc)
		rc = leap_affinity_watch(a, 0);
	for (int i = 0; !rc && i < MON_CHECKS; i++) {
		int events = leap_affinity_poll(a, 0);
		rc = events < 0 ? events : 0;
	}
	if (!rc)
		rc = leap_affinity_stats(a, &s);
	v->mon_rc = rc, v->mon_checks = s.checks, v->mon_ns = s.cpu_ns, v->mon_watched = s.watched;
	v->rp_rc = 1;
	if (!rc && v->ncpu >= 2 && v->K > 0) {
		uint64_t before = s.cpu_ns;
		double p0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
		rc = leap_affinity_poll(a, 1);
		v->rp_cpu = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - p0;
		v->rp_rc = rc < 0 ? rc : leap_affinity_stats(a, &s);
		v->rp_thread = (double)(s.cpu_ns - before) / 1e9;
	}
	if (a)
		leap_affinity_stop(&a);
}

struct target {
	const char *name, *label, *unit;
	double value, target; /* NaN: none (n/a; target: not judged) */
	int met;	      /* 1 met, 0 not met, -1 n/a or not judged */
	char note[240];
};
enum { T_C2C, T_LABEL, T_MONITOR, T_REPROBE, T_N };

static void judge(struct target *t, double value)
{
	t->value = value;
	t->met = isnan(t->target) ? -1 : value <= t->target;
}

static void targets(const struct view *v, struct target *t)
{
	const struct leap_domains *d = &v->d;
	double n = d->cpus, N = T_C2C_CPUS;
	t[T_C2C] = (struct target){ "c2c_partition", "core-to-core partition", "s", NAN, T_C2C_S, -1, "" };
	if (d->cpus < 2) {
		snprintf(t[T_C2C].note, sizeof(t->note), "cannot be judged: %s", d->cpus ?
			 "1 CPU probed core to core, no pair timed" : "core to core not measured");
	} else {
		judge(&t[T_C2C], d->c2c_seconds * (N * (N - 1) / 2) / (n * (n - 1) / 2));
		snprintf(t[T_C2C].note, sizeof(t->note), "for %d CPUs (%.0f pairs), %s %u CPUs "
			 "(%.0f pair%s): %.3g s measured%s", T_C2C_CPUS, N * (N - 1) / 2,
			 d->cpus < T_C2C_CPUS ? "extrapolated from" : d->cpus > T_C2C_CPUS ?
			 "scaled from" : "measured with", d->cpus, n * (n - 1) / 2, d->cpus == 2 ? "" : "s",
			 d->c2c_seconds, d->cpus < 8 ? "; from so few pairs, noisy" : "");
	}
	t[T_LABEL] = (struct target){ "memory_labelling", "memory labelling", "s/GiB", NAN,
				      T_LABEL_S_GIB, -1, "" };
	double gib = (double)d->chunks * 2 / 1024;
	if (!d->chunks) {
		snprintf(t[T_LABEL].note, sizeof(t->note), "cannot be judged: no memory labelled");
	} else {
		judge(&t[T_LABEL], d->memory_seconds / gib);
		snprintf(t[T_LABEL].note, sizeof(t->note), "%.3g s for %" PRIu64 " chunks of 2 MiB, "
			 "%.3g GiB", d->memory_seconds, d->chunks, gib);
	}
	t[T_MONITOR] = (struct target){ "affinity_monitor", "affinity monitor", "% of one CPU", NAN,
					T_MON_PCT, -1, "" };
	if (v->mon_rc || !v->mon_checks || v->mon_watched < 1) {
		snprintf(t[T_MONITOR].note, sizeof(t->note), "cannot be judged: the monitor could not "
			 "be timed: %s", v->mon_rc ? leap_strerror(v->mon_rc) : "no check made");
	} else { /* per check per thread, once a second: ns / 1e9 s, in % */
		double us = (double)v->mon_ns / 1e3 / (double)v->mon_checks / v->mon_watched;
		judge(&t[T_MONITOR], us * T_MON_THREADS / 1e4);
		snprintf(t[T_MONITOR].note, sizeof(t->note), "%d watched threads at the 1 s period, "
			 "extrapolated linearly; 1 thread: %.2g %%; %.3g us of CPU per check per "
			 "thread over %" PRIu64 " checks", T_MON_THREADS, us / 1e4, us, v->mon_checks);
	}
	t[T_REPROBE] = (struct target){ "affinity_reprobe", "affinity re-probe", "% of one CPU", NAN,
					NAN, -1, "" };
	if (v->rp_rc) {
		snprintf(t[T_REPROBE].note, sizeof(t->note), "not made: %s", v->rp_rc > 0 ?
			 "core to core not measured with 2 CPUs or more" : leap_strerror(v->rp_rc));
	} else {
		judge(&t[T_REPROBE], v->rp_cpu / MON_REPROBE_EVERY * 100);
		snprintf(t[T_REPROBE].note, sizeof(t->note), "reprobe_every %d at the 1 s period; one "
			 "re-probe of %d CPUs against %d domain%s: %.3g ms of CPU, all threads (%.3g "
			 "ms on the calling thread)", MON_REPROBE_EVERY, v->ncpu, v->K,
			 v->K == 1 ? "" : "s", v->rp_cpu * 1e3, v->rp_thread * 1e3);
	}
}

static const char *verdict_of(const struct target *t)
{
	return isnan(t->target) ? "reported, not judged" : t->met < 0 ? "n/a" : t->met ? "MET" : "NOT MET";
}

static void table_targets(FILE *f, const struct view *v)
{
	struct target t[T_N];
	targets(v, t);
	fprintf(f, "\ntargets%s:\n", v->emulated ? " (QEMU emulation: the guest's timings are "
				"relative, not hardware timings)" : "");
	for (int i = 0; i < T_N; i++) {
		fprintf(f, "  %s: ", t[i].label);
		if (isnan(t[i].value))
			fputs("n/a", f);
		else
			fprintf(f, "%.3g %s", t[i].value, t[i].unit);
		fprintf(f, " (%s); ", t[i].note);
		if (!isnan(t[i].target))
			fprintf(f, "target <= %g %s: ", t[i].target, t[i].unit);
		fprintf(f, "%s\n", verdict_of(&t[i]));
	}
}

static void json_targets(FILE *f, const struct view *v)
{
	struct target t[T_N];
	char note[sizeof(t->note) + 64];
	targets(v, t);
	for (int i = 0; i < T_N; i++) {
		fprintf(f, "%s{\"name\":\"%s\",\"value\":", i ? "," : "[", t[i].name);
		sys_json_num(f, t[i].value);
		fprintf(f, ",\"unit\":\"%s\",\"target\":", t[i].unit);
		sys_json_num(f, t[i].target);
		fprintf(f, ",\"met\":%s,\"note\":", t[i].met < 0 ? "null" : t[i].met ? "true" : "false");
		snprintf(note, sizeof(note), "%s%s", t[i].note,
			 v->emulated ? "; QEMU emulation: relative, not hardware timings" : "");
		sys_json_string(f, note);
		fputc('}', f);
	}
	fputc(']', f);
}

/* ------------------------------------------------------------------ table */

static void cell(char *buf, size_t len, int rc, const struct leap_sample *s)
{
	if (rc)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f [%.1f-%.1f]", s->median, s->min, s->max);
}

/* Latency or bandwidth: CPU node (rows) x memory node (columns), median [min-max]. */
static void table_nodes(FILE *f, const struct view *v, sample_fn fn, const char *what)
{
	struct leap_sample s;
	char buf[64];
	unsigned samples = 0;
	for (int i = 0; i < v->ncnode && !samples; i++)
		for (int j = 0; j < v->nmnode && !samples; j++)
			if (sample(fn, v->m, v->cnode[i], v->mnode[j], &s) == 0)
				samples = s.samples;
	fprintf(f, "\n%s, median [min-max] of %u samples: CPU node (rows) x memory node\n%-8s", what,
		samples, "cpu\\mem");
	for (int j = 0; j < v->nmnode; j++)
		fprintf(f, " %-*d", j + 1 < v->nmnode ? 22 : 0, v->mnode[j]);
	fputc('\n', f);
	for (int i = 0; i < v->ncnode; i++) {
		fprintf(f, "%-8d", v->cnode[i]);
		for (int j = 0; j < v->nmnode; j++) {
			cell(buf, sizeof(buf), sample(fn, v->m, v->cnode[i], v->mnode[j], &s), &s);
			fprintf(f, " %-*s", j + 1 < v->nmnode ? 22 : 0, buf);
		}
		fputc('\n', f);
	}
}

static void table_c2c(FILE *f, const struct view *v)
{
	struct leap_sample s;
	fprintf(f, "\ncore-to-core latency (ns, one way, median): %d CPUs probed, by coherence domain\n"
		   "%-5s %-4s", v->ncpu, "cpu", "dom");
	for (int j = 0; j < v->ncpu; j++)
		fprintf(f, " %4d", v->cpu[v->ord[j]]);
	fputc('\n', f);
	for (int i = 0; i < v->ncpu; i++) {
		int a = v->cpu[v->ord[i]];
		if (v->cl[v->ord[i]] >= 0)
			fprintf(f, "%-5d c%-3d", a, v->cl[v->ord[i]]);
		else
			fprintf(f, "%-5d %-4s", a, "-");
		for (int j = 0; j < v->ncpu; j++) {
			int b = v->cpu[v->ord[j]];
			if (sample(leap_measure_c2c, v->m, a, b, &s) == 0) /* a == b: -ENODEV */
				fprintf(f, " %4.0f", s.median);
			else
				fprintf(f, " %4s", "-");
		}
		fputc('\n', f);
	}
	fprintf(f, "coherence domains: %d (confidence %.2f)\n", v->K, v->d.cpu_confidence);
	for (int k = 0; k < v->K; k++) {
		int cpus[MAX_CPUS], n = 0;
		for (int i = 0; i < v->ncpu; i++) /* ascending, for a compact list */
			if (v->cl[i] == k) {
				int j = n++;
				for (; j > 0 && cpus[j - 1] > v->cpu[i]; j--)
					cpus[j] = cpus[j - 1];
				cpus[j] = v->cpu[i];
			}
		fprintf(f, "  c%d: cpus ", k);
		cli_print_cpus(f, cpus, n);
		fputc('\n', f);
	}
}

static void table_memory(FILE *f, const struct view *v)
{
	fprintf(f, "\nmemory domains: %d (confidence %.2f); %" PRIu64 " chunks of 2 MiB labelled\n",
		v->M, v->d.mem_confidence, v->nchunk);
	fprintf(f, "chunks per kernel node and memory domain:\n%-6s", "node");
	for (int mc = 0; mc < v->M; mc++)
		fprintf(f, " %7s%d", "m", mc);
	fputc('\n', f);
	for (int j = 0; j < v->nmnode; j++) {
		fprintf(f, "%-6d", v->mnode[j]);
		for (int mc = 0; mc < v->M; mc++)
			fprintf(f, " %8" PRIu64, v->per_node[(size_t)j * (size_t)v->M + (size_t)mc]);
		fputc('\n', f);
	}
	fprintf(f, "latency from each coherence domain (ns, median over the domain's chunks):\n"
		   "%-6s %8s", "mem", "chunks");
	for (int k = 0; k < v->K; k++)
		fprintf(f, " %6s c%d", "from", k);
	fputc('\n', f);
	for (int mc = 0; mc < v->M; mc++) {
		fprintf(f, "m%-5d %8" PRIu64, mc, v->mc_chunks[mc]);
		for (int k = 0; k < v->K; k++)
			fprintf(f, " %9.1f", v->mc_lat[(size_t)mc * (size_t)v->K + (size_t)k]);
		fputc('\n', f);
	}
}

/* Chunks virtual node vn offers: leap_vnode_chunk() until -ENOENT (those near it, then
 * those equally near every domain, which every virtual node offers). */
static uint64_t vnode_chunks(const struct leap_measure *m, int vn)
{
	uint64_t k = 0;
	void *addr;
	while (leap_vnode_chunk(m, vn, k, &addr) == 0)
		k++;
	return k;
}

/* Chunks nearest to coherence domain k (near < 0: equally near all). */
static uint64_t chunks_near(const struct view *v, int k)
{
	uint64_t c = 0;
	for (uint64_t i = 0; i < v->nchunk; i++)
		c += v->cnear[i] == k || (k < 0 && v->cnear[i] < 0);
	return c;
}

static void table_vnodes(FILE *f, const struct view *v)
{
	static int cpus[MAX_CPUS];
	int n = leap_vnode_count(v->m);
	fprintf(f, "\nvirtual nodes (--keep): %d\n", n < 0 ? 0 : n);
	for (int vn = 0; vn < n; vn++) {
		int nc = leap_vnode_cpus(v->m, vn, cpus, MAX_CPUS);
		nc = nc < 0 ? 0 : nc > MAX_CPUS ? MAX_CPUS : nc;
		fprintf(f, "  vnode %d: cpus ", vn);
		cli_print_cpus(f, cpus, nc);
		fprintf(f, "; %" PRIu64 " chunks of 2 MiB (%" PRIu64 " near it, %" PRIu64
			   " equally near all)\n",
			vnode_chunks(v->m, vn), chunks_near(v, vn), chunks_near(v, -1));
	}
}

static void print_table(FILE *f, const struct view *v, unsigned what)
{
	const struct leap_domains *d = &v->d;
	if (v->emulated)
		fprintf(f, "QEMU software emulation: these timings are not hardware timings\n");
	fprintf(f, "sysfs: %d node(s), %d with CPUs\n", d->sysfs_nodes, d->sysfs_cpu_nodes);
	cli_topo_print(f, v->t, 0);
	if (v->lat_ok)
		table_nodes(f, v, leap_measure_latency, "memory latency (ns)");
	if (v->bw_ok)
		table_nodes(f, v, leap_measure_bandwidth, "read bandwidth (GB/s)");
	if (v->ncpu)
		table_c2c(f, v);
	if (v->nchunk)
		table_memory(f, v);
	if (what & LEAP_MEASURE_KEEP)
		table_vnodes(f, v);
	fprintf(f, "\ntime (s):");
	if (v->lat_ok)
		fprintf(f, " latency %.2f", d->latency_seconds);
	if (v->bw_ok)
		fprintf(f, " bandwidth %.2f", d->bandwidth_seconds);
	if (v->ncpu)
		fprintf(f, " core-to-core %.2f", d->c2c_seconds);
	if (v->nchunk)
		fprintf(f, " memory %.2f", d->memory_seconds);
	fprintf(f, "\nverdict: %s\n", d->verdict);
	if (d->cpu_clusters) { /* hidden NUMA is judged from the domains */
		fprintf(f, "  coherence domains %d (confidence %.2f)", d->cpu_clusters,
			d->cpu_confidence);
		if (d->mem_clusters)
			fprintf(f, ", memory domains %d (confidence %.2f)", d->mem_clusters,
				d->mem_confidence);
		fprintf(f, "; hidden NUMA: %s\n", d->hidden ? "yes" : "no");
	}
	table_targets(f, v);
}

/* ------------------------------------------------------------------ JSON */

static void json_ints(FILE *f, const int *a, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%d", i ? "," : "", a[i]);
	fputc(']', f);
}

static void json_sample(FILE *f, int rc, const struct leap_sample *s)
{
	if (rc) {
		fputs("null", f);
		return;
	}
	fputs("{\"median\":", f);
	sys_json_num(f, s->median);
	fputs(",\"min\":", f);
	sys_json_num(f, s->min);
	fputs(",\"max\":", f);
	sys_json_num(f, s->max);
	fprintf(f, ",\"samples\":%u}", s->samples);
}

/* {"cpu_nodes":[..],"mem_nodes":[..],"<unit>":[[sample or null, ..], ..]} */
static void json_nodes(FILE *f, const struct view *v, sample_fn fn, const char *unit)
{
	struct leap_sample s;
	fputs("{\"cpu_nodes\":", f);
	json_ints(f, v->cnode, v->ncnode);
	fputs(",\"mem_nodes\":", f);
	json_ints(f, v->mnode, v->nmnode);
	fprintf(f, ",\"%s\":[", unit);
	for (int i = 0; i < v->ncnode; i++) {
		fputs(i ? ",[" : "[", f);
		for (int j = 0; j < v->nmnode; j++) {
			fputs(j ? "," : "", f);
			json_sample(f, sample(fn, v->m, v->cnode[i], v->mnode[j], &s), &s);
		}
		fputc(']', f);
	}
	fputs("]}", f);
}

static void json_c2c(FILE *f, const struct view *v)
{
	struct leap_sample s;
	fputs("{\"cpus\":", f);
	json_ints(f, v->cpu, v->ncpu);
	fputs(",\"clusters\":", f);
	json_ints(f, v->cl, v->ncpu);
	fputs(",\"ns\":[", f);
	for (int i = 0; i < v->ncpu; i++) {
		fputs(i ? ",[" : "[", f);
		for (int j = 0; j < v->ncpu; j++) {
			fputs(j ? "," : "", f);
			json_sample(f, sample(leap_measure_c2c, v->m, v->cpu[i], v->cpu[j], &s), &s);
		}
		fputc(']', f);
	}
	fputs("]}", f);
}

static void json_memory(FILE *f, const struct view *v)
{
	size_t K = (size_t)v->K, M = (size_t)v->M;
	fputs("{\"mem_nodes\":", f);
	json_ints(f, v->mnode, v->nmnode);
	fputs(",\"chunks_per_node\":[", f); /* [node index][memory domain] */
	for (int j = 0; j < v->nmnode; j++) {
		fputs(j ? ",[" : "[", f);
		for (size_t mc = 0; mc < M; mc++)
			fprintf(f, "%s%" PRIu64, mc ? "," : "", v->per_node[(size_t)j * M + mc]);
		fputc(']', f);
	}
	fputs("],\"mem_clusters\":[", f);
	for (size_t mc = 0; mc < M; mc++) {
		fprintf(f, "%s{\"chunks\":%" PRIu64 ",\"ns_from\":[", mc ? "," : "", v->mc_chunks[mc]);
		for (size_t k = 0; k < K; k++) {
			fputs(k ? "," : "", f);
			sys_json_num(f, v->mc_lat[mc * K + k]);
		}
		fputs("]}", f);
	}
	fputs("],\"chunks\":[", f);
	for (uint64_t i = 0; i < v->nchunk; i++) {
		int j = v->cnode_ix[i];
		fprintf(f, "%s{\"node\":%d,\"mem_cluster\":%d,\"near_cluster\":%d,\"ns_from\":[",
			i ? "," : "", j < 0 ? -1 : v->mnode[j], v->cmc[i], v->cnear[i]);
		for (size_t k = 0; k < K; k++) {
			fputs(k ? "," : "", f);
			sys_json_num(f, v->clat[i * K + k]);
		}
		fputs("]}", f);
	}
	fputs("]}", f);
}

static void print_json(FILE *f, const struct view *v, const struct leap_measure_opts *o)
{
	static int cpus[MAX_CPUS];
	const struct leap_domains *d = &v->d;
	fprintf(f, "{\"emulated\":%s,\"options\":{\"what\":[", v->emulated ? "true" : "false");
	for (size_t k = 0, n = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
		if (o->what & parts[k].bit)
			fprintf(f, "%s\"%s\"", n++ ? "," : "", parts[k].name);
	fprintf(f, "],\"keep\":%s,\"rounds\":%u,\"latency_bytes\":%" PRIu64 ",\"bandwidth_bytes\":%" PRIu64
		   ",\"label_bytes\":%" PRIu64 ",\"c2c_trips\":%u,\"max_cpus\":%u},\"sysfs\":",
		o->what & LEAP_MEASURE_KEEP ? "true" : "false", o->rounds, o->latency_bytes,
		o->bandwidth_bytes, o->label_bytes, o->c2c_trips, o->max_cpus);
	cli_topo_print(f, v->t, 1);
	fputs(",\"latency\":", f); /* null: not measured */
	if (v->lat_ok)
		json_nodes(f, v, leap_measure_latency, "ns");
	else
		fputs("null", f);
	fputs(",\"bandwidth\":", f);
	if (v->bw_ok)
		json_nodes(f, v, leap_measure_bandwidth, "gbps");
	else
		fputs("null", f);
	fputs(",\"c2c\":", f);
	if (v->ncpu)
		json_c2c(f, v);
	else
		fputs("null", f);
	fputs(",\"memory\":", f);
	if (v->nchunk)
		json_memory(f, v);
	else
		fputs("null", f);
	fprintf(f, ",\"domains\":{\"sysfs_nodes\":%d,\"sysfs_cpu_nodes\":%d,\"cpu_clusters\":%d,"
		   "\"mem_clusters\":%d,\"cpu_confidence\":",
		d->sysfs_nodes, d->sysfs_cpu_nodes, d->cpu_clusters, d->mem_clusters);
	sys_json_num(f, d->cpu_confidence);
	fputs(",\"mem_confidence\":", f);
	sys_json_num(f, d->mem_confidence);
	fprintf(f, ",\"cpus\":%u,\"chunks\":%" PRIu64 "},\"seconds\":{\"latency\":", d->cpus, d->chunks);
	sys_json_num(f, d->latency_seconds);
	fputs(",\"bandwidth\":", f);
	sys_json_num(f, d->bandwidth_seconds);
	fputs(",\"c2c\":", f);
	sys_json_num(f, d->c2c_seconds);
	fputs(",\"memory\":", f);
	sys_json_num(f, d->memory_seconds);
	fputs("},\"verdict\":", f);
	sys_json_string(f, d->verdict);
	fprintf(f, ",\"hidden\":%s,\"vnodes\":", d->hidden ? "true" : "false");
	int n = o->what & LEAP_MEASURE_KEEP ? leap_vnode_count(v->m) : -1;
	if (n < 0)
		fputs("null", f);
	for (int vn = 0; vn < n; vn++) {
		int nc = leap_vnode_cpus(v->m, vn, cpus, MAX_CPUS);
		nc = nc < 0 ? 0 : nc > MAX_CPUS ? MAX_CPUS : nc;
		fprintf(f, "%s{\"vnode\":%d,\"cpus\":", vn ? "," : "[", vn);
		json_ints(f, cpus, nc);
		fprintf(f, ",\"chunks\":%" PRIu64 ",\"near\":%" PRIu64 "}", vnode_chunks(v->m, vn),
			chunks_near(v, vn));
	}
	fputs(n == 0 ? "[]" : n > 0 ? "]" : "", f);
	fputs(",\"targets\":", f);
	json_targets(f, v);
	fputs("}\n", f);
}

/* ------------------------------------------------------------------ plot */

/* What every panel starts with (the reset after each clears it). */
static const char gp_panel[] = "set datafile missing 'NaN'; set palette rgb 33,13,10\n";

/* Tic labels for a heat map axis: every step-th of n labels. */
static void gp_tics(FILE *f, const char *axis, const int *label, int n, int step)
{
	fprintf(f, "set %s (", axis);
	for (int i = 0; i < n; i += step)
		fprintf(f, "%s'%d' %d", i ? ", " : "", label[i], i);
	fputs(")\n", f);
}

/* A heat map panel of fn's medians over row[] x col[], row 0 on top: one box per measured
 * cell (an image needs 2 x 2 cells at least, and a one-node machine has one), the others
 * blank; the values printed in the cells when they fit. */
static void gp_heat(FILE *f, const struct leap_measure *m, sample_fn fn, const char *title,
		    const int *row, int nr, const int *col, int nc)
{
	struct leap_sample s;
	double lo = INFINITY, hi = -INFINITY;
	fprintf(f, "$heat << EOD\n");
	for (int i = 0; i < nr; i++)
		for (int j = 0; j < nc; j++)
			if (sample(fn, m, row[i], col[j], &s) == 0) {
				fprintf(f, "%d %d %.2f\n", j, i, s.median);
				lo = fmin(lo, s.median), hi = fmax(hi, s.median);
			}
	fprintf(f, "EOD\n%sset title \"%s\"\nset cblabel 'ns'\n", gp_panel, title);
	if (lo <= hi) /* gnuplot warns about an empty range */
		fprintf(f, "set cbrange [%.2f:%.2f]\n", lo - (lo == hi), hi + (lo == hi));
	gp_tics(f, nc > 16 ? "xtics rotate by 90 right" : "xtics", col, nc, (nc + 31) / 32);
	gp_tics(f, "ytics", row, nr, (nr + 31) / 32);
	fprintf(f, "set xrange [-0.5:%d.5]; set yrange [%d.5:-0.5]; set size square\n"
		   "plot $heat using 1:2:(0.5):(0.5):3 with boxxyerror fc palette fs solid noborder "
		   "notitle",
		nc - 1, nr - 1);
	if (nr * nc <= 64)
		fputs(", $heat using 1:2:(sprintf('%.0f', $3)) with labels notitle", f);
	fputs("\nreset\n", f);
}

static void write_gp(FILE *f, const struct view *v, const char *png)
{
	size_t K = (size_t)v->K;
	int panels = (v->ncpu > 1) + v->lat_ok + (v->nchunk > 0);
	fputs("# made by pageleap topo --measure; run again with: gnuplot THIS_FILE\nout = ", f);
	sys_gp_string(f, png);
	char title[256];
	snprintf(title, sizeof(title), "%s%s", v->d.verdict,
		 v->emulated ? " (QEMU emulation: not hardware timings)" : "");
	fputs("\ntitle = ", f);
	sys_gp_string(f, title);
	fprintf(f, "\nset terminal pngcairo size %d,600 noenhanced\nset output out\n"
		   "set multiplot layout 1,%d title title\n",
		560 * (panels > 0 ? panels : 1), panels > 0 ? panels : 1);
	if (v->ncpu > 1) { /* by coherence domain: the domains show as blocks */
		int n = v->ncpu, lab[MAX_CPUS];
		for (int i = 0; i < n; i++)
			lab[i] = v->cpu[v->ord[i]];
		fputs("set xlabel 'CPU'; set ylabel 'CPU'\n", f);
		for (int i = 1; i < n; i++) /* lines between the domains */
			if (v->cl[v->ord[i]] != v->cl[v->ord[i - 1]])
				fprintf(f, "set arrow from %d.5,-0.5 to %d.5,%d.5 nohead front lc rgb 'white'\n"
					   "set arrow from -0.5,%d.5 to %d.5,%d.5 nohead front lc rgb 'white'\n",
					i - 1, i - 1, n - 1, i - 1, n - 1, i - 1);
		gp_heat(f, v->m, leap_measure_c2c,
			"core-to-core latency (ns, one way)\\nCPUs by coherence domain", lab, n, lab, n);
	}
	if (v->lat_ok) {
		fputs("set xlabel 'memory node'; set ylabel 'CPU node'\n", f);
		gp_heat(f, v->m, leap_measure_latency, "memory latency (ns, median)", v->cnode,
			v->ncnode, v->mnode, v->nmnode);
	}
	if (v->nchunk) { /* x: the chunks grouped by kernel node, a dashed line between */
		fputs("$chunks << EOD\n", f);
		uint64_t x = 0;
		for (int j = 0; j < v->nmnode; j++)
			for (uint64_t i = 0; i < v->nchunk; i++) {
				if (v->cnode_ix[i] != j)
					continue;
				fprintf(f, "%" PRIu64 " %d", x++, v->mnode[j]);
				for (size_t k = 0; k < K; k++)
					fprintf(f, isnan(v->clat[i * K + k]) ? " NaN" : " %.2f", v->clat[i * K + k]);
				fputc('\n', f);
			}
		fputs("EOD\n", f);
		fputs(gp_panel, f);
		x = 0;
		for (int j = 0; j < v->nmnode; j++) {
			uint64_t c = 0;
			for (uint64_t i = 0; i < v->nchunk; i++)
				c += v->cnode_ix[i] == j;
			if (!c)
				continue;
			if (x)
				fprintf(f, "set arrow from %" PRIu64 ".5, graph 0 to %" PRIu64
					   ".5, graph 1 nohead dt 2\n",
					x - 1, x - 1);
			fprintf(f, "set label 'node %d' at %.1f, graph 0.04 center\n", v->mnode[j],
				(double)x + (double)(c - 1) / 2);
			x += c;
		}
		fprintf(f, "set title \"latency of each labelled 2 MiB chunk\\nfrom each coherence domain\"\n"
			   "set xlabel 'chunk (grouped by kernel node)'; set ylabel 'ns'\n"
			   "set xrange [-0.5:%" PRIu64 ".5]; set yrange [0:*]; set key below\n"
			   "plot for [k=0:%d] $chunks using 1:(column(3 + k)) with points pt 5 + 2 * k ps 0.7 "
			   "title sprintf('from c%%d', k)\n",
			x ? x - 1 : 0, v->K - 1);
	}
	fputs("unset multiplot\n", f);
}

/* ------------------------------------------------------------------ the command */

static int on_path(const char *prog)
{
	const char *p = getenv("PATH");
	char file[4096];
	for (p = p ? p : "/usr/bin:/bin"; *p; p += *p == ':') {
		size_t n = strcspn(p, ":");
		snprintf(file, sizeof(file), "%.*s/%s", n ? (int)n : 1, n ? p : ".", prog);
		if (access(file, X_OK) == 0)
			return 1;
		p += n;
	}
	return 0;
}

int cmd_measure(int argc, char **argv)
{
	struct mopts c;
	int rc = parse(argc, argv, &c);
	if (rc >= 0)
		return rc;
	/* refuse what would fail after minutes of measuring, before them */
	char gp[4096] = "";
	FILE *jf = NULL, *gf = NULL;
	if (c.plot) {
		if (!on_path("gnuplot")) {
			fprintf(stderr, "pageleap: topo: --plot needs gnuplot, which is not installed "
					"here (install gnuplot-nox, or leave out --plot)\n");
			return 1;
		}
		size_t n = strlen(c.plot);
		n -= n > 4 && !strcmp(c.plot + n - 4, ".png") ? 4 : 0;
		snprintf(gp, sizeof(gp), "%.*s.gp", (int)n, c.plot);
		if (!(gf = sys_create(gp, c.force))) {
			sys_say_create("topo", gp, errno);
			return 1;
		}
	}
	if (c.save_json && !(jf = sys_create(c.save_json, c.force))) {
		sys_say_create("topo", c.save_json, errno);
		if (gf)
			fclose(gf);
		return 1;
	}
	/* the measurement moves no page: no write protection needed (nor userfaultfd) */
	struct leap_ctx_options co = { .size = sizeof(co), .flags = LEAP_CTX_NO_WRITE_PROTECT };
	struct leap_ctx *ctx = NULL;
	struct leap_measure *m = NULL;
	struct view *v = calloc(1, sizeof(*v));
	int ret = 1;
	if (!v) {
		fprintf(stderr, "pageleap: topo: %s\n", strerror(ENOMEM));
		goto out;
	}
	if ((rc = leap_ctx_new(&co, &ctx))) {
		fprintf(stderr, "pageleap: cannot start the library: %s\n", leap_strerror(rc));
		goto out;
	}
	if (isatty(2))
		fprintf(stderr, "pageleap: measuring the machine (seconds to minutes) ...\n");
	if ((rc = leap_measure_new(ctx, &c.o, &m))) {
		fprintf(stderr, "pageleap: topo: measurement failed: %s%s\n", leap_strerror(rc),
			rc == -ENOSPC || rc == -ENOMEM
				? " (try smaller --latency-mb, --bandwidth-mb, --label-mb)"
				: "");
		goto out;
	}
	if ((rc = view_build(v, leap_ctx_topo(ctx), m))) {
		fprintf(stderr, "pageleap: topo: cannot read the measurement: %s\n", leap_strerror(rc));
		goto out;
	}
	monitor_cost(v);
	if (c.json)
		print_json(stdout, v, &c.o);
	else
		print_table(stdout, v, c.o.what);
	ret = 0;
	if (jf) {
		print_json(jf, v, &c.o);
		if (fclose(jf)) {
			fprintf(stderr, "pageleap: topo: cannot write %s: %s\n", c.save_json, strerror(errno));
			ret = 1;
		}
		jf = NULL;
	}
	if (gf) {
		if (!v->lat_ok && v->ncpu < 2 && !v->nchunk) {
			fprintf(stderr, "pageleap: topo: nothing to plot: no latency, c2c or memory "
					"was measured\n");
			ret = 1;
		}
		write_gp(gf, v, c.plot);
		if (fclose(gf) || (ret == 0 && (rc = sys_gnuplot(gp)))) {
			fprintf(stderr, "pageleap: topo: plot %s failed (script %s)\n", c.plot, gp);
			ret = 1;
		}
		gf = NULL;
	}
out:
	if (jf)
		fclose(jf);
	if (gf)
		fclose(gf);
	if (v)
		view_free(v);
	free(v);
	if (m)
		leap_measure_destroy(&m);
	if (ctx)
		leap_ctx_destroy(&ctx);
	return ret;
}
