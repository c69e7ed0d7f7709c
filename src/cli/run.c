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
    "Timings go to stderr. Generation runs on the serving engine (one request; batch mode: all\n"
    "of them together).\n"
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
    "%s%s"
    "  --input FILE             batch mode: {\"requests\": [{\"prompt\": ...} | {\"messages\": "
    "[...]},\n"
    "                           ...], \"temperature\", \"top_p\", \"top_k\", "
    "\"max_generate_length\",\n"
    "                           \"seed\" (also per request)}; all requests run together through "
    "the\n"
    "                           serving engine (continuous batching)\n"
    "  --output FILE            batch mode: {\"responses\": [{\"output_ids\", \"output_text\",\n"
    "                           \"finish_reason\", \"prompt_tokens\", \"completion_tokens\"}]}\n"
    "  --ids                    print the generated token ids (one line) instead of text\n"
    "  --dump-logits FILE       write each step's logits (float32, vocab per row) to FILE; with\n"
    "                           -n 0 the last prompt token's\n"
    "  -h, --help               this help\n"
    "\n"
    "Sampling order: penalties -> top-k -> top-p -> min-p -> temperature -> draw.\n";

typedef struct run_args {
    gen_opts g;
    const char *prompt, *prompt_file, *ids_arg, *dump, *messages, *input, *output;
    bool escape, print_ids;
} run_args;

/* What the generation callback and the logits hook write to. */
typedef struct run_out {
    bool ids;
    int n_ids;
    float *logits; /* [rows][vocab] for --dump-logits */
    int rows, vocab, n_rows;
} run_out;

static int on_token(void *user, const cllm_event *ev) {
    run_out *o = user;
    if (o->ids) {
        if (ev->token >= 0) printf("%s%d", o->n_ids++ ? " " : "", ev->token);
    } else if (ev->len) {
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
    }
    return 0;
}

static void on_logits(void *user, cllm_request_id id, int index, const float *logits, int vocab) {
    run_out *o = user;
    (void)id;
    if (index >= o->rows || vocab != o->vocab) return;
    memcpy(o->logits + (size_t)index * (size_t)vocab, logits, sizeof(float) * (size_t)vocab);
    if (index + 1 > o->n_rows) o->n_rows = index + 1;
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

/* 1: parsed; 0: help printed; -1: error printed. */
static int parse_args(run_args *a, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int r = gen_opts_parse(&a->g, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            printf(k_run_help, k_gen_opts_help, k_eng_opts_help);
            return 0;
        }
        const char **dst = !strcmp(s, "-p") || !strcmp(s, "--prompt") ? &a->prompt
                           : !strcmp(s, "-f") || !strcmp(s, "--file") ? &a->prompt_file
                           : !strcmp(s, "--prompt-ids")               ? &a->ids_arg
                           : !strcmp(s, "--messages")                 ? &a->messages
                           : !strcmp(s, "--dump-logits")              ? &a->dump
                           : !strcmp(s, "--input")                    ? &a->input
                           : !strcmp(s, "--output")                   ? &a->output
                                                                      : NULL;
        if (dst) {
            if (!(*dst = cli_value(argc, argv, &i))) return -1;
        } else if (!strcmp(s, "-e") || !strcmp(s, "--escape")) {
            a->escape = true;
        } else if (!strcmp(s, "--ids")) {
            a->print_ids = true;
        } else {
            return cli_fail("run: unknown option '%s' (see cllm run --help)", s), -1;
        }
    }
    if (!a->g.model) return cli_fail("run: -m MODEL_DIR is required (see cllm run --help)"), -1;
    bool batch = a->input || a->output;
    int n_prompts = !!a->prompt + !!a->prompt_file + !!a->ids_arg + !!a->messages;
    if (batch && (!a->input || !a->output || n_prompts))
        return cli_fail("run: batch mode needs --input and --output and no other prompt option"),
               -1;
    if (!batch && n_prompts != 1)
        return cli_fail("run: give exactly one of -p, -f, --prompt-ids, --messages"), -1;
    gen_opts_finish(&a->g);
    return 1;
}

/* The prompt as token ids; *echo: the prompt text to print first (NULL: none). */
static bool prompt_ids(run_args *a, cllm_model *m, char **buf, int32_t **ids, size_t *n,
                       const char **echo) {
    *echo = NULL;
    if (a->ids_arg) {
        cllm_model_info info;
        cllm_model_get_info(m, &info);
        long *p = NULL;
        int k;
        if (!cli_int_list("--prompt-ids", a->ids_arg, 0, info.vocab_size - 1, &p, &k)) return false;
        *ids = malloc(sizeof(int32_t) * (size_t)k);
        for (int i = 0; *ids && i < k; i++)
            (*ids)[i] = (int32_t)p[i];
        free(p);
        *n = (size_t)k;
        if (!*ids) return cli_fail("out of memory"), false;
        return true;
    }
    if (a->messages) return messages_to_ids(m, a->g.model, a->messages, ids, n);
    const char *text = a->prompt;
    if (a->prompt_file) {
        if (file_read_all(a->prompt_file, (size_t)1 << 30, buf, NULL))
            return cli_fail("%s", cllm_last_error()), false;
        text = *buf;
    } else if (a->escape) {
        if (!(text = *buf = strdup(text))) return cli_fail("out of memory"), false;
        cli_unescape(*buf);
    }
    if (cllm_tokenize(m, text, strlen(text), 1, 1, ids, n))
        return cli_fail("%s", cllm_last_error()), false;
    *echo = a->print_ids ? NULL : text;
    return true;
}

static bool write_logits(const char *path, const run_out *o) {
    FILE *f = fopen(path, "wb");
    size_t row = sizeof(float) * (size_t)o->vocab, n = (size_t)o->n_rows;
    bool ok = f && fwrite(o->logits, row, n, f) == n;
    if (f && fclose(f)) ok = false;
    if (!ok) cli_fail("%s: cannot write logits", path);
    return ok;
}

/* One request through a one-request engine, streamed to stdout; timings to stderr. */
static bool generate_one(const run_args *a, cllm_model *m, const int32_t *ids, size_t n,
                         const char *echo) {
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    run_out ro = {.ids = a->print_ids, .vocab = info.vocab_size};
    cllm_engine *e = NULL;
    bool ok = false;
    if (!gen_opts_engine(&a->g, m, (long)n + a->g.n_predict, &e)) return false;
    if (a->dump) {
        ro.rows = a->g.n_predict ? (int)a->g.n_predict : 1;
        if (!(ro.logits = malloc(sizeof(float) * (size_t)ro.vocab * (size_t)ro.rows))) {
            cli_fail("--dump-logits: out of memory");
            goto done;
        }
        cllm_engine_set_logits_hook(e, on_logits, &ro);
    }
    if (echo) fputs(echo, stdout), fflush(stdout);
    cllm_request r = gen_opts_request(&a->g, ids, n);
    cllm_gen_stats st;
    cllm_status s = cllm_generate(e, &r, on_token, &ro, &st);
    fputc('\n', stdout);
    fflush(stdout);
    if (s) {
        cli_fail("%s", cllm_last_error());
        goto done;
    }
    if (a->dump && !write_logits(a->dump, &ro)) goto done;
    gen_print_timings(m, &st);
    ok = true;
done:
    cllm_engine_free(e);
    free(ro.logits);
    return ok;
}

int cmd_run(int argc, char **argv) {
    run_args a = {0};
    int rc = 1;
    char *buf = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    const char *echo;
    cllm_model *m = NULL;
    if (!gen_opts_init(&a.g, argc, 128)) return cli_fail("out of memory");
    int r = parse_args(&a, argc, argv);
    if (r <= 0) {
        rc = r < 0;
        goto out;
    }
    if (a.input) {
        if (gen_opts_load(&a.g, true, &m)) rc = cli_run_batch(&a.g, m, a.input, a.output);
        goto out;
    }
    if (!gen_opts_load(&a.g, !(a.ids_arg && a.print_ids), &m) ||
        !prompt_ids(&a, m, &buf, &ids, &n_ids, &echo))
        goto out;
    if (n_ids == 0) {
        cli_fail("run: the prompt has no tokens (and the tokenizer adds no BOS)");
        goto out;
    }
    rc = generate_one(&a, m, ids, n_ids, echo) ? 0 : 1;
out:
    cllm_model_free(m);
    gen_opts_free(&a.g);
    free(buf);
    free(ids);
    return rc;
}
