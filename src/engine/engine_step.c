/* engine_step.c - one engine step: take in what other threads submitted or cancelled, schedule,
 * run one forward over every scheduled token, sample per sequence, detokenize, apply the stop
 * rules, and report one event per touched request. */
#include "base/error.h"
#include "engine/engine_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cllm_status engine_drain_inbox(cllm_engine *e) {
    cllm_status st = CLLM_OK;
    pthread_mutex_lock(&e->in_mu);
    int k = 0;
    for (; k < e->n_inbox; k++) {
        sequence *s = e->inbox[k];
        if ((st = engine_grow(&e->live, &e->cap_live, e->n_live, sizeof(sequence *))) ||
            (st = sched_add(&e->sc, s)))
            break;
        e->live[e->n_live++] = s;
    }
    /* On failure (out of memory) the rest stays queued for the next step. */
    if (k) memmove(e->inbox, e->inbox + k, sizeof(sequence *) * (size_t)(e->n_inbox - k));
    e->n_inbox -= k;
    e->snap.n_waiting += k; /* has_work / stats stay true until the step publishes */
    for (int c = 0; c < e->n_cancels; c++)
        for (int i = 0; i < e->n_live; i++)
            if (e->live[i]->id == e->cancels[c] && e->live[i]->state != SEQ_FINISHED)
                e->live[i]->cancel = true;
    e->n_cancels = 0;
    pthread_mutex_unlock(&e->in_mu);
    return st;
}

void engine_publish_stats(cllm_engine *e) {
    const kv_block_manager *bm = e->kv->bm;
    cllm_engine_stats o = {0};
    o.n_running = e->sc.n_running;
    o.n_waiting = e->sc.n_waiting;
    o.kv_blocks_total = bm->n_blocks;
    o.kv_blocks_used = kv_bm_n_used(bm);
    o.kv_blocks_free = kv_bm_n_free(bm);
    o.kv_blocks_cached = kv_bm_n_cached(bm);
    o.block_size = bm->block_size;
    o.prompt_tokens = bm->stats.prompt_tokens;
    o.prefix_hit_tokens = bm->stats.hit_tokens;
    o.tokens_processed = e->tokens_processed;
    o.tokens_generated = e->tokens_generated;
    o.preemptions = e->sc.preemptions;
    o.steps = e->steps;
    pthread_mutex_lock(&e->in_mu);
    e->snap = o;
    pthread_mutex_unlock(&e->in_mu);
}

void engine_forget_id(cllm_engine *e, cllm_request_id id) {
    pthread_mutex_lock(&e->in_mu);
    for (int i = 0; i < e->n_ids; i++)
        if (e->ids[i] == id) {
            memmove(e->ids + i, e->ids + i + 1,
                    sizeof(cllm_request_id) * (size_t)(e->n_ids - i - 1));
            e->n_ids--;
            break;
        }
    pthread_mutex_unlock(&e->in_mu);
}

/* The model's EOS ids (generation_config.json / config.json) and the tokenizer's eos_token: chat
 * models often end a turn with the latter (e.g. <|eot_id|>) while config lists only the former. */
bool engine_is_eos(const cllm_model *m, int32_t id) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == id) return true;
    return m->tok && tok_eos_id(m->tok) == id;
}

static cllm_status add_event(cllm_engine *e, sequence *s, int32_t token) {
    cllm_status st = engine_grow(&e->events, &e->cap_events, e->n_events, sizeof(cllm_event));
    if (st) return st;
    bool lp = s->logprobs && token >= 0;
    e->events[e->n_events++] = (cllm_event){
        .id = s->id,
        .token = token,
        .text = s->ts ? (s->text ? s->text : "") : NULL,
        .len = s->text_len,
        .finished = s->finish,
        .n_prompt = s->n_prompt,
        .n_generated = s->n_gen,
        .n_cached = s->n_cached,
        .user_data = s->user_data,
        .logprob = lp ? s->logprob : 0,
        .n_top = lp ? s->n_top : 0,
        .top_ids = lp ? s->top_ids : NULL,
        .top_logprobs = lp ? s->top_lp : NULL,
        .error = s->finish == CLLM_REASON_ERROR ? e->err : NULL,
    };
    return CLLM_OK;
}

/* Out of the queues, blocks released; freed at the next step once its event was seen. */
static cllm_status finish(cllm_engine *e, sequence *s, cllm_finish_reason why) {
    sched_remove(&e->sc, s);
    s->finish = why;
    engine_forget_id(e, s->id);
    cllm_status st = engine_grow(&e->done, &e->cap_done, e->n_done, sizeof(sequence *));
    if (st) return st;
    e->done[e->n_done++] = s;
    return CLLM_OK;
}

/* Log-softmax of the raw logits `row` at the chosen token and the best top_logprobs tokens
 * (descending; ties by lower id). */
static void compute_logprobs(sequence *s, const float *row, int vocab, int32_t chosen) {
    float max = -INFINITY;
    for (int i = 0; i < vocab; i++)
        if (row[i] > max) max = row[i];
    double z = 0;
    for (int i = 0; i < vocab; i++)
        z += exp((double)row[i] - max);
    float lse = (float)(max + log(z));
    int k = s->top_logprobs < vocab ? s->top_logprobs : vocab, n = 0;
    for (int i = 0; i < vocab && k > 0; i++) {
        float v = row[i];
        if (n == k && !(v > row[s->top_ids[n - 1]])) continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && v > row[s->top_ids[j - 1]]) {
            s->top_ids[j] = s->top_ids[j - 1];
            j--;
        }
        s->top_ids[j] = i;
    }
    for (int j = 0; j < n; j++)
        s->top_lp[j] = row[s->top_ids[j]] - lse;
    s->n_top = n;
    s->logprob = row[chosen] - lse;
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
    if (!s->ignore_eos && engine_is_eos(e->m, id)) {
        why = CLLM_REASON_STOP;
    } else if (s->ts) {
        if ((st = tok_stream_push(s->ts, id, &text, &len))) return st;
        if (s->n_gen <= s->min_tokens) {
            /* Before min_tokens, stop strings do not apply: the text bypasses the matcher. */
            if ((st = seq_text_add(s, text, len))) return st;
        } else {
            stop_string = stop_push(&s->sm, text, len, &out, &out_len);
            if ((st = seq_text_add(s, out, out_len))) return st;
        }
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

/* Sample the next token of s from its row of logits (modified in place by the sampler). */
static int32_t sample(cllm_engine *e, sequence *s, float *lg) {
    const int vocab = e->m->cfg.vocab;
    if (e->hook) e->hook(e->hook_user, s->id, s->n_gen, lg, vocab);
    if (s->logprobs) memcpy(e->lp_row, lg, sizeof(float) * (size_t)vocab);
    if (s->n_gen < s->min_tokens && !s->ignore_eos) {
        const model_config *c = &e->m->cfg;
        for (int i = 0; i < c->n_eos; i++)
            if (c->eos_ids[i] >= 0 && c->eos_ids[i] < vocab) lg[c->eos_ids[i]] = -INFINITY;
        int32_t te = e->m->tok ? tok_eos_id(e->m->tok) : -1;
        if (te >= 0 && te < vocab) lg[te] = -INFINITY;
    }
    int32_t id = sampler_sample(s->smp, lg);
    if (s->logprobs) compute_logprobs(s, e->lp_row, vocab, id);
    return id;
}

cllm_status engine_step_locked(cllm_engine *e) {
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
    if ((st = engine_drain_inbox(e))) return st;
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
    if (n == 0) {
        engine_publish_stats(e);
        return CLLM_OK;
    }
    e->steps++;
    e->tokens_processed += n;
    fwd_batch b = {
        .n = n, .tokens = e->tok, .pos = e->pos, .tables = e->tables, .want_logits = e->want};
    cllm_status fst = model_forward(e->m, e->fs, e->kv, &b, e->logits);
    if (fst) snprintf(e->err, sizeof e->err, "%s", cllm_last_error());
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
        if (s->max_tokens == 0) {
            /* Prompt only: the hook sees the last prompt token's logits, nothing is sampled. */
            if (e->hook) e->hook(e->hook_user, s->id, 0, lg, vocab);
            if ((st = finish(e, s, CLLM_REASON_LENGTH)) || (st = add_event(e, s, -1))) return st;
            continue;
        }
        if ((st = accept_token(e, s, sample(e, s, lg)))) return st;
    }
    engine_publish_stats(e);
    return fst;
}
