/* engopts.h - the engine options every generating command shares (`run`, `chat`, `bench`,
 * `bench --serve`, `serve`): threads, KV budget and type, block size, step limits, prefix cache.
 * Parsed from one table (engopts.c), with one help text. */
#ifndef CLLM_CLI_ENGOPTS_H
#define CLLM_CLI_ENGOPTS_H

#include "cllm.h"
#include <stdbool.h>

typedef struct eng_opts {
    /* Fields not given stay <= 0 (the engine's defaults; run and chat size the KV cache and
     * the step limits for one request themselves). */
    cllm_engine_params ep;
    int threads; /* -t; 0: number of CPUs */
} eng_opts;

/* Help lines for the engine options (26-column layout). */
extern const char *const k_eng_opts_help;

void eng_opts_init(eng_opts *o);
/* 1: argv[*i] (and its value) was an engine option; 0: not one; -1: bad value (error printed). */
int eng_opts_parse(eng_opts *o, int argc, char **argv, int *i);
/* The model parameters for these options (threads). */
cllm_model_params eng_opts_model_params(const eng_opts *o);

#endif
