/*
 * `pageleap bench --json` end to end: runs the CLI on a small configuration, parses its
 * stdout with the strict JSON parser of clijson.h, then checks the report. It checks the
 * shape, that every method either ran or says why not, and that the page_leap results are
 * correct (no lost writes, no pages left behind, bounded metadata) and not only fast.
 * The methods and what each is come from the report's "methods" list (name, needs_nodes,
 * caps): the checks go by capability, so a new method needs no change here.
 * Which CLI runs: see clijson.h.
 * LEAP_BENCH_JSON=FILE checks FILE instead of running the CLI. Use it to work on the schema
 * or these checks without waiting for a benchmark run.
 */
#include "clijson.h"

static int near1(double x) { return x - 1 < 1e-9 && 1 - x < 1e-9; }

static const struct jv *methods; /* report.methods */

/* The report's entry for method name, or NULL. */
static const struct jv *method(const char *name)
{
	for (size_t i = 0; methods && i < methods->n; i++)
		if (!strcmp(str(get(&methods->v[i], "name")), name))
			return &methods->v[i];
	return NULL;
}

/* Whether the method entry m lists capability cap. */
static int can(const struct jv *m, const char *cap)
{
	const struct jv *caps = typed(m, "caps", J_ARR);
	for (size_t i = 0; caps && i < caps->n; i++)
		if (caps->v[i].t == J_STR && !strcmp(caps->v[i].s, cap))
			return 1;
	return 0;
}

/* The first method with capability cap, by name ("" if none). */
static const char *with(const char *cap)
{
	for (size_t i = 0; methods && i < methods->n; i++)
		if (can(&methods->v[i], cap))
			return str(get(&methods->v[i], "name"));
	return "";
}

/* Numbers of o that must not decrease in this order (min <= median <= max, quantiles). */
static void rising(const struct jv *o, const char *where, const char *const *ks, int n)
{
	for (int i = 1; i < n; i++) {
		const struct jv *a = typed(o, ks[i - 1], J_NUM), *b = typed(o, ks[i], J_NUM);
		if (a && b && b->num < a->num)
			BAD("%s: %s is %g, below %s %g", where, ks[i], b->num, ks[i - 1], a->num);
	}
}

static void check_result(const struct jv *r, size_t i)
{
	char w[128], sub[160];
	const char *m = str(get(r, "method"));
	const struct jv *me = method(m);
	snprintf(w, sizeof(w), "results[%zu] (%s)", i, m);
	shape(r, w, "method:s page_kib:n size_mib:n writers:n status:s");
	if (!me)
		BAD("%s: method not in report.methods", w);
	const struct jv *st = typed(r, "status", J_STR);
	if (st && !*st->s)
		BAD("%s.status: empty; a method that did not run must say why", w);
	/* measurements are there when the method ran (status "ok"), and null when it did not */
	if (!st || strcmp(st->s, "ok")) {
		shape(r, w, "reps:0 seconds:0 pages_per_s:0 pages:0 pages_left:0 lost_writes:0 cpu_s:0 "
			    "vs_move_pages:0 vs_memcpy:0 metadata_bytes_per_page:0 gbps:0 stall:0");
		return;
	}
	shape(r, w, "reps:n seconds:n pages_per_s:n pages:n pages_left:n lost_writes:n cpu_s:n "
		    "vs_move_pages:n? vs_memcpy:n? metadata_bytes_per_page:n? gbps:o stall:o");
	const struct jv *g = typed(r, "gbps", J_OBJ), *s = typed(r, "stall", J_OBJ);
	snprintf(sub, sizeof(sub), "%s.gbps", w);
	shape(g, sub, "min:n median:n max:n");
	rising(g, sub, (const char *const[]){ "min", "median", "max" }, 3);
	/* zero only where nothing moved: a method that waits on the kernel (automatic
	 * balancing) may move nothing before its timeout, in a loaded emulated guest; then
	 * every page must be reported left */
	double med = g ? num(get(g, "median")) : 0;
	if (g && !(med > 0) &&
	    !(can(me, "may_time_out") && med == 0 && num(get(r, "pages_left")) == num(get(r, "pages"))))
		BAD("%s.median: want > 0 (or 0 with every page left, may_time_out only), found %g", sub,
		    med);
	snprintf(sub, sizeof(sub), "%s.stall", w);
	shape(s, sub, "count:n p50_us:n p90_us:n p99_us:n p999_us:n max_us:n");
	rising(s, sub, (const char *const[]){ "p50_us", "p90_us", "p99_us", "p999_us", "max_us" }, 5);
	/* correctness, not only speed: a fast move that loses a write or leaves pages is a bug */
	double lost = num(get(r, "lost_writes")), left = num(get(r, "pages_left"));
	const struct jv *meta = typed(r, "metadata_bytes_per_page", J_NUM);
	if (can(me, "page_leap") && (lost || left || !meta || meta->num >= 8))
		BAD("%s: want lost_writes 0, pages_left 0, metadata_bytes_per_page < 8; found %g, %g, %s",
		    w, lost, left, meta ? "a number" : "no number");
	if (can(me, "keeps_writes") && lost)
		BAD("%s: lost_writes %g, want 0", w, lost);
	/* the baselines compare with themselves */
	if (can(me, "baseline_memcpy") && !near1(num(get(r, "vs_memcpy"))))
		BAD("%s: vs_memcpy %g, want 1", w, num(get(r, "vs_memcpy")));
	if (can(me, "baseline_move_pages") && !near1(num(get(r, "vs_move_pages"))))
		BAD("%s: vs_move_pages %g, want 1", w, num(get(r, "vs_move_pages")));
}

/* The first result for method m with 4 KiB pages, 16 MiB and wr writers. */
static const struct jv *find(const struct jv *res, const char *m, int wr)
{
	for (size_t i = 0; res && i < res->n; i++) {
		const struct jv *r = &res->v[i];
		if (!strcmp(str(get(r, "method")), m) && num(get(r, "page_kib")) == 4 &&
		    num(get(r, "size_mib")) == 16 && num(get(r, "writers")) == wr)
			return r;
	}
	return NULL;
}
/* That result must be there, with this status unless status is NULL. */
static void need(const struct jv *res, const char *m, int wr, const char *status)
{
	const struct jv *r = find(res, m, wr);
	if (!r)
		BAD("no result for %s with 4 KiB pages, 16 MiB, %d writer(s)", m, wr);
	else if (status && strcmp(str(get(r, "status")), status))
		BAD("%s (4 KiB pages, 16 MiB, %d writer(s)): status \"%s\", want \"%s\"", m, wr,
		    str(get(r, "status")), status);
}

/* pageleap bench --json on a small configuration. */
static char *run_bench(const char *cli, size_t *len)
{
	/* no warm-up: the shape is checked, not the speed, and the guests' kernel methods
	 * (move_pages one page per call under emulation) took minutes warming up */
	char *const argv[] = { "pageleap", "bench", "--json", "--sizes", "16", "--reps", "1",
			       "--warmup", "0", "--writers", "0,1", "--autonuma-timeout", "5",
			       NULL };
	say("running %s bench --json --sizes 16 --reps 1 --warmup 0 --writers 0,1 "
	    "--autonuma-timeout 5", cli);
	return run_cli(cli, argv, len);
}

int main(void)
{
	t_name = "t_bench";
	const char *file = getenv("LEAP_BENCH_JSON");
	char path[PATH_MAX + 16], *text;
	if (file && *file) {
		int fd = open(file, O_RDONLY);
		if (fd < 0)
			FAIL("LEAP_BENCH_JSON=%s: %s", file, strerror(errno));
		say("checking %s instead of running the CLI (LEAP_BENCH_JSON)", file);
		text = slurp(fd, &jn);
		close(fd);
	} else {
		text = run_bench(find_cli(path, sizeof(path)), &jn);
	}
	struct jv root;
	parse_json(text, jn, &root);

	if (root.t != J_OBJ)
		FAIL("report: want an object, found %s", jt_name[root.t]);
	shape(&root, "report", "tool:s version:s machine:o config:o methods:a results:a targets:a");
	const struct jv *tool = typed(&root, "tool", J_STR), *mach = typed(&root, "machine", J_OBJ);
	const struct jv *res = typed(&root, "results", J_ARR), *tg = typed(&root, "targets", J_ARR);
	if (tool && strcmp(tool->s, "pageleap bench"))
		BAD("report.tool: \"%s\", want \"pageleap bench\"", tool->s);
	shape(mach, "machine", "kernel:s nodes:1 memory_nodes:1 cpus:1 emulated:b");
	shape(typed(&root, "config", J_OBJ), "config",
	      "quick:b from:n to:n reps:n warmup:n sizes_mib:N writers:N page_kib:N");
	methods = typed(&root, "methods", J_ARR);
	if (methods && !methods->n)
		BAD("report.methods: empty");
	for (size_t i = 0; methods && i < methods->n; i++) {
		char w[32];
		snprintf(w, sizeof(w), "methods[%zu]", i);
		shape(&methods->v[i], w, "name:s what:s needs_nodes:1 caps:a writers:b");
	}
	/* what the checks below stand on: the run's default methods include each of these */
	static const char *const need_caps[] = { "page_leap", "baseline_move_pages",
						 "baseline_memcpy", "keeps_writes" };
	for (size_t k = 0; k < sizeof(need_caps) / sizeof(*need_caps); k++)
		if (!*with(need_caps[k]))
			BAD("report.methods: no method with capability %s", need_caps[k]);
	if (res && !res->n)
		BAD("report.results: empty");
	for (size_t i = 0; res && i < res->n; i++)
		check_result(&res->v[i], i);
	int met = 0;
	for (size_t i = 0; tg && i < tg->n; i++) {
		char w[32];
		snprintf(w, sizeof(w), "targets[%zu]", i);
		shape(&tg->v[i], w, "name:s goal:s measured:n? met:b? note:s");
		met += typed(&tg->v[i], "met", J_BOOL) && typed(&tg->v[i], "met", J_BOOL)->b;
	}

	/* every method is there, and ran where it can: memory_nodes against needs_nodes
	 * decides what "can" means; a method that needs CPUs on the target or switches
	 * numa_balancing also needs the machine's and kernel's leave, so it may say why not */
	int memnodes = (int)num(get(mach, "memory_nodes"));
	for (size_t k = 0; methods && k < methods->n; k++) {
		const struct jv *me = &methods->v[k];
		const char *name = str(get(me, "name"));
		int nodes = (int)num(get(me, "needs_nodes"));
		need(res, name, 0, memnodes < nodes ? "needs 2 nodes"
				   : can(me, "target_cpus") || can(me, "balancing") ? NULL
										       : "ok");
		/* page_leap on 2 nodes has its ratio to move_pages */
		const struct jv *r = find(res, name, 0);
		if (can(me, "page_leap") && memnodes >= 2 && r && !typed(r, "vs_move_pages", J_NUM))
			BAD("%s (4 KiB pages, 16 MiB, 0 writers): vs_move_pages is not a number", name);
		/* moving memory that a thread is writing is what page_leap is for: the default
		 * page_leap method (the first with the capability) must run with a writer; the
		 * fixed-granularity variants may be skipped where a move would crawl (the bench
		 * skips a row by its measured seconds per move, as in the emulated guests) */
		if (can(me, "page_leap"))
			need(res, name, 1, !strcmp(name, with("page_leap")) ? "ok" : NULL);
	}
	const struct jv *pl = find(res, with("page_leap"), 0), *mc = find(res, with("baseline_memcpy"), 0);

	const struct jv *emu = typed(mach, "emulated", J_BOOL);
	say("measured %s: %d nodes, %d with memory, %d cpus; %zu methods, %zu results, %zu targets "
	    "(%d met); %s: %s", str(get(mach, "kernel")), (int)num(get(mach, "nodes")), memnodes,
	    (int)num(get(mach, "cpus")), methods ? methods->n : 0, res ? res->n : 0, tg ? tg->n : 0,
	    met, with("balancing"), str(get(find(res, with("balancing"), 0), "status")));
	say("measured %s %.2f GB/s, %s %.2f GB/s (16 MiB, emulated=%s)", with("page_leap"),
	    num(get(get(pl, "gbps"), "median")), with("baseline_memcpy"),
	    num(get(get(mc, "gbps"), "median")),
	    emu ? (emu->b ? "true" : "false") : "?");
	jfree(&root);
	free(text);
	if (nbad)
		FAIL("%d problem(s) in the report, listed above", nbad);
	return 0;
}
