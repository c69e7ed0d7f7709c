/* bench.c - `cllm bench`: llama-bench style prompt-processing (ppN) and text-generation (tgN)
 * throughput, mean ± stddev over repetitions, as a markdown table. */
#include "cli/cli.h"

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
    "  -m, --model DIR         model folder (a tokenizer is not needed)\n"
    "  -p, --n-prompt LIST     prompt lengths to test (ppN: N tokens in batches of -b); default "
    "512\n"
    "  -n, --n-gen LIST        generation lengths to test (tgN: N single-token steps); default "
    "128\n"
    "  -t, --threads N         threads (default: number of CPUs)\n"
    "  -r, --repetitions N     repetitions per test after one warm-up run (default 5)\n"
    "  -b, --batch-size N      prompt batch size (default 512)\n"
    "  --kv-type f32|f16|bf16  KV cache element type (default: the model's dtype)\n"
    "  --quant TYPE            quantize the weights in memory at load (q8_0, q4_0, q4_k, q6_k, "
    "...)\n"
    "\n"
    "Token ids are pseudo-random; no sampling is timed (as llama-bench). 0 disables a test.\n"
    "\n"
    "cllm bench --serve ...  offline serving throughput (see cllm bench --serve --help)\n";

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
static double run_test(cllm_session *s, const int32_t *ids, int n, bool is_pp) {
    double t0 = clock_now();
    if (is_pp) {
        if (cllm_session_eval(s, ids, (size_t)n, 0)) return -1;
    } else {
        for (int i = 0; i < n; i++)
            if (cllm_session_eval(s, ids + i, 1, i)) return -1;
    }
    return clock_now() - t0;
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    long *pp = NULL, *tg = NULL, threads = 0, reps = 5, batch = 512;
    int npp = 0, ntg = 0, rc = 1;
    cllm_kv_type kv_type = CLLM_KV_AUTO;
    const char *quant = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--serve")) return cmd_bench_serve(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_bench_help, stdout);
            rc = 0;
            goto out;
        }
        if (!(v = cli_value(argc, argv, &i))) goto out;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--quant"))
            quant = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            free(pp);
            if (!cli_int_list(a, v, 0, 1 << 20, &pp, &npp)) goto out;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            free(tg);
            if (!cli_int_list(a, v, 0, 1 << 20, &tg, &ntg)) goto out;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_int(a, v, 1, 256, &threads)) goto out;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!cli_int(a, v, 1, 1000, &reps)) goto out;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (!cli_int(a, v, 1, 65536, &batch)) goto out;
        } else if (!strcmp(a, "--kv-type")) {
            if (!strcmp(v, "f32"))
                kv_type = CLLM_KV_F32;
            else if (!strcmp(v, "f16"))
                kv_type = CLLM_KV_F16;
            else if (!strcmp(v, "bf16"))
                kv_type = CLLM_KV_BF16;
            else {
                cli_fail("--kv-type: expected f32, f16 or bf16");
                goto out;
            }
        } else {
            cli_fail("bench: unknown option '%s' (see cllm bench --help)", a);
            goto out;
        }
    }
    if (!model) {
        cli_fail("bench: -m MODEL_DIR is required");
        goto out;
    }
    if (!pp) {
        pp = malloc(sizeof(long));
        pp[0] = 512;
        npp = 1;
    }
    if (!tg) {
        tg = malloc(sizeof(long));
        tg[0] = 128;
        ntg = 1;
    }

    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = (int)threads;
    mp.skip_tokenizer = 1;
    mp.quant = quant;
    cllm_model *m;
    if (cllm_model_load(model, &mp, &m)) {
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    long max_n = 1;
    for (int i = 0; i < npp; i++)
        max_n = pp[i] > max_n ? pp[i] : max_n;
    for (int i = 0; i < ntg; i++)
        max_n = tg[i] > max_n ? tg[i] : max_n;
    if (max_n > info.max_ctx) {
        cli_fail("bench: %ld tokens exceed the model's context %d", max_n, info.max_ctx);
        cllm_model_free(m);
        goto out;
    }
    cllm_session_params sp = cllm_session_default_params();
    sp.n_ctx = (int)max_n;
    sp.n_batch = (int)batch;
    sp.kv_type = kv_type;
    cllm_session *s;
    if (cllm_session_create(m, &sp, &s)) {
        cli_fail("%s", cllm_last_error());
        cllm_model_free(m);
        goto out;
    }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)max_n);
    double *t = malloc(sizeof(double) * (size_t)reps);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < max_n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)info.vocab_size);
    }
    const char *base = strrchr(model, '/');
    base = base && base[1] ? base + 1 : model;
    char *kern = NULL;
    if (cllm_model_kernels(m, &kern) == CLLM_OK) fputs(kern, stdout);
    cllm_free(kern);
    printf("| model | size | params | backend | threads | test | t/s |\n");
    printf("| ----- | ---: | -----: | ------- | ------: | ---: | --: |\n");
    for (int pass = 0; pass < 2; pass++) {
        long *list = pass ? tg : pp;
        int nl = pass ? ntg : npp;
        for (int k = 0; k < nl; k++) {
            if (list[k] == 0) continue;
            int n = (int)list[k];
            if (run_test(s, ids, n, !pass) < 0) {
                cli_fail("%s", cllm_last_error());
                goto done;
            }
            for (int r = 0; r < reps; r++) {
                double sec = run_test(s, ids, n, !pass);
                if (sec < 0) {
                    cli_fail("%s", cllm_last_error());
                    goto done;
                }
                t[r] = n / sec;
            }
            double mean, sd;
            stats(t, (int)reps, &mean, &sd);
            printf("| %s %s | %.2f MiB | %.2f M | CPU %s | %ld | %s%d | %.2f ± %.2f |\n", base,
                   info.weight_dtypes, info.weight_bytes / 1048576.0, info.n_params / 1e6,
                   cpu_level_name(), threads ? threads : (long)0, pass ? "tg" : "pp", n, mean, sd);
            fflush(stdout);
        }
    }
    rc = 0;
done:
    free(ids);
    free(t);
    cllm_session_free(s);
    cllm_model_free(m);
out:
    free(pp);
    free(tg);
    return rc;
}
