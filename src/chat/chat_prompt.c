/* chat_prompt.c - conversation files and template rendering with transformers' context. */
#include "chat/chat_prompt.h"

#include "base/error.h"
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cllm_status chat_prompt_load(const char *dir, chat_prompt *out) {
    if (gguf_is_file(dir)) return chat_prompt_load_gguf(dir, out);
    memset(out, 0, sizeof *out);
    cllm_status st = chat_load_dir(dir, &out->tmpl, &out->bos, &out->eos);
    if (st) chat_prompt_free(out);
    return st;
}

void chat_prompt_free(chat_prompt *p) {
    if (!p) return;
    chat_template_free(p->tmpl);
    free(p->bos);
    free(p->eos);
    memset(p, 0, sizeof *p);
}

cllm_status chat_prompt_render_vars(const chat_prompt *p, const json_t *vars,
                                    const json_t *messages, const json_t *tools,
                                    bool add_generation_prompt, char **out, size_t *len) {
    /* transformers passes tools/documents as None when absent, and the special-token strings */
    json_t *ctx = vars ? json_copy((json_t *)vars) : json_object();
    if (!ctx) return err_set(CLLM_ERR_NOMEM, "out of memory");
    json_object_set(ctx, "messages", (json_t *)messages);
    if (tools)
        json_object_set(ctx, "tools", (json_t *)tools);
    else if (!json_object_get(ctx, "tools"))
        json_object_set_new(ctx, "tools", json_null());
    if (!json_object_get(ctx, "documents")) json_object_set_new(ctx, "documents", json_null());
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    if (p->bos && !json_object_get(ctx, "bos_token"))
        json_object_set_new(ctx, "bos_token", json_string(p->bos));
    if (p->eos && !json_object_get(ctx, "eos_token"))
        json_object_set_new(ctx, "eos_token", json_string(p->eos));
    cllm_status st = chat_template_render(p->tmpl, ctx, out, len);
    json_decref(ctx);
    return st;
}

cllm_status chat_prompt_render(const chat_prompt *p, const json_t *messages, const json_t *tools,
                               bool add_generation_prompt, char **out, size_t *len) {
    return chat_prompt_render_vars(p, NULL, messages, tools, add_generation_prompt, out, len);
}

/* Placeholder i is U+E000, decimal i, U+E001 (private-use characters no template writes). */
#define PH_OPEN "\xee\x80\x80"
#define PH_CLOSE "\xee\x80\x81"

/* Messages with each string content replaced by its placeholder (a new array). */
static json_t *placeholder_messages(const json_t *messages) {
    json_t *arr = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *c = json_object_get(m, "content");
        json_t *copy = json_is_object(m) && json_is_string(c) ? json_copy(m) : json_incref(m);
        if (copy != m) {
            char ph[32];
            snprintf(ph, sizeof ph, PH_OPEN "%zu" PH_CLOSE, i);
            json_object_set_new(copy, "content", json_string(ph));
        }
        json_array_append_new(arr, copy);
    }
    return arr;
}

/* Substitute the contents into the placeholder rendering ph, recording their spans. */
static cllm_status substitute(const json_t *messages, const char *ph, size_t ph_len, char **out,
                              size_t *len, chat_span **spans, size_t *n_spans) {
    size_t cap = ph_len + 64, n = 0, ns = 0, cap_s = 8;
    char *o = malloc(cap);
    chat_span *sp = malloc(sizeof *sp * cap_s);
    const size_t lo = sizeof PH_OPEN - 1, lc = sizeof PH_CLOSE - 1;
    for (size_t i = 0; o && sp && i < ph_len;) {
        const char *piece = ph + i;
        size_t k = 1, adv = 1, idx = 0, d = 0;
        bool is_ph = false;
        if (ph_len - i >= lo && !memcmp(piece, PH_OPEN, lo)) {
            for (d = i + lo; d < ph_len && ph[d] >= '0' && ph[d] <= '9' && d - i - lo < 9; d++)
                idx = idx * 10 + (size_t)(ph[d] - '0');
            is_ph = d > i + lo && ph_len - d >= lc && !memcmp(ph + d, PH_CLOSE, lc) &&
                    idx < json_array_size(messages);
        }
        if (is_ph) {
            const json_t *c = json_object_get(json_array_get(messages, idx), "content");
            piece = json_string_value(c);
            k = json_string_length(c);
            adv = d + lc - i;
        }
        while (o && n + k + 1 > cap) {
            char *g = realloc(o, cap *= 2);
            if (!g) free(o);
            o = g;
        }
        if (is_ph && sp && ns == cap_s) {
            chat_span *g = realloc(sp, sizeof *sp * (cap_s *= 2));
            if (!g) free(sp);
            sp = g;
        }
        if (!o || !sp) break;
        if (is_ph && k) sp[ns++] = (chat_span){n, n + k};
        memcpy(o + n, piece, k);
        n += k;
        i += adv;
    }
    if (!o || !sp) {
        free(o);
        free(sp);
        return err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    o[n] = 0;
    *out = o;
    *len = n;
    *spans = sp;
    *n_spans = ns;
    return CLLM_OK;
}

cllm_status chat_prompt_render_spans(const chat_prompt *p, const json_t *messages,
                                     const json_t *tools, bool add_generation_prompt, char **out,
                                     size_t *len, chat_span **spans, size_t *n_spans, bool *exact) {
    return chat_prompt_render_spans_vars(p, NULL, messages, tools, add_generation_prompt, out, len,
                                         spans, n_spans, exact);
}

cllm_status chat_prompt_render_spans_vars(const chat_prompt *p, const json_t *vars,
                                          const json_t *messages, const json_t *tools,
                                          bool add_generation_prompt, char **out, size_t *len,
                                          chat_span **spans, size_t *n_spans, bool *exact) {
    *spans = NULL;
    *n_spans = 0;
    *exact = false;
    cllm_status st =
        chat_prompt_render_vars(p, vars, messages, tools, add_generation_prompt, out, len);
    if (st) return st;
    json_t *phm = placeholder_messages(messages);
    char *ph = NULL, *sub = NULL;
    size_t ph_len = 0, sub_len = 0;
    chat_span *sp = NULL;
    size_t nsp = 0;
    if (!phm) return CLLM_OK; /* out of memory: no spans, the caller treats it as inexact */
    if (!chat_prompt_render_vars(p, vars, phm, tools, add_generation_prompt, &ph, &ph_len) &&
        !substitute(messages, ph, ph_len, &sub, &sub_len, &sp, &nsp) && sub_len == *len &&
        !memcmp(sub, *out, sub_len)) {
        *spans = sp;
        *n_spans = nsp;
        *exact = true;
        sp = NULL;
    }
    free(sp);
    free(sub);
    free(ph);
    json_decref(phm);
    return CLLM_OK;
}

cllm_status chat_conversation_load(const char *path, json_t **messages, json_t **tools) {
    *messages = *tools = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!root)
        return err_set(CLLM_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", path, je.text, je.line);
    json_t *msgs = json_is_array(root) ? root : json_object_get(root, "messages");
    json_t *tl = json_is_object(root) ? json_object_get(root, "tools") : NULL;
    cllm_status st = CLLM_OK;
    if (!json_is_array(msgs)) {
        st = err_set(CLLM_ERR_FORMAT, "%s: expected {\"messages\": [...]} or an array of messages",
                     path);
    } else if (tl && !json_is_null(tl) && !json_is_array(tl)) {
        st = err_set(CLLM_ERR_FORMAT, "%s: \"tools\" must be an array", path);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
                st = err_set(CLLM_ERR_FORMAT, "%s: message %zu needs a string \"role\"", path, i);
                break;
            }
        }
    }
    if (!st) {
        *messages = json_incref(msgs);
        *tools = tl && json_is_array(tl) ? json_incref(tl) : NULL;
    }
    json_decref(root);
    return st;
}
