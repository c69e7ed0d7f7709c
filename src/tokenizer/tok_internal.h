/* tok_internal.h - the tokenizer's internal types (shared by the tok_*.c files) and the helpers
 * they call across files: string maps, UTF-8 utilities, regexes, pipeline stages. */
#ifndef CLLM_TOKENIZER_TOK_INTERNAL_H
#define CLLM_TOKENIZER_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"
#include "base/strbuf.h"
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ids above this are rejected at load: they would only come from corrupt files and would make
 * the id -> piece table absurdly large. */
#define TOK_MAX_ID (1 << 24)

/* ---- growable buffers (bytes: base/strbuf.h) ---- */

typedef struct tok_ids {
    int32_t *p;
    size_t len, cap;
} tok_ids;

cllm_status tok_ids_push(tok_ids *v, int32_t id);
cllm_status tok_ids_append(tok_ids *v, const int32_t *ids, size_t n);
void tok_ids_free(tok_ids *v);

/* ---- string -> int32 hash map (keys are copied into the map) ---- */

typedef struct tok_strmap {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;
    struct tok_strmap_entry {
        uint64_t hash;
        uint32_t off, len; /* key bytes in `keys` */
        int32_t val;
    } * e;
    size_t n, cap;
    strbuf keys;
} tok_strmap;

uint64_t tok_hash(const void *s, size_t n);
/* Insert or overwrite. */
cllm_status tok_strmap_put(tok_strmap *m, const char *s, size_t n, int32_t val);
/* -1 when absent. */
int32_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n);
void tok_strmap_free(tok_strmap *m);

/* ---- (left id, right id) -> (rank, merged id) ---- */

typedef struct tok_mergemap {
    struct tok_merge_slot {
        uint64_t key; /* ((left << 32) | right) + 1; 0 = empty */
        uint32_t rank;
        int32_t id;
    } * s;
    size_t mask, n;
} tok_mergemap;

cllm_status tok_mergemap_init(tok_mergemap *m, size_t expected);
/* Later duplicates overwrite earlier ones, as HF's HashMap collect does. */
void tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
/* Returns false when the pair has no merge. */
bool tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id);
void tok_mergemap_free(tok_mergemap *m);

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid / truncated. */
size_t tok_utf8_seq(const uint8_t *s, size_t n);
bool tok_utf8_valid(const char *s, size_t n);
/* Decode one code point of valid UTF-8; returns its byte length. */
size_t tok_utf8_decode(const char *s, uint32_t *cp);
size_t tok_utf8_encode(uint32_t cp, char out[4]);
/* Append bytes, replacing invalid sequences with U+FFFD like Rust's String::from_utf8_lossy. */
cllm_status tok_utf8_lossy_append(strbuf *out, const uint8_t *s, size_t n);
/* Rust's char::is_whitespace (Unicode White_Space). */
bool tok_is_white_space(uint32_t cp);

/* ---- regexes (PCRE2, UTF + UCP, JIT) with Oniguruma-compatible \s ---- */

typedef struct tok_regex {
    pcre2_code *code;
} tok_regex;

/* `literal`: match the pattern text exactly (HF's String patterns). */
cllm_status tok_regex_compile(const char *pat, size_t len, bool literal, tok_regex **out);
void tok_regex_free(tok_regex *re);

/* Per-call matching scratch, so one compiled tokenizer can be used from many threads. */
/* Pre-tokenizer stages run nested (each word of stage i goes straight through stage i+1), so
 * each stage depth has its own scratch. */
#define TOK_MAX_STAGES 8

typedef struct tok_match {
    pcre2_match_data *md;
    struct tok_stage_scratch {
        struct tok_seg {
            size_t a, b;
            bool match;
        } * segs; /* Split */
        size_t segs_cap;
        strbuf a, b; /* rewritten text (ByteLevel prefix space, byte mapping, Metaspace) */
    } st[TOK_MAX_STAGES];
} tok_match;

cllm_status tok_match_init(tok_match *m);
void tok_match_free(tok_match *m);

/* Iterates matches like the onig crate's find_iter (which HF uses): an empty match directly
 * after the previous match is skipped by advancing one character. */
typedef struct tok_regex_iter {
    size_t last_end, last_match_end;
    bool has_last;
} tok_regex_iter;

/* Returns false when there are no more matches. Empty matches are reported. */
bool tok_regex_find(const tok_regex *re, tok_match *m, const char *s, size_t n, tok_regex_iter *it,
                    size_t *start, size_t *end);

/* ---- JSON helpers: every type mismatch becomes a CLLM_ERR_FORMAT naming path and what ---- */

/* {"String": "..."} or {"Regex": "..."}. */
cllm_status tok_json_pattern(const json_t *j, const char *path, const char *what, tok_regex **out);
/* Absent or null: dflt. */
cllm_status tok_json_bool(const json_t *o, const char *key, bool dflt, bool *out, const char *path,
                          const char *what);
/* Absent or null: dflt (an error if dflt is NULL). *out points into the JSON value. */
cllm_status tok_json_string(const json_t *o, const char *key, const char *dflt, const char **out,
                            size_t *len, const char *path, const char *what);

/* ---- pipeline stages ---- */

typedef struct tok_norm tok_norm;
typedef struct tok_pretok tok_pretok;
typedef struct tok_dec tok_dec;

/* A list of strings, the unit decoders pass along. */
typedef struct tok_words {
    strbuf text;
    struct tok_word {
        size_t off, len;
        bool at_start; /* unused by decoders */
    } * w;
    size_t n, cap;
} tok_words;

cllm_status tok_words_add(tok_words *ws, const char *s, size_t n, bool at_start);
void tok_words_clear(tok_words *ws);
void tok_words_free(tok_words *ws);

cllm_status tok_norm_parse(const json_t *j, const char *path, tok_norm **out);
void tok_norm_free(tok_norm *n);
/* out is cleared and receives the normalized text. */
cllm_status tok_norm_apply(const tok_norm *n, tok_match *m, const char *s, size_t len, strbuf *out);

cllm_status tok_pretok_parse(const json_t *j, const char *path, tok_pretok **out);
/* The pre-tokenizer GPT-2 / Qwen2 vocab.json + merges.txt folders imply. */
cllm_status tok_pretok_bytelevel(bool qwen2, tok_pretok **out);
void tok_pretok_free(tok_pretok *p);
/* Receives each pre-token as soon as it is produced. */
typedef cllm_status (*tok_word_fn)(void *ctx, const char *s, size_t n, bool at_start);
/* Calls fn for each pre-token of s, in order (p may be NULL: the whole string is one word). */
cllm_status tok_pretok_apply(const tok_pretok *p, tok_match *m, const char *s, size_t len,
                             bool at_start, tok_word_fn fn, void *ctx);

cllm_status tok_dec_parse(const json_t *j, const char *path, tok_dec **out);
cllm_status tok_dec_bytelevel(tok_dec **out);
void tok_dec_free(tok_dec *d);

/* The byte-level alphabet: byte -> code point (GPT-2's bytes_to_unicode) and the inverse. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 if cp is not in the alphabet */

/* ---- added tokens ---- */

typedef struct tok_added {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* Leftmost-longest matcher over a set of added tokens. */
typedef struct tok_matcher {
    struct tok_pat {
        const char *s; /* owned */
        size_t len;
        const tok_added *tok;
    } * pats;
    size_t n;
    uint32_t first[257]; /* pats sorted by first byte then length desc; first[b]..first[b+1] */
} tok_matcher;

/* Build from the added tokens whose `normalized` flag equals `normalized`; normalized ones are
 * matched in their normalized form (n may be NULL). */
cllm_status tok_matcher_build(tok_matcher *mt, const tok_added *toks, size_t n_toks,
                              bool normalized, const tok_norm *n);
void tok_matcher_free(tok_matcher *mt);

/* One piece of split input: either an added token or text to process further. */
typedef struct tok_span {
    size_t start, end;
    int32_t id; /* -1: text */
} tok_span;

typedef struct tok_spans {
    tok_span *p;
    size_t n, cap;
} tok_spans;

/* Split s into added-token matches and text spans (HF AddedVocabulary::find_matches). */
cllm_status tok_matcher_split(const tok_matcher *mt, tok_match *m, const char *s, size_t len,
                              bool parse_special, tok_spans *out);
/* The same, but a special token is never matched where it overlaps one of the n_protect byte
 * ranges (sorted, non-overlapping): there its text stays plain text. */
cllm_status tok_matcher_split_protected(const tok_matcher *mt, const char *s, size_t len,
                                        bool parse_special, const tok_range *protect,
                                        size_t n_protect, tok_spans *out);

/* ---- the BPE model ---- */

typedef struct tok_bpe_cache tok_bpe_cache;
typedef struct tokenizer tokenizer;

/* Scratch for merging one word; reused across words within one encode call. */
typedef struct tok_bpe_scratch {
    struct tok_sym {
        int32_t id;
        int32_t prev, next;
        uint32_t len; /* 0 = merged away */
    } * sym;
    size_t sym_cap;
    struct tok_heap_item {
        uint32_t rank;
        uint32_t pos;
        int32_t id;
    } * heap;
    size_t heap_cap;
    tok_bpe_cache *cache; /* may be NULL */
} tok_bpe_scratch;

cllm_status tok_bpe_word(const tokenizer *t, tok_bpe_scratch *sc, const char *w, size_t n,
                         tok_ids *out);
cllm_status tok_bpe_cache_create(tok_bpe_cache **out);
void tok_bpe_cache_free(tok_bpe_cache *c);
void tok_bpe_scratch_free(tok_bpe_scratch *sc);

/* ---- the tokenizer ---- */

struct tokenizer {
    /* model */
    tok_strmap vocab;
    tok_mergemap merges;
    int32_t unk_id; /* -1: none */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_ids[256]; /* "<0xXX>" ids for byte fallback, -1 if absent */
    int32_t *small_cp_id;  /* [TOK_SMALL_CP]: id of single-code-point pieces, -1 if absent */

    /* id -> piece (added tokens override the model vocab, as HF's id_to_token) */
    char **pieces; /* point into piece_pool */
    uint32_t *piece_lens;
    strbuf piece_pool;
    uint8_t *is_special;
    int n_ids;

    tok_added *added;
    size_t n_added;
    tok_strmap added_map; /* content -> id */
    tok_matcher raw_matcher, norm_matcher;

    tok_norm *normalizer;
    tok_pretok *pretok;
    tok_dec *decoder;

    /* the post-processor, flattened: ids before and after the sequence */
    tok_ids post_pre, post_post;
    bool has_post; /* tokenizer.json has a non-null post_processor */

    int32_t bos_id, eos_id;
    /* Decode added tokens as their literal text, outside the decoder chain (llama.cpp's rule
     * for GGUF vocabularies, whose user-defined tokens are stored unmapped). */
    bool added_verbatim;
};

#define TOK_SMALL_CP 0x800

/* Loading steps shared by tok_load.c and tok_config.c. */
cllm_status tok_add_added(tokenizer *t, const char *content, size_t len, int32_t id, bool special,
                          bool lstrip, bool rstrip, bool single_word, bool normalized);
/* One added-token object ({"id", "content", flags}); id < 0: take it from the object. */
cllm_status tok_parse_added_obj(tokenizer *t, const json_t *o, int32_t id, const char *path);
/* Build the id tables, added-token maps and matchers once vocab and added tokens are known. */
cllm_status tok_finalize(tokenizer *t, const char *path);
cllm_status tok_post_parse(tokenizer *t, const json_t *j, const char *path);
/* Apply tokenizer_config.json (may be NULL): bos/eos, add_bos_token/add_eos_token. */
cllm_status tok_config_apply(tokenizer *t, const json_t *cfg, const char *path);
/* Parse added_tokens_decoder from tokenizer_config.json into added tokens. */
cllm_status tok_config_added(tokenizer *t, const json_t *cfg, const char *path);

/* GGUF: install the pre-tokenizer llama.cpp uses for tokenizer.ggml.pre = pre (len bytes; empty
 * means "default"); sets ignore_merges and *add_bos (the name's default for add_bos_token). */
cllm_status tok_gguf_pretok(tokenizer *t, const char *pre, size_t len, const char *path,
                            bool *add_bos);

/* Decode the raw pieces of ids (already filtered for skip_special) through the decoder chain.
 * Appends to out. */
cllm_status tok_decode_append(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                              strbuf *out);

#endif
