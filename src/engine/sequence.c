/* sequence.c - creating and freeing a serving-engine sequence; the per-step event text buffer. */
#include "engine/sequence.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

cllm_status seq_create(const tokenizer *tok, cllm_request_id id, const cllm_request *r,
                       const int32_t *prompt, int n, int vocab, sequence **out) {
    *out = NULL;
    sequence *s = calloc(1, sizeof *s);
    if (!s) return err_set(CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = CLLM_OK;
    s->id = id;
    s->n_prompt = s->n_tokens = n;
    s->max_tokens = r->max_tokens;
    s->ignore_eos = r->ignore_eos != 0;
    s->min_tokens = r->min_tokens;
    s->user_data = r->user_data;
    s->logprobs = r->logprobs || r->top_logprobs > 0;
    s->top_logprobs = r->top_logprobs;
    s->tokens = malloc(sizeof(int32_t) * ((size_t)n + (size_t)r->max_tokens));
    s->stops = r->n_stop ? calloc((size_t)r->n_stop, sizeof(char *)) : NULL;
    if (!s->tokens || (r->n_stop && !s->stops)) goto nomem;
    memcpy(s->tokens, prompt, sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < r->n_stop; i++) {
        size_t len = strlen(r->stop[i]);
        if (!(s->stops[i] = malloc(len + 1))) goto nomem;
        memcpy(s->stops[i], r->stop[i], len + 1);
        s->n_stops++;
    }
    if ((st = stop_init(&s->sm, (const char *const *)s->stops, s->n_stops)) ||
        (st = sampler_create(&r->sampling, vocab, &s->smp)))
        goto fail;
    /* The penalties see the prompt as context, as in the single-sequence path. */
    for (int i = 0; i < n; i++)
        sampler_accept(s->smp, prompt[i]);
    if (tok && ((st = tok_stream_create(tok, true, &s->ts)) ||
                (st = tok_stream_reset(s->ts, prompt, (size_t)n))))
        goto fail;
    *out = s;
    return CLLM_OK;
nomem:
    st = err_set(CLLM_ERR_NOMEM, "out of memory");
fail:
    seq_free(s, NULL);
    return st;
}

void seq_free(sequence *s, kv_block_manager *bm) {
    if (!s) return;
    kv_bm_seq_free(bm, &s->kv); /* bm NULL: never admitted, frees the table only */
    sampler_free(s->smp);
    stop_free(&s->sm);
    for (int i = 0; i < s->n_stops; i++)
        free(s->stops[i]);
    free(s->stops);
    tok_stream_free(s->ts);
    free(s->tokens);
    free(s->text);
    free(s);
}

cllm_status seq_text_add(sequence *s, const char *text, size_t len) {
    if (!len) return CLLM_OK;
    if (s->text_len + len + 1 > s->text_cap) {
        size_t cap = s->text_cap ? s->text_cap : 64;
        while (cap < s->text_len + len + 1)
            cap *= 2;
        char *t = realloc(s->text, cap);
        if (!t) return err_set(CLLM_ERR_NOMEM, "out of memory");
        s->text = t;
        s->text_cap = cap;
    }
    memcpy(s->text + s->text_len, text, len);
    s->text_len += len;
    s->text[s->text_len] = 0;
    return CLLM_OK;
}
