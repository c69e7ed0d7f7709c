/* sequence.h - one request inside the serving engine: its tokens (prompt + generated), KV block
 * table, sampler, stop matcher, streaming detokenizer, and the text of its current event. */
#ifndef CLLM_ENGINE_SEQUENCE_H
#define CLLM_ENGINE_SEQUENCE_H

#include "cllm.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "kv/block_manager.h"
#include "tokenizer/tokenizer.h"
#include <stdbool.h>

typedef enum seq_state { SEQ_WAITING, SEQ_RUNNING, SEQ_FINISHED } seq_state;

typedef struct sequence {
    cllm_request_id id;
    seq_state state;
    int32_t *tokens; /* [n_prompt + max_tokens], allocated once */
    int n_tokens, n_prompt, max_tokens, n_gen;
    int n_computed; /* tokens [0, n_computed) have their KV written */
    int n_cached;   /* prompt tokens served by the prefix cache at first admission */
    int min_tokens; /* EOS masked and stop strings ignored until this many are generated */
    bool admitted_once, ignore_eos, cancel;
    void *user_data;
    /* log-probabilities of this step's token (when asked for) */
    int logprobs, top_logprobs, n_top;
    float logprob;
    int32_t top_ids[CLLM_MAX_TOP_LOGPROBS];
    float top_lp[CLLM_MAX_TOP_LOGPROBS];
    kv_seq kv;
    sampler *smp;
    stop_matcher sm;
    char **stops; /* owned copies: the matcher keeps pointers */
    int n_stops;
    tok_stream *ts; /* NULL without a tokenizer */
    int chunk;      /* tokens scheduled in the current step */
    cllm_finish_reason finish;
    char *text; /* this step's event text (amortised growth) */
    size_t text_len, text_cap;
} sequence;

/* prompt (n >= 1, ids already validated) is copied; r gives sampling, stops, limits. */
cllm_status seq_create(const tokenizer *tok, cllm_request_id id, const cllm_request *r,
                       const int32_t *prompt, int n, int vocab, sequence **out);
/* Releases the KV blocks (if any) into bm and frees everything. */
void seq_free(sequence *s, kv_block_manager *bm);
cllm_status seq_text_add(sequence *s, const char *text, size_t len);

#endif
