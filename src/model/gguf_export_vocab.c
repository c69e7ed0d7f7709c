/* gguf_export_vocab.c - a Hugging Face tokenizer.json (+ tokenizer_config.json) as llama.cpp's
 * tokenizer.ggml.* keys: "llama" (SentencePiece-style BPE with byte fallback: tokens, scores,
 * token types) or "gpt2" (byte-level BPE: tokens, token types, merges, a pre-tokenizer name
 * guessed from the split regex). SentencePiece scores are not in tokenizer.json; the score of a
 * token is minus the rank of the first merge producing it, which makes llama.cpp's
 * highest-score-first merging pick the same merges as the BPE ranks. */
#include "base/error.h"
#include "base/mapfile.h"
#include "model/gguf_export.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6
};

typedef struct vocab {
    const char **text; /* by id; NULL = hole */
    int *type;
    float *score;
    int n;
} vocab;

static bool is_byte_token(const char *s) {
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>';
}

/* The merge "a b" or ["a", "b"] as two strings. */
static bool merge_parts(json_t *e, const char **a, size_t *la, const char **b, size_t *lb,
                        char *buf, size_t cap) {
    if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
        json_is_string(json_array_get(e, 1))) {
        *a = json_string_value(json_array_get(e, 0));
        *la = json_string_length(json_array_get(e, 0));
        *b = json_string_value(json_array_get(e, 1));
        *lb = json_string_length(json_array_get(e, 1));
        return true;
    }
    if (!json_is_string(e)) return false;
    const char *s = json_string_value(e);
    size_t n = json_string_length(e);
    const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
    if (!sp || n >= cap) return false;
    memcpy(buf, s, n);
    *a = buf;
    *la = (size_t)(sp - s);
    *b = buf + *la + 1;
    *lb = n - *la - 1;
    return true;
}

/* tokenizer.ggml.pre for a byte-level BPE tokenizer, from its split regex. */
static const char *guess_pre(json_t *tok) {
    char *s = json_dumps(json_object_get(tok, "pre_tokenizer"), JSON_COMPACT);
    const char *pre = "gpt-2";
    if (!s) return pre;
    if (strstr(s, "(?i:'s|'t|'re|'ve|'m|'ll|'d)")) {
        if (strstr(s, "\\\\p{N}{1,3}"))
            pre = "llama-bpe";
        else
            pre = "qwen2";
    } else if (strstr(s, "\"Digits\"")) {
        pre = "smollm";
    }
    free(s);
    return pre;
}

static json_t *load_json(const char *dir, const char *name, bool required, cllm_status *st) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *st = CLLM_OK;
    if (!file_exists(path)) {
        if (required) *st = err_set(CLLM_ERR_NOT_FOUND, "%s: not found", path);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        *st = err_set(CLLM_ERR_FORMAT, "%s: not a JSON object (%s)", path, je.text);
    }
    return j;
}

static int token_id(const vocab *v, json_t *s) {
    if (!json_is_string(s)) {
        json_t *c = json_object_get(s, "content"); /* {"content": "<s>", ...} form */
        if (!json_is_string(c)) return -1;
        s = c;
    }
    for (int i = 0; i < v->n; i++)
        if (v->text[i] && !strcmp(v->text[i], json_string_value(s))) return i;
    return -1;
}

static cllm_status fill(json_t *tok, const model_config *c, bool spm, vocab *v, const char *dir) {
    json_t *model = json_object_get(tok, "model"), *vj = json_object_get(model, "vocab");
    json_t *added = json_object_get(tok, "added_tokens");
    const char *key;
    json_t *val;
    int n = c->vocab;
    json_object_foreach(vj, key, val) {
        if (json_is_number(val) && json_number_value(val) + 1 > n)
            n = (int)json_number_value(val) + 1;
    }
    size_t i;
    json_array_foreach(added, i, val) {
        json_t *id = json_object_get(val, "id");
        if (json_is_number(id) && json_number_value(id) + 1 > n) n = (int)json_number_value(id) + 1;
    }
    if (n > (1 << 24))
        return err_set(CLLM_ERR_FORMAT, "%s: tokenizer.json: vocabulary too big", dir);
    v->n = n;
    v->text = calloc((size_t)n, sizeof *v->text);
    v->type = calloc((size_t)n, sizeof *v->type);
    v->score = calloc((size_t)n, sizeof *v->score);
    if (!v->text || !v->type || !v->score) return err_set(CLLM_ERR_NOMEM, "out of memory");
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    json_object_foreach(vj, key, val) {
        if (!json_is_number(val) || json_number_value(val) < 0) continue;
        int id = (int)json_number_value(val);
        v->text[id] = key;
        v->type[id] = unk && !strcmp(key, unk)    ? TT_UNKNOWN
                      : spm && is_byte_token(key) ? TT_BYTE
                                                  : TT_NORMAL;
        v->score[id] = -1e9f;
    }
    json_array_foreach(added, i, val) {
        json_t *id = json_object_get(val, "id"), *ct = json_object_get(val, "content");
        if (!json_is_number(id) || !json_is_string(ct) || json_number_value(id) < 0) continue;
        int k = (int)json_number_value(id);
        v->text[k] = json_string_value(ct);
        if (v->type[k] != TT_UNKNOWN)
            v->type[k] =
                json_is_true(json_object_get(val, "special")) ? TT_CONTROL : TT_USER_DEFINED;
        v->score[k] = 0;
    }
    if (!spm) return CLLM_OK;
    /* score = -(rank of the first merge that produces the token) */
    json_t *merges = json_object_get(model, "merges");
    char buf[1024], cat[1024];
    json_array_foreach(merges, i, val) {
        const char *a, *b;
        size_t la, lb;
        if (!merge_parts(val, &a, &la, &b, &lb, buf, sizeof buf) || la + lb >= sizeof cat) continue;
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        cat[la + lb] = 0;
        json_t *id = json_object_get(vj, cat);
        if (!json_is_number(id)) continue;
        int k = (int)json_number_value(id);
        if (k >= 0 && k < n && v->score[k] == -1e9f) v->score[k] = -(float)i;
    }
    return CLLM_OK;
}

/* vocab.json + merges.txt (+ tokenizer_config.json's added_tokens_decoder) in tokenizer.json's
 * shape, so the rest of the code reads one form. NULL (st NOT_FOUND) when the files are absent. */
static json_t *tok_from_files(const char *dir, json_t *cfg, cllm_status *st) {
    json_t *vocab = load_json(dir, "vocab.json", true, st);
    if (!vocab) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    char *text = NULL;
    size_t len = 0;
    if ((*st = file_read_all(path, (size_t)1 << 30, &text, &len))) {
        json_decref(vocab);
        return NULL;
    }
    json_t *merges = json_array(), *added = json_array();
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[--n] = 0;
        if (n && strncmp(line, "#version", 8)) json_array_append_new(merges, json_string(line));
    }
    free(text);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(cfg, "added_tokens_decoder"), key, v) {
        json_t *t = json_object();
        json_object_set_new(t, "id", json_real(atof(key)));
        json_object_set(t, "content", json_object_get(v, "content"));
        json_object_set(t, "special", json_object_get(v, "special"));
        json_array_append_new(added, t);
    }
    json_t *model = json_pack("{s:s, s:o, s:o}", "type", "BPE", "vocab", vocab, "merges", merges);
    return json_pack("{s:o, s:o}", "model", model, "added_tokens", added);
}

cllm_status gx_write_vocab_hf(const char *dir, const model_config *c, gguf_writer *w) {
    cllm_status st;
    json_t *cfg = load_json(dir, "tokenizer_config.json", false, &st);
    if (st) return st;
    json_t *tok = load_json(dir, "tokenizer.json", true, &st);
    bool from_files = !tok && st == CLLM_ERR_NOT_FOUND;
    if (from_files) tok = tok_from_files(dir, cfg, &st);
    if (!tok) {
        json_decref(cfg);
        return st;
    }
    vocab v = {0};
    json_t *model = json_object_get(tok, "model");
    const char *mt = json_string_value(json_object_get(model, "type"));
    bool spm = json_is_true(json_object_get(model, "byte_fallback"));
    if (!mt || strcmp(mt, "BPE")) {
        st = err_set(CLLM_ERR_UNSUPPORTED,
                     "%s/tokenizer.json: model type '%s' cannot be written "
                     "to GGUF (BPE only)",
                     dir, mt ? mt : "?");
        goto done;
    }
    if ((st = fill(tok, c, spm, &v, dir))) goto done;
    for (int i = 0; i <= c->n_eos; i++) { /* BOS and EOS are control tokens (transformers too) */
        int id = i < c->n_eos ? c->eos_ids[i] : c->bos_id;
        if (id >= 0 && id < v.n && v.text[id] && v.type[id] == TT_NORMAL) v.type[id] = TT_CONTROL;
    }
    gguf_w_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2", spm ? 5 : 4);
    const char *pre = spm                     ? "default"
                      : !from_files           ? guess_pre(tok)
                      : c->arch == ARCH_QWEN2 ? "qwen2"
                                              : "gpt-2";
    gguf_w_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
    char pad[32];
    gguf_w_arr_begin(w, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, (uint64_t)v.n);
    for (int i = 0; i < v.n; i++) {
        const char *s = v.text[i];
        if (!s) snprintf(pad, sizeof pad, "[PAD%d]", i), s = pad;
        gguf_w_arr_str(w, s, strlen(s));
    }
    if (spm) {
        gguf_w_arr_begin(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, (uint64_t)v.n);
        for (int i = 0; i < v.n; i++)
            gguf_w_arr_f32(w, v.score[i]);
    }
    gguf_w_arr_begin(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, (uint64_t)v.n);
    for (int i = 0; i < v.n; i++)
        gguf_w_arr_i32(w, v.text[i] ? v.type[i] : TT_UNUSED);
    if (!spm) {
        json_t *merges = json_object_get(model, "merges"), *e;
        size_t i;
        gguf_w_arr_begin(w, "tokenizer.ggml.merges", GGUF_TYPE_STRING, json_array_size(merges));
        char buf[1024], out[1024];
        json_array_foreach(merges, i, e) {
            const char *a, *b;
            size_t la, lb;
            if (!merge_parts(e, &a, &la, &b, &lb, buf, sizeof buf) || la + lb + 1 >= sizeof out)
                la = lb = 0, a = b = "";
            snprintf(out, sizeof out, "%.*s %.*s", (int)la, a, (int)lb, b);
            gguf_w_arr_str(w, out, strlen(out));
        }
    }
    if (c->bos_id >= 0) gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    if (c->n_eos) gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_ids[0]);
    int id;
    if (cfg && (id = token_id(&v, json_object_get(cfg, "pad_token"))) >= 0)
        gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)id);
    if (spm && (id = token_id(&v, json_object_get(model, "unk_token"))) >= 0)
        gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)id);
    /* BOS: tokenizer_config.json's add_bos_token, else whether the post-processor adds one */
    json_t *ab = cfg ? json_object_get(cfg, "add_bos_token") : NULL;
    bool add_bos = json_is_boolean(ab) ? json_is_true(ab) : false;
    if (!json_is_boolean(ab)) {
        char *pp = json_dumps(json_object_get(tok, "post_processor"), JSON_COMPACT);
        add_bos = pp && strstr(pp, "\"SpecialToken\"") && c->bos_id >= 0;
        free(pp);
    }
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    gguf_w_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (spm) {
        char *nm = json_dumps(json_object_get(tok, "normalizer"), JSON_COMPACT);
        gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", nm && strstr(nm, "\"Prepend\""));
        free(nm);
    }
    json_t *ct = cfg ? json_object_get(cfg, "chat_template") : NULL;
    if (json_is_array(ct)) {
        json_t *item, *pick = NULL;
        size_t i;
        json_array_foreach(ct, i, item) {
            const char *name = json_string_value(json_object_get(item, "name"));
            if (name && !strcmp(name, "default")) pick = json_object_get(item, "template");
        }
        ct = pick;
    }
    if (json_is_string(ct))
        gguf_w_str(w, "tokenizer.chat_template", json_string_value(ct), json_string_length(ct));
done:
    free(v.text);
    free(v.type);
    free(v.score);
    json_decref(cfg);
    json_decref(tok);
    return st;
}
