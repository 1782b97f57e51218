/*
 * fork() behaviour (pageleap(7)): regions are not inherited. Their mappings carry
 * MADV_DONTFORK, so the child has nothing at the region's addresses and cannot write
 * into pool pages the parent keeps moving and reusing; the parent's region, its jobs and
 * its contents are unaffected by the fork and by the child's exit.
 */
#include "util.h"

#include <sys/mman.h>
#include <sys/wait.h>

int main(void)
{
	t_name = "t_fork";
	struct leap_ctx *ctx;
	OK(leap_ctx_new(NULL, &ctx));
	int nodes[64];
	int nn = mem_nodes(leap_ctx_topo(ctx), nodes, 64);
	const size_t len = 8 << 20, np = len / PG;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, nodes[0], &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 3);
	/* a job in flight while the process forks */
	struct leap_job *j;
	int target = nodes[nn - 1];
	unsigned fl = nn == 1 ? LEAP_RELOCATE : 0;
	OK(page_leap(r, p, len, target, fl, &j));
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		/* the child: no page of the region is mapped (mincore: ENOMEM for unmapped) */
		unsigned char vec[1];
		int bad = 0;
		for (size_t k = 0; k < np; k += 61)
			if (mincore(p + k * PG, PG, vec) == 0 || errno != ENOMEM)
				bad++;
		_exit(bad ? 3 : 0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child saw region pages mapped (status %d): regions must not be inherited", st);
	CHECK(leap_job_wait(j, -1) == (int64_t)np, "job across fork");
	leap_job_destroy(&j);
	check_pages(p, np, 3, "parent after fork");
	expect_kernel_node(p, np, target, "parent after fork");
	/* the parent keeps moving and writing its region after the child is gone */
	OK(page_leap(r, p, len, nodes[0], fl, NULL));
	fill_pages(p, np, 4);
	check_pages(p, np, 4, "parent writes after fork");
	say("measured child of fork() has no region pages mapped; parent's job and contents intact");
	leap_region_destroy(&r);
	leap_ctx_destroy(&ctx);
	return 0;
}
