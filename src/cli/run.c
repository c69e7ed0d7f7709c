/* run.c - `cllm run`: generate a continuation of a prompt, streaming text to stdout and
 * llama.cpp-style timings to stderr. */
#include "cli/cli.h"

#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *k_run_help =
    "usage: cllm run -m MODEL_DIR (-p PROMPT | -f FILE | --prompt-ids IDS) [options]\n"
    "\n"
    "Writes the prompt, then the generated text as it is produced, then a newline, to stdout.\n"
    "Timings go to stderr.\n"
    "\n"
    "  -m, --model DIR          Hugging Face model folder (required)\n"
    "  -p, --prompt TEXT        prompt text (BOS added if the tokenizer says so; special-token\n"
    "                           text such as <|im_start|> is parsed as special tokens)\n"
    "  -f, --file FILE          read the prompt from a file\n"
    "  -e, --escape             process \\n \\t \\r \\\\ \\\" escapes in the prompt\n"
    "  --prompt-ids IDS         prompt as comma-separated token ids (no tokenizer, no BOS added)\n"
    "  -n, --n-predict N        number of new tokens (default 128)\n"
    "  --temp T                 temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K                keep the K most likely tokens; 0 = off (default 40)\n"
    "  --top-p P                nucleus sampling; 1 = off (default 0.95)\n"
    "  --min-p P                drop tokens below P x the top probability; 0 = off (default 0.05)\n"
    "  --repeat-penalty X       llama.cpp repetition penalty; 1 = off (default 1.0)\n"
    "  --repeat-last-n N        window of the penalties in tokens; -1 = all (default 64)\n"
    "  --presence-penalty X     OpenAI presence penalty (default 0)\n"
    "  --frequency-penalty X    OpenAI frequency penalty (default 0)\n"
    "  --seed S                 RNG seed; -1 = random (default -1)\n"
    "  --stop TEXT              stop when TEXT is generated (not printed); repeatable; escapes\n"
    "                           such as \\n are processed\n"
    "  --ignore-eos             do not stop at the model's end-of-sequence token(s)\n"
    "  -t, --threads N          threads (default: number of CPUs)\n"
    "  -c, --ctx-size N         KV cache size in tokens (default: prompt + n-predict)\n"
    "  -b, --batch-size N       max prompt tokens per forward pass (default 512)\n"
    "  --block-size N           KV cache block size in tokens (default 16)\n"
    "  --kv-type f32|f16|bf16   KV cache element type (default: the model's dtype)\n"
    "  --ids                    print the generated token ids (one line) instead of text\n"
    "  --dump-logits FILE       write each step's logits (float32, vocab per row) to FILE\n"
    "  -h, --help               this help\n"
    "\n"
    "Sampling order: penalties -> top-k -> top-p -> min-p -> temperature -> draw.\n";

typedef struct run_out {
    bool ids;
    int n_ids;
} run_out;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
    run_out *o = user;
    if (o->ids) {
        if (id >= 0) printf("%s%d", o->n_ids++ ? " " : "", id);
    } else if (len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(b, (cap *= 2) + 1);
            if (!nb) free(b);
            b = nb;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *prompt_file = NULL, *ids_arg = NULL, *dump = NULL;
    long n_predict = 128, threads = 0, ctx = 0, batch = 512, block = 16, seed = -1;
    bool escape = false, print_ids = false, ignore_eos = false;
    cllm_kv_type kv_type = CLLM_KV_AUTO;
    cllm_sampling_params sp = cllm_sampling_default_params();
    char **stops = calloc((size_t)argc + 1, sizeof(char *));
    int n_stops = 0, rc = 1;
    char *prompt_buf = NULL;
    long *pids = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    cllm_model *m = NULL;
    cllm_session *s = NULL;
    if (!stops) return cli_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double d;
        long l;
#define VAL()                                                                                      \
    if (!(v = cli_value(argc, argv, &i))) goto out
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_run_help, stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VAL();
            model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            VAL();
            prompt = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            VAL();
            prompt_file = v;
        } else if (!strcmp(a, "-e") || !strcmp(a, "--escape"))
            escape = true;
        else if (!strcmp(a, "--prompt-ids")) {
            VAL();
            ids_arg = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            VAL();
            if (!cli_int(a, v, 0, 1 << 24, &n_predict)) goto out;
        } else if (!strcmp(a, "--temp")) {
            VAL();
            if (!cli_float(a, v, 0, 1e6, &d)) goto out;
            sp.temperature = (float)d;
        } else if (!strcmp(a, "--top-k")) {
            VAL();
            if (!cli_int(a, v, 0, 1L << 30, &l)) goto out;
            sp.top_k = (int)l;
        } else if (!strcmp(a, "--top-p")) {
            VAL();
            if (!cli_float(a, v, 0, 1, &d)) goto out;
            sp.top_p = (float)d;
        } else if (!strcmp(a, "--min-p")) {
            VAL();
            if (!cli_float(a, v, 0, 1, &d)) goto out;
            sp.min_p = (float)d;
        } else if (!strcmp(a, "--repeat-penalty")) {
            VAL();
            if (!cli_float(a, v, 1e-6, 1e6, &d)) goto out;
            sp.repeat_penalty = (float)d;
        } else if (!strcmp(a, "--repeat-last-n")) {
            VAL();
            if (!cli_int(a, v, -1, 1 << 24, &l)) goto out;
            sp.repeat_last_n = (int)l;
        } else if (!strcmp(a, "--presence-penalty")) {
            VAL();
            if (!cli_float(a, v, -2, 2, &d)) goto out;
            sp.presence_penalty = (float)d;
        } else if (!strcmp(a, "--frequency-penalty")) {
            VAL();
            if (!cli_float(a, v, -2, 2, &d)) goto out;
            sp.frequency_penalty = (float)d;
        } else if (!strcmp(a, "--seed")) {
            VAL();
            if (!cli_int(a, v, -1, 0x7fffffffffffffffL, &seed)) goto out;
        } else if (!strcmp(a, "--stop")) {
            VAL();
            stops[n_stops] = strdup(v);
            if (!stops[n_stops]) goto out;
            cli_unescape(stops[n_stops]);
            if (!*stops[n_stops++]) {
                cli_fail("--stop: empty string");
                goto out;
            }
        } else if (!strcmp(a, "--ignore-eos"))
            ignore_eos = true;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VAL();
            if (!cli_int(a, v, 1, 256, &threads)) goto out;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            VAL();
            if (!cli_int(a, v, 0, 1 << 24, &ctx)) goto out;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            VAL();
            if (!cli_int(a, v, 1, 65536, &batch)) goto out;
        } else if (!strcmp(a, "--block-size")) {
            VAL();
            if (!cli_int(a, v, 1, 1024, &block)) goto out;
        } else if (!strcmp(a, "--kv-type")) {
            VAL();
            if (!strcmp(v, "f32"))
                kv_type = CLLM_KV_F32;
            else if (!strcmp(v, "f16"))
                kv_type = CLLM_KV_F16;
            else if (!strcmp(v, "bf16"))
                kv_type = CLLM_KV_BF16;
            else {
                cli_fail("--kv-type: expected f32, f16 or bf16, got '%s'", v);
                goto out;
            }
        } else if (!strcmp(a, "--ids"))
            print_ids = true;
        else if (!strcmp(a, "--dump-logits")) {
            VAL();
            dump = v;
        } else {
            cli_fail("run: unknown option '%s' (see cllm run --help)", a);
            goto out;
        }
#undef VAL
    }
    if (!model) {
        cli_fail("run: -m MODEL_DIR is required (see cllm run --help)");
        goto out;
    }
    if (!!prompt + !!prompt_file + !!ids_arg != 1) {
        cli_fail("run: give exactly one of -p, -f, --prompt-ids");
        goto out;
    }
    sp.seed = seed < 0 ? (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) : (uint64_t)seed;

    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = (int)threads;
    mp.require_tokenizer = !(ids_arg && print_ids);
    if (cllm_model_load(model, &mp, &m)) {
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    cllm_model_info info;
    cllm_model_get_info(m, &info);

    size_t n_ids = 0;
    if (ids_arg) {
        int n;
        if (!cli_int_list("--prompt-ids", ids_arg, 0, info.vocab_size - 1, &pids, &n)) goto out;
        ids = malloc(sizeof(int32_t) * (size_t)n);
        if (!ids) goto out;
        for (int i = 0; i < n; i++)
            ids[i] = (int32_t)pids[i];
        n_ids = (size_t)n;
    } else {
        if (prompt_file) {
            prompt = prompt_buf = read_file(prompt_file);
            if (!prompt) {
                cli_fail("%s: cannot read prompt file", prompt_file);
                goto out;
            }
        } else if (escape) {
            prompt = prompt_buf = strdup(prompt);
            if (!prompt_buf) goto out;
            cli_unescape(prompt_buf);
        }
        if (cllm_tokenize(m, prompt, strlen(prompt), 1, 1, &ids, &n_ids)) {
            cli_fail("%s", cllm_last_error());
            goto out;
        }
        if (n_ids == 0) {
            cli_fail("run: the prompt has no tokens (and the tokenizer adds no BOS)");
            goto out;
        }
    }

    cllm_session_params ssp = cllm_session_default_params();
    ssp.n_ctx = ctx > 0 ? (int)ctx : (int)(n_ids + (size_t)n_predict);
    if (ssp.n_ctx > info.max_ctx && ctx == 0) ssp.n_ctx = info.max_ctx;
    ssp.n_batch = (int)batch;
    ssp.block_size = (int)block;
    ssp.kv_type = kv_type;
    if (cllm_session_create(m, &ssp, &s)) {
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    if (dump) {
        logits =
            malloc(sizeof(float) * (size_t)info.vocab_size * (size_t)(n_predict ? n_predict : 1));
        if (!logits) {
            cli_fail("--dump-logits: out of memory");
            goto out;
        }
    }
    const char *const *stop_list = (const char *const *)stops;
    cllm_gen_params gp = {.max_tokens = (int)n_predict,
                          .stop = stop_list,
                          .n_stop = n_stops,
                          .ignore_eos = ignore_eos,
                          .logits_out = logits};
    run_out ro = {.ids = print_ids};
    if (!print_ids) {
        fputs(prompt ? prompt : "", stdout);
        fflush(stdout);
    }
    cllm_gen_stats st;
    if (cllm_generate(s, ids, n_ids, &sp, &gp, on_token, &ro, &st)) {
        fputc('\n', stdout);
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(logits, sizeof(float) * (size_t)info.vocab_size, (size_t)st.n_gen, f) !=
                      (size_t)st.n_gen) {
            if (f) fclose(f);
            cli_fail("%s: cannot write logits", dump);
            goto out;
        }
        fclose(f);
    }
    int runs = st.n_gen > 1 ? st.n_gen - 1 : 0;
    fprintf(stderr, "\n");
    fprintf(stderr, "cllm: load time        = %10.2f ms\n", info.load_seconds * 1e3);
    fprintf(stderr,
            "cllm: prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per "
            "second)\n",
            st.t_prompt * 1e3, st.n_prompt, st.n_prompt ? st.t_prompt * 1e3 / st.n_prompt : 0.0,
            st.t_prompt > 0 ? st.n_prompt / st.t_prompt : 0.0);
    fprintf(stderr, "cllm: time to first token = %7.2f ms\n", st.t_first_token * 1e3);
    fprintf(stderr,
            "cllm: eval time        = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per "
            "second)\n",
            st.t_gen * 1e3, runs, runs ? st.t_gen * 1e3 / runs : 0.0,
            st.t_gen > 0 ? runs / st.t_gen : 0.0);
    fprintf(stderr, "cllm: generated %d tokens, stopped by %s\n", st.n_gen,
            st.finish == CLLM_FINISH_EOS     ? "eos"
            : st.finish == CLLM_FINISH_STOP  ? "stop string"
            : st.finish == CLLM_FINISH_ABORT ? "abort"
                                             : "length");
    rc = 0;
out:
    cllm_session_free(s);
    cllm_model_free(m);
    for (int i = 0; i < n_stops; i++)
        free(stops[i]);
    free(stops);
    free(prompt_buf);
    free(pids);
    free(ids);
    free(logits);
    return rc;
}
