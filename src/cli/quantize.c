/* quantize.c - `cllm quantize IN OUT TYPE`: cllm_quantize (model/gguf_quantize.c) with a progress
 * bar and a summary of the tensor types written. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_quantize_help =
    "usage: cllm quantize IN OUT TYPE\n"
    "\n"
    "IN is a Hugging Face model folder or a GGUF file, OUT the GGUF file to write, TYPE one of\n"
    "  f32 f16 bf16      every matrix in that type\n"
    "  q8_0 q4_0 q6_k    every matrix in that block type (q4_0: output.weight in q6_k)\n"
    "  q4_k_m            q4_k, with q6_k for output.weight and for attn_v / ffn_down of some\n"
    "                    layers (llama.cpp's Q4_K_M recipe)\n"
    "Norms and biases stay f32. Matrices whose rows are not a multiple of the block size fall\n"
    "back to another type (q4_k -> q5_0, q6_k -> q8_0, else f16), as llama.cpp does.\n"
    "The file loads in llama.cpp and in cllm (cllm run -m OUT).\n";

static void progress(void *user, double done, const char *name) {
    *(bool *)user = true;
    int pct = (int)(100.0 * done), bar = pct * 30 / 100;
    fprintf(stderr, "\r[%.*s%*s] %3d%% %-40.40s", bar, "==============================", 30 - bar,
            "", pct, name);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(k_quantize_help, stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return cli_fail("quantize: unknown option '%s'", argv[i]);
        if (np == 3) return cli_fail("quantize: too many arguments (see cllm quantize --help)");
        pos[np++] = argv[i];
    }
    if (np != 3) return cli_fail("quantize: usage: cllm quantize IN OUT TYPE");
    bool shown = false; /* a progress line to end */
    cllm_quantize_params qp = {.progress = progress, .user = &shown};
    cllm_quantize_stats st;
    if (cllm_quantize(pos[0], pos[1], pos[2], &qp, &st)) {
        if (shown) fputc('\n', stderr);
        return cli_fail("%s", cllm_last_error());
    }
    fputc('\n', stderr);
    fprintf(stderr, "wrote %s (%s): %d tensors: %s\n", pos[1], pos[2], st.n_tensors, st.types);
    return 0;
}
