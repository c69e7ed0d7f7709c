/* engine.c - the serving engine's public API: create from a model and a KV budget, submit,
 * cancel, and the step loop (schedule -> one forward over all scheduled tokens -> sample per
 * sequence -> detokenize, stop rules -> events). */
#include "base/error.h"
#include "engine/scheduler.h"
#include "model/model.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct cllm_engine {
    cllm_model *m;
    cllm_engine_params p;
    pthread_mutex_t mu;
    kv_cache *kv;
    fwd_state *fs;
    scheduler sc;
    cllm_request_id next_id;
    sequence **live; /* every sequence not yet freed (for cancel and free) */
    int n_live, cap_live;
    sequence **done; /* finished last step: freed at the next step, after their events */
    int n_done, cap_done;
    cllm_event *events;
    int n_events, cap_events;
    int32_t *tok, *pos; /* [max_batched_tokens] batch rows */
    const int32_t **tables;
    uint8_t *want;
    float *logits; /* [max logit rows][vocab] */
    cllm_logits_hook hook;
    void *hook_user;
    int64_t tokens_processed, tokens_generated, steps;
};

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

/* Grow an array of pointers to hold n + 1 (amortised doubling). */
static cllm_status grow(void *arr, int *cap, int n, size_t elem) {
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
    if (!e->tok || !e->pos || !e->tables || !e->want || !e->logits) {
        st = err_set(CLLM_ERR_NOMEM, "out of memory");
        goto fail;
    }
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
    sched_free(&e->sc);
    fwd_state_free(e->fs);
    kv_cache_free(e->kv);
    pthread_mutex_destroy(&e->mu);
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

static cllm_status submit_locked(cllm_engine *e, const cllm_request *r, cllm_request_id *id) {
    const model_config *c = &e->m->cfg;
    const kv_block_manager *bm = e->kv->bm;
    if (r->max_tokens < 1) return err_set(CLLM_ERR_INVALID_ARG, "max_tokens %d < 1", r->max_tokens);
    if (r->n_stop < 0 || (r->n_stop && !r->stop))
        return err_set(CLLM_ERR_INVALID_ARG, "bad stop strings");
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
    sequence *s;
    if ((st = grow(&e->live, &e->cap_live, e->n_live, sizeof(sequence *))) ||
        (st = seq_create(e->m->tok, e->next_id, r, ids, (int)n, c->vocab, &s)))
        goto done;
    if ((st = sched_add(&e->sc, s))) {
        seq_free(s, NULL);
        goto done;
    }
    e->live[e->n_live++] = s;
    *id = e->next_id++;
done:
    free(owned);
    return st;
}

cllm_status cllm_engine_submit(cllm_engine *e, const cllm_request *r, cllm_request_id *id) {
    *id = 0;
    pthread_mutex_lock(&e->mu);
    cllm_status st = submit_locked(e, r, id);
    pthread_mutex_unlock(&e->mu);
    return st;
}

cllm_status cllm_engine_cancel(cllm_engine *e, cllm_request_id id) {
    cllm_status st = CLLM_ERR_NOT_FOUND;
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->n_live; i++)
        if (e->live[i]->id == id && e->live[i]->state != SEQ_FINISHED) {
            e->live[i]->cancel = true;
            st = CLLM_OK;
        }
    pthread_mutex_unlock(&e->mu);
    if (st) err_set(st, "request %lld unknown or finished", (long long)id);
    return st;
}

int cllm_engine_has_work(cllm_engine *e) {
    pthread_mutex_lock(&e->mu);
    int r = e->sc.n_waiting + e->sc.n_running > 0;
    pthread_mutex_unlock(&e->mu);
    return r;
}

void cllm_engine_get_stats(cllm_engine *e, cllm_engine_stats *o) {
    pthread_mutex_lock(&e->mu);
    const kv_block_manager *bm = e->kv->bm;
    memset(o, 0, sizeof *o);
    o->n_running = e->sc.n_running;
    o->n_waiting = e->sc.n_waiting;
    o->kv_blocks_total = bm->n_blocks;
    o->kv_blocks_used = kv_bm_n_used(bm);
    o->kv_blocks_free = kv_bm_n_free(bm);
    o->kv_blocks_cached = kv_bm_n_cached(bm);
    o->block_size = bm->block_size;
    o->prompt_tokens = bm->stats.prompt_tokens;
    o->prefix_hit_tokens = bm->stats.hit_tokens;
    o->tokens_processed = e->tokens_processed;
    o->tokens_generated = e->tokens_generated;
    o->preemptions = e->sc.preemptions;
    o->steps = e->steps;
    pthread_mutex_unlock(&e->mu);
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

/* ---- the step ---- */

static bool is_eos(const cllm_model *m, int32_t id) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == id) return true;
    return m->tok && tok_eos_id(m->tok) == id;
}

static cllm_status add_event(cllm_engine *e, sequence *s, int32_t token) {
    cllm_status st = grow(&e->events, &e->cap_events, e->n_events, sizeof(cllm_event));
    if (st) return st;
    e->events[e->n_events++] = (cllm_event){.id = s->id,
                                            .token = token,
                                            .text = s->ts ? (s->text ? s->text : "") : NULL,
                                            .len = s->text_len,
                                            .finished = s->finish,
                                            .n_prompt = s->n_prompt,
                                            .n_generated = s->n_gen,
                                            .n_cached = s->n_cached};
    return CLLM_OK;
}

/* Out of the queues, blocks released; freed at the next step once its event was seen. */
static cllm_status finish(cllm_engine *e, sequence *s, cllm_finish_reason why) {
    sched_remove(&e->sc, s);
    s->finish = why;
    cllm_status st = grow(&e->done, &e->cap_done, e->n_done, sizeof(sequence *));
    if (st) return st;
    e->done[e->n_done++] = s;
    return CLLM_OK;
}

/* The sampled token: stream text, stop rules, event. */
static cllm_status accept_token(cllm_engine *e, sequence *s, int32_t id) {
    cllm_status st;
    sampler_accept(s->smp, id);
    s->tokens[s->n_tokens++] = id;
    s->n_gen++;
    e->tokens_generated++;
    cllm_finish_reason why = CLLM_REASON_NONE;
    bool stop_string = false;
    const char *text, *out;
    size_t len, out_len;
    if (!s->ignore_eos && is_eos(e->m, id)) {
        why = CLLM_REASON_STOP;
    } else if (s->ts) {
        if ((st = tok_stream_push(s->ts, id, &text, &len))) return st;
        stop_string = stop_push(&s->sm, text, len, &out, &out_len);
        if ((st = seq_text_add(s, out, out_len))) return st;
        if (stop_string) why = CLLM_REASON_STOP;
    }
    if (!why && s->n_gen == s->max_tokens) why = CLLM_REASON_LENGTH;
    if (why && s->ts && !stop_string) {
        /* End of the stream: pending bytes and held-back text come out now. */
        if ((st = tok_stream_flush(s->ts, &text, &len))) return st;
        stop_string = stop_push(&s->sm, text, len, &out, &out_len);
        if ((st = seq_text_add(s, out, out_len))) return st;
        if (!stop_string) {
            stop_flush(&s->sm, &out, &out_len);
            if ((st = seq_text_add(s, out, out_len))) return st;
        }
    }
    if (why && (st = finish(e, s, why))) return st;
    return add_event(e, s, id);
}

static cllm_status step_locked(cllm_engine *e) {
    cllm_status st;
    kv_block_manager *bm = e->kv->bm;
    const int vocab = e->m->cfg.vocab;
    for (int i = 0; i < e->n_done; i++) {
        sequence *s = e->done[i];
        for (int j = 0; j < e->n_live; j++)
            if (e->live[j] == s) {
                e->live[j] = e->live[--e->n_live];
                break;
            }
        seq_free(s, bm);
    }
    e->n_done = 0;
    e->n_events = 0;
    for (int i = 0; i < e->n_live; i++) {
        sequence *s = e->live[i];
        s->text_len = 0;
        if (s->cancel && s->state != SEQ_FINISHED) {
            if ((st = finish(e, s, CLLM_REASON_CANCELLED)) || (st = add_event(e, s, -1))) return st;
        }
    }
    sched_schedule(&e->sc);
    int n = 0;
    for (int i = 0; i < e->sc.n_batch; i++) {
        sequence *s = e->sc.batch[i];
        for (int j = 0; j < s->chunk; j++, n++) {
            e->tok[n] = s->tokens[s->n_computed + j];
            e->pos[n] = s->n_computed + j;
            e->tables[n] = s->kv.blocks;
            e->want[n] = j == s->chunk - 1 && s->n_computed + s->chunk == s->n_tokens;
        }
    }
    if (n == 0) return CLLM_OK;
    e->steps++;
    e->tokens_processed += n;
    fwd_batch b = {
        .n = n, .tokens = e->tok, .pos = e->pos, .tables = e->tables, .want_logits = e->want};
    cllm_status fst = model_forward(e->m, e->fs, e->kv, &b, e->logits);
    int row = 0;
    for (int i = 0; i < e->sc.n_batch; i++) {
        sequence *s = e->sc.batch[i];
        if (fst) {
            /* The KV of this step is not trustworthy: fail every sequence in it. */
            if ((st = finish(e, s, CLLM_REASON_ERROR)) || (st = add_event(e, s, -1))) return st;
            continue;
        }
        s->n_computed += s->chunk;
        kv_bm_seq_commit(bm, &s->kv, s->n_computed);
        if (s->n_computed < s->n_tokens) continue; /* prefill continues next step */
        float *lg = e->logits + (size_t)row++ * (size_t)vocab;
        if (e->hook) e->hook(e->hook_user, s->id, s->n_gen, lg, vocab);
        if ((st = accept_token(e, s, sampler_sample(s->smp, lg)))) return st;
    }
    return fst;
}

cllm_status cllm_engine_step(cllm_engine *e, const cllm_event **events, size_t *n_events) {
    pthread_mutex_lock(&e->mu);
    cllm_status st = step_locked(e);
    *events = e->events;
    *n_events = (size_t)e->n_events;
    pthread_mutex_unlock(&e->mu);
    return st;
}
