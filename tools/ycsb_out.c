/*
 * ycsb_out.c - what `pageleap ycsb` prints: the summary table with its ratios, the JSON,
 * and the timeline plot (gnuplot). Not thread safe (called once, at the end).
 */
#include "sys.h"
#include "ycsb.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The result of the method with capability cap that ran. */
static const struct ycsb_result *find(const struct ycsb_result *res, size_t n, unsigned cap)
{
	for (size_t i = 0; i < n; i++)
		if (res[i].ran && (res[i].m->caps & cap))
			return &res[i];
	return NULL;
}

static bool migrates(const struct ycsb_result *r)
{
	return r->m->caps & YCSB_MIGRATES;
}

/* Mean throughput of the slices that end in (from, to]. */
static double window_kops(const struct ycsb_result *r, double from, double to)
{
	double sum = 0;
	unsigned k = 0;
	for (size_t i = 0; i < r->nslices; i++)
		if (r->slices[i].t > from + 1e-3 && r->slices[i].t <= to + 0.05)
			sum += r->slices[i].kops, k++;
	return k ? sum / k : NAN;
}

void ycsb_finish(struct ycsb_result *res, size_t n)
{
	const struct ycsb_result *mp = find(res, n, YCSB_BASE_MOVE_PAGES),
				 *none = find(res, n, YCSB_BASE_NONE);
	double longest = 0;
	for (size_t i = 0; i < n; i++)
		if (res[i].ran && migrates(&res[i]))
			longest = fmax(longest, (isnan(res[i].mig_end) ? res[i].slices[res[i].nslices - 1].t
								       : res[i].mig_end) - res[i].mig_start);
	for (size_t i = 0; i < n; i++) {
		struct ycsb_result *r = &res[i];
		r->vs_move_pages = r->vs_none = r->kops_window = NAN;
		if (!r->ran)
			continue;
		if (mp && mp->kops[PH_DURING] > 0 && migrates(r))
			r->vs_move_pages = r->kops[PH_DURING] / mp->kops[PH_DURING];
		if (none && none->kops[PH_DURING] > 0)
			r->vs_none = r->kops[PH_DURING] / none->kops[PH_DURING];
		if (longest > 0)
			r->kops_window = window_kops(r, r->mig_start, r->mig_start + longest);
	}
}

static const char *workload_text(char w)
{
	switch (w) {
	case 'a': return "A: 50% read, 50% update";
	case 'b': return "B: 95% read, 5% update";
	case 'c': return "C: 100% read";
	default: return "E: 95% scan (1-100 keys), 5% insert";
	}
}

static void num(FILE *f, const char *fmt, double v, int width)
{
	if (isnan(v))
		fprintf(f, "%*s", width, "-");
	else
		fprintf(f, fmt, width, v);
}

void ycsb_print_table(FILE *f, const struct ycsb_config *c, const struct ycsb_machine *mc,
		      const struct ycsb_result *res, size_t n)
{
	fprintf(f, "pageleap ycsb: workload %s, %s keys\n", workload_text(c->workload),
		c->zipf ? "scrambled zipfian (0.99)" : "uniform");
	fprintf(f, "%" PRIu64 " keys in %d partition(s), %u worker(s) each; warm-up %.1f s, "
		   "%.1f s after the migration; %s\n",
		c->keys, mc->partitions, c->threads, c->warmup_s, c->after_s, mc->kernel);
	fprintf(f, "%d node(s), %d with CPUs, %d CPUs%s\n\n", mc->nodes, mc->cpu_nodes, mc->cpus,
		mc->emulated ? "; EMULATED (QEMU): not hardware timings, compare the ratios only" : "");
	fprintf(f, "%-16s %9s %9s %9s %9s %7s %7s %9s %11s %15s  %s\n", "", "before", "during",
		"after", "window", "vs", "vs", "migrate", "pages", "p50/p99 us", "check");
	fprintf(f, "%-16s %9s %9s %9s %9s %7s %7s %9s %11s %15s\n", "method", "kops/s", "kops/s",
		"kops/s", "kops/s", "mv_pgs", "none", "s", "moved", "during");
	for (size_t i = 0; i < n; i++) {
		const struct ycsb_result *r = &res[i];
		fprintf(f, "%-16s", r->m->name);
		if (!r->ran) {
			fprintf(f, " %s\n", r->status);
			continue;
		}
		for (int ph = 0; ph < PH_N; ph++)
			num(f, " %*.0f", r->kops[ph], 9);
		num(f, " %*.0f", r->kops_window, 9);
		num(f, " %*.2f", r->vs_move_pages, 7);
		num(f, " %*.2f", r->vs_none, 7);
		if (!migrates(r))
			fprintf(f, " %9s %11s", "-", "-");
		else if (isnan(r->mig_end))
			fprintf(f, " %9s %11" PRIu64, "unfin.", r->pages_moved);
		else
			fprintf(f, " %9.2f %11" PRIu64, r->mig_end - r->mig_start, r->pages_moved);
		char lat[32];
		snprintf(lat, sizeof(lat), "%.1f/%.1f", r->p50_us[PH_DURING], r->p99_us[PH_DURING]);
		fprintf(f, " %15s  %s", lat, r->check);
		if (strcmp(r->status, "ok"))
			fprintf(f, " (%s)", r->status);
		fputc('\n', f);
	}
	fputs("\nbefore: the warm-up; during: from the migration's start to its end (for none and\n"
	      "all_local: as long as after); window: every method over the same span, as long as\n"
	      "the slowest migration of this run; vs: during-migration throughput over\n"
	      "move_pages' and over none's; check: tree invariants and every key's last value.\n",
	      f);
	for (size_t i = 0; i < n; i++)
		if (res[i].ran && res[i].pages_left)
			fprintf(f, "%s: %" PRIu64 " pages not on their target after the run\n",
				res[i].m->name, res[i].pages_left);
	for (size_t i = 0; i < n; i++)
		if (res[i].ran && res[i].inserts_refused)
			fprintf(f, "%s: %" PRIu64 " inserts refused: the partition's room was used up\n",
				res[i].m->name, res[i].inserts_refused);
	fputs("methods:\n", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-16s %s\n", res[i].m->name, res[i].m->what);
}

void ycsb_print_json(FILE *f, const struct ycsb_config *c, const struct ycsb_machine *mc,
		     const struct ycsb_result *res, size_t n)
{
	fprintf(f, "{\n  \"machine\": {\"kernel\": ");
	sys_json_string(f, mc->kernel);
	fprintf(f, ", \"nodes\": %d, \"cpu_nodes\": %d, \"cpus\": %d, \"emulated\": %s},\n",
		mc->nodes, mc->cpu_nodes, mc->cpus, mc->emulated ? "true" : "false");
	fprintf(f, "  \"config\": {\"workload\": \"%c\", \"dist\": \"%s\", \"keys\": %" PRIu64
		   ", \"partitions\": %d, \"threads_per_partition\": %u, \"warmup_s\": ",
		c->workload, c->zipf ? "zipf" : "uniform", c->keys, mc->partitions, c->threads);
	sys_json_num(f, c->warmup_s);
	fputs(", \"after_s\": ", f);
	sys_json_num(f, c->after_s);
	fputs(", \"slice_s\": ", f);
	sys_json_num(f, c->slice_s);
	fputs("},\n  \"methods\": [", f);
	static const char *const ph[PH_N] = { "before", "during", "after" };
	for (size_t i = 0; i < n; i++) {
		const struct ycsb_result *r = &res[i];
		fprintf(f, "%s\n    {\"method\": ", i ? "," : "");
		sys_json_string(f, r->m->name);
		/* what the method is: a check goes by capability, not name */
		fprintf(f, ", \"needs_nodes\": %u, \"caps\": [",
			r->m->needs_nodes ? r->m->needs_nodes : 1);
		for (unsigned b = 0, j = 0; b < YCSB_NCAPS; b++)
			if (r->m->caps & (1u << b))
				fprintf(f, "%s\"%s\"", j++ ? ", " : "", ycsb_cap_names[b]);
		fputc(']', f);
		fputs(", \"status\": ", f);
		sys_json_string(f, r->status);
		fprintf(f, ", \"ran\": %s", r->ran ? "true" : "false");
		if (!r->ran) {
			fputc('}', f);
			continue;
		}
		fprintf(f, ", \"migrates\": %s, \"finished\": %s, \"migration_start_s\": ",
			migrates(r) ? "true" : "false", r->finished ? "true" : "false");
		sys_json_num(f, r->mig_start);
		fputs(", \"migration_end_s\": ", f);
		sys_json_num(f, r->mig_end);
		fputs(", \"migration_s\": ", f);
		sys_json_num(f, migrates(r) ? r->mig_end - r->mig_start : NAN);
		for (int k = 0; k < PH_N; k++) {
			fprintf(f, ", \"kops_%s\": ", ph[k]);
			sys_json_num(f, r->kops[k]);
			fprintf(f, ", \"p50_us_%s\": ", ph[k]);
			sys_json_num(f, r->p50_us[k]);
			fprintf(f, ", \"p99_us_%s\": ", ph[k]);
			sys_json_num(f, r->p99_us[k]);
		}
		fputs(", \"kops_window\": ", f);
		sys_json_num(f, r->kops_window);
		fputs(", \"vs_move_pages\": ", f);
		sys_json_num(f, r->vs_move_pages);
		fputs(", \"vs_none\": ", f);
		sys_json_num(f, r->vs_none);
		fprintf(f, ", \"pages\": %" PRIu64 ", \"pages_moved\": %" PRIu64 ", \"pages_left\": %" PRIu64
			   ", \"keys_loaded\": %" PRIu64 ", \"keys_final\": %" PRIu64 ", \"inserts\": %" PRIu64
			   ", \"inserts_refused\": %" PRIu64 ", \"missing_reads\": %" PRIu64
			   ", \"bad_scans\": %" PRIu64 ", \"lost_values\": %" PRIu64 ", \"restarts\": %" PRIu64
			   ", \"invariants_ok\": %s, \"check\": ",
			r->pages, r->pages_moved, r->pages_left, r->keys_loaded, r->keys_final, r->inserts,
			r->inserts_refused, r->missing_reads, r->bad_scans, r->lost_values, r->restarts,
			r->invariants_ok ? "true" : "false");
		sys_json_string(f, r->check);
		fprintf(f, ", \"extents\": %" PRIu64 ", \"granularity_min_kib\": %" PRIu64
			   ", \"granularity_max_kib\": %" PRIu64 ",\n     \"slices\": [",
			r->extents, r->gran_min_kib, r->gran_max_kib);
		for (size_t k = 0; k < r->nslices; k++) {
			fprintf(f, "%s[", k ? ", " : "");
			sys_json_num(f, r->slices[k].t);
			fputs(", ", f);
			sys_json_num(f, r->slices[k].kops);
			fputs(", ", f);
			sys_json_num(f, r->slices[k].migrated);
			fputc(']', f);
		}
		fputs("]}", f);
	}
	fputs("\n  ]\n}\n", f);
}

/* The plot: the tool writes the variables (dat, out, title, names, start, ends) above. */
static const char plot_gp[] =
	"set key outside right top noenhanced\n"
	"set grid\n"
	"set xlabel 'seconds since the workers started'\n"
	"set ylabel 'throughput, thousand operations/s (100 ms slices)'\n"
	"set yrange [0:*]\n"
	"set title title noenhanced\n"
	"set arrow 1 from start, graph 0 to start, graph 1 nohead lw 2 lc 'black'\n"
	"set label 1 'migration starts' at start, graph 1.02 center\n"
	"do for [i=1:words(names)] {\n"
	"  e = word(ends, i) + 0\n"
	"  if (e > 0) { set arrow (i + 1) from e, graph 0 to e, graph 1 nohead dt 2 lw 1.5 lc i }\n"
	"}\n"
	"do for [fmt in 'png svg'] {\n"
	"  if (fmt eq 'png') { set terminal pngcairo size 1100,560 noenhanced } "
	"else { set terminal svg size 1100,560 noenhanced }\n"
	"  set output out.'/timeline.'.fmt\n"
	"  plot for [i=1:words(names)] dat index (i - 1) using 1:2 with lines lw 2 lc i "
	"title word(names, i)\n"
	"}\n";

int ycsb_plot(const char *dir, const struct ycsb_config *c, const struct ycsb_machine *mc,
	      const struct ycsb_result *res, size_t n)
{
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	char dat[4096], gp[4096];
	snprintf(dat, sizeof(dat), "%s/timeline.dat", dir);
	snprintf(gp, sizeof(gp), "%s/ycsb.gp", dir);
	FILE *f = sys_create(dat, c->force);
	if (!f)
		return -errno;
	double start = 0;
	size_t blocks = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ycsb_result *r = &res[i];
		if (!r->ran || !r->nslices)
			continue;
		start = r->mig_start;
		fprintf(f, "%s# %s: t_s kops migrated_fraction\n", blocks++ ? "\n\n" : "", r->m->name);
		for (size_t k = 0; k < r->nslices; k++)
			fprintf(f, "%.3f %.3f %.4f\n", r->slices[k].t, r->slices[k].kops, r->slices[k].migrated);
	}
	if (fclose(f))
		return -errno;
	if (!blocks)
		return -ENODATA;
	f = sys_create(gp, c->force);
	if (!f)
		return -errno;
	fputs("# made by pageleap ycsb; run again with: gnuplot ycsb.gp\ndat = ", f);
	sys_gp_string(f, dat);
	fputs("\nout = ", f);
	sys_gp_string(f, dir);
	char title[512];
	snprintf(title, sizeof(title), "YCSB-%c, %s, %" PRIu64 " keys, %d partition(s)%s",
		 c->workload - 32, c->zipf ? "zipfian" : "uniform", c->keys, mc->partitions,
		 mc->emulated ? " (QEMU emulated NUMA: not hardware timings)" : "");
	fputs("\ntitle = ", f);
	sys_gp_string(f, title);
	fputs("\nnames = '", f);
	for (size_t i = 0, k = 0; i < n; i++)
		if (res[i].ran && res[i].nslices)
			fprintf(f, "%s%s", k++ ? " " : "", res[i].m->name);
	fputs("'\nends = '", f);
	for (size_t i = 0, k = 0; i < n; i++)
		if (res[i].ran && res[i].nslices)
			fprintf(f, "%s%.3f", k++ ? " " : "",
				migrates(&res[i]) && !isnan(res[i].mig_end) ? res[i].mig_end : 0.0);
	fprintf(f, "'\nstart = %.3f\n%s", start, plot_gp);
	if (fclose(f))
		return -errno;
	return sys_gnuplot(gp);
}
