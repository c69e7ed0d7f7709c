/* bench.c - `cllm bench`: llama-bench style prompt-processing (ppN) and text-generation (tgN)
 * throughput, mean ± stddev over repetitions, as a markdown table. Both run on the engine: ppN is
 * one request of N prompt tokens with max_tokens 0 (prefill in chunks of -b, no sampling), tgN
 * one request of 1 prompt token generating N (N single-token forwards, greedy, EOS ignored). */
#include "cli/cli.h"
#include "cli/engopts.h"

#include "base/clock.h"
#include "base/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_bench_help =
    "usage: cllm bench -m MODEL_DIR [-p N[,N...]] [-n N[,N...]] [-t N] [-r N] [-b N] [--kv-type "
    "T]\n"
    "\n"
    "  -m, --model DIR          model folder (a tokenizer is not needed)\n"
    "  -p, --n-prompt LIST      prompt lengths to test (ppN: N tokens in batches of -b); default "
    "512\n"
    "  -n, --n-gen LIST         generation lengths to test (tgN: N single-token steps); default "
    "128\n"
    "  -r, --repetitions N      repetitions per test after one warm-up run (default 5)\n"
    "  --quant TYPE             quantize the weights in memory at load (q8_0, q4_0, q4_k, q6_k, "
    "...)\n"
    "%s"
    "\n"
    "Token ids are pseudo-random. Both tests run on the engine with one request: ppN evaluates N\n"
    "prompt tokens without sampling, tgN runs N single-token steps (greedy: one argmax per token,\n"
    "EOS ignored). The test sizes the KV cache itself and turns the prefix cache off, so -c,\n"
    "--kv-memory, --max-seqs, --max-model-len and --no-prefix-cache have no effect here.\n"
    "0 disables a test.\n"
    "\n"
    "cllm bench --serve ...  offline serving throughput (see cllm bench --serve --help)\n";

typedef struct bench_args {
    eng_opts eng;
    const char *model, *quant;
    long *pp, *tg, reps;
    int npp, ntg;
} bench_args;

static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* one run; returns seconds or < 0 on error */
static double run_test(cllm_engine *e, const int32_t *ids, int n, bool is_pp) {
    cllm_request r = cllm_request_default();
    r.prompt = ids;
    r.n_prompt = is_pp ? (size_t)n : 1;
    r.max_tokens = is_pp ? 0 : n;
    r.ignore_eos = 1;
    double t0 = clock_now();
    if (cllm_generate(e, &r, NULL, NULL, NULL)) return -1;
    return clock_now() - t0;
}

/* 1: parsed; 0: help printed; -1: error printed. */
static int parse_args(bench_args *b, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = eng_opts_parse(&b->eng, argc, argv, &i);
        if (r) {
            if (r < 0) return -1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_bench_help, k_eng_opts_help);
            return 0;
        }
        if (!(v = cli_value(argc, argv, &i))) return -1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            b->model = v;
        } else if (!strcmp(a, "--quant")) {
            b->quant = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            free(b->pp);
            if (!cli_int_list(a, v, 0, 1 << 20, &b->pp, &b->npp)) return -1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            free(b->tg);
            if (!cli_int_list(a, v, 0, 1 << 20, &b->tg, &b->ntg)) return -1;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!cli_int(a, v, 1, 1000, &b->reps)) return -1;
        } else {
            return cli_fail("bench: unknown option '%s' (see cllm bench --help)", a), -1;
        }
    }
    if (!b->model) return cli_fail("bench: -m MODEL_DIR is required"), -1;
    if (!b->pp && !cli_int_list("-p", "512", 0, 1 << 20, &b->pp, &b->npp)) return -1;
    if (!b->tg && !cli_int_list("-n", "128", 0, 1 << 20, &b->tg, &b->ntg)) return -1;
    return 1;
}

/* The model and a one-request engine with room for every test (pp N: N tokens; tg N: 1 + N). */
static bool load(const bench_args *b, cllm_model **m, cllm_engine **e, long *max_n) {
    cllm_model_params mp = eng_opts_model_params(&b->eng);
    mp.skip_tokenizer = 1;
    mp.quant = b->quant;
    if (cllm_model_load(b->model, &mp, m)) return cli_fail("%s", cllm_last_error()), false;
    cllm_model_info info;
    cllm_model_get_info(*m, &info);
    long need = 1;
    *max_n = 1;
    for (int i = 0; i < b->npp; i++) {
        need = b->pp[i] > need ? b->pp[i] : need;
        *max_n = b->pp[i] > *max_n ? b->pp[i] : *max_n;
    }
    for (int i = 0; i < b->ntg; i++) {
        need = b->tg[i] + 1 > need ? b->tg[i] + 1 : need;
        *max_n = b->tg[i] > *max_n ? b->tg[i] : *max_n;
    }
    if (need > info.max_ctx)
        return cli_fail("bench: %ld tokens exceed the model's context %d", need, info.max_ctx),
               false;
    cllm_engine_params ep = b->eng.ep;
    ep.kv_tokens = ep.max_model_len = (int)need;
    ep.kv_memory = 0;
    ep.max_seqs = 1;
    ep.no_prefix_cache = 1; /* every repetition evaluates its tokens again */
    if (cllm_engine_create(*m, &ep, e)) return cli_fail("%s", cllm_last_error()), false;
    return true;
}

/* One table row: a warm-up run, then the repetitions. */
static bool bench_row(cllm_engine *e, const bench_args *b, const cllm_model_info *info,
                      const int32_t *ids, int n, bool is_pp, double *t) {
    if (run_test(e, ids, n, is_pp) < 0) return cli_fail("%s", cllm_last_error()), false;
    for (int r = 0; r < b->reps; r++) {
        double sec = run_test(e, ids, n, is_pp);
        if (sec < 0) return cli_fail("%s", cllm_last_error()), false;
        t[r] = n / sec;
    }
    double mean, sd;
    stats(t, (int)b->reps, &mean, &sd);
    const char *base = strrchr(b->model, '/');
    base = base && base[1] ? base + 1 : b->model;
    printf("| %s %s | %.2f MiB | %.2f M | CPU %s | %d | %s%d | %.2f ± %.2f |\n", base,
           info->weight_dtypes, info->weight_bytes / 1048576.0, info->n_params / 1e6,
           cpu_level_name(), b->eng.threads, is_pp ? "pp" : "tg", n, mean, sd);
    fflush(stdout);
    return true;
}

int cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--serve")) return cmd_bench_serve(argc, argv);
    bench_args b = {.reps = 5};
    eng_opts_init(&b.eng);
    cllm_model *m = NULL;
    cllm_engine *e = NULL;
    int32_t *ids = NULL;
    double *t = NULL;
    long max_n;
    int r = parse_args(&b, argc, argv), rc = r < 0 ? 1 : 0;
    if (r <= 0) goto out;
    rc = 1;
    if (!load(&b, &m, &e, &max_n)) goto out;
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    ids = malloc(sizeof(int32_t) * (size_t)max_n);
    t = malloc(sizeof(double) * (size_t)b.reps);
    if (!ids || !t) {
        cli_fail("out of memory");
        goto out;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < max_n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)info.vocab_size);
    }
    char *kern = NULL;
    if (cllm_model_kernels(m, &kern) == CLLM_OK) fputs(kern, stdout);
    cllm_free(kern);
    printf("| model | size | params | backend | threads | test | t/s |\n");
    printf("| ----- | ---: | -----: | ------- | ------: | ---: | --: |\n");
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < (pass ? b.ntg : b.npp); k++) {
            long n = pass ? b.tg[k] : b.pp[k];
            if (n && !bench_row(e, &b, &info, ids, (int)n, !pass, t)) goto out;
        }
    rc = 0;
out:
    free(ids);
    free(t);
    cllm_engine_free(e);
    cllm_model_free(m);
    free(b.pp);
    free(b.tg);
    return rc;
}
