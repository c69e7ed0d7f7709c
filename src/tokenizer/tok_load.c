/* tok_load.c - loading a tokenizer: tokenizer.json (BPE model, added tokens, pipeline stages) or
 * GPT-2 style vocab.json + merges.txt, then the id tables; tok_free. */
#include "base/error.h"
#include "base/mapfile.h"
#include "tok_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JSON_SIZE ((size_t)1 << 30)

void tok_free(tokenizer *t) {
    if (!t) return;
    tok_strmap_free(&t->vocab);
    tok_mergemap_free(&t->merges);
    free(t->small_cp_id);
    free(t->pieces);
    free(t->piece_lens);
    sb_free(&t->piece_pool);
    free(t->is_special);
    for (size_t i = 0; i < t->n_added; i++)
        free(t->added[i].content);
    free(t->added);
    tok_strmap_free(&t->added_map);
    tok_matcher_free(&t->raw_matcher);
    tok_matcher_free(&t->norm_matcher);
    tok_norm_free(t->normalizer);
    tok_pretok_free(t->pretok);
    tok_dec_free(t->decoder);
    tok_ids_free(&t->post_pre);
    tok_ids_free(&t->post_post);
    free(t);
}

static cllm_status load_json(const char *path, size_t flags, json_t **out) {
    char *buf;
    size_t len;
    *out = NULL;
    cllm_status st = file_read_all(path, MAX_JSON_SIZE, &buf, &len);
    if (st != CLLM_OK) return st;
    json_error_t e;
    *out = json_loadb(buf, len, JSON_ALLOW_NUL | flags, &e);
    free(buf);
    if (!*out)
        return err_set(CLLM_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", path, e.line,
                       e.column, e.text);
    return CLLM_OK;
}

static cllm_status json_id(const json_t *v, const char *path, const char *what, int32_t *id) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOK_MAX_ID)
        return err_set(CLLM_ERR_FORMAT, "%s: %s: id must be an integer in [0, %d)", path, what,
                       TOK_MAX_ID);
    *id = (int32_t)json_integer_value(v);
    return CLLM_OK;
}

static cllm_status load_vocab(tokenizer *t, const json_t *vocab, const char *path) {
    if (!json_is_object(vocab))
        return err_set(CLLM_ERR_FORMAT, "%s: vocab must be an object", path);
    const char *key;
    json_t *v;
    void *iter = json_object_iter((json_t *)vocab);
    while (iter) {
        key = json_object_iter_key(iter);
        v = json_object_iter_value(iter);
        int32_t id;
        cllm_status st = json_id(v, path, "vocab entry", &id);
        if (st != CLLM_OK)
            return err_set(st, "%s: vocab entry '%.60s': id must be an integer in [0, %d)", path,
                           key, TOK_MAX_ID);
        if ((st = tok_strmap_put(&t->vocab, key, json_object_iter_key_len(iter), id)) != CLLM_OK)
            return st;
        iter = json_object_iter_next((json_t *)vocab, iter);
    }
    if (t->vocab.n == 0) return err_set(CLLM_ERR_FORMAT, "%s: vocab is empty", path);
    return CLLM_OK;
}

static cllm_status add_merge(tokenizer *t, strbuf *tmp, const char *a, size_t la, const char *b,
                             size_t lb, uint32_t rank, const char *path) {
    int32_t ia = tok_strmap_get(&t->vocab, a, la), ib = tok_strmap_get(&t->vocab, b, lb);
    sb_clear(tmp);
    cllm_status st = sb_append(tmp, a, la);
    if (st == CLLM_OK) st = sb_append(tmp, b, lb);
    if (st != CLLM_OK) return st;
    int32_t ic = tok_strmap_get(&t->vocab, tmp->p, tmp->len);
    if (ia < 0 || ib < 0 || ic < 0)
        return err_set(CLLM_ERR_FORMAT,
                       "%s: merge %u ('%.*s' '%.*s'): token '%.*s' is not in the vocab", path, rank,
                       (int)la, a, (int)lb, b,
                       ia < 0   ? (int)la
                       : ib < 0 ? (int)lb
                                : (int)tmp->len,
                       ia < 0   ? a
                       : ib < 0 ? b
                                : tmp->p);
    tok_mergemap_put(&t->merges, ia, ib, rank, ic);
    return CLLM_OK;
}

static cllm_status load_merges_json(tokenizer *t, const json_t *merges, const char *path) {
    if (!merges || json_is_null(merges)) return tok_mergemap_init(&t->merges, 0);
    if (!json_is_array(merges))
        return err_set(CLLM_ERR_FORMAT, "%s: merges must be an array", path);
    size_t n = json_array_size(merges);
    cllm_status st = tok_mergemap_init(&t->merges, n);
    strbuf tmp = {0};
    for (size_t i = 0; i < n && st == CLLM_OK; i++) {
        const json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) { /* legacy "a b" */
            const char *s = json_string_value(m), *sp = memchr(s, ' ', json_string_length(m));
            if (!sp) {
                st = err_set(CLLM_ERR_FORMAT, "%s: merges entry %zu is not a pair", path, i);
                break;
            }
            st = add_merge(t, &tmp, s, (size_t)(sp - s), sp + 1,
                           json_string_length(m) - (size_t)(sp - s) - 1, (uint32_t)i, path);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            const json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            st = add_merge(t, &tmp, json_string_value(a), json_string_length(a),
                           json_string_value(b), json_string_length(b), (uint32_t)i, path);
        } else {
            st = err_set(CLLM_ERR_FORMAT, "%s: merges entry %zu is not a pair", path, i);
        }
    }
    sb_free(&tmp);
    return st;
}

static cllm_status load_model(tokenizer *t, const json_t *model, const char *path) {
    if (!json_is_object(model))
        return err_set(CLLM_ERR_FORMAT, "%s: 'model' must be an object", path);
    const json_t *type = json_object_get(model, "type");
    if (type && !json_is_null(type) &&
        (!json_is_string(type) || strcmp(json_string_value(type), "BPE")))
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: unsupported model type %s (only BPE)", path,
                       json_is_string(type) ? json_string_value(type) : "(not a string)");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(model, affixes[i]);
        if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 0))
            return err_set(CLLM_ERR_UNSUPPORTED, "%s: BPE %s is not supported", path, affixes[i]);
    }
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) &&
        !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    cllm_status st;
    if ((st = tok_json_bool(model, "byte_fallback", false, &t->byte_fallback, path, "model")) !=
            CLLM_OK ||
        (st = tok_json_bool(model, "fuse_unk", false, &t->fuse_unk, path, "model")) != CLLM_OK ||
        (st = tok_json_bool(model, "ignore_merges", false, &t->ignore_merges, path, "model")) !=
            CLLM_OK ||
        (st = load_vocab(t, json_object_get(model, "vocab"), path)) != CLLM_OK ||
        (st = load_merges_json(t, json_object_get(model, "merges"), path)) != CLLM_OK)
        return st;
    const json_t *unk = json_object_get(model, "unk_token");
    if (unk && !json_is_null(unk)) {
        if (!json_is_string(unk))
            return err_set(CLLM_ERR_FORMAT, "%s: unk_token must be a string", path);
        t->unk_id = tok_strmap_get(&t->vocab, json_string_value(unk), json_string_length(unk));
    }
    return CLLM_OK;
}

cllm_status tok_add_added(tokenizer *t, const char *content, size_t len, int32_t id, bool special,
                          bool lstrip, bool rstrip, bool single_word, bool normalized) {
    for (size_t i = 0; i < t->n_added; i++) /* a repeated id (config over file) updates it */
        if (t->added[i].id == id) {
            free(t->added[i].content);
            t->added[i].content = NULL;
            memmove(&t->added[i], &t->added[i + 1], (t->n_added - i - 1) * sizeof *t->added);
            t->n_added--;
            break;
        }
    tok_added *a = realloc(t->added, (t->n_added + 1) * sizeof *a);
    if (!a) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    t->added = a;
    char *c = malloc(len + 1);
    if (!c) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(c, content, len);
    c[len] = 0;
    t->added[t->n_added++] =
        (tok_added){c, len, id, special, lstrip, rstrip, single_word, normalized};
    return CLLM_OK;
}

/* One added-token object ({"id":..,"content":..,flags}); the id may come from outside (config). */
cllm_status tok_parse_added_obj(tokenizer *t, const json_t *o, int32_t id, const char *path) {
    const char *content;
    size_t len;
    bool special, lstrip, rstrip, single_word, normalized;
    cllm_status st;
    if (!json_is_object(o))
        return err_set(CLLM_ERR_FORMAT, "%s: added token must be an object", path);
    if (id < 0 && (st = json_id(json_object_get(o, "id"), path, "added token", &id)) != CLLM_OK)
        return st;
    if ((st = tok_json_string(o, "content", NULL, &content, &len, path, "added token")) !=
            CLLM_OK ||
        (st = tok_json_bool(o, "special", false, &special, path, "added token")) != CLLM_OK ||
        (st = tok_json_bool(o, "lstrip", false, &lstrip, path, "added token")) != CLLM_OK ||
        (st = tok_json_bool(o, "rstrip", false, &rstrip, path, "added token")) != CLLM_OK ||
        (st = tok_json_bool(o, "single_word", false, &single_word, path, "added token")) !=
            CLLM_OK ||
        (st = tok_json_bool(o, "normalized", !special, &normalized, path, "added token")) !=
            CLLM_OK)
        return st;
    return tok_add_added(t, content, len, id, special, lstrip, rstrip, single_word, normalized);
}

static cllm_status load_tokenizer_json(tokenizer *t, const char *path) {
    json_t *root;
    cllm_status st = load_json(path, 0, &root);
    if (st != CLLM_OK) return st;
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(CLLM_ERR_FORMAT, "%s: top level must be an object", path);
    }
    st = load_model(t, json_object_get(root, "model"), path);
    const json_t *added = json_object_get(root, "added_tokens");
    if (st == CLLM_OK && added && !json_is_null(added)) {
        if (!json_is_array(added))
            st = err_set(CLLM_ERR_FORMAT, "%s: added_tokens must be an array", path);
        for (size_t i = 0; st == CLLM_OK && i < json_array_size(added); i++)
            st = tok_parse_added_obj(t, json_array_get(added, i), -1, path);
    }
    if (st == CLLM_OK)
        st = tok_norm_parse(json_object_get(root, "normalizer"), path, &t->normalizer);
    if (st == CLLM_OK)
        st = tok_pretok_parse(json_object_get(root, "pre_tokenizer"), path, &t->pretok);
    if (st == CLLM_OK) st = tok_dec_parse(json_object_get(root, "decoder"), path, &t->decoder);
    if (st == CLLM_OK) st = tok_finalize(t, path);
    if (st == CLLM_OK) st = tok_post_parse(t, json_object_get(root, "post_processor"), path);
    json_decref(root);
    return st;
}

/* merges.txt: "a b" per line, an optional "#version" line; rank = index among merge lines. */
static cllm_status load_merges_txt(tokenizer *t, const char *path) {
    char *buf;
    size_t len;
    cllm_status st = file_read_all(path, MAX_JSON_SIZE, &buf, &len);
    if (st != CLLM_OK) return st;
    if (!tok_utf8_valid(buf, len)) {
        free(buf);
        return err_set(CLLM_ERR_FORMAT, "%s: not valid UTF-8", path);
    }
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    st = tok_mergemap_init(&t->merges, lines);
    strbuf tmp = {0};
    uint32_t rank = 0;
    size_t lineno = 0;
    for (size_t p = 0; p < len && st == CLLM_OK;) {
        const char *line = buf + p, *nl = memchr(line, '\n', len - p);
        size_t ll = nl ? (size_t)(nl - line) : len - p;
        p += ll + 1;
        lineno++;
        if (ll && line[ll - 1] == '\r') ll--;
        if (ll == 0 || (ll >= 8 && !memcmp(line, "#version", 8))) continue;
        const char *sp = memchr(line, ' ', ll);
        if (!sp || memchr(sp + 1, ' ', ll - (size_t)(sp - line) - 1)) {
            st = err_set(CLLM_ERR_FORMAT, "%s: line %zu is not a pair \"a b\"", path, lineno);
            break;
        }
        st = add_merge(t, &tmp, line, (size_t)(sp - line), sp + 1, ll - (size_t)(sp - line) - 1,
                       rank++, path);
    }
    sb_free(&tmp);
    free(buf);
    return st;
}

static bool is_qwen2_class(const json_t *cfg) {
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    return cls && (!strcmp(cls, "Qwen2Tokenizer") || !strcmp(cls, "Qwen2TokenizerFast"));
}

/* Build what transformers' GPT-2 / Qwen2 converters would put in tokenizer.json. */
static cllm_status load_vocab_merges(tokenizer *t, const char *vocab_path, const char *merges_path,
                                     const json_t *cfg, const char *cfg_path) {
    json_t *vocab;
    cllm_status st = load_json(vocab_path, 0, &vocab);
    if (st != CLLM_OK) return st;
    st = load_vocab(t, vocab, vocab_path);
    json_decref(vocab);
    if (st == CLLM_OK) st = load_merges_txt(t, merges_path);
    if (st != CLLM_OK) return st;
    bool qwen2 = cfg && is_qwen2_class(cfg);
    if (qwen2) {
        json_t *nfc = json_pack("{s:s}", "type", "NFC");
        st = nfc ? tok_norm_parse(nfc, vocab_path, &t->normalizer)
                 : err_set(CLLM_ERR_NOMEM, "out of memory");
        json_decref(nfc);
    }
    if (st == CLLM_OK) st = tok_pretok_bytelevel(qwen2, &t->pretok);
    if (st == CLLM_OK) st = tok_dec_bytelevel(&t->decoder);
    int32_t eot = tok_strmap_get(&t->vocab, "<|endoftext|>", 13);
    if (st == CLLM_OK && eot >= 0)
        st = tok_add_added(t, "<|endoftext|>", 13, eot, true, false, false, false, false);
    if (st == CLLM_OK && cfg) st = tok_config_added(t, cfg, cfg_path);
    if (st == CLLM_OK) st = tok_finalize(t, vocab_path);
    if (st == CLLM_OK && !cfg && eot >= 0) t->bos_id = t->eos_id = eot;
    return st;
}

cllm_status tok_load_files(const char *tokenizer_json, const char *vocab_json,
                           const char *merges_txt, const char *tokenizer_config_json,
                           tokenizer **out) {
    if (!out) return err_set(CLLM_ERR_INVALID_ARG, "tok_load_files: out is NULL");
    *out = NULL;
    if (!tokenizer_json && (!vocab_json || !merges_txt))
        return err_set(CLLM_ERR_INVALID_ARG,
                       "tok_load_files: need tokenizer.json or vocab.json + merges.txt");
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    t->unk_id = t->bos_id = t->eos_id = -1;
    json_t *cfg = NULL;
    cllm_status st = CLLM_OK;
    if (tokenizer_config_json) {
        /* Configs carry values like model_max_length = 1e30 written as an integer; nothing we
         * read from them is a number, so decode numbers as reals instead of failing. */
        st = load_json(tokenizer_config_json, JSON_DECODE_INT_AS_REAL, &cfg);
        if (st == CLLM_OK && !json_is_object(cfg))
            st = err_set(CLLM_ERR_FORMAT, "%s: top level must be an object", tokenizer_config_json);
    }
    if (st == CLLM_OK) {
        if (tokenizer_json)
            st = load_tokenizer_json(t, tokenizer_json);
        else
            st = load_vocab_merges(t, vocab_json, merges_txt, cfg, tokenizer_config_json);
    }
    if (st == CLLM_OK) st = tok_config_apply(t, cfg, tokenizer_config_json);
    json_decref(cfg);
    if (st != CLLM_OK) {
        tok_free(t);
        return st;
    }
    *out = t;
    return CLLM_OK;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

cllm_status tok_load_dir(const char *dir, tokenizer **out) {
    if (!dir || !out) return err_set(CLLM_ERR_INVALID_ARG, "tok_load_dir: NULL argument");
    *out = NULL;
    char *tj = join(dir, "tokenizer.json"), *vj = join(dir, "vocab.json"),
         *mt = join(dir, "merges.txt"), *cf = join(dir, "tokenizer_config.json");
    cllm_status st;
    if (!tj || !vj || !mt || !cf) {
        st = err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    } else {
        const char *cfg = file_exists(cf) ? cf : NULL;
        if (file_exists(tj))
            st = tok_load_files(tj, NULL, NULL, cfg, out);
        else if (file_exists(vj) && file_exists(mt))
            st = tok_load_files(NULL, vj, mt, cfg, out);
        else
            st = err_set(CLLM_ERR_NOT_FOUND, "%s: no tokenizer.json and no vocab.json + merges.txt",
                         dir);
    }
    free(tj);
    free(vj);
    free(mt);
    free(cf);
    return st;
}
