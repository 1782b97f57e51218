/*
 * `pageleap ycsb --json` end to end: a small YCSB-A (zipfian) run with migration under
 * page_leap and under move_pages (and the no-migration baseline), then a small YCSB-E
 * (scans and inserts) under page_leap. For every method that ran, the report must say the
 * B+-tree's invariants held and every key had its last written value (the CLI checks the
 * whole tree against a shadow written under the leaf lock), no read missed a loaded key,
 * every scan came back ascending, and every migration finished with no page left off its
 * target. On two or more nodes move_pages must have run; on one node it must say why not.
 * Bad arguments must exit 2 with a message naming them. Which CLI runs: see clijson.h.
 * LEAP_YCSB_KEYS scales the key count.
 */
#include "clijson.h"

#include <stdbool.h>

/* Whether the report's method entry m lists capability cap. */
static bool can(const struct jv *m, const char *cap)
{
	const struct jv *caps = typed(m, "caps", J_ARR);
	for (size_t i = 0; caps && i < caps->n; i++)
		if (caps->v[i].t == J_STR && !strcmp(caps->v[i].s, cap))
			return true;
	return false;
}

static void check_method(const struct jv *m, size_t i, int cpu_nodes)
{
	char w[64];
	const char *name = str(get(m, "method"));
	snprintf(w, sizeof(w), "methods[%zu] (%s)", i, name);
	shape(m, w, "method:s needs_nodes:1 caps:a status:s ran:b");
	const struct jv *ran = typed(m, "ran", J_BOOL);
	int nodes = (int)num(get(m, "needs_nodes"));
	char want[32];
	snprintf(want, sizeof(want), "needs %d nodes", nodes);
	if (!ran || !ran->b) {
		/* only a method that needs more nodes with CPUs than there are may not run; one
		 * that migrates says so (a baseline may say what it equals instead) */
		if (!(cpu_nodes < nodes && *str(get(m, "status")) &&
		      (!can(m, "migrates") || !strcmp(str(get(m, "status")), want))))
			BAD("%s did not run: %s", w, str(get(m, "status")));
		return;
	}
	shape(m, w,
	      "migrates:b finished:b migration_start_s:n migration_end_s:n kops_before:n "
	      "kops_during:n kops_after:n p50_us_during:n p99_us_during:n pages:1 pages_moved:n "
	      "pages_left:n keys_loaded:1 keys_final:1 inserts:n inserts_refused:n missing_reads:n "
	      "bad_scans:n lost_values:n restarts:n invariants_ok:b check:s slices:a");
	if (strcmp(str(get(m, "status")), "ok"))
		BAD("%s: status \"%s\"", w, str(get(m, "status")));
	const struct jv *inv = typed(m, "invariants_ok", J_BOOL);
	if (!inv || !inv->b || strcmp(str(get(m, "check")), "ok"))
		BAD("%s: tree check failed: %s", w, str(get(m, "check")));
	static const char *const zero[] = { "lost_values", "missing_reads", "bad_scans", "pages_left",
					    "inserts_refused" };
	for (size_t k = 0; k < sizeof(zero) / sizeof(*zero); k++)
		if (num(get(m, zero[k])) != 0)
			BAD("%s: %s = %g, want 0", w, zero[k], num(get(m, zero[k])));
	if (!(num(get(m, "kops_during")) > 0) || !(num(get(m, "kops_after")) > 0))
		BAD("%s: no operations during or after the migration", w);
	const struct jv *mig = typed(m, "migrates", J_BOOL), *fin = typed(m, "finished", J_BOOL);
	if (mig && mig->b != can(m, "migrates"))
		BAD("%s: migrates is %s, its caps say otherwise", w, mig->b ? "true" : "false");
	if (!fin || !fin->b)
		BAD("%s: the migration did not finish", w);
	if (mig && mig->b) {
		double start = num(get(m, "migration_start_s")), end = num(get(m, "migration_end_s"));
		if (!(end > start))
			BAD("%s: migration ends at %g s, starts at %g s", w, end, start);
		/* page_leap moves (or on one node relocates) every page; move_pages moves the
		 * pages that are not on the target, which is all of them on the >= 2 nodes it
		 * needs to run at all */
		if (nodes <= cpu_nodes && num(get(m, "pages_moved")) < num(get(m, "pages")))
			BAD("%s: %g of %g pages moved", w, num(get(m, "pages_moved")), num(get(m, "pages")));
	}
	const struct jv *sl = typed(m, "slices", J_ARR);
	double ops = 0;
	for (size_t k = 0; sl && k < sl->n; k++) {
		const struct jv *s = &sl->v[k];
		if (s->t != J_ARR || s->n != 3 || s->v[0].t != J_NUM || s->v[1].t != J_NUM ||
		    s->v[2].t != J_NUM) {
			BAD("%s: slices[%zu] is not [t, kops, migrated]", w, k);
			break;
		}
		if (k && s->v[0].num <= sl->v[k - 1].v[0].num)
			BAD("%s: slice times do not rise at %zu", w, k);
		ops += s->v[1].num;
	}
	if (!sl || sl->n < 3 || !(ops > 0))
		BAD("%s: %zu slices with %g kops in all", w, sl ? sl->n : 0, ops);
}

static struct jv run_ycsb(const char *cli, const char *workload, const char *methods,
			  const char *keys)
{
	char *const argv[] = { "pageleap", "ycsb", "--json", "--no-progress", "--workload",
			       (char *)workload, "--dist", "zipf", "--method", (char *)methods,
			       "--keys", (char *)keys, "--warmup", "0.5", "--after", "0.5",
			       "--max-migration", "120", NULL };
	say("running %s ycsb --workload %s --method %s --keys %s --warmup 0.5 --after 0.5", cli,
	    workload, methods, keys);
	size_t len;
	char *text = run_cli(cli, argv, &len);
	struct jv root;
	parse_json(text, len, &root);
	free(text); /* the tree holds copies of the strings */
	return root;
}

static int check_report(const struct jv *root, const char *what)
{
	if (root->t != J_OBJ)
		FAIL("%s: report is not an object", what);
	shape(root, what, "machine:o config:o methods:a");
	const struct jv *mach = typed(root, "machine", J_OBJ), *ms = typed(root, "methods", J_ARR);
	shape(mach, "machine", "kernel:s nodes:1 cpu_nodes:1 cpus:1 emulated:b");
	shape(typed(root, "config", J_OBJ), "config",
	      "workload:s dist:s keys:1 partitions:1 threads_per_partition:1");
	int cpu_nodes = (int)num(get(mach, "cpu_nodes"));
	for (size_t i = 0; ms && i < ms->n; i++)
		check_method(&ms->v[i], i, cpu_nodes);
	return cpu_nodes;
}

static const struct jv *method(const struct jv *root, const char *name)
{
	const struct jv *ms = typed(root, "methods", J_ARR);
	for (size_t i = 0; ms && i < ms->n; i++)
		if (!strcmp(str(get(&ms->v[i], "method")), name))
			return &ms->v[i];
	BAD("method %s missing from the report", name);
	return NULL;
}

/* Bad usage: exit status 2 and a message naming the problem, before any work. */
static void bad_usage(const char *cli, const char *args, const char *want)
{
	char cmd[PATH_MAX + 256], out[512] = "";
	snprintf(cmd, sizeof(cmd), "%s ycsb %s 2>&1", cli, args);
	FILE *f = popen(cmd, "r");
	if (!f)
		FAIL("popen: %s", strerror(errno));
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	int st = pclose(f);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 2 || !strstr(out, want))
		BAD("pageleap ycsb %s: exit %d, output \"%.80s\"; want exit 2 and \"%s\"", args,
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1, out, want);
}

int main(void)
{
	t_name = "t_ycsb";
	char path[PATH_MAX + 16], keys[32];
	const char *cli = find_cli(path, sizeof(path));
	bad_usage(cli, "--workload x", "unknown workload 'x'");
	bad_usage(cli, "--dist zipfy", "unknown distribution");
	bad_usage(cli, "--method page_leap,nope", "unknown method 'nope'");
	bad_usage(cli, "--keys 5", "--keys wants");
	bad_usage(cli, "--threads 0", "--threads wants");
	bad_usage(cli, "--warmup -1", "--warmup wants seconds");
	bad_usage(cli, "--keys", "--keys needs a value");
	bad_usage(cli, "--bogus", "unknown option '--bogus'");
	snprintf(keys, sizeof(keys), "%d", (int)env_long("LEAP_YCSB_KEYS", 200000));

	struct jv a = run_ycsb(cli, "a", "none,move_pages,page_leap", keys);
	int cpu_nodes = check_report(&a, "YCSB-A");
	const struct jv *pl = method(&a, "page_leap"), *mp = method(&a, "move_pages");
	if (cpu_nodes >= 2 && mp && !(typed(mp, "ran", J_BOOL) && typed(mp, "ran", J_BOOL)->b))
		BAD("move_pages did not run on %d nodes with CPUs", cpu_nodes);
	if (cpu_nodes >= 2)
		say("measured YCSB-A during migration: page_leap %.0f kops/s, move_pages %.0f kops/s, "
		    "none %.0f kops/s; migration %.2f s vs %.2f s (%d nodes with CPUs)",
		    num(get(pl, "kops_during")), num(get(mp, "kops_during")),
		    num(get(method(&a, "none"), "kops_during")),
		    num(get(pl, "migration_end_s")) - num(get(pl, "migration_start_s")),
		    num(get(mp, "migration_end_s")) - num(get(mp, "migration_start_s")), cpu_nodes);
	else
		say("measured YCSB-A on one node: page_leap relocating %.0f kops/s, none %.0f kops/s",
		    num(get(pl, "kops_during")), num(get(method(&a, "none"), "kops_during")));

	/* E: scans and inserts while the tree grows and migrates */
	snprintf(keys, sizeof(keys), "%d", (int)env_long("LEAP_YCSB_KEYS", 200000) / 2);
	struct jv e = run_ycsb(cli, "e", "page_leap", keys);
	check_report(&e, "YCSB-E");
	const struct jv *ple = method(&e, "page_leap");
	if (ple && !(num(get(ple, "inserts")) > 0))
		BAD("YCSB-E: page_leap run made no inserts");
	if (ple && num(get(ple, "keys_final")) != num(get(ple, "keys_loaded")) + num(get(ple, "inserts")))
		BAD("YCSB-E: %g keys at the end, %g loaded + %g inserted", num(get(ple, "keys_final")),
		    num(get(ple, "keys_loaded")), num(get(ple, "inserts")));
	jfree(&a);
	jfree(&e);
	if (nbad)
		FAIL("%d problem(s) in the reports", nbad);
	return 0;
}
