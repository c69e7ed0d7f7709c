/* tok_added.c - added tokens: a leftmost-longest matcher over their contents and the split of
 * input text into added-token matches and plain text (HF AddedVocabulary::find_matches). */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int pat_cmp(const void *a, const void *b) {
    const struct tok_pat *x = a, *y = b;
    uint8_t fx = (uint8_t)x->s[0], fy = (uint8_t)y->s[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return memcmp(x->s, y->s, x->len);
}

void tok_matcher_free(tok_matcher *mt) {
    for (size_t i = 0; i < mt->n; i++)
        free((char *)mt->pats[i].s);
    free(mt->pats);
    memset(mt, 0, sizeof *mt);
}

cllm_status tok_matcher_build(tok_matcher *mt, const tok_added *toks, size_t n_toks,
                              bool normalized, const tok_norm *n) {
    memset(mt, 0, sizeof *mt);
    cllm_status st = CLLM_OK;
    tok_match m;
    strbuf nb = {0};
    if (n_toks == 0) return CLLM_OK;
    if ((st = tok_match_init(&m)) != CLLM_OK) return st;
    mt->pats = calloc(n_toks, sizeof *mt->pats);
    if (!mt->pats) st = err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n_toks && st == CLLM_OK; i++) {
        const tok_added *a = &toks[i];
        if (a->normalized != normalized) continue;
        /* HF matches normalized tokens in their normalized form. */
        st = normalized ? tok_norm_apply(n, &m, a->content, a->len, &nb)
                        : (sb_clear(&nb), sb_append(&nb, a->content, a->len));
        if (st != CLLM_OK || nb.len == 0) continue;
        char *s = malloc(nb.len);
        if (!s) {
            st = err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
            break;
        }
        memcpy(s, nb.p, nb.len);
        mt->pats[mt->n++] = (struct tok_pat){s, nb.len, a};
    }
    sb_free(&nb);
    tok_match_free(&m);
    if (st != CLLM_OK) {
        tok_matcher_free(mt);
        return st;
    }
    qsort(mt->pats, mt->n, sizeof *mt->pats, pat_cmp);
    size_t j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < mt->n && (uint8_t)mt->pats[j].s[0] < b)
            j++;
        mt->first[b] = (uint32_t)j;
    }
    return CLLM_OK;
}

/* Rust regex \w: alphabetic, marks, decimal digits, connector punctuation. */
static bool is_word_char(uint32_t cp) {
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

/* The code point ending just before s[end]. */
static uint32_t cp_before(const char *s, size_t end) {
    size_t k = 1;
    while (k < end && k < 4 && ((uint8_t)s[end - k] & 0xC0) == 0x80)
        k++;
    uint32_t cp;
    tok_utf8_decode(s + end - k, &cp);
    return cp;
}

static cllm_status push_span(tok_spans *out, size_t a, size_t b, int32_t id) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        tok_span *p = realloc(out->p, cap * sizeof *p);
        if (!p) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        out->p = p;
        out->cap = cap;
    }
    out->p[out->n++] = (tok_span){a, b, id};
    return CLLM_OK;
}

/* Does [a, b) overlap one of the sorted ranges? */
static bool overlaps(const tok_range *r, size_t n, size_t a, size_t b) {
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first range ending after a */
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].end <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && r[lo].start < b;
}

cllm_status tok_matcher_split(const tok_matcher *mt, tok_match *m, const char *s, size_t len,
                              bool parse_special, tok_spans *out) {
    (void)m;
    return tok_matcher_split_protected(mt, s, len, parse_special, NULL, 0, out);
}

cllm_status tok_matcher_split_protected(const tok_matcher *mt, const char *s, size_t len,
                                        bool parse_special, const tok_range *protect,
                                        size_t n_protect, tok_spans *out) {
    out->n = 0;
    cllm_status st = CLLM_OK;
    size_t start_offset = 0, p = 0;
    while (p < len && mt->n && st == CLLM_OK) {
        uint8_t b = (uint8_t)s[p];
        const struct tok_pat *hit = NULL;
        for (uint32_t i = mt->first[b]; i < mt->first[b + 1]; i++) {
            const struct tok_pat *c = &mt->pats[i];
            if (c->len <= len - p && memcmp(c->s, s + p, c->len) == 0) {
                hit = c;
                break;
            }
        }
        if (!hit) {
            p++;
            continue;
        }
        size_t start = p, stop = p + hit->len;
        const tok_added *tok = hit->tok;
        if (tok->special && n_protect && overlaps(protect, n_protect, start, stop)) {
            p = start + 1; /* plain text here; a match may still start after this byte */
            continue;
        }
        p = stop;
        if (tok->special && !parse_special) continue;
        if (tok->single_word) {
            uint32_t cp;
            bool ok_start = start == 0 || !is_word_char(cp_before(s, start));
            bool ok_stop = stop == len || (tok_utf8_decode(s + stop, &cp), !is_word_char(cp));
            if (!ok_start || !ok_stop) continue;
        }
        if (tok->lstrip) {
            size_t ns = start;
            while (ns > start_offset) {
                uint32_t cp = cp_before(s, ns);
                if (!tok_is_white_space(cp)) break;
                char tmp[4];
                ns -= tok_utf8_encode(cp, tmp);
            }
            start = ns;
        }
        if (tok->rstrip) {
            uint32_t cp;
            while (stop < len) {
                size_t k = tok_utf8_decode(s + stop, &cp);
                if (!tok_is_white_space(cp)) break;
                stop += k;
            }
            if (stop > p) p = stop; /* never let the next match overlap the stripped spaces */
        }
        if (start_offset < start) st = push_span(out, start_offset, start, -1);
        if (st == CLLM_OK) st = push_span(out, start, stop, tok->id);
        start_offset = stop;
    }
    if (st == CLLM_OK && start_offset < len) st = push_span(out, start_offset, len, -1);
    return st;
}
