/*
 * coord.c - work over every region of an instance: node evacuation and pool compaction.
 *
 * Both are coordinating jobs (job.c, leap__job_spawn): a function on its own thread that
 * walks the instance's regions and, per range to move, submits an ordinary job and waits
 * for it. The moves thus keep every guarantee of page_leap() (writers wait for one
 * extent at most, cancel leaves every page whole, counters exact), and a job of the
 * user's on the same range simply makes the coordinator wait its turn (-EBUSY: retry).
 *
 * Regions: the coordinator pins the regions that exist when it starts (a pin set,
 * internal.h) and releases each as soon as it is done with it. leap_region_destroy()
 * drops its region from the set unless the coordinator is working on it; then it cancels
 * the region's jobs (the coordinator's child among them) and waits for the release,
 * which follows within one extent. A region being destroyed takes no new job (-ENODEV),
 * so the walk never touches a freed region.
 *
 * Threads: the coordinator's own; the regions' and jobs' locks as everywhere else.
 */
#include "internal.h"
#include "util/abi.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

struct coord {
	struct leap_ctx *ctx;
	int node;		/* evacuation: the node to empty */
	struct leap_pool *pool; /* compaction: the pool to compact */
	bool protect;
	bool has_opts;
	struct leap_job_options opts;
	struct leap__pinset set; /* the regions to walk, pinned */
	bool listed;		 /* set is on ctx->pinsets */
};

void leap__pins_drop(struct leap_ctx *ctx, struct leap_region *r)
{
	for (struct leap__pinset *s = ctx->pinsets; s; s = s->next)
		for (size_t i = 0; i < s->n; i++)
			if (s->r[i] == r && s->busy != r) {
				s->r[i] = NULL;
				r->pins--;
			}
}

static void coord_free(struct coord *c)
{
	struct leap_ctx *ctx = c->ctx;
	pthread_mutex_lock(&ctx->lock);
	for (size_t i = 0; i < c->set.n; i++)
		if (c->set.r[i])
			c->set.r[i]->pins--;
	for (struct leap__pinset **pp = &ctx->pinsets; c->listed && *pp; pp = &(*pp)->next)
		if (*pp == &c->set) {
			*pp = c->set.next;
			break;
		}
	pthread_cond_broadcast(&ctx->pins_cond);
	pthread_mutex_unlock(&ctx->lock);
	if (c->pool)
		leap__pool_unref(c->pool);
	leap__ctx_unref(ctx);
	free(c->set.r);
	free(c);
}

/* Pin every live region of the instance. */
static int pin_all(struct coord *c)
{
	pthread_mutex_lock(&c->ctx->lock);
	size_t n = 0;
	for (struct leap_region *r = c->ctx->regions; r; r = r->ctx_next)
		n++;
	c->set.r = calloc(n ? n : 1, sizeof(*c->set.r));
	if (c->set.r) {
		for (struct leap_region *r = c->ctx->regions; r; r = r->ctx_next) {
			r->pins++;
			c->set.r[c->set.n++] = r;
		}
		c->set.next = c->ctx->pinsets;
		c->ctx->pinsets = &c->set;
		c->listed = true;
	}
	pthread_mutex_unlock(&c->ctx->lock);
	return c->set.r ? 0 : -ENOMEM;
}

/* Region i of the walk, marked busy (its destroy then waits for us), or NULL if it was
 * destroyed meanwhile. Finish with done(). */
static struct leap_region *use(struct coord *c, size_t i)
{
	pthread_mutex_lock(&c->ctx->lock);
	struct leap_region *r = c->set.r[i];
	c->set.busy = r;
	pthread_mutex_unlock(&c->ctx->lock);
	return r;
}

/* Not busy with region i any more; release its pin too when the walk is past it. */
static void done(struct coord *c, size_t i, bool release)
{
	pthread_mutex_lock(&c->ctx->lock);
	c->set.busy = NULL;
	if (release && c->set.r[i]) {
		c->set.r[i]->pins--;
		c->set.r[i] = NULL;
	}
	pthread_cond_broadcast(&c->ctx->pins_cond);
	pthread_mutex_unlock(&c->ctx->lock);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

/*
 * Move [a, b) of r as mv says with an ordinary job, wait for it (cancelling it if the
 * coordinator is cancelled) and fold its counters in. A range busy with another job is
 * retried until that job ends. Returns 0, or the -errno that kept the job from starting.
 */
static int run_child(struct leap_job *j, struct coord *c, struct leap_region *r, uint64_t a,
		     uint64_t b, const struct leap__move *mv)
{
	struct leap_job *child;
	int rc;
	while ((rc = leap__job_submit(r, a, b, mv, c->has_opts ? &c->opts : NULL, &child)) ==
	       -EBUSY) {
		if (leap__job_cancelled(j))
			return -ECANCELED;
		sleep_ms(1);
	}
	if (rc)
		return rc;
	leap__job_set_child(j, child);
	while (leap_job_wait(child, 20 * 1000000LL) == -ETIMEDOUT)
		if (leap__job_cancelled(j))
			leap_job_cancel(child);
	leap__job_absorb(j, child); /* also takes it off j's progress */
	leap_job_destroy(&child);
	return 0;
}

/* ---------------------------------------------------------------- evacuation */

/* Pages of r on node (any slot: the node's own pool or an external pool there). */
static uint64_t pages_on(struct leap_region *r, int node)
{
	uint64_t n = 0;
	leap__region_lock(r);
	for (size_t i = 0; i < r->nruns; i++)
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
static int nearest_with_room(struct coord *c, int kind, uint64_t unit, uint64_t *room)
{
	const struct leap_topo *t = c->ctx->topo;
	int best = -1, best_d = 0;
	uint64_t best_room = 0;
	for (int n = 0; n < t->count; n++) {
		struct leap_pool *p;
		if (n == c->node || !leap__topo_valid_mem_node(t, n) ||
		    leap__ctx_pool(c->ctx, n, kind, &p) != 0)
			continue;
		int d = t->dist[c->node * t->count + n];
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

static void evacuate_region(struct leap_job *j, struct coord *c, struct leap_region *r)
{
	uint64_t pos = 0, a = 0, b = 0;
	while (!leap__job_cancelled(j) && next_on(r, c->node, pos, &a, &b)) {
		uint64_t room;
		int dst = nearest_with_room(c, r->kind, r->unit, &room);
		if (dst < 0) { /* nowhere to go: the stretch stays, reported */
			leap__job_add(j, 0, b - a, -ENOMEM);
			pos = b;
			continue;
		}
		uint64_t take = b - a < room ? b - a : room;
		struct leap__move mv = { .target = dst, .bank = -1, .protect = c->protect };
		int rc = run_child(j, c, r, a, a + take, &mv);
		if (rc == -ECANCELED || rc == -ENODEV)
			break; /* cancelled, or the region is being destroyed */
		if (rc)
			leap__job_add(j, 0, take, rc);
		/* pages of the stretch that failed stay and were counted: go on after it */
		pos = a + take;
	}
}

static void evacuate_fn(struct leap_job *j)
{
	struct coord *c = leap__job_arg(j);
	uint64_t total = 0;
	for (size_t i = 0; i < c->set.n; i++) {
		struct leap_region *r = use(c, i);
		if (r)
			total += pages_on(r, c->node);
		done(c, i, false);
	}
	leap__job_add(j, total, 0, 0);
	for (size_t i = 0; i < c->set.n && !leap__job_cancelled(j); i++) {
		struct leap_region *r = use(c, i);
		if (r)
			evacuate_region(j, c, r);
		done(c, i, true);
	}
	coord_free(c);
}

/* Set up a coordinator and spawn fn. */
static int coord_spawn(struct coord *c, void (*fn)(struct leap_job *), unsigned flags,
		       const struct leap_job_options *opts, struct leap_job **out)
{
	struct leap_job_options o; /* the caller's, zero-extended to this version's size */
	int err = flags & ~LEAP_NO_WRITERS ? -EINVAL : 0;
	if (!err && opts && !(err = leap__struct_in(&o, sizeof(o), opts, opts->size)))
		opts = &o;
	if (err) {
		free(c);
		return err;
	}
	c->protect = !(flags & LEAP_NO_WRITERS);
	if (opts) {
		c->has_opts = true;
		c->opts = *opts;
		c->opts.status = NULL; /* per-page status is per job: not offered here */
	}
	if (c->protect) {
		struct leap__wp *w;
		int rc = leap__ctx_wp(c->ctx, &w);
		if (rc) {
			free(c);
			return rc;
		}
	}
	leap__ctx_ref(c->ctx);
	if (c->pool)
		leap__pool_ref(c->pool);
	int rc = pin_all(c);
	if (!rc)
		rc = leap__job_spawn(fn, c, opts, out);
	if (rc)
		coord_free(c);
	return rc;
}

/* The synchronous form: wait, destroy, return the result. */
static int coord_sync(int rc, struct leap_job *j)
{
	if (rc)
		return rc;
	int64_t res = leap_job_wait(j, -1);
	leap_job_destroy(&j);
	return res > INT32_MAX ? INT32_MAX : (int)res;
}

LEAP_API int leap_node_evacuate(struct leap_ctx *ctx, int node, unsigned flags,
				const struct leap_job_options *opts, struct leap_job **job)
{
	if (!ctx)
		return -EINVAL;
	if (!leap__topo_valid_mem_node(ctx->topo, node))
		return -ENODEV;
	struct coord *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	c->node = node;
	struct leap_job *j = NULL;
	int rc = coord_spawn(c, evacuate_fn, flags, opts, &j);
	if (job) {
		if (!rc)
			*job = j;
		return rc;
	}
	return coord_sync(rc, j);
}

/* ---------------------------------------------------------------- compaction */

/* r's slot for pool, or -1 if r has no pages there. pre: r->lock held */
static int slot_of(struct leap_region *r, struct leap_pool *p)
{
	for (int s = 0; s < r->nslots; s++)
		if (r->slot[s] == p)
			return s;
	return -1;
}

static void compact_region(struct leap_job *j, struct coord *c, struct leap_region *r);

static void compact_fn(struct leap_job *j)
{
	struct coord *c = leap__job_arg(j);
	for (size_t i = 0; i < c->set.n && !leap__job_cancelled(j); i++) {
		struct leap_region *r = use(c, i);
		if (r)
			compact_region(j, c, r);
		done(c, i, true);
	}
	coord_free(c);
}

/* Gather r's pages in the pool in the bank holding most of them, then give back the
 * windows of the banks it left: the pages stranded there (free, but usable only by r at
 * those offsets) return to the kernel and the offset space to the pool in one piece. */
static void compact_region(struct leap_job *j, struct coord *c, struct leap_region *r)
{
	{
		uint64_t in_bank[LEAP_BANKS_MAX] = { 0 }, all = 0;
		leap__region_lock(r);
		int s = r->dying ? -1 : slot_of(r, c->pool);
		for (size_t k = 0; s >= 0 && k < r->nruns; k++)
			if (r->runs[k].slot == s) {
				in_bank[r->runs[k].bank] += r->runs[k].n;
				all += r->runs[k].n;
			}
		pthread_mutex_unlock(&r->lock);
		if (s < 0)
			return;
		/* the bank holding most of the region's pages stays; the others join it */
		int main_bank = 0;
		for (int b = 1; b < LEAP_BANKS_MAX; b++)
			if (in_bank[b] > in_bank[main_bank])
				main_bank = b;
		uint64_t minority = all - in_bank[main_bank];
		if (minority) {
			leap__job_add(j, minority, 0, 0);
			struct leap__move mv = { .target = s, .bank = main_bank,
						 .protect = c->protect };
			int rc = run_child(j, c, r, 0, r->npages, &mv);
			if (rc && rc != -ENODEV && rc != -ECANCELED)
				leap__job_add(j, 0, minority, rc);
		}
		leap__region_lock(r);
		if (!r->dying)
			leap__region_release_unused(r, s);
		pthread_mutex_unlock(&r->lock);
	}
}

LEAP_API int leap_pool_compact(struct leap_pool *pool, unsigned flags,
			       const struct leap_job_options *opts, struct leap_job **job)
{
	if (!pool)
		return -EINVAL;
	struct coord *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx = pool->ctx;
	c->node = pool->node;
	c->pool = pool;
	struct leap_job *j = NULL;
	int rc = coord_spawn(c, compact_fn, flags, opts, &j);
	if (job) {
		if (!rc)
			*job = j;
		return rc;
	}
	return coord_sync(rc, j);
}
