/* threadpool.h - a fixed pool of worker threads, created once, that run one parallel job at a time.
 *
 * tp_run(tp, fn, ctx) calls fn(ctx, ith, nth) once on each of the nth threads (the caller is
 * thread 0) and returns when all have finished. Workers spin briefly between jobs (a decode
 * step issues hundreds of small jobs) and then sleep on a condition variable. */
#ifndef CLLM_BASE_THREADPOOL_H
#define CLLM_BASE_THREADPOOL_H

#include "cllm.h"

typedef struct threadpool threadpool;
typedef void (*tp_fn)(void *ctx, int ith, int nth);

/* n_threads <= 0 means the number of online CPUs. On error returns NULL-set *out and a status. */
cllm_status tp_create(int n_threads, threadpool **out);
void tp_free(threadpool *tp);
int tp_size(const threadpool *tp);
/* Run fn on every thread. tp may be NULL (runs fn(ctx, 0, 1) on the caller). Not reentrant. */
void tp_run(threadpool *tp, tp_fn fn, void *ctx);

/* Split [0, n) into nth near-equal contiguous parts, aligned to `align`; part ith is [*lo, *hi). */
void tp_split(long n, long align, int ith, int nth, long *lo, long *hi);

#endif
