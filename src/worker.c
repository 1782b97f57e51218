/*
 * worker.c - copy threads bound to a node's CPUs.
 *
 * Copying on a CPU of the target node makes the destination local: the copy's writes
 * and the page tables MAP_POPULATE allocates land near the threads that will use the
 * memory. One worker per node with CPUs, created on first use by ctx.c; targets that are
 * memory-only nodes use the worker of their nearest node with CPUs.
 *
 * Threads: callers queue a request and sleep on its own condition variable; the worker
 * runs requests in order. w->lock guards the queue, the stop flag and each request's
 * done flag. No other state is shared.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct req {
	int (*fn)(void *);
	void *arg;
	int rc;
	bool done;
	pthread_cond_t cond;
	struct req *next;
};

struct leap__worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when a request is queued or stop is set */
	struct req *head, *tail;
	bool stop;
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
		struct req *r = w->head;
		w->head = r->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);
		int rc = r->fn(r->arg);
		pthread_mutex_lock(&w->lock);
		r->rc = rc;
		r->done = true;
		pthread_cond_signal(&r->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int leap__worker_new(const struct leap_topo *t, int cpu_node, struct leap__worker **out)
{
	struct leap__worker *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < t->ncpus[cpu_node]; i++)
		if (t->cpus[cpu_node][i] < CPU_SETSIZE)
			CPU_SET(t->cpus[cpu_node][i], &set);
	if (CPU_COUNT(&set))
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	int rc = -pthread_create(&w->thread, &attr, worker_main, w);
	if (rc == -EINVAL && CPU_COUNT(&set)) {
		/* the node's CPUs are outside our cpuset (taskset, containers): run unbound */
		pthread_attr_destroy(&attr);
		pthread_attr_init(&attr);
		rc = -pthread_create(&w->thread, &attr, worker_main, w);
	}
	pthread_attr_destroy(&attr);
	if (rc) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Stop the worker after the requests already queued, and free it. */
void leap__worker_free(struct leap__worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int leap__worker_call(struct leap__worker *w, int (*fn)(void *), void *arg)
{
	struct req r = { .fn = fn, .arg = arg };
	pthread_cond_init(&r.cond, NULL);
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = &r;
	else
		w->head = &r;
	w->tail = &r;
	pthread_cond_signal(&w->cond);
	while (!r.done)
		pthread_cond_wait(&r.cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&r.cond);
	return r.rc;
}
