/*
 * sys.c - the machine as the tool's benchmarks see it (see sys.h).
 */
#include "sys.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <numaif.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

uint64_t sys_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Under QEMU's software emulation (TCG) every timing is emulated: say so in the output.
 * TCG answers the hypervisor CPUID leaf with "TCGTCGTCGTCG"; LEAP_EMULATED overrides. */
bool sys_emulated(void)
{
	const char *e = getenv("LEAP_EMULATED");
	if (e && *e)
		return *e == '1' || *e == 'y';
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false; /* no hypervisor */
	__cpuid(0x40000000, a, b, c, d);
	char sig[13];
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = 0;
	return !strcmp(sig, "TCGTCGTCGTCG");
#else
	return false;
#endif
}

/* Anonymous memory of len bytes, 2 MiB aligned, not populated; huge asks for transparent
 * huge pages, otherwise they are refused so 4 KiB rows really are 4 KiB pages. node >= 0
 * binds it there (MPOL_BIND). NULL on failure. */
char *sys_anon_map(size_t len, bool huge, int node)
{
	size_t span = len + PG2M;
	char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	char *p = (char *)(((uintptr_t)raw + PG2M - 1) & ~(uintptr_t)(PG2M - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (p + len < raw + span)
		munmap(p + len, (size_t)(raw + span - (p + len)));
	madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (node >= 0) {
		unsigned long mask[16] = { 0 };
		mask[node / 64] |= 1ul << (node % 64);
		if (mbind(p, len, MPOL_BIND, mask, 1024, 0)) {
			munmap(p, len);
			return NULL;
		}
	}
	return p;
}

/* Pages of the range (in units of pgsz) the kernel reports on a node other than node. */
uint64_t sys_pages_not_on(const char *p, size_t len, size_t pgsz, int node, size_t step)
{
	enum { B = 1024 };
	void *pages[B];
	int status[B];
	uint64_t off = 0;
	if (step == 0)
		step = 1;
	size_t total = (len / pgsz + step - 1) / step; /* pages asked about */
	for (size_t i = 0; i < total; i += B) {
		size_t n = total - i < B ? total - i : B;
		for (size_t j = 0; j < n; j++)
			pages[j] = (char *)p + (i + j) * step * pgsz;
		if (move_pages(0, (unsigned long)n, pages, NULL, status, 0))
			return total;
		for (size_t j = 0; j < n; j++)
			off += status[j] != node;
	}
	return off;
}

/* move_pages() in batches of `batch` pages (0: all), retrying -EBUSY/-EAGAIN pages up to
 * three times; stops after budget_ms when set. Returns pages not moved. */
uint64_t sys_move_pages(char *p, size_t len, size_t pgsz, int node, unsigned batch,
			double budget_ms, _Atomic uint64_t *moved, int *err)
{
	size_t n = len / pgsz;
	void **pages = malloc(n * sizeof(*pages));
	int *nodes = malloc(n * sizeof(*nodes)), *status = malloc(n * sizeof(*status));
	if (!pages || !nodes || !status) {
		free(pages), free(nodes), free(status);
		*err = -ENOMEM;
		return n;
	}
	size_t step = batch ? batch : n;
	uint64_t t0 = sys_now_ns(), left = 0;
	size_t todo = n;
	for (size_t i = 0; i < n; i++) {
		pages[i] = p + i * pgsz;
		nodes[i] = node;
		status[i] = -EBUSY;
	}
	for (int attempt = 0; attempt < 4 && todo; attempt++) {
		size_t k = 0;
		for (size_t i = 0; i < todo; i += step) {
			size_t cnt = todo - i < step ? todo - i : step;
			if (budget_ms > 0 && (double)(sys_now_ns() - t0) * 1e-6 > budget_ms)
				break;
			long rc = move_pages(0, cnt, pages + i, nodes + i, status + i, MPOL_MF_MOVE);
			if (rc < 0 && errno != EBUSY && errno != EAGAIN) {
				*err = -errno;
				break;
			}
			if (moved) {
				uint64_t here = 0;
				for (size_t j = i; j < i + cnt; j++)
					here += status[j] == node;
				atomic_fetch_add_explicit(moved, here, memory_order_relaxed);
			}
		}
		/* keep the pages worth another try at the front: busy ones, and ones the
		 * budget stopped before (status still -EBUSY from the initialisation) */
		for (size_t i = 0; i < todo; i++)
			if (status[i] == -EBUSY || status[i] == -EAGAIN) {
				pages[k] = pages[i];
				status[k++] = -EBUSY;
			}
		if (budget_ms > 0 && (double)(sys_now_ns() - t0) * 1e-6 > budget_ms) {
			todo = k;
			break;
		}
		todo = k;
	}
	left = todo;
	free(pages), free(nodes), free(status);
	return left;
}

FILE *sys_create(const char *path, bool force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (force ? O_TRUNC : O_EXCL),
		      0644);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

int sys_may_create(const char *path, bool force)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0; /* nothing there (or the create will say what is wrong) */
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	return force && S_ISREG(st.st_mode) ? 0 : -EEXIST;
}

void sys_say_create(const char *cmd, const char *path, int err)
{
	if (err == EEXIST)
		fprintf(stderr, "pageleap: %s: %s exists: not overwritten (--force replaces it)\n",
			cmd, path);
	else if (err == ELOOP)
		fprintf(stderr, "pageleap: %s: %s is a symbolic link: not written through\n", cmd,
			path);
	else
		fprintf(stderr, "pageleap: %s: cannot write %s: %s\n", cmd, path, strerror(err));
}

int sys_read_int(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

int sys_write_int(const char *path, int v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	int rc = fprintf(f, "%d\n", v) < 0 ? -EIO : 0;
	return fclose(f) ? -errno : rc;
}

static const char nb_path[] = "/proc/sys/kernel/numa_balancing";
static volatile sig_atomic_t nb_old = -1; /* to restore on a signal, -1: nothing */

/* Killed while balancing is switched on (a test's timeout, ^C): put the machine's
 * setting back, then die of the signal as before. Async-signal-safe calls only. */
static void nb_restore_and_die(int sig)
{
	if (nb_old >= 0 && nb_old <= 9) {
		int fd = open(nb_path, O_WRONLY);
		if (fd >= 0) {
			char v[2] = { (char)('0' + nb_old), '\n' };
			if (write(fd, v, 2) < 0) {
				/* nothing more can be done here */
			}
			close(fd);
		}
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int nb_sigs[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction nb_before[3];

int sys_balancing_on(const char **why)
{
	int old = sys_read_int(nb_path);
	if (old < 0) {
		*why = "kernel without numa_balancing";
		return -1;
	}
	struct sigaction sa = { .sa_handler = nb_restore_and_die };
	nb_old = old;
	for (int i = 0; i < 3; i++)
		sigaction(nb_sigs[i], &sa, &nb_before[i]);
	if (sys_write_int(nb_path, 1)) {
		sys_balancing_restore(old);
		*why = "cannot enable numa_balancing (needs root)";
		return -1;
	}
	return old;
}

void sys_balancing_restore(int old)
{
	sys_write_int(nb_path, old);
	for (int i = 0; i < 3; i++)
		sigaction(nb_sigs[i], &nb_before[i], NULL);
	nb_old = -1;
}

void sys_gp_string(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		fprintf(f, *s == '\'' ? "''" : "%c", *s);
	fputc('\'', f);
}

int sys_gnuplot(const char *script)
{
	/* gnuplot warns about every line a plot has no point for and about an empty x
	 * range (one size, one slice): those are expected; pass its other messages on */
	int pfd[2];
	if (pipe(pfd))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]), close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]), close(pfd[1]);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		fprintf(stderr, "pageleap: cannot run gnuplot (install gnuplot-nox): %s\n",
			strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	FILE *err = fdopen(pfd[0], "r");
	char line[1024];
	while (err && fgets(line, sizeof(line), err))
		if (!strstr(line, "no valid points") && !strstr(line, "empty x range"))
			fputs(line, stderr);
	if (err)
		fclose(err);
	else
		close(pfd[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 127)
		return -ENOENT;
	return WEXITSTATUS(st) ? -EIO : 0;
}

void sys_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void sys_json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

void sys_kernel_name(char *buf, size_t len)
{
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(buf, len, "Linux %s %s", u.release, u.machine);
}
