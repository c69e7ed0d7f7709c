/* chat_prompt_gguf.c - a chat prompt from a template string, and from a GGUF file's
 * tokenizer.chat_template with the bos/eos token strings of tokenizer.ggml.*. */
#include "base/error.h"
#include "chat/chat_prompt.h"
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cllm_status chat_prompt_from_string(const char *src, size_t len, const char *bos, const char *eos,
                                    chat_prompt *out) {
    memset(out, 0, sizeof *out);
    cllm_status st = chat_template_parse(src, len, &out->tmpl);
    if (!st && bos && !(out->bos = strdup(bos))) st = err_set(CLLM_ERR_NOMEM, "out of memory");
    if (!st && eos && !(out->eos = strdup(eos))) st = err_set(CLLM_ERR_NOMEM, "out of memory");
    if (st) chat_prompt_free(out);
    return st;
}

/* The text of token tokenizer.ggml.<which>_token_id (malloc'd), or NULL. */
static char *token_text(const gguf_file *f, const char *which) {
    char key[64];
    snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", which);
    uint32_t id;
    gguf_arr toks;
    if (gguf_find(f, key) < 0 || gguf_get_u32(f, key, &id) ||
        gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks) || id >= toks.n)
        return NULL;
    gguf_str s = gguf_arr_str(&toks, id);
    return strndup(s.p, s.len);
}

cllm_status chat_prompt_load_gguf(const char *path, chat_prompt *out) {
    memset(out, 0, sizeof *out);
    gguf_file *f;
    cllm_status st = gguf_open(path, &f);
    if (st) return st;
    gguf_str t;
    if (gguf_find(f, "tokenizer.chat_template") < 0) {
        st = err_set(CLLM_ERR_NOT_FOUND, "%s: no tokenizer.chat_template", path);
    } else if (!(st = gguf_get_str(f, "tokenizer.chat_template", &t))) {
        char *bos = token_text(f, "bos"), *eos = token_text(f, "eos");
        st = chat_prompt_from_string(t.p, t.len, bos, eos, out);
        if (st) err_prefix("%s: tokenizer.chat_template", path);
        free(bos);
        free(eos);
    }
    gguf_close(f);
    return st;
}
