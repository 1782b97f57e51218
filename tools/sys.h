/*
 * sys.h - what the pageleap tool's benchmarks share about the machine: clocks, emulation
 * detection, anonymous memory on a node, the kernel's placement query and move_pages(),
 * and switching automatic NUMA balancing on and back. Private to tools/.
 *
 * Thread safety: all MT-Safe except sys_balancing_on()/sys_balancing_restore(), which
 * change a machine-wide setting and a process-wide signal disposition: one caller at a
 * time.
 */
#ifndef LEAP_SYS_H
#define LEAP_SYS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PG4K ((size_t)4096)
#define PG2M ((size_t)2 << 20)

/*
 * Output files (--save-json, --save-csv, --plot): a new file is created (O_EXCL, mode
 * 0644 less the umask); a file already at the name is refused (EEXIST) unless force
 * (--force), which truncates it; a symbolic link at the name is never written through
 * (ELOOP), even with force. sys_create() returns NULL with errno set; sys_may_create()
 * says in advance (0 or -errno) so a long run fails before it starts; sys_say_create()
 * prints why a create failed, naming --force where it would help.
 */
FILE *sys_create(const char *path, bool force);
int sys_may_create(const char *path, bool force);
void sys_say_create(const char *cmd, const char *path, int err);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t sys_now_ns(void);
/* True under QEMU's software emulation (TCG): its timings are not hardware timings.
 * LEAP_EMULATED=1|0 overrides the CPUID check. */
bool sys_emulated(void);
/* Anonymous memory of len bytes, 2 MiB aligned, not populated; huge asks for transparent
 * huge pages, otherwise they are refused. node >= 0 binds it there (MPOL_BIND). NULL on
 * failure. */
char *sys_anon_map(size_t len, bool huge, int node);
/* Pages of [p, p+len) (in units of pgsz) the kernel reports on a node other than node;
 * every page when the query fails. step > 1 asks about every step-th page only (the
 * answer then counts sampled pages). */
uint64_t sys_pages_not_on(const char *p, size_t len, size_t pgsz, int node, size_t step);
/* move_pages() of [p, p+len) to node in batches of `batch` pages (0: all in one call),
 * retrying -EBUSY/-EAGAIN pages up to three times; stops after budget_ms when set
 * (> 0). moved, when not NULL, grows by the pages of each call that reached node as the
 * calls return. Returns the pages not moved; *err gets a hard error's -errno. */
uint64_t sys_move_pages(char *p, size_t len, size_t pgsz, int node, unsigned batch,
			double budget_ms, _Atomic uint64_t *moved, int *err);
/* An integer from / into a one-line /proc or /sys file; -1 / -errno on failure. */
int sys_read_int(const char *path);
int sys_write_int(const char *path, int v);
/* Switch automatic NUMA balancing on (numa_balancing = 1). Returns the old setting to
 * hand to sys_balancing_restore(), or -1 with *why set (no such kernel knob, or not
 * root). Until restored, SIGINT/SIGTERM/SIGHUP put the old setting back and then kill
 * the process as before: a benchmark killed by a timeout leaves the machine as it was. */
int sys_balancing_on(const char **why);
void sys_balancing_restore(int old);

/* s as a JSON string (quotes, backslashes and control characters escaped). */
void sys_json_string(FILE *f, const char *s);
/* v as a JSON number (%.6g), or null for NaN and infinities (JSON has neither). */
void sys_json_num(FILE *f, double v);
/* "Linux RELEASE MACHINE" from uname(2) into buf (left as it is if uname fails): the
 * kernel line of the reports. */
void sys_kernel_name(char *buf, size_t len);
/* s as a gnuplot string literal (single quotes, a quote inside written twice). */
void sys_gp_string(FILE *f, const char *s);
/* Run gnuplot on a script; its expected warnings (no points, empty x range) are
 * filtered out of its stderr. 0, -ENOENT (no gnuplot), -EIO (it failed), -errno. */
int sys_gnuplot(const char *script);

#endif /* LEAP_SYS_H */
