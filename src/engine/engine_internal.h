/* engine_internal.h - the serving engine's state, shared by engine.c (public API: create,
 * submit, cancel, stats, the run loop) and engine_step.c (one step: schedule, forward, sample).
 *
 * Two locks. `mu` is held by the engine thread for a whole step (and by the debug hooks).
 * `in_mu` guards the inbox: requests submitted and cancellations asked for by other threads,
 * the ids of live requests, a snapshot of the statistics, and the stop flag. Submit, cancel,
 * stats and stop take only `in_mu`, so they never wait for a step; the step drains the inbox at
 * its start. Lock order: mu before in_mu. */
#ifndef CLLM_ENGINE_ENGINE_INTERNAL_H
#define CLLM_ENGINE_ENGINE_INTERNAL_H

#include "engine/scheduler.h"
#include "model/model.h"

#include <pthread.h>

struct cllm_engine {
    cllm_model *m;
    cllm_engine_params p;
    pthread_mutex_t mu;
    kv_cache *kv;
    fwd_state *fs;
    scheduler sc;
    sequence **live; /* every sequence not yet freed (engine thread only) */
    int n_live, cap_live;
    sequence **done; /* finished last step: freed at the next step, after their events */
    int n_done, cap_done;
    cllm_event *events;
    int n_events, cap_events;
    int32_t *tok, *pos; /* [max_batched_tokens] batch rows */
    const int32_t **tables;
    uint8_t *want;
    float *logits; /* [max logit rows][vocab] */
    float *lp_row; /* [vocab] copy of a row for log-probabilities */
    char err[256]; /* message of a failed forward, for error events */
    cllm_logits_hook hook;
    void *hook_user;
    int64_t tokens_processed, tokens_generated, steps;

    /* ---- under in_mu ---- */
    pthread_mutex_t in_mu;
    pthread_cond_t in_cv;
    cllm_request_id next_id;
    sequence **inbox; /* submitted, not yet seen by a step */
    int n_inbox, cap_inbox;
    cllm_request_id *cancels; /* cancellations not yet applied */
    int n_cancels, cap_cancels;
    cllm_request_id *ids; /* requests not yet finished (submit order) */
    int n_ids, cap_ids;
    cllm_engine_stats snap; /* statistics as of the end of the last step */
    int stop;
};

/* Grow an array of elements of size elem to hold n + 1 (amortised doubling). */
cllm_status engine_grow(void *arr, int *cap, int n, size_t elem);
/* Move submitted requests and cancellations into the scheduler (engine thread, under mu). */
cllm_status engine_drain_inbox(cllm_engine *e);
/* Refresh e->snap (engine thread, under mu; takes in_mu). */
void engine_publish_stats(cllm_engine *e);
/* Forget a finished request's id (engine thread; takes in_mu). */
void engine_forget_id(cllm_engine *e, cllm_request_id id);
/* id ends a sequence: one of the model's EOS ids or the tokenizer's eos_token. */
bool engine_is_eos(const cllm_model *m, int32_t id);
/* One step under mu: drain, schedule, forward, sample, events in e->events. */
cllm_status engine_step_locked(cllm_engine *e);

#endif
