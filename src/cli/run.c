/* run.c - `cllm run`: generate a continuation of a prompt (or a reply to a conversation),
 * streaming text to stdout and llama.cpp-style timings to stderr. */
#include "cli/cli.h"
#include "cli/batch.h"
#include "cli/genopts.h"

#include "base/mapfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_run_help =
    "usage: cllm run -m MODEL_DIR (-p PROMPT | -f FILE | --prompt-ids IDS | --messages FILE)\n"
    "                [options]\n"
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
    "  --messages FILE          a conversation ({\"messages\": [...], \"tools\": [...]} or an "
    "array)\n"
    "                           rendered with the model's chat template plus the generation\n"
    "                           prompt; only the reply is printed\n"
    "%s"
    "  --input FILE             batch mode: {\"requests\": [{\"prompt\": ...} | {\"messages\": "
    "[...]},\n"
    "                           ...], \"temperature\", \"top_p\", \"top_k\", "
    "\"max_generate_length\",\n"
    "                           \"seed\" (also per request)}; all requests run together through "
    "the\n"
    "                           serving engine (continuous batching)\n"
    "  --output FILE            batch mode: {\"responses\": [{\"output_ids\", \"output_text\",\n"
    "                           \"finish_reason\", \"prompt_tokens\", \"completion_tokens\"}]}\n"
    "  --kv-memory SIZE         batch mode KV budget, e.g. 512MiB, 2GiB (default: -c tokens or "
    "16384)\n"
    "  --max-seqs N             batch mode: sequences per step (default 64)\n"
    "  --max-batched-tokens N   batch mode: tokens per step (default 512)\n"
    "  --no-prefix-cache        batch mode: do not reuse KV of shared prompt prefixes\n"
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

/* Render the conversation in `path` with the model's template into prompt ids. */
static bool messages_to_ids(const cllm_model *m, const char *model_dir, const char *path,
                            int32_t **ids, size_t *n) {
    const cllm_chat_template *ct;
    json_error_t je;
    json_t *conv = NULL;
    bool ok = false;
    if (cllm_tokenizer_chat_template(cllm_model_tokenizer(m), &ct))
        return cli_fail("%s", cllm_last_error()), false;
    if (!(conv = json_load_file(path, 0, &je)))
        cli_fail("%s: not valid JSON: %s (line %d)", path, je.text, je.line);
    else if (json_is_array(conv))
        ok = gen_conversation_ids(m, ct, conv, NULL, path, ids, n);
    else
        ok = gen_conversation_ids(m, ct, json_object_get(conv, "messages"),
                                  json_object_get(conv, "tools"), path, ids, n);
    json_decref(conv);
    return ok;
}

int cmd_run(int argc, char **argv) {
    const char *prompt = NULL, *prompt_file = NULL, *ids_arg = NULL, *dump = NULL, *messages = NULL,
               *input = NULL, *output = NULL, *kv_mem = NULL;
    long max_seqs = 64, max_batched = 512;
    bool no_prefix_cache = false;
    bool escape = false, print_ids = false;
    int rc = 1;
    char *prompt_buf = NULL;
    long *pids = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    cllm_model *m = NULL;
    cllm_session *s = NULL;
    gen_opts o;
    if (!gen_opts_init(&o, argc, 128)) return cli_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opts_parse(&o, argc, argv, &i);
        if (r < 0) goto out;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_run_help, k_gen_opts_help);
            rc = 0;
            goto out;
        }
        const char **dst = !strcmp(a, "-p") || !strcmp(a, "--prompt") ? &prompt
                           : !strcmp(a, "-f") || !strcmp(a, "--file") ? &prompt_file
                           : !strcmp(a, "--prompt-ids")               ? &ids_arg
                           : !strcmp(a, "--messages")                 ? &messages
                           : !strcmp(a, "--dump-logits")              ? &dump
                           : !strcmp(a, "--input")                    ? &input
                           : !strcmp(a, "--output")                   ? &output
                           : !strcmp(a, "--kv-memory")                ? &kv_mem
                                                                      : NULL;
        if (dst) {
            if (!(*dst = cli_value(argc, argv, &i))) goto out;
        } else if (!strcmp(a, "-e") || !strcmp(a, "--escape")) {
            escape = true;
        } else if (!strcmp(a, "--ids")) {
            print_ids = true;
        } else if (!strcmp(a, "--no-prefix-cache")) {
            no_prefix_cache = true;
        } else if (!strcmp(a, "--max-seqs") || !strcmp(a, "--max-batched-tokens")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || !cli_int(a, v, 1, 1 << 20, a[6] == 's' ? &max_seqs : &max_batched)) goto out;
        } else {
            cli_fail("run: unknown option '%s' (see cllm run --help)", a);
            goto out;
        }
    }
    if (!o.model) {
        cli_fail("run: -m MODEL_DIR is required (see cllm run --help)");
        goto out;
    }
    if (input || output) {
        if (!input || !output || prompt || prompt_file || ids_arg || messages) {
            cli_fail("run: batch mode needs --input and --output and no other prompt option");
            goto out;
        }
        cllm_engine_params ep = cllm_engine_default_params();
        if (kv_mem && !cli_size("--kv-memory", kv_mem, &ep.kv_memory)) goto out;
        if (o.ctx > 0) ep.kv_tokens = (int)o.ctx;
        ep.block_size = (int)o.block;
        ep.kv_type = o.kv_type;
        ep.max_seqs = (int)max_seqs;
        ep.max_batched_tokens = (int)max_batched;
        ep.no_prefix_cache = no_prefix_cache;
        gen_opts_finish(&o);
        if (!gen_opts_load(&o, true, &m)) goto out;
        rc = cli_run_batch(&o, &ep, m, input, output);
        goto out;
    }
    if (!!prompt + !!prompt_file + !!ids_arg + !!messages != 1) {
        cli_fail("run: give exactly one of -p, -f, --prompt-ids, --messages");
        goto out;
    }
    gen_opts_finish(&o);
    if (!gen_opts_load(&o, !(ids_arg && print_ids), &m)) goto out;
    cllm_model_info info;
    cllm_model_get_info(m, &info);

    size_t n_ids = 0;
    if (ids_arg) {
        int n;
        if (!cli_int_list("--prompt-ids", ids_arg, 0, info.vocab_size - 1, &pids, &n)) goto out;
        if (!(ids = malloc(sizeof(int32_t) * (size_t)n))) goto out;
        for (int i = 0; i < n; i++)
            ids[i] = (int32_t)pids[i];
        n_ids = (size_t)n;
    } else if (messages) {
        if (!messages_to_ids(m, o.model, messages, &ids, &n_ids)) goto out;
    } else {
        if (prompt_file) {
            if (file_read_all(prompt_file, (size_t)1 << 30, &prompt_buf, NULL)) {
                cli_fail("%s", cllm_last_error());
                goto out;
            }
            prompt = prompt_buf;
        } else if (escape) {
            if (!(prompt = prompt_buf = strdup(prompt))) goto out;
            cli_unescape(prompt_buf);
        }
        if (cllm_tokenize(m, prompt, strlen(prompt), 1, 1, &ids, &n_ids)) {
            cli_fail("%s", cllm_last_error());
            goto out;
        }
    }
    if (n_ids == 0) {
        cli_fail("run: the prompt has no tokens (and the tokenizer adds no BOS)");
        goto out;
    }
    if (!gen_opts_session(&o, m, (long)n_ids + o.n_predict, &s)) goto out;
    cllm_gen_params gp = gen_opts_params(&o);
    if (dump) {
        size_t rows = (size_t)(o.n_predict ? o.n_predict : 1);
        if (!(logits = malloc(sizeof(float) * (size_t)info.vocab_size * rows))) {
            cli_fail("--dump-logits: out of memory");
            goto out;
        }
        gp.logits_out = logits;
    }
    run_out ro = {.ids = print_ids};
    if (!print_ids && prompt) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    cllm_gen_stats st;
    if (cllm_generate(s, ids, n_ids, &o.sp, &gp, on_token, &ro, &st)) {
        fputc('\n', stdout);
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        size_t row = sizeof(float) * (size_t)info.vocab_size;
        if (!f || fwrite(logits, row, (size_t)st.n_gen, f) != (size_t)st.n_gen) {
            if (f) fclose(f);
            cli_fail("%s: cannot write logits", dump);
            goto out;
        }
        fclose(f);
    }
    gen_print_timings(m, &st);
    rc = 0;
out:
    cllm_session_free(s);
    cllm_model_free(m);
    gen_opts_free(&o);
    free(prompt_buf);
    free(pids);
    free(ids);
    free(logits);
    return rc;
}
