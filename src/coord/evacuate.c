/*
 * evacuate.c - node evacuation: move every page of every region off a node, each
 * stretch to the nearest node (kernel distance) whose pool has room. A walker
 * (walk.c): it counts the pages on the node first, then visits region by region.
 *
 * Pages with nowhere to go stay, counted as failed with -ENOMEM; the job goes on with
 * the next stretch. Threads: the walk's.
 */
#include "coord/coord.h"

#include <errno.h>
#include <stdlib.h>

struct evac {
	int node; /* the node to empty */
};

/* Pages of r on node (any slot: the node's own pool or an external pool there). */
static uint64_t pages_on(struct leap__walk *w, struct leap_region *r)
{
	int node = ((struct evac *)leap__walk_arg(w))->node;
	uint64_t n = 0;
	leap__region_lock(r);
	for (size_t i = 0; !r->dying && i < r->nruns; i++)
		if (leap__slot_node(r, r->runs[i].slot) == node)
			n += r->runs[i].n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/*
 * The next stretch of r's pages on node at or after pos: [*a, *b), consecutive runs on
 * node merged. false when there is none (or the region is being destroyed).
 */
static bool next_on(struct leap_region *r, int node, uint64_t pos, uint64_t *a, uint64_t *b)
{
	bool found = false;
	leap__region_lock(r);
	if (!r->dying && pos < r->npages) {
		for (size_t i = leap__region_find_run(r, pos); i < r->nruns; i++) {
			const struct leap__run *x = &r->runs[i];
			bool on = leap__slot_node(r, x->slot) == node;
			if (!found && on) {
				found = true;
				*a = x->pg > pos ? x->pg : pos;
			}
			if (found && !on)
				break;
			if (found)
				*b = x->pg + x->n;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

/*
 * The nearest node (kernel distance from the evacuated node, then id) other than it
 * whose pool of kind has room for at least one huge page (one page for small pages):
 * its id, and in *room the pages it can take. -1 if none.
 */
static int nearest_with_room(struct leap_ctx *ctx, int node, int kind, uint64_t unit,
			     uint64_t *room)
{
	const struct leap_topo *t = ctx->topo;
	int best = -1, best_d = 0;
	uint64_t best_room = 0;
	for (int n = 0; n < t->count; n++) {
		struct leap_pool *p;
		if (n == node || !leap__topo_valid_mem_node(t, n) ||
		    leap__ctx_pool(ctx, n, kind, &p) != 0)
			continue;
		int d = t->dist[node * t->count + n];
		if (best >= 0 && d >= best_d)
			continue;
		uint64_t rm = leap__pool_room(p);
		if (rm < unit)
			continue;
		best = n;
		best_d = d;
		best_room = rm;
	}
	*room = best_room;
	return best;
}

static void evacuate_region(struct leap__walk *w, struct leap_region *r)
{
	int node = ((struct evac *)leap__walk_arg(w))->node;
	uint64_t pos = 0, a = 0, b = 0;
	while (!leap__walk_cancelled(w) && next_on(r, node, pos, &a, &b)) {
		uint64_t room;
		int dst = nearest_with_room(leap__walk_ctx(w), node, r->kind, r->unit, &room);
		if (dst < 0) { /* nowhere to go: the stretch stays, reported */
			leap__walk_add(w, 0, b - a, -ENOMEM);
			pos = b;
			continue;
		}
		uint64_t take = b - a < room ? b - a : room;
		int rc = leap__walk_move(w, r, a, a + take, dst, -1);
		if (rc == -ECANCELED || rc == -ENODEV)
			break; /* cancelled, or the region is being destroyed */
		if (rc)
			leap__walk_add(w, 0, take, rc);
		/* pages of the stretch that failed stay and were counted: go on after it */
		pos = a + take;
	}
}

static const struct leap__walker evacuation = {
	.count = pages_on,
	.visit = evacuate_region,
	.fini = free,
};

LEAP_API int leap_node_evacuate(struct leap_ctx *ctx, int node, unsigned flags,
				const struct leap_job_options *opts, struct leap_job **job)
{
	if (!ctx)
		return -EINVAL;
	if (!leap__topo_valid_mem_node(ctx->topo, node))
		return -ENODEV;
	struct evac *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->node = node;
	return leap__walk_start(ctx, &evacuation, e, flags, opts, job);
}
