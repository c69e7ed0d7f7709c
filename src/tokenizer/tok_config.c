/* tok_config.c - the id tables built after loading, the post-processor (flattened to ids before
 * and after the sequence) and tokenizer_config.json (bos/eos, add_bos_token, added tokens). */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

cllm_status tok_finalize(tokenizer *t, const char *path) {
    int32_t max_id = -1;
    for (size_t i = 0; i < t->vocab.n; i++)
        if (t->vocab.e[i].val > max_id) max_id = t->vocab.e[i].val;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    t->n_ids = max_id + 1;
    size_t n = (size_t)t->n_ids;
    t->pieces = calloc(n, sizeof *t->pieces);
    t->piece_lens = calloc(n, sizeof *t->piece_lens);
    t->is_special = calloc(n, 1);
    size_t *off = malloc(n * sizeof *off);
    t->small_cp_id = malloc(TOK_SMALL_CP * sizeof *t->small_cp_id);
    if (!t->pieces || !t->piece_lens || !t->is_special || !off || !t->small_cp_id) {
        free(off);
        return err_set(CLLM_ERR_NOMEM, "%s: out of memory for %zu ids", path, n);
    }
    for (size_t i = 0; i < n; i++)
        off[i] = SIZE_MAX;
    for (int i = 0; i < TOK_SMALL_CP; i++)
        t->small_cp_id[i] = -1;
    cllm_status st = CLLM_OK;
    /* Added tokens first: their content is what HF's id_to_token returns for that id. */
    for (size_t i = 0; i < t->n_added && st == CLLM_OK; i++) {
        const tok_added *a = &t->added[i];
        off[a->id] = t->piece_pool.len;
        t->piece_lens[a->id] = (uint32_t)a->len;
        t->is_special[a->id] = a->special;
        st = sb_append(&t->piece_pool, a->content, a->len + 1);
        if (st == CLLM_OK) st = tok_strmap_put(&t->added_map, a->content, a->len, a->id);
    }
    for (size_t i = 0; i < t->vocab.n && st == CLLM_OK; i++) {
        const struct tok_strmap_entry *e = &t->vocab.e[i];
        const char *key = t->vocab.keys.p + e->off;
        if (e->len && e->len <= 2) {
            uint32_t cp;
            if (tok_utf8_decode(key, &cp) == e->len && cp < TOK_SMALL_CP)
                t->small_cp_id[cp] = e->val;
        }
        if (off[e->val] != SIZE_MAX) continue;
        off[e->val] = t->piece_pool.len;
        t->piece_lens[e->val] = e->len;
        st = sb_append(&t->piece_pool, key, e->len);
        if (st == CLLM_OK) st = sb_append(&t->piece_pool, "", 1);
    }
    for (size_t i = 0; i < n && st == CLLM_OK; i++)
        if (off[i] != SIZE_MAX) t->pieces[i] = t->piece_pool.p + off[i];
    free(off);
    for (int b = 0; b < 256; b++) {
        char name[8];
        static const char hex[] = "0123456789ABCDEF";
        memcpy(name, "<0x", 3);
        name[3] = hex[b >> 4];
        name[4] = hex[b & 15];
        name[5] = '>';
        t->byte_ids[b] = tok_strmap_get(&t->vocab, name, 6);
    }
    if (st == CLLM_OK) st = tok_matcher_build(&t->raw_matcher, t->added, t->n_added, false, NULL);
    if (st == CLLM_OK)
        st = tok_matcher_build(&t->norm_matcher, t->added, t->n_added, true, t->normalizer);
    return st;
}

/* ---- post-processor ---- */

static cllm_status check_id(const tokenizer *t, const json_t *v, const char *path, int32_t *id) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= t->n_ids)
        return err_set(CLLM_ERR_FORMAT, "%s: post_processor: token id out of range [0, %d)", path,
                       t->n_ids);
    *id = (int32_t)json_integer_value(v);
    return CLLM_OK;
}

static cllm_status template_single(const tokenizer *t, const json_t *j, const char *path,
                                   tok_ids *pre, tok_ids *post) {
    const json_t *single = json_object_get(j, "single"),
                 *specials = json_object_get(j, "special_tokens");
    if (!json_is_array(single))
        return err_set(CLLM_ERR_FORMAT, "%s: TemplateProcessing: 'single' must be an array", path);
    bool seen_a = false;
    cllm_status st = CLLM_OK;
    for (size_t i = 0; i < json_array_size(single) && st == CLLM_OK; i++) {
        const json_t *it = json_array_get(single, i), *sp = json_object_get(it, "SpecialToken"),
                     *seq = json_object_get(it, "Sequence");
        if (json_is_object(seq)) {
            const char *name = json_string_value(json_object_get(seq, "id"));
            if (!name || strcmp(name, "A") || seen_a)
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "%s: TemplateProcessing: single template must use sequence A once",
                               path);
            seen_a = true;
        } else if (json_is_object(sp)) {
            const char *name = json_string_value(json_object_get(sp, "id"));
            const json_t *tokd = name ? json_object_get(specials, name) : NULL;
            const json_t *ids = json_object_get(tokd, "ids");
            if (!json_is_array(ids))
                return err_set(CLLM_ERR_FORMAT,
                               "%s: TemplateProcessing: special token '%s' has no 'ids'", path,
                               name ? name : "(null)");
            for (size_t k = 0; k < json_array_size(ids) && st == CLLM_OK; k++) {
                int32_t id;
                st = check_id(t, json_array_get(ids, k), path, &id);
                if (st == CLLM_OK) st = tok_ids_push(seen_a ? post : pre, id);
            }
        } else {
            return err_set(CLLM_ERR_FORMAT, "%s: TemplateProcessing: bad template item %zu", path,
                           i);
        }
    }
    if (st == CLLM_OK && !seen_a)
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: TemplateProcessing: single template lacks sequence A", path);
    return st;
}

/* ["<s>", 0] as used by BertProcessing / RobertaProcessing. */
static cllm_status pair_id(const tokenizer *t, const json_t *j, const char *key, const char *path,
                           int32_t *id) {
    const json_t *p = json_object_get(j, key);
    if (!json_is_array(p) || json_array_size(p) != 2)
        return err_set(CLLM_ERR_FORMAT, "%s: post_processor: '%s' must be [token, id]", path, key);
    return check_id(t, json_array_get(p, 1), path, id);
}

static cllm_status post_one(const tokenizer *t, const json_t *j, const char *path, tok_ids *pre,
                            tok_ids *post) {
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type)
        return err_set(CLLM_ERR_FORMAT, "%s: post_processor must be an object with a \"type\"",
                       path);
    if (!strcmp(type, "ByteLevel")) return CLLM_OK; /* only adjusts offsets */
    if (!strcmp(type, "TemplateProcessing")) return template_single(t, j, path, pre, post);
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        int32_t cls, sep;
        cllm_status st = pair_id(t, j, "cls", path, &cls);
        if (st == CLLM_OK) st = pair_id(t, j, "sep", path, &sep);
        if (st == CLLM_OK) st = tok_ids_push(pre, cls);
        if (st == CLLM_OK) st = tok_ids_push(post, sep);
        return st;
    }
    if (!strcmp(type, "Sequence")) {
        const json_t *arr = json_object_get(j, "processors");
        if (!json_is_array(arr))
            return err_set(CLLM_ERR_FORMAT,
                           "%s: Sequence post_processor needs a 'processors' array", path);
        cllm_status st = CLLM_OK;
        /* Each processor wraps the result of the previous ones. */
        for (size_t i = 0; i < json_array_size(arr) && st == CLLM_OK; i++) {
            tok_ids p2 = {0}, q2 = {0};
            st = post_one(t, json_array_get(arr, i), path, &p2, &q2);
            if (st == CLLM_OK) st = tok_ids_append(&p2, pre->p, pre->len);
            if (st == CLLM_OK) st = tok_ids_append(post, q2.p, q2.len);
            if (st == CLLM_OK) {
                tok_ids_free(pre);
                *pre = p2;
                p2 = (tok_ids){0};
            }
            tok_ids_free(&p2);
            tok_ids_free(&q2);
        }
        return st;
    }
    return err_set(CLLM_ERR_UNSUPPORTED, "%s: unsupported post_processor %s", path, type);
}

cllm_status tok_post_parse(tokenizer *t, const json_t *j, const char *path) {
    if (!j || json_is_null(j)) return CLLM_OK;
    t->has_post = true;
    return post_one(t, j, path, &t->post_pre, &t->post_post);
}

/* ---- tokenizer_config.json ---- */

cllm_status tok_config_added(tokenizer *t, const json_t *cfg, const char *path) {
    const json_t *atd = json_object_get(cfg, "added_tokens_decoder");
    if (!atd || json_is_null(atd)) return CLLM_OK;
    if (!json_is_object(atd))
        return err_set(CLLM_ERR_FORMAT, "%s: added_tokens_decoder must be an object", path);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)atd, key, v) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || id >= TOK_MAX_ID)
            return err_set(CLLM_ERR_FORMAT,
                           "%s: added_tokens_decoder key '%.40s' is not a token id", path, key);
        cllm_status st = tok_parse_added_obj(t, v, (int32_t)id, path);
        if (st != CLLM_OK) return st;
    }
    return CLLM_OK;
}

/* bos_token / eos_token: a string, {"content": ...}, or null. *present: the key exists. */
static cllm_status config_token(const tokenizer *t, const json_t *cfg, const char *key,
                                const char *path, bool *present, int32_t *id) {
    const json_t *v = json_object_get(cfg, key);
    *present = v != NULL;
    *id = -1;
    if (!v || json_is_null(v)) return CLLM_OK;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return err_set(CLLM_ERR_FORMAT, "%s: '%s' must be a string or {\"content\": string}", path,
                       key);
    *id = tok_piece_to_id(t, json_string_value(v));
    return CLLM_OK;
}

static bool is_llama_class(const json_t *cfg) {
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    return cls && (!strncmp(cls, "LlamaTokenizer", 14) || !strncmp(cls, "CodeLlamaTokenizer", 18) ||
                   !strncmp(cls, "GemmaTokenizer", 14));
}

cllm_status tok_config_apply(tokenizer *t, const json_t *cfg, const char *path) {
    bool has_bos = false, has_eos = false;
    cllm_status st = CLLM_OK;
    if (cfg) {
        int32_t bos, eos;
        if ((st = config_token(t, cfg, "bos_token", path, &has_bos, &bos)) != CLLM_OK ||
            (st = config_token(t, cfg, "eos_token", path, &has_eos, &eos)) != CLLM_OK)
            return st;
        if (has_bos) t->bos_id = bos;
        if (has_eos) t->eos_id = eos;
        bool add_bos, add_eos;
        const json_t *ab = json_object_get(cfg, "add_bos_token"),
                     *ae = json_object_get(cfg, "add_eos_token");
        if ((st = tok_json_bool(cfg, "add_bos_token", false, &add_bos, path, "tokenizer_config")) !=
                CLLM_OK ||
            (st = tok_json_bool(cfg, "add_eos_token", false, &add_eos, path, "tokenizer_config")) !=
                CLLM_OK)
            return st;
        /* transformers' LlamaTokenizerFast rebuilds its post-processor from these flags; other
         * classes only rely on them when tokenizer.json has no post-processor (legacy files). */
        if ((ab || ae) && (!t->has_post || is_llama_class(cfg))) {
            t->post_pre.len = t->post_post.len = 0;
            if (add_bos && t->bos_id >= 0) st = tok_ids_push(&t->post_pre, t->bos_id);
            if (st == CLLM_OK && add_eos && t->eos_id >= 0)
                st = tok_ids_push(&t->post_post, t->eos_id);
        }
    }
    if (!has_bos && t->bos_id < 0 && t->post_pre.len) t->bos_id = t->post_pre.p[0];
    if (!has_eos && t->eos_id < 0 && t->post_post.len)
        t->eos_id = t->post_post.p[t->post_post.len - 1];
    return st;
}
