/*
 * worker.c - job threads bound to a node's CPUs.
 *
 * Copying on a CPU of the target node makes the destination local: the copy's writes
 * and the page tables MAP_POPULATE allocates land near the threads that will use the
 * memory. ctx.c creates one worker per node with CPUs on first use, with
 * workers_per_node threads; targets that are memory-only nodes use the worker of their
 * nearest node with CPUs. Each queued item (a job) runs start to finish on one thread.
 *
 * An item still in the queue can be taken off it (leap__worker_remove): a job cancelled
 * while it waits behind others ends at once instead of after them.
 *
 * Threads: w->lock guards the queue and the stop flag, nothing else; items are run
 * without it.
 */
#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct leap__worker {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when an item is queued or stop is set */
	struct leap__work *head, *tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker_main(void *arg)
{
	struct leap__worker *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->head)
			break; /* stop, and nothing left to run */
		struct leap__work *it = w->head;
		w->head = it->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);
		/* a caller's item may be gone (or queued again) once fn returns */
		bool owned = it->owned;
		it->fn(it->arg);
		if (owned)
			free(it);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int start_thread(struct leap__worker *w, pthread_t *th, const cpu_set_t *set)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (CPU_COUNT(set))
		pthread_attr_setaffinity_np(&attr, sizeof(*set), set);
	int rc = leap__sys_thread_create(th, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (rc == -EINVAL && CPU_COUNT(set)) /* the node's CPUs are outside our cpuset */
		rc = leap__sys_thread_create(th, NULL, worker_main, w);
	return rc;
}

int leap__worker_new(const struct leap_topo *t, int cpu_node, unsigned nthreads,
		     struct leap__worker **out)
{
	nthreads = nthreads ? nthreads : 1;
	struct leap__worker *w = calloc(1, sizeof(*w) + nthreads * sizeof(pthread_t));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < t->ncpus[cpu_node]; i++)
		if (t->cpus[cpu_node][i] < CPU_SETSIZE)
			CPU_SET(t->cpus[cpu_node][i], &set);
	for (unsigned i = 0; i < nthreads; i++) {
		int rc = start_thread(w, &w->threads[i], &set);
		if (rc) {
			leap__worker_free(w);
			return rc;
		}
		w->nthreads++;
	}
	*out = w;
	return 0;
}

void leap__worker_free(struct leap__worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int leap__worker_submit(struct leap__worker *w, void (*fn)(void *), void *arg)
{
	struct leap__work *it = malloc(sizeof(*it));
	if (!it)
		return -ENOMEM;
	*it = (struct leap__work){ fn, arg, NULL, true };
	leap__worker_push(w, it);
	return 0;
}

void leap__worker_push(struct leap__worker *w, struct leap__work *it)
{
	it->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

bool leap__worker_remove(struct leap__worker *w, struct leap__work *it)
{
	bool found = false;
	pthread_mutex_lock(&w->lock);
	struct leap__work *prev = NULL;
	for (struct leap__work *x = w->head; x; prev = x, x = x->next)
		if (x == it) {
			if (prev)
				prev->next = it->next;
			else
				w->head = it->next;
			if (w->tail == it)
				w->tail = prev;
			found = true;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	return found;
}
