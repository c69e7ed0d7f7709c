/* tok_pretok.c - HF pre-tokenizers (ByteLevel, Split, Metaspace, Digits, Whitespace,
 * WhitespaceSplit, Punctuation, Sequence): cut normalized text into the words BPE sees. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

enum pt_type { P_SPLIT, P_BYTELEVEL, P_METASPACE };
enum split_behavior { B_REMOVED, B_ISOLATED, B_PREV, B_NEXT, B_CONTIG };
enum prepend_scheme { PS_ALWAYS, PS_FIRST, PS_NEVER };

/* One leaf pre-tokenizer. */
typedef struct stage {
    enum pt_type type;
    tok_regex *re; /* Split; ByteLevel with use_regex */
    enum split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* ByteLevel */
    char repl[8];          /* Metaspace */
    size_t repl_len;
    enum prepend_scheme scheme;
    bool split;
} stage;

/* Sequences are flattened: Sequence[A, Sequence[B, C]] runs A, B, C on every word alike. */
struct tok_pretok {
    stage st[TOK_MAX_STAGES];
    size_t n;
};

/* GPT-2's pre-tokenizer regex (HF ByteLevel use_regex) and Qwen2's Split regex. */
static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

cllm_status tok_match_init(tok_match *m) {
    memset(m, 0, sizeof *m);
    m->md = pcre2_match_data_create(1, NULL);
    if (!m->md) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    return CLLM_OK;
}

void tok_match_free(tok_match *m) {
    if (!m) return;
    pcre2_match_data_free(m->md);
    for (int i = 0; i < TOK_MAX_STAGES; i++) {
        free(m->st[i].segs);
        sb_free(&m->st[i].a);
        sb_free(&m->st[i].b);
    }
    memset(m, 0, sizeof *m);
}

/* ---- the byte-level alphabet ---- */

/* GPT-2 maps the 188 printable bytes to themselves and the other 68 to U+0100.. in order. */
uint32_t tok_byte_to_cp(uint8_t b) {
    if (b <= 0x20) return 256u + b;
    if (b <= 0x7E) return b;
    if (b <= 0xA0) return 256u + 33 + (b - 0x7Fu);
    if (b == 0xAD) return 323;
    return b;
}

int tok_cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xFF && cp != 0xAD)) return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 289 + 0x7F);
    if (cp == 323) return 0xAD;
    return -1;
}

/* ---- parsing ---- */

void tok_pretok_free(tok_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        tok_regex_free(p->st[i].re);
    free(p);
}

static cllm_status add_stage(tok_pretok *p, const char *path, stage **out) {
    if (p->n == TOK_MAX_STAGES)
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizers", path,
                       TOK_MAX_STAGES);
    *out = &p->st[p->n++];
    memset(*out, 0, sizeof **out);
    return CLLM_OK;
}

static cllm_status add_split(tok_pretok *p, const char *path, const char *re, enum split_behavior b,
                             bool invert) {
    stage *s = NULL;
    cllm_status st = add_stage(p, path, &s);
    if (st != CLLM_OK) return st;
    s->type = P_SPLIT;
    s->behavior = b;
    s->invert = invert;
    return tok_regex_compile(re, strlen(re), false, &s->re);
}

static cllm_status add_bytelevel(tok_pretok *p, const char *path, bool add_prefix_space,
                                 bool use_regex) {
    stage *s = NULL;
    cllm_status st = add_stage(p, path, &s);
    if (st != CLLM_OK) return st;
    s->type = P_BYTELEVEL;
    s->add_prefix_space = add_prefix_space;
    return use_regex ? tok_regex_compile(GPT2_RE, strlen(GPT2_RE), false, &s->re) : CLLM_OK;
}

cllm_status tok_pretok_bytelevel(bool qwen2, tok_pretok **out) {
    *out = NULL;
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    cllm_status st = CLLM_OK;
    if (qwen2) st = add_split(p, "Qwen2", QWEN2_RE, B_ISOLATED, false);
    if (st == CLLM_OK) st = add_bytelevel(p, "GPT-2", false, !qwen2);
    if (st != CLLM_OK) {
        tok_pretok_free(p);
        return st;
    }
    *out = p;
    return CLLM_OK;
}

static cllm_status parse_behavior(const json_t *j, const char *path, enum split_behavior *b) {
    const json_t *v = json_object_get(j, "behavior");
    const char *s = json_string_value(v);
    if (!v) return *b = B_ISOLATED, CLLM_OK;
    if (!s) return err_set(CLLM_ERR_FORMAT, "%s: pre-tokenizer 'behavior' must be a string", path);
    if (!strcmp(s, "Removed"))
        *b = B_REMOVED;
    else if (!strcmp(s, "Isolated"))
        *b = B_ISOLATED;
    else if (!strcmp(s, "MergedWithPrevious"))
        *b = B_PREV;
    else if (!strcmp(s, "MergedWithNext"))
        *b = B_NEXT;
    else if (!strcmp(s, "Contiguous"))
        *b = B_CONTIG;
    else
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: unsupported split behavior %s", path, s);
    return CLLM_OK;
}

static cllm_status parse_metaspace(const json_t *j, const char *path, stage *p) {
    const char *s;
    size_t len;
    p->type = P_METASPACE;
    cllm_status st = tok_json_string(j, "replacement", "\xE2\x96\x81", &s, &len, path, "Metaspace");
    if (st != CLLM_OK) return st;
    uint32_t cp;
    if (len == 0 || len > 4 || tok_utf8_decode(s, &cp) != len)
        return err_set(CLLM_ERR_FORMAT, "%s: Metaspace replacement must be one character", path);
    memcpy(p->repl, s, len);
    p->repl_len = len;
    if ((st = tok_json_bool(j, "split", true, &p->split, path, "Metaspace")) != CLLM_OK) return st;
    const json_t *ps = json_object_get(j, "prepend_scheme");
    if (ps && !json_is_null(ps)) {
        const char *v = json_string_value(ps);
        if (v && !strcmp(v, "always"))
            p->scheme = PS_ALWAYS;
        else if (v && !strcmp(v, "first"))
            p->scheme = PS_FIRST;
        else if (v && !strcmp(v, "never"))
            p->scheme = PS_NEVER;
        else
            return err_set(CLLM_ERR_FORMAT,
                           "%s: Metaspace prepend_scheme must be always/first/never", path);
    } else { /* older files: add_prefix_space */
        bool aps;
        if ((st = tok_json_bool(j, "add_prefix_space", true, &aps, path, "Metaspace")) != CLLM_OK)
            return st;
        p->scheme = aps ? PS_ALWAYS : PS_NEVER;
    }
    return CLLM_OK;
}

static cllm_status parse_into(tok_pretok *p, const json_t *j, const char *path, int depth) {
    if (!j || json_is_null(j)) return CLLM_OK;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type)
        return err_set(CLLM_ERR_FORMAT, "%s: pre_tokenizer must be an object with a \"type\"",
                       path);
    cllm_status st = CLLM_OK;
    bool a, b;
    stage *s = NULL;
    if (!strcmp(type, "ByteLevel")) {
        if ((st = tok_json_bool(j, "add_prefix_space", true, &a, path, "ByteLevel")) != CLLM_OK ||
            (st = tok_json_bool(j, "use_regex", true, &b, path, "ByteLevel")) != CLLM_OK)
            return st;
        return add_bytelevel(p, path, a, b);
    }
    if (!strcmp(type, "Digits")) {
        if ((st = tok_json_bool(j, "individual_digits", false, &a, path, "Digits")) != CLLM_OK)
            return st;
        return add_split(p, path, "\\p{N}", a ? B_ISOLATED : B_CONTIG, false);
    }
    if (!strcmp(type, "Whitespace")) return add_split(p, path, "\\w+|[^\\w\\s]+", B_REMOVED, true);
    if (!strcmp(type, "WhitespaceSplit")) return add_split(p, path, "\\s", B_REMOVED, false);
    if (!strcmp(type, "Punctuation")) {
        enum split_behavior beh;
        if ((st = parse_behavior(j, path, &beh)) != CLLM_OK) return st;
        return add_split(p, path, "[\\p{P}!-/:-@\\[-`{-~]", beh, false);
    }
    if (!strcmp(type, "Split")) {
        if ((st = add_stage(p, path, &s)) != CLLM_OK) return st;
        s->type = P_SPLIT;
        if ((st = parse_behavior(j, path, &s->behavior)) != CLLM_OK ||
            (st = tok_json_bool(j, "invert", false, &s->invert, path, "Split")) != CLLM_OK)
            return st;
        return tok_json_pattern(json_object_get(j, "pattern"), path, "Split pre-tokenizer", &s->re);
    }
    if (!strcmp(type, "Metaspace")) {
        if ((st = add_stage(p, path, &s)) != CLLM_OK) return st;
        return parse_metaspace(j, path, s);
    }
    if (!strcmp(type, "Sequence")) {
        const json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr))
            return err_set(CLLM_ERR_FORMAT,
                           "%s: Sequence pre-tokenizer needs a 'pretokenizers' array", path);
        if (depth > 16)
            return err_set(CLLM_ERR_FORMAT, "%s: pre-tokenizers nested too deeply", path);
        for (size_t i = 0; i < json_array_size(arr) && st == CLLM_OK; i++)
            st = parse_into(p, json_array_get(arr, i), path, depth + 1);
        return st;
    }
    return err_set(CLLM_ERR_UNSUPPORTED, "%s: unsupported pre-tokenizer %s", path, type);
}

cllm_status tok_pretok_parse(const json_t *j, const char *path, tok_pretok **out) {
    *out = NULL;
    if (!j || json_is_null(j)) return CLLM_OK;
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    cllm_status st = parse_into(p, j, path, 0);
    if (st != CLLM_OK) {
        tok_pretok_free(p);
        return st;
    }
    *out = p;
    return CLLM_OK;
}

/* ---- applying: stage i hands each of its words to stage i + 1, the last one to fn ---- */

typedef struct run_ctx {
    const tok_pretok *p;
    tok_match *m;
    tok_word_fn fn;
    void *ctx;
} run_ctx;

static cllm_status run(run_ctx *r, size_t i, const char *s, size_t len, bool at_start);

static cllm_status push_seg(struct tok_stage_scratch *sc, size_t *n, size_t a, size_t b,
                            bool match) {
    if (*n == sc->segs_cap) {
        size_t cap = sc->segs_cap ? sc->segs_cap * 2 : 64;
        struct tok_seg *s = realloc(sc->segs, cap * sizeof *s);
        if (!s) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        sc->segs = s;
        sc->segs_cap = cap;
    }
    sc->segs[(*n)++] = (struct tok_seg){a, b, match};
    return CLLM_OK;
}

/* HF's NormalizedString::split: segments from find_matches, then the behavior decides how
 * matches and the text between them become words. Empty results are dropped. */
static cllm_status apply_split(run_ctx *r, size_t si, const char *s, size_t len, bool at_start) {
    const stage *p = &r->p->st[si];
    struct tok_stage_scratch *sc = &r->m->st[si];
    size_t n = 0, a, b, prev = 0;
    cllm_status st = CLLM_OK;
    tok_regex_iter it = {0};
    if (p->behavior == B_ISOLATED && !p->invert) { /* the common case, without the segment list */
        while (st == CLLM_OK && tok_regex_find(p->re, r->m, s, len, &it, &a, &b)) {
            if (prev != a) st = run(r, si + 1, s + prev, a - prev, at_start && prev == 0);
            if (st == CLLM_OK && b > a) st = run(r, si + 1, s + a, b - a, at_start && a == 0);
            prev = b;
        }
        if (st == CLLM_OK && prev != len)
            st = run(r, si + 1, s + prev, len - prev, at_start && prev == 0);
        return st;
    }
    while (st == CLLM_OK && tok_regex_find(p->re, r->m, s, len, &it, &a, &b)) {
        if (prev != a) st = push_seg(sc, &n, prev, a, false);
        if (st == CLLM_OK) st = push_seg(sc, &n, a, b, true);
        prev = b;
    }
    if (st == CLLM_OK && prev != len) st = push_seg(sc, &n, prev, len, false);
    if (st != CLLM_OK) return st;
    struct tok_seg *g = sc->segs;
    if (p->invert)
        for (size_t i = 0; i < n; i++)
            g[i].match = !g[i].match;
    size_t k = 0; /* segments kept, compacted in place */
    bool prev_match = false;
    switch (p->behavior) {
    case B_ISOLATED:
        k = n;
        break;
    case B_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!g[i].match) g[k++] = g[i];
        break;
    case B_PREV:
        for (size_t i = 0; i < n; i++) {
            if (g[i].match && !prev_match && k)
                g[k - 1].b = g[i].b;
            else
                g[k++] = g[i];
            prev_match = g[i].match;
        }
        break;
    case B_CONTIG:
        for (size_t i = 0; i < n; i++) {
            if (g[i].match == prev_match && k)
                g[k - 1].b = g[i].b;
            else
                g[k++] = g[i];
            prev_match = g[i].match;
        }
        break;
    case B_NEXT: /* mirror of B_PREV, walking backwards and keeping the kept ones at the end */
        k = n;
        for (size_t i = n; i-- > 0;) {
            bool m_i = g[i].match;
            if (m_i && !prev_match && k < n)
                g[k].a = g[i].a;
            else
                g[--k] = g[i];
            prev_match = m_i;
        }
        g += k;
        k = n - k;
        break;
    }
    /* Later stages reuse only their own scratch, so g stays valid while we recurse. */
    for (size_t i = 0; i < k && st == CLLM_OK; i++)
        if (g[i].b > g[i].a)
            st = run(r, si + 1, s + g[i].a, g[i].b - g[i].a, at_start && g[i].a == 0);
    return st;
}

/* Map bytes to the byte-level alphabet and pass the word on. */
static cllm_status bytelevel_word(run_ctx *r, size_t si, const char *s, size_t n, bool at_start) {
    strbuf *out = &r->m->st[si].b;
    sb_clear(out);
    cllm_status st = sb_reserve(out, 2 * n + 1);
    if (st != CLLM_OK) return st;
    char *dst = out->p;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)s[i]);
        if (cp < 0x80) {
            dst[k++] = (char)cp;
        } else {
            dst[k++] = (char)(0xC0 | (cp >> 6));
            dst[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out->len = k;
    return run(r, si + 1, dst, k, at_start);
}

static cllm_status apply_bytelevel(run_ctx *r, size_t si, const char *s, size_t len,
                                   bool at_start) {
    const stage *p = &r->p->st[si];
    cllm_status st;
    if (p->add_prefix_space && s[0] != ' ') {
        strbuf *t = &r->m->st[si].a;
        sb_clear(t);
        if ((st = sb_append(t, " ", 1)) != CLLM_OK || (st = sb_append(t, s, len)) != CLLM_OK)
            return st;
        s = t->p;
        len = t->len;
    }
    if (!p->re) return bytelevel_word(r, si, s, len, at_start);
    tok_regex_iter it = {0};
    size_t a, b, prev = 0;
    st = CLLM_OK;
    while (st == CLLM_OK && tok_regex_find(p->re, r->m, s, len, &it, &a, &b)) {
        if (prev != a) st = bytelevel_word(r, si, s + prev, a - prev, at_start && prev == 0);
        if (st == CLLM_OK && b > a) st = bytelevel_word(r, si, s + a, b - a, at_start && a == 0);
        prev = b;
    }
    if (st == CLLM_OK && prev != len)
        st = bytelevel_word(r, si, s + prev, len - prev, at_start && prev == 0);
    return st;
}

static cllm_status apply_metaspace(run_ctx *r, size_t si, const char *s, size_t len,
                                   bool at_start) {
    const stage *p = &r->p->st[si];
    strbuf *t = &r->m->st[si].a;
    sb_clear(t);
    cllm_status st = CLLM_OK;
    bool starts = (len >= p->repl_len && memcmp(s, p->repl, p->repl_len) == 0) || s[0] == ' ';
    if (!starts && (p->scheme == PS_ALWAYS || (p->scheme == PS_FIRST && at_start)))
        st = sb_append(t, p->repl, p->repl_len);
    for (size_t i = 0; i < len && st == CLLM_OK;) {
        size_t j = i;
        while (j < len && s[j] != ' ')
            j++;
        st = sb_append(t, s + i, j - i);
        if (st == CLLM_OK && j < len) st = sb_append(t, p->repl, p->repl_len);
        i = j + 1;
    }
    if (st != CLLM_OK) return st;
    if (!p->split) return run(r, si + 1, t->p, t->len, at_start);
    /* MergedWithNext on the replacement: every replacement starts a new word. */
    size_t start = 0;
    for (size_t i = 1; i + p->repl_len <= t->len && st == CLLM_OK; i++) {
        if (memcmp(t->p + i, p->repl, p->repl_len) == 0) {
            st = run(r, si + 1, t->p + start, i - start, at_start && start == 0);
            start = i;
        }
    }
    if (st == CLLM_OK) st = run(r, si + 1, t->p + start, t->len - start, at_start && start == 0);
    return st;
}

static cllm_status run(run_ctx *r, size_t i, const char *s, size_t len, bool at_start) {
    if (len == 0) return CLLM_OK;
    if (i == r->p->n) return r->fn(r->ctx, s, len, at_start);
    switch (r->p->st[i].type) {
    case P_SPLIT:
        return apply_split(r, i, s, len, at_start);
    case P_BYTELEVEL:
        return apply_bytelevel(r, i, s, len, at_start);
    case P_METASPACE:
        return apply_metaspace(r, i, s, len, at_start);
    }
    return CLLM_OK;
}

cllm_status tok_pretok_apply(const tok_pretok *p, tok_match *m, const char *s, size_t len,
                             bool at_start, tok_word_fn fn, void *ctx) {
    if (len == 0) return CLLM_OK;
    if (!p) return fn(ctx, s, len, at_start);
    run_ctx r = {p, m, fn, ctx};
    return run(&r, 0, s, len, at_start);
}
