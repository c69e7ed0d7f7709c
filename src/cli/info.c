/* info.c - `cllm info`: what a model folder holds (architecture, shapes, dtypes, sizes). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char *k_info_help =
    "usage: cllm info -m MODEL_DIR [--kernels] [-t N]\n"
    "\n"
    "Loads the model (weights are memory-mapped, not read) and prints its architecture, layers,\n"
    "heads, KV heads, head size, vocabulary, weight dtypes, parameter count, weight bytes and KV\n"
    "cache bytes per token (f32 / 16-bit). Exits non-zero with a one-line error if any file is\n"
    "malformed.\n"
    "  --kernels   also the matmul kernels chosen for this CPU per weight dtype (measured at load\n"
    "              with -t threads, default all cores; cached in ~/.cache/cllm; "
    "CLLM_TUNE=off|force)\n"
    "  -t N        threads (default 1, or all cores with --kernels)\n";

int cmd_info(int argc, char **argv) {
    const char *model = NULL;
    int kernels = 0;
    long threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(k_info_help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v) return 1;
            model = v;
        } else if (!strcmp(argv[i], "--kernels")) {
            kernels = 1;
            threads = 0;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || !cli_int("-t", v, 1, 1024, &threads)) return 1;
        } else {
            return cli_fail("info: unknown option '%s' (see cllm info --help)", argv[i]);
        }
    }
    if (!model) return cli_fail("info: -m MODEL_DIR is required");
    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = (int)threads;
    cllm_model *m;
    if (cllm_model_load(model, &mp, &m)) return cli_fail("%s", cllm_last_error());
    cllm_model_info o;
    cllm_model_get_info(m, &o);
    printf("model:              %s\n", model);
    printf("architecture:       %s\n", o.arch);
    printf("layers:             %d\n", o.n_layers);
    printf("hidden size:        %d\n", o.hidden);
    printf("intermediate size:  %d\n", o.intermediate);
    printf("attention heads:    %d\n", o.n_heads);
    printf("kv heads:           %d\n", o.n_kv_heads);
    printf("head dim:           %d\n", o.head_dim);
    printf("vocab size:         %d\n", o.vocab_size);
    printf("context length:     %d\n", o.max_ctx);
    printf("rope theta:         %g\n", o.rope_theta);
    printf("tied embeddings:    %s\n", o.tied_embeddings ? "yes" : "no");
    printf("weight dtypes:      %s\n", o.weight_dtypes);
    printf("parameters:         %lld (%.2f M)\n", (long long)o.n_params, o.n_params / 1e6);
    printf("weight bytes:       %lld (%.2f MiB)\n", (long long)o.weight_bytes,
           o.weight_bytes / 1048576.0);
    printf("kv bytes per token: %lld (f32), %lld (f16/bf16)\n", (long long)o.kv_bytes_per_token_f32,
           (long long)o.kv_bytes_per_token_f32 / 2);
    printf("tokenizer:          %s\n", o.has_tokenizer ? "yes" : "no");
    char *k = NULL;
    if (kernels && cllm_model_kernels(m, &k) == CLLM_OK) fputs(k, stdout);
    cllm_free(k);
    cllm_model_free(m);
    return 0;
}
