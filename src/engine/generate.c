/* generate.c - cllm_generate: one request run to its end on the caller's thread, as a thin layer
 * over the engine (submit, then steps until it finishes). Timings for llama.cpp-style reports. */
#include "base/clock.h"
#include "base/error.h"
#include "engine/engine_internal.h"

#include <string.h>

typedef struct gen_run {
    cllm_request_id id;
    cllm_token_cb cb;
    void *user;
    cllm_gen_stats *stats;
    double t0, t_first, t_last;
    bool started, cancelled, finished;
} gen_run;

/* One event of our request: timings, statistics, the callback (unless cancelled by it). */
static void on_event(cllm_engine *e, gen_run *g, const cllm_event *ev) {
    double now = clock_now();
    cllm_gen_stats *st = g->stats;
    if (!g->started) {
        /* Prefill steps report nothing: the first event ends the prompt evaluation. */
        g->started = true;
        g->t_first = now;
        st->t_prompt = now - g->t0;
        st->t_first_token = now - g->t0;
    }
    if (ev->token >= 0) g->t_last = now;
    st->n_prompt = ev->n_prompt;
    st->n_cached = ev->n_cached;
    st->n_gen = ev->n_generated;
    if (ev->finished) {
        g->finished = true;
        st->finish = g->cancelled ? CLLM_REASON_CANCELLED : ev->finished;
        st->eos =
            ev->finished == CLLM_REASON_STOP && ev->token >= 0 && engine_is_eos(e->m, ev->token);
    }
    if (g->cancelled || !g->cb) return;
    if (g->cb(g->user, ev) && !ev->finished) {
        g->cancelled = true;
        (void)cllm_engine_cancel(e, g->id); /* finishes at the next step */
    }
}

cllm_status cllm_generate(cllm_engine *e, const cllm_request *r, cllm_token_cb cb, void *user,
                          cllm_gen_stats *stats) {
    cllm_gen_stats dummy;
    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    if (cllm_engine_has_work(e))
        return err_set(CLLM_ERR_INVALID_ARG, "generate: the engine is busy with other requests");
    gen_run g = {.cb = cb, .user = user, .stats = stats, .t0 = clock_now()};
    cllm_status st = cllm_engine_submit(e, r, &g.id);
    if (st) return st;
    while (!g.finished) {
        const cllm_event *ev;
        size_t n;
        st = cllm_engine_step(e, &ev, &n);
        for (size_t i = 0; i < n; i++)
            if (ev[i].id == g.id) on_event(e, &g, &ev[i]);
        if (st) return st; /* the request finished with an error event */
        if (!g.finished && !cllm_engine_has_work(e))
            return err_set(CLLM_ERR_INTERNAL, "generate: request %lld vanished", (long long)g.id);
    }
    if (g.t_last > g.t_first) stats->t_gen = g.t_last - g.t_first;
    return CLLM_OK;
}
