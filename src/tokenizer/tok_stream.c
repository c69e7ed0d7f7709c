/* tok_stream.c - streaming decode: text is emitted once it is complete UTF-8, and everything
 * emitted concatenates to the one-shot decode of the same ids. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

/* The window is the ids since the last emission point plus the new ones. Decoding the window
 * and dropping the text already emitted for its head keeps start-of-text decoder effects
 * (Strip of the first space, Metaspace) confined to text that was already emitted, and works
 * for every decoder that is concatenative after the first token. */
struct tok_stream {
    const tokenizer *t;
    bool skip_special;
    tok_ids win;
    size_t n_head; /* ids at the start of win whose text (head) was already emitted */
    strbuf head;   /* decode(win[0..n_head)) */
    strbuf cur;    /* scratch: decode(win) */
    strbuf out;    /* what the last call returned */
};

cllm_status tok_stream_create(const tokenizer *t, bool skip_special, tok_stream **out) {
    if (!out) return err_set(CLLM_ERR_INVALID_ARG, "tok_stream_create: out is NULL");
    *out = NULL;
    if (!t) return err_set(CLLM_ERR_INVALID_ARG, "tok_stream_create: tokenizer is NULL");
    tok_stream *s = calloc(1, sizeof *s);
    if (!s) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    s->t = t;
    s->skip_special = skip_special;
    cllm_status st = tok_stream_reset(s, NULL, 0);
    if (st != CLLM_OK) {
        tok_stream_free(s);
        return st;
    }
    *out = s;
    return CLLM_OK;
}

void tok_stream_free(tok_stream *s) {
    if (!s) return;
    tok_ids_free(&s->win);
    sb_free(&s->head);
    sb_free(&s->cur);
    sb_free(&s->out);
    free(s);
}

cllm_status tok_stream_reset(tok_stream *s, const int32_t *context, size_t n_context) {
    if (!s || (!context && n_context))
        return err_set(CLLM_ERR_INVALID_ARG, "tok_stream_reset: NULL argument");
    s->win.len = 0;
    sb_clear(&s->head);
    sb_clear(&s->out);
    cllm_status st = tok_ids_append(&s->win, context, n_context);
    if (st == CLLM_OK) st = sb_append(&s->head, "", 0);
    if (st == CLLM_OK) st = sb_append(&s->out, "", 0);
    if (st == CLLM_OK)
        st = tok_decode_append(s->t, s->win.p, s->win.len, s->skip_special, &s->head);
    s->n_head = s->win.len;
    return st;
}

/* True if text ends in U+FFFD: possibly an incomplete character that later ids complete. */
static bool ends_pending(const strbuf *b) {
    return b->len >= 3 && !memcmp(b->p + b->len - 3, "\xEF\xBF\xBD", 3);
}

static cllm_status emit(tok_stream *s, bool force, const char **text, size_t *len) {
    sb_clear(&s->out);
    s->out.p[0] = 0;
    *text = s->out.p;
    *len = 0;
    sb_clear(&s->cur);
    cllm_status st = tok_decode_append(s->t, s->win.p, s->win.len, s->skip_special, &s->cur);
    if (st != CLLM_OK) return st;
    if (s->cur.len <= s->head.len || (!force && ends_pending(&s->cur))) return CLLM_OK;
    /* Decoders here never rewrite earlier text, so head is a prefix; if a custom decoder ever
     * did, emitting from the common prefix keeps the stream as close as possible. */
    size_t k = 0;
    while (k < s->head.len && s->head.p[k] == s->cur.p[k])
        k++;
    if ((st = sb_append(&s->out, s->cur.p + k, s->cur.len - k)) != CLLM_OK) return st;
    /* The new window starts at the ids that completed this text. */
    size_t keep = s->win.len - s->n_head;
    memmove(s->win.p, s->win.p + s->n_head, keep * sizeof *s->win.p);
    s->win.len = keep;
    s->n_head = keep;
    sb_clear(&s->head);
    st = tok_decode_append(s->t, s->win.p, s->win.len, s->skip_special, &s->head);
    *text = s->out.p;
    *len = s->out.len;
    return st;
}

cllm_status tok_stream_push(tok_stream *s, int32_t id, const char **text, size_t *len) {
    if (!s || !text || !len) return err_set(CLLM_ERR_INVALID_ARG, "tok_stream_push: NULL argument");
    cllm_status st = tok_ids_push(&s->win, id);
    if (st != CLLM_OK) return st;
    return emit(s, false, text, len);
}

cllm_status tok_stream_flush(tok_stream *s, const char **text, size_t *len) {
    if (!s || !text || !len)
        return err_set(CLLM_ERR_INVALID_ARG, "tok_stream_flush: NULL argument");
    return emit(s, true, text, len);
}
