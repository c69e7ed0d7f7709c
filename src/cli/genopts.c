/* genopts.c - parsing of the generation options shared by `run` and `chat`; the one-request
 * engine they generate with. */
#include "cli/genopts.h"

#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const k_gen_opts_help =
    "  -n, --n-predict N        max new tokens (run: 128, chat: 512 per reply)\n"
    "  --temp T                 temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K                keep the K most likely tokens; 0 = off (default 40)\n"
    "  --top-p P                nucleus sampling in (0, 1]; 1 = off (default 0.95)\n"
    "  --min-p P                drop tokens below P x the top probability; 0 = off (default 0.05)\n"
    "  --repeat-penalty X       llama.cpp repetition penalty; 1 = off (default 1.0)\n"
    "  --repeat-last-n N        window of the penalties in tokens; -1 = all (default 64)\n"
    "  --presence-penalty X     OpenAI presence penalty in [-2, 2] (default 0)\n"
    "  --frequency-penalty X    OpenAI frequency penalty in [-2, 2] (default 0)\n"
    "  --seed S                 RNG seed; -1 = random (default -1)\n"
    "  --stop TEXT              stop when TEXT is generated (not printed); repeatable; escapes\n"
    "                           such as \\n are processed\n"
    "  --ignore-eos             do not stop at the model's end-of-sequence token(s)\n"
    "  --quant TYPE             quantize the weights in memory at load: q8_0, q4_0, q4_1, q5_0,\n"
    "                           q5_1, q4_k, q5_k, q6_k, f16, bf16\n";

bool gen_opts_init(gen_opts *o, int argc, long default_n_predict) {
    memset(o, 0, sizeof *o);
    o->n_predict = default_n_predict;
    o->seed = -1;
    eng_opts_init(&o->eng);
    o->sp = cllm_sampling_default_params();
    o->stops = calloc((size_t)argc + 1, sizeof(char *));
    return o->stops != NULL;
}

void gen_opts_free(gen_opts *o) {
    for (int i = 0; i < o->n_stops; i++)
        free(o->stops[i]);
    free(o->stops);
    o->stops = NULL;
}

int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i) {
    static const char *const with_value[] = {"-m",
                                             "--model",
                                             "-n",
                                             "--n-predict",
                                             "--temp",
                                             "--top-k",
                                             "--top-p",
                                             "--min-p",
                                             "--repeat-penalty",
                                             "--repeat-last-n",
                                             "--presence-penalty",
                                             "--frequency-penalty",
                                             "--seed",
                                             "--stop",
                                             "--quant"};
    const char *a = argv[*i], *v = NULL;
    int r = eng_opts_parse(&o->eng, argc, argv, i);
    if (r) return r;
    if (!strcmp(a, "--ignore-eos")) {
        o->ignore_eos = true;
        return 1;
    }
    bool known = false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
        known |= !strcmp(a, with_value[k]);
    if (!known) return 0;
    if (!(v = cli_value(argc, argv, i))) return -1;
    double d;
    long l;
    cllm_sampling_params *sp = &o->sp;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        o->model = v;
    } else if (!strcmp(a, "--quant")) {
        o->quant = v;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        if (!cli_int(a, v, 0, 1 << 24, &o->n_predict)) return -1;
    } else if (!strcmp(a, "--temp")) {
        if (!cli_float(a, v, 0, 1e6, &d)) return -1;
        sp->temperature = (float)d;
    } else if (!strcmp(a, "--top-k")) {
        if (!cli_int(a, v, 0, 1L << 30, &l)) return -1;
        sp->top_k = (int)l;
    } else if (!strcmp(a, "--top-p")) {
        if (!cli_float(a, v, 1e-9, 1, &d)) return -1;
        sp->top_p = (float)d;
    } else if (!strcmp(a, "--min-p")) {
        if (!cli_float(a, v, 0, 1, &d)) return -1;
        sp->min_p = (float)d;
    } else if (!strcmp(a, "--repeat-penalty")) {
        if (!cli_float(a, v, 1e-6, 1e6, &d)) return -1;
        sp->repeat_penalty = (float)d;
    } else if (!strcmp(a, "--repeat-last-n")) {
        if (!cli_int(a, v, -1, 1 << 24, &l)) return -1;
        sp->repeat_last_n = (int)l;
    } else if (!strcmp(a, "--presence-penalty")) {
        if (!cli_float(a, v, -2, 2, &d)) return -1;
        sp->presence_penalty = (float)d;
    } else if (!strcmp(a, "--frequency-penalty")) {
        if (!cli_float(a, v, -2, 2, &d)) return -1;
        sp->frequency_penalty = (float)d;
    } else if (!strcmp(a, "--seed")) {
        if (!cli_int(a, v, -1, 0x7fffffffffffffffL, &o->seed)) return -1;
    } else { /* --stop */
        char *s = strdup(v);
        if (!s) return -1;
        cli_unescape(s);
        o->stops[o->n_stops++] = s;
        if (!*s) {
            cli_fail("--stop: empty string");
            return -1;
        }
    }
    return 1;
}

void gen_opts_finish(gen_opts *o) {
    o->sp.seed = o->seed < 0 ? (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) : (uint64_t)o->seed;
}

bool gen_opts_load(const gen_opts *o, bool need_tokenizer, cllm_model **m) {
    cllm_model_params mp = eng_opts_model_params(&o->eng);
    mp.require_tokenizer = need_tokenizer;
    mp.quant = o->quant;
    if (cllm_model_load(o->model, &mp, m)) {
        cli_fail("%s", cllm_last_error());
        return false;
    }
    return true;
}

bool gen_opts_engine(const gen_opts *o, cllm_model *m, long n_tokens, cllm_engine **e) {
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    cllm_engine_params ep = o->eng.ep;
    long tokens = ep.kv_tokens > 0          ? ep.kv_tokens
                  : n_tokens < info.max_ctx ? n_tokens
                                            : info.max_ctx;
    if (tokens < 1) tokens = 1;
    if (ep.kv_memory <= 0) ep.kv_tokens = (int)tokens;
    if (ep.max_model_len <= 0)
        ep.max_model_len = (int)(tokens < info.max_ctx ? tokens : info.max_ctx);
    if (ep.max_seqs <= 0) ep.max_seqs = 1;
    if (cllm_engine_create(m, &ep, e)) {
        cli_fail("%s", cllm_last_error());
        return false;
    }
    return true;
}

cllm_request gen_opts_request(const gen_opts *o, const int32_t *ids, size_t n) {
    cllm_request r = cllm_request_default();
    r.prompt = ids;
    r.n_prompt = n;
    r.sampling = o->sp;
    r.max_tokens = (int)o->n_predict;
    r.stop = (const char *const *)o->stops;
    r.n_stop = o->n_stops;
    r.ignore_eos = o->ignore_eos;
    return r;
}

void gen_print_timings(const cllm_model *m, const cllm_gen_stats *st) {
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    int runs = st->n_gen > 1 ? st->n_gen - 1 : 0;
    fprintf(stderr, "\n");
    fprintf(stderr, "cllm: load time        = %10.2f ms\n", info.load_seconds * 1e3);
    int n_eval = st->n_prompt - st->n_cached; /* prompt tokens actually evaluated */
    fprintf(stderr, "cllm: prompt tokens    = %10d (%d from the prefix cache)\n", st->n_prompt,
            st->n_cached);
    fprintf(stderr,
            "cllm: prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per "
            "second)\n",
            st->t_prompt * 1e3, n_eval, n_eval ? st->t_prompt * 1e3 / n_eval : 0.0,
            st->t_prompt > 0 ? n_eval / st->t_prompt : 0.0);
    fprintf(stderr, "cllm: time to first token = %7.2f ms\n", st->t_first_token * 1e3);
    fprintf(stderr,
            "cllm: eval time        = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per "
            "second)\n",
            st->t_gen * 1e3, runs, runs ? st->t_gen * 1e3 / runs : 0.0,
            st->t_gen > 0 ? runs / st->t_gen : 0.0);
    fprintf(stderr, "cllm: generated %d tokens, stopped by %s\n", st->n_gen,
            st->finish == CLLM_REASON_STOP        ? (st->eos ? "eos" : "stop string")
            : st->finish == CLLM_REASON_CANCELLED ? "abort"
                                                  : "length");
}

cllm_status gen_conversation_text(const cllm_chat_template *ct, const json_t *messages,
                                  const json_t *tools, bool add_generation_prompt, char **text,
                                  size_t *len) {
    *text = NULL;
    json_t *conv = json_pack("{sO}", "messages", messages);
    if (conv && tools) json_object_set(conv, "tools", (json_t *)tools);
    char *js = conv ? json_dumps(conv, JSON_COMPACT) : NULL;
    json_decref(conv);
    if (!js) return CLLM_ERR_NOMEM;
    cllm_status st =
        cllm_chat_render(ct, js, (size_t)-1, add_generation_prompt, text, len, NULL, NULL, NULL);
    free(js);
    return st;
}

bool gen_conversation_ids(const cllm_model *m, const cllm_chat_template *ct, const json_t *messages,
                          const json_t *tools, const char *where, int32_t **ids, size_t *n) {
    char *text = NULL;
    size_t len;
    cllm_status st = gen_conversation_text(ct, messages, tools, true, &text, &len);
    bool ok = !st && !cllm_tokenize(m, text, len, 0, 1, ids, n);
    if (st == CLLM_ERR_NOMEM && !text)
        cli_fail("out of memory");
    else if (!ok)
        cli_fail("%s%s%s", where ? where : "", where ? ": " : "", cllm_last_error());
    free(text);
    return ok;
}
