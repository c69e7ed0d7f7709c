/* tok_normalize.c - HF normalizers: Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase,
 * Strip. Parsed from tokenizer.json, applied to each span of input between added tokens. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum norm_type { N_SEQ, N_PREPEND, N_REPLACE, N_UNICODE, N_LOWER, N_STRIP };

struct tok_norm {
    enum norm_type type;
    char *str; /* Prepend: prepend; Replace: content */
    size_t str_len;
    tok_regex *re;
    int utf8proc_opts; /* N_UNICODE */
    bool left, right;  /* N_STRIP */
    tok_norm **items;
    size_t n_items;
};

void tok_norm_free(tok_norm *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n_items; i++)
        tok_norm_free(n->items[i]);
    free(n->items);
    free(n->str);
    tok_regex_free(n->re);
    free(n);
}

static cllm_status dup_str(const char *s, size_t len, char **out) {
    *out = malloc(len + 1);
    if (!*out) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return CLLM_OK;
}

cllm_status tok_norm_parse(const json_t *j, const char *path, tok_norm **out) {
    *out = NULL;
    if (!j || json_is_null(j)) return CLLM_OK;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type)
        return err_set(CLLM_ERR_FORMAT, "%s: normalizer must be an object with a \"type\"", path);
    tok_norm *n = calloc(1, sizeof *n);
    if (!n) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    cllm_status st = CLLM_OK;
    const char *s;
    size_t len;
    if (!strcmp(type, "Sequence")) {
        n->type = N_SEQ;
        const json_t *arr = json_object_get(j, "normalizers");
        if (!json_is_array(arr)) {
            st = err_set(CLLM_ERR_FORMAT, "%s: Sequence normalizer needs a 'normalizers' array",
                         path);
            goto done;
        }
        n->items = calloc(json_array_size(arr) + 1, sizeof *n->items);
        if (!n->items) {
            st = err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        for (size_t i = 0; i < json_array_size(arr) && st == CLLM_OK; i++) {
            st = tok_norm_parse(json_array_get(arr, i), path, &n->items[n->n_items]);
            if (st == CLLM_OK && n->items[n->n_items]) n->n_items++;
        }
    } else if (!strcmp(type, "Prepend")) {
        n->type = N_PREPEND;
        st = tok_json_string(j, "prepend", NULL, &s, &len, path, "Prepend normalizer");
        if (st == CLLM_OK) st = dup_str(s, len, &n->str);
        n->str_len = len;
    } else if (!strcmp(type, "Replace")) {
        n->type = N_REPLACE;
        st = tok_json_string(j, "content", NULL, &s, &len, path, "Replace normalizer");
        if (st == CLLM_OK) st = dup_str(s, len, &n->str);
        n->str_len = len;
        if (st == CLLM_OK)
            st =
                tok_json_pattern(json_object_get(j, "pattern"), path, "Replace normalizer", &n->re);
    } else if (!strcmp(type, "NFC") || !strcmp(type, "NFD") || !strcmp(type, "NFKC") ||
               !strcmp(type, "NFKD")) {
        n->type = N_UNICODE;
        n->utf8proc_opts =
            UTF8PROC_STABLE |
            (type[2] == 'C' || type[3] == 'C' ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE);
        if (type[2] == 'K') n->utf8proc_opts |= UTF8PROC_COMPAT;
    } else if (!strcmp(type, "Lowercase")) {
        n->type = N_LOWER;
    } else if (!strcmp(type, "Strip")) {
        n->type = N_STRIP;
        st = tok_json_bool(j, "strip_left", true, &n->left, path, "Strip normalizer");
        if (st == CLLM_OK)
            st = tok_json_bool(j, "strip_right", true, &n->right, path, "Strip normalizer");
    } else {
        st = err_set(CLLM_ERR_UNSUPPORTED, "%s: unsupported normalizer %s", path, type);
    }
done:
    if (st != CLLM_OK) {
        tok_norm_free(n);
        return st;
    }
    *out = n;
    return CLLM_OK;
}

static bool is_letter(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

/* Rust's str::to_lowercase: simple per-character mappings plus its two special cases, U+0130
 * (to "i" + combining dot) and final sigma (approximated: a Σ after a letter and not before
 * one). */
static cllm_status lowercase(const char *s, size_t len, strbuf *out) {
    cllm_status st = CLLM_OK;
    uint32_t prev = 0;
    for (size_t i = 0; i < len && st == CLLM_OK;) {
        uint32_t cp;
        i += tok_utf8_decode(s + i, &cp);
        char enc[4];
        if (cp == 0x130) {
            st = sb_append(out, "i\xCC\x87", 3);
        } else if (cp == 0x3A3) {
            uint32_t next = 0;
            if (i < len) tok_utf8_decode(s + i, &next);
            uint32_t lc = (is_letter(prev) && !(i < len && is_letter(next))) ? 0x3C2 : 0x3C3;
            st = sb_append(out, enc, tok_utf8_encode(lc, enc));
        } else {
            uint32_t lc = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
            st = sb_append(out, enc, tok_utf8_encode(lc, enc));
        }
        prev = cp;
    }
    return st;
}

/* ASCII is invariant under every normalization form and never combines with what follows it,
 * so only runs of non-ASCII text (plus the ASCII character before them, which a combining mark
 * may attach to) go through utf8proc. Most text is mostly ASCII; this keeps NFC cheap. */
static cllm_status unicode_normalize(const tok_norm *n, const char *s, size_t len, strbuf *out) {
    cllm_status st = CLLM_OK;
    size_t i = 0;
    while (i < len && st == CLLM_OK) {
        size_t j = i;
        while (j < len && (uint8_t)s[j] < 0x80)
            j++;
        if (j == len) return sb_append(out, s + i, j - i);
        size_t a = j > i ? j - 1 : j; /* keep the preceding ASCII starter with the run */
        if ((st = sb_append(out, s + i, a - i)) != CLLM_OK) return st;
        size_t b = j;
        while (b < len && (uint8_t)s[b] >= 0x80)
            b++;
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r =
            utf8proc_map((const utf8proc_uint8_t *)s + a, (utf8proc_ssize_t)(b - a), &dst,
                         (utf8proc_option_t)n->utf8proc_opts);
        if (r < 0)
            st = err_set(CLLM_ERR_INVALID_ARG, "normalizer: %s", utf8proc_errmsg(r));
        else
            st = sb_append(out, dst, (size_t)r);
        free(dst);
        i = b;
    }
    return st;
}

static cllm_status apply_one(const tok_norm *n, tok_match *m, const char *s, size_t len,
                             strbuf *out) {
    sb_clear(out);
    cllm_status st = sb_append(out, "", 0);
    if (st != CLLM_OK) return st;
    switch (n->type) {
    case N_PREPEND:
        if (len) st = sb_append(out, n->str, n->str_len);
        if (st == CLLM_OK) st = sb_append(out, s, len);
        return st;
    case N_REPLACE: {
        tok_regex_iter it = {0};
        size_t a, b, prev = 0;
        while (st == CLLM_OK && tok_regex_find(n->re, m, s, len, &it, &a, &b)) {
            st = sb_append(out, s + prev, a - prev);
            if (st == CLLM_OK) st = sb_append(out, n->str, n->str_len);
            prev = b;
        }
        if (st == CLLM_OK) st = sb_append(out, s + prev, len - prev);
        return st;
    }
    case N_UNICODE:
        return unicode_normalize(n, s, len, out);
    case N_LOWER:
        return lowercase(s, len, out);
    case N_STRIP: {
        size_t a = 0, b = len;
        uint32_t cp;
        while (n->left && a < b) {
            size_t k = tok_utf8_decode(s + a, &cp);
            if (!tok_is_white_space(cp)) break;
            a += k;
        }
        while (n->right && b > a) {
            size_t k = 1;
            while (k < b - a && ((uint8_t)s[b - k] & 0xC0) == 0x80)
                k++;
            tok_utf8_decode(s + b - k, &cp);
            if (!tok_is_white_space(cp)) break;
            b -= k;
        }
        return sb_append(out, s + a, b - a);
    }
    case N_SEQ:
        break;
    }
    return CLLM_OK;
}

cllm_status tok_norm_apply(const tok_norm *n, tok_match *m, const char *s, size_t len,
                           strbuf *out) {
    sb_clear(out);
    if (!n) return sb_append(out, s, len);
    if (n->type != N_SEQ) return apply_one(n, m, s, len, out);
    /* Ping-pong between out and a temporary so each step reads the previous result. */
    cllm_status st = sb_append(out, s, len);
    strbuf tmp = {0};
    for (size_t i = 0; i < n->n_items && st == CLLM_OK; i++) {
        st = tok_norm_apply(n->items[i], m, out->p, out->len, &tmp);
        strbuf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    sb_free(&tmp);
    return st;
}
