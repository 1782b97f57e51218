/*
 * The library as an ordinary user, and what each write-protection mode does.
 *
 * Which mode an instance gets follows from what the kernel lets this process do: the
 * userfaultfd(2) system call (root, CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd = 1),
 * /dev/userfaultfd where it is open to the process, the user-mode-only kind when the
 * program opts in, otherwise none. The test predicts the mode from those facts and checks
 * the library agrees, as root and (cases *_unpriv) as user nobody (uid 65534), which
 * the case drops to when it runs as root; under tests/unpriv.sh it runs as nobody already.
 *
 * user_mode_kernel_writes holds an extent write-protected (tests/hook.h) while the
 * moving thread itself makes system calls (read(2) from a pipe, sockets and a file;
 * io_uring) write into a protected page: under user-mode-only protection they fail
 * instead of waiting, and the test records what each kind of descriptor does with its
 * data (pageleap(7) states it). Nothing may land in the old page.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" /* the JSON helpers it does not need */
#include "clijson.h"
#pragma GCC diagnostic pop
#include "hook.h"
#include "oracle.h"

#include <fcntl.h>
#include <stdbool.h>
#include <grp.h>
#include <liburing.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NOBODY 65534

/* Drop to nobody if root (each case runs in a process of its own). */
static void become_nobody(void)
{
	if (geteuid() != 0)
		return;
	CHECK(setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0,
	      "cannot drop to uid %d: %s", NOBODY, strerror(errno));
	CHECK(geteuid() == NOBODY, "still uid %d", (int)geteuid());
	/* a changed uid makes the process undumpable, and LeakSanitizer cannot then stop
	 * its threads at exit (make asan) */
	prctl(PR_SET_DUMPABLE, 1);
}

/* The mode the kernel's rules give this process with the flags, and the words the
 * library's reason must hold. */
static int predicted(unsigned flags, const char **word)
{
	const char *env = getenv("PAGELEAP_WP"); /* tests/unpriv.sh runs the suite with it */
	if (env && !strcmp(env, "user"))
		flags |= LEAP_CTX_ALLOW_USER_MODE;
	if (env && !strcmp(env, "user-only"))
		flags |= LEAP_CTX_USER_MODE_ONLY;
	if (env && !strcmp(env, "none"))
		flags |= LEAP_CTX_NO_WRITE_PROTECT;
	if (flags & LEAP_CTX_NO_WRITE_PROTECT) {
		*word = "LEAP_CTX_NO_WRITE_PROTECT";
		return LEAP_WP_NONE;
	}
	if (flags & LEAP_CTX_USER_MODE_ONLY) {
		*word = "user-mode-only";
		return LEAP_WP_USER_ONLY;
	}
	int unpriv = 0;
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	if (f) {
		if (fscanf(f, "%d", &unpriv) != 1)
			unpriv = 0;
		fclose(f);
	}
	if (geteuid() == 0 || unpriv) {
		*word = "userfaultfd";
		return LEAP_WP_FULL;
	}
	if (access("/dev/userfaultfd", R_OK | W_OK) == 0) {
		*word = "/dev/userfaultfd";
		return LEAP_WP_FULL;
	}
	if (flags & LEAP_CTX_ALLOW_USER_MODE) {
		*word = "user-mode-only";
		return LEAP_WP_USER_ONLY;
	}
	*word = "vm.unprivileged_userfaultfd = 0";
	return LEAP_WP_NONE;
}

static struct leap_ctx *ctx_with(unsigned flags)
{
	struct leap_ctx_options o = { .size = sizeof(o), .flags = flags };
	struct leap_ctx *ctx;
	OK(leap_ctx_new(&o, &ctx));
	return ctx;
}

/* The library's mode and reason against the prediction; then moves with writers (the
 * oracle) where there is protection, and the precise refusal plus a LEAP_NO_WRITERS move
 * where there is none. */
static void mode_works(unsigned flags)
{
	const char *word, *why = NULL;
	int want = predicted(flags, &word);
	struct leap_ctx *ctx = ctx_with(flags);
	int got = leap_ctx_write_protect(ctx, &why);
	CHECK(got == want, "flags %#x uid %d: mode %d, predicted %d (%s)", flags, (int)geteuid(),
	      got, want, why ? why : "");
	CHECK(why && strstr(why, word), "flags %#x: reason \"%s\" lacks \"%s\"", flags, why, word);
	say("flags %#x uid %d: mode %d: %s", flags, (int)geteuid(), got, why);
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	const size_t np = 256;
	struct leap_region *r;
	OK(leap_region_new(ctx, np * PG, nodes[0], &r));
	char *p = leap_region_addr(r);
	int to = nn > 1 ? nodes[1] : nodes[0];
	unsigned fl = nn > 1 ? 0 : LEAP_RELOCATE;
	if (got == LEAP_WP_NONE) {
		ERR(page_leap(r, p, np * PG, to, fl, NULL), EOPNOTSUPP);
		CHECK(strstr(leap_errormsg(), word), "errormsg \"%s\" lacks \"%s\"", leap_errormsg(),
		      word);
		fill_pages(p, np, 7);
		CHECK(OK(page_leap(r, p, np * PG, to, fl | LEAP_NO_WRITERS, NULL)) == (int)np,
		      "a move without writers");
		check_pages(p, np, 7, "moved without writers");
	} else {
		struct oracle o;
		oracle_start_region(&o, 2, r);
		for (int i = 0; i < 4; i++) {
			int n = i % 2 ? nodes[0] : to;
			CHECK(OK(page_leap(r, p, np * PG, n, fl, NULL)) == (int)np, "move %d", i);
			oracle_more(&o, 100);
		}
		oracle_stop(&o);
		oracle_check(&o, "writers during moves");
		oracle_free(&o);
	}
	expect_all_on(r, nn > 1 && got == LEAP_WP_NONE ? to : nodes[0], "after the moves");
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

CASE(modes)
{
	mode_works(0);
	mode_works(LEAP_CTX_ALLOW_USER_MODE);
	mode_works(LEAP_CTX_USER_MODE_ONLY);
	mode_works(LEAP_CTX_NO_WRITE_PROTECT);
}

CASE(modes_unpriv)
{
	become_nobody();
	mode_works(0);
	mode_works(LEAP_CTX_ALLOW_USER_MODE);
	mode_works(LEAP_CTX_USER_MODE_ONLY);
}

/* PAGELEAP_WP chooses the mode for programs that cannot be changed; a bad value is
 * refused by name. */
CASE(env)
{
	struct leap_ctx *ctx;
	const char *why;
	setenv("PAGELEAP_WP", "user-only", 1);
	OK(leap_ctx_new(NULL, &ctx));
	CHECK(leap_ctx_write_protect(ctx, &why) == LEAP_WP_USER_ONLY, "PAGELEAP_WP=user-only: %s",
	      why);
	leap_ctx_destroy(&ctx);
	setenv("PAGELEAP_WP", "none", 1);
	OK(leap_ctx_new(NULL, &ctx));
	CHECK(leap_ctx_write_protect(ctx, &why) == LEAP_WP_NONE && strstr(why, "PAGELEAP_WP=none"),
	      "PAGELEAP_WP=none: %s", why);
	leap_ctx_destroy(&ctx);
	setenv("PAGELEAP_WP", "yes please", 1);
	ctx = NULL;
	ERR(leap_ctx_new(NULL, &ctx), EINVAL);
	CHECK(!ctx && strstr(leap_errormsg(), "PAGELEAP_WP"), "errormsg: %s", leap_errormsg());
	unsetenv("PAGELEAP_WP");
	struct leap_ctx_options o = { .size = sizeof(o), .flags = 0x80 };
	ERR(leap_ctx_new(&o, &ctx), EINVAL);
	ERR(leap_ctx_write_protect(NULL, &why), EINVAL);
}

/* pageleap topo tells the user which mode they get and why: the same as the library */
static const char *cli;

static void cli_says(void)
{
	char *const argv[] = { "pageleap", "topo", "--json", NULL };
	size_t len;
	char *out = run_cli(cli, argv, &len);
	struct jv root;
	parse_json(out, len, &root);
	const struct jv *wp = typed(&root, "write_protect", J_OBJ);
	const char *word;
	static const char *const name[] = { "none", "full", "user-mode-only" };
	int want = predicted(0, &word);
	CHECK(wp && !strcmp(str(get(wp, "mode")), name[want]), "uid %d: topo says mode %s, want %s",
	      (int)geteuid(), str(get(wp, "mode")), name[want]);
	CHECK(strstr(str(get(wp, "reason")), word), "topo's reason \"%s\" lacks \"%s\"",
	      str(get(wp, "reason")), word);
	jfree(&root);
	free(out);
}

CASE(cli)
{
	cli_says();
	become_nobody();
	cli_says();
}

/* ---------------------------------------------------------- kernel-mode writes */

static const size_t KW_PAGES = 3; /* page 1 moves; pages 0 and 2 stay mapped, writable */
static struct {
	char *region;
	int done;
	ssize_t pipe_r, pipe_left, stream_r, stream_left, dgram_r, dgram_left, file_r;
	int pipe_e, stream_e, dgram_e, file_e, uring_res;
	off_t file_off;
} kw;

/* Send 6000 bytes into wr, read 8192 into the region from page 0 on (page 1 is
 * protected), then drain what is left into a buffer of our own. */
static void kw_try(int rd, int wr, bool dgram, ssize_t *r, int *e, ssize_t *left)
{
	char src[6000];
	memset(src, 'k', sizeof(src));
	ssize_t w = dgram ? send(wr, src, sizeof(src), 0) : write(wr, src, sizeof(src));
	CHECK(w == (ssize_t)sizeof(src), "send: %s", strerror(errno));
	errno = 0;
	*r = read(rd, kw.region, 2 * PG);
	*e = errno;
	char buf[8192];
	CHECK(fcntl(rd, F_SETFL, O_NONBLOCK) == 0, "fcntl");
	*left = 0;
	for (ssize_t n; (n = read(rd, buf, sizeof(buf))) > 0;)
		*left += n;
}

static void kw_hook(struct leap_region *r, void *addr, size_t len)
{
	(void)r;
	if (kw.done || addr != kw.region + PG || len != PG)
		return;
	kw.done = 1;
	int fd[2];
	CHECK(pipe(fd) == 0, "pipe");
	kw_try(fd[0], fd[1], false, &kw.pipe_r, &kw.pipe_e, &kw.pipe_left);
	close(fd[0]);
	close(fd[1]);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0, "socketpair");
	kw_try(fd[0], fd[1], false, &kw.stream_r, &kw.stream_e, &kw.stream_left);
	close(fd[0]);
	close(fd[1]);
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, fd) == 0, "socketpair");
	kw_try(fd[0], fd[1], true, &kw.dgram_r, &kw.dgram_e, &kw.dgram_left);
	close(fd[0]);
	close(fd[1]);
	int f = open("/proc/self/exe", O_RDONLY);
	CHECK(f >= 0, "open /proc/self/exe");
	errno = 0;
	kw.file_r = read(f, kw.region + PG, 100);
	kw.file_e = errno;
	kw.file_off = lseek(f, 0, SEEK_CUR);
	close(f);
	/* io_uring: the read runs in the kernel on the program's behalf */
	struct io_uring ring;
	kw.uring_res = 1;
	if (io_uring_queue_init(2, &ring, 0) == 0) {
		CHECK(pipe(fd) == 0, "pipe");
		char src[64];
		memset(src, 'u', sizeof(src));
		CHECK(write(fd[1], src, sizeof(src)) == (ssize_t)sizeof(src), "write");
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, fd[0], kw.region + PG, sizeof(src), 0);
		struct io_uring_cqe *cqe;
		CHECK(io_uring_submit(&ring) == 1 && io_uring_wait_cqe(&ring, &cqe) == 0,
		      "io_uring");
		kw.uring_res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		io_uring_queue_exit(&ring);
		close(fd[0]);
		close(fd[1]);
	}
}

CASE(user_mode_kernel_writes)
{
	struct leap_ctx *ctx = ctx_with(LEAP_CTX_USER_MODE_ONLY);
	CHECK(leap_ctx_write_protect(ctx, NULL) == LEAP_WP_USER_ONLY, "user-mode-only");
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	struct leap_region *r;
	OK(leap_region_new(ctx, KW_PAGES * PG, nodes[0], &r));
	kw.region = leap_region_addr(r);
	memset(kw.region, 0, KW_PAGES * PG);
	memset(kw.region + PG, 'o', PG);
	leap__test_protected_hook = kw_hook;
	int to = nn > 1 ? nodes[1] : nodes[0];
	CHECK(OK(page_leap(r, kw.region + PG, PG, to, nn > 1 ? 0 : LEAP_RELOCATE, NULL)) == 1,
	      "the move");
	leap__test_protected_hook = NULL;
	CHECK(kw.done, "the hook never saw the protected page");
	/* nothing a failed system call did reached the protected page, before or after */
	for (size_t i = 0; i < PG; i++)
		CHECK(kw.region[PG + i] == 'o', "page 1 byte %zu is %#x: a kernel write landed", i,
		      (unsigned char)kw.region[PG + i]);
	expect_kernel_node(kw.region + PG, 1, to, "the moved page");
	/* a pipe copies up to the protected page and keeps the rest */
	CHECK(kw.pipe_r == (ssize_t)PG && kw.pipe_left == 6000 - (ssize_t)PG,
	      "pipe: read %zd (%s), %zd left", kw.pipe_r, strerror(kw.pipe_e), kw.pipe_left);
	CHECK(kw.region[0] == 'k', "pipe data before the protected page");
	/* a stream socket fails and keeps everything */
	CHECK(kw.stream_r == -1 && kw.stream_e == EFAULT && kw.stream_left == 6000,
	      "unix stream: read %zd (%s), %zd left", kw.stream_r, strerror(kw.stream_e),
	      kw.stream_left);
	/* a datagram socket fails; the datagram is gone (pageleap(7) says so) */
	CHECK(kw.dgram_r == -1 && kw.dgram_e == EFAULT, "unix dgram: read %zd (%s)", kw.dgram_r,
	      strerror(kw.dgram_e));
	say("note unix datagram after EFAULT: %zd bytes could still be read%s", kw.dgram_left,
	    kw.dgram_left ? "" : " (lost)");
	/* a file read fails and does not advance the offset */
	CHECK(kw.file_r == -1 && kw.file_e == EFAULT && kw.file_off == 0,
	      "file read: %zd (%s), offset %lld", kw.file_r, strerror(kw.file_e),
	      (long long)kw.file_off);
	if (kw.uring_res == 1)
		say("note no io_uring here (io_uring_queue_init failed)");
	else
		CHECK(kw.uring_res == -EFAULT, "io_uring read: %d", kw.uring_res);
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

/* The remedy: a buffer declared for I/O is never write-protected, so a system call
 * writing into it succeeds while the rest of the region moves. */
static struct {
	char *buf;
	int seen;
	ssize_t r;
} io;

static void io_hook(struct leap_region *r, void *addr, size_t len)
{
	(void)r;
	(void)addr;
	(void)len;
	if (io.seen++)
		return;
	int fd[2];
	CHECK(pipe(fd) == 0, "pipe");
	char src[PG];
	memset(src, 'd', sizeof(src));
	CHECK(write(fd[1], src, sizeof(src)) == (ssize_t)sizeof(src), "write");
	io.r = read(fd[0], io.buf, PG);
	close(fd[0]);
	close(fd[1]);
}

CASE(user_mode_declared_io)
{
	struct leap_ctx *ctx = ctx_with(LEAP_CTX_USER_MODE_ONLY);
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	const size_t np = 16;
	struct leap_region *r;
	OK(leap_region_new(ctx, np * PG, nodes[0], &r));
	char *p = leap_region_addr(r);
	memset(p, 0, np * PG);
	io.buf = p + 5 * PG;
	OK(leap_io_begin(r, io.buf, PG, 0));
	leap__test_protected_hook = io_hook;
	int to = nn > 1 ? nodes[1] : nodes[0];
	int st[16];
	struct leap_job_options jo = { .size = sizeof(jo), .status = st };
	ERR(page_leap_opts(r, p, np * PG, to, LEAP_SKIP_BUSY | (nn > 1 ? 0 : LEAP_RELOCATE), &jo,
			   NULL),
	    EBUSY);
	leap__test_protected_hook = NULL;
	CHECK(io.seen, "no extent was protected");
	CHECK(io.r == (ssize_t)PG, "read into the declared buffer: %zd", io.r);
	for (size_t i = 0; i < PG; i++)
		CHECK(io.buf[i] == 'd', "declared buffer byte %zu", i);
	CHECK(st[5] == -EBUSY, "the declared page's status %d", st[5]);
	for (size_t i = 0; i < np; i++)
		if (i != 5)
			CHECK(st[i] == to, "page %zu status %d", i, st[i]);
	OK(leap_io_end(r, io.buf, PG, 0));
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
}

int main(void)
{
	t_name = "t_unpriv";
	static char path[PATH_MAX + 16];
	cli = find_cli(path, sizeof(path));
	return RUN_CASES(modes, modes_unpriv, env, cli, user_mode_kernel_writes,
			 user_mode_declared_io);
}
