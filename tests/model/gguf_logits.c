/* gguf_logits.c - teacher-forced logits of a model over a token sequence, for the GGUF tests:
 *   gguf_logits MODEL IDS OUT [QUANT]
 * MODEL: HF folder or GGUF file; IDS: comma-separated token ids; OUT: float32 [n][vocab], row i
 * the logits after ids[0..i]; QUANT: optional in-memory quantization (cllm_model_params.quant).
 * Row i comes from a prompt-only engine request (max_tokens 0) for ids[0..i]: the logits hook
 * sees its last token's logits. The prefix cache serves the earlier full blocks, so each request
 * evaluates only a few tokens (batch invariance makes that bitwise the same as evaluating all). */
#include "cllm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void keep_row(void *user, cllm_request_id id, int index, const float *logits, int vocab) {
    (void)id;
    (void)index;
    memcpy(user, logits, sizeof(float) * (size_t)vocab);
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: gguf_logits MODEL IDS OUT [QUANT]\n");
        return 2;
    }
    int32_t *ids = malloc(strlen(argv[2]) * sizeof *ids + sizeof *ids);
    size_t n = 0;
    for (char *p = argv[2]; *p;) {
        ids[n++] = (int32_t)strtol(p, &p, 10);
        if (*p == ',') p++;
    }
    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = 2;
    mp.skip_tokenizer = 1;
    mp.quant = argc == 5 ? argv[4] : NULL;
    cllm_model *m;
    if (cllm_model_load(argv[1], &mp, &m)) {
        fprintf(stderr, "%s\n", cllm_last_error());
        return 1;
    }
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    cllm_engine_params ep = cllm_engine_default_params();
    ep.kv_tokens = ep.max_model_len = (int)n + 16;
    ep.max_seqs = 1;
    cllm_engine *e;
    float *row = malloc(sizeof(float) * (size_t)info.vocab_size);
    FILE *f = fopen(argv[3], "wb");
    if (!f || !row || cllm_engine_create(m, &ep, &e)) {
        fprintf(stderr, "%s\n", f ? cllm_last_error() : "cannot create output");
        return 1;
    }
    cllm_engine_set_logits_hook(e, keep_row, row);
    for (size_t i = 0; i < n; i++) {
        cllm_request r = cllm_request_default();
        r.prompt = ids;
        r.n_prompt = i + 1;
        r.max_tokens = 0;
        if (cllm_generate(e, &r, NULL, NULL, NULL)) {
            fprintf(stderr, "%s\n", cllm_last_error());
            return 1;
        }
        fwrite(row, sizeof(float), (size_t)info.vocab_size, f);
    }
    fclose(f);
    cllm_engine_free(e);
    free(row);
    cllm_model_free(m);
    free(ids);
    return 0;
}
