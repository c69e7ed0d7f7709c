/* model_text.c - the public text API (cllm.h): tokenizer handles (a model's own or loaded without
 * weights), encoding with protected spans, streaming detokenization, chat templates (the model's,
 * loaded once on first use, or standalone) and rendering a conversation given as JSON text. */
#include "model/model_text.h"

#include "base/error.h"
#include "io/gguf.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

cllm_status model_text_init(struct cllm_tokenizer *t, tokenizer *tok, const char *path,
                            const int *eos, int n_eos) {
    memset(t, 0, sizeof *t);
    t->tok = tok;
    if (!(t->path = strdup(path))) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_eos && t->n_eos < MODEL_MAX_EOS; i++)
        if (eos[i] >= 0) t->eos[t->n_eos++] = eos[i];
    pthread_mutex_init(&t->mu, NULL);
    t->inited = true;
    return CLLM_OK;
}

void model_text_destroy(struct cllm_tokenizer *t) {
    if (!t->inited) return;
    if (t->tmpl) {
        chat_prompt_free(&t->tmpl->cp);
        free(t->tmpl);
    }
    free(t->tmpl_error);
    free(t->path);
    pthread_mutex_destroy(&t->mu);
    memset(t, 0, sizeof *t);
}

cllm_status cllm_tokenizer_load(const char *path, cllm_tokenizer **out) {
    *out = NULL;
    if (!path) return err_set(CLLM_ERR_INVALID_ARG, "cllm_tokenizer_load: no path");
    cllm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(CLLM_ERR_NOMEM, "out of memory");
    tokenizer *tok = NULL;
    cllm_status st = gguf_is_file(path) ? tok_load_gguf(path, &tok) : tok_load_dir(path, &tok);
    if (st) goto fail;
    int eos = tok_eos_id(tok);
    if ((st = model_text_init(t, tok, path, &eos, 1))) goto fail;
    t->owned = true;
    *out = t;
    return CLLM_OK;
fail:
    tok_free(tok);
    free(t);
    return st;
}

void cllm_tokenizer_free(cllm_tokenizer *t) {
    if (!t || !t->owned) return; /* a model's handle goes with the model */
    tok_free(t->tok);
    model_text_destroy(t);
    free(t);
}

const cllm_tokenizer *cllm_model_tokenizer(const cllm_model *m) {
    return m && m->tok && m->text.inited ? &m->text : NULL;
}

static cllm_status no_tokenizer(const cllm_tokenizer *t) {
    if (t && t->tok) return CLLM_OK;
    return err_set(CLLM_ERR_INVALID_ARG, "no tokenizer (NULL cllm_tokenizer)");
}

int cllm_tokenizer_vocab_size(const cllm_tokenizer *t) {
    return tok_vocab_size(t->tok);
}

int32_t cllm_tokenizer_bos_id(const cllm_tokenizer *t) {
    return tok_bos_id(t->tok);
}

size_t cllm_tokenizer_eos_ids(const cllm_tokenizer *t, const int32_t **ids) {
    *ids = t->eos;
    return t->n_eos;
}

int cllm_tokenizer_is_special(const cllm_tokenizer *t, int32_t id) {
    return id >= 0 && id < tok_vocab_size(t->tok) && tok_is_special(t->tok, id);
}

const char *cllm_tokenizer_piece(const cllm_tokenizer *t, int32_t id) {
    return tok_id_to_piece(t->tok, id);
}

int32_t cllm_tokenizer_piece_id(const cllm_tokenizer *t, const char *piece) {
    return tok_piece_to_id(t->tok, piece);
}

cllm_status cllm_tokenizer_encode(const cllm_tokenizer *t, const char *text, size_t len,
                                  int add_special, int parse_special, int32_t **ids, size_t *n) {
    cllm_status st = no_tokenizer(t);
    if (st) return st;
    return tok_encode(t->tok, text, len, add_special, parse_special, ids, n);
}

cllm_status cllm_tokenizer_encode_protected(const cllm_tokenizer *t, const char *text, size_t len,
                                            int add_special, const cllm_span *protect,
                                            size_t n_protect, int32_t **ids, size_t *n) {
    cllm_status st = no_tokenizer(t);
    if (st) return st;
    tok_range *r = malloc(sizeof *r * (n_protect ? n_protect : 1));
    if (!r) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_protect; i++) {
        if (protect[i].start > protect[i].end || protect[i].end > len ||
            (i && protect[i].start < protect[i - 1].end)) {
            free(r);
            return err_set(CLLM_ERR_INVALID_ARG,
                           "protected span %zu [%zu, %zu) is not sorted, disjoint and within the "
                           "%zu bytes of text",
                           i, protect[i].start, protect[i].end, len);
        }
        r[i] = (tok_range){protect[i].start, protect[i].end};
    }
    st = tok_encode_protected(t->tok, text, len, add_special, r, n_protect, ids, n);
    free(r);
    return st;
}

cllm_status cllm_tokenizer_decode(const cllm_tokenizer *t, const int32_t *ids, size_t n,
                                  int skip_special, char **text, size_t *len) {
    cllm_status st = no_tokenizer(t);
    if (st) return st;
    return tok_decode(t->tok, ids, n, skip_special, text, len);
}

/* ---- streaming detokenization ---- */

struct cllm_detok_stream {
    tok_stream *s;
};

cllm_status cllm_detok_stream_create(const cllm_tokenizer *t, int skip_special,
                                     cllm_detok_stream **out) {
    *out = NULL;
    cllm_status st = no_tokenizer(t);
    if (st) return st;
    cllm_detok_stream *s = calloc(1, sizeof *s);
    if (!s) return err_set(CLLM_ERR_NOMEM, "out of memory");
    if ((st = tok_stream_create(t->tok, skip_special, &s->s))) {
        free(s);
        return st;
    }
    *out = s;
    return CLLM_OK;
}

void cllm_detok_stream_free(cllm_detok_stream *s) {
    if (!s) return;
    tok_stream_free(s->s);
    free(s);
}

cllm_status cllm_detok_stream_reset(cllm_detok_stream *s, const int32_t *context,
                                    size_t n_context) {
    return tok_stream_reset(s->s, context, n_context);
}

cllm_status cllm_detok_stream_push(cllm_detok_stream *s, int32_t id, const char **text,
                                   size_t *len) {
    return tok_stream_push(s->s, id, text, len);
}

cllm_status cllm_detok_stream_flush(cllm_detok_stream *s, const char **text, size_t *len) {
    return tok_stream_flush(s->s, text, len);
}

/* ---- chat templates ---- */

cllm_status cllm_tokenizer_chat_template(const cllm_tokenizer *ct, const cllm_chat_template **out) {
    *out = NULL;
    if (!ct) return err_set(CLLM_ERR_INVALID_ARG, "no tokenizer (NULL cllm_tokenizer)");
    cllm_tokenizer *t = (cllm_tokenizer *)ct; /* the lazily loaded template is behind t->mu */
    pthread_mutex_lock(&t->mu);
    if (!t->tmpl_tried) {
        t->tmpl_tried = true;
        chat_prompt cp;
        cllm_status st = chat_prompt_load(t->path, &cp);
        if (!st && !(t->tmpl = malloc(sizeof *t->tmpl))) {
            chat_prompt_free(&cp);
            st = err_set(CLLM_ERR_NOMEM, "out of memory");
        }
        if (st) {
            t->tmpl_status = st;
            t->tmpl_error = strdup(cllm_last_error());
        } else {
            t->tmpl->cp = cp;
        }
    }
    cllm_status st = t->tmpl_status;
    if (st)
        err_set(st, "%s", t->tmpl_error ? t->tmpl_error : "the chat template failed to load");
    else
        *out = t->tmpl;
    pthread_mutex_unlock(&t->mu);
    return st;
}

cllm_status cllm_chat_template_load(const char *path, const char *src, size_t src_len,
                                    cllm_chat_template **out) {
    *out = NULL;
    if (!path && !src) return err_set(CLLM_ERR_INVALID_ARG, "cllm_chat_template_load: no input");
    chat_prompt cp = {0};
    cllm_status st = CLLM_OK;
    if (path && gguf_is_file(path)) { /* tokenizer.chat_template and the token texts */
        st = chat_prompt_load_gguf(path, &cp);
        if (st == CLLM_ERR_NOT_FOUND && src) st = CLLM_OK;
        if (!st && src) {
            chat_template_free(cp.tmpl);
            cp.tmpl = NULL;
        }
    } else if (path) {
        st = chat_load_dir(path, src ? NULL : &cp.tmpl, &cp.bos, &cp.eos);
        if (st == CLLM_ERR_NOT_FOUND && src) st = CLLM_OK;
    }
    if (!st && src) st = chat_template_parse(src, src_len, &cp.tmpl);
    cllm_chat_template *t = st ? NULL : malloc(sizeof *t);
    if (!st && !t) st = err_set(CLLM_ERR_NOMEM, "out of memory");
    if (st) {
        chat_prompt_free(&cp);
        return st;
    }
    t->cp = cp;
    *out = t;
    return CLLM_OK;
}

void cllm_chat_template_free(cllm_chat_template *t) {
    if (!t) return;
    chat_prompt_free(&t->cp);
    free(t);
}

cllm_status cllm_chat_render(const cllm_chat_template *t, const char *conversation, size_t len,
                             int add_generation_prompt, char **text, size_t *text_len,
                             cllm_span **spans, size_t *n_spans, int *exact) {
    *text = NULL;
    *text_len = 0;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    if (exact) *exact = 0;
    if (!t || !conversation)
        return err_set(CLLM_ERR_INVALID_ARG, "cllm_chat_render: no template or conversation");
    if (spans && (!n_spans || !exact))
        return err_set(CLLM_ERR_INVALID_ARG, "cllm_chat_render: spans need n_spans and exact");
    if (len == (size_t)-1) len = strlen(conversation);
    json_error_t je;
    json_t *root = json_loadb(conversation, len, 0, &je);
    if (!root)
        return err_set(CLLM_ERR_INVALID_ARG, "conversation: not valid JSON: %s (line %d)", je.text,
                       je.line);
    const json_t *vars = json_is_object(root) ? root : NULL;
    json_t *msgs = vars ? json_object_get(root, "messages") : root;
    json_t *tools = vars ? json_object_get(root, "tools") : NULL;
    cllm_status st = CLLM_OK;
    if (!json_is_array(msgs))
        st = err_set(CLLM_ERR_INVALID_ARG,
                     "conversation: expected {\"messages\": [...]} or an array of messages");
    else if (tools && !json_is_null(tools) && !json_is_array(tools))
        st = err_set(CLLM_ERR_INVALID_ARG, "conversation: \"tools\" must be an array");
    for (size_t i = 0; !st && i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            st = err_set(CLLM_ERR_INVALID_ARG, "conversation: message %zu needs a string \"role\"",
                         i);
    }
    if (st) goto out;
    if (!json_is_array(tools)) tools = NULL; /* None (vars may hold null) */
    if (!spans) {
        st = chat_prompt_render_vars(&t->cp, vars, msgs, tools, add_generation_prompt, text,
                                     text_len);
        goto out;
    }
    chat_span *cs = NULL;
    size_t ncs = 0;
    bool ex = false;
    st = chat_prompt_render_spans_vars(&t->cp, vars, msgs, tools, add_generation_prompt, text,
                                       text_len, &cs, &ncs, &ex);
    if (st || !ex) {
        free(cs);
        goto out;
    }
    cllm_span *sp = malloc(sizeof *sp * (ncs ? ncs : 1));
    if (!sp) {
        free(cs);
        free(*text);
        *text = NULL;
        *text_len = 0;
        st = err_set(CLLM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ncs; i++)
        sp[i] = (cllm_span){cs[i].start, cs[i].end};
    free(cs);
    *spans = sp;
    *n_spans = ncs;
    *exact = 1;
out:
    json_decref(root);
    return st;
}
