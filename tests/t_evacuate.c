/*
 * Node evacuation (leap_node_evacuate): every page of every region moves off a node, to
 * the nearest nodes with room, while writers keep writing.
 *   One memory node: there is nowhere to go. The job fails with -ENOMEM, every page on
 *   the node is counted as failed, none moved, every page whole and still on the node;
 *   the synchronous form says the same. A region destroyed while that runs is safe.
 *   Two or more: three regions (one on the evacuated node, one split across it and
 *   another node, one elsewhere) and two writers over all of them; the evacuated node is
 *   node 2 on 4+ nodes, else the last node with memory that is not the first. Afterwards
 *   no page is on it (kernel and library), pages elsewhere did not move, every moved page
 *   is on a node at the least distance from it, the counts are exact (result = progress
 *   moved = pages that were there), no write lost, every byte intact, its pool unused.
 *   A region destroyed while an evacuation runs: the destroy returns, the job ends.
 * Bad arguments: -ENODEV for a node that does not exist, -EINVAL for NULL and bad flags.
 */
#include "oracle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static struct leap_ctx *ctx;
static const struct leap_topo *topo;
static int nodes[64], nn;

/* Wait for an evacuation, polling: progress never goes back. The last snapshot. */
static struct leap_progress poll_until_done(struct leap_job *j, int *polls)
{
	struct leap_progress last = { 0 }, pr;
	*polls = 0;
	for (;;) {
		pr = prog(j);
		(*polls)++;
		CHECK(pr.pages_moved >= last.pages_moved && pr.pages_done >= last.pages_done &&
			      pr.pages_failed >= last.pages_failed,
		      "progress went back: moved %" PRIu64 " -> %" PRIu64 ", done %" PRIu64
		      " -> %" PRIu64 ", failed %" PRIu64 " -> %" PRIu64,
		      last.pages_moved, pr.pages_moved, last.pages_done, pr.pages_done,
		      last.pages_failed, pr.pages_failed);
		CHECK(pr.pages_total == 0 || pr.pages_done <= pr.pages_total,
		      "progress: %" PRIu64 " done of %" PRIu64, pr.pages_done, pr.pages_total);
		last = pr;
		if (pr.state >= LEAP_JOB_DONE)
			return pr;
		sched_yield(); /* paces the polls; nothing relies on it */
	}
}

#define NWRITERS 2
#define NREG 3

static void destroy_fn(void *arg)
{
	leap_region_destroy(arg);
}

static uint64_t pool_used(int node)
{
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, node, &pool));
	struct leap_pool_stats st = { .size = sizeof(st) };
	OK(leap_pool_stats(pool, &st));
	return st.used_bytes;
}

/* ---------------------------------------------------------------- one node */

static void one_node(void)
{
	int node = nodes[0];
	const size_t len = 16 << 20, np = len / PG;
	struct leap_region *a, *b;
	OK(leap_region_new(ctx, len, node, &a));
	OK(leap_region_new(ctx, len / 2, node, &b));
	char *pa = leap_region_addr(a), *pb = leap_region_addr(b);
	fill_pages(pa, np, 1);
	fill_pages(pb, np / 2, 2);

	struct leap_job *j;
	double t0 = now();
	OK(leap_node_evacuate(ctx, node, 0, NULL, &j));
	int polls;
	struct leap_progress pr = poll_until_done(j, &polls);
	int64_t res = leap_job_wait(j, -1);
	double dt = now() - t0;
	pr = prog(j);
	CHECK(res == -ENOMEM, "evacuating the only node: result %" PRId64 " (%s)", res,
	      leap_strerror((int)res));
	CHECK(pr.state == LEAP_JOB_FAILED && pr.error == -ENOMEM, "state %d error %d", pr.state,
	      pr.error);
	CHECK(pr.pages_total == np + np / 2 && pr.pages_failed == np + np / 2 &&
		      pr.pages_moved == 0 && pr.pages_done == pr.pages_total && pr.bytes_copied == 0,
	      "progress: total %" PRIu64 " failed %" PRIu64 " moved %" PRIu64 " done %" PRIu64
	      ", want %zu failed",
	      pr.pages_total, pr.pages_failed, pr.pages_moved, pr.pages_done, np + np / 2);
	leap_job_destroy(&j);
	check_pages(pa, np, 1, "after the failed evacuation");
	check_pages(pb, np / 2, 2, "after the failed evacuation");
	expect_kernel_node(pa, np, node, "after the failed evacuation");
	expect_kernel_node(pb, np / 2, node, "after the failed evacuation");
	for (size_t k = 0; k < np; k++)
		CHECK(leap_node_of(a, pa + k * PG) == node, "node_of page %zu", k);
	CHECK(rstats(a).runs == 1 && rstats(a).pages_moved == 0 && count_maps(pa, pa + len) == 1,
	      "the failed evacuation changed the region");
	CHECK(pool_used(node) == len + len / 2, "pool accounting changed");

	/* synchronous, and without writers: the same */
	ERR(leap_node_evacuate(ctx, node, 0, NULL, NULL), ENOMEM);
	ERR(leap_node_evacuate(ctx, node, LEAP_NO_WRITERS, NULL, NULL), ENOMEM);
	check_pages(pa, np, 1, "after the synchronous evacuation");
	expect_kernel_node(pa, np, node, "after the synchronous evacuation");

	/* a region destroyed while the evacuation runs */
	OK(leap_node_evacuate(ctx, node, 0, NULL, &j));
	leap_region_destroy(&b);
	CHECK(b == NULL, "destroy did not clear the handle");
	res = leap_job_wait(j, -1);
	pr = prog(j);
	CHECK(res == -ENOMEM || res == 0, "evacuation with a region destroyed: %" PRId64, res);
	CHECK(pr.pages_moved == 0 && pr.state >= LEAP_JOB_DONE, "moved %" PRIu64 ", state %d",
	      pr.pages_moved, pr.state);
	leap_job_destroy(&j);
	check_pages(pa, np, 1, "after the destroy");
	CHECK(pool_used(node) == len, "pool used %" PRIu64 " after destroying a region",
	      pool_used(node));
	say("measured one node: evacuating node %d failed with -ENOMEM as it must, %zu pages "
	    "counted failed, none moved, in %.3f s",
	    node, np + np / 2, dt);
	leap_region_destroy(&a);
}

/* ---------------------------------------------------------------- several nodes */

/* The least distance from victim to another node with memory. */
static int min_distance(int victim)
{
	int best = -1;
	for (int i = 0; i < nn; i++) {
		if (nodes[i] == victim)
			continue;
		int d = (int)OK(leap_topo_distance(topo, victim, nodes[i]));
		if (best < 0 || d < best)
			best = d;
	}
	return best;
}

/*
 * The nearest node fills: its pool is capped at 4 MiB more than it uses. The first 4 MiB
 * go there, the rest spills to the next nearest node; with no other node (two nodes) the
 * rest fails with -ENOMEM and stays whole on the evacuated node, and a second evacuation
 * after the cap is lifted moves it.
 */
static void spill(int victim, int dmin)
{
	int n1 = -1, n2 = -1, d2 = -1;
	for (int i = 0; i < nn; i++) {
		int n = nodes[i], d = (int)OK(leap_topo_distance(topo, victim, n));
		if (n == victim)
			continue;
		if (n1 < 0 && d == dmin)
			n1 = n; /* the nearest, lowest id first */
	}
	for (int i = 0; i < nn; i++) {
		int n = nodes[i], d = (int)OK(leap_topo_distance(topo, victim, n));
		if (n != victim && n != n1 && (d2 < 0 || d < d2)) {
			n2 = n;
			d2 = d;
		}
	}
	const size_t len = 16 << 20, np = len / PG, room = 1024;
	struct leap_region *r;
	OK(leap_region_new(ctx, len, victim, &r));
	char *p = leap_region_addr(r);
	fill_pages(p, np, 30);
	struct leap_pool *pool;
	OK(leap_pool_get(ctx, n1, &pool));
	struct leap_pool_stats st = { .size = sizeof(st) };
	OK(leap_pool_stats(pool, &st));
	OK(leap_pool_set_cap(pool, st.used_bytes + room * PG));
	struct leap_job *j;
	OK(leap_node_evacuate(ctx, victim, 0, NULL, &j));
	int polls;
	struct leap_progress pr = poll_until_done(j, &polls);
	int64_t res = leap_job_wait(j, -1);
	pr = prog(j);
	leap_job_destroy(&j);
	int *after = placement(r, "after the spill");
	size_t on[3] = { 0 }; /* n1, n2, victim */
	for (size_t k = 0; k < np; k++) {
		int want = k < room ? n1 : n2 >= 0 ? n2 : victim;
		CHECK(after[k] == want, "spill: page %zu on node %d, want %d", k, after[k], want);
		on[after[k] == n1 ? 0 : after[k] == n2 ? 1 : 2]++;
	}
	free(after);
	check_pages(p, np, 30, "after the spill");
	if (n2 >= 0) {
		CHECK(res == (int64_t)np && pr.pages_moved == np && pr.pages_failed == 0 &&
			      pr.pages_total == np && pr.state == LEAP_JOB_DONE,
		      "spill: result %" PRId64 ", moved %" PRIu64 " failed %" PRIu64 " state %d", res,
		      pr.pages_moved, pr.pages_failed, pr.state);
	} else {
		CHECK(res == -ENOMEM && pr.state == LEAP_JOB_FAILED && pr.pages_moved == room &&
			      pr.pages_failed == np - room && pr.pages_total == np &&
			      pr.pages_done == np,
		      "no room: result %" PRId64 ", moved %" PRIu64 " failed %" PRIu64
		      " done %" PRIu64 " state %d",
		      res, pr.pages_moved, pr.pages_failed, pr.pages_done, pr.state);
	}
	OK(leap_pool_set_cap(pool, st.cap_bytes));
	if (n2 < 0) {
		CHECK(OK(leap_node_evacuate(ctx, victim, 0, NULL, NULL)) == (int)(np - room),
		      "the rest after the cap was lifted");
		expect_kernel_node(p, np, n1, "after the cap was lifted");
		check_pages(p, np, 30, "after the cap was lifted");
	}
	CHECK(pool_used(victim) == 0, "node %d's pool still in use after the spill", victim);
	if (n2 >= 0)
		say("measured spill: node %d capped at %zu more pages: %zu pages there, %zu spilled "
		    "to the next nearest node %d (distance %d)",
		    n1, room, on[0], on[1], n2, d2);
	else
		say("measured spill: node %d capped at %zu more pages: %zu pages there, %zu failed "
		    "with -ENOMEM and stayed whole on node %d, moved after the cap was lifted",
		    n1, room, on[0], on[2], victim);
	leap_region_destroy(&r);
}

static void several_nodes(void)
{
	int victim = -1;
	for (int i = 0; i < nn; i++)
		if (nodes[i] == 2 && nn >= 4)
			victim = 2;
	if (victim < 0)
		for (int i = nn - 1; i >= 0 && victim < 0; i--)
			if (nodes[i] != 0)
				victim = nodes[i];
	if (victim < 0)
		victim = nodes[nn - 1];
	int other = nodes[0] != victim ? nodes[0] : nodes[1]; /* a node with memory, not victim */
	int dmin = min_distance(victim);

	/* region 0 on victim; region 1 alternates 1 MiB between victim and other; region 2 on
	 * other */
	const size_t len = 16 << 20, np = len / PG, cut = 1 << 20;
	struct leap_region *r[NREG];
	char *p[NREG];
	OK(leap_region_new(ctx, len, victim, &r[0]));
	struct leap_place pl[16];
	for (size_t i = 0; i < len / cut; i++)
		pl[i] = (struct leap_place){ i * cut, cut, i % 2 ? other : victim };
	OK(leap_region_new_placed(ctx, len, pl, len / cut, &r[1]));
	OK(leap_region_new(ctx, len, other, &r[2]));
	int *before[NREG];
	size_t on_victim = 0;
	for (int i = 0; i < NREG; i++) {
		p[i] = leap_region_addr(r[i]);
		fill_pages(p[i], np, 10 + (uint64_t)i);
		before[i] = placement(r[i], "before");
		for (size_t k = 0; k < np; k++)
			on_victim += before[i][k] == victim;
	}
	CHECK(on_victim == np + np / 2, "%zu pages on node %d before", on_victim, victim);

	struct oracle orc;
	struct oracle_area areas[NREG];
	for (int i = 0; i < NREG; i++)
		areas[i] = (struct oracle_area){ p[i], np };
	oracle_start(&orc, NWRITERS, areas, NREG); /* returns with both writers writing */
	double t0 = now();
	struct leap_job *j;
	OK(leap_node_evacuate(ctx, victim, 0, NULL, &j));
	int polls;
	struct leap_progress pr = poll_until_done(j, &polls);
	int64_t res = leap_job_wait(j, -1);
	double dt = now() - t0;
	pr = prog(j);
	oracle_more(&orc, 1000); /* writes after the job too, on the moved pages */
	uint64_t writes = oracle_stop(&orc);
	CHECK(res == (int64_t)on_victim, "evacuation result %" PRId64 " (%s), %zu pages were there",
	      res, res < 0 ? leap_strerror((int)res) : "pages", on_victim);
	CHECK(pr.state == LEAP_JOB_DONE && pr.error == 0, "state %d error %d", pr.state, pr.error);
	CHECK(pr.pages_total == on_victim && pr.pages_moved == on_victim &&
		      pr.pages_done == on_victim && pr.pages_failed == 0 &&
		      pr.bytes_copied == on_victim * PG,
	      "progress: total %" PRIu64 " moved %" PRIu64 " done %" PRIu64 " failed %" PRIu64
	      ", %zu pages were there",
	      pr.pages_total, pr.pages_moved, pr.pages_done, pr.pages_failed, on_victim);

	int per_node[64] = { 0 };
	for (int i = 0; i < NREG; i++) {
		int *after = placement(r[i], "after the evacuation");
		for (size_t k = 0; k < np; k++) {
			CHECK(after[k] != victim, "region %d page %zu is still on node %d", i, k, victim);
			CHECK(after[k] >= 0 && after[k] < 64, "region %d page %zu: node %d", i, k,
			      after[k]);
			if (before[i][k] != victim) {
				CHECK(after[k] == before[i][k],
				      "region %d page %zu moved from node %d to %d although it was "
				      "not on node %d",
				      i, k, before[i][k], after[k], victim);
				continue;
			}
			per_node[after[k]]++;
			int d = (int)OK(leap_topo_distance(topo, victim, after[k]));
			CHECK(d == dmin,
			      "region %d page %zu went to node %d at distance %d from node %d; the "
			      "nearest node with memory is at %d",
			      i, k, after[k], d, victim, dmin);
		}
		free(after);
		free(before[i]);
		check_pages(p[i], np, 10 + (uint64_t)i, "after the evacuation");
	}
	oracle_check(&orc, "writers");
	CHECK(pool_used(victim) == 0, "node %d's pool still has %" PRIu64 " bytes in use", victim,
	      pool_used(victim));
	char where[256] = "";
	for (int n = 0, o = 0; n < 64; n++)
		if (per_node[n])
			o += snprintf(where + o, sizeof(where) - (size_t)o,
				      "%s%d pages to node %d (distance %d)", o ? ", " : "", per_node[n],
				      n, (int)OK(leap_topo_distance(topo, victim, n)));
	say("measured evacuation of node %d (%d memory nodes) under %d writers (%" PRIu64
	    " writes, %" PRIu64 " waits): %" PRIu64 " pages moved (%s) in %.3f s, %" PRIu64
	    " extents, %d polls%s",
	    victim, nn, NWRITERS, writes, pr.write_faults, pr.pages_moved, where, dt, pr.extents,
	    polls, nn > 1 ? "; emulated NUMA where this runs in a QEMU guest: not hardware timings" : "");

	/* nothing left: an evacuation moves nothing */
	CHECK(OK(leap_node_evacuate(ctx, victim, 0, NULL, NULL)) == 0, "second evacuation moved pages");

	for (int i = 0; i < NREG; i++)
		leap_region_destroy(&r[i]);
	spill(victim, dmin);

	/* a region destroyed while an evacuation runs: the job is held before its second
	 * extent, in whichever region it walks first; the other region, which the walk has
	 * still to reach, is destroyed: the destroy must return while the job is held (it
	 * waits for one extent of its own region at most, coord.c), and the job then
	 * evacuates the held region whole */
	struct leap_region *d[2];
	OK(leap_region_new(ctx, len, victim, &d[0]));
	OK(leap_region_new(ctx, len, victim, &d[1]));
	fill_pages(leap_region_addr(d[0]), np, 20);
	fill_pages(leap_region_addr(d[1]), np, 21);
	struct leap_job_options small = { .size = sizeof(small), .granularity_min = 16 * PG,
					  .granularity_max = 16 * PG };
	gate_arm(1, NULL);
	OK(leap_node_evacuate(ctx, victim, 0, &small, &j));
	gate_wait();
	int x = gate_region() == d[1];
	CHECK(gate_region() == d[x], "held in a region of neither");
	struct leap_progress at_destroy = prog(j);
	t0 = now();
	CHECK(finishes(destroy_fn, &d[!x]),
	      "leap_region_destroy() of a region the evacuation had still to reach blocked while "
	      "the job was held in the other region: it waits for the walk, not one extent");
	double t_destroy = now() - t0;
	CHECK(d[!x] == NULL, "destroy did not clear the handle");
	CHECK(prog(j).state < LEAP_JOB_DONE, "the held job ended");
	gate_release();
	res = leap_job_wait(j, -1);
	pr = prog(j);
	CHECK(res == (int64_t)np && pr.pages_moved == np && pr.pages_failed == 0,
	      "evacuation with a region destroyed: result %" PRId64 ", moved %" PRIu64
	      ", failed %" PRIu64 ", want the held region's %zu pages",
	      res, pr.pages_moved, pr.pages_failed, np);
	CHECK(pr.state == LEAP_JOB_DONE, "state %d", pr.state);
	leap_job_destroy(&j);
	int *after = placement(d[x], "the region that was not destroyed");
	for (size_t k = 0; k < np; k++)
		CHECK(after[k] != victim, "page %zu of the surviving region still on node %d", k,
		      victim);
	free(after);
	check_pages(leap_region_addr(d[x]), np, 20 + (uint64_t)x, "the region that was not destroyed");
	leap_region_destroy(&d[x]);
	CHECK(pool_used(victim) == 0, "node %d's pool still in use", victim);
	say("measured destroy during an evacuation (held after %" PRIu64 " pages): the destroy of "
	    "the region not yet walked took %.3f s",
	    at_destroy.pages_moved, t_destroy);
	oracle_free(&orc);
}

int main(void)
{
	t_name = "t_evacuate";
	OK(leap_ctx_new(NULL, &ctx));
	topo = leap_ctx_topo(ctx);
	nn = mem_nodes(topo, nodes, 64);
	CHECK(nn >= 1, "no node with memory");

	/* bad arguments */
	struct leap_job *j = NULL;
	ERR(leap_node_evacuate(NULL, nodes[0], 0, NULL, &j), EINVAL);
	ERR(leap_node_evacuate(ctx, 99, 0, NULL, &j), ENODEV);
	ERR(leap_node_evacuate(ctx, -1, 0, NULL, &j), ENODEV);
	ERR(leap_node_evacuate(ctx, 99, 0, NULL, NULL), ENODEV);
	ERR(leap_node_evacuate(ctx, nodes[0], 0x100, NULL, &j), EINVAL);
	ERR(leap_node_evacuate(ctx, nodes[0], LEAP_RELOCATE, NULL, &j), EINVAL);
	ERR(leap_node_evacuate(ctx, nodes[0], LEAP_HUGE_SPLIT, NULL, NULL), EINVAL);
	struct leap_job_options bad = { .size = 1 };
	ERR(leap_node_evacuate(ctx, nodes[0], 0, &bad, &j), EINVAL);
	/* options page_leap() refuses are refused here too, at submission (they used to
	 * start a walk whose every move failed -EINVAL) */
	const struct leap_job_options bad_opts[] = {
		{ .size = sizeof(bad_opts[0]), .granularity_min = 8 * PG, .granularity_max = 4 * PG },
		{ .size = sizeof(bad_opts[0]), .granularity_max = (size_t)2 << 30 },
		{ .size = sizeof(bad_opts[0]), .granularity_min = (size_t)2 << 30 },
		{ .size = sizeof(bad_opts[0]), .granularity_min = 100 },
	};
	for (size_t k = 0; k < sizeof(bad_opts) / sizeof(bad_opts[0]); k++) {
		ERR(leap_node_evacuate(ctx, nodes[0], 0, &bad_opts[k], &j), EINVAL);
		ERR(leap_node_evacuate(ctx, nodes[0], 0, &bad_opts[k], NULL), EINVAL);
	}
	for (int n = 0; n < leap_topo_node_count(topo); n++) {
		struct leap_node_info ni = { .size = sizeof(ni) };
		if (leap_topo_node(topo, n, &ni) == 0 && ni.online && !ni.has_memory)
			ERR(leap_node_evacuate(ctx, n, 0, NULL, &j), ENODEV);
	}
	CHECK(j == NULL, "a rejected evacuation handed out a job");
	/* no region: nothing to do */
	CHECK(OK(leap_node_evacuate(ctx, nodes[0], 0, NULL, NULL)) == 0, "empty: pages moved");

	if (nn == 1)
		one_node();
	else
		several_nodes();
	leap_ctx_destroy(&ctx);
	return 0;
}
