/* session.c - one sequence generating text: paged KV cache, prompt prefill in chunks, the decode
 * loop (sample -> stream-detokenize -> stop rules -> forward one token), timings. */
#include "base/clock.h"
#include "base/error.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

struct cllm_session {
    cllm_model *m;
    cllm_session_params p;
    int n_ctx;
    kv_cache *kv;
    kv_seq seq;
    fwd_state *fs;
    float *logits; /* [vocab] */
    int32_t *tok, *pos;
    const int32_t **tables;
    uint8_t *want;
    tok_stream *ts;
};

cllm_session_params cllm_session_default_params(void) {
    cllm_session_params p = {.n_ctx = 0, .block_size = 16, .kv_type = CLLM_KV_AUTO, .n_batch = 512};
    return p;
}

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

cllm_status cllm_session_create(cllm_model *m, const cllm_session_params *pp, cllm_session **out) {
    *out = NULL;
    cllm_session_params p = pp ? *pp : cllm_session_default_params();
    const model_config *c = &m->cfg;
    if (p.block_size <= 0) p.block_size = 16;
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.block_size > 1024 || p.n_batch > 65536)
        return err_set(CLLM_ERR_INVALID_ARG, "block size %d / batch %d too large", p.block_size,
                       p.n_batch);
    int n_ctx = p.n_ctx > 0 ? p.n_ctx : (c->max_ctx < 4096 ? c->max_ctx : 4096);
    if (n_ctx > c->max_ctx)
        return err_set(CLLM_ERR_LIMIT, "context %d exceeds the model's maximum %d", n_ctx,
                       c->max_ctx);
    dtype dt = model_kv_dtype(m, p.kv_type);
    cllm_session *s = calloc(1, sizeof *s);
    if (!s) return err_set(CLLM_ERR_NOMEM, "out of memory");
    s->m = m;
    s->p = p;
    s->n_ctx = n_ctx;
    int nb = p.n_batch < n_ctx ? p.n_batch : n_ctx;
    s->p.n_batch = nb;
    cllm_status st;
    if ((st = kv_cache_create(c->n_layers, c->n_kv_heads, c->head_dim, p.block_size,
                              (n_ctx + p.block_size - 1) / p.block_size, dt, &s->kv)) ||
        (st = fwd_state_create(m, nb, n_ctx, p.block_size, &s->fs)))
        goto fail;
    s->logits = malloc(sizeof(float) * (size_t)c->vocab);
    s->tok = malloc(sizeof(int32_t) * (size_t)nb);
    s->pos = malloc(sizeof(int32_t) * (size_t)nb);
    s->tables = malloc(sizeof(int32_t *) * (size_t)nb);
    s->want = malloc((size_t)nb);
    if (!s->logits || !s->tok || !s->pos || !s->tables || !s->want) {
        st = err_set(CLLM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (m->tok && (st = tok_stream_create(m->tok, true, &s->ts))) goto fail;
    *out = s;
    return CLLM_OK;
fail:
    cllm_session_free(s);
    return st;
}

void cllm_session_free(cllm_session *s) {
    if (!s) return;
    kv_seq_free(s->kv, &s->seq);
    kv_cache_free(s->kv);
    fwd_state_free(s->fs);
    tok_stream_free(s->ts);
    free(s->logits);
    free(s->tok);
    free(s->pos);
    free(s->tables);
    free(s->want);
    free(s);
}

/* Evaluate ids at positions pos0.. in chunks; logits of the last token into s->logits. */
static cllm_status eval(cllm_session *s, const int32_t *ids, size_t n, int pos0) {
    cllm_status st;
    if ((st = kv_seq_reserve(s->kv, &s->seq, pos0 + (int)n))) return st;
    for (size_t off = 0; off < n; off += (size_t)s->p.n_batch) {
        int k = n - off < (size_t)s->p.n_batch ? (int)(n - off) : s->p.n_batch;
        for (int i = 0; i < k; i++) {
            s->tok[i] = ids[off + i];
            s->pos[i] = pos0 + (int)off + i;
            s->tables[i] = s->seq.blocks;
            s->want[i] = off + i == n - 1;
        }
        fwd_batch b = {
            .n = k, .tokens = s->tok, .pos = s->pos, .tables = s->tables, .want_logits = s->want};
        if ((st = model_forward(s->m, s->fs, s->kv, &b, s->logits))) return st;
    }
    return CLLM_OK;
}

static cllm_status check_ids(const cllm_session *s, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->m->cfg.vocab)
            return err_set(CLLM_ERR_INVALID_ARG, "token id %d out of range (vocab %d)", ids[i],
                           s->m->cfg.vocab);
    return CLLM_OK;
}

cllm_status cllm_session_eval(cllm_session *s, const int32_t *ids, size_t n, int pos0) {
    if (n == 0 || pos0 < 0 || (size_t)pos0 + n > (size_t)s->n_ctx)
        return err_set(CLLM_ERR_LIMIT, "eval of %zu tokens at %d exceeds the context %d", n, pos0,
                       s->n_ctx);
    cllm_status st = check_ids(s, ids, n);
    if (st) return st;
    if (pos0 == 0) kv_seq_release(s->kv, &s->seq);
    return eval(s, ids, n, pos0);
}

const float *cllm_session_logits(const cllm_session *s) {
    return s->logits;
}

/* The model's EOS ids (generation_config.json / config.json) and the tokenizer's eos_token: chat
 * models often end a turn with the latter (e.g. <|eot_id|>) while config lists only the former. */
static bool is_eos(const cllm_session *s, int32_t id) {
    const model_config *c = &s->m->cfg;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return true;
    return s->m->tok && tok_eos_id(s->m->tok) == id;
}

cllm_status cllm_generate(cllm_session *s, const int32_t *prompt, size_t n_prompt,
                          const cllm_sampling_params *sp, const cllm_gen_params *gp,
                          cllm_token_cb cb, void *user, cllm_gen_stats *stats) {
    cllm_gen_stats dummy;
    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    const int vocab = s->m->cfg.vocab;
    if (n_prompt == 0)
        return err_set(CLLM_ERR_INVALID_ARG, "empty prompt: at least one token is needed");
    if (gp->max_tokens < 0)
        return err_set(CLLM_ERR_INVALID_ARG, "max tokens %d < 0", gp->max_tokens);
    if (n_prompt + (size_t)gp->max_tokens > (size_t)s->n_ctx)
        return err_set(CLLM_ERR_LIMIT, "prompt %zu + max tokens %d > context %d", n_prompt,
                       gp->max_tokens, s->n_ctx);
    if (gp->n_stop && !s->m->tok)
        return err_set(CLLM_ERR_INVALID_ARG, "stop strings need a tokenizer");
    cllm_status st = check_ids(s, prompt, n_prompt);
    if (st) return st;
    sampler *smp = NULL;
    stop_matcher sm = {0};
    if ((st = sampler_create(sp, vocab, &smp))) return st;
    if ((st = stop_init(&sm, gp->stop, gp->n_stop))) goto done;
    if (s->ts && (st = tok_stream_reset(s->ts, prompt, n_prompt))) goto done;
    kv_seq_release(s->kv, &s->seq);
    if ((st = kv_seq_reserve(s->kv, &s->seq, (int)n_prompt + gp->max_tokens))) goto done;
    for (size_t i = 0; i < n_prompt; i++)
        sampler_accept(smp, prompt[i]);

    double t0 = clock_now();
    stats->n_prompt = (int)n_prompt;
    stats->finish = CLLM_FINISH_LENGTH;
    if (gp->max_tokens == 0) goto done;
    if ((st = eval(s, prompt, n_prompt, 0))) goto done;
    double t1 = clock_now();
    stats->t_prompt = t1 - t0;
    for (int i = 0; i < gp->max_tokens; i++) {
        if (gp->logits_out)
            memcpy(gp->logits_out + (size_t)i * vocab, s->logits, sizeof(float) * vocab);
        int32_t id = sampler_sample(smp, s->logits);
        sampler_accept(smp, id);
        stats->n_gen++;
        if (i == 0) stats->t_first_token = clock_now() - t0;
        const char *text = NULL, *out = NULL;
        size_t len = 0, out_len = 0;
        bool stop = false;
        if (!gp->ignore_eos && is_eos(s, id)) {
            stats->finish = CLLM_FINISH_EOS;
            stop = true;
        } else if (s->ts) {
            if ((st = tok_stream_push(s->ts, id, &text, &len))) goto done;
            if (stop_push(&sm, text, len, &out, &out_len)) {
                stats->finish = CLLM_FINISH_STOP;
                stop = true;
            }
        }
        if (cb && cb(user, id, out, out_len)) {
            stats->finish = CLLM_FINISH_ABORT;
            stop = true;
        }
        if (stop || i + 1 == gp->max_tokens) break;
        if ((st = eval(s, &id, 1, (int)n_prompt + i))) goto done;
    }
    stats->t_gen = clock_now() - t1 - (stats->t_first_token - stats->t_prompt);
    if (s->ts && stats->finish != CLLM_FINISH_STOP && stats->finish != CLLM_FINISH_ABORT) {
        const char *text, *out;
        size_t len, out_len;
        if ((st = tok_stream_flush(s->ts, &text, &len))) goto done;
        stop_push(&sm, text, len, &out, &out_len);
        if (cb && out_len) cb(user, -1, out, out_len);
        stop_flush(&sm, &out, &out_len);
        if (cb && out_len) cb(user, -1, out, out_len);
    }
done:
    stop_free(&sm);
    sampler_free(smp);
    return st;
}
