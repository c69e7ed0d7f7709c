/* genopts.h - the options `run` and `chat` share: model, sampling, stop rules, and the engine
 * options (engopts.h); their parsing, help text, and model / one-request engine creation. */
#ifndef CLLM_CLI_GENOPTS_H
#define CLLM_CLI_GENOPTS_H

#include "cli/engopts.h"
#include "cllm.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct gen_opts {
    const char *model;
    const char *quant; /* --quant TYPE: quantize at load */
    long n_predict, seed;
    eng_opts eng;
    cllm_sampling_params sp;
    char **stops;
    int n_stops;
    bool ignore_eos;
} gen_opts;

/* Help lines for the shared options (the engine's follow in k_eng_opts_help). */
extern const char *const k_gen_opts_help;

bool gen_opts_init(gen_opts *o, int argc, long default_n_predict);
void gen_opts_free(gen_opts *o);
/* 1: argv[*i] (and its value) was a shared option; 0: not one; -1: bad value (error printed). */
int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i);
/* Resolve the seed (-1 -> random). */
void gen_opts_finish(gen_opts *o);
/* Load the model; errors printed. */
bool gen_opts_load(const gen_opts *o, bool need_tokenizer, cllm_model **m);
/* An engine for one request at a time with KV room for n_tokens tokens (capped at the model's
 * context) unless -c / --kv-memory say otherwise. Errors printed. */
bool gen_opts_engine(const gen_opts *o, cllm_model *m, long n_tokens, cllm_engine **e);
/* A request for prompt ids with the sampling, limits and stop strings of o. */
cllm_request gen_opts_request(const gen_opts *o, const int32_t *ids, size_t n);
/* Render a conversation (messages, tools or NULL) with a chat template. *text is malloc'd.
 * CLLM_ERR_NOMEM without a message set; other errors set cllm_last_error(). */
cllm_status gen_conversation_text(const cllm_chat_template *ct, const json_t *messages,
                                  const json_t *tools, bool add_generation_prompt, char **text,
                                  size_t *len);
/* Render a conversation with the model's template (plus the generation prompt) and tokenize it
 * the way every conversation is tokenized here: no post-processor BOS (the template writes it),
 * special-token text parsed. Errors printed (prefixed with `where` when not NULL). */
bool gen_conversation_ids(const cllm_model *m, const cllm_chat_template *ct, const json_t *messages,
                          const json_t *tools, const char *where, int32_t **ids, size_t *n);
/* llama.cpp-style timing lines on stderr. */
void gen_print_timings(const cllm_model *m, const cllm_gen_stats *st);

#endif
