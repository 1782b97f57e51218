/*
 * pageleap - command-line tool for libpageleap.
 *
 *   pageleap topo [--json]               NUMA nodes, CPUs, memory, distances
 *   pageleap topo --measure [...]        the same next to the machine measured from inside
 *                                        (leap_measure_new: latency, bandwidth, core to
 *                                        core, memory domains, hidden NUMA); measure_out.c
 *   pageleap demo [--size MIB] [--json]  a region migrating across every memory node,
 *                                        with the kernel's placement query beside the
 *                                        library's answer after each step
 *   pageleap bench [--quick|--full] [...]  page_leap side by side with move_pages,
 *                                        mbind, copy + mremap, AutoNUMA and memcpy
 *   pageleap plot CSV DIR                 plots of a bench CSV
 *   pageleap ycsb [--workload W] [...]   YCSB on a B+-tree while its pages migrate
 *   pageleap version | help
 *
 * Exit status: 0 success, 1 a failed operation or check, 2 bad usage.
 */
#include "cli.h"
#include "sys.h"
#include "pageleap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: pageleap COMMAND [OPTIONS]\n"
	"\n"
	"commands:\n"
	"  topo [--json]               show NUMA nodes, CPUs, memory and distances\n"
	"  topo --measure [--json] [--plot FILE.png] [--what LIST] [--keep] [...]\n"
	"                              also measure the machine from inside: memory latency\n"
	"                              and bandwidth per node pair, core-to-core latency and\n"
	"                              coherence domains, memory domains, and whether sysfs\n"
	"                              hides NUMA structure (topo --measure --help)\n"
	"  demo [--size MIB] [--json]  create a region, move it across every memory node and\n"
	"                              show where its pages are (library and kernel)\n"
	"  bench [--quick | --full] [--json | --csv] [--plot DIR] [...]\n"
	"                              migration throughput, writer stalls and lost writes of\n"
	"                              page_leap, move_pages (whole, batched), mbind, copy +\n"
	"                              mremap, AutoNUMA and memcpy, side by side (bench --help)\n"
	"  plot CSV DIR                draw the plots of a bench CSV into DIR (gnuplot)\n"
	"  ycsb [--workload a|b|c|e] [--dist zipf|uniform] [--method LIST] [...]\n"
	"                              YCSB on a main-memory B+-tree while its pages migrate,\n"
	"                              per method: throughput over time, latency, checks\n"
	"                              (ycsb --help)\n"
	"  version                     print the library version\n"
	"  help                        this text\n";

int cli_usage(const char *text, const char *fmt, const char *arg)
{
	fprintf(stderr, "pageleap: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", text);
	return 2;
}

static int bad_usage(const char *fmt, const char *arg)
{
	return cli_usage(usage, fmt, arg);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_print_cpus(FILE *f, const int *cpus, int n)
{
	if (n == 0) {
		fputs("-", f);
		return;
	}
	for (int i = 0; i < n;) {
		int j = i;
		while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
			j++;
		fprintf(f, "%s%d", i ? "," : "", cpus[i]);
		if (j > i)
			fprintf(f, "-%d", cpus[j]);
		i = j + 1;
	}
}

void cli_topo_print(FILE *out, const struct leap_topo *t, int json)
{
	int count = leap_topo_node_count(t);
	static int cpus[4096];
	if (json)
		fprintf(out, "{\"nodes\":[");
	else
		fprintf(out, "%-5s %-10s %10s %10s %-8s %s\n", "node", "cpus", "mem_MiB", "free_MiB",
			"nearest", "distances");
	int first = 1;
	for (int n = 0; n < count; n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		if (leap_topo_node(t, n, &ni) || !ni.online)
			continue;
		int nc = leap_topo_cpus(t, n, cpus, 4096);
		nc = nc < 0 ? 0 : nc > 4096 ? 4096 : nc;
		if (json) {
			fprintf(out, "%s{\"node\":%d,\"cpus\":[", first ? "" : ",", n);
			for (int i = 0; i < nc; i++)
				fprintf(out, "%s%d", i ? "," : "", cpus[i]);
			fprintf(out, "],\"has_memory\":%s,\"mem_total\":%" PRIu64 ",\"mem_free\":%" PRIu64
				",\"nearest_cpu_node\":%d,\"distances\":[",
				ni.has_memory ? "true" : "false", ni.mem_total, ni.mem_free,
				ni.nearest_cpu_node);
			for (int m = 0, k = 0; m < count; m++) {
				int d = leap_topo_distance(t, n, m);
				if (d > 0)
					fprintf(out, "%s%d", k++ ? "," : "", d);
			}
			fprintf(out, "]}");
		} else {
			char cl[64];
			FILE *f = fmemopen(cl, sizeof(cl), "w");
			cli_print_cpus(f, cpus, nc);
			fclose(f);
			fprintf(out, "%-5d %-10s %10" PRIu64 " %10" PRIu64 " %-8d", n, cl, ni.mem_total >> 20,
				ni.mem_free >> 20, ni.nearest_cpu_node);
			for (int m = 0; m < count; m++) {
				int d = leap_topo_distance(t, n, m);
				if (d > 0)
					fprintf(out, " %3d", d);
			}
			fprintf(out, "%s\n", ni.ncpus ? "" : "   (memory only)");
		}
		first = 0;
	}
	if (json)
		fprintf(out, "]}");
}

static int cmd_topo(int argc, char **argv)
{
	int json = 0;
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--measure"))
			return cmd_measure(argc, argv); /* measure_out.c */
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else
			return bad_usage("topo: unknown option '%s'", argv[i]);
	}
	struct leap_topo *t;
	int rc = leap_topo_new(&t);
	if (rc) {
		fprintf(stderr, "pageleap: cannot read the NUMA topology: %s\n", leap_strerror(rc));
		return 1;
	}
	/* what an instance gets for this user: the first thing to check when moves with
	 * writers are refused (pageleap(7), "Unprivileged operation") */
	static const char *const mode_name[] = { "none", "full", "user-mode-only" };
	struct leap_ctx *ctx;
	const char *why = "";
	int mode = leap_ctx_new(NULL, &ctx);
	if (mode == 0) {
		mode = leap_ctx_write_protect(ctx, &why);
		leap_ctx_destroy(&ctx);
	} else {
		why = *leap_errormsg() ? leap_errormsg() : leap_strerror(mode);
	}
	const char *name = mode >= 0 && mode <= 2 ? mode_name[mode] : "unavailable";
	if (json) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		if (!m) {
			leap_topo_destroy(&t);
			return 1;
		}
		cli_topo_print(m, t, 1);
		fclose(m);
		/* the topology object, with the write protection added as its last field */
		printf("%.*s,\"write_protect\":{\"mode\":", (int)(len ? len - 1 : 0), buf);
		sys_json_string(stdout, name);
		printf(",\"reason\":");
		sys_json_string(stdout, why);
		printf("}}\n");
		free(buf);
	} else {
		cli_topo_print(stdout, t, 0);
		printf("\nwrite protection: %s: %s\n", name, why);
	}
	leap_topo_destroy(&t);
	return 0;
}

/* Count per node where the kernel says the region's pages are (move_pages query). */
static int kernel_histogram(char *p, size_t np, int *hist, int count)
{
	enum { B = 4096 };
	static void *pages[B];
	static int status[B];
	for (size_t i = 0; i < np; i += B) {
		size_t n = np - i < B ? np - i : B;
		for (size_t j = 0; j < n; j++)
			pages[j] = p + (i + j) * LEAP_PAGE_SIZE;
		if (move_pages(0, (unsigned long)n, pages, NULL, status, 0) != 0)
			return -errno;
		for (size_t j = 0; j < n; j++)
			if (status[j] >= 0 && status[j] < count)
				hist[status[j]]++;
	}
	return 0;
}

static void print_hist(FILE *f, const int *hist, int count, int json)
{
	int k = 0;
	if (json)
		fprintf(f, "{");
	for (int n = 0; n < count; n++)
		if (hist[n]) {
			if (json)
				fprintf(f, "%s\"%d\":%d", k++ ? "," : "", n, hist[n]);
			else
				fprintf(f, "%s%d:%d", k++ ? " " : "", n, hist[n]);
		}
	if (json)
		fprintf(f, "}");
}

static int cmd_demo(int argc, char **argv)
{
	int json = 0;
	size_t mib = 64;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v <= 0 || v > (1 << 20))
				return bad_usage("demo: --size wants a size in MiB (1..1048576), not '%s'",
						 argv[i]);
			mib = (size_t)v;
		} else {
			return bad_usage("demo: unknown option '%s'", argv[i]);
		}
	}
	struct leap_ctx *ctx;
	int rc = leap_ctx_new(NULL, &ctx);
	if (rc) {
		fprintf(stderr, "pageleap: cannot start the library: %s\n", leap_strerror(rc));
		return 1;
	}
	const struct leap_topo *t = leap_ctx_topo(ctx);
	int count = leap_topo_node_count(t), nodes[256], nn = 0;
	for (int n = 0; n < count && nn < 256; n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		if (leap_topo_node(t, n, &ni) == 0 && ni.online && ni.has_memory)
			nodes[nn++] = n;
	}
	size_t len = mib << 20, np = len / LEAP_PAGE_SIZE;
	struct leap_region *r;
	rc = leap_region_new(ctx, len, nodes[0], &r);
	if (rc) {
		fprintf(stderr, "pageleap: cannot create a %zu MiB region on node %d: %s\n", mib,
			nodes[0], leap_strerror(rc));
		leap_ctx_destroy(&ctx);
		return 1;
	}
	char *p = leap_region_addr(r);
	for (size_t i = 0; i < np; i++)
		*(uint64_t *)(p + i * LEAP_PAGE_SIZE) = i * 2654435761u;
	/* the route: every memory node in turn, then home; on one node, relocate twice */
	int route[258], steps = 0;
	route[steps++] = nodes[0];
	for (int i = 1; i < nn; i++)
		route[steps++] = nodes[i];
	route[steps++] = nodes[0];
	if (nn == 1)
		route[steps++] = nodes[0];
	if (!json) {
		printf("pageleap demo: %zu MiB region at %p, %d memory node(s)%s\n", mib, (void *)p, nn,
		       nn == 1 ? " (one node: each step relocates to fresh pages)" : "");
		printf("%-5s %-6s %8s %9s %9s  %-24s %-24s %s\n", "step", "target", "pages", "ms",
		       "GB/s", "library nodes (node:pages)", "kernel nodes (node:pages)", "agree");
	} else {
		printf("{\"size_bytes\":%zu,\"nodes\":%d,\"steps\":[", len, nn);
	}
	int failed = 0;
	for (int s = 0; s < steps; s++) {
		int target = route[s], moved = 0;
		double dt = 0;
		if (s > 0) {
			double t0 = now();
			moved = page_leap(r, p, len, target, nn == 1 ? LEAP_RELOCATE : 0, NULL);
			dt = now() - t0;
			if (moved < 0) {
				fprintf(stderr, "pageleap: page_leap to node %d failed: %s\n", target,
					leap_strerror(moved));
				failed = 1;
				break;
			}
		}
		int lib[256] = { 0 }, ker[256] = { 0 };
		for (size_t i = 0; i < np; i++) {
			int n = leap_node_of(r, p + i * LEAP_PAGE_SIZE);
			if (n >= 0 && n < 256)
				lib[n]++;
		}
		if ((rc = kernel_histogram(p, np, ker, count < 256 ? count : 256)) != 0) {
			fprintf(stderr, "pageleap: move_pages query failed: %s\n", strerror(-rc));
			failed = 1;
			break;
		}
		int agree = !memcmp(lib, ker, sizeof(lib)) && lib[target] == (int)np;
		for (size_t i = 0; i < np; i++)
			if (*(uint64_t *)(p + i * LEAP_PAGE_SIZE) != i * 2654435761u)
				agree = 0; /* contents must survive every step */
		failed |= !agree;
		if (json) {
			printf("%s{\"step\":%d,\"target\":%d,\"pages_moved\":%d,\"seconds\":%.6f,\"library\":",
			       s ? "," : "", s, target, moved, dt);
			print_hist(stdout, lib, 256, 1);
			printf(",\"kernel\":");
			print_hist(stdout, ker, 256, 1);
			printf(",\"agree\":%s}", agree ? "true" : "false");
		} else {
			char ls[128], ks[128];
			FILE *f = fmemopen(ls, sizeof(ls), "w");
			print_hist(f, lib, 256, 0);
			fclose(f);
			f = fmemopen(ks, sizeof(ks), "w");
			print_hist(f, ker, 256, 0);
			fclose(f);
			if (s == 0)
				printf("%-5d %-6d %8s %9s %9s  %-24s %-24s %s\n", s, target, "(new)", "-",
				       "-", ls, ks, agree ? "yes" : "NO");
			else
				printf("%-5d %-6d %8d %9.2f %9.2f  %-24s %-24s %s\n", s, target, moved,
				       dt * 1e3, (double)len / dt / 1e9, ls, ks, agree ? "yes" : "NO");
		}
	}
	if (json)
		printf("],\"ok\":%s}\n", failed ? "false" : "true");
	else
		printf("%s\n", failed ? "demo FAILED: library and kernel disagree or contents changed"
				      : "every step: all pages on the target, library and kernel agree, "
					"contents intact");
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return bad_usage("%s", "missing command");
	const char *c = argv[1];
	if (!strcmp(c, "topo"))
		return cmd_topo(argc - 2, argv + 2);
	if (!strcmp(c, "demo"))
		return cmd_demo(argc - 2, argv + 2);
	if (!strcmp(c, "bench"))
		return cmd_bench(argc - 2, argv + 2);
	if (!strcmp(c, "ycsb"))
		return cmd_ycsb(argc - 2, argv + 2);
	if (!strcmp(c, "plot"))
		return cmd_plot(argc - 2, argv + 2);
	if (!strcmp(c, "version") || !strcmp(c, "--version")) {
		printf("pageleap %s\n", leap_version());
		return 0;
	}
	if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	return bad_usage("unknown command '%s'", c);
}
