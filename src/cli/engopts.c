/* engopts.c - the shared engine option table. */
#include "cli/engopts.h"

#include "cli/cli.h"

#include <stddef.h>
#include <string.h>

const char *const k_eng_opts_help =
    "  -t, --threads N          compute threads (default: number of CPUs)\n"
    "  -c, --ctx-size N         KV cache size in tokens (run: prompt + -n; chat: 4096; others:\n"
    "                           16384)\n"
    "  --kv-memory SIZE         KV cache budget instead: BYTES, NKiB, NMiB, NGiB\n"
    "  -b, --max-batched-tokens N\n"
    "                           tokens per step: the prompt is evaluated in chunks of N\n"
    "                           (default 512; -b, --batch-size are the same option)\n"
    "  --max-seqs N             running sequences per step (default 64; run and chat: 1)\n"
    "  --max-model-len N        tokens per request, prompt + output (default: the model's)\n"
    "  --block-size N           KV cache block size in tokens (default 16)\n"
    "  --kv-type f32|f16|bf16   KV cache element type (default: the model's dtype)\n"
    "  --no-prefix-cache        do not reuse the KV of shared prompt prefixes\n";

typedef enum opt_kind { OPT_INT, OPT_SIZE, OPT_FLAG, OPT_KV_TYPE } opt_kind;

typedef struct eng_opt {
    const char *names[3];
    opt_kind kind;
    long lo, hi;
    size_t off; /* of the int / int64_t / cllm_kv_type field in eng_opts */
} eng_opt;

static const eng_opt k_opts[] = {
    {{"-t", "--threads"}, OPT_INT, 1, 256, offsetof(eng_opts, threads)},
    {{"-c", "--ctx-size"}, OPT_INT, 0, 1 << 26, offsetof(eng_opts, ep.kv_tokens)},
    {{"--kv-memory"}, OPT_SIZE, 0, 0, offsetof(eng_opts, ep.kv_memory)},
    {{"-b", "--batch-size", "--max-batched-tokens"},
     OPT_INT,
     1,
     65536,
     offsetof(eng_opts, ep.max_batched_tokens)},
    {{"--max-seqs"}, OPT_INT, 1, 65536, offsetof(eng_opts, ep.max_seqs)},
    {{"--max-model-len"}, OPT_INT, 1, 1 << 24, offsetof(eng_opts, ep.max_model_len)},
    {{"--block-size"}, OPT_INT, 1, 1024, offsetof(eng_opts, ep.block_size)},
    {{"--kv-type"}, OPT_KV_TYPE, 0, 0, offsetof(eng_opts, ep.kv_type)},
    {{"--no-prefix-cache"}, OPT_FLAG, 0, 0, offsetof(eng_opts, ep.no_prefix_cache)},
};

void eng_opts_init(eng_opts *o) {
    memset(o, 0, sizeof *o);
    o->ep.kv_type = CLLM_KV_AUTO;
}

static const eng_opt *find(const char *a) {
    for (size_t k = 0; k < sizeof k_opts / sizeof k_opts[0]; k++)
        for (int j = 0; j < 3 && k_opts[k].names[j]; j++)
            if (!strcmp(a, k_opts[k].names[j])) return &k_opts[k];
    return NULL;
}

static bool parse_kv_type(const char *v, cllm_kv_type *out) {
    static const char *const names[] = {"f32", "f16", "bf16"};
    static const cllm_kv_type types[] = {CLLM_KV_F32, CLLM_KV_F16, CLLM_KV_BF16};
    for (int k = 0; k < 3; k++)
        if (!strcmp(v, names[k])) {
            *out = types[k];
            return true;
        }
    cli_fail("--kv-type: expected f32, f16 or bf16, got '%s'", v);
    return false;
}

int eng_opts_parse(eng_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    const eng_opt *opt = find(a);
    if (!opt) return 0;
    char *field = (char *)o + opt->off;
    if (opt->kind == OPT_FLAG) {
        *(int *)field = 1;
        return 1;
    }
    if (!(v = cli_value(argc, argv, i))) return -1;
    long x;
    switch (opt->kind) {
    case OPT_INT:
        if (!cli_int(a, v, opt->lo, opt->hi, &x)) return -1;
        *(int *)field = (int)x;
        return 1;
    case OPT_SIZE:
        return cli_size(a, v, (int64_t *)field) ? 1 : -1;
    default:
        return parse_kv_type(v, (cllm_kv_type *)field) ? 1 : -1;
    }
}

cllm_model_params eng_opts_model_params(const eng_opts *o) {
    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = o->threads;
    return mp;
}
