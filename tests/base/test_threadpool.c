/* test_threadpool.c - base/threadpool: tp_split's partitions, and tp_run under stress: many
 * dispatches with odd sizes and alignments, every index covered exactly once, every thread
 * called once per dispatch, 1..4 threads, idle pools whose workers went to sleep, repeated
 * create/free, and independent pools driven from several threads at once. (One pool has one
 * submitter at a time - tp_run is not reentrant - so concurrent submitters are not tested.)
 * No timing assertions. */
#include "base/threadpool.h"
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAX_N 5000
#define MAX_T 4

/* ---- tp_split ---- */

static void test_split(void) {
    long sizes[] = {0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 63, 64, 65, 100, 127, 255, 1000, 4097};
    long aligns[] = {0, 1, 2, 3, 4, 7, 8, 16, 32, 64, 100};
    int bad = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++)
            for (int nth = 1; nth <= 9; nth++) {
                long n = sizes[si], align = aligns[ai] < 1 ? 1 : aligns[ai];
                long prev_hi = 0, min_units = n + 1, max_units = -1;
                for (int ith = 0; ith < nth; ith++) {
                    long lo = -1, hi = -1;
                    tp_split(n, aligns[ai], ith, nth, &lo, &hi);
                    /* contiguous, in order, inside [0, n), aligned starts */
                    bool ok = lo == prev_hi && lo <= hi && hi <= n && (lo % align == 0 || lo == n);
                    if (!ok && bad++ < 10)
                        fprintf(stderr, "split n=%ld align=%ld nth=%d ith=%d: [%ld, %ld)\n", n,
                                aligns[ai], nth, ith, lo, hi);
                    prev_hi = hi;
                    long units = (hi - lo + align - 1) / align;
                    if (units < min_units) min_units = units;
                    if (units > max_units) max_units = units;
                }
                CHECK_MSG(prev_hi == n, "n=%ld align=%ld nth=%d ends at %ld", n, align, nth,
                          prev_hi);
                /* near-equal: the parts differ by at most one alignment unit */
                CHECK_MSG(max_units - min_units <= 1, "n=%ld align=%ld nth=%d: %ld..%ld units", n,
                          align, nth, min_units, max_units);
            }
    CHECK_MSG(bad == 0, "%d bad parts", bad);
}

/* ---- tp_run ---- */

typedef struct job {
    long n, align;
    int expect_nth;
    atomic_int hits[MAX_N];
    atomic_int calls[MAX_T];
    atomic_int wrong_nth;
} job;

static void job_fn(void *ctx, int ith, int nth) {
    job *j = ctx;
    if (nth != j->expect_nth || ith < 0 || ith >= nth || ith >= MAX_T) {
        atomic_fetch_add(&j->wrong_nth, 1);
        return;
    }
    atomic_fetch_add(&j->calls[ith], 1);
    long lo, hi;
    tp_split(j->n, j->align, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++)
        atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* One dispatch of a job over n indices; returns the number of problems found. */
static int dispatch(threadpool *tp, job *j, long n, long align) {
    j->n = n;
    j->align = align;
    j->expect_nth = tp_size(tp);
    for (long i = 0; i < n; i++)
        atomic_store_explicit(&j->hits[i], 0, memory_order_relaxed);
    for (int t = 0; t < MAX_T; t++)
        atomic_store(&j->calls[t], 0);
    atomic_store(&j->wrong_nth, 0);
    tp_run(tp, job_fn, j);
    /* tp_run returned: every thread's work must be visible and complete */
    int problems = atomic_load(&j->wrong_nth);
    for (int t = 0; t < MAX_T; t++)
        problems += atomic_load(&j->calls[t]) != (t < j->expect_nth ? 1 : 0);
    for (long i = 0; i < n; i++)
        problems += atomic_load_explicit(&j->hits[i], memory_order_relaxed) != 1;
    return problems;
}

static job g_job; /* large: keep it off the stack */

static void test_run_stress(void) {
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int nt = 1; nt <= MAX_T; nt++) {
        threadpool *tp = NULL;
        CHECK(tp_create(nt, &tp) == CLLM_OK && tp);
        if (!tp) continue;
        CHECK(tp_size(tp) == nt);
        int problems = 0, first_bad = -1;
        for (int it = 0; it < 800; it++) {
            /* odd sizes: tiny (fewer items than threads), empty, and large with odd aligns */
            long n = (long)(rng_next(&seed) % (it % 5 == 0 ? 5 : MAX_N));
            long align = (long)(rng_next(&seed) % 19); /* 0 -> treated as 1 */
            int p = dispatch(tp, &g_job, n, align);
            if (p && first_bad < 0) first_bad = it;
            problems += p;
            if (it % 400 == 200) sleep_ms(30); /* let the workers fall asleep, then wake them */
        }
        CHECK_MSG(problems == 0, "%d threads: %d problems (first at dispatch %d)", nt, problems,
                  first_bad);
        tp_free(tp);
    }
    /* a NULL pool runs the job on the caller as thread 0 of 1 */
    CHECK(dispatch(NULL, &g_job, 777, 3) == 0);
}

/* Pools created and freed over and over: right after creation, after one job, and after the
 * workers went to sleep. */
static void test_create_free(void) {
    static job j;
    int problems = 0;
    for (int it = 0; it < 60; it++) {
        int nt = 1 + it % MAX_T;
        threadpool *tp = NULL;
        if (tp_create(nt, &tp) != CLLM_OK || !tp) {
            CHECK_MSG(0, "tp_create(%d) failed: %s", nt, cllm_last_error());
            continue;
        }
        if (it % 3 >= 1) problems += dispatch(tp, &j, 100 + it, it % 4);
        if (it % 3 == 2 && it % 12 == 2) {
            sleep_ms(25);
            problems += dispatch(tp, &j, 3, 1);
        }
        tp_free(tp);
    }
    CHECK_MSG(problems == 0, "%d problems", problems);
    tp_free(NULL); /* allowed */
    CHECK(tp_size(NULL) == 1);

    threadpool *tp = (threadpool *)&j; /* must be overwritten with NULL on failure */
    CHECK(tp_create(100000, &tp) == CLLM_ERR_INVALID_ARG && tp == NULL);
    CHECK(tp_create(0, &tp) == CLLM_OK && tp && tp_size(tp) >= 1); /* online CPUs */
    tp_free(tp);
}

/* Separate pools used from separate threads at the same time (each pool has one submitter). */
typedef struct driver {
    int nt, problems;
    job j;
} driver;

static void *drive(void *p) {
    driver *d = p;
    threadpool *tp = NULL;
    if (tp_create(d->nt, &tp) != CLLM_OK) {
        d->problems = -1;
        return NULL;
    }
    uint64_t seed = 12345u + (uint64_t)d->nt;
    for (int it = 0; it < 400; it++)
        d->problems += dispatch(tp, &d->j, (long)(rng_next(&seed) % 3000), it % 9);
    tp_free(tp);
    return NULL;
}

static void test_independent_pools(void) {
    static driver d[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        d[i].nt = 2 + i;
        d[i].problems = 0;
        CHECK(pthread_create(&th[i], NULL, drive, &d[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(d[i].problems == 0, "pool of %d: %d problems", d[i].nt, d[i].problems);
    }
}

int main(void) {
    test_split();
    test_run_stress();
    test_create_free();
    test_independent_pools();
    CHECK_DONE();
}
