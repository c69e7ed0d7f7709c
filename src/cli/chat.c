/* chat.c - `cllm chat`: multi-turn chat with the model's own template. Each user line becomes a
 * message; the whole conversation is re-rendered and the reply streamed to stdout. One engine
 * lives for the whole chat: its prefix cache keeps the conversation's KV between turns, so a
 * turn evaluates only the new tokens (plus the last, partly filled KV block). */
#include "cli/cli.h"
#include "cli/genopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_chat_help =
    "usage: cllm chat -m MODEL_DIR [--system TEXT] [options]\n"
    "\n"
    "Interactive multi-turn chat using the model's chat template (tokenizer_config.json).\n"
    "Each line you type is one user message; the reply streams to stdout. Commands: /reset\n"
    "(forget the conversation), /exit (or end of input). When stdin is not a terminal, each\n"
    "input line is one message and no prompt is shown.\n"
    "\n"
    "  -m, --model DIR          Hugging Face model folder (required)\n"
    "  --system TEXT            system message at the start of the conversation\n"
    "%s%s"
    "  -v, --verbose            print timings (and prefix-cache hits) to stderr after each\n"
    "                           reply\n"
    "  -h, --help               this help\n";

typedef struct reply {
    char *text;
    size_t len, cap;
} reply;

static int on_token(void *user, const cllm_event *ev) {
    reply *r = user;
    const char *text = ev->text;
    size_t len = ev->len;
    if (!len) return 0;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *n = realloc(r->text, cap);
        if (!n) return 1; /* stop generating rather than lose text silently */
        r->text = n;
        r->cap = cap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = 0;
    return 0;
}

static json_t *conversation_new(const char *system) {
    json_t *msgs = json_array();
    if (msgs && system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
    return msgs;
}

/* One turn: render, tokenize, generate; appends the assistant reply to msgs. */
static bool turn(cllm_model *m, cllm_engine *e, const gen_opts *o, const cllm_chat_template *ct,
                 json_t *msgs, bool verbose) {
    size_t n_ids = 0;
    int32_t *ids = NULL;
    reply r = {0};
    bool ok = false;
    cllm_gen_stats st;
    if (!gen_conversation_ids(m, ct, msgs, NULL, NULL, &ids, &n_ids)) goto done;
    cllm_request rq = gen_opts_request(o, ids, n_ids);
    if (cllm_generate(e, &rq, on_token, &r, &st)) {
        fputc('\n', stdout);
        cli_fail("%s", cllm_last_error());
        goto done;
    }
    fputc('\n', stdout);
    fflush(stdout);
    json_array_append_new(
        msgs, json_pack("{s:s,s:s%}", "role", "assistant", "content", r.text ? r.text : "", r.len));
    if (verbose) gen_print_timings(m, &st);
    ok = true;
done:
    free(ids);
    free(r.text);
    return ok;
}

int cmd_chat(int argc, char **argv) {
    const char *system = NULL;
    bool verbose = false;
    int rc = 1;
    cllm_model *m = NULL;
    cllm_engine *e = NULL;
    cllm_chat_template *ct = NULL;
    json_t *msgs = NULL;
    char *line = NULL;
    size_t cap = 0;
    gen_opts o;
    if (!gen_opts_init(&o, argc, 512)) return cli_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opts_parse(&o, argc, argv, &i);
        if (r < 0) goto out;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_chat_help, k_gen_opts_help, k_eng_opts_help);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--system")) {
            if (!(system = cli_value(argc, argv, &i))) goto out;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = true;
        } else {
            cli_fail("chat: unknown option '%s' (see cllm chat --help)", a);
            goto out;
        }
    }
    if (!o.model) {
        cli_fail("chat: -m MODEL_DIR is required (see cllm chat --help)");
        goto out;
    }
    gen_opts_finish(&o);
    if (cllm_chat_template_load(o.model, NULL, 0, &ct)) {
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    if (!gen_opts_load(&o, true, &m) || !gen_opts_engine(&o, m, 4096, &e)) goto out;
    if (!(msgs = conversation_new(system))) goto out;
    bool tty = isatty(0);
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            json_decref(msgs);
            if (!(msgs = conversation_new(system))) goto out;
            continue;
        }
        if (n == 0 && tty) continue;
        json_t *um = json_pack("{s:s,s:s%}", "role", "user", "content", line, (size_t)n);
        if (!um) {
            cli_fail("chat: input is not valid UTF-8");
            goto out;
        }
        json_array_append_new(msgs, um);
        if (!turn(m, e, &o, ct, msgs, verbose)) goto out;
    }
    rc = 0;
out:
    free(line);
    json_decref(msgs);
    cllm_chat_template_free(ct);
    cllm_engine_free(e);
    cllm_model_free(m);
    gen_opts_free(&o);
    return rc;
}
