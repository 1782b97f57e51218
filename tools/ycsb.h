/*
 * ycsb.h - `pageleap ycsb`: a main-memory B+-tree serving a YCSB workload while its pages
 * migrate between NUMA nodes, one run per migration method, side by side. Private to the
 * CLI (tools/).
 *
 *   ycsb.c      the scenario: partitions, loading, worker threads, the methods, checks
 *   ycsb_out.c  the human table, JSON, the timeline data and its gnuplot plot
 *   btree.c     the tree;  keygen.c  YCSB's key choosers
 */
#ifndef LEAP_YCSB_H
#define LEAP_YCSB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define YCSB_MAX_NODES 64

struct run;	/* ycsb.c: one method's run */
struct part;	/* ycsb.c: one partition: its tree, memory and migration */
struct ycsb_result;

/* What a method is (ycsb_method.caps); the JSON lists them by name (ycsb_cap_names). */
enum {
	YCSB_MIGRATES = 1u << 0,	/* "migrates": the partitions move during the run */
	YCSB_STARTS_LOCAL = 1u << 1,	/* "starts_local": loaded on the threads' node */
	YCSB_BASE_MOVE_PAGES = 1u << 2, /* "baseline_move_pages": what vs_move_pages divides by */
	YCSB_BASE_NONE = 1u << 3,	/* "baseline_none": what vs_none divides by */
	YCSB_NCAPS = 4
};
extern const char *const ycsb_cap_names[YCSB_NCAPS];

/* One row of ycsb_methods[]: a new method is a row and its functions. A method that
 * migrates has start, poll and stop; a baseline has none of them. */
struct ycsb_method {
	const char *name; /* no spaces: a JSON value and a gnuplot title */
	const char *what;
	unsigned needs_nodes;	/* nodes with CPUs it needs (0 = 1) ... */
	const char *one_node;	/* ... and its status with fewer (NULL: "needs 2 nodes") */
	unsigned caps;		/* YCSB_* */
	bool dflt;		/* run when no --method is given */
	unsigned batch;		/* move_pages: pages per call, 0 = the whole partition */
	size_t gran;		/* page_leap: fixed extent size in bytes, 0 = adaptive */
	/* The partition's memory, p->cap bytes, its loaded part [0, p->load_end) on node
	 * `on`; the rest on the threads' node when room_local. 0 or -errno with err set. */
	int (*map)(struct run *run, struct part *p, int on, bool room_local, char *err,
		   size_t errlen);
	/* Start migrating every partition to its threads' node. 0 or -errno with err set. */
	int (*start)(struct run *run, char *err, size_t errlen);
	/* Add p's pages on their target so far to *moved; clear *all if p is not done yet.
	 * False: an estimate between samples, p's end time not read this time. */
	bool (*poll)(struct run *run, struct part *p, bool slice_edge, uint64_t *moved, bool *all);
	/* After the workers stopped: end the migration, count what it moved into r. */
	void (*stop)(struct run *run, struct ycsb_result *r);
	/* NULL, or pages moved from r->pages_left once that is known (after stop). */
	uint64_t (*moved)(const struct ycsb_result *r);
};
extern const struct ycsb_method ycsb_methods[];
extern const size_t ycsb_nmethods;

enum { PH_BEFORE, PH_DURING, PH_AFTER, PH_N }; /* the run's phases */

struct ycsb_config {
	char workload;		/* 'a', 'b', 'c' or 'e' */
	bool zipf;
	uint64_t keys;		/* over all partitions */
	unsigned threads;	/* worker threads per partition (per node with CPUs) */
	double warmup_s, after_s, max_migrate_s, slice_s, fill;
	bool method_on[16];
	bool json, progress;
	const char *plot_dir, *save_json;
	bool force; /* --force: replace existing output files */
	uint64_t seed;
};

struct ycsb_slice {
	double t;	   /* end of the slice, s since the workers started */
	double kops;	   /* thousand operations per second in the slice */
	double migrated;   /* fraction of the pages on their target at the slice's end */
};

struct ycsb_result {
	const struct ycsb_method *m;
	char status[160];	/* "ok", or why the method has no figures */
	bool ran, finished;	/* finished: migration done (or none to do) */
	double mig_start, mig_end; /* s since the workers started (end: NaN if unfinished) */
	double kops[PH_N];	/* throughput per phase (during: the migration's window) */
	double kops_window;	/* over [start, start + longest migration of the run] */
	double vs_move_pages, vs_none; /* during-migration throughput ratios, NaN if none */
	double p50_us[PH_N], p99_us[PH_N];
	uint64_t pages, pages_moved, pages_left;
	uint64_t keys_loaded, keys_final, inserts, inserts_refused;
	uint64_t missing_reads, bad_scans, lost_values, restarts;
	bool invariants_ok;
	char check[200];	/* the first violation found, or "ok" */
	uint64_t extents, gran_min_kib, gran_max_kib; /* page_leap */
	struct ycsb_slice *slices;
	size_t nslices;
};

struct ycsb_machine {
	char kernel[192];
	int nodes, cpu_nodes, cpus, partitions;
	bool emulated;
};

/* ycsb_out.c */
void ycsb_finish(struct ycsb_result *res, size_t n);
void ycsb_print_table(FILE *f, const struct ycsb_config *c, const struct ycsb_machine *mc,
		      const struct ycsb_result *res, size_t n);
void ycsb_print_json(FILE *f, const struct ycsb_config *c, const struct ycsb_machine *mc,
		     const struct ycsb_result *res, size_t n);
/* DIR/timeline.dat, DIR/ycsb.gp and gnuplot's DIR/timeline.{png,svg}. 0 or -errno. */
int ycsb_plot(const char *dir, const struct ycsb_config *c, const struct ycsb_machine *mc,
	      const struct ycsb_result *res, size_t n);

#endif /* LEAP_YCSB_H */
