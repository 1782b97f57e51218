/*
 * bench.h - `pageleap bench`: page_leap() side by side with move_pages() (whole and in
 * batches), mbind(MPOL_MF_MOVE), a naive copy + mremap, automatic NUMA balancing and
 * memcpy, on the same memory in one run. Private to the CLI (tools/).
 *
 *   bench.c      the plan, the methods and their measurement
 *   bench_out.c  the human table, JSON, CSV, the targets and the gnuplot plots
 */
#ifndef LEAP_BENCH_H
#define LEAP_BENCH_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_SIZES 16
#define BENCH_MAX_WRITERS 16
#define BENCH_MAX_LIST 8

enum bench_kind {
	BK_PAGE_LEAP,	 /* page_leap(), adaptive or fixed granularity, warm or cold pool */
	BK_MOVE_PAGES,	 /* move_pages(), whole range or in batches */
	BK_MBIND,	 /* mbind(MPOL_BIND, MPOL_MF_MOVE) */
	BK_COPY_MREMAP,	 /* copy into new memory, mremap(MREMAP_FIXED) over the old */
	BK_AUTONUMA,	 /* automatic NUMA balancing, threads on the target touching the data */
	BK_MEMCPY	 /* memcpy between pre-faulted buffers: the physical limit */
};

struct bench_method {
	const char *name;  /* no spaces: also a gnuplot word and a CSV field */
	const char *what;  /* one line for the table legend */
	enum bench_kind kind;
	size_t gran;	   /* page_leap: fixed granularity in bytes, 0 = adaptive */
	bool cold;	   /* page_leap: target pool emptied before every move */
	unsigned batch;	   /* move_pages: pages per call, 0 = all at once */
	bool quick;	   /* part of --quick */
};

extern const struct bench_method bench_methods[];
extern const size_t bench_nmethods;

struct bench_stall {
	uint64_t count;	/* writes that took longer than BENCH_STALL_NS */
	double p50_us, p90_us, p99_us, p999_us, max_us;
};
/* A write slower than this counts as a stall (a plain store takes nanoseconds). */
#define BENCH_STALL_NS 5000u

/* One row: a method on one page size, region size and writer count. */
struct bench_result {
	const struct bench_method *m;
	unsigned page_kib, size_mib, writers;
	char status[128];	/* "ok", or why there are no figures */
	int reps;
	double gbps_med, gbps_min, gbps_max;
	double seconds;		/* median time of one move */
	double pages_per_s;	/* pages of page_kib moved per second (median) */
	uint64_t pages;		/* pages of page_kib in the range */
	uint64_t pages_left;	/* most pages not on the target after one move */
	uint64_t lost_writes;	/* over every repetition */
	double cpu_s;		/* median CPU time of one move, writer threads excluded */
	struct bench_stall stall;
	double vs_move_pages, vs_memcpy; /* NaN where there is nothing to compare with */
	double meta_per_page;	/* page_leap: library bytes per 4 KiB page; else NaN */
	/* page_leap, last measured move: copy-and-remap steps and their sizes (KiB) */
	uint64_t extents, gran_min_kib, gran_max_kib, gran_last_kib;
};

struct bench_config {
	bool quick;
	int from, to;			/* nodes */
	unsigned reps, warmup;
	unsigned sizes_mib[BENCH_MAX_SIZES], nsizes;
	unsigned writers[BENCH_MAX_LIST], nwriters;
	unsigned page_kib[2], npage;
	unsigned writers_size_mib;	/* the size runs with writers use */
	double budget_ms;		/* move_pages batches: stop after this long (0: never) */
	double autonuma_timeout_s;
	double max_move_s;		/* a method slower than this per move skips larger sizes */
	double row_budget_s;		/* a row stops after this much measured time */
	bool method_on[64];
	/* --full under emulation: scaled down to finish in the guests (see bench_scaled) */
	bool scaled;
	unsigned char scaled_out[64];	/* per method: SCALED_* rows not run, and say why */
	bool json, csv, progress, row_log;
	const char *plot_dir;
	const char *save_json, *save_csv; /* also written there */
};

/* What the emulated full run leaves out of a method (bench_config.scaled_out). */
#define SCALED_METHOD 1u	/* every row: the method is not run */
#define SCALED_WRITERS 2u	/* its rows with writers */
#define SCALED_REASON "skipped under emulation; run on hardware"

/* What bench_out needs to know of the machine. */
struct bench_machine {
	char kernel[192];
	int nodes, memory_nodes, cpus;
	bool emulated;
};

/* bench_out.c */
void bench_finish(struct bench_result *res, size_t n);
void bench_print_table(FILE *f, const struct bench_config *c, const struct bench_machine *mc,
		       const struct bench_result *res, size_t n);
void bench_print_json(FILE *f, const struct bench_config *c, const struct bench_machine *mc,
		      const struct bench_result *res, size_t n);
void bench_print_csv(FILE *f, const struct bench_machine *mc, const struct bench_result *res,
		     size_t n);
/* Write DIR/bench.gp and run gnuplot on csv: PNG and SVG plots in dir. 0 or -errno. */
int bench_plot(const char *csv, const char *dir, const char *title);

#endif /* LEAP_BENCH_H */
