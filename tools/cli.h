/*
 * cli.h - what the pageleap tool's subcommand files share. Private to tools/.
 */
#ifndef LEAP_CLI_H
#define LEAP_CLI_H

#include <stdio.h>

struct leap_topo;

/* Print "pageleap: " + fmt (with arg) and the usage text to stderr; return 2. */
int cli_usage(const char *usage, const char *fmt, const char *arg);

int cmd_bench(int argc, char **argv); /* bench.c */
int cmd_plot(int argc, char **argv);  /* bench_out.c */
int cmd_ycsb(int argc, char **argv);  /* ycsb.c */
int cmd_measure(int argc, char **argv); /* measure_out.c: topo --measure */

/* pageleap.c: a CPU list compactly (0-3,8,10-11; "-" for none), and what `pageleap topo`
 * prints (the table, or one JSON object {"nodes":[...]} without a newline). */
void cli_print_cpus(FILE *f, const int *cpus, int n);
void cli_topo_print(FILE *f, const struct leap_topo *t, int json);

#endif /* LEAP_CLI_H */
