/*
 * fuzz_cli.c - libFuzzer harness for the CLI's argument parsing (every subcommand of
 * `pageleap`). The input is an argument vector, one argument per line; the CLI's own
 * main() (tools/pageleap.c, compiled in as pageleap_main) runs it in a forked child,
 * in a scratch directory, stdin and stdout on /dev/null, stderr captured. What must hold:
 *   - the child exits 0, 1 or 2, or is still running after FUZZ_CLI_MS (default 500 ms:
 *     a valid command doing real work; it is then stopped with SIGTERM, which puts back
 *     any system setting it switched, then SIGKILL);
 *   - exit 2 comes with a message on stderr, "pageleap: " and what is wrong;
 *   - no signal, no sanitizer report (the child's ASan/UBSan death callback marks it);
 *   - the system settings the CLI may switch (numa_balancing, shmem THP) are as before.
 * Coverage: the child copies its coverage counters into shared memory when it exits,
 * and the parent merges them into its own, so libFuzzer sees what the child reached.
 * Arguments with '/' or ".." are rewritten (output files stay in the scratch directory).
 * Threads: the fuzzer's thread; the child is single-threaded until the CLI starts any.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int pageleap_main(int argc, char **argv);
void __sanitizer_set_death_callback(void (*callback)(void));

/* libFuzzer's inline 8-bit counters (-fsanitize=fuzzer): one section for the program */
extern uint8_t __start___sancov_cntrs[] __attribute__((weak, visibility("hidden")));
extern uint8_t __stop___sancov_cntrs[] __attribute__((weak, visibility("hidden")));

#define MAX_ARGS 24
#define MAX_ARG 96

struct shared {
	int died; /* the child's sanitizer reported */
	int counters_valid;
	uint8_t counters[];
};

static struct shared *sh;
static size_t ncounters;
static char scratch[64];
static char saved_nb[32], saved_thp[128];
static long limit_ms = 500;

static void read_file(const char *path, char *buf, size_t n)
{
	buf[0] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	ssize_t r = read(fd, buf, n - 1);
	buf[r > 0 ? r : 0] = 0;
	close(fd);
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0) {
			/* reported by the caller's abort */
		}
		close(fd);
	}
}

static const char nb_path[] = "/proc/sys/kernel/numa_balancing";
static const char thp_path[] = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

static void remove_scratch(void)
{
	rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	const char *ms = getenv("FUZZ_CLI_MS");
	if (ms && atol(ms) > 0)
		limit_ms = atol(ms);
	ncounters = (size_t)(__stop___sancov_cntrs - __start___sancov_cntrs);
	sh = mmap(NULL, sizeof(*sh) + ncounters, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	if (sh == MAP_FAILED)
		abort();
	snprintf(scratch, sizeof(scratch), "/tmp/pageleap-fuzz-cli-%d", (int)getpid());
	if (mkdir(scratch, 0700) && errno != EEXIST)
		abort();
	atexit(remove_scratch);
	read_file(nb_path, saved_nb, sizeof(saved_nb));
	read_file(thp_path, saved_thp, sizeof(saved_thp));
	return 0;
}

static void child_died(void)
{
	sh->died = 1;
}

static void child_exit(int status, void *arg)
{
	(void)arg;
	memcpy(sh->counters, __start___sancov_cntrs, ncounters);
	sh->counters_valid = 1;
	_exit(status); /* before the sanitizers' own exit work (a leak check of a CLI run) */
}

/* stopped after the time limit: keep what it reached (a command that switched a system
 * setting installs its own handler, which puts the setting back, and no coverage) */
static void child_term(int sig)
{
	(void)sig;
	memcpy(sh->counters, __start___sancov_cntrs, ncounters);
	sh->counters_valid = 1;
	_exit(128 + SIGTERM);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* wait for the child, at most ms; 1 with *status, 0 if still running */
static int wait_ms(pid_t pid, int *status, long ms)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			abort();
		if (elapsed_ms(&t0) >= ms)
			return 0;
		struct timespec d = { 0, 1000000 };
		nanosleep(&d, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char args[MAX_ARGS][MAX_ARG];
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	argv[argc++] = "pageleap";
	size_t i = 0;
	while (i < size && argc <= MAX_ARGS) {
		char *a = args[argc - 1];
		size_t n = 0;
		while (i < size && data[i] != '\n') {
			char c = (char)data[i++];
			if (c == '/' || c == 0)
				c = '_';
			if (n + 1 < MAX_ARG)
				a[n++] = c;
		}
		i++;
		a[n] = 0;
		for (char *d; (d = strstr(a, ".."));)
			d[0] = d[1] = '_';
		argv[argc++] = a;
	}
	argv[argc] = NULL;

	int errfd = memfd_create("fuzz-cli-stderr", 0);
	if (errfd < 0)
		abort();
	sh->died = 0;
	sh->counters_valid = 0;
	fflush(stdout), fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGTERM, child_term);
		signal(SIGINT, SIG_DFL);
		int nul = open("/dev/null", O_RDWR);
		if (nul < 0 || chdir(scratch))
			_exit(99);
		dup2(nul, 0), dup2(nul, 1), dup2(errfd, 2);
		__sanitizer_set_death_callback(child_died);
		on_exit(child_exit, NULL);
		exit(pageleap_main(argc, argv));
	}
	setpgid(pid, pid);
	int status = 0;
	int ended = wait_ms(pid, &status, limit_ms);
	if (!ended) { /* real work: stop it the way a user would, then for good */
		kill(-pid, SIGTERM);
		if (!wait_ms(pid, &status, 2000)) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
	kill(-pid, SIGKILL); /* anything it started (gnuplot) */

	char err[4096];
	ssize_t n = pread(errfd, err, sizeof(err) - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(errfd);
	nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS);

	if (getenv("FUZZ_CLI_DEBUG")) {
		size_t nz = 0;
		for (size_t k = 0; k < ncounters; k++)
			nz += sh->counters[k] != 0;
		fprintf(stderr, "child: status %#x valid %d counters %zu nonzero %zu\n", status,
			sh->counters_valid, ncounters, nz);
	}
	if (sh->counters_valid)
		for (size_t k = 0; k < ncounters; k++)
			if (sh->counters[k] > __start___sancov_cntrs[k])
				__start___sancov_cntrs[k] = sh->counters[k];

	char why[160] = "";
	if (sh->died)
		snprintf(why, sizeof(why), "sanitizer report in the child");
	else if (ended && WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
	else if (ended && WIFEXITED(status) && WEXITSTATUS(status) > 2)
		snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(status));
	else if (ended && WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
		 (strncmp(err, "pageleap: ", 10) || err[10] == '\n' || err[10] == 0))
		snprintf(why, sizeof(why), "exit 2 without a message naming the problem");
	if (!ended) {
		char nb[32], thp[128];
		read_file(nb_path, nb, sizeof(nb));
		read_file(thp_path, thp, sizeof(thp));
		if (strcmp(nb, saved_nb) || strcmp(thp, saved_thp)) {
			write_file(nb_path, saved_nb);
			if (strchr(saved_thp, '[')) { /* "always [advise] never": the word in [] */
				char w[32] = "";
				sscanf(strchr(saved_thp, '[') + 1, "%31[^]]", w);
				write_file(thp_path, w);
			}
			snprintf(why, sizeof(why), "stopped, and left a system setting switched");
		}
	}
	if (why[0]) {
		fprintf(stderr, "fuzz_cli: %s; arguments:", why);
		for (int k = 1; k < argc; k++)
			fprintf(stderr, " '%s'", argv[k]);
		fprintf(stderr, "\n--- its stderr ---\n%s\n---\n", err);
		abort();
	}
	return 0;
}
