/* tok_decode.c - HF decoders (ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace,
 * Sequence) and one-shot decoding of ids to text. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

enum dec_type { D_SEQ, D_BYTELEVEL, D_METASPACE, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_REPLACE };

struct tok_dec {
    enum dec_type type;
    uint32_t ch;        /* Metaspace replacement, Strip content */
    bool prepend;       /* Metaspace: prepend_scheme != never */
    size_t start, stop; /* Strip */
    tok_regex *re;      /* Replace */
    char *content;
    size_t content_len;
    tok_dec **items;
    size_t n_items;
};

void tok_dec_free(tok_dec *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_items; i++)
        tok_dec_free(d->items[i]);
    free(d->items);
    tok_regex_free(d->re);
    free(d->content);
    free(d);
}

cllm_status tok_dec_bytelevel(tok_dec **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    (*out)->type = D_BYTELEVEL;
    return CLLM_OK;
}

static cllm_status one_char(const json_t *j, const char *key, const char *dflt, const char *path,
                            const char *what, uint32_t *cp) {
    const char *s;
    size_t len;
    cllm_status st = tok_json_string(j, key, dflt, &s, &len, path, what);
    if (st != CLLM_OK) return st;
    if (len == 0 || len > 4 || tok_utf8_decode(s, cp) != len)
        return err_set(CLLM_ERR_FORMAT, "%s: %s: '%s' must be one character", path, what, key);
    return CLLM_OK;
}

static cllm_status get_count(const json_t *j, const char *key, const char *path, size_t *out) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) return *out = 0, CLLM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set(CLLM_ERR_FORMAT, "%s: Strip decoder: '%s' must be a non-negative integer",
                       path, key);
    *out = (size_t)json_integer_value(v);
    return CLLM_OK;
}

cllm_status tok_dec_parse(const json_t *j, const char *path, tok_dec **out) {
    *out = NULL;
    if (!j || json_is_null(j)) return CLLM_OK;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type)
        return err_set(CLLM_ERR_FORMAT, "%s: decoder must be an object with a \"type\"", path);
    tok_dec *d = calloc(1, sizeof *d);
    if (!d) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    cllm_status st = CLLM_OK;
    if (!strcmp(type, "ByteLevel")) {
        d->type = D_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        d->type = D_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        d->type = D_FUSE;
    } else if (!strcmp(type, "Metaspace")) {
        d->type = D_METASPACE;
        st = one_char(j, "replacement", "\xE2\x96\x81", path, "Metaspace decoder", &d->ch);
        const json_t *ps = json_object_get(j, "prepend_scheme");
        if (st == CLLM_OK && ps && !json_is_null(ps)) {
            if (!json_is_string(ps))
                st = err_set(CLLM_ERR_FORMAT,
                             "%s: Metaspace decoder: prepend_scheme must be a string", path);
            else
                d->prepend = strcmp(json_string_value(ps), "never") != 0;
        } else if (st == CLLM_OK) {
            st = tok_json_bool(j, "add_prefix_space", true, &d->prepend, path, "Metaspace decoder");
        }
    } else if (!strcmp(type, "Strip")) {
        d->type = D_STRIP;
        st = one_char(j, "content", NULL, path, "Strip decoder", &d->ch);
        if (st == CLLM_OK) st = get_count(j, "start", path, &d->start);
        if (st == CLLM_OK) st = get_count(j, "stop", path, &d->stop);
    } else if (!strcmp(type, "Replace")) {
        d->type = D_REPLACE;
        const char *s;
        st = tok_json_string(j, "content", NULL, &s, &d->content_len, path, "Replace decoder");
        if (st == CLLM_OK) {
            d->content = malloc(d->content_len + 1);
            if (!d->content)
                st = err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
            else
                memcpy(d->content, s, d->content_len + 1);
        }
        if (st == CLLM_OK)
            st = tok_json_pattern(json_object_get(j, "pattern"), path, "Replace decoder", &d->re);
    } else if (!strcmp(type, "Sequence")) {
        d->type = D_SEQ;
        const json_t *arr = json_object_get(j, "decoders");
        if (!json_is_array(arr)) {
            st = err_set(CLLM_ERR_FORMAT, "%s: Sequence decoder needs a 'decoders' array", path);
        } else if (!(d->items = calloc(json_array_size(arr) + 1, sizeof *d->items))) {
            st = err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        } else {
            for (size_t i = 0; i < json_array_size(arr) && st == CLLM_OK; i++) {
                st = tok_dec_parse(json_array_get(arr, i), path, &d->items[d->n_items]);
                if (st == CLLM_OK && d->items[d->n_items]) d->n_items++;
            }
        }
    } else {
        st = err_set(CLLM_ERR_UNSUPPORTED, "%s: unsupported decoder %s", path, type);
    }
    if (st != CLLM_OK) {
        tok_dec_free(d);
        return st;
    }
    *out = d;
    return CLLM_OK;
}

/* ---- applying: each decoder maps a list of token strings to a new list ---- */

#define WORD(ws, i) ((ws)->text.p + (ws)->w[i].off)

static cllm_status dec_bytelevel(const tok_words *in, tok_words *out) {
    strbuf bytes = {0};
    cllm_status st = sb_append(&bytes, "", 0);
    for (size_t i = 0; i < in->n && st == CLLM_OK; i++) {
        const char *s = WORD(in, i);
        size_t len = in->w[i].len, mark = bytes.len;
        bool ok = true;
        for (size_t k = 0; k < len && ok && st == CLLM_OK;) {
            uint32_t cp;
            k += tok_utf8_decode(s + k, &cp);
            int b = tok_cp_to_byte(cp);
            if (b < 0)
                ok = false;
            else {
                char c = (char)b;
                st = sb_append(&bytes, &c, 1);
            }
        }
        /* A token outside the byte alphabet (an added token, say) is kept as its own UTF-8. */
        if (!ok && st == CLLM_OK) {
            bytes.len = mark;
            st = sb_append(&bytes, s, len);
        }
    }
    strbuf text = {0};
    if (st == CLLM_OK) st = sb_append(&text, "", 0);
    if (st == CLLM_OK) st = tok_utf8_lossy_append(&text, (const uint8_t *)bytes.p, bytes.len);
    if (st == CLLM_OK) st = tok_words_add(out, text.p, text.len, false);
    sb_free(&bytes);
    sb_free(&text);
    return st;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xXX>" -> byte, else -1 (u8::from_str_radix also takes a leading '+'). */
static int byte_token(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    if (s[3] == '+' && lo >= 0) return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

/* A run of byte tokens becomes its text if it is valid UTF-8 as a whole, else one U+FFFD per
 * byte (HF's ByteFallback, unlike from_utf8_lossy). */
static cllm_status flush_bytes(strbuf *run, tok_words *out) {
    cllm_status st = CLLM_OK;
    if (!run->len) return CLLM_OK;
    if (tok_utf8_valid(run->p, run->len)) {
        st = tok_words_add(out, run->p, run->len, false);
    } else {
        for (size_t i = 0; i < run->len && st == CLLM_OK; i++)
            st = tok_words_add(out, "\xEF\xBF\xBD", 3, false);
    }
    sb_clear(run);
    return st;
}

static cllm_status dec_bytefallback(const tok_words *in, tok_words *out) {
    strbuf run = {0};
    cllm_status st = CLLM_OK;
    for (size_t i = 0; i < in->n && st == CLLM_OK; i++) {
        int b = byte_token(WORD(in, i), in->w[i].len);
        if (b >= 0) {
            char c = (char)b;
            st = sb_append(&run, &c, 1);
            continue;
        }
        st = flush_bytes(&run, out);
        if (st == CLLM_OK) st = tok_words_add(out, WORD(in, i), in->w[i].len, false);
    }
    if (st == CLLM_OK) st = flush_bytes(&run, out);
    sb_free(&run);
    return st;
}

static cllm_status dec_fuse(const tok_words *in, tok_words *out) {
    /* The words are stored back to back, so their concatenation is one contiguous range only if
     * they were added in order; rebuild it to be safe. */
    strbuf all = {0};
    cllm_status st = sb_append(&all, "", 0);
    for (size_t i = 0; i < in->n && st == CLLM_OK; i++)
        st = sb_append(&all, WORD(in, i), in->w[i].len);
    if (st == CLLM_OK) st = tok_words_add(out, all.p, all.len, false);
    sb_free(&all);
    return st;
}

static cllm_status dec_per_token(const tok_dec *d, tok_match *m, const tok_words *in, size_t i,
                                 strbuf *t) {
    const char *s = WORD(in, i);
    size_t len = in->w[i].len;
    cllm_status st = CLLM_OK;
    char enc[4];
    size_t enc_len = 0;
    sb_clear(t);
    if (d->type == D_METASPACE || d->type == D_STRIP) enc_len = tok_utf8_encode(d->ch, enc);
    if (d->type == D_METASPACE) {
        for (size_t k = 0; k < len && st == CLLM_OK;) {
            uint32_t cp;
            size_t n = tok_utf8_decode(s + k, &cp);
            if (cp == d->ch) {
                if (!(i == 0 && d->prepend)) st = sb_append(t, " ", 1);
            } else {
                st = sb_append(t, s + k, n);
            }
            k += n;
        }
        return st;
    }
    if (d->type == D_STRIP) {
        size_t a = 0, b = len;
        for (size_t c = 0; c < d->start && a + enc_len <= b && !memcmp(s + a, enc, enc_len); c++)
            a += enc_len;
        for (size_t c = 0;
             c < d->stop && b >= a + enc_len && !memcmp(s + b - enc_len, enc, enc_len); c++)
            b -= enc_len;
        return sb_append(t, s + a, b - a);
    }
    /* D_REPLACE */
    tok_regex_iter it = {0};
    size_t a, b, prev = 0;
    while (st == CLLM_OK && tok_regex_find(d->re, m, s, len, &it, &a, &b)) {
        st = sb_append(t, s + prev, a - prev);
        if (st == CLLM_OK) st = sb_append(t, d->content, d->content_len);
        prev = b;
    }
    if (st == CLLM_OK) st = sb_append(t, s + prev, len - prev);
    return st;
}

static cllm_status dec_apply(const tok_dec *d, tok_match *m, const tok_words *in, tok_words *out) {
    tok_words_clear(out);
    switch (d->type) {
    case D_BYTELEVEL:
        return dec_bytelevel(in, out);
    case D_BYTEFALLBACK:
        return dec_bytefallback(in, out);
    case D_FUSE:
        return dec_fuse(in, out);
    case D_METASPACE:
    case D_STRIP:
    case D_REPLACE: {
        strbuf t = {0};
        cllm_status st = sb_append(&t, "", 0);
        for (size_t i = 0; i < in->n && st == CLLM_OK; i++) {
            st = dec_per_token(d, m, in, i, &t);
            if (st == CLLM_OK) st = tok_words_add(out, t.p, t.len, false);
        }
        sb_free(&t);
        return st;
    }
    case D_SEQ: {
        tok_words a = {0}, b = {0};
        cllm_status st = CLLM_OK;
        for (size_t i = 0; i < in->n && st == CLLM_OK; i++)
            st = tok_words_add(&a, WORD(in, i), in->w[i].len, false);
        for (size_t k = 0; k < d->n_items && st == CLLM_OK; k++) {
            st = dec_apply(d->items[k], m, &a, &b);
            tok_words swap = a;
            a = b;
            b = swap;
        }
        for (size_t i = 0; i < a.n && st == CLLM_OK; i++)
            st = tok_words_add(out, WORD(&a, i), a.w[i].len, false);
        tok_words_free(&a);
        tok_words_free(&b);
        return st;
    }
    }
    return CLLM_OK;
}

/* Run the pending token strings through the decoder chain and append the text. */
static cllm_status flush_words(const tokenizer *t, tok_match *m, tok_words *in, tok_words *res,
                               strbuf *out) {
    const tok_words *fin = in;
    cllm_status st = CLLM_OK;
    if (t->decoder) {
        st = dec_apply(t->decoder, m, in, res);
        fin = res;
    }
    /* Without a decoder HF joins the tokens with spaces. */
    for (size_t i = 0; i < fin->n && st == CLLM_OK; i++) {
        if (!t->decoder && i > 0) st = sb_append(out, " ", 1);
        if (st == CLLM_OK) st = sb_append(out, WORD(fin, i), fin->w[i].len);
    }
    tok_words_clear(in);
    tok_words_clear(res);
    return st;
}

cllm_status tok_decode_append(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                              strbuf *out) {
    tok_words in = {0}, res = {0};
    tok_match m;
    cllm_status st = tok_match_init(&m);
    if (st == CLLM_OK) st = sb_append(out, "", 0);
    /* Ids without a token are skipped, as HF's decode does (models often have padding rows). */
    for (size_t i = 0; i < n && st == CLLM_OK; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->pieces[id]) continue;
        if (skip_special && t->is_special[id]) continue;
        if (t->added_verbatim &&
            tok_strmap_get(&t->added_map, t->pieces[id], t->piece_lens[id]) == id) {
            st = flush_words(t, &m, &in, &res, out);
            if (st == CLLM_OK) st = sb_append(out, t->pieces[id], t->piece_lens[id]);
            continue;
        }
        st = tok_words_add(&in, t->pieces[id], t->piece_lens[id], false);
    }
    if (st == CLLM_OK) st = flush_words(t, &m, &in, &res, out);
    tok_words_free(&in);
    tok_words_free(&res);
    tok_match_free(&m);
    return st;
}

cllm_status tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                       char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (!t || (!ids && n)) return err_set(CLLM_ERR_INVALID_ARG, "tok_decode: NULL argument");
    strbuf out = {0};
    cllm_status st = tok_decode_append(t, ids, n, skip_special, &out);
    if (st != CLLM_OK) {
        sb_free(&out);
        return st;
    }
    *text = out.p;
    if (len) *len = out.len;
    return CLLM_OK;
}
