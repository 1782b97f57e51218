/*
 * bench_out.c - what `pageleap bench` shows: ratios, the targets, a table for people,
 * JSON and CSV for programs, and gnuplot plots (`pageleap plot` redraws them from a CSV,
 * e.g. one a guest printed).
 */
#include "bench.h"
#include "sys.h"
#include "cli.h"
#include "pageleap.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool ok(const struct bench_result *r)
{
	return !strcmp(r->status, "ok");
}

/* The ok row of the method with capability cap on this page size, size and writers. */
static const struct bench_result *find(const struct bench_result *res, size_t n, unsigned cap,
				       unsigned page_kib, unsigned size_mib, unsigned writers)
{
	for (size_t i = 0; i < n; i++)
		if ((res[i].m->caps & cap) && res[i].page_kib == page_kib &&
		    res[i].size_mib == size_mib && res[i].writers == writers && ok(&res[i]))
			return &res[i];
	return NULL;
}

/* Ratios to move_pages() (same page size, size, writers) and to memcpy (same page size
 * and size; memcpy has no writers). */
void bench_finish(struct bench_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct bench_result *r = &res[i];
		if (!ok(r))
			continue;
		const struct bench_result *mp = find(res, n, BENCH_BASE_MOVE_PAGES, r->page_kib,
						     r->size_mib, r->writers);
		const struct bench_result *mc = find(res, n, BENCH_BASE_MEMCPY, r->page_kib,
						     r->size_mib, 0);
		if (mp && mp->gbps_med > 0)
			r->vs_move_pages = r->gbps_med / mp->gbps_med;
		if (mc && mc->gbps_med > 0)
			r->vs_memcpy = r->gbps_med / mc->gbps_med;
	}
}

/* ------------------------------------------------------------------ targets */

struct target {
	const char *name, *goal;
	double measured; /* NaN: not measured */
	int met;	 /* 1, 0, or -1 when it could not be judged */
	char note[200];
};
enum { NTARGETS = 5 };

static void targets(const struct bench_config *c, const struct bench_machine *mc,
		    const struct bench_result *res, size_t n, struct target *t)
{
	bool multi = c->from != c->to;
	t[0] = (struct target){ "leap_vs_move_pages_4k",
				"2 nodes, 4 KiB pages, no writers: page_leap >= 2x move_pages", NAN, -1, "" };
	t[1] = (struct target){ "leap_vs_move_pages_2m",
				"2 nodes, 2 MiB pages, no writers: page_leap >= 1.5x move_pages", NAN, -1, "" };
	t[2] = (struct target){ "leap_2m_vs_memcpy",
				"page_leap at 2 MiB granularity >= 0.5x memcpy in the same run", NAN, -1, "" };
	t[3] = (struct target){ "writers_2",
				"2 writers: no write lost, page_leap >= 0.5x its no-writer throughput",
				NAN, -1, "" };
	t[4] = (struct target){ "metadata", "library metadata < 8 bytes per 4 KiB page", NAN, -1, "" };
	/* worst case over the sizes measured */
	double w0 = INFINITY, w1 = INFINITY, w2 = INFINITY, w2h = INFINITY, meta = -1;
	int maxw = -1;
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *r = &res[i];
		if (!ok(r))
			continue;
		if (!strcmp(r->m->name, "page_leap") && r->page_kib == 4 && r->writers == 0 &&
		    !isnan(r->vs_move_pages))
			w0 = fmin(w0, r->vs_move_pages);
		if (!strcmp(r->m->name, "page_leap") && r->page_kib == 2048 && r->writers == 0 &&
		    !isnan(r->vs_move_pages))
			w1 = fmin(w1, r->vs_move_pages);
		if (!strcmp(r->m->name, "page_leap_2m") && r->page_kib == 4 && r->writers == 0 &&
		    !isnan(r->vs_memcpy))
			w2 = fmin(w2, r->vs_memcpy);
		if (!strcmp(r->m->name, "page_leap_2m") && r->page_kib == 2048 && r->writers == 0 &&
		    !isnan(r->vs_memcpy))
			w2h = fmin(w2h, r->vs_memcpy);
		if ((r->m->caps & BENCH_PAGE_LEAP) && !isnan(r->meta_per_page))
			meta = fmax(meta, r->meta_per_page);
		if (!strcmp(r->m->name, "page_leap") && r->page_kib == 4 && (int)r->writers > maxw)
			maxw = (int)r->writers;
	}
	const char *where = mc->emulated ? " (emulated guest: a ratio, not a hardware figure)" : "";
	if (isfinite(w0)) {
		t[0].measured = w0, t[0].met = w0 >= 2;
		snprintf(t[0].note, sizeof(t[0].note), "worst over the sizes measured%s", where);
	} else {
		snprintf(t[0].note, sizeof(t[0].note), "%s",
			 multi ? "move_pages or page_leap had no figure"
			       : "needs 2 nodes: run it in the 2-node guest (scripts/bench.sh)");
	}
	if (isfinite(w1)) {
		t[1].measured = w1, t[1].met = w1 >= 1.5;
		snprintf(t[1].note, sizeof(t[1].note), "worst over the sizes measured%s", where);
	} else {
		snprintf(t[1].note, sizeof(t[1].note), "%s",
			 !multi ? "needs 2 nodes: run it in the 2-node guest (scripts/bench.sh)"
				: "no 2 MiB-page figure for page_leap or move_pages (--pages 4,2048)");
	}
	/* 2 MiB granularity: 2 MiB steps over 4 KiB pages, and 2 MiB (THP) pages; judged on
	 * the better of the two, both shown */
	if (isfinite(w2) || isfinite(w2h)) {
		double best = isfinite(w2h) && (!isfinite(w2) || w2h > w2) ? w2h : w2;
		t[2].measured = best, t[2].met = best >= 0.5;
		char a[32] = "-", h[32] = "-";
		if (isfinite(w2))
			snprintf(a, sizeof(a), "%.2f", w2);
		if (isfinite(w2h))
			snprintf(h, sizeof(h), "%.2f", w2h);
		snprintf(t[2].note, sizeof(t[2].note),
			 "%s, worst over the sizes: 2 MiB steps of 4 KiB pages %s, of 2 MiB pages %s%s",
			 multi ? "migration between nodes" : "relocation on one node", a, h, where);
	} else {
		snprintf(t[2].note, sizeof(t[2].note), "page_leap_2m or memcpy not run");
	}
	const struct bench_result *zero = NULL, *two = NULL;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(res[i].m->name, "page_leap") && res[i].page_kib == 4 && ok(&res[i]) &&
		    res[i].size_mib == c->writers_size_mib) {
			if (res[i].writers == 0)
				zero = &res[i];
			if (res[i].writers == 2)
				two = &res[i];
		}
	if (zero && two) {
		t[3].measured = two->gbps_med / zero->gbps_med;
		t[3].met = t[3].measured >= 0.5 && two->lost_writes == 0;
		snprintf(t[3].note, sizeof(t[3].note), "%u MiB; %" PRIu64 " writes lost%s",
			 two->size_mib, two->lost_writes, where);
	} else {
		snprintf(t[3].note, sizeof(t[3].note), "run with --writers 0,2 to judge it");
	}
	if (meta >= 0) {
		t[4].measured = meta, t[4].met = meta < 8;
		snprintf(t[4].note, sizeof(t[4].note), "largest over the page_leap rows");
	} else {
		snprintf(t[4].note, sizeof(t[4].note), "no page_leap row ran");
	}
}

/* ------------------------------------------------------------------ table */

static const char emul_mark[] = "*";

void bench_print_table(FILE *f, const struct bench_config *c, const struct bench_machine *mc,
		       const struct bench_result *res, size_t n)
{
	const char *e = mc->emulated ? emul_mark : "";
	fprintf(f, "pageleap bench (%s): %s, %d CPUs, %d memory node(s); node %d -> node %d%s\n",
		c->quick ? "quick" : "full", mc->kernel, mc->cpus, mc->memory_nodes, c->from, c->to,
		c->from == c->to ? " (one node: page_leap and copy_mremap relocate to fresh pages)" : "");
	fprintf(f, "median of %u moves after %u warm-up (min..max); stall = a write slower than %u us\n",
		c->reps, c->warmup, BENCH_STALL_NS / 1000);
	if (mc->emulated)
		fprintf(f, "* EMULATED NUMA (QEMU software emulation): times are not hardware times; "
			   "compare ratios only\n");
	if (c->scaled)
		fprintf(f, "full run scaled down for emulation: %u moves after %u warm-up, a row stops "
			   "after %.0f s; rows left out say \"%s\"\n",
			c->reps, c->warmup, c->row_budget_s, SCALED_REASON);
	fprintf(f, "\n%-16s %5s %5s %2s %9s %14s %9s %6s %6s %7s %7s %-20s %7s %7s\n", "method",
		"page", "MiB", "wr", "GB/s", "min..max", "kpages/s", "left", "lost", "cpu s",
		"stalls", "p50/p99/max us", "x mvpg", "x memcpy");
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *r = &res[i];
		char page[8];
		snprintf(page, sizeof(page), "%s", r->page_kib == 4 ? "4K" : "2M");
		if (!ok(r)) {
			fprintf(f, "%-16s %5s %5u %2u   %s\n", r->m->name, page, r->size_mib, r->writers,
				r->status);
			continue;
		}
		char gb[24], mm[40], st[48], x1[16] = "-", x2[16] = "-";
		snprintf(gb, sizeof(gb), "%.3f%s", r->gbps_med, e);
		snprintf(mm, sizeof(mm), "%.3f..%.3f%s", r->gbps_min, r->gbps_max,
			 r->reps < (int)c->reps && !(r->m->caps & BENCH_ONE_REP) ? "~" : "");
		if (r->stall.count)
			snprintf(st, sizeof(st), "%.0f/%.0f/%.0f", r->stall.p50_us, r->stall.p99_us,
				 r->stall.max_us);
		else
			snprintf(st, sizeof(st), "-");
		if (!isnan(r->vs_move_pages))
			snprintf(x1, sizeof(x1), "%.2f", r->vs_move_pages);
		if (!isnan(r->vs_memcpy))
			snprintf(x2, sizeof(x2), "%.2f", r->vs_memcpy);
		fprintf(f, "%-16s %5s %5u %2u %9s %14s %9.1f %6" PRIu64 " %6" PRIu64
			   " %7.3f %7" PRIu64 " %-20s %7s %7s\n",
			r->m->name, page, r->size_mib, r->writers, gb, mm, r->pages_per_s / 1e3,
			r->pages_left, r->lost_writes, r->cpu_s, r->stall.count, st, x1, x2);
	}
	fprintf(f, "\nmethods:\n");
	for (size_t k = 0; k < bench_nmethods; k++)
		if (c->method_on[k])
			fprintf(f, "  %-16s %s\n", bench_methods[k].name, bench_methods[k].what);
	fprintf(f, "columns: left = pages not on the target afterwards (worst move); lost = writes "
		   "lost over all moves;\n  cpu s = CPU time of one move, writer threads excluded "
		   "(autonuma: includes its touching thread); ~ = fewer moves than asked (a row "
		   "stops after\n  %.0f s of measured moves); "
		   "x mvpg / x memcpy = GB/s ratio to move_pages / memcpy\n",
		c->row_budget_s);
	struct target t[NTARGETS];
	targets(c, mc, res, n, t);
	fprintf(f, "\ntargets:\n");
	for (int i = 0; i < NTARGETS; i++) {
		char m[24] = "-";
		if (!isnan(t[i].measured))
			snprintf(m, sizeof(m), "%.2f", t[i].measured);
		fprintf(f, "  %-9s %-68s measured %-6s %s\n",
			t[i].met == 1 ? "MET" : t[i].met == 0 ? "NOT MET" : "NOT JUDGED", t[i].goal, m,
			t[i].note);
	}
}

/* ------------------------------------------------------------------ JSON */


/* A number, or null for NaN or when the row has no figures. */
static void jnum(FILE *f, const char *key, double v, bool have)
{
	fprintf(f, ",\"%s\":", key);
	sys_json_num(f, have ? v : NAN);
}

/* A count, exactly (%g would round past a million), or null. */
static void jint(FILE *f, const char *key, uint64_t v, bool have)
{
	if (have)
		fprintf(f, ",\"%s\":%" PRIu64, key, v);
	else
		fprintf(f, ",\"%s\":null", key);
}

void bench_print_json(FILE *f, const struct bench_config *c, const struct bench_machine *mc,
		      const struct bench_result *res, size_t n)
{
	fprintf(f, "{\"tool\":\"pageleap bench\",\"version\":");
	sys_json_string(f, leap_version());
	fprintf(f, ",\"machine\":{\"kernel\":");
	sys_json_string(f, mc->kernel);
	fprintf(f, ",\"nodes\":%d,\"memory_nodes\":%d,\"cpus\":%d,\"emulated\":%s,\"timing_note\":",
		mc->nodes, mc->memory_nodes, mc->cpus, mc->emulated ? "true" : "false");
	sys_json_string(f, mc->emulated ? "emulated NUMA (QEMU software emulation): not hardware timings"
			     : "measured on this machine");
	fprintf(f, "},\"config\":{\"quick\":%s,\"from\":%d,\"to\":%d,\"reps\":%u,\"warmup\":%u,"
		   "\"stall_threshold_us\":%u,\"row_budget_s\":%.6g,\"scaled_for_emulation\":%s,"
		   "\"sizes_mib\":[",
		c->quick ? "true" : "false", c->from, c->to, c->reps, c->warmup, BENCH_STALL_NS / 1000,
		c->row_budget_s, c->scaled ? "true" : "false");
	for (unsigned i = 0; i < c->nsizes; i++)
		fprintf(f, "%s%u", i ? "," : "", c->sizes_mib[i]);
	fprintf(f, "],\"writers\":[");
	for (unsigned i = 0; i < c->nwriters; i++)
		fprintf(f, "%s%u", i ? "," : "", c->writers[i]);
	fprintf(f, "],\"page_kib\":[");
	for (unsigned i = 0; i < c->npage; i++)
		fprintf(f, "%s%u", i ? "," : "", c->page_kib[i]);
	/* the methods of the run and what each is: a check goes by capability, not name */
	fprintf(f, "]},\n\"methods\":[");
	for (size_t k = 0, i = 0; k < bench_nmethods; k++) {
		const struct bench_method *m = &bench_methods[k];
		if (!c->method_on[k])
			continue;
		fprintf(f, "%s\n{\"name\":", i++ ? "," : "");
		sys_json_string(f, m->name);
		fprintf(f, ",\"what\":");
		sys_json_string(f, m->what);
		fprintf(f, ",\"needs_nodes\":%u,\"caps\":[", m->needs_nodes ? m->needs_nodes : 1);
		for (unsigned b = 0, j = 0; b < BENCH_NCAPS; b++)
			if (m->caps & (1u << b))
				fprintf(f, "%s\"%s\"", j++ ? "," : "", bench_cap_names[b]);
		fprintf(f, "],\"writers\":%s}", m->no_writers ? "false" : "true");
	}
	fprintf(f, "],\n\"results\":[");
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *r = &res[i];
		bool y = ok(r);
		fprintf(f, "%s\n{\"method\":", i ? "," : "");
		sys_json_string(f, r->m->name);
		fprintf(f, ",\"page_kib\":%u,\"size_mib\":%u,\"writers\":%u,\"status\":", r->page_kib,
			r->size_mib, r->writers);
		sys_json_string(f, r->status);
		fprintf(f, ",\"emulated\":%s", mc->emulated ? "true" : "false");
		jint(f, "reps", (uint64_t)r->reps, y);
		if (y)
			fprintf(f, ",\"gbps\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}", r->gbps_med,
				r->gbps_min, r->gbps_max);
		else
			fprintf(f, ",\"gbps\":null");
		jnum(f, "seconds", r->seconds, y);
		jnum(f, "pages_per_s", r->pages_per_s, y);
		jint(f, "pages", r->pages, y);
		jint(f, "pages_left", r->pages_left, y);
		jint(f, "lost_writes", r->lost_writes, y);
		jnum(f, "cpu_s", r->cpu_s, y);
		if (y)
			fprintf(f, ",\"stall\":{\"count\":%" PRIu64 ",\"p50_us\":%.6g,\"p90_us\":%.6g,"
				   "\"p99_us\":%.6g,\"p999_us\":%.6g,\"max_us\":%.6g}",
				r->stall.count, r->stall.p50_us, r->stall.p90_us, r->stall.p99_us,
				r->stall.p999_us, r->stall.max_us);
		else
			fprintf(f, ",\"stall\":null");
		jnum(f, "vs_move_pages", r->vs_move_pages, y);
		jnum(f, "vs_memcpy", r->vs_memcpy, y);
		jnum(f, "metadata_bytes_per_page", r->meta_per_page, y);
		if (y && r->extents)
			fprintf(f, ",\"page_leap\":{\"extents\":%" PRIu64 ",\"granularity_kib\":{"
				   "\"min\":%" PRIu64 ",\"max\":%" PRIu64 ",\"last\":%" PRIu64 "}}",
				r->extents, r->gran_min_kib, r->gran_max_kib, r->gran_last_kib);
		fputc('}', f);
	}
	struct target t[NTARGETS];
	targets(c, mc, res, n, t);
	fprintf(f, "],\n\"targets\":[");
	for (int i = 0; i < NTARGETS; i++) {
		fprintf(f, "%s\n{\"name\":", i ? "," : "");
		sys_json_string(f, t[i].name);
		fprintf(f, ",\"goal\":");
		sys_json_string(f, t[i].goal);
		jnum(f, "measured", t[i].measured, true);
		fprintf(f, ",\"met\":%s,\"note\":", t[i].met < 0 ? "null" : t[i].met ? "true" : "false");
		sys_json_string(f, t[i].note);
		fputc('}', f);
	}
	fprintf(f, "]}\n");
}

/* ------------------------------------------------------------------ CSV */

static void cnum(FILE *f, double v, bool have)
{
	if (have && !isnan(v) && !isinf(v))
		fprintf(f, ",%.6g", v);
	else
		fputc(',', f);
}

static void cint(FILE *f, uint64_t v, bool have)
{
	if (have)
		fprintf(f, ",%" PRIu64, v);
	else
		fputc(',', f);
}

void bench_print_csv(FILE *f, const struct bench_machine *mc, const struct bench_result *res,
		     size_t n)
{
	fprintf(f, "method,page_kib,size_mib,writers,status,reps,gbps_med,gbps_min,gbps_max,"
		   "pages_per_s,seconds,pages,pages_left,lost_writes,cpu_s,stall_count,stall_p50_us,"
		   "stall_p90_us,stall_p99_us,stall_p999_us,stall_max_us,vs_move_pages,vs_memcpy,"
		   "meta_per_page,emulated,extents,gran_min_kib,gran_max_kib,gran_last_kib\n");
	for (size_t i = 0; i < n; i++) {
		const struct bench_result *r = &res[i];
		bool y = ok(r);
		char status[sizeof(r->status)];
		strcpy(status, r->status);
		for (char *s = status; *s; s++)
			if (*s == ',' || *s == '"')
				*s = ';'; /* CSV without quoting */
		fprintf(f, "%s,%u,%u,%u,%s", r->m->name, r->page_kib, r->size_mib, r->writers, status);
		cint(f, (uint64_t)r->reps, y);
		cnum(f, r->gbps_med, y);
		cnum(f, r->gbps_min, y);
		cnum(f, r->gbps_max, y);
		cnum(f, r->pages_per_s, y);
		cnum(f, r->seconds, y);
		cint(f, r->pages, y);
		cint(f, r->pages_left, y);
		cint(f, r->lost_writes, y);
		cnum(f, r->cpu_s, y);
		cint(f, r->stall.count, y);
		cnum(f, r->stall.p50_us, y);
		cnum(f, r->stall.p90_us, y);
		cnum(f, r->stall.p99_us, y);
		cnum(f, r->stall.p999_us, y);
		cnum(f, r->stall.max_us, y);
		cnum(f, r->vs_move_pages, y);
		cnum(f, r->vs_memcpy, y);
		cnum(f, r->meta_per_page, y);
		fprintf(f, ",%d", mc->emulated);
		bool pl = y && r->extents;
		cint(f, r->extents, pl);
		cint(f, r->gran_min_kib, pl);
		cint(f, r->gran_max_kib, pl);
		cint(f, r->gran_last_kib, pl);
		fputc('\n', f);
	}
}

/* ------------------------------------------------------------------ plots */

/* The gnuplot script; the tool prepends the variables csv, out, title, methods, wsize
 * (the size the writer runs used) and maxw (their largest writer count). Columns: see
 * bench_print_csv(). NaN marks rows a plot leaves out (and does not break lines at). */
static const char plot_gp[] =
	"set datafile separator ','\n"
	"set datafile missing NaN\n"
	"set grid\n"
	"set key outside right top noenhanced\n"
	"set termoption noenhanced\n"
	"ok(m) = strcol(1) eq m && strcol(5) eq 'ok'\n"
	"colors = '#9400d3 #009e73 #56b4e9 #e69f00 #f0e442 #0072b2 #e51e10 #000000 #a0522d "
	"#ff69b4 #708090 #00ced1 #8b0000 #556b2f #4b0082'\n"
	"n = words(methods)\n"
	"c(i) = word(colors, (i - 1) % 15 + 1)\n"
	"do for [fmt in 'png svg'] {\n"
	"  if (fmt eq 'png') { set terminal pngcairo size 1100,620 noenhanced } "
	"else { set terminal svg size 1100,620 noenhanced }\n"
	"  set output out.'/throughput_vs_size.'.fmt\n"
	"  set title title.\"\\nmigration throughput vs region size (4 KiB pages, no writers)\"\n"
	"  set xlabel 'region size (MiB)'; set ylabel 'GB/s (median)'\n"
	"  set logscale x 2; set logscale y; unset xtics; set xtics\n"
	"  plot for [i=1:n] csv skip 1 using ((ok(word(methods,i)) && $2==4 && $4==0) ? $3 : NaN):7 "
	"with linespoints lw 2 pt i lc rgb c(i) title word(methods,i)\n"
	"  set output out.'/throughput_vs_writers.'.fmt\n"
	"  set title title.sprintf(\"\\nthroughput vs concurrent writer threads (4 KiB pages, %d MiB)\", "
	"wsize)\n"
	"  set xlabel 'writer threads'; unset logscale x; set xtics 1\n"
	"  plot for [i=1:n] csv skip 1 using ((ok(word(methods,i)) && $2==4 && $3==wsize) ? $4 : NaN):7 "
	"with linespoints lw 2 pt i lc rgb c(i) title word(methods,i)\n"
	"  set output out.'/stalls.'.fmt\n"
	"  set title title.sprintf(\"\\nwriter stalls (writes slower than 5 us), %d writers, "
	"%d MiB, 4 KiB pages\", maxw, wsize)\n"
	"  set xlabel 'percentile'; set ylabel 'stall (us)'; set logscale y\n"
	"  set xtics ('p50' 1, 'p90' 2, 'p99' 3, 'p99.9' 4, 'max' 5); set xrange [0.5:5.5]\n"
	"  sel(m) = ok(m) && $2==4 && $3==wsize && $4==maxw && $16 > 0\n"
	"  dx(i) = (i - (n + 1) / 2.0) * 0.03  # side by side, not on top of each other\n"
	"  plot for [i=1:n] csv skip 1 using (sel(word(methods,i)) ? 1 + dx(i) : NaN):17 with points pt 7 "
	"ps 1.5 lc rgb c(i) title word(methods,i), \\\n"
	"       for [i=1:n] csv skip 1 using (sel(word(methods,i)) ? 2 + dx(i) : NaN):18 w p pt 7 ps 1.5 lc rgb c(i) notitle, \\\n"
	"       for [i=1:n] csv skip 1 using (sel(word(methods,i)) ? 3 + dx(i) : NaN):19 w p pt 7 ps 1.5 lc rgb c(i) notitle, \\\n"
	"       for [i=1:n] csv skip 1 using (sel(word(methods,i)) ? 4 + dx(i) : NaN):20 w p pt 7 ps 1.5 lc rgb c(i) notitle, \\\n"
	"       for [i=1:n] csv skip 1 using (sel(word(methods,i)) ? 5 + dx(i) : NaN):21 w p pt 7 ps 1.5 lc rgb c(i) notitle\n"
	"  unset xtics; set xtics; set autoscale x\n"
	"}\n";

/* From a bench CSV: the smallest size writer runs used and their largest writer count. */
static int csv_writer_shape(const char *csv, unsigned *wsize, unsigned *maxw, bool *have)
{
	FILE *f = fopen(csv, "r");
	if (!f)
		return -errno;
	char line[1024];
	*wsize = 0, *maxw = 0;
	bool header = true;
	while (fgets(line, sizeof(line), f)) {
		unsigned pk, sz, w;
		if (header) {
			header = false;
			if (strncmp(line, "method,page_kib,size_mib,writers,", 33)) {
				fclose(f);
				return -EINVAL;
			}
			continue;
		}
		char name[64], status[8];
		if (sscanf(line, "%63[^,],%u,%u,%u,%7[^,]", name, &pk, &sz, &w, status) == 5 &&
		    !strcmp(status, "ok"))
			for (size_t k = 0; k < bench_nmethods; k++)
				have[k] |= !strcmp(name, bench_methods[k].name);
		if (sscanf(line, "%*[^,],%u,%u,%u,", &pk, &sz, &w) == 3 && w > 0) {
			if (!*wsize || sz < *wsize)
				*wsize = sz;
			if (w > *maxw)
				*maxw = w;
		}
	}
	fclose(f);
	return header ? -EINVAL : 0;
}

int bench_plot(const char *csv, const char *dir, const char *title, bool force)
{
	unsigned wsize = 0, maxw = 0;
	bool have[64] = { false };
	int rc = csv_writer_shape(csv, &wsize, &maxw, have);
	if (rc)
		return rc;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	char gp[4096];
	snprintf(gp, sizeof(gp), "%s/bench.gp", dir);
	FILE *f = sys_create(gp, force);
	if (!f)
		return -errno;
	/* gnuplot strings in single quotes: a quote inside is written twice */
	fputs("# made by pageleap bench; run again with: gnuplot bench.gp\ncsv = '", f);
	for (const char *s = csv; *s; s++)
		fprintf(f, *s == '\'' ? "''" : "%c", *s);
	fputs("'\nout = '", f);
	for (const char *s = dir; *s; s++)
		fprintf(f, *s == '\'' ? "''" : "%c", *s);
	fputs("'\ntitle = '", f);
	for (const char *s = title; *s; s++)
		fprintf(f, *s == '\'' ? "''" : "%c", *s);
	fputs("'\nmethods = '", f); /* those with figures */
	for (size_t k = 0, sp = 0; k < bench_nmethods; k++)
		if (have[k])
			fprintf(f, "%s%s", sp++ ? " " : "", bench_methods[k].name);
	fprintf(f, "'\nwsize = %u\nmaxw = %u\n%s", wsize, maxw, plot_gp);
	if (fclose(f))
		return -errno;
	/* gnuplot warns about every line a plot has no point for (a method without writer
	 * runs, say) and about a plot over one size (--quick) */
	return sys_gnuplot(gp);
}

static const char plot_usage[] =
	"usage: pageleap plot CSV DIR [--title TEXT] [--force]\n"
	"  draw the plots of a `pageleap bench --csv` result (e.g. one a guest printed) into DIR\n"
	"  (DIR/bench.gp must not exist unless --force; gnuplot replaces the images)\n";

int cmd_plot(int argc, char **argv)
{
	const char *title = "pageleap bench";
	bool force = false;
	if (argc > 2 && !strcmp(argv[argc - 1], "--force")) {
		force = true;
		argc--;
	}
	if (argc == 4 && !strcmp(argv[2], "--title"))
		title = argv[3];
	else if (argc != 2)
		return cli_usage(plot_usage, "plot: %s", "wants a CSV file and a directory");
	int rc = bench_plot(argv[0], argv[1], title, force);
	if (rc) {
		char gp[4096];
		snprintf(gp, sizeof(gp), "%s/bench.gp", argv[1]);
		if (rc == -EEXIST || rc == -ELOOP)
			sys_say_create("plot", gp, -rc);
		else
			fprintf(stderr, "pageleap: plot: %s: %s\n", argv[0],
				rc == -EINVAL ? "not a pageleap bench CSV" : strerror(-rc));
		return 1;
	}
	printf("plots in %s: throughput_vs_size, throughput_vs_writers, stalls (.png, .svg)\n", argv[1]);
	return 0;
}
