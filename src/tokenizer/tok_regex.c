/* tok_regex.c - PCRE2 regexes for pre-tokenizers and normalizers, adjusted to behave like the
 * Oniguruma engine HF tokenizers uses. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Oniguruma's \s includes U+0085 (NEL); PCRE2's UCP \s is \p{Z} plus \t\n\v\f\r and leaves it
 * out, so add it explicitly. Everything else in the tokenizer regexes (\p{L}, \p{N}, (?i:...),
 * lookahead) means the same in both engines. */
static cllm_status translate(const char *pat, size_t len, strbuf *out) {
    cllm_status st = CLLM_OK;
    int in_class = 0;
    for (size_t i = 0; i < len && st == CLLM_OK; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < len) {
            char d = pat[i + 1];
            i++;
            if (d == 's')
                st =
                    in_class ? sb_append(out, "\\s\\x{85}", 8) : sb_append(out, "[\\s\\x{85}]", 10);
            else if (d == 'S' && !in_class)
                st = sb_append(out, "[^\\s\\x{85}]", 11);
            else
                st = sb_append(out, pat + i - 1, 2);
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            st = sb_append(out, &c, 1);
            /* A ']' right after '[' or '[^' is a literal, not the end of the class. */
            if (st == CLLM_OK && i + 1 < len && pat[i + 1] == '^')
                st = sb_append(out, &pat[++i], 1);
            if (st == CLLM_OK && i + 1 < len && pat[i + 1] == ']')
                st = sb_append(out, &pat[++i], 1);
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        st = sb_append(out, &c, 1);
    }
    if (st == CLLM_OK && !out->p) st = sb_append(out, "", 0);
    return st;
}

/* PCRE2_LITERAL cannot be combined with UCP, so String patterns are escaped instead. */
static cllm_status escape(const char *pat, size_t len, strbuf *out) {
    cllm_status st = sb_append(out, "", 0);
    for (size_t i = 0; i < len && st == CLLM_OK; i++) {
        unsigned char c = (unsigned char)pat[i];
        bool plain =
            c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!plain && c >= 0x20 && c != 0x7F) st = sb_append(out, "\\", 1);
        if (st != CLLM_OK) break;
        if (c < 0x20 || c == 0x7F) { /* control characters by code, so nothing is misread */
            char hex[8];
            snprintf(hex, sizeof hex, "\\x{%x}", c);
            st = sb_append(out, hex, strlen(hex));
        } else {
            st = sb_append(out, &pat[i], 1);
        }
    }
    return st;
}

cllm_status tok_regex_compile(const char *pat, size_t len, bool literal, tok_regex **out) {
    *out = NULL;
    tok_regex *re = calloc(1, sizeof *re);
    if (!re) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    if (literal && len == 0) { /* HF: an empty String pattern never matches */
        *out = re;
        return CLLM_OK;
    }
    strbuf src = {0};
    cllm_status st;
    if (literal)
        st = escape(pat, len, &src);
    else
        st = translate(pat, len, &src);
    if (st != CLLM_OK) {
        free(re);
        return st;
    }
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP;
    re->code = pcre2_compile((PCRE2_SPTR)src.p, src.len, opts, &errcode, &erroff, NULL);
    sb_free(&src);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        free(re);
        return err_set(CLLM_ERR_UNSUPPORTED, "regex '%.*s': %s (at offset %zu)",
                       (int)(len > 200 ? 200 : len), pat, (const char *)msg, (size_t)erroff);
    }
    /* Without JIT the interpreter is still correct, only slower. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    *out = re;
    return CLLM_OK;
}

void tok_regex_free(tok_regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

bool tok_regex_find(const tok_regex *re, tok_match *m, const char *s, size_t n, tok_regex_iter *it,
                    size_t *start, size_t *end) {
    if (!re->code) return false;
    for (;;) {
        if (it->last_end > n) return false;
        /* Subjects were validated (or produced) as UTF-8 once; skipping PCRE2's check matters
         * because it would rescan the whole subject on every call. */
        int rc =
            pcre2_match(re->code, (PCRE2_SPTR)s, n, it->last_end, PCRE2_NO_UTF_CHECK, m->md, NULL);
        if (rc < 0) return false;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t a = ov[0], b = ov[1];
        if (b < a) return false; /* \K tricks; not used by tokenizers */
        if (a == b && it->has_last && it->last_match_end == b) {
            if (it->last_end >= n) return false;
            uint32_t cp;
            it->last_end += tok_utf8_decode(s + it->last_end, &cp);
            continue;
        }
        it->last_end = b;
        it->last_match_end = b;
        it->has_last = true;
        *start = a;
        *end = b;
        return true;
    }
}

cllm_status tok_json_pattern(const json_t *j, const char *path, const char *what, tok_regex **out) {
    *out = NULL;
    const json_t *v;
    bool literal;
    if (json_is_object(j) && (v = json_object_get(j, "String")) && json_is_string(v))
        literal = true;
    else if (json_is_object(j) && (v = json_object_get(j, "Regex")) && json_is_string(v))
        literal = false;
    else
        return err_set(CLLM_ERR_FORMAT,
                       "%s: %s: pattern must be {\"String\": ...} or {\"Regex\": ...}", path, what);
    cllm_status st = tok_regex_compile(json_string_value(v), json_string_length(v), literal, out);
    if (st != CLLM_OK) err_prefix("%s: %s", path, what);
    return st;
}

cllm_status tok_json_bool(const json_t *o, const char *key, bool dflt, bool *out, const char *path,
                          const char *what) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return CLLM_OK;
    }
    if (!json_is_boolean(v))
        return err_set(CLLM_ERR_FORMAT, "%s: %s: '%s' must be a boolean", path, what, key);
    *out = json_is_true(v);
    return CLLM_OK;
}

cllm_status tok_json_string(const json_t *o, const char *key, const char *dflt, const char **out,
                            size_t *len, const char *path, const char *what) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (!dflt) return err_set(CLLM_ERR_FORMAT, "%s: %s: missing string '%s'", path, what, key);
        *out = dflt;
        *len = strlen(dflt);
        return CLLM_OK;
    }
    if (!json_is_string(v))
        return err_set(CLLM_ERR_FORMAT, "%s: %s: '%s' must be a string", path, what, key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return CLLM_OK;
}
