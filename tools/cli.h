/*
 * cli.h - what the pageleap tool's subcommand files share. Private to tools/.
 */
#ifndef LEAP_CLI_H
#define LEAP_CLI_H

/* Print "pageleap: " + fmt (with arg) and the usage text to stderr; return 2. */
int cli_usage(const char *usage, const char *fmt, const char *arg);

int cmd_bench(int argc, char **argv); /* bench.c */
int cmd_plot(int argc, char **argv);  /* bench_out.c */
int cmd_ycsb(int argc, char **argv);  /* ycsb.c */

#endif /* LEAP_CLI_H */
