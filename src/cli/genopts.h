/* genopts.h - the options `run` and `chat` share: model, sampling, stop rules, threads, KV cache;
 * their parsing, help text, and model/session creation from them. */
#ifndef CLLM_CLI_GENOPTS_H
#define CLLM_CLI_GENOPTS_H

#include "cllm.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct gen_opts {
    const char *model;
    const char *quant; /* --quant TYPE: quantize at load */
    long n_predict, threads, ctx, batch, block, seed;
    cllm_kv_type kv_type;
    cllm_sampling_params sp;
    char **stops;
    int n_stops;
    bool ignore_eos;
} gen_opts;

/* Help lines for the shared options. */
extern const char *const k_gen_opts_help;

bool gen_opts_init(gen_opts *o, int argc, long default_n_predict);
void gen_opts_free(gen_opts *o);
/* 1: argv[*i] (and its value) was a shared option; 0: not one; -1: bad value (error printed). */
int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i);
/* Resolve the seed (-1 -> random). */
void gen_opts_finish(gen_opts *o);
/* Load the model; errors printed. */
bool gen_opts_load(const gen_opts *o, bool need_tokenizer, cllm_model **m);
/* A session with room for n_ctx tokens (capped at the model's context unless -c was given). */
bool gen_opts_session(const gen_opts *o, cllm_model *m, long n_ctx, cllm_session **s);
cllm_gen_params gen_opts_params(const gen_opts *o);
/* Render a conversation with the model's template (plus the generation prompt) and tokenize it
 * the way every conversation is tokenized here: no post-processor BOS (the template writes it),
 * special-token text parsed. Errors printed (prefixed with `where` when not NULL). */
bool gen_conversation_ids(const cllm_model *m, const cllm_chat_template *ct, const json_t *messages,
                          const json_t *tools, const char *where, int32_t **ids, size_t *n);
/* llama.cpp-style timing lines on stderr. */
void gen_print_timings(const cllm_model *m, const cllm_gen_stats *st);

#endif
