/* batch.h - running a file of requests through the serving engine (`cllm run --input`). */
#ifndef CLLM_CLI_BATCH_H
#define CLLM_CLI_BATCH_H

#include "cli/genopts.h"

/* Returns the process exit code (errors printed). The engine gets o->eng's options. */
int cli_run_batch(const gen_opts *o, cllm_model *m, const char *in, const char *out);

#endif
