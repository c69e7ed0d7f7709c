/* srv_format.c - JSON bodies in OpenAI's shapes: errors, chat.completion / text_completion
 * responses with usage and log-probabilities, and chat.completion.chunk / text_completion SSE
 * chunks for streaming. */
#include "server/srv_format.h"

#include <stdlib.h>
#include <string.h>

char *srv_fmt_json(json_t *v, size_t *len) {
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(v);
    *len = s ? strlen(s) : 0;
    return s;
}

static json_t *str_or_null(const char *s) {
    return s && *s ? json_string(s) : json_null();
}

char *srv_fmt_error(const srv_error *e, size_t *len) {
    json_t *o = json_pack("{s:{s:s?,s:s,s:o,s:o}}", "error", "message", e->message, "type",
                          e->type ? e->type : "invalid_request_error", "param",
                          str_or_null(e->param), "code", str_or_null(e->code));
    return srv_fmt_json(o, len);
}

static const char *reason(cllm_finish_reason r) {
    return r == CLLM_REASON_LENGTH ? "length" : "stop";
}

/* The text of token id after token ctx (-1: none): decoded after its context, so that a
 * SentencePiece word-start token keeps its space (decoded alone it would lose it). */
static json_t *token_str(const srv_job *j, int32_t ctx, int32_t id, json_t **bytes) {
    const cllm_tokenizer *t = j->srv->tok;
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, skip = 0;
    int32_t pair[2] = {ctx, id};
    if (ctx >= 0 && !cllm_tokenizer_decode(t, pair, 2, false, &b, &nb) &&
        !cllm_tokenizer_decode(t, pair, 1, false, &a, &na) && na <= nb && !memcmp(a, b, na) &&
        (na == nb || ((unsigned char)b[na] & 0xC0) != 0x80)) {
        skip = na;
    } else {
        free(b);
        b = NULL;
        if (cllm_tokenizer_decode(t, &id, 1, false, &b, &nb)) nb = 0;
    }
    free(a);
    const char *p = b ? b + skip : "";
    size_t n = b ? nb - skip : 0;
    json_t *s = json_stringn(p, n);
    if (bytes) {
        *bytes = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(*bytes, json_integer((unsigned char)p[i]));
    }
    free(b);
    return s ? s : json_string("");
}

/* The token before log-probability entry e (its decoding context). */
static int32_t ctx_of(const srv_job *j, const srv_choice *c, size_t e) {
    if (e > 0) return c->lp_tok[e - 1];
    return j->n_prompt ? j->ids[j->n_prompt - 1] : -1;
}

/* Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}, ...]} for entries a..b. */
static json_t *chat_logprobs(const srv_job *j, const srv_choice *c, size_t a, size_t b) {
    json_t *arr = json_array();
    int k = j->req.top_logprobs;
    for (size_t e = a; e < b; e++) {
        json_t *bytes, *tops = json_array();
        json_t *tok = token_str(j, ctx_of(j, c, e), c->lp_tok[e], &bytes);
        for (int t = 0; t < c->n_top[e]; t++) {
            json_t *tb,
                *ts = token_str(j, ctx_of(j, c, e), c->top_ids[e * (size_t)k + (size_t)t], &tb);
            json_array_append_new(tops, json_pack("{s:o,s:f,s:o}", "token", ts, "logprob",
                                                  (double)c->top_lp[e * (size_t)k + (size_t)t],
                                                  "bytes", tb));
        }
        json_array_append_new(arr,
                              json_pack("{s:o,s:f,s:o,s:o}", "token", tok, "logprob",
                                        (double)c->lp[e], "bytes", bytes, "top_logprobs", tops));
    }
    return json_pack("{s:o}", "content", arr);
}

/* Completions: {tokens, token_logprobs, top_logprobs, text_offset} for entries a..b. */
static json_t *completion_logprobs(const srv_job *j, const srv_choice *c, size_t a, size_t b,
                                   size_t offset) {
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    int k = j->req.top_logprobs;
    for (size_t e = a; e < b; e++) {
        json_t *tok = token_str(j, ctx_of(j, c, e), c->lp_tok[e], NULL);
        json_array_append_new(offs, json_integer((json_int_t)offset));
        offset += json_string_length(tok);
        json_array_append_new(toks, tok);
        json_array_append_new(lps, json_real(c->lp[e]));
        json_t *top = json_object();
        for (int t = 0; t < c->n_top[e]; t++) {
            json_t *ts = token_str(j, ctx_of(j, c, e), c->top_ids[e * (size_t)k + (size_t)t], NULL);
            json_object_set_new(top, json_string_value(ts),
                                json_real(c->top_lp[e * (size_t)k + (size_t)t]));
            json_decref(ts);
        }
        json_array_append_new(tops, top);
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs",
                     tops, "text_offset", offs);
}

/* The text offset of log-probability entry `upto` (completions; the echo comes first). */
static size_t lp_offset(const srv_job *j, const srv_choice *c, size_t upto) {
    size_t off = j->echo_len;
    for (size_t e = 0; e < upto; e++) {
        json_t *t = token_str(j, ctx_of(j, c, e), c->lp_tok[e], NULL);
        off += json_string_length(t);
        json_decref(t);
    }
    return off;
}

static json_t *usage(const srv_job *j) {
    int gen = 0;
    for (int i = 0; i < j->n; i++)
        gen += j->ch[i].n_gen;
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", (int)j->n_prompt,
                     "completion_tokens", gen, "total_tokens", (int)j->n_prompt + gen,
                     "prompt_tokens_details", "cached_tokens", j->n_cached);
}

static json_t *envelope(const srv_job *j, const char *object, json_t *choices) {
    return json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", j->id, "object", object, "created",
                     (json_int_t)j->created, "model", j->srv->model_name, "choices", choices);
}

char *srv_fmt_response(srv_job *j, size_t *len) {
    bool chat = j->req.kind == SRV_CHAT;
    json_t *choices = json_array();
    for (int i = 0; i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        json_t *lp = json_null();
        if (j->req.logprobs)
            lp = chat ? chat_logprobs(j, c, 0, c->n_lp)
                      : completion_logprobs(j, c, 0, c->n_lp, j->echo_len);
        json_t *text = json_stringn(c->text ? c->text : "", c->len);
        if (!chat && j->echo_len) {
            char *t = malloc(j->echo_len + c->len + 1);
            if (t) {
                memcpy(t, j->echo, j->echo_len);
                if (c->len) memcpy(t + j->echo_len, c->text, c->len);
                json_decref(text);
                text = json_stringn(t, j->echo_len + c->len);
                free(t);
            }
        }
        json_t *ch = chat ? json_pack("{s:i,s:{s:s,s:o},s:o,s:s}", "index", i, "message", "role",
                                      "assistant", "content", text, "logprobs", lp, "finish_reason",
                                      reason(c->finish))
                          : json_pack("{s:i,s:o,s:o,s:s}", "index", i, "text", text, "logprobs", lp,
                                      "finish_reason", reason(c->finish));
        json_array_append_new(choices, ch);
    }
    json_t *o = envelope(j, chat ? "chat.completion" : "text_completion", choices);
    if (o) json_object_set_new(o, "usage", usage(j));
    return srv_fmt_json(o, len);
}

/* One `data: {...}\n\n` chunk with a single choice (or none when choice is NULL). */
static bool chunk(srv_job *j, strbuf *out, json_t *choice, json_t *use) {
    bool chat = j->req.kind == SRV_CHAT;
    json_t *choices = json_array();
    if (choice) json_array_append_new(choices, choice);
    json_t *o = envelope(j, chat ? "chat.completion.chunk" : "text_completion", choices);
    if (o && j->req.include_usage)
        json_object_set_new(o, "usage", use ? use : json_null());
    else
        json_decref(use);
    size_t n;
    char *s = srv_fmt_json(o, &n);
    bool ok =
        s && !sb_append(out, "data: ", 6) && !sb_append(out, s, n) && !sb_append(out, "\n\n", 2);
    free(s);
    return ok;
}

static json_t *delta_choice(srv_job *j, srv_choice *c, json_t *delta_or_text, json_t *lp,
                            const char *finish) {
    json_t *fin = finish ? json_string(finish) : json_null();
    if (j->req.kind == SRV_CHAT)
        return json_pack("{s:i,s:o,s:o,s:o}", "index", c->index, "delta", delta_or_text, "logprobs",
                         lp, "finish_reason", fin);
    return json_pack("{s:i,s:o,s:o,s:o}", "index", c->index, "text", delta_or_text, "logprobs", lp,
                     "finish_reason", fin);
}

bool srv_fmt_stream(srv_job *j, strbuf *out) {
    bool chat = j->req.kind == SRV_CHAT, ok = true;
    if (!j->head_sent) {
        j->head_sent = true;
        for (int i = 0; ok && i < j->n; i++) {
            if (chat)
                ok = chunk(j, out,
                           delta_choice(j, &j->ch[i],
                                        json_pack("{s:s,s:s}", "role", "assistant", "content", ""),
                                        json_null(), NULL),
                           NULL);
            else if (j->echo_len)
                ok = chunk(j, out,
                           delta_choice(j, &j->ch[i], json_stringn(j->echo, j->echo_len),
                                        json_null(), NULL),
                           NULL);
        }
    }
    int open = 0;
    for (int i = 0; ok && i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        if (c->len > c->sent || c->n_lp > c->lp_sent) {
            json_t *text = json_stringn(c->text + c->sent, c->len - c->sent);
            json_t *lp = json_null();
            if (j->req.logprobs)
                lp = chat ? chat_logprobs(j, c, c->lp_sent, c->n_lp)
                          : completion_logprobs(j, c, c->lp_sent, c->n_lp,
                                                lp_offset(j, c, c->lp_sent));
            json_t *d = chat ? json_pack("{s:o}", "content", text) : text;
            ok = chunk(j, out, delta_choice(j, c, d, lp, NULL), NULL);
            c->sent = c->len;
            c->lp_sent = c->n_lp;
        }
        if (ok && c->finish && !c->final_sent) {
            c->final_sent = true;
            if (c->finish == CLLM_REASON_ERROR || c->finish == CLLM_REASON_CANCELLED) {
                srv_error e = {0};
                srv_fail(&e, 500, "server_error", NULL, NULL, "%s",
                         c->error[0] ? c->error : "generation cancelled");
                size_t n;
                char *s = srv_fmt_error(&e, &n);
                ok = s && !sb_append(out, "data: ", 6) && !sb_append(out, s, n) &&
                     !sb_append(out, "\n\n", 2);
                free(s);
            } else {
                json_t *d = chat ? json_object() : json_string("");
                ok = chunk(j, out, delta_choice(j, c, d, json_null(), reason(c->finish)), NULL);
            }
        }
        open += !c->final_sent;
    }
    if (ok && open == 0 && !j->stream_done) {
        if (j->req.include_usage) ok = chunk(j, out, NULL, usage(j));
        ok = ok && !sb_append(out, "data: [DONE]\n\n", 14);
        j->stream_done = true;
    }
    return ok;
}
