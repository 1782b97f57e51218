/*
 * `pageleap topo --measure` end to end (tools/measure_out.c): runs the CLI on a small
 * measurement, parses its stdout with the strict JSON parser of clijson.h, then checks the
 * report: every field's type, and that its parts agree with each other, with sysfs (the
 * report's own "sysfs" block) and with this process's CPU affinity, which the CLI inherits.
 * Which CLI runs: see clijson.h (in the guests, /bin/pageleap).
 *
 * Cases (util.h RUN_CASES: each in its own process, each reported):
 *   json       --json --latency-mb 16 --bandwidth-mb 16 --label-mb 16 --rounds 3: exit 0
 *              (its stderr passes through), one strict JSON object on stdout. The
 *              options echoed; the node matrices over the nodes with CPUs x with memory,
 *              a cell measured (3 samples) exactly where its CPU node has a CPU we may run
 *              on; every sample min > 0, min <= median <= max; core to core over exactly
 *              the CPUs we may run on (up to the default 64), symmetric, no diagonal; the
 *              coherence domains numbered 0..K-1, each used; 8 chunks of 2 MiB per memory
 *              node, grouped by node, their domains and the per-node / per-domain counts
 *              and medians consistent; the domains block against all of that; the
 *              verdict's words ("sysfs shows N node(s); measured K CPU cluster(s) and M
 *              memory cluster(s)"); hidden exactly when one node's chunks fall in two
 *              memory domains; times >= 0; memory domains: exactly 1 and hidden false
 *              under LEAP_UNIFORM_MEMORY (the emulated guests set it), else >= 1; the four
 *              targets (always all four, in order) with their units and targets, a value
 *              where its input was measured, met == (value <= target) where judged;
 *              vnodes null without --keep.
 *   keep       the same with --keep, and the virtual nodes: one per coherence domain,
 *              each listing exactly the probed CPUs of its domain (together: every probed
 *              CPU once), its chunks = those near it + those equally near all.
 *   bad_input  --rounds 0x, --rounds 0, --rounds 1001, --rounds with no value,
 *              --what bogus, --what latency,bogus, --label-mb 1 (less than one 2 MiB
 *              chunk), --latency-mb -1, --plot without anything to draw, an unknown
 *              option: exit 2, nothing on stdout, stderr naming the problem and showing
 *              the usage.
 *   help       --help: exit 0, the usage on stdout, nothing on stderr.
 */
#include "clijson.h"

#include <poll.h>
#include <sched.h>

static const char *cli;

/* ------------------------------------------------------------ running the CLI */

struct run {
	char *out, *err;
	size_t nout, nerr;
	int status; /* exit status, or 128 + signal */
};

/* Append what fd has to *buf; 0 at its end. */
static int drain(int fd, char **buf, size_t *n, size_t *cap)
{
	if (*cap - *n < 4096)
		*buf = grow(*buf, *cap = *cap ? 2 * *cap : 1 << 16);
	ssize_t k = read(fd, *buf + *n, *cap - *n - 1);
	if (k < 0 && errno != EINTR)
		FAIL("read: %s", strerror(errno));
	if (k > 0)
		*n += (size_t)k;
	(*buf)[*n] = 0;
	return k != 0;
}

/* pageleap topo --measure ARGS...: its stdout, stderr and exit status, each kept apart. */
static struct run topo_measure(const char *const *args)
{
	char *argv[32] = { "pageleap", "topo", "--measure" }, line[512];
	int n = 3, len = snprintf(line, sizeof(line), "%s topo --measure", cli);
	for (; *args && n < 31; args++) {
		argv[n++] = (char *)*args;
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %s", *args);
	}
	argv[n] = NULL;
	say("running %s", line);
	int o[2], e[2], st;
	if (pipe(o) || pipe(e))
		FAIL("pipe: %s", strerror(errno));
	fflush(NULL); /* or the child would print our buffered output again */
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		close(o[0]), close(o[1]), close(e[0]), close(e[1]);
		execv(cli, argv);
		fprintf(stderr, "%s: exec %s: %s\n", t_name, cli, strerror(errno));
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	struct run r = { 0 };
	size_t cout = 0, cerr = 0;
	struct pollfd p[2] = { { .fd = o[0], .events = POLLIN }, { .fd = e[0], .events = POLLIN } };
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			FAIL("poll: %s", strerror(errno));
		}
		if (p[0].revents && !drain(o[0], &r.out, &r.nout, &cout))
			p[0].fd = -1;
		if (p[1].revents && !drain(e[0], &r.err, &r.nerr, &cerr))
			p[1].fd = -1;
	}
	close(o[0]);
	close(e[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			FAIL("waitpid: %s", strerror(errno));
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (!r.out)
		r.out = grow(NULL, 1), r.out[0] = 0;
	if (!r.err)
		r.err = grow(NULL, 1), r.err[0] = 0;
	return r;
}

/* ------------------------------------------------------------ small helpers */

static int affinity[CPU_SETSIZE], naffinity; /* the CPUs we (and the CLI) may run on */

static int allowed(int cpu)
{
	for (int i = 0; i < naffinity; i++)
		if (affinity[i] == cpu)
			return 1;
	return 0;
}

/* Whether the array a of numbers holds exactly the ints want[0..n), in order. */
static int ints_are(const struct jv *a, const int *want, int n)
{
	if (!a || a->t != J_ARR || a->n != (size_t)n)
		return 0;
	for (int i = 0; i < n; i++)
		if (a->v[i].t != J_NUM || a->v[i].num != want[i])
			return 0;
	return 1;
}

/* An array of numbers, each a whole number in [lo, hi]; returns its length (0 if bad). */
static size_t int_list(const struct jv *a, const char *where, double lo, double hi)
{
	if (!a || a->t != J_ARR) {
		BAD("%s: want array, found %s", where, a ? jt_name[a->t] : "nothing");
		return 0;
	}
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].t != J_NUM || a->v[i].num != (double)(long long)a->v[i].num ||
		    a->v[i].num < lo || a->v[i].num > hi) {
			BAD("%s[%zu]: want a whole number in %g..%g, found %s %g", where, i, lo, hi,
			    jt_name[a->v[i].t], num(&a->v[i]));
			return 0;
		}
	return a->n;
}

/* A sample {median, min, max, samples}: 0 < min <= median <= max, samples in lo..hi. */
static void sample(const struct jv *s, const char *where, unsigned lo, unsigned hi)
{
	shape(s, where, "median:n min:n max:n samples:n");
	double med = num(get(s, "median")), mn = num(get(s, "min")), mx = num(get(s, "max"));
	double n = num(get(s, "samples"));
	if (!(mn > 0 && mn <= med && med <= mx))
		BAD("%s: want 0 < min <= median <= max, found min %g, median %g, max %g", where, mn,
		    med, mx);
	if (!(n >= lo && n <= hi))
		BAD("%s.samples: %g, want %u..%u", where, n, lo, hi);
}

/* a and b agree to rel (numbers printed with 6 significant digits). */
static int close_to(double a, double b, double rel)
{
	double d = a > b ? a - b : b - a, m = a > 0 ? a : -a;
	return d <= rel * m + 1e-12;
}

static int cmp_num(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ the report */

#define ROUNDS 3
#define LABEL_MB 16
#define CHUNK_MB 2

/* What the checks below learn from the report, for the later ones. */
struct seen {
	int cnode[256], ncnode; /* sysfs nodes with CPUs */
	int mnode[256], nmnode; /* sysfs nodes with memory */
	int cpu[CPU_SETSIZE], cl[CPU_SETSIZE], ncpu; /* probed CPUs and their domain */
	int K, M;
	size_t nchunk;
	int *near; /* per chunk */
};

/* "sysfs": {"nodes": [{node, cpus, has_memory, mem_total, mem_free, nearest_cpu_node,
 * distances}]}: the nodes with CPUs and with memory. */
static void check_sysfs(const struct jv *sys, struct seen *s)
{
	shape(sys, "sysfs", "nodes:a");
	const struct jv *nodes = typed(sys, "nodes", J_ARR);
	if (nodes && !nodes->n)
		BAD("sysfs.nodes: empty");
	for (size_t i = 0; nodes && i < nodes->n; i++) {
		const struct jv *nd = &nodes->v[i];
		char w[64];
		snprintf(w, sizeof(w), "sysfs.nodes[%zu]", i);
		shape(nd, w, "node:n cpus:N has_memory:b mem_total:n mem_free:n nearest_cpu_node:n "
			     "distances:N");
		int id = (int)num(get(nd, "node"));
		if (i && id <= (int)num(get(&nodes->v[i - 1], "node")))
			BAD("%s.node: %d, not above the node before", w, id);
		const struct jv *cpus = typed(nd, "cpus", J_ARR), *hm = typed(nd, "has_memory", J_BOOL);
		if (cpus && cpus->n && s->ncnode < 256)
			s->cnode[s->ncnode++] = id;
		if (hm && hm->b && s->nmnode < 256)
			s->mnode[s->nmnode++] = id;
	}
	if (!s->nmnode)
		BAD("sysfs.nodes: none with memory");
}

/* The sysfs node whose CPU list holds cpu, or -1. */
static int node_of(const struct jv *sys, int cpu)
{
	const struct jv *nodes = typed(sys, "nodes", J_ARR);
	for (size_t i = 0; nodes && i < nodes->n; i++) {
		const struct jv *cpus = typed(&nodes->v[i], "cpus", J_ARR);
		for (size_t j = 0; cpus && j < cpus->n; j++)
			if (cpus->v[j].t == J_NUM && cpus->v[j].num == cpu)
				return (int)num(get(&nodes->v[i], "node"));
	}
	return -1;
}

/* "latency" / "bandwidth": {"cpu_nodes", "mem_nodes", unit: [[sample or null]]}. A cell is
 * measured exactly where its CPU node has a CPU the CLI may run on. */
static void check_nodes(const struct jv *o, const struct jv *sys, const struct seen *s,
			const char *what, const char *unit)
{
	if (!o || o->t != J_OBJ) {
		BAD("%s: want object (measured), found %s", what, o ? jt_name[o->t] : "no such key");
		return;
	}
	char spec[64];
	snprintf(spec, sizeof(spec), "cpu_nodes:N mem_nodes:N %s:a", unit);
	shape(o, what, spec);
	if (!ints_are(get(o, "cpu_nodes"), s->cnode, s->ncnode))
		BAD("%s.cpu_nodes: not the %d sysfs node(s) with CPUs", what, s->ncnode);
	if (!ints_are(get(o, "mem_nodes"), s->mnode, s->nmnode))
		BAD("%s.mem_nodes: not the %d sysfs node(s) with memory", what, s->nmnode);
	const struct jv *rows = typed(o, unit, J_ARR);
	if (rows && rows->n != (size_t)s->ncnode)
		BAD("%s.%s: %zu rows, want %d (nodes with CPUs)", what, unit, rows->n, s->ncnode);
	int measured = 0;
	for (size_t i = 0; rows && i < rows->n && i < (size_t)s->ncnode; i++) {
		const struct jv *row = &rows->v[i];
		if (row->t != J_ARR || row->n != (size_t)s->nmnode) {
			BAD("%s.%s[%zu]: want an array of %d cells, found %s of %zu", what, unit, i,
			    s->nmnode, jt_name[row->t], row->n);
			continue;
		}
		int runs_here = 0; /* node s->cnode[i] has a CPU we may run on */
		for (int c = 0; c < naffinity; c++)
			runs_here |= node_of(sys, affinity[c]) == s->cnode[i];
		for (size_t j = 0; j < row->n; j++) {
			char w[96];
			snprintf(w, sizeof(w), "%s.%s[%zu][%zu] (node %d -> %d)", what, unit, i, j,
				 s->cnode[i], s->mnode[j]);
			if (row->v[j].t == J_NULL) {
				if (runs_here)
					BAD("%s: null, but node %d has CPUs we may run on", w, s->cnode[i]);
				continue;
			}
			if (!runs_here)
				BAD("%s: measured, but node %d has no CPU we may run on", w, s->cnode[i]);
			sample(&row->v[j], w, ROUNDS, ROUNDS);
			measured++;
		}
	}
	if (rows && !measured)
		BAD("%s: no cell measured, yet the report is not null", what);
}

/* "c2c": {"cpus", "clusters", "ns": [[sample or null]]}: over exactly the CPUs we may run
 * on (with more than 64, the default --max-cpus, 64 of them), symmetric, no diagonal. */
static void check_c2c(const struct jv *o, struct seen *s)
{
	if (!o || o->t != J_OBJ) {
		BAD("c2c: want object (measured), found %s", o ? jt_name[o->t] : "no such key");
		return;
	}
	shape(o, "c2c", "cpus:N clusters:N ns:a");
	const struct jv *cpus = get(o, "cpus"), *cl = get(o, "clusters"), *ns = typed(o, "ns", J_ARR);
	size_t n = int_list(cpus, "c2c.cpus", 0, CPU_SETSIZE - 1);
	if (naffinity <= 64 && !ints_are(cpus, affinity, naffinity))
		BAD("c2c.cpus: %zu CPUs, want the %d we may run on, ascending", n, naffinity);
	if (naffinity > 64 && n != 64)
		BAD("c2c.cpus: %zu CPUs, want 64 (the default --max-cpus) of the %d we may run on", n,
		    naffinity);
	for (size_t i = 0; i < n; i++) {
		if (!allowed((int)cpus->v[i].num))
			BAD("c2c.cpus[%zu]: CPU %g, not one we may run on", i, cpus->v[i].num);
		if (i && cpus->v[i].num <= cpus->v[i - 1].num)
			BAD("c2c.cpus: not ascending at %zu", i);
	}
	if (int_list(cl, "c2c.clusters", 0, 4095) != n || !n) {
		BAD("c2c.clusters: %zu entries for %zu CPUs", cl && cl->t == J_ARR ? cl->n : 0, n);
		return;
	}
	s->ncpu = (int)n;
	for (size_t i = 0; i < n; i++) {
		s->cpu[i] = (int)cpus->v[i].num;
		s->cl[i] = (int)cl->v[i].num;
		s->K = s->cl[i] + 1 > s->K ? s->cl[i] + 1 : s->K;
	}
	for (int k = 0; k < s->K; k++) {
		int used = 0;
		for (size_t i = 0; i < n; i++)
			used |= s->cl[i] == k;
		if (!used)
			BAD("c2c.clusters: coherence domain %d has no CPU (domains 0..%d)", k, s->K - 1);
	}
	if (!ns || ns->n != n) {
		BAD("c2c.ns: want %zu rows, found %zu", n, ns ? ns->n : 0);
		return;
	}
	int nulls = 0;
	for (size_t i = 0; i < n; i++) {
		const struct jv *row = &ns->v[i];
		if (row->t != J_ARR || row->n != n) {
			BAD("c2c.ns[%zu]: want an array of %zu cells", i, n);
			return;
		}
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			const struct jv *c = &ns->v[i].v[j], *t = &ns->v[j].v[i];
			char w[96];
			snprintf(w, sizeof(w), "c2c.ns[%zu][%zu] (CPU %d -> %d)", i, j, s->cpu[i],
				 s->cpu[j]);
			if (i == j) {
				if (c->t != J_NULL)
					BAD("%s: a CPU with itself, want null, found %s", w, jt_name[c->t]);
				continue;
			}
			/* a pair whose other CPU was never scheduled in time has no sample */
			nulls += c->t == J_NULL;
			if (c->t != J_NULL)
				sample(c, w, 1, ROUNDS);
			/* one round trip measures both ways: (i, j) is (j, i) */
			if (c->t != t->t || (c->t == J_OBJ &&
					     (num(get(c, "median")) != num(get(t, "median")) ||
					      num(get(c, "min")) != num(get(t, "min")) ||
					      num(get(c, "max")) != num(get(t, "max")))))
				BAD("%s: not the same as [%zu][%zu]", w, j, i);
		}
	if (nulls)
		say("note: %d of %zu core-to-core cells unmeasured (a CPU not scheduled in time)",
		    nulls, n * (n - 1));
}

/* "memory": {"mem_nodes", "chunks_per_node", "mem_clusters": [{chunks, ns_from}],
 * "chunks": [{node, mem_cluster, near_cluster, ns_from}]}: LABEL_MB per memory node in
 * chunks of 2 MiB, grouped by node; the counts and medians agree with the chunks. Returns
 * whether one node's chunks fall in two memory domains (hidden NUMA). */
static int check_memory(const struct jv *o, struct seen *s)
{
	if (!o || o->t != J_OBJ) {
		BAD("memory: want object (measured), found %s", o ? jt_name[o->t] : "no such key");
		return 0;
	}
	shape(o, "memory", "mem_nodes:N chunks_per_node:a mem_clusters:a chunks:a");
	if (!ints_are(get(o, "mem_nodes"), s->mnode, s->nmnode))
		BAD("memory.mem_nodes: not the %d sysfs node(s) with memory", s->nmnode);
	const struct jv *mcs = typed(o, "mem_clusters", J_ARR), *ch = typed(o, "chunks", J_ARR);
	const struct jv *pn = typed(o, "chunks_per_node", J_ARR);
	size_t per = LABEL_MB / CHUNK_MB, want = per * (size_t)s->nmnode;
	if (!mcs || !ch || !pn)
		return 0;
	s->M = (int)mcs->n;
	if (!s->M)
		BAD("memory.mem_clusters: empty");
	if (ch->n != want)
		BAD("memory.chunks: %zu, want %zu (%d MiB in 2 MiB chunks on each of %d memory nodes)",
		    ch->n, want, LABEL_MB, s->nmnode);
	s->nchunk = ch->n;
	s->near = grow(NULL, (ch->n + 1) * sizeof(int));
	/* counts from the chunks: [node index][memory domain], and per domain */
	size_t *count = grow(NULL, ((size_t)s->nmnode + 1) * ((size_t)s->M + 1) * sizeof(size_t));
	memset(count, 0, ((size_t)s->nmnode + 1) * ((size_t)s->M + 1) * sizeof(size_t));
	int *node_mc = grow(NULL, ((size_t)s->nmnode + 1) * sizeof(int)), hidden = 0;
	for (int j = 0; j < s->nmnode; j++)
		node_mc[j] = -1;
	for (size_t i = 0; i < ch->n; i++) {
		const struct jv *c = &ch->v[i];
		char w[64];
		snprintf(w, sizeof(w), "memory.chunks[%zu]", i);
		shape(c, w, "node:n mem_cluster:n near_cluster:n ns_from:N");
		int node = (int)num(get(c, "node")), mc = (int)num(get(c, "mem_cluster"));
		int near = (int)num(get(c, "near_cluster"));
		s->near[i] = near;
		/* LABEL_MB of each memory node in turn, in node order */
		if (i / per < (size_t)s->nmnode && node != s->mnode[i / per])
			BAD("%s.node: %d, want %d (%zu chunks per memory node, in order)", w, node,
			    s->mnode[i / per], per);
		if (mc < 0 || mc >= s->M)
			BAD("%s.mem_cluster: %d, want 0..%d", w, mc, s->M - 1);
		if (near < -1 || near >= s->K)
			BAD("%s.near_cluster: %d, want -1..%d", w, near, s->K - 1);
		const struct jv *from = typed(c, "ns_from", J_ARR);
		if (from && from->n != (size_t)s->K)
			BAD("%s.ns_from: %zu entries, want %d (one per coherence domain)", w, from->n, s->K);
		for (size_t k = 0; from && k < from->n; k++)
			if (!(num(&from->v[k]) > 0))
				BAD("%s.ns_from[%zu]: %g, want > 0", w, k, num(&from->v[k]));
		int j = 0;
		while (j < s->nmnode && s->mnode[j] != node)
			j++;
		if (j < s->nmnode && mc >= 0 && mc < s->M) {
			count[(size_t)j * (size_t)s->M + (size_t)mc]++;
			count[(size_t)s->nmnode * (size_t)s->M + (size_t)mc]++;
			hidden |= node_mc[j] >= 0 && node_mc[j] != mc;
			node_mc[j] = mc;
		}
	}
	/* chunks_per_node[node index][memory domain] */
	if (pn->n != (size_t)s->nmnode)
		BAD("memory.chunks_per_node: %zu rows, want %d", pn->n, s->nmnode);
	for (size_t j = 0; j < pn->n && j < (size_t)s->nmnode; j++) {
		char w[64];
		snprintf(w, sizeof(w), "memory.chunks_per_node[%zu]", j);
		if (int_list(&pn->v[j], w, 0, 1e12) != (size_t)s->M) {
			BAD("%s: want %d counts (one per memory domain)", w, s->M);
			continue;
		}
		for (int mc = 0; mc < s->M; mc++)
			if (pn->v[j].v[mc].num != (double)count[j * (size_t)s->M + (size_t)mc])
				BAD("%s[%d]: %g, the chunks say %zu", w, mc, pn->v[j].v[mc].num,
				    count[j * (size_t)s->M + (size_t)mc]);
	}
	/* each memory domain: its chunks (at least one), and the median of their latency
	 * from each coherence domain */
	double *lat = grow(NULL, (ch->n + 1) * sizeof(double));
	for (int mc = 0; mc < s->M; mc++) {
		const struct jv *d = &mcs->v[mc];
		char w[64];
		snprintf(w, sizeof(w), "memory.mem_clusters[%d]", mc);
		shape(d, w, "chunks:1 ns_from:a");
		size_t n = count[(size_t)s->nmnode * (size_t)s->M + (size_t)mc];
		if (num(get(d, "chunks")) != (double)n)
			BAD("%s.chunks: %g, the chunks say %zu", w, num(get(d, "chunks")), n);
		const struct jv *from = typed(d, "ns_from", J_ARR);
		if (from && from->n != (size_t)s->K)
			BAD("%s.ns_from: %zu entries, want %d", w, from->n, s->K);
		for (size_t k = 0; from && k < from->n && k < (size_t)s->K; k++) {
			size_t c = 0;
			for (size_t i = 0; i < ch->n; i++) {
				const struct jv *f = typed(&ch->v[i], "ns_from", J_ARR);
				if (num(get(&ch->v[i], "mem_cluster")) == mc && f && k < f->n &&
				    f->v[k].t == J_NUM)
					lat[c++] = f->v[k].num;
			}
			qsort(lat, c, sizeof(*lat), cmp_num);
			double med = !c ? -1 : c % 2 ? lat[c / 2] : (lat[c / 2 - 1] + lat[c / 2]) / 2;
			if (from->v[k].t != J_NUM || !close_to(from->v[k].num, med, 1e-5))
				BAD("%s.ns_from[%zu]: %s %g, the median of its %zu chunks is %g", w, k,
				    jt_name[from->v[k].t], num(&from->v[k]), c, med);
		}
	}
	free(lat);
	free(count);
	free(node_mc);
	return hidden;
}

/* "vnodes" (--keep): one per coherence domain, [{vnode, cpus, chunks, near}]. */
static void check_vnodes(const struct jv *vn, const struct seen *s)
{
	if (!vn || vn->t != J_ARR) {
		BAD("vnodes: want array (--keep), found %s", vn ? jt_name[vn->t] : "no such key");
		return;
	}
	if (vn->n != (size_t)s->K)
		BAD("vnodes: %zu, want %d (one per coherence domain)", vn->n, s->K);
	int equal = 0; /* chunks equally near every domain: every virtual node offers them */
	for (size_t i = 0; i < s->nchunk; i++)
		equal += s->near[i] < 0;
	int *seen = grow(NULL, ((size_t)s->ncpu + 1) * sizeof(int));
	memset(seen, 0, ((size_t)s->ncpu + 1) * sizeof(int));
	for (size_t v = 0; v < vn->n; v++) {
		const struct jv *o = &vn->v[v];
		char w[64];
		snprintf(w, sizeof(w), "vnodes[%zu]", v);
		shape(o, w, "vnode:n cpus:N chunks:n near:n");
		if (num(get(o, "vnode")) != (double)v)
			BAD("%s.vnode: %g, want %zu", w, num(get(o, "vnode")), v);
		/* its CPUs: the probed CPUs of its domain, in the order probed */
		int want[CPU_SETSIZE], nw = 0;
		for (int i = 0; i < s->ncpu; i++)
			if (s->cl[i] == (int)v)
				want[nw++] = s->cpu[i];
		const struct jv *cpus = typed(o, "cpus", J_ARR);
		if (!ints_are(cpus, want, nw))
			BAD("%s.cpus: %zu CPUs, not the %d probed CPUs of coherence domain %zu", w,
			    cpus ? cpus->n : 0, nw, v);
		for (size_t i = 0; cpus && i < cpus->n; i++) {
			int k = 0;
			while (k < s->ncpu && s->cpu[k] != cpus->v[i].num)
				k++;
			if (k == s->ncpu)
				BAD("%s.cpus[%zu]: CPU %g was not probed", w, i, cpus->v[i].num);
			else if (seen[k]++)
				BAD("%s.cpus[%zu]: CPU %d is in another virtual node too", w, i, s->cpu[k]);
		}
		int near = 0;
		for (size_t i = 0; i < s->nchunk; i++)
			near += s->near[i] == (int)v;
		if (num(get(o, "near")) != near)
			BAD("%s.near: %g, the chunks say %d are near domain %zu", w, num(get(o, "near")),
			    near, v);
		if (num(get(o, "chunks")) != near + equal)
			BAD("%s.chunks: %g, want %d (%d near it + %d equally near all)", w,
			    num(get(o, "chunks")), near + equal, near, equal);
	}
	for (int k = 0; k < s->ncpu; k++)
		if (!seen[k])
			BAD("vnodes: probed CPU %d is in no virtual node", s->cpu[k]);
	free(seen);
}

/* "targets": the four time targets, always all four, in this order. */
static void check_targets(const struct jv *tg, const struct jv *dom, const struct jv *sec,
			  const struct seen *s, int emulated)
{
	static const struct {
		const char *name, *unit;
		double target; /* -1: not judged (null) */
	} want[] = {
		{ "c2c_partition", "s", 5 },
		{ "memory_labelling", "s/GiB", 1 },
		{ "affinity_monitor", "% of one CPU", 0.1 },
		{ "affinity_reprobe", "% of one CPU", -1 },
	};
	const size_t N = sizeof(want) / sizeof(*want);
	if (!tg || tg->t != J_ARR) {
		BAD("targets: want array, found %s", tg ? jt_name[tg->t] : "no such key");
		return;
	}
	if (tg->n != N)
		BAD("targets: %zu entries, want %zu", tg->n, N);
	for (size_t i = 0; i < tg->n && i < N; i++) {
		const struct jv *t = &tg->v[i];
		char w[64];
		snprintf(w, sizeof(w), "targets[%zu] (%s)", i, want[i].name);
		shape(t, w, "name:s value:n? unit:s target:n? met:b? note:s");
		if (strcmp(str(get(t, "name")), want[i].name))
			BAD("%s.name: \"%s\"", w, str(get(t, "name")));
		if (strcmp(str(get(t, "unit")), want[i].unit))
			BAD("%s.unit: \"%s\", want \"%s\"", w, str(get(t, "unit")), want[i].unit);
		const struct jv *val = typed(t, "value", J_NUM), *tgt = typed(t, "target", J_NUM);
		const struct jv *met = typed(t, "met", J_BOOL);
		const char *note = str(get(t, "note"));
		if (want[i].target < 0 ? tgt != NULL : !tgt || tgt->num != want[i].target)
			BAD("%s.target: %g, want %s", w, num(get(t, "target")),
			    want[i].target < 0 ? "null (not judged)" : "the documented target");
		/* a value exactly where its input was measured */
		int measurable = i == 0 ? num(get(dom, "cpus")) >= 2
				 : i == 1 ? num(get(dom, "chunks")) > 0
				 : i == 2 ? 1 /* the monitor always runs */
					  : s->ncpu >= 2 && s->K > 0;
		if (!!val != measurable)
			BAD("%s.value: %s, want %s (note: %s)", w, val ? "a number" : "null",
			    measurable ? "a number" : "null", note);
		if (val && !(val->num >= 0))
			BAD("%s.value: %g, want >= 0", w, val->num);
		if (!val && strncmp(note, "cannot be judged", 16) && strncmp(note, "not made", 8))
			BAD("%s.note: \"%s\", want why there is no value", w, note);
		/* judged where there are both; the printed value may round onto the target */
		if (val && tgt) {
			if (!met)
				BAD("%s.met: null with a value and a target", w);
			else if (met->b != (val->num <= tgt->num) && val->num != tgt->num)
				BAD("%s.met: %s, but value %g vs target %g", w, met->b ? "true" : "false",
				    val->num, tgt->num);
		} else if (met) {
			BAD("%s.met: %s without a value and a target", w, met->b ? "true" : "false");
		}
		if (!*note)
			BAD("%s.note: empty", w);
		static const char emu[] = "; QEMU emulation: relative, not hardware timings";
		size_t nl = strlen(note), el = sizeof(emu) - 1;
		if (emulated != (nl >= el && !strcmp(note + nl - el, emu)))
			BAD("%s.note: \"%s\": the QEMU remark %s, emulated is %s", w, note,
			    emulated ? "missing" : "there", emulated ? "true" : "false");
	}
	/* memory_labelling is the memory time per GiB labelled */
	const struct jv *lab = tg->n > 1 ? typed(&tg->v[1], "value", J_NUM) : NULL;
	double gib = num(get(dom, "chunks")) * CHUNK_MB / 1024;
	if (lab && gib > 0 && !close_to(lab->num, num(get(sec, "memory")) / gib, 1e-4))
		BAD("targets[1] (memory_labelling).value: %g s/GiB, but %g s for %g GiB", lab->num,
		    num(get(sec, "memory")), gib);
}

/* The whole report of a run with ROUNDS, LABEL_MB, --latency-mb 16 --bandwidth-mb 16. */
static void check_report(const struct jv *root, int keep)
{
	struct seen s = { 0 };
	if (root->t != J_OBJ)
		FAIL("report: want an object, found %s", jt_name[root->t]);
	shape(root, "report",
	      "emulated:b options:o sysfs:o latency:o bandwidth:o c2c:o memory:o domains:o "
	      "seconds:o verdict:s hidden:b targets:a");
	const struct jv *emu = typed(root, "emulated", J_BOOL);

	/* the options as given; 0 is the library's default for those not given */
	const struct jv *opt = typed(root, "options", J_OBJ);
	shape(opt, "options", "what:a keep:b rounds:n latency_bytes:n bandwidth_bytes:n "
			      "label_bytes:n c2c_trips:n max_cpus:n");
	static const char *const parts[] = { "latency", "bandwidth", "c2c", "memory" };
	const struct jv *what = typed(opt, "what", J_ARR), *kp = typed(opt, "keep", J_BOOL);
	for (size_t i = 0; what && i < 4; i++)
		if (what->n != 4 || strcmp(str(&what->v[i]), parts[i])) {
			BAD("options.what: want [latency, bandwidth, c2c, memory] (the default all)");
			break;
		}
	if (kp && kp->b != keep)
		BAD("options.keep: %s, want %s", kp->b ? "true" : "false", keep ? "true" : "false");
	if (opt && (num(get(opt, "rounds")) != ROUNDS ||
		    num(get(opt, "latency_bytes")) != 16 << 20 ||
		    num(get(opt, "bandwidth_bytes")) != 16 << 20 ||
		    num(get(opt, "label_bytes")) != LABEL_MB << 20))
		BAD("options: rounds %g, latency_bytes %g, bandwidth_bytes %g, label_bytes %g; want "
		    "%d, %d, %d, %d", num(get(opt, "rounds")), num(get(opt, "latency_bytes")),
		    num(get(opt, "bandwidth_bytes")), num(get(opt, "label_bytes")), ROUNDS, 16 << 20,
		    16 << 20, LABEL_MB << 20);

	const struct jv *sys = typed(root, "sysfs", J_OBJ);
	check_sysfs(sys, &s);
	check_nodes(get(root, "latency"), sys, &s, "latency", "ns");
	check_nodes(get(root, "bandwidth"), sys, &s, "bandwidth", "gbps");
	check_c2c(get(root, "c2c"), &s);
	int split = check_memory(get(root, "memory"), &s);

	/* the domains: what the parts above say */
	const struct jv *dom = typed(root, "domains", J_OBJ);
	shape(dom, "domains", "sysfs_nodes:1 sysfs_cpu_nodes:n cpu_clusters:1 mem_clusters:1 "
			      "cpu_confidence:n? mem_confidence:n? cpus:1 chunks:n");
	const struct jv *nodes = typed(sys, "nodes", J_ARR);
	int sysfs_nodes = (int)num(get(dom, "sysfs_nodes")), K = (int)num(get(dom, "cpu_clusters"));
	int M = (int)num(get(dom, "mem_clusters"));
	if (dom && (!nodes || sysfs_nodes != (int)nodes->n || num(get(dom, "sysfs_cpu_nodes")) != s.ncnode))
		BAD("domains: sysfs_nodes %d, sysfs_cpu_nodes %g; the sysfs block has %zu, %d with CPUs",
		    sysfs_nodes, num(get(dom, "sysfs_cpu_nodes")), nodes ? nodes->n : 0, s.ncnode);
	if (dom && (K != s.K || M != s.M || num(get(dom, "cpus")) != s.ncpu ||
		    num(get(dom, "chunks")) != (double)s.nchunk))
		BAD("domains: cpu_clusters %d, mem_clusters %d, cpus %g, chunks %g; the report's "
		    "parts say %d, %d, %d, %zu", K, M, num(get(dom, "cpus")), num(get(dom, "chunks")),
		    s.K, s.M, s.ncpu, s.nchunk);
	for (int k = 0; k < 2; k++) {
		const char *c = k ? "mem_confidence" : "cpu_confidence";
		const struct jv *v = typed(dom, c, J_NUM);
		if (v && !(v->num >= 0 && v->num <= 1))
			BAD("domains.%s: %g, want 0..1", c, v->num);
	}
	const struct jv *hid = typed(root, "hidden", J_BOOL);
	if (getenv("LEAP_UNIFORM_MEMORY")) {
		if (M != 1 || !hid || hid->b)
			BAD("LEAP_UNIFORM_MEMORY: want 1 memory domain and hidden false, found %d and %s",
			    M, hid ? (hid->b ? "true" : "false") : "no boolean");
	} else if (M < 1) {
		BAD("domains.mem_clusters: %d, want >= 1", M);
	}
	/* hidden NUMA: a sysfs node whose chunks fall in two memory domains */
	if (hid && hid->b != split)
		BAD("hidden: %s, but the chunks %s a node's memory over two memory domains",
		    hid->b ? "true" : "false", split ? "split" : "split no");

	/* the verdict's words */
	char v[256];
	const char *verdict = str(get(root, "verdict"));
	snprintf(v, sizeof(v), "sysfs shows %d node%s; measured %d CPU cluster%s and %d memory "
			       "cluster%s: ", sysfs_nodes, sysfs_nodes == 1 ? "" : "s", K,
		 K == 1 ? "" : "s", M, M == 1 ? "" : "s");
	if (strncmp(verdict, "sysfs shows ", 12) || strncmp(verdict, v, strlen(v)))
		BAD("verdict: \"%s\", want it to start \"%s\"", verdict, v);
	if (hid && !!strstr(verdict, "hidden NUMA, memory domains") != hid->b)
		BAD("verdict: \"%s\" and hidden %s disagree", verdict, hid->b ? "true" : "false");

	const struct jv *sec = typed(root, "seconds", J_OBJ);
	shape(sec, "seconds", "latency:n bandwidth:n c2c:n memory:n");
	static const char *const tk[] = { "latency", "bandwidth", "c2c", "memory" };
	for (int k = 0; sec && k < 4; k++)
		if (!(num(get(sec, tk[k])) >= 0))
			BAD("seconds.%s: %g, want >= 0", tk[k], num(get(sec, tk[k])));

	const struct jv *vn = get(root, "vnodes");
	if (keep)
		check_vnodes(vn, &s);
	else if (!vn || vn->t != J_NULL)
		BAD("vnodes: want null without --keep, found %s", vn ? jt_name[vn->t] : "no such key");

	check_targets(get(root, "targets"), dom, sec, &s, emu && emu->b);

	say("measured %d CPUs in %d coherence domain(s), %zu chunks in %d memory domain(s), "
	    "hidden %s, emulated %s; seconds: latency %g, bandwidth %g, c2c %g, memory %g; "
	    "verdict: %s", s.ncpu, K, s.nchunk, M, hid && hid->b ? "yes" : "no",
	    emu && emu->b ? "yes" : "no", num(get(sec, "latency")), num(get(sec, "bandwidth")),
	    num(get(sec, "c2c")), num(get(sec, "memory")), verdict);
	free(s.near);
}

/* The measurement, through clijson.h's run_cli(): its stderr passes through to ours, a
 * non-zero exit fails the case (with the end of its stdout). */
static void measure_case(int keep)
{
	char *const argv[] = { "pageleap", "topo", "--measure", "--json", "--latency-mb", "16",
			       "--bandwidth-mb", "16", "--label-mb", "16", "--rounds", "3",
			       keep ? "--keep" : NULL, NULL };
	say("running %s topo --measure --json --latency-mb 16 --bandwidth-mb 16 --label-mb 16 "
	    "--rounds 3%s", cli, keep ? " --keep" : "");
	size_t len;
	char *text = run_cli(cli, argv, &len);
	if (strlen(text) != len)
		FAIL("stdout holds a NUL byte");
	struct jv root;
	parse_json(text, len, &root);
	check_report(&root, keep);
	jfree(&root);
	free(text);
	if (nbad)
		FAIL("%d problem(s) in the report, listed above", nbad);
}

/* ------------------------------------------------------------ cases */

CASE(json) { measure_case(0); }

CASE(keep) { measure_case(1); }

/* Bad usage: exit 2, nothing on stdout, stderr naming the problem, and the usage. */
static void refused(const char *const *args, const char *want)
{
	struct run r = topo_measure(args);
	if (r.status != 2 || r.nout || !strstr(r.err, want) ||
	    !strstr(r.err, "usage: pageleap topo --measure"))
		BAD("exit %d, %zu bytes on stdout, stderr \"%.200s\"; want exit 2, nothing on stdout, "
		    "stderr with \"%s\" and the usage", r.status, r.nout, r.err, want);
	free(r.out);
	free(r.err);
}

CASE(bad_input)
{
#define A(...) ((const char *const[]){ __VA_ARGS__, NULL })
	refused(A("--rounds", "0x"), "pageleap: topo: --rounds wants a whole number 1..1000, not '0x'");
	refused(A("--rounds", "0"), "--rounds wants a whole number 1..1000, not '0'");
	refused(A("--rounds", "1001"), "--rounds wants a whole number 1..1000, not '1001'");
	refused(A("--json", "--rounds"), "pageleap: topo: --rounds needs a value");
	refused(A("--what", "bogus"), "pageleap: topo: --what wants a list of latency, bandwidth, "
				       "c2c, memory or all, not 'bogus'");
	refused(A("--what", "latency,bogus"), "--what wants a list of latency, bandwidth, c2c, "
					       "memory or all, not 'latency,bogus'");
	/* less than one 2 MiB chunk (the library would say -EINVAL): refused before measuring */
	refused(A("--label-mb", "1"), "pageleap: topo: --label-mb wants a whole number 2..1048576, "
				      "not '1'");
	refused(A("--latency-mb", "-1"), "--latency-mb wants a whole number 1..1048576, not '-1'");
	refused(A("--plot", "t_measure_cli.png", "--what", "bandwidth"),
		"pageleap: topo: --plot draws latency, c2c and memory: --what has none of them");
	refused(A("--json", "--bogus"), "pageleap: topo: unknown option '--bogus'");
#undef A
	if (!access("t_measure_cli.gp", F_OK))
		BAD("the refused --plot left t_measure_cli.gp behind");
	if (nbad)
		FAIL("%d bad input(s) not refused as they should be, listed above", nbad);
}

CASE(help)
{
	struct run r = topo_measure((const char *const[]){ "--help", NULL });
	if (r.status || r.nerr || strncmp(r.out, "usage: pageleap topo --measure", 30))
		FAIL("--help: exit %d, stderr \"%.100s\", stdout \"%.60s\"; want exit 0, the usage "
		     "on stdout, nothing on stderr", r.status, r.err, r.out);
	/* every option the parser takes is in it */
	static const char *const opts[] = { "--json", "--save-json", "--plot", "--what", "--rounds",
					    "--latency-mb", "--bandwidth-mb", "--label-mb", "--trips",
					    "--max-cpus", "--keep", "--force" };
	for (size_t i = 0; i < sizeof(opts) / sizeof(*opts); i++)
		if (!strstr(r.out, opts[i]))
			BAD("--help: %s is not in the usage", opts[i]);
	free(r.out);
	free(r.err);
	if (nbad)
		FAIL("%d option(s) missing from the usage", nbad);
}

int main(void)
{
	t_name = "t_measure_cli";
	static char path[PATH_MAX + 16];
	cli = find_cli(path, sizeof(path));
	cpu_set_t mine;
	if (sched_getaffinity(0, sizeof(mine), &mine))
		FAIL("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mine))
			affinity[naffinity++] = c;
	return RUN_CASES(json, keep, bad_input, help);
}
