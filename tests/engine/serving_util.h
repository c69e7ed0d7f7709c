/* serving_util.h - test helper: run a set of requests through a fresh engine (with staggered
 * arrival), collecting each request's tokens, text, logits rows and finish reason. */
#ifndef CLLM_TESTS_SERVING_UTIL_H
#define CLLM_TESTS_SERVING_UTIL_H

#include "check.h"
#include "testdata.h"
#include "cllm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX_TOKENS 160
#define RUN_VOCAB 512

typedef struct run_req {
    const int32_t *prompt;
    int n_prompt;
    int max_tokens;
    cllm_sampling_params sp;
    int submit_step; /* submitted before this step */
    int ignore_eos;
} run_req;

typedef struct run_out {
    int32_t tokens[RUN_MAX_TOKENS];
    int n;
    float *logits; /* [RUN_MAX_TOKENS][RUN_VOCAB], rows of the hook */
    int n_logits;
    char text[4096];
    size_t text_len;
    cllm_finish_reason reason;
    int n_cached;
} run_out;

typedef struct run_ctx {
    run_out *outs;
    cllm_request_id ids[64];
    int n;
} run_ctx;

static inline int run_index(const run_ctx *c, cllm_request_id id) {
    for (int i = 0; i < c->n; i++)
        if (c->ids[i] == id) return i;
    return -1;
}

static inline void run_hook(void *user, cllm_request_id id, int index, const float *logits,
                            int vocab) {
    run_ctx *c = user;
    int i = run_index(c, id);
    if (i < 0 || index >= RUN_MAX_TOKENS || vocab != RUN_VOCAB) return;
    memcpy(c->outs[i].logits + (size_t)index * RUN_VOCAB, logits, sizeof(float) * RUN_VOCAB);
    if (index + 1 > c->outs[i].n_logits) c->outs[i].n_logits = index + 1;
}

/* Same tokens, finish reason and bitwise-same logits rows. */
static inline int run_same(const run_out *a, const run_out *b) {
    return a->n == b->n && memcmp(a->tokens, b->tokens, sizeof(int32_t) * a->n) == 0 &&
           a->n_logits == b->n_logits && a->reason == b->reason &&
           memcmp(a->logits, b->logits, sizeof(float) * RUN_VOCAB * a->n_logits) == 0;
}

static inline void run_outs_free(run_out *o, int n) {
    for (int i = 0; i < n; i++)
        free(o[i].logits);
}

/* Returns 0 on success; checks pool invariants every step and that no block is left in use. */
static inline int run_engine(cllm_model *m, const cllm_engine_params *ep, const run_req *rq, int n,
                             run_out *outs, cllm_engine_stats *stats) {
    cllm_engine *e;
    if (cllm_engine_create(m, ep, &e)) {
        fprintf(stderr, "engine: %s\n", cllm_last_error());
        return 1;
    }
    memset(outs, 0, sizeof(run_out) * (size_t)n);
    run_ctx ctx = {.outs = outs, .n = 0};
    for (int i = 0; i < n; i++)
        outs[i].logits = calloc((size_t)RUN_MAX_TOKENS * RUN_VOCAB, sizeof(float));
    cllm_engine_set_logits_hook(e, run_hook, &ctx);
    int rc = 0, submitted = 0, finished = 0;
    for (int step = 0; finished < n && step < 100000; step++) {
        for (; submitted < n && rq[submitted].submit_step <= step; submitted++) {
            cllm_request r = cllm_request_default();
            r.prompt = rq[submitted].prompt;
            r.n_prompt = (size_t)rq[submitted].n_prompt;
            r.max_tokens = rq[submitted].max_tokens;
            r.sampling = rq[submitted].sp;
            r.ignore_eos = rq[submitted].ignore_eos;
            if (cllm_engine_submit(e, &r, &ctx.ids[submitted])) {
                fprintf(stderr, "submit %d: %s\n", submitted, cllm_last_error());
                rc = 1;
                goto out;
            }
            ctx.n = submitted + 1;
        }
        const cllm_event *ev;
        size_t nev;
        if (cllm_engine_step(e, &ev, &nev)) {
            fprintf(stderr, "step: %s\n", cllm_last_error());
            rc = 1;
            goto out;
        }
        if (cllm_engine_check(e)) {
            fprintf(stderr, "check: %s\n", cllm_last_error());
            rc = 1;
            goto out;
        }
        for (size_t k = 0; k < nev; k++) {
            int i = run_index(&ctx, ev[k].id);
            if (i < 0) continue;
            run_out *o = &outs[i];
            if (ev[k].token >= 0 && o->n < RUN_MAX_TOKENS) o->tokens[o->n++] = ev[k].token;
            if (ev[k].text && o->text_len + ev[k].len < sizeof o->text) {
                memcpy(o->text + o->text_len, ev[k].text, ev[k].len);
                o->text_len += ev[k].len;
            }
            o->n_cached = ev[k].n_cached;
            if (ev[k].finished) {
                o->reason = ev[k].finished;
                finished++;
            }
        }
    }
    cllm_engine_stats st;
    cllm_engine_get_stats(e, &st);
    if (stats) *stats = st;
    if (finished < n || st.kv_blocks_used != 0 || st.n_running || st.n_waiting) {
        fprintf(stderr, "not drained: finished %d/%d, used blocks %d\n", finished, n,
                st.kv_blocks_used);
        rc = 1;
    }
out:
    cllm_engine_free(e);
    return rc;
}

static inline cllm_model *load_stories(int threads) {
    char path[4096];
    td_join(path, sizeof path, "stories260K-hf");
    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = threads;
    cllm_model *m;
    if (cllm_model_load(path, &mp, &m)) {
        fprintf(stderr, "%s\n", cllm_last_error());
        return NULL;
    }
    return m;
}

static inline cllm_sampling_params greedy(void) {
    cllm_sampling_params sp = cllm_sampling_default_params();
    sp.temperature = 0;
    return sp;
}

#endif
