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
    int32_t *ids; /* the generated tokens */
    size_t n_ids, cap_ids;
} reply;

/* The conversation: its messages, and the tokens the engine has seen for it (the last turn's
 * prompt and reply, whose KV the engine's prefix cache keeps) with the rendered text they stand
 * for. A new turn appends the tokens of the template's text for the new message to those. */
typedef struct chat_state {
    json_t *msgs;
    const char *system;
    int32_t *hist;
    size_t n_hist;
    char *past; /* msgs rendered without a generation prompt after the last reply */
    size_t past_len;
} chat_state;

static bool grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = need * 2;
    void *n = realloc(*buf, c * elem);
    if (!n) return false;
    *buf = n;
    *cap = c;
    return true;
}

static int on_token(void *user, const cllm_event *ev) {
    reply *r = user;
    /* stop generating rather than lose text silently */
    if (ev->token >= 0) {
        if (!grow((void **)&r->ids, &r->cap_ids, r->n_ids + 1, sizeof(int32_t))) return 1;
        r->ids[r->n_ids++] = ev->token;
    }
    if (!ev->len) return 0;
    fwrite(ev->text, 1, ev->len, stdout);
    fflush(stdout);
    if (!grow((void **)&r->text, &r->cap, r->len + ev->len + 1, 1)) return 1;
    memcpy(r->text + r->len, ev->text, ev->len);
    r->len += ev->len;
    r->text[r->len] = 0;
    return 0;
}

/* Forget everything but the system message. */
static bool conversation_reset(chat_state *cs) {
    json_decref(cs->msgs);
    free(cs->hist);
    free(cs->past);
    cs->hist = NULL;
    cs->past = NULL;
    cs->n_hist = cs->past_len = 0;
    cs->msgs = json_array();
    if (cs->msgs && cs->system)
        json_array_append_new(cs->msgs,
                              json_pack("{s:s,s:s}", "role", "system", "content", cs->system));
    return cs->msgs != NULL;
}

/* The prompt of this turn: the earlier tokens plus those of the newly rendered text when the
 * rendering extends the last one (it does for every usual template), else the whole
 * conversation rendered and tokenized afresh. */
static bool turn_ids(cllm_model *m, const cllm_chat_template *ct, const chat_state *cs,
                     int32_t **ids, size_t *n) {
    char *text = NULL;
    size_t len, n_tail = 0;
    int32_t *tail = NULL;
    cllm_status st = gen_conversation_text(ct, cs->msgs, NULL, true, &text, &len);
    if (st)
        return cli_fail("chat: %s", st == CLLM_ERR_NOMEM ? "out of memory" : cllm_last_error()),
               false;
    bool extends = cs->n_hist && len >= cs->past_len && !memcmp(text, cs->past, cs->past_len);
    size_t skip = extends ? cs->past_len : 0, keep = extends ? cs->n_hist : 0;
    bool ok = !cllm_tokenize(m, text + skip, len - skip, 0, 1, &tail, &n_tail);
    if (!ok) {
        cli_fail("%s", cllm_last_error());
    } else if (!(*ids = malloc(sizeof(int32_t) * (keep + n_tail + 1)))) {
        ok = false;
        cli_fail("chat: out of memory");
    } else {
        if (keep) memcpy(*ids, cs->hist, sizeof(int32_t) * keep);
        if (n_tail) memcpy(*ids + keep, tail, sizeof(int32_t) * n_tail);
        *n = keep + n_tail;
    }
    free(text);
    cllm_free(tail);
    return ok;
}

/* After a reply: it joins the messages, its tokens the history, and the text is re-rendered. */
static bool remember(const cllm_chat_template *ct, chat_state *cs, int32_t *ids, size_t n,
                     const reply *r) {
    json_t *am =
        json_pack("{s:s,s:s%}", "role", "assistant", "content", r->text ? r->text : "", r->len);
    int32_t *h = realloc(ids, sizeof(int32_t) * (n + r->n_ids + 1));
    if (!am || !h) {
        json_decref(am);
        free(h ? h : ids);
        return cli_fail("chat: out of memory"), false;
    }
    json_array_append_new(cs->msgs, am);
    if (r->n_ids) memcpy(h + n, r->ids, sizeof(int32_t) * r->n_ids);
    free(cs->hist);
    free(cs->past);
    cs->hist = h;
    cs->n_hist = n + r->n_ids;
    cs->past = NULL;
    if (gen_conversation_text(ct, cs->msgs, NULL, false, &cs->past, &cs->past_len)) {
        cs->n_hist = 0; /* the next turn renders everything afresh */
        cs->past_len = 0;
    }
    return true;
}

/* One turn: the prompt, generate (streamed), remember the reply. */
static bool turn(cllm_model *m, cllm_engine *e, const gen_opts *o, const cllm_chat_template *ct,
                 chat_state *cs, bool verbose) {
    size_t n_ids = 0;
    int32_t *ids = NULL;
    reply r = {0};
    bool ok = false;
    cllm_gen_stats st;
    if (!turn_ids(m, ct, cs, &ids, &n_ids)) goto done;
    cllm_request rq = gen_opts_request(o, ids, n_ids);
    if (cllm_generate(e, &rq, on_token, &r, &st)) {
        fputc('\n', stdout);
        cli_fail("%s", cllm_last_error());
        goto done;
    }
    fputc('\n', stdout);
    fflush(stdout);
    ok = remember(ct, cs, ids, n_ids, &r);
    ids = NULL; /* owned by cs now (or freed) */
    if (ok && verbose) gen_print_timings(m, &st);
done:
    free(ids);
    free(r.text);
    free(r.ids);
    return ok;
}

/* 1: parsed; 0: help printed; -1: error printed. */
static int parse_args(int argc, char **argv, gen_opts *o, const char **system, bool *verbose) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opts_parse(o, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_chat_help, k_gen_opts_help, k_eng_opts_help);
            return 0;
        } else if (!strcmp(a, "--system")) {
            if (!(*system = cli_value(argc, argv, &i))) return -1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            *verbose = true;
        } else {
            return cli_fail("chat: unknown option '%s' (see cllm chat --help)", a), -1;
        }
    }
    if (!o->model) return cli_fail("chat: -m MODEL_DIR is required (see cllm chat --help)"), -1;
    gen_opts_finish(o);
    return 1;
}

int cmd_chat(int argc, char **argv) {
    bool verbose = false;
    int rc = 1;
    cllm_model *m = NULL;
    cllm_engine *e = NULL;
    cllm_chat_template *ct = NULL;
    chat_state cs = {0};
    char *line = NULL;
    size_t cap = 0;
    gen_opts o;
    if (!gen_opts_init(&o, argc, 512)) return cli_fail("out of memory");
    int r = parse_args(argc, argv, &o, &cs.system, &verbose);
    if (r <= 0) {
        rc = r < 0;
        goto out;
    }
    if (cllm_chat_template_load(o.model, NULL, 0, &ct)) {
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    if (!gen_opts_load(&o, true, &m) || !gen_opts_engine(&o, m, 4096, &e)) goto out;
    if (!conversation_reset(&cs)) goto out;
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
            if (!conversation_reset(&cs)) goto out;
            continue;
        }
        if (n == 0 && tty) continue;
        json_t *um = json_pack("{s:s,s:s%}", "role", "user", "content", line, (size_t)n);
        if (!um) {
            cli_fail("chat: input is not valid UTF-8");
            goto out;
        }
        json_array_append_new(cs.msgs, um);
        if (!turn(m, e, &o, ct, &cs, verbose)) goto out;
    }
    rc = 0;
out:
    free(line);
    json_decref(cs.msgs);
    free(cs.hist);
    free(cs.past);
    cllm_chat_template_free(ct);
    cllm_engine_free(e);
    cllm_model_free(m);
    gen_opts_free(&o);
    return rc;
}
