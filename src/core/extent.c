/*
 * extent.c - moving one extent of a region to another node (the step a job repeats).
 *
 * One extent, under region->lock:
 *   1. plan: cut [a, b) into pieces along the region's runs; pieces already on the
 *      target stay (unless LEAP_RELOCATE). Every moving piece goes to one bank y of the
 *      target, so the range ends as one run (one mapping); consecutive moving pieces
 *      form one step, one copy and one remap.
 *   2. reserve: every destination page exists before anything moves, so a full pool
 *      (-ENOMEM) changes nothing.
 *   3. write-protect the moving pieces (wp.c): from here writers to them wait, readers
 *      do not. Pages staying in place are not protected.
 *   4. per step: populate the destination in the pool's own mapping (one madvise, no
 *      per-page faults), memcpy the current contents into it, map it over the range
 *      with MAP_FIXED|MAP_POPULATE and register it for write protection again.
 *   5. wake the writers: their faults retry and find the new pages (fresh entries, not
 *      protected); moving pieces that were protected but not remapped after a failure
 *      are unprotected first, or their writers would wait for good.
 *   6. switch the metadata, give the old pages back to their pool.
 * The old pages stay untouched until step 6, so a step whose remap failed is undone by
 * mapping its old pages back; its writers waited meanwhile, so they hold every write.
 * The steps before it are done and stay done (their new pages are mapped writable, so
 * undoing them could lose a write): the extent moves a prefix of its pieces.
 * Targets are slots (region.c): a node's own pool or an external pool. Compaction
 * (mv->bank >= 0) moves the pages of the target slot that are not in mv->bank into it.
 * A slot (pool slot n, bank y, page p) is used by page p only, so for a page not on the target
 * every bank is free; a page relocated on its own node needs a bank it is not in.
 */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>

/* Test seam (tests/hook.h): called on the moving thread, region lock held, once the
 * extent's moving pages [addr, addr+len) are write-protected and before they are copied.
 * It must not call into the library. */
void (*leap__test_protected_hook)(struct leap_region *r, void *addr, size_t len);

struct piece {
	uint64_t lo, hi;
	int slot, bank;
	bool move;
};

struct step {
	size_t first, last; /* pieces[first .. last] */
};

struct plan {
	struct leap_region *r;
	struct piece *pieces;
	size_t npieces;
	struct step *steps;
	size_t nsteps, done, reserved;
	const struct leap__move *mv;
	int target, bank;
	struct leap_pool *dst;
	uint64_t win;
	uint64_t copy_ns, remap_ns;
};

/* Cut [a, b) along the runs; mark what moves. */
static int plan_pieces(struct plan *pl, uint64_t a, uint64_t b)
{
	struct leap_region *r = pl->r;
	size_t i0 = leap__region_find_run(r, a), i1 = leap__region_find_run(r, b - 1);
	pl->pieces = malloc((i1 - i0 + 1) * sizeof(*pl->pieces));
	pl->steps = malloc((i1 - i0 + 1) * sizeof(*pl->steps));
	if (!pl->pieces || !pl->steps)
		return -ENOMEM;
	for (size_t i = i0; i <= i1; i++) {
		const struct leap__run *x = &r->runs[i];
		uint64_t lo = x->pg > a ? x->pg : a, hi = x->pg + x->n < b ? x->pg + x->n : b;
		pl->pieces[pl->npieces++] = (struct piece){
			lo, hi, x->slot, x->bank, leap__moves(pl->mv, x->slot, x->bank)
		};
	}
	return 0;
}

/* Group consecutive moving pieces into steps (one copy and one remap each). */
static void plan_steps(struct plan *pl)
{
	for (size_t i = 0; i < pl->npieces; i++) {
		if (!pl->pieces[i].move)
			continue;
		if (pl->nsteps && pl->steps[pl->nsteps - 1].last == i - 1)
			pl->steps[pl->nsteps - 1].last = i;
		else
			pl->steps[pl->nsteps++] = (struct step){ i, i };
	}
}

/*
 * Map pool pages at a region range, keep them from fork() children and register the
 * range for write protection again. Once the pages are mapped (*mapped) they are the
 * range's: the fresh mapping is not write-protected, so a writer may write to them at
 * once, and mapping other pages back would lose that write. What follows the mapping is
 * therefore tried again once on failure (a transient error must not leave a range that
 * cannot be protected), and a failure of it does not undo the mapping.
 */
static int map_range(struct leap_region *r, uint64_t lo, uint64_t n, int fd, uint64_t off,
		     bool *mapped)
{
	void *a = r->base + lo * LEAP_PG;
	int rc = leap__sys_map_file(a, n, fd, off, r->kind);
	*mapped = rc == 0;
	if (*mapped)
		leap__region_mapped(r, lo, n);
	for (int tries = 0; *mapped && tries < 2; tries++) {
		rc = leap__sys_dontfork(a, n);
		if (!rc && r->wp)
			rc = leap__wp_register(r->wp, a, n);
		if (!rc)
			break;
	}
	return rc;
}

/* Map the old pages of a step back (they are intact until commit); 0 once every piece
 * of it is mapped to them again. */
static int restore_step(struct plan *pl, const struct step *s)
{
	struct leap_region *r = pl->r;
	int rc = 0;
	for (size_t i = s->first; i <= s->last; i++) {
		const struct piece *p = &pl->pieces[i];
		bool mapped;
		int e = map_range(r, p->lo, p->hi - p->lo, r->slot[p->slot]->fd,
				  r->win[p->slot][p->bank] + p->lo, &mapped);
		rc = rc || mapped ? rc : e;
	}
	return rc;
}

/*
 * A step failed before its new pages were mapped: map its old pages back. The steps
 * before it stay done and are committed (a prefix: fail_from says where it ends). They
 * cannot be undone: once a step's new pages are mapped they are writable (the fresh
 * mapping is not write-protected), and mapping the old pages back over them would lose
 * what a writer wrote there since (t_inject's two-step case writes there at the failure).
 */
static void roll_back(struct plan *pl, size_t failed)
{
	restore_step(pl, &pl->steps[failed]);
}

/*
 * Copy a step's current contents into the destination. Small pages are read through the
 * region (mapped, populated). Huge pages are read through their pool's own mapping: the
 * region's mapping of a THP was just write-protected, and userfaultfd protects file
 * huge pages by dropping their huge entry, so reading through the region would fault in
 * every 4 KiB page again (a third of the speed).
 */
static int copy_step(struct plan *pl, const struct step *s, uint64_t lo, uint64_t n)
{
	struct leap_region *r = pl->r;
	if (r->kind == LEAP_PAGES_SMALL)
		return leap__pool_copy_in(pl->dst, pl->win + lo, r->base + lo * LEAP_PG, n);
	for (size_t i = s->first; i <= s->last; i++) {
		const struct piece *p = &pl->pieces[i];
		struct leap_pool *src = r->slot[p->slot];
		uint64_t off = r->win[p->slot][p->bank] + p->lo;
		for (uint64_t at = p->lo; at < p->hi;) {
			uint64_t avail;
			const char *a = leap__pool_addr(src, off + (at - p->lo), &avail);
			uint64_t k = p->hi - at < avail ? p->hi - at : avail;
			int rc = leap__pool_copy_in(pl->dst, pl->win + at, a, k);
			if (rc)
				return rc;
			at += k;
		}
	}
	return 0;
}

/* Copy and remap each step; on failure roll the failed step back (not the ones before
 * it: see roll_back()). */
static int move_steps(struct plan *pl)
{
	struct leap_region *r = pl->r;
	for (size_t k = 0; k < pl->nsteps; k++) {
		const struct step *s = &pl->steps[k];
		uint64_t lo = pl->pieces[s->first].lo, n = pl->pieces[s->last].hi - lo;
		uint64_t t0 = leap__sys_now_ns();
		int rc = copy_step(pl, s, lo, n);
		uint64_t t1 = leap__sys_now_ns();
		bool mapped = false;
		if (!rc)
			rc = map_range(r, lo, n, pl->dst->fd, pl->win + lo, &mapped);
		uint64_t t2 = leap__sys_now_ns();
		pl->copy_ns += t1 - t0;
		pl->remap_ns += t2 - t1;
		if (rc && !mapped) {
			roll_back(pl, k);
			return rc;
		}
		pl->done = k + 1; /* mapped: done, whatever failed after the mapping */
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * (Un)protect [lo, lo+n) of the region within one kernel mapping per call: kernels before
 * 6.5 refuse a range over several (-ENOENT). A run of small or THP pages is one mapping;
 * hugetlb mappings never merge (the kernel marks them VM_DONTEXPAND), so a hugetlb run is
 * one mapping per extent that mapped it: protect it huge page by huge page (one call per
 * 2 MiB, next to a 2 MiB copy).
 */
static int wp_range(struct leap_region *r, uint64_t lo, uint64_t n, bool on)
{
	uint64_t step = r->kind == LEAP_PAGES_HUGETLB ? r->unit : n;
	for (uint64_t at = lo; at < lo + n; at += step) {
		uint64_t k = lo + n - at < step ? lo + n - at : step;
		int rc = leap__wp_set(r->wp, r->base + at * LEAP_PG, k, on);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Write-protect the moving pieces of the extent, piece by piece: a piece lies in one
 * kernel mapping (but see wp_range), and kernels before 6.5 protect only within one
 * mapping per call.
 * Pieces that stay (already on the target) are not protected: their writers never wait.
 */
static int protect_moving(struct plan *pl)
{
	struct leap_region *r = pl->r;
	for (size_t i = 0; i < pl->npieces; i++) {
		const struct piece *p = &pl->pieces[i];
		if (!p->move)
			continue;
		int rc = wp_range(r, p->lo, p->hi - p->lo, true);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * After the steps, moving pieces that were not remapped keep their write-protected
 * entries: the pieces of steps that never ran because an earlier one failed (or because
 * protecting failed). Their next writer would wait for a wake that never comes, so their
 * protection is cleared; remapped pieces (done, or rolled back onto their old pages)
 * have fresh entries. Should the kernel refuse, such a piece is mapped again in place
 * (same pool pages, fresh entries) so that no writer can block for good.
 */
static void unprotect_left(struct plan *pl)
{
	struct leap_region *r = pl->r;
	size_t done_to = pl->done ? pl->steps[pl->done - 1].last + 1 : 0;
	for (size_t i = done_to; i < pl->npieces; i++) {
		const struct piece *p = &pl->pieces[i];
		if (!p->move)
			continue;
		bool mapped;
		if (wp_range(r, p->lo, p->hi - p->lo, false) != 0)
			map_range(r, p->lo, p->hi - p->lo, r->slot[p->slot]->fd,
				  r->win[p->slot][p->bank] + p->lo, &mapped);
	}
}

/* Switch the metadata of the steps that completed; returns pages moved. */
static uint64_t commit(struct plan *pl)
{
	struct leap_region *r = pl->r;
	struct leap_pool *dst = pl->dst;
	uint64_t moved = 0;
	if (!pl->reserved)
		return 0;
	for (size_t k = 0; k < pl->done; k++) {
		const struct step *s = &pl->steps[k];
		for (size_t i = s->first; i <= s->last; i++) {
			const struct piece *p = &pl->pieces[i];
			leap__pool_set_used(r->slot[p->slot], r->win[p->slot][p->bank] + p->lo,
					    p->hi - p->lo, false);
		}
		uint64_t lo = pl->pieces[s->first].lo, hi = pl->pieces[s->last].hi;
		/* cannot fail: leap__extent_move() made room for every step's runs */
		leap__region_assign(r, lo, hi - lo, pl->target, pl->bank);
		moved += hi - lo;
	}
	/* destination pages reserved for steps that did not run go back to free */
	for (size_t k = pl->done; k < pl->reserved; k++) {
		uint64_t lo = pl->pieces[pl->steps[k].first].lo, hi = pl->pieces[pl->steps[k].last].hi;
		leap__pool_set_used(dst, pl->win + lo, hi - lo, false);
	}
	return moved;
}

/*
 * A THP cut by [a, b) (a split): write-protecting part of it dropped the huge page's
 * whole entry, so its pages outside the range are no longer mapped, and would each take
 * a fault on their next access. Map them again now, in one call per cut huge page.
 */
static void repopulate_cut(struct leap_region *r, uint64_t a, uint64_t b)
{
	uint64_t u = r->unit;
	if (a % u)
		leap__sys_populate_read(r->base + a / u * u * LEAP_PG, u);
	if (b % u && (b - 1) / u != a / u)
		leap__sys_populate_read(r->base + b / u * u * LEAP_PG, u);
	else if (b % u && !(a % u))
		leap__sys_populate_read(r->base + a / u * u * LEAP_PG, u);
}

int leap__extent_move(struct leap_region *r, uint64_t a, uint64_t b, const struct leap__move *mv,
		      struct leap__extent_out *out, struct leap__hist *stalls)
{
	struct plan pl = { .r = r, .mv = mv, .target = mv->target };
	int rc = plan_pieces(&pl, a, b);
	if (!rc) {
		pl.bank = leap__region_choose_bank(r, a, b, mv);
		if (pl.bank == -EAGAIN) {
			/* 64 banks in one range: move it in two halves */
			free(pl.pieces);
			free(pl.steps);
			uint64_t mid = a + (b - a) / 2;
			rc = leap__extent_move(r, a, mid, mv, out, stalls);
			if (rc < 0)
				return rc;
			int rc2 = leap__extent_move(r, mid, b, mv, out, stalls);
			return rc2 < 0 ? rc2 : rc + rc2;
		}
		plan_steps(&pl);
	}
	if (!rc && pl.nsteps)
		rc = leap__region_window(r, pl.target, pl.bank, &pl.win);
	if (!rc && pl.nsteps)
		pl.dst = r->slot[pl.target];
	for (size_t k = 0; !rc && k < pl.nsteps; k++) {
		uint64_t lo = pl.pieces[pl.steps[k].first].lo, hi = pl.pieces[pl.steps[k].last].hi;
		rc = leap__pool_reserve(pl.dst, pl.win + lo, hi - lo);
		if (!rc)
			pl.reserved = k + 1;
	}
	/* each step's commit adds at most 2 runs: room for them now, before the point of no
	 * return (a remap), so the commit cannot fail for memory */
	if (!rc && pl.nsteps)
		rc = leap__region_runs_reserve(r, 3 * pl.nsteps);
	if (!rc && pl.nsteps) {
		/* faults are timed against the span from the first moving page to the last */
		uint64_t lo = pl.pieces[pl.steps[0].first].lo;
		uint64_t hi = pl.pieces[pl.steps[pl.nsteps - 1].last].hi;
		struct leap__wp_extent e = { .start_ns = leap__sys_now_ns() };
		bool wp = mv->protect && r->wp;
		if (wp) {
			leap__wp_track(r->wp, &e, r->base + lo * LEAP_PG, hi - lo);
			rc = protect_moving(&pl);
			if (!rc && leap__test_protected_hook)
				leap__test_protected_hook(r, r->base + lo * LEAP_PG,
							  (size_t)((hi - lo) * LEAP_PG));
		}
		if (!rc)
			rc = move_steps(&pl);
		if (wp) {
			unprotect_left(&pl);
			leap__wp_release(r->wp, &e, stalls);
			out->faults += e.nfaults; /* final once released */
			r->st.write_faults += e.nfaults;
		}
	}
	uint64_t moved = commit(&pl);
	if (r->kind == LEAP_PAGES_THP && pl.nsteps)
		repopulate_cut(r, a, b);
	/* committed steps are a prefix: every planned page before the first uncommitted step
	 * moved, none after it did (every step committed: all did, even if what followed the
	 * last mapping failed; no plan: none did) */
	if (!rc || (pl.nsteps && pl.done == pl.nsteps))
		out->fail_from = b;
	else
		out->fail_from = pl.done < pl.nsteps ? pl.pieces[pl.steps[pl.done].first].lo : a;
	out->moved += moved;
	out->copy_ns += pl.copy_ns;
	out->remap_ns += pl.remap_ns;
	if (moved) {
		r->st.pages_moved += moved;
		r->st.bytes_copied += moved * LEAP_PG;
		r->st.copy_ns += pl.copy_ns;
		r->st.remap_ns += pl.remap_ns;
	}
	free(pl.pieces);
	free(pl.steps);
	if (rc)
		return rc;
	return moved > INT32_MAX ? INT32_MAX : (int)moved;
}
