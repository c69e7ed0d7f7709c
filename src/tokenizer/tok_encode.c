/* tok_encode.c - the encode pipeline (added tokens -> normalizer -> normalized added tokens ->
 * pre-tokenizer -> BPE -> post-processor) and the tokenizer's lookup accessors. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

/* Inputs larger than this get a word cache: long texts repeat words a lot. */
#define CACHE_MIN_INPUT 2048

int tok_vocab_size(const tokenizer *t) {
    return t ? t->n_ids : 0;
}
int tok_bos_id(const tokenizer *t) {
    return t ? t->bos_id : -1;
}
int tok_eos_id(const tokenizer *t) {
    return t ? t->eos_id : -1;
}

bool tok_is_special(const tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_ids && t->is_special[id];
}

const char *tok_id_to_piece(const tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_ids) return NULL;
    return t->pieces[id];
}

int32_t tok_piece_to_id(const tokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    size_t n = strlen(piece);
    int32_t id = tok_strmap_get(&t->added_map, piece, n);
    return id >= 0 ? id : tok_strmap_get(&t->vocab, piece, n);
}

typedef struct encode_ctx {
    const tokenizer *t;
    bool parse_special;
    tok_match m;
    tok_spans nspans;
    strbuf norm;
    tok_bpe_scratch sc;
    tok_ids out;
} encode_ctx;

static cllm_status bpe_word(void *ctx, const char *s, size_t n, bool at_start) {
    encode_ctx *c = ctx;
    (void)at_start;
    return tok_bpe_word(c->t, &c->sc, s, n, &c->out);
}

/* Pre-tokenize and BPE one stretch of normalized text. */
static cllm_status encode_text(encode_ctx *c, const char *s, size_t len, bool at_start) {
    return tok_pretok_apply(c->t->pretok, &c->m, s, len, at_start, bpe_word, c);
}

/* One span of raw input between non-normalized added tokens. */
static cllm_status encode_span(encode_ctx *c, const char *s, size_t len, bool at_start) {
    const tokenizer *t = c->t;
    cllm_status st = tok_norm_apply(t->normalizer, &c->m, s, len, &c->norm);
    if (st != CLLM_OK) return st;
    if (!t->norm_matcher.n) return encode_text(c, c->norm.p, c->norm.len, at_start);
    st = tok_matcher_split(&t->norm_matcher, &c->m, c->norm.p, c->norm.len, c->parse_special,
                           &c->nspans);
    for (size_t i = 0; i < c->nspans.n && st == CLLM_OK; i++) {
        const tok_span *sp = &c->nspans.p[i];
        if (sp->id >= 0)
            st = tok_ids_push(&c->out, sp->id);
        else
            st = encode_text(c, c->norm.p + sp->start, sp->end - sp->start,
                             at_start && sp->start == 0);
    }
    return st;
}

/* Byte ranges of the raw text where special tokens must not be matched (none: NULL, 0). */
static bool span_protected(const tok_range *r, size_t n, size_t a, size_t b) {
    for (size_t i = 0; i < n; i++)
        if (r[i].start < b && a < r[i].end) return true;
    return false;
}

static cllm_status encode(const tokenizer *t, const char *text, size_t len, bool add_special,
                          bool parse_special, const tok_range *protect, size_t n_protect,
                          int32_t **ids, size_t *n) {
    if (!ids || !n) return err_set(CLLM_ERR_INVALID_ARG, "tok_encode: NULL output");
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len)) return err_set(CLLM_ERR_INVALID_ARG, "tok_encode: NULL argument");
    if (!tok_utf8_valid(text, len))
        return err_set(CLLM_ERR_INVALID_ARG, "tok_encode: input is not valid UTF-8");
    encode_ctx c = {.t = t, .parse_special = parse_special};
    tok_spans raw = {0};
    cllm_status st = tok_match_init(&c.m);
    if (st == CLLM_OK && len >= CACHE_MIN_INPUT) st = tok_bpe_cache_create(&c.sc.cache);
    if (st == CLLM_OK) st = tok_ids_push(&c.out, 0); /* so *ids is never NULL on success */
    c.out.len = 0;
    if (st == CLLM_OK && add_special) st = tok_ids_append(&c.out, t->post_pre.p, t->post_pre.len);
    if (st == CLLM_OK)
        st = tok_matcher_split_protected(&t->raw_matcher, text, len, parse_special, protect,
                                         n_protect, &raw);
    for (size_t i = 0; i < raw.n && st == CLLM_OK; i++) {
        const tok_span *sp = &raw.p[i];
        /* Normalized special tokens are matched after normalization, where byte offsets no
         * longer correspond: a text span touching protected bytes gets no special tokens. */
        c.parse_special = parse_special && !span_protected(protect, n_protect, sp->start, sp->end);
        if (sp->id >= 0)
            st = tok_ids_push(&c.out, sp->id);
        else
            st = encode_span(&c, text + sp->start, sp->end - sp->start, sp->start == 0);
    }
    if (st == CLLM_OK && add_special) st = tok_ids_append(&c.out, t->post_post.p, t->post_post.len);
    free(raw.p);
    free(c.nspans.p);
    sb_free(&c.norm);
    tok_bpe_scratch_free(&c.sc);
    tok_match_free(&c.m);
    if (st != CLLM_OK) {
        tok_ids_free(&c.out);
        return st;
    }
    *ids = c.out.p;
    *n = c.out.len;
    return CLLM_OK;
}

cllm_status tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
                       bool parse_special, int32_t **ids, size_t *n) {
    return encode(t, text, len, add_special, parse_special, NULL, 0, ids, n);
}

cllm_status tok_encode_protected(const tokenizer *t, const char *text, size_t len, bool add_special,
                                 const tok_range *protect, size_t n_protect, int32_t **ids,
                                 size_t *n) {
    for (size_t i = 0; i < n_protect; i++)
        if (protect[i].start > protect[i].end || protect[i].end > len ||
            (i && protect[i].start < protect[i - 1].end))
            return err_set(CLLM_ERR_INVALID_ARG, "tok_encode_protected: bad range %zu", i);
    return encode(t, text, len, add_special, true, protect, n_protect, ids, n);
}
