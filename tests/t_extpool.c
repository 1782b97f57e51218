/*
 * External pools: a tmpfs file and a hugetlbfs file the user names, declared on a node
 * (the last memory node: the memory-only node in that guest). Regions start in them,
 * page_leap() moves pages out to a node's own pool and page_leap_pool() back in, with
 * writers losing nothing and the kernel agreeing where every page is. The file's rules
 * (a directory gets an unnamed file, a named file must be empty, a disk-like file
 * system is refused; created owner-only, a symlink at the name never followed), kind
 * checks, the per-region pool limit, and closing a pool that
 * regions still use.
 */
#include "hp.h"
#include "oracle.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/stat.h>

static char tmp_root[200] = "/tmp/leap-extpool-XXXXXX";
static char mnt_tmpfs[256], mnt_huge[256], mnt_ramfs[256], mnt_thp[256];

static void unmount_all(void)
{
	umount2(mnt_tmpfs, MNT_DETACH);
	umount2(mnt_huge, MNT_DETACH);
	umount2(mnt_ramfs, MNT_DETACH);
	umount2(mnt_thp, MNT_DETACH);
	rmdir(mnt_thp);
	rmdir(mnt_tmpfs);
	rmdir(mnt_huge);
	rmdir(mnt_ramfs);
	rmdir(tmp_root);
}

static void mount_fs(const char *dir, const char *type, const char *opts)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		FAIL("mkdir %s: %s", dir, strerror(errno));
	if (mount("none", dir, type, 0, opts) != 0)
		FAIL("mount -t %s %s: %s", type, dir, strerror(errno));
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		FAIL("opendir %s: %s", dir, strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* One writer incrementing a word per 64 KiB, counting rounds (as in t_huge). */
struct writer {
	volatile uint64_t *base;
	size_t nwords;
	atomic_bool stop;
	uint64_t rounds;
	pthread_t t;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(&w->stop)) {
		for (size_t i = 0; i < w->nwords; i++)
			w->base[i * 8192 + 3]++;
		w->rounds++;
	}
	return NULL;
}

/* Move the region with page_leap() (pool NULL: to node) or page_leap_pool() while a
 * writer runs; check the writer's words and the kernel's placement. */
static void move_writing(struct leap_region *r, int node, struct leap_pool *pool, int where,
			 const char *what)
{
	char *p = leap_region_addr(r);
	size_t len = leap_region_length(r);
	struct writer w = { .base = (volatile uint64_t *)p, .nwords = len / 65536 };
	for (size_t i = 0; i < w.nwords; i++)
		w.base[i * 8192 + 3] = 0;
	if (pthread_create(&w.t, NULL, writer_main, &w) != 0)
		FAIL("pthread_create");
	int64_t moved = pool ? page_leap_pool(r, p, len, pool, 0, NULL, NULL)
			     : page_leap(r, p, len, node, 0, NULL);
	atomic_store(&w.stop, true);
	pthread_join(w.t, NULL);
	CHECK(moved == (int64_t)(len / PG), "%s: moved %lld of %zu (%s)", what, (long long)moved,
	      len / PG, leap_strerror((int)moved));
	for (size_t i = 0; i < w.nwords; i++)
		CHECK(w.base[i * 8192 + 3] == w.rounds, "%s: word %zu holds %" PRIu64 " of %" PRIu64
		      " writes", what, i, w.base[i * 8192 + 3], w.rounds);
	expect_kernel_node(p, len / PG, where, what);
}

static void test_tmpfs(struct leap_ctx *ctx, const int *nodes, int nn)
{
	int ext = nodes[nn - 1], home = nodes[0];
	const size_t len = 16u << 20, np = len / PG;
	struct leap_pool *pool;
	OK(leap_pool_open(ctx, mnt_tmpfs, ext, NULL, &pool));
	CHECK(entries(mnt_tmpfs) == 0, "a directory pool must be an unnamed file");
	struct leap_pool_stats s = pstats(pool);
	CHECK(s.external == 1 && s.pages == LEAP_PAGES_SMALL && s.node == ext && s.page_bytes == PG,
	      "stats: external %d kind %d node %d", s.external, s.pages, s.node);
	CHECK(s.cap_bytes <= (256u << 20) && s.cap_bytes >= (200u << 20),
	      "cap %" PRIu64 " should follow the tmpfs size (256 MiB)", s.cap_bytes);

	struct leap_region_options o = { .size = sizeof(o), .pool = pool };
	struct leap_region *r;
	struct leap_place pl = { 0, len, home };
	ERR(leap_region_new_ex(ctx, len, &pl, 1, &o, &r), EINVAL); /* pool and place[] */
	OK(leap_region_new_ex(ctx, len, NULL, 0, &o, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 21);
	expect_kernel_node(p, np, ext, "region in the external pool");
	CHECK(leap_node_of(r, p) == ext, "leap_node_of %d", leap_node_of(r, p));
	CHECK(pstats(pool).used_bytes == len, "pool used %" PRIu64, pstats(pool).used_bytes);

	/* out to the node's own pool, back in, relocate inside, with a writer */
	move_writing(r, home, NULL, home, "out of the external pool");
	CHECK(pstats(pool).used_bytes == 0, "pool still used %" PRIu64, pstats(pool).used_bytes);
	move_writing(r, -1, pool, ext, "into the external pool");
	CHECK(pstats(pool).used_bytes == len, "pool used %" PRIu64, pstats(pool).used_bytes);
	CHECK(OK(page_leap_pool(r, p, len, pool, 0, NULL, NULL)) == 0, "already there: no move");
	CHECK(OK(page_leap_pool(r, p, len, pool, LEAP_RELOCATE, NULL, NULL)) == (int)np,
	      "relocation inside the pool");
	expect_kernel_node(p, np, ext, "relocated in the pool");
	/* half out, half in: one region over two pools */
	OK(page_leap(r, p, len / 2, home, 0, NULL));
	expect_kernel_node(p, np / 2, home, "first half");
	expect_kernel_node(p + len / 2, np / 2, ext, "second half");

	/* a pool of another kind is refused; so are bad arguments */
	struct leap_pool *own;
	OK(leap_pool_get_kind(ctx, home, LEAP_PAGES_HUGETLB, &own));
	ERR(page_leap_pool(r, p, len, own, 0, NULL, NULL), EINVAL);
	ERR(page_leap_pool(r, p, len, NULL, 0, NULL, NULL), EINVAL);
	ERR(page_leap_pool(NULL, p, len, pool, 0, NULL, NULL), EINVAL);

	/* the caller may close the pool while a region still uses it */
	leap_pool_close(&pool);
	CHECK(pool == NULL, "close must clear the handle");
	check_pages(p, np, 21, "after closing the pool");
	leap_region_destroy(&r);
	say("tmpfs pool on node %d: start in it, out, in, relocate, split, close early", ext);
}

static void test_files(struct leap_ctx *ctx, int node)
{
	char path[300];
	struct leap_pool *pool;
	/* a named file: created, used, handed back empty */
	snprintf(path, sizeof(path), "%s/named.pool", mnt_tmpfs);
	OK(leap_pool_open(ctx, path, node, NULL, &pool));
	struct leap_region_options o = { .size = sizeof(o), .pool = pool };
	struct leap_region *r;
	OK(leap_region_new_ex(ctx, 1 << 20, NULL, 0, &o, &r));
	memset(leap_region_addr(r), 5, 1 << 20);
	leap_region_destroy(&r);
	leap_pool_close(&pool);
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size == 0, "named pool file should be left empty");
	/* a file with contents is never taken */
	FILE *f = fopen(path, "w");
	CHECK(f && fputs("user data", f) >= 0 && fclose(f) == 0, "write %s", path);
	ERR(leap_pool_open(ctx, path, node, NULL, &pool), EEXIST);
	CHECK(stat(path, &st) == 0 && st.st_size == 9, "the user's file was changed");
	unlink(path);
	/* not memory: ramfs here stands for any file system pageleap cannot promise */
	ERR(leap_pool_open(ctx, mnt_ramfs, node, NULL, &pool), EOPNOTSUPP);
	/* bad arguments */
	ERR(leap_pool_open(NULL, mnt_tmpfs, node, NULL, &pool), EINVAL);
	ERR(leap_pool_open(ctx, NULL, node, NULL, &pool), EINVAL);
	ERR(leap_pool_open(ctx, mnt_tmpfs, 999, NULL, &pool), ENODEV);
	struct leap_pool_options po = { .size = sizeof(po), .pages = 7 };
	ERR(leap_pool_open(ctx, mnt_tmpfs, node, &po, &pool), EINVAL);
	po.pages = LEAP_PAGES_HUGETLB; /* tmpfs cannot hold hugetlb pages */
	ERR(leap_pool_open(ctx, mnt_tmpfs, node, &po, &pool), EINVAL);
	leap_pool_close(NULL);
	CHECK(entries(mnt_tmpfs) == 0, "files left in the tmpfs mount");
	say("pool files: unnamed, named and left empty, non-empty refused, ramfs refused");
}

/* The file is the user's and the name may be anyone's to place (a shared /tmp): created
 * owner-only whatever the umask allows; a symlink at the name is never followed, to a
 * file, to a directory or dangling (-ELOOP, its target untouched, nothing created); a
 * FIFO is refused without opening it. */
static void test_file_safety(struct leap_ctx *ctx, int node)
{
	char victim[300], link[300], dangling[300], target[300], dirlink[300], fifo[300];
	struct leap_pool *pool;
	struct stat st;
	mode_t old = umask(0);
	snprintf(victim, sizeof(victim), "%s/named.pool", mnt_tmpfs);
	OK(leap_pool_open(ctx, victim, node, NULL, &pool));
	CHECK(stat(victim, &st) == 0 && (st.st_mode & 07777) == 0600,
	      "created pool file has mode %o, want 0600", (unsigned)(st.st_mode & 07777));
	leap_pool_close(&pool);
	unlink(victim);
	OK(leap_pool_open(ctx, mnt_tmpfs, node, NULL, &pool)); /* the unnamed file */
	CHECK(fstat(leap_pool_fd(pool), &st) == 0 && (st.st_mode & 07777) == 0600,
	      "unnamed pool file has mode %o, want 0600", (unsigned)(st.st_mode & 07777));
	leap_pool_close(&pool);
	umask(old);
	/* an empty file of someone else's, and a symlink to it where the pool would go */
	snprintf(victim, sizeof(victim), "%s/victim", mnt_tmpfs);
	int fd = open(victim, O_CREAT | O_EXCL | O_WRONLY, 0644);
	CHECK(fd >= 0, "create %s: %s", victim, strerror(errno));
	close(fd);
	snprintf(link, sizeof(link), "%s/link.pool", mnt_tmpfs);
	CHECK(symlink(victim, link) == 0, "symlink: %s", strerror(errno));
	ERR(leap_pool_open(ctx, link, node, NULL, &pool), ELOOP);
	CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the symlink was replaced");
	CHECK(stat(victim, &st) == 0 && st.st_size == 0 && (st.st_mode & 07777) == 0644,
	      "the symlink's target was changed");
	/* dangling: its target must not be created */
	snprintf(dangling, sizeof(dangling), "%s/dangling.pool", mnt_tmpfs);
	snprintf(target, sizeof(target), "%s/created-through-link", mnt_tmpfs);
	CHECK(symlink(target, dangling) == 0, "symlink: %s", strerror(errno));
	ERR(leap_pool_open(ctx, dangling, node, NULL, &pool), ELOOP);
	CHECK(lstat(target, &st) != 0 && errno == ENOENT, "a file was created through the link");
	/* to a directory: no unnamed file through it either */
	snprintf(dirlink, sizeof(dirlink), "%s/dirlink", mnt_tmpfs);
	CHECK(symlink(mnt_tmpfs, dirlink) == 0, "symlink: %s", strerror(errno));
	ERR(leap_pool_open(ctx, dirlink, node, NULL, &pool), ELOOP);
	/* a FIFO is not opened (an open of it for reading and writing would not block, but a
	 * device's open may act): refused as not a file */
	snprintf(fifo, sizeof(fifo), "%s/fifo", mnt_tmpfs);
	CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
	ERR(leap_pool_open(ctx, fifo, node, NULL, &pool), EOPNOTSUPP);
	unlink(fifo);
	unlink(dirlink);
	unlink(dangling);
	unlink(link);
	unlink(victim);
	CHECK(entries(mnt_tmpfs) == 0, "files left in the tmpfs mount");
	say("pool files: created 0600 (also unnamed), symlinks to a file, dangling and to a "
	    "directory refused -ELOOP with nothing touched, a FIFO refused");
}

/* A region can use 16 external pools; the 17th is -ENOSPC. */
static void test_slots(struct leap_ctx *ctx, int node)
{
	struct leap_region *r;
	OK(leap_region_new(ctx, 32 * PG, node, &r));
	char *p = leap_region_addr(r);
	struct leap_pool *pools[17];
	for (int i = 0; i < 17; i++)
		OK(leap_pool_open(ctx, mnt_tmpfs, node, NULL, &pools[i]));
	for (int i = 0; i < 16; i++)
		CHECK(OK(page_leap_pool(r, p + (size_t)i * PG, PG, pools[i], 0, NULL, NULL)) == 1,
		      "page %d into pool %d", i, i);
	ERR(page_leap_pool(r, p + 16 * PG, PG, pools[16], 0, NULL, NULL), ENOSPC);
	for (int i = 0; i < 17; i++)
		leap_pool_close(&pools[i]);
	leap_region_destroy(&r);
	say("16 external pools per region, the 17th refused");
}

static void test_hugetlbfs(struct leap_ctx *ctx, const int *nodes, int nn)
{
	int ext = nodes[nn - 1], home = nodes[0];
	const size_t len = 16u << 20;
	for (int i = 0; i < nn; i++)
		CHECK(hp_reserve(nodes[i], 24) == 24, "reserve huge pages on node %d", nodes[i]);
	struct leap_pool *pool;
	OK(leap_pool_open(ctx, mnt_huge, ext, NULL, &pool));
	struct leap_pool_stats s = pstats(pool);
	CHECK(s.pages == LEAP_PAGES_HUGETLB && s.page_bytes == LEAP_HUGE_PAGE_SIZE,
	      "hugetlbfs pool kind %d", s.pages);
	struct leap_region_options o = { .size = sizeof(o), .pool = pool };
	struct leap_region *r;
	OK(leap_region_new_ex(ctx, len, NULL, 0, &o, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, len / PG, 22);
	expect_kernel_node(p, len / PG, ext, "region in the hugetlbfs pool");
	CHECK(smaps_kb(p, p + len, "KernelPageSize") % 2048 == 0, "not mapped with 2 MiB pages");
	move_writing(r, home, NULL, home, "out of the hugetlbfs pool");
	move_writing(r, -1, pool, ext, "into the hugetlbfs pool");
	check_pages(p, len / PG, 22, "hugetlbfs round trip");
	/* a small-page region cannot move into it */
	struct leap_region *small;
	OK(leap_region_new(ctx, len, home, &small));
	ERR(page_leap_pool(small, leap_region_addr(small), len, pool, 0, NULL, NULL), EINVAL);
	leap_region_destroy(&small);
	leap_region_destroy(&r);
	CHECK(pstats(pool).used_bytes == 0, "hugetlbfs pool still used");
	leap_pool_close(&pool);
	say("hugetlbfs pool on node %d: start in it, out, back with a writer", ext);
}

/* A THP pool on tmpfs mounted huge=advise: its regions are mapped with huge entries. A
 * mount without huge= cannot give huge pages: refused, whatever shmem_enabled says. */
static void test_thp_file(struct leap_ctx *ctx, int node)
{
	CHECK(hp_write(HP_THP_PATH, "advise") == 0, "cannot allow shmem THP");
	struct leap_pool_options po = { .size = sizeof(po), .pages = LEAP_PAGES_THP };
	struct leap_pool *pool;
	ERR(leap_pool_open(ctx, mnt_tmpfs, node, &po, &pool), EOPNOTSUPP);
	OK(leap_pool_open(ctx, mnt_thp, node, &po, &pool));
	struct leap_region_options o = { .size = sizeof(o), .pool = pool };
	struct leap_region *r;
	const size_t len = 8u << 20;
	OK(leap_region_new_ex(ctx, len, NULL, 0, &o, &r));
	char *p = leap_region_addr(r);
	CHECK(smaps_kb(p, p + len, "ShmemPmdMapped") == len / 1024, "THP file pool: %" PRIu64
	      " kB mapped huge", smaps_kb(p, p + len, "ShmemPmdMapped"));
	leap_region_destroy(&r);
	leap_pool_close(&pool);
	say("THP pool on tmpfs: mapped huge");
}

int main(void)
{
	t_name = "t_extpool";
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	const struct leap_topo *topo = leap_ctx_topo(ctx);
	int nodes[64], nn = mem_nodes(topo, nodes, 64);
	hp_setup(leap_topo_node_count(topo)); /* root: mounts too */
	/* unprivileged (tests/unpriv.sh): root mounted them for this user, the same four */
	const char *pre = getenv("LEAP_EXTPOOL_DIR");
	if (!hp_can_change() && !pre)
		skip("an unprivileged run needs the file systems mounted by root "
		     "(LEAP_EXTPOOL_DIR: tests/unpriv.sh)");
	if (pre)
		snprintf(tmp_root, sizeof(tmp_root), "%s", pre);
	else if (!mkdtemp(tmp_root))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(mnt_tmpfs, sizeof(mnt_tmpfs), "%s/tmpfs", tmp_root);
	snprintf(mnt_huge, sizeof(mnt_huge), "%s/huge", tmp_root);
	snprintf(mnt_ramfs, sizeof(mnt_ramfs), "%s/ramfs", tmp_root);
	snprintf(mnt_thp, sizeof(mnt_thp), "%s/thp", tmp_root);
	if (!pre) {
		atexit(unmount_all);
		mount_fs(mnt_tmpfs, "tmpfs", "size=256m");
		mount_fs(mnt_huge, "hugetlbfs", "pagesize=2M");
		mount_fs(mnt_ramfs, "ramfs", NULL);
		mount_fs(mnt_thp, "tmpfs", "size=64m,huge=advise");
	}
	test_tmpfs(ctx, nodes, nn);
	test_files(ctx, nodes[nn - 1]);
	test_file_safety(ctx, nodes[nn - 1]);
	test_slots(ctx, nodes[0]);
	test_hugetlbfs(ctx, nodes, nn);
	test_thp_file(ctx, nodes[nn - 1]);
	leap_ctx_destroy(&ctx);
	return 0;
}
