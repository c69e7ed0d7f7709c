/* engine.c - the serving engine's public API: create from a model and a KV budget, submit and
 * cancel from any thread (through the inbox, see engine_internal.h), statistics, and the step
 * loop (cllm_engine_step, or cllm_engine_run with an event callback). The step itself is in
 * engine_step.c. */
#include "base/error.h"
#include "engine/engine_internal.h"

#include <stdlib.h>
#include <string.h>

cllm_sampling_params cllm_sampling_default_params(void) {
    cllm_sampling_params p = {.temperature = 0.8f,
                              .top_k = 40,
                              .top_p = 0.95f,
                              .min_p = 0.05f,
                              .repeat_penalty = 1.0f,
                              .repeat_last_n = 64,
                              .presence_penalty = 0.0f,
                              .frequency_penalty = 0.0f,
                              .seed = 0};
    return p;
}

cllm_engine_params cllm_engine_default_params(void) {
    cllm_engine_params p = {.kv_memory = 0,
                            .kv_tokens = 16384,
                            .block_size = 16,
                            .kv_type = CLLM_KV_AUTO,
                            .max_batched_tokens = 512,
                            .max_seqs = 64,
                            .no_prefix_cache = 0,
                            .max_model_len = 0};
    return p;
}

cllm_request cllm_request_default(void) {
    cllm_request r = {0};
    r.sampling = cllm_sampling_default_params();
    r.sampling.temperature = 0;
    r.max_tokens = 16;
    return r;
}

cllm_status engine_grow(void *arr, int *cap, int n, size_t elem) {
    if (n < *cap) return CLLM_OK;
    int c = *cap ? 2 * *cap : 16;
    void *a = realloc(*(void **)arr, elem * (size_t)c);
    if (!a) return err_set(CLLM_ERR_NOMEM, "out of memory");
    *(void **)arr = a;
    *cap = c;
    return CLLM_OK;
}

cllm_status cllm_engine_create(cllm_model *m, const cllm_engine_params *pp, cllm_engine **out) {
    *out = NULL;
    cllm_engine_params p = pp ? *pp : cllm_engine_default_params();
    const model_config *c = &m->cfg;
    if (p.block_size <= 0) p.block_size = 16;
    if (p.max_batched_tokens <= 0) p.max_batched_tokens = 512;
    if (p.max_seqs <= 0) p.max_seqs = 64;
    if (p.max_model_len <= 0 || p.max_model_len > c->max_ctx) p.max_model_len = c->max_ctx;
    if (p.block_size > 1024 || p.max_batched_tokens > 65536 || p.max_seqs > 65536)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "block size %d / max batched tokens %d / max seqs %d too large",
                       p.block_size, p.max_batched_tokens, p.max_seqs);
    dtype dt = model_kv_dtype(m, p.kv_type);
    size_t per_block =
        kv_bytes_per_token(c->n_layers, c->n_kv_heads, c->head_dim, dt) * (size_t)p.block_size;
    int64_t n_blocks;
    if (p.kv_memory > 0)
        n_blocks = p.kv_memory / (int64_t)per_block;
    else
        n_blocks =
            ((int64_t)(p.kv_tokens > 0 ? p.kv_tokens : 16384) + p.block_size - 1) / p.block_size;
    if (n_blocks < 1 || n_blocks > (1 << 30))
        return err_set(CLLM_ERR_LIMIT, "KV budget gives %lld blocks of %zu bytes (need 1 .. 2^30)",
                       (long long)n_blocks, per_block);
    cllm_engine *e = calloc(1, sizeof *e);
    if (!e) return err_set(CLLM_ERR_NOMEM, "out of memory");
    e->m = m;
    e->p = p;
    e->next_id = 1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->in_mu, NULL);
    pthread_cond_init(&e->in_cv, NULL);
    cllm_status st;
    if ((st = kv_cache_create(c->n_layers, c->n_kv_heads, c->head_dim, p.block_size, (int)n_blocks,
                              dt, &e->kv)) ||
        (st = fwd_state_create(m, p.max_batched_tokens, p.max_model_len, p.block_size, &e->fs)) ||
        (st = sched_init(&e->sc, e->kv->bm, p.max_batched_tokens, p.max_seqs)))
        goto fail;
    e->kv->bm->prefix_caching = !p.no_prefix_cache;
    /* At most one logits row per scheduled sequence. */
    int rows = p.max_seqs < p.max_batched_tokens ? p.max_seqs : p.max_batched_tokens;
    size_t nb = (size_t)p.max_batched_tokens;
    e->tok = malloc(sizeof(int32_t) * nb);
    e->pos = malloc(sizeof(int32_t) * nb);
    e->tables = malloc(sizeof(int32_t *) * nb);
    e->want = malloc(nb);
    e->logits = malloc(sizeof(float) * (size_t)rows * (size_t)c->vocab);
    e->lp_row = malloc(sizeof(float) * (size_t)c->vocab);
    if (!e->tok || !e->pos || !e->tables || !e->want || !e->logits || !e->lp_row) {
        st = err_set(CLLM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    engine_publish_stats(e);
    *out = e;
    return CLLM_OK;
fail:
    cllm_engine_free(e);
    return st;
}

void cllm_engine_free(cllm_engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_live; i++)
        seq_free(e->live[i], e->kv ? e->kv->bm : NULL);
    for (int i = 0; i < e->n_inbox; i++)
        seq_free(e->inbox[i], NULL);
    sched_free(&e->sc);
    fwd_state_free(e->fs);
    kv_cache_free(e->kv);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->in_mu);
    pthread_cond_destroy(&e->in_cv);
    free(e->inbox);
    free(e->cancels);
    free(e->ids);
    free(e->lp_row);
    free(e->live);
    free(e->done);
    free(e->events);
    free(e->tok);
    free(e->pos);
    free(e->tables);
    free(e->want);
    free(e->logits);
    free(e);
}

/* Validate and tokenize without any engine lock (the model and the pool's geometry do not
 * change after create), then queue under in_mu. */
cllm_status cllm_engine_submit(cllm_engine *e, const cllm_request *r, cllm_request_id *id) {
    *id = 0;
    const model_config *c = &e->m->cfg;
    const kv_block_manager *bm = e->kv->bm;
    if (r->max_tokens < 0) return err_set(CLLM_ERR_INVALID_ARG, "max_tokens %d < 0", r->max_tokens);
    if (r->min_tokens < 0) return err_set(CLLM_ERR_INVALID_ARG, "min_tokens %d < 0", r->min_tokens);
    if (r->top_logprobs < 0 || r->top_logprobs > CLLM_MAX_TOP_LOGPROBS)
        return err_set(CLLM_ERR_INVALID_ARG, "top_logprobs %d outside 0..%d", r->top_logprobs,
                       CLLM_MAX_TOP_LOGPROBS);
    if (r->n_stop < 0 || (r->n_stop && !r->stop))
        return err_set(CLLM_ERR_INVALID_ARG, "bad stop strings");
    for (int i = 0; i < r->n_stop; i++)
        if (!r->stop[i] || !r->stop[i][0])
            return err_set(CLLM_ERR_INVALID_ARG, "stop string %d is empty", i);
    if (r->n_stop && !e->m->tok)
        return err_set(CLLM_ERR_INVALID_ARG, "stop strings need a tokenizer");
    int32_t *owned = NULL;
    const int32_t *ids = r->prompt;
    size_t n = r->n_prompt;
    cllm_status st;
    if (!ids) {
        if (!r->text) return err_set(CLLM_ERR_INVALID_ARG, "request has neither tokens nor text");
        if (!e->m->tok) return err_set(CLLM_ERR_INVALID_ARG, "text prompt needs a tokenizer");
        if ((st = cllm_tokenize(e->m, r->text, strlen(r->text), 1, 0, &owned, &n))) return st;
        ids = owned;
    }
    sequence *s = NULL;
    if (n == 0) {
        st = err_set(CLLM_ERR_INVALID_ARG, "empty prompt: at least one token is needed");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab) {
            st = err_set(CLLM_ERR_INVALID_ARG, "token id %d at %zu out of range (vocab %d)", ids[i],
                         i, c->vocab);
            goto done;
        }
    size_t total = n + (size_t)r->max_tokens;
    if (total > (size_t)e->p.max_model_len) {
        st = err_set(CLLM_ERR_LIMIT, "prompt %zu + max_tokens %d > context %d", n, r->max_tokens,
                     e->p.max_model_len);
        goto done;
    }
    /* Alone in the pool it must fit, or preemption could never make room for it. */
    size_t need = (total + (size_t)bm->block_size - 1) / (size_t)bm->block_size;
    if (need > (size_t)bm->n_blocks) {
        st = err_set(CLLM_ERR_LIMIT,
                     "prompt %zu + max_tokens %d needs %zu KV blocks > %d in the pool (%d tokens)",
                     n, r->max_tokens, need, bm->n_blocks, bm->n_blocks * bm->block_size);
        goto done;
    }
    if ((st = seq_create(e->m->tok, 0, r, ids, (int)n, c->vocab, &s))) goto done;
    pthread_mutex_lock(&e->in_mu);
    if (!(st = engine_grow(&e->inbox, &e->cap_inbox, e->n_inbox, sizeof(sequence *))) &&
        !(st = engine_grow(&e->ids, &e->cap_ids, e->n_ids, sizeof(cllm_request_id)))) {
        s->id = e->next_id++;
        e->inbox[e->n_inbox++] = s;
        e->ids[e->n_ids++] = s->id;
        *id = s->id;
        s = NULL;
        pthread_cond_signal(&e->in_cv);
    }
    pthread_mutex_unlock(&e->in_mu);
done:
    seq_free(s, NULL);
    free(owned);
    return st;
}

cllm_status cllm_engine_cancel(cllm_engine *e, cllm_request_id id) {
    cllm_status st = CLLM_ERR_NOT_FOUND;
    pthread_mutex_lock(&e->in_mu);
    for (int i = 0; i < e->n_ids; i++)
        if (e->ids[i] == id) {
            st = engine_grow(&e->cancels, &e->cap_cancels, e->n_cancels, sizeof(cllm_request_id));
            if (!st) {
                e->cancels[e->n_cancels++] = id;
                pthread_cond_signal(&e->in_cv);
            }
            break;
        }
    pthread_mutex_unlock(&e->in_mu);
    if (st == CLLM_ERR_NOT_FOUND) err_set(st, "request %lld unknown or finished", (long long)id);
    return st;
}

static int has_work_locked(const cllm_engine *e) {
    return e->n_inbox > 0 || e->n_cancels > 0 || e->snap.n_running + e->snap.n_waiting > 0;
}

int cllm_engine_has_work(cllm_engine *e) {
    pthread_mutex_lock(&e->in_mu);
    int r = has_work_locked(e);
    pthread_mutex_unlock(&e->in_mu);
    return r;
}

void cllm_engine_get_stats(cllm_engine *e, cllm_engine_stats *o) {
    pthread_mutex_lock(&e->in_mu);
    *o = e->snap;
    o->n_waiting += e->n_inbox;
    pthread_mutex_unlock(&e->in_mu);
}

void cllm_engine_set_logits_hook(cllm_engine *e, cllm_logits_hook hook, void *user) {
    pthread_mutex_lock(&e->mu);
    e->hook = hook;
    e->hook_user = user;
    pthread_mutex_unlock(&e->mu);
}

cllm_status cllm_engine_check(cllm_engine *e) {
    pthread_mutex_lock(&e->mu);
    cllm_status st = CLLM_OK;
    const kv_seq **seqs = malloc(sizeof(kv_seq *) * (size_t)(e->n_live + 1));
    if (!seqs) {
        st = err_set(CLLM_ERR_NOMEM, "out of memory");
    } else {
        for (int i = 0; i < e->n_live; i++)
            seqs[i] = &e->live[i]->kv;
        st = kv_bm_check(e->kv->bm, (const kv_seq *const *)seqs, e->n_live);
    }
    free(seqs);
    pthread_mutex_unlock(&e->mu);
    return st;
}

cllm_status cllm_engine_step(cllm_engine *e, const cllm_event **events, size_t *n_events) {
    pthread_mutex_lock(&e->mu);
    cllm_status st = engine_step_locked(e);
    *events = e->events;
    *n_events = (size_t)e->n_events;
    pthread_mutex_unlock(&e->mu);
    return st;
}

cllm_status cllm_engine_run(cllm_engine *e, cllm_event_cb cb, void *user) {
    for (;;) {
        pthread_mutex_lock(&e->in_mu);
        /* Finished sequences of the last step are freed by the next step: run one when any
         * are pending even without new work, so their blocks go back to the pool. */
        while (!e->stop && !has_work_locked(e) && e->n_done == 0)
            pthread_cond_wait(&e->in_cv, &e->in_mu);
        int stop = e->stop;
        e->stop = 0;
        pthread_mutex_unlock(&e->in_mu);
        if (stop) return CLLM_OK;
        const cllm_event *ev;
        size_t n;
        /* A failed forward reports itself through error events; keep serving the others. */
        (void)cllm_engine_step(e, &ev, &n);
        for (size_t i = 0; i < n && cb; i++)
            cb(user, &ev[i]);
    }
}

void cllm_engine_stop(cllm_engine *e) {
    pthread_mutex_lock(&e->in_mu);
    e->stop = 1;
    pthread_cond_signal(&e->in_cv);
    pthread_mutex_unlock(&e->in_mu);
}
