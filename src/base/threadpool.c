/* threadpool.c - persistent workers with a generation counter; spin then sleep. */
#include "base/threadpool.h"

#include "base/error.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERS 20000

struct threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;     /* bumped for every job */
    atomic_int pending;  /* workers still running the current job */
    atomic_int sleepers; /* workers blocked on cv */
    atomic_bool quit;
    tp_fn fn;
    void *ctx;
};

typedef struct {
    threadpool *tp;
    int ith;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *wa = p;
    threadpool *tp = wa->tp;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen &&
               !atomic_load(&tp->quit)) {
            if (++spins < SPIN_ITERS) {
                /* past a short pure spin, yield so an oversubscribed machine keeps moving */
                if (spins > 1000)
                    sched_yield();
                else
                    CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->sleepers, 1);
            while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->quit))
                pthread_cond_wait(&tp->cv, &tp->mu);
            atomic_fetch_sub(&tp->sleepers, 1);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->quit)) return NULL;
        seen = g;
        tp->fn(tp->ctx, ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_release);
    }
}

cllm_status tp_create(int n_threads, threadpool **out) {
    *out = NULL;
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 256) return err_set(CLLM_ERR_INVALID_ARG, "too many threads: %d", n_threads);
    threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return err_set(CLLM_ERR_NOMEM, "out of memory creating thread pool");
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv, NULL);
    tp->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!tp->threads) {
        free(tp);
        return err_set(CLLM_ERR_NOMEM, "out of memory creating thread pool");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa ||
            (wa->tp = tp, wa->ith = i, pthread_create(&tp->threads[i], NULL, worker_main, wa))) {
            free(wa);
            tp->n = i;
            tp_free(tp);
            return err_set(CLLM_ERR_INTERNAL, "cannot create worker thread %d", i);
        }
    }
    *out = tp;
    return CLLM_OK;
}

void tp_free(threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->quit, true);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; i < tp->n; i++)
        pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv);
    free(tp->threads);
    free(tp);
}

int tp_size(const threadpool *tp) {
    return tp ? tp->n : 1;
}

void tp_run(threadpool *tp, tp_fn fn, void *ctx) {
    if (!tp || tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store(&tp->pending, tp->n - 1);
    atomic_fetch_add(&tp->gen, 1); /* seq_cst: ordered before the sleepers load below */
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cv);
        pthread_mutex_unlock(&tp->mu);
    }
    fn(ctx, 0, tp->n);
    for (int spins = 0; atomic_load_explicit(&tp->pending, memory_order_acquire) > 0; spins++) {
        if (spins > 1000)
            sched_yield();
        else
            CPU_RELAX();
    }
}

void tp_split(long n, long align, int ith, int nth, long *lo, long *hi) {
    if (align < 1) align = 1;
    long units = (n + align - 1) / align;
    long per = units / nth, rem = units % nth;
    long u0 = ith * per + (ith < rem ? ith : rem);
    long u1 = u0 + per + (ith < rem ? 1 : 0);
    *lo = u0 * align < n ? u0 * align : n;
    *hi = u1 * align < n ? u1 * align : n;
}
