/* gguf_logits.c - teacher-forced logits of a model over a token sequence, for the GGUF tests:
 *   gguf_logits MODEL IDS OUT [QUANT]
 * MODEL: HF folder or GGUF file; IDS: comma-separated token ids; OUT: float32 [n][vocab], row i
 * the logits after ids[0..i]; QUANT: optional in-memory quantization (cllm_model_params.quant).
 * Tokens are evaluated one at a time through cllm_session_eval, so row i sees exactly the
 * prefix ids[0..i]. */
#include "cllm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    cllm_session_params sp = cllm_session_default_params();
    sp.n_ctx = (int)n + 16;
    cllm_session *s;
    FILE *f = fopen(argv[3], "wb");
    if (!f || cllm_session_create(m, &sp, &s)) {
        fprintf(stderr, "%s\n", f ? cllm_last_error() : "cannot create output");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (cllm_session_eval(s, &ids[i], 1, (int)i)) {
            fprintf(stderr, "%s\n", cllm_last_error());
            return 1;
        }
        fwrite(cllm_session_logits(s), sizeof(float), (size_t)info.vocab_size, f);
    }
    fclose(f);
    cllm_session_free(s);
    cllm_model_free(m);
    free(ids);
    return 0;
}
