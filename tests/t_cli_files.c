/*
 * t_cli_files: the files the pageleap CLI writes (--save-json, --save-csv, --plot) never
 * replace a file they did not create and never write through a symbolic link. Named cases:
 *   bench_new_file     a new --save-json / --save-csv file is created (mode 0644 under umask
 *                      022) and holds the report;
 *   bench_refuses      an existing file is refused (exit 1, stderr names it and --force,
 *                      its contents unchanged); with --force it is replaced;
 *   bench_symlink      a symlink at the name is refused, with or without --force, and its
 *                      target (dangling) is not created;
 *   plot_refuses       pageleap plot CSV DIR with DIR/bench.gp present: refused, unchanged;
 *   ycsb_refuses       ycsb --save-json FILE and --plot DIR over existing files: refused
 *                      before the run (nothing else is started);
 *   topo_refuses       topo --measure --save-json FILE over an existing file: refused
 *                      before measuring.
 * The CLI is found as clijson.h says (tests/clijson.h).
 */
/* clijson.h's JSON checks are not all used here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "clijson.h"

#include <sys/stat.h>

static char cli_buf[PATH_MAX];
static const char *cli;
static char dir[] = "/tmp/leap-cli-files-XXXXXX";
static char err[400]; /* the start of its stderr */

/* Run the CLI with args (NULL-terminated, after "pageleap"); stdout to /dev/null, stderr
 * kept in err[]. Returns the exit status (128 + signal if killed). */
static int run(const char *const *args)
{
	char *argv[32] = { "pageleap" };
	int n = 1;
	for (; *args && n < 31; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	char errpath[300];
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int o = open("/dev/null", O_WRONLY), e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		execv(cli, argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		CHECK(errno == EINTR, "waitpid: %s", strerror(errno));
	FILE *f = fopen(errpath, "r");
	size_t k = f ? fread(err, 1, sizeof(err) - 1, f) : 0;
	err[k] = 0;
	if (f)
		fclose(f);
	unlink(errpath);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/* The file holds exactly text. */
static void holds(const char *path, const char *text)
{
	char buf[256] = "";
	FILE *f = fopen(path, "r");
	CHECK(f != NULL, "%s is gone", path);
	size_t k = fread(buf, 1, sizeof(buf) - 1, f);
	buf[k] = 0;
	fclose(f);
	CHECK(!strcmp(buf, text), "%s was changed: it holds '%.40s'", path, buf);
}

static void refused(int rc, const char *path, const char *what)
{
	CHECK(rc == 1, "%s: exit %d, want 1 (stderr: %s)", what, rc, err);
	CHECK(strstr(err, path) != NULL, "%s: stderr does not name %s: %s", what, path, err);
}

/* The smallest bench: one 1 MiB row of memcpy, no warm-up */
#define BENCH "bench", "--quick", "--sizes", "1", "--methods", "memcpy", "--reps", "1", \
	      "--warmup", "0", "--no-progress"

CASE(bench_new_file)
{
	char json[300], csv[300];
	path_of(json, sizeof(json), "new.json");
	path_of(csv, sizeof(csv), "new.csv");
	unlink(json);
	unlink(csv);
	umask(022);
	int rc = run((const char *[]){ BENCH, "--save-json", json, "--save-csv", csv, NULL });
	CHECK(rc == 0, "bench with new files: exit %d: %s", rc, err);
	struct stat st;
	CHECK(stat(json, &st) == 0 && (st.st_mode & 07777) == 0644, "new JSON file mode %o",
	      (unsigned)(st.st_mode & 07777));
	int fd = open(json, O_RDONLY);
	CHECK(fd >= 0, "open %s: %s", json, strerror(errno));
	size_t len;
	char *text = slurp(fd, &len);
	close(fd);
	struct jv root;
	parse_json(text, len, &root); /* strict: a syntax error fails */
	CHECK(root.t == J_OBJ, "the JSON file holds no object");
	jfree(&root);
	free(text);
	CHECK(stat(csv, &st) == 0 && st.st_size > 0, "the CSV file is empty");
	unlink(json);
	unlink(csv);
}

CASE(bench_refuses)
{
	char json[300];
	path_of(json, sizeof(json), "taken.json");
	put(json, "the user's\n");
	int rc = run((const char *[]){ BENCH, "--save-json", json, NULL });
	refused(rc, json, "bench --save-json over a file");
	CHECK(strstr(err, "--force"), "the refusal does not say --force: %s", err);
	holds(json, "the user's\n");
	char csv[300];
	path_of(csv, sizeof(csv), "taken.csv");
	put(csv, "x\n");
	rc = run((const char *[]){ BENCH, "--save-csv", csv, NULL });
	refused(rc, csv, "bench --save-csv over a file");
	holds(csv, "x\n");
	rc = run((const char *[]){ BENCH, "--save-json", json, "--force", NULL });
	CHECK(rc == 0, "bench --force: exit %d: %s", rc, err);
	char buf[2] = "";
	FILE *f = fopen(json, "r");
	CHECK(f && fread(buf, 1, 1, f) == 1 && buf[0] == '{', "--force did not replace the file");
	fclose(f);
	unlink(json);
	unlink(csv);
}

CASE(bench_symlink)
{
	char link[300], target[300], victim[300];
	path_of(link, sizeof(link), "link.json");
	path_of(target, sizeof(target), "through-the-link");
	path_of(victim, sizeof(victim), "victim");
	unlink(link);
	CHECK(symlink(target, link) == 0, "symlink: %s", strerror(errno));
	int rc = run((const char *[]){ BENCH, "--save-json", link, NULL });
	refused(rc, link, "bench --save-json to a dangling symlink");
	rc = run((const char *[]){ BENCH, "--save-json", link, "--force", NULL });
	refused(rc, link, "bench --save-json --force to a dangling symlink");
	struct stat st;
	CHECK(lstat(target, &st) != 0, "a file was created through the symlink");
	/* to an existing file: with --force too, the file is not written through the link */
	put(victim, "victim\n");
	unlink(link);
	CHECK(symlink(victim, link) == 0, "symlink: %s", strerror(errno));
	rc = run((const char *[]){ BENCH, "--save-json", link, "--force", NULL });
	refused(rc, link, "bench --save-json --force to a symlink");
	holds(victim, "victim\n");
	unlink(link);
	unlink(victim);
}

CASE(plot_refuses)
{
	char csv[300], out[300], gp[320];
	path_of(csv, sizeof(csv), "plot.csv");
	path_of(out, sizeof(out), "plots");
	snprintf(gp, sizeof(gp), "%s/bench.gp", out);
	unlink(csv);
	CHECK(run((const char *[]){ BENCH, "--save-csv", csv, NULL }) == 0, "bench --save-csv: %s",
	      err);
	mkdir(out, 0755);
	put(gp, "# mine\n");
	int rc = run((const char *[]){ "plot", csv, out, NULL });
	refused(rc, gp, "plot into a directory holding bench.gp");
	holds(gp, "# mine\n");
	unlink(gp);
	unlink(csv);
	rmdir(out);
}

CASE(ycsb_refuses)
{
	char json[300], out[300], gp[320];
	path_of(json, sizeof(json), "ycsb.json");
	put(json, "mine\n");
	int rc = run((const char *[]){ "ycsb", "--no-progress", "--keys", "1000", "--save-json", json,
				       NULL });
	refused(rc, json, "ycsb --save-json over a file");
	holds(json, "mine\n");
	unlink(json);
	path_of(out, sizeof(out), "ycsb-plot");
	snprintf(gp, sizeof(gp), "%s/ycsb.gp", out);
	mkdir(out, 0755);
	put(gp, "# mine\n");
	rc = run((const char *[]){ "ycsb", "--no-progress", "--keys", "1000", "--plot", out, NULL });
	refused(rc, gp, "ycsb --plot into a directory holding ycsb.gp");
	holds(gp, "# mine\n");
	unlink(gp);
	rmdir(out);
}

CASE(topo_refuses)
{
	char json[300];
	path_of(json, sizeof(json), "measure.json");
	put(json, "mine\n");
	int rc = run((const char *[]){ "topo", "--measure", "--what", "latency", "--rounds", "1",
				       "--save-json", json, NULL });
	refused(rc, json, "topo --measure --save-json over a file");
	holds(json, "mine\n");
	unlink(json);
}

int main(void)
{
	t_name = "t_cli_files";
	cli = find_cli(cli_buf, sizeof(cli_buf));
	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	int rc = RUN_CASES(bench_new_file, bench_refuses, bench_symlink, plot_refuses, ycsb_refuses,
			   topo_refuses);
	rmdir(dir);
	return rc;
}
