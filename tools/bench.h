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

struct bench;	     /* bench.c: the run's state */
struct bench_row;    /* bench.c: one row's memory, shared by its moves */
struct bench_sample; /* bench.c: what one measured move gave */
struct bench_result;
struct hist;

/* What a method is and promises (bench_method.caps). The JSON report lists each method
 * with these by name (bench_cap_names), so checks go by capability, not by method name. */
enum {
	BENCH_PAGE_LEAP = 1u << 0,	 /* "page_leap": the library's move: reports extents,
					    granularity and metadata; loses no write, leaves no page */
	BENCH_KEEPS_WRITES = 1u << 1,	 /* "keeps_writes": no write made during the move is lost */
	BENCH_BASE_MOVE_PAGES = 1u << 2, /* "baseline_move_pages": what vs_move_pages divides by */
	BENCH_BASE_MEMCPY = 1u << 3,	 /* "baseline_memcpy": what vs_memcpy divides by */
	BENCH_ONE_REP = 1u << 4,	 /* "one_rep": one measured move, no warm-up (seconds each) */
	BENCH_TARGET_CPUS = 1u << 5,	 /* "target_cpus": needs CPUs on the target node */
	BENCH_BALANCING = 1u << 6,	 /* "balancing": switches numa_balancing on (the knob, root) */
	BENCH_MAY_TIME_OUT = 1u << 7,	 /* "may_time_out": waits on the kernel, may move nothing */
	BENCH_NCAPS = 8
};
extern const char *const bench_cap_names[BENCH_NCAPS];

/* One row of bench_methods[]: a new method is a row and its functions. */
struct bench_method {
	const char *name;	 /* no spaces: also a gnuplot word and a CSV field */
	const char *what;	 /* one line for the table legend */
	unsigned needs_nodes;	 /* 2: only between two nodes (one node: "needs 2 nodes"); 0 = 1 */
	unsigned caps;		 /* BENCH_* */
	const char *no_writers;	 /* why it has no rows with writers; NULL: it has them */
	unsigned scaled;	 /* SCALED_*: what the emulated --full leaves out of it */
	bool quick;		 /* part of --quick */
	size_t gran;		 /* page_leap: fixed granularity in bytes, 0 = adaptive */
	bool cold;		 /* page_leap: target pool emptied before every move */
	unsigned batch;		 /* move_pages: pages per call, 0 = all at once */
	/* The row's memory, made once before its moves (NULL: none). 0, or -1 with r->status
	 * saying why the row has no figures. */
	int (*setup)(struct bench *b, const struct bench_method *m, struct bench_row *row,
		     struct bench_result *r);
	/* One move, timed into s (s->err set when it could not be measured); the writers'
	 * (nw of them) stalls go into stalls. */
	void (*sample)(struct bench *b, const struct bench_method *m, struct bench_row *row,
		       unsigned nw, struct bench_sample *s, struct hist *stalls);
	/* For sample = kernel_sample: the move itself, on fresh memory. 0 or -errno. */
	int (*move)(struct bench *b, const struct bench_method *m, char *p, size_t len, bool huge);
	/* Undo setup after the row's moves (NULL: nothing to undo); may add to r. */
	void (*teardown)(struct bench *b, struct bench_row *row, struct bench_result *r);
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
	bool force;			  /* --force: replace existing output files */
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
int bench_plot(const char *csv, const char *dir, const char *title, bool force);

#endif /* LEAP_BENCH_H */
