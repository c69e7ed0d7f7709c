/* tok_gguf.c - build a tokenizer from a GGUF file's tokenizer.ggml.* metadata: byte-level BPE
 * ("gpt2") and SentencePiece-style score-merged BPE ("llama"), through the same pipeline stages
 * tokenizer.json loads into. */
#include "base/error.h"
#include "io/gguf.h"
#include "tok_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_BYTE = 6 };

/* Absent keys are fine (keep the default); present keys of the wrong type are errors, and so are
 * ids outside the vocabulary (as config.json's are), except -1 / 0xFFFFFFFF, which some
 * converters write for "none". */
static cllm_status opt_id(const gguf_file *f, const char *key, int32_t n_tokens, int32_t *id) {
    int32_t sv;
    uint32_t v;
    if (gguf_find(f, key) < 0) return CLLM_OK;
    if (gguf_get_i32(f, key, &sv) == CLLM_OK && sv < 0) return *id = -1, CLLM_OK;
    cllm_status st = gguf_get_u32(f, key, &v);
    if (st != CLLM_OK) return st;
    if (v == UINT32_MAX) return *id = -1, CLLM_OK;
    if (v >= (uint32_t)n_tokens)
        return err_set(CLLM_ERR_FORMAT, "%s: %s = %u is not a token id (vocabulary of %d)",
                       gguf_path(f), key, v, n_tokens);
    *id = (int32_t)v;
    return CLLM_OK;
}

static cllm_status opt_bool(const gguf_file *f, const char *key, bool *v) {
    return gguf_find(f, key) < 0 ? CLLM_OK : gguf_get_bool(f, key, v);
}

static cllm_status parse_stage(json_t *j, const char *path, int which, tokenizer *t) {
    if (!j) return err_set(CLLM_ERR_NOMEM, "%s: out of memory", path);
    cllm_status st = which == 0   ? tok_norm_parse(j, path, &t->normalizer)
                     : which == 1 ? tok_dec_parse(j, path, &t->decoder)
                                  : tok_pretok_parse(j, path, &t->pretok);
    json_decref(j);
    return st;
}

/* "a b" merges (rank = index); llama.cpp splits at the first space after the first byte. Pairs
 * whose parts or result are not tokens can never apply here, so they are skipped. */
static cllm_status load_merges(tokenizer *t, const gguf_file *f, const char *path) {
    gguf_arr m;
    cllm_status st = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &m);
    if (st != CLLM_OK) return st;
    if ((st = tok_mergemap_init(&t->merges, m.n)) != CLLM_OK) return st;
    strbuf tmp = {0};
    for (size_t i = 0; i < m.n && st == CLLM_OK; i++) {
        gguf_str s = gguf_arr_str(&m, i);
        const char *sp = s.len > 1 ? memchr(s.p + 1, ' ', s.len - 1) : NULL;
        if (!sp) continue;
        size_t la = (size_t)(sp - s.p), lb = s.len - la - 1;
        int32_t a = tok_strmap_get(&t->vocab, s.p, la), b = tok_strmap_get(&t->vocab, sp + 1, lb);
        sb_clear(&tmp);
        if ((st = sb_append(&tmp, s.p, la)) != CLLM_OK ||
            (st = sb_append(&tmp, sp + 1, lb)) != CLLM_OK)
            break;
        int32_t c = tok_strmap_get(&t->vocab, tmp.p, tmp.len);
        if (a >= 0 && b >= 0 && c >= 0) tok_mergemap_put(&t->merges, a, b, (uint32_t)i, c);
    }
    sb_free(&tmp);
    return st;
}

/* NaN scores (corrupt files) sort last instead of breaking the ordering. */
static float score_at(const gguf_arr *scores, size_t i) {
    float v = (float)gguf_arr_float(scores, i);
    return isnan(v) ? -INFINITY : v;
}

static int cmp_score_desc(const void *pa, const void *pb) {
    float a = *(const float *)pa, b = *(const float *)pb;
    return a > b ? -1 : a < b;
}

/* Substring fingerprints for spm_merges: two polynomial hashes modulo the Mersenne prime 2^61-1
 * (Horner order, so h(s + c) = h(s) * B + c) plus the length. The hash of any prefix and of the
 * matching suffix of a token then costs O(1) each (h(suffix) = h(whole) - h(prefix) * B^len), which
 * keeps the merge derivation linear in the vocabulary's size however long one token is. Two
 * independent 61-bit hashes and the length make a false match (~2^-122 per lookup) negligible. */
#define FP_P ((uint64_t)0x1FFFFFFFFFFFFFFF)
static const uint64_t FP_B[2] = {0x1F3A5C7E9B2D4F61 % FP_P, 0x0B7E151628AED2A6 % FP_P};

static uint64_t fp_mul(uint64_t a, uint64_t b) {
    unsigned __int128 r = (unsigned __int128)a * b;
    uint64_t v = (uint64_t)(r & FP_P) + (uint64_t)(r >> 61);
    return v >= FP_P ? v - FP_P : v;
}

static uint64_t fp_add(uint64_t a, uint64_t b) {
    uint64_t v = a + b;
    return v >= FP_P ? v - FP_P : v;
}

static uint64_t fp_pow(uint64_t b, uint64_t e) {
    uint64_t r = 1;
    for (; e; e >>= 1, b = fp_mul(b, b))
        if (e & 1) r = fp_mul(r, b);
    return r;
}

typedef struct {
    uint64_t h[2];
    uint64_t len; /* 0 = empty slot (vocabulary strings are never empty) */
    int32_t id;
} fp_slot;

typedef struct {
    fp_slot *s;
    size_t mask;
} fp_table;

static size_t fp_index(const fp_table *t, const uint64_t h[2], uint64_t len) {
    size_t j = (size_t)((h[0] ^ (h[1] * 0x9E3779B97F4A7C15ull) ^ len) & t->mask);
    while (t->s[j].len && !(t->s[j].len == len && t->s[j].h[0] == h[0] && t->s[j].h[1] == h[1]))
        j = (j + 1) & t->mask;
    return j;
}

static int32_t fp_get(const fp_table *t, const uint64_t h[2], uint64_t len) {
    const fp_slot *s = &t->s[fp_index(t, h, len)];
    return s->len ? s->id : -1;
}

static void fp_hash(const char *p, size_t n, uint64_t h[2]) {
    h[0] = h[1] = 0;
    for (size_t i = 0; i < n; i++)
        for (int w = 0; w < 2; w++)
            h[w] = fp_add(fp_mul(h[w], FP_B[w]), (uint8_t)p[i] + 1u);
}

typedef struct {
    int32_t a, b, id;
    uint32_t rank;
} spm_merge;

/* SentencePiece BPE as llama.cpp runs it: repeatedly merge the adjacent pair whose concatenation
 * is a token with the highest score (leftmost on ties). That is BPE whose merge ranks order the
 * resulting tokens by descending score, with equal scores sharing a rank so position decides.
 * Every split of every token at a UTF-8 boundary whose two parts are tokens is a merge; the parts
 * are looked up by fingerprint (above), so the work is linear in the vocabulary's total size. */
static cllm_status spm_merges(tokenizer *t, const gguf_arr *scores, const char *path) {
    size_t n = scores->n, n_vocab = t->vocab.n, cap = 64, n_merges = 0;
    cllm_status st = CLLM_OK;
    fp_table tab = {0};
    spm_merge *mg = NULL;
    float *sorted = malloc((n ? n : 1) * sizeof *sorted);
    size_t slots = 64;
    while (slots < n_vocab * 2)
        slots *= 2;
    tab.s = calloc(slots, sizeof *tab.s);
    tab.mask = slots - 1;
    mg = malloc(cap * sizeof *mg);
    if (!sorted || !tab.s || !mg) goto nomem;
    for (size_t i = 0; i < n; i++)
        sorted[i] = score_at(scores, i);
    qsort(sorted, n, sizeof *sorted, cmp_score_desc);
    size_t n_distinct = 0; /* rank of score s = its index among the distinct sorted scores */
    for (size_t i = 0; i < n; i++)
        if (!n_distinct || sorted[i] != sorted[n_distinct - 1]) sorted[n_distinct++] = sorted[i];
    for (size_t i = 0; i < n_vocab; i++) {
        const struct tok_strmap_entry *e = &t->vocab.e[i];
        uint64_t h[2];
        fp_hash(t->vocab.keys.p + e->off, e->len, h);
        fp_slot *s = &tab.s[fp_index(&tab, h, e->len)];
        *s = (fp_slot){{h[0], h[1]}, e->len, e->val};
    }
    const uint64_t binv[2] = {fp_pow(FP_B[0], FP_P - 2), fp_pow(FP_B[1], FP_P - 2)};
    for (size_t i = 0; i < n_vocab; i++) {
        const struct tok_strmap_entry *e = &t->vocab.e[i];
        const char *p = t->vocab.keys.p + e->off;
        float sc = score_at(scores, (size_t)e->val);
        size_t lo = 0, hi = n_distinct; /* binary search in the descending list */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (sorted[mid] > sc)
                lo = mid + 1;
            else
                hi = mid;
        }
        uint64_t whole[2], pre[2] = {0, 0}, bpow[2], binvk[2] = {1, 1}; /* B^len, B^-k */
        fp_hash(p, e->len, whole);
        for (int w = 0; w < 2; w++)
            bpow[w] = fp_pow(FP_B[w], e->len);
        size_t done = 0; /* bytes folded into pre */
        for (size_t k = tok_utf8_seq((const uint8_t *)p, e->len); k && k < e->len;) {
            for (; done < k; done++)
                for (int w = 0; w < 2; w++) {
                    pre[w] = fp_add(fp_mul(pre[w], FP_B[w]), (uint8_t)p[done] + 1u);
                    binvk[w] = fp_mul(binvk[w], binv[w]);
                }
            uint64_t suf[2]; /* h(p[k..len)) = h(p) - h(p[0..k)) * B^(len-k) */
            for (int w = 0; w < 2; w++)
                suf[w] = fp_add(whole[w], FP_P - fp_mul(pre[w], fp_mul(bpow[w], binvk[w])));
            int32_t a = fp_get(&tab, pre, k), b = fp_get(&tab, suf, e->len - k);
            if (a >= 0 && b >= 0) {
                if (n_merges == cap) {
                    spm_merge *g = realloc(mg, 2 * cap * sizeof *mg);
                    if (!g) goto nomem;
                    mg = g;
                    cap *= 2;
                }
                mg[n_merges++] = (spm_merge){a, b, e->val, (uint32_t)lo};
            }
            size_t step = tok_utf8_seq((const uint8_t *)p + k, e->len - k);
            k = step ? k + step : 0;
        }
    }
    if ((st = tok_mergemap_init(&t->merges, n_merges)) == CLLM_OK)
        for (size_t i = 0; i < n_merges; i++)
            tok_mergemap_put(&t->merges, mg[i].a, mg[i].b, mg[i].rank, mg[i].id);
    goto out;
nomem:
    st = err_set(CLLM_ERR_NOMEM, "%s: out of memory deriving merges", path);
out:
    free(sorted);
    free(tab.s);
    free(mg);
    return st;
}

/* Spaces become U+2581 (with one prepended when add_space_prefix), as llama.cpp's SPM session
 * does; the decoder undoes it. */
static cllm_status spm_stages(tokenizer *t, const gguf_file *f, const char *path) {
    bool prefix = true, extra_ws = false;
    cllm_status st;
    if ((st = opt_bool(f, "tokenizer.ggml.add_space_prefix", &prefix)) != CLLM_OK ||
        (st = opt_bool(f, "tokenizer.ggml.remove_extra_whitespaces", &extra_ws)) != CLLM_OK)
        return st;
    if (extra_ws)
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.remove_extra_whitespaces is not supported", path);
    const char *sp = "\xE2\x96\x81";
    json_t *repl = json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ",
                             "content", sp);
    json_t *norm = prefix ? json_pack("{s:s, s:[{s:s, s:s}, o]}", "type", "Sequence", "normalizers",
                                      "type", "Prepend", "prepend", sp, repl)
                          : repl;
    if ((st = parse_stage(norm, path, 0, t)) != CLLM_OK) return st;
    json_t *dec = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}]}", "type", "Sequence",
                            "decoders", "type", "Replace", "pattern", "String", sp, "content", " ",
                            "type", "ByteFallback", "type", "Fuse");
    if (dec && prefix &&
        json_array_append_new(json_object_get(dec, "decoders"),
                              json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ",
                                        "start", 1, "stop", 0))) {
        json_decref(dec);
        dec = NULL;
    }
    return parse_stage(dec, path, 1, t);
}

static bool contains_ci(const char *s, size_t n, const char *sub) {
    size_t m = strlen(sub);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && (s[i + j] | 0x20) == sub[j])
            j++;
        if (j == m) return true;
    }
    return false;
}

/* Control / unknown tokens become special added tokens (matched only with parse_special);
 * user-defined ones are matched in raw text always, as llama.cpp's tokenizer_st_partition does. */
static cllm_status add_typed_tokens(tokenizer *t, const gguf_file *f, const gguf_arr *toks,
                                    const gguf_arr *types) {
    gguf_str name = {0};
    if (gguf_find(f, "general.name") >= 0) gguf_get_str(f, "general.name", &name);
    /* llama.cpp gives Phi-3's special tokens rstrip (GGUF has no per-token flags). */
    bool phi3 =
        name.p && (contains_ci(name.p, name.len, "phi-3") || contains_ci(name.p, name.len, "phi3"));
    cllm_status st = CLLM_OK;
    for (size_t i = 0; types && i < types->n && st == CLLM_OK; i++) {
        int64_t ty = gguf_arr_int(types, i);
        if (ty != TT_CONTROL && ty != TT_UNKNOWN && ty != TT_USER_DEFINED) continue;
        gguf_str s = gguf_arr_str(toks, i);
        if (!s.len) continue;
        bool rstrip = phi3 && !(s.len == 5 && !memcmp(s.p, "<unk>", 5)) &&
                      !(s.len == 3 && !memcmp(s.p, "<s>", 3)) &&
                      !(s.len == 13 && !memcmp(s.p, "<|endoftext|>", 13));
        st = tok_add_added(t, s.p, s.len, (int32_t)i, ty != TT_USER_DEFINED, false, rstrip, false,
                           false);
    }
    return st;
}

static cllm_status load(tokenizer *t, const gguf_file *f, const char *path) {
    gguf_str model, pre = {"", 0};
    gguf_arr toks, types = {0}, scores = {0};
    cllm_status st = gguf_get_str(f, "tokenizer.ggml.model", &model);
    if (st != CLLM_OK) return st;
    bool gpt2 = model.len == 4 && !memcmp(model.p, "gpt2", 4);
    bool llama = model.len == 5 && !memcmp(model.p, "llama", 5);
    if (model.len == 4 && !memcmp(model.p, "bert", 4))
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: WordPiece (bert) tokenizers are not supported",
                       path);
    if (!gpt2 && !llama)
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: tokenizer model '%.*s' is not supported", path,
                       (int)(model.len > 100 ? 100 : model.len), model.p);
    if ((st = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks)) != CLLM_OK)
        return st;
    if (toks.n == 0 || toks.n > TOK_MAX_ID)
        return err_set(CLLM_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %zu entries", path, toks.n);
    if (gguf_find(f, "tokenizer.ggml.token_type") >= 0 &&
        (st = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &types)) != CLLM_OK)
        return st;
    if (gguf_find(f, "tokenizer.ggml.scores") >= 0 &&
        (st = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores)) != CLLM_OK)
        return st;
    if ((types.n && types.n != toks.n) || (scores.n && scores.n != toks.n))
        return err_set(CLLM_ERR_FORMAT,
                       "%s: token_type / scores counts (%zu / %zu) differ from %zu tokens", path,
                       types.n, scores.n, toks.n);
    for (size_t i = 0; i < toks.n; i++) {
        gguf_str s = gguf_arr_str(&toks, i);
        if (!tok_utf8_valid(s.p, s.len))
            return err_set(CLLM_ERR_FORMAT, "%s: token %zu is not valid UTF-8", path, i);
        char empty[32]; /* llama.cpp names empty tokens so every id keeps a piece */
        if (!s.len) s = (gguf_str){empty, (size_t)snprintf(empty, sizeof empty, "[EMPTY_%zu]", i)};
        if ((st = tok_strmap_put(&t->vocab, s.p, s.len, (int32_t)i)) != CLLM_OK) return st;
    }
    if ((st = add_typed_tokens(t, f, &toks, types.n ? &types : NULL)) != CLLM_OK) return st;
    int32_t n = (int32_t)toks.n;
    bool add_bos = false, add_eos = false;
    if (gpt2) {
        if (gguf_find(f, "tokenizer.ggml.pre") >= 0 &&
            (st = gguf_get_str(f, "tokenizer.ggml.pre", &pre)) != CLLM_OK)
            return st;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(pre.len < 127 ? pre.len : 127), pre.p);
        if ((st = load_merges(t, f, path)) != CLLM_OK ||
            (st = tok_gguf_pretok(t, name, pre.len < 127 ? pre.len : 127, path, &add_bos)) !=
                CLLM_OK ||
            (st = tok_dec_bytelevel(&t->decoder)) != CLLM_OK)
            return st;
        t->added_verbatim = true;
    } else {
        if (!scores.n)
            return err_set(CLLM_ERR_FORMAT, "%s: SentencePiece vocab without tokenizer.ggml.scores",
                           path);
        t->byte_fallback = true;
        add_bos = true;
        if ((st = spm_merges(t, &scores, path)) != CLLM_OK ||
            (st = spm_stages(t, f, path)) != CLLM_OK ||
            (st = opt_id(f, "tokenizer.ggml.unknown_token_id", n, &t->unk_id)) != CLLM_OK)
            return st;
    }
    if ((st = tok_finalize(t, path)) != CLLM_OK) return st;
    if ((st = opt_id(f, "tokenizer.ggml.bos_token_id", n, &t->bos_id)) != CLLM_OK ||
        (st = opt_id(f, "tokenizer.ggml.eos_token_id", n, &t->eos_id)) != CLLM_OK ||
        (st = opt_bool(f, "tokenizer.ggml.add_bos_token", &add_bos)) != CLLM_OK ||
        (st = opt_bool(f, "tokenizer.ggml.add_eos_token", &add_eos)) != CLLM_OK)
        return st;
    t->has_post = true;
    if (add_bos && t->bos_id >= 0 && (st = tok_ids_push(&t->post_pre, t->bos_id)) != CLLM_OK)
        return st;
    if (add_eos && t->eos_id >= 0 && (st = tok_ids_push(&t->post_post, t->eos_id)) != CLLM_OK)
        return st;
    return CLLM_OK;
}

cllm_status tok_load_gguf(const char *path, tokenizer **out) {
    if (!path || !out) return err_set(CLLM_ERR_INVALID_ARG, "tok_load_gguf: NULL argument");
    *out = NULL;
    gguf_file *f;
    cllm_status st = gguf_open(path, &f);
    if (st != CLLM_OK) return st;
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        gguf_close(f);
        return err_set(CLLM_ERR_NOMEM, "%s: out of memory", path);
    }
    t->unk_id = t->bos_id = t->eos_id = -1;
    st = load(t, f, path);
    gguf_close(f);
    if (st != CLLM_OK) {
        tok_free(t);
        return st;
    }
    *out = t;
    return CLLM_OK;
}
