/* scheduler.c - the per-step scheduling policy of the serving engine (vLLM's: decodes first,
 * chunked prefill, FCFS admission, preempt the most recently admitted sequence when blocks run
 * out). */
#include "engine/scheduler.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

cllm_status sched_init(scheduler *sc, kv_block_manager *bm, int max_batched_tokens, int max_seqs) {
    memset(sc, 0, sizeof *sc);
    sc->bm = bm;
    sc->max_batched_tokens = max_batched_tokens;
    sc->max_seqs = max_seqs;
    sc->running = malloc(sizeof(sequence *) * (size_t)max_seqs);
    sc->batch = malloc(sizeof(sequence *) * (size_t)max_seqs);
    if (!sc->running || !sc->batch) {
        sched_free(sc);
        return err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    return CLLM_OK;
}

void sched_free(scheduler *sc) {
    free(sc->waiting);
    free(sc->running);
    free(sc->batch);
    memset(sc, 0, sizeof *sc);
}

cllm_status sched_add(scheduler *sc, sequence *s) {
    /* Room for every live sequence, so a preemption can always requeue without allocating. */
    if (sc->n_waiting + sc->n_running + 1 > sc->cap_waiting) {
        int cap = sc->cap_waiting ? 2 * sc->cap_waiting : 16;
        sequence **w = realloc(sc->waiting, sizeof(sequence *) * (size_t)cap);
        if (!w) return err_set(CLLM_ERR_NOMEM, "out of memory");
        sc->waiting = w;
        sc->cap_waiting = cap;
    }
    s->state = SEQ_WAITING;
    sc->waiting[sc->n_waiting++] = s;
    return CLLM_OK;
}

static void list_remove(sequence **list, int *n, const sequence *s) {
    for (int i = 0; i < *n; i++)
        if (list[i] == s) {
            memmove(list + i, list + i + 1, sizeof(sequence *) * (size_t)(*n - i - 1));
            (*n)--;
            return;
        }
}

void sched_remove(scheduler *sc, sequence *s) {
    if (s->state == SEQ_WAITING) list_remove(sc->waiting, &sc->n_waiting, s);
    if (s->state == SEQ_RUNNING) list_remove(sc->running, &sc->n_running, s);
    kv_bm_seq_release(sc->bm, &s->kv);
    s->n_computed = 0;
    s->state = SEQ_FINISHED;
}

/* Release the last admitted running sequence's blocks and queue it first for recompute of its
 * prompt and the tokens generated so far (its sampler state is kept, so its output continues as
 * if nothing happened). The front slot always exists: waiting's capacity >= every live one. */
static void preempt_last(scheduler *sc) {
    sequence *v = sc->running[--sc->n_running];
    kv_bm_seq_release(sc->bm, &v->kv);
    v->n_computed = 0;
    v->state = SEQ_WAITING;
    memmove(sc->waiting + 1, sc->waiting, sizeof(sequence *) * (size_t)sc->n_waiting);
    sc->waiting[0] = v;
    sc->n_waiting++;
    sc->preemptions++;
}

static void schedule_chunk(scheduler *sc, sequence *s, int *budget) {
    int remaining = s->n_tokens - s->n_computed;
    s->chunk = remaining < *budget ? remaining : *budget;
    *budget -= s->chunk;
    sc->batch[sc->n_batch++] = s;
}

void sched_schedule(scheduler *sc) {
    kv_block_manager *bm = sc->bm;
    int budget = sc->max_batched_tokens;
    bool preempted = false;
    sc->n_batch = 0;
    for (int i = 0; i < sc->n_running && budget > 0; i++) {
        sequence *s = sc->running[i];
        /* A decode: the token sampled last step enters the table (maybe a fresh block). */
        while (s->kv.n_tokens < s->n_tokens) {
            if (kv_bm_seq_append(bm, &s->kv, s->tokens[s->kv.n_tokens]) == CLLM_OK) continue;
            preempted = true;
            bool self = sc->running[sc->n_running - 1] == s;
            preempt_last(sc);
            if (self) break;
        }
        if (s->state != SEQ_RUNNING) break; /* it was the last running one */
        schedule_chunk(sc, s, &budget);
    }
    /* After a preemption the pool is short: admitting more would only thrash. */
    if (preempted) return;
    while (budget > 0 && sc->n_waiting > 0 && sc->n_running < sc->max_seqs) {
        sequence *s = sc->waiting[0];
        int need = kv_bm_prompt_blocks_needed(bm, s->tokens, s->n_tokens, NULL);
        int cached = 0;
        if (!kv_bm_can_allocate(bm, need) ||
            kv_bm_seq_alloc_prompt(bm, &s->kv, s->tokens, s->n_tokens, &cached) != CLLM_OK)
            break;
        if (!s->admitted_once) s->n_cached = cached;
        s->admitted_once = true;
        s->n_computed = cached;
        s->state = SEQ_RUNNING;
        memmove(sc->waiting, sc->waiting + 1, sizeof(sequence *) * (size_t)--sc->n_waiting);
        sc->running[sc->n_running++] = s;
        schedule_chunk(sc, s, &budget);
    }
}
