/*
 * t_limits: resource limits give a clear -errno, lose nothing and leave nothing half done.
 * Named cases:
 *   nofile         RLIMIT_NOFILE with every descriptor taken: leap_ctx_new, a region on a
 *                  pool not made yet (its memfd), leap_pool_open and the first page_leap
 *                  (its userfaultfd) each return -EMFILE; the region that exists keeps its
 *                  contents and placement (kernel-checked); with the descriptors given back
 *                  everything works, and afterwards no descriptor is left open;
 *   map_count      the address space filled with mappings (PROT_NONE/PROT_READ pages
 *                  alternating, no root, no global change) until MAP_HEADROOM remain under
 *                  /proc/sys/vm/max_map_count; then a region is created and every other
 *                  page relocated (each a mapping of its own): what cannot be mapped fails
 *                  with -ENOMEM, per page, and every page keeps its contents and is where
 *                  the library says (kernel-checked); with the filler unmapped the same
 *                  move moves every page;
 *   cgroup_memory  a child process in a child memory cgroup (v2 memory.max, or v1's
 *                  memory.limit_in_bytes; root; skipped with the reason where neither is
 *                  writable): a region within the limit moved (relocated) past it, and a
 *                  region larger than the limit: each gives -ENOMEM or the kernel's OOM kill
 *                  of that child only (printed; the kernel may kill even in fallocate(2));
 *                  with the pools capped under the limit (pool_cap_bytes) there is no OOM
 *                  kill: the relocation moves (extent by extent, the old pages freed as it
 *                  goes) or fails -ENOMEM, the large region is -ENOMEM, contents and
 *                  placement intact.
 * A pool cap reached in the middle of a job is t_errors' case.
 */
#include "oracle.h"

#include <dirent.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MAP_HEADROOM 24 /* mappings left free under the limit */

/* ASan and TSan map memory of their own and abort when the kernel refuses */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
static const bool under_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
static const bool under_sanitizer = true;
#else
static const bool under_sanitizer = false;
#endif
#else
static const bool under_sanitizer = false;
#endif

static int nodes[64];

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL, "/proc/self/fd: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Take every descriptor under the soft limit; returns how many (given back by
 * give_fds). */
static int take_fds(int *fds, int max)
{
	int n = 0;
	while (n < max) {
		int fd = dup(0);
		if (fd < 0) {
			CHECK(errno == EMFILE, "dup: %s", strerror(errno));
			break;
		}
		fds[n++] = fd;
	}
	CHECK(n < max, "the descriptor limit was not reached");
	return n;
}

static void give_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

CASE(nofile)
{
	struct rlimit old;
	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
	int base = open_fds();
	struct rlimit low = { (rlim_t)base + 64, old.rlim_max };
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit: %s", strerror(errno));
	static int fds[256];

	/* no descriptor at all: the instance cannot start */
	int n = take_fds(fds, 256);
	struct leap_ctx *ctx = NULL;
	int rc = leap_ctx_new(NULL, &ctx);
	CHECK(rc == -EMFILE || rc == 0, "leap_ctx_new without descriptors: %d (%s)", rc,
	      leap_strerror(rc));
	int ctx_rc = rc;
	give_fds(fds, n);
	if (!ctx)
		OK(leap_ctx_new(NULL, &ctx));
	mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	/* an external pool's directory on tmpfs (a pool file needs memory-backed storage) */
	char dir[] = "/dev/shm/leap-limits-XXXXXX";
	bool have_dir = mkdtemp(dir) != NULL;
	if (!have_dir)
		say("no /dev/shm: leap_pool_open not tried");

	/* a region on the small-page pool: its memfd exists from here on */
	struct leap_region *r;
	size_t np = 64, len = np * PG;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	fill_pages(leap_region_addr(r), np, 7);
	n = take_fds(fds, 256);
	/* a pool of another kind has no memfd yet */
	struct leap_region_options ho = { .size = sizeof(ho), .pages = LEAP_PAGES_THP };
	struct leap_place pl = { 0, 4u << 20, nodes[0] };
	struct leap_region *h = NULL;
	int hrc = rc = leap_region_new_ex(ctx, 4u << 20, &pl, 1, &ho, &h);
	CHECK(rc == -EMFILE || rc == -EOPNOTSUPP, "THP region without descriptors: %d (%s)", rc,
	      leap_strerror(rc));
	CHECK(h == NULL, "a refused region was handed out");
	struct leap_pool *pool = NULL;
	if (have_dir)
		ERR(leap_pool_open(ctx, dir, nodes[0], NULL, &pool), EMFILE);
	CHECK(pool == NULL, "a refused pool was handed out");
	/* the first move opens the userfaultfd */
	int *status = calloc(np, sizeof(int));
	struct leap_job_options jo = { .size = sizeof(jo), .status = status };
	rc = page_leap_opts(r, leap_region_addr(r), len, nodes[0], LEAP_RELOCATE, &jo, NULL);
	if (rc == -EOPNOTSUPP)
		skip("no userfaultfd write protection for this process");
	CHECK(rc == -EMFILE || rc == (int)np, "first page_leap without descriptors: %d (%s)", rc,
	      leap_strerror(rc));
	say("measured without descriptors: leap_ctx_new %s, THP region %s, leap_pool_open "
	    "-EMFILE, first page_leap %s", ctx_rc ? leap_strerror(ctx_rc) : "ok",
	    leap_strerror(hrc), rc < 0 ? leap_strerror(rc) : "moved (its descriptor existed)");
	check_pages(leap_region_addr(r), np, 7, "after the move without descriptors");
	expect_all_on(r, nodes[0], "after the move without descriptors");
	give_fds(fds, n);

	/* everything works again */
	CHECK(OK(page_leap(r, leap_region_addr(r), len, nodes[0], LEAP_RELOCATE, NULL)) == (int)np,
	      "the move after the limit was raised");
	check_pages(leap_region_addr(r), np, 7, "after the move");
	if (have_dir) {
		OK(leap_pool_open(ctx, dir, nodes[0], NULL, &pool));
		leap_pool_close(&pool);
	}
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	free(status);
	if (have_dir)
		rmdir(dir);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "setrlimit back");
	CHECK(open_fds() == base, "%d descriptors open after everything was freed, %d before",
	      open_fds(), base);
}

/* Mappings of this process now. */
static long map_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL, "/proc/self/maps");
	long n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

CASE(map_count)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long max = 0;
	CHECK(f && fscanf(f, "%ld", &max) == 1, "read /proc/sys/vm/max_map_count");
	fclose(f);
	if (max > 1 << 20)
		skip("vm.max_map_count above 1M: filling it would take too long");
	if (under_sanitizer)
		skip("under ASan or TSan: the sanitizer's allocator aborts at the mapping limit "
		     "(the plain build runs this case)");
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	size_t np = 512, len = np * PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	fill_pages(leap_region_addr(r), np, 9);
	long rc0 = page_leap(r, leap_region_addr(r), PG, nodes[0], LEAP_RELOCATE, NULL);
	if (rc0 == -EOPNOTSUPP)
		skip("no userfaultfd write protection for this process");
	CHECK(rc0 == 1, "first move: %ld", rc0);
	/* the filler: pages alternating PROT_NONE and PROT_READ, one mapping each */
	long have = map_count(), want = max - MAP_HEADROOM - have;
	CHECK(want > 0, "already %ld mappings of %ld", have, max);
	size_t fill_len = (size_t)want * PG;
	char *fill = mmap(NULL, fill_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	CHECK(fill != MAP_FAILED, "mmap filler: %s", strerror(errno));
	for (long k = 1; k < want; k += 2)
		CHECK(mprotect(fill + (size_t)k * PG, PG, PROT_READ) == 0,
		      "mprotect filler page %ld: %s (at %ld mappings)", k, strerror(errno), map_count());
	long now_maps = map_count();
	CHECK(now_maps >= max - MAP_HEADROOM - 4, "filler reached %ld mappings of %ld", now_maps,
	      max);
	/* every other page relocated: each would be a mapping of its own */
	int *status = calloc(np, sizeof(int));
	struct leap_job_options jo = { .size = sizeof(jo), .status = status,
				       .granularity_min = PG, .granularity_max = PG };
	long moved = 0, failed = 0, other = 0;
	for (size_t k = 0; k < np; k += 2) {
		long rc = page_leap_opts(r, (char *)leap_region_addr(r) + k * PG, PG, nodes[0],
					 LEAP_RELOCATE, &jo, NULL);
		if (rc == 1)
			moved++;
		else if (rc == -ENOMEM && status[0] == -ENOMEM)
			failed++;
		else
			other++;
	}
	long at_limit = map_count();
	CHECK(other == 0, "%ld moves gave something other than 1 page or -ENOMEM", other);
	CHECK(failed > 0, "no move failed with %ld of %ld mappings taken", at_limit, max);
	check_pages(leap_region_addr(r), np, 9, "at the mapping limit");
	expect_all_on(r, nodes[0], "at the mapping limit");
	/* a new region at the limit: -ENOMEM or made, nothing in between */
	struct leap_region *r2 = NULL;
	int rc2 = leap_region_new(ctx, 64 * PG, nodes[0], &r2);
	CHECK(rc2 == -ENOMEM || rc2 == 0, "region at the mapping limit: %d (%s)", rc2,
	      leap_strerror(rc2));
	CHECK(rc2 == 0 || r2 == NULL, "a refused region was handed out");
	leap_region_destroy(&r2);
	munmap(fill, fill_len);
	/* all works again: the same moves move every page */
	for (size_t k = 0; k < np; k += 2)
		CHECK(OK(page_leap_opts(r, (char *)leap_region_addr(r) + k * PG, PG, nodes[0],
					LEAP_RELOCATE, &jo, NULL)) == 1,
		      "page %zu after the filler was unmapped", k);
	check_pages(leap_region_addr(r), np, 9, "after the filler");
	expect_all_on(r, nodes[0], "after the filler");
	OK(leap_region_new(ctx, 64 * PG, nodes[0], &r2));
	leap_region_destroy(&r2);
	say("measured map_count: limit %ld, filler to %ld mappings, %ld moves done and %ld "
	    "refused (-ENOMEM) at the limit, %ld mappings then; region at the limit: %s",
	    max, now_maps, moved, failed, at_limit, rc2 ? "-ENOMEM" : "made");
	free(status);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

/* ------------------------------------------------------------ memory cgroup */

#define CG_ROOT "/sys/fs/cgroup"
#define CG_LIMIT (24u << 20)

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t k = write(fd, text, strlen(text));
	int rc = k == (ssize_t)strlen(text) ? 0 : -errno;
	close(fd);
	return rc;
}

/* In the child, inside the cgroup: exit 0 if both steps ended in -ENOMEM (or within the
 * limit), 1 on a wrong outcome; an OOM kill ends it by SIGKILL. With cap, the instance's
 * pools are capped under the cgroup's limit: then each step must be -ENOMEM. */
static void cgroup_child(uint64_t cap)
{
	setvbuf(stdout, NULL, _IONBF, 0); /* an OOM kill must not eat what it said */
	say("cgroup child (pool cap %" PRIu64 " MiB): creating and filling a 16 MiB region",
	    cap >> 20);
	struct leap_ctx_options o = { .size = sizeof(o), .pool_cap_bytes = cap };
	struct leap_ctx *ctx;
	OK(leap_ctx_new(&o, &ctx));
	mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	size_t len = 16u << 20, np = len / PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	fill_pages(leap_region_addr(r), np, 11);
	say("cgroup child: relocating it (needs as much again: past the limit)");
	long rc = page_leap(r, leap_region_addr(r), len, nodes[0], LEAP_RELOCATE, NULL);
	CHECK(rc == (long)np || rc == -ENOMEM || rc == -EOPNOTSUPP,
	      "relocation past the limit: %ld (%s)", rc, rc < 0 ? leap_strerror((int)rc) : "");
	say("cgroup child: relocation past memory.max: %s", rc == (long)np ? "moved (memory freed "
	    "in time)" : leap_strerror((int)rc));
	check_pages(leap_region_addr(r), np, 11, "after the relocation past the limit");
	expect_all_on(r, nodes[0], "after the relocation past the limit");
	struct leap_region *big = NULL;
	int rc2 = leap_region_new(ctx, 2 * CG_LIMIT, nodes[0], &big);
	CHECK(rc2 == -ENOMEM && big == NULL, "a region twice memory.max: %d (%s)", rc2,
	      leap_strerror(rc2));
	say("cgroup child: region of twice memory.max: %s", leap_strerror(rc2));
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	fflush(stdout);
	_exit(0);
}

/* Where this process's memory cgroup is and how its files are called: cgroup v2 (the
 * "0::" line, memory.max, memory.events) or v1's memory hierarchy (memory.limit_in_bytes,
 * memory.oom_control). Returns the directory in dir, or a reason to skip. */
struct cg_kind {
	const char *limit, *events, *kills;
};
static const struct cg_kind cg_v2 = { "memory.max", "memory.events", "oom_kill %ld" };
static const struct cg_kind cg_v1 = { "memory.limit_in_bytes", "memory.oom_control",
				      "oom_kill %ld" };

static const char *cg_find(char *dir, size_t len, const struct cg_kind **kind)
{
	char ctl[256] = "", line[512], self[512] = "";
	FILE *f = fopen(CG_ROOT "/cgroup.controllers", "r");
	bool v2 = f && fgets(ctl, sizeof(ctl), f) && strstr(ctl, "memory");
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':'), *d = c ? strchr(c + 1, ':') : NULL;
		if (!d)
			continue;
		*d = 0;
		if (v2 ? !strcmp(c + 1, "") : !strcmp(c + 1, "memory"))
			snprintf(self, sizeof(self), "%s", d + 1);
	}
	if (f)
		fclose(f);
	self[strcspn(self, "\n")] = 0;
	if (!self[0])
		return "no memory cgroup for this process (neither v2 nor v1's memory hierarchy)";
	const char *root = v2 ? CG_ROOT : CG_ROOT "/memory";
	snprintf(dir, len, "%s%s", root, strcmp(self, "/") ? self : "");
	*kind = v2 ? &cg_v2 : &cg_v1;
	if (v2) { /* v2 hands the controller down only where the parent enables it */
		char path[900], sub[256] = "";
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
		f = fopen(path, "r");
		bool on = f && fgets(sub, sizeof(sub), f) && strstr(sub, "memory");
		if (f)
			fclose(f);
		if (!on)
			return "our cgroup does not enable the memory controller for its children "
			       "(not changed here: a global setting)";
	} else if (access(dir, W_OK) != 0) {
		return "our v1 memory cgroup is not writable (not root?)";
	}
	return NULL;
}

/* Runs cgroup_child(cap) in a new child cgroup of parent; returns the OOM kills there
 * (-1: it exited 0 without one). */
static long in_cgroup(const char *parent, const struct cg_kind *kind, uint64_t cap)
{
	char cg[800], path[900], line[512];
	snprintf(cg, sizeof(cg), "%s/leap-t_limits-%d-%d", parent, (int)getpid(), cap != 0);
	if (mkdir(cg, 0755) != 0)
		skip("cannot create a child cgroup (not root, or cgroups not writable here)");
	snprintf(path, sizeof(path), "%s/%s", cg, kind->limit);
	char lim[32];
	snprintf(lim, sizeof(lim), "%u", CG_LIMIT);
	int wrc = write_file(path, lim);
	/* no swap for the child either (absent without swap accounting: fine) */
	snprintf(path, sizeof(path), "%s/%s", cg,
		 kind == &cg_v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes");
	write_file(path, kind == &cg_v2 ? "0" : lim);
	if (wrc) {
		rmdir(cg);
		FAIL("%s: %s", kind->limit, strerror(-wrc));
	}
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char me[32];
		snprintf(me, sizeof(me), "%d", (int)getpid());
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		if (write_file(path, me))
			_exit(3);
		cgroup_child(cap);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		CHECK(errno == EINTR, "waitpid");
	long kills = 0;
	snprintf(path, sizeof(path), "%s/%s", cg, kind->events);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, kind->kills, &kills);
	if (f)
		fclose(f);
	rmdir(cg);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		skip("cannot move a process into the child cgroup");
	if (WIFSIGNALED(st)) {
		CHECK(WTERMSIG(st) == SIGKILL && kills > 0, "child died of signal %d, %ld OOM kills",
		      WTERMSIG(st), kills);
		return kills;
	}
	CHECK(WEXITSTATUS(st) == 0, "cgroup child failed (exit %d)", WEXITSTATUS(st));
	return kills ? kills : -1;
}

CASE(cgroup_memory)
{
	char parent[700];
	const struct cg_kind *kind;
	if (under_sanitizer) /* its shadow and quarantine count against memory.max too */
		skip("under ASan or TSan: the sanitizer's own memory counts against the cgroup's "
		     "limit (the plain build runs this case)");
	const char *no = cg_find(parent, sizeof(parent), &kind);
	if (no)
		skip(no);
	const char *v = kind == &cg_v2 ? "v2" : "v1";
	/* the kernel's answer to a charge past memory.max, even inside fallocate(2), may be
	 * its OOM killer rather than ENOMEM: whichever, only the child is affected */
	long kills = in_cgroup(parent, kind, 0);
	say("measured cgroup %s, pools uncapped: %s", v,
	    kills > 0 ? "the child was OOM-killed by the kernel, the parent unaffected"
		      : "-ENOMEM in the child, no OOM kill");
	/* pools capped under the limit (pageleap(7), Limits): -ENOMEM where it does not fit,
	 * never a kill */
	kills = in_cgroup(parent, kind, CG_LIMIT - (4u << 20));
	CHECK(kills < 0, "pools capped under memory.max: the child was OOM-killed (%ld)", kills);
	say("measured cgroup %s, pools capped under the limit: no OOM kill", v);
}

int main(void)
{
	t_name = "t_limits";
	return RUN_CASES(nofile, map_count, cgroup_memory);
}
