/* chat_prompt.c - conversation files and template rendering with transformers' context. */
#include "chat/chat_prompt.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

cllm_status chat_prompt_load(const char *dir, chat_prompt *out) {
    memset(out, 0, sizeof *out);
    cllm_status st = chat_load_dir(dir, &out->tmpl, &out->bos, &out->eos);
    if (st) chat_prompt_free(out);
    return st;
}

void chat_prompt_free(chat_prompt *p) {
    if (!p) return;
    chat_template_free(p->tmpl);
    free(p->bos);
    free(p->eos);
    memset(p, 0, sizeof *p);
}

cllm_status chat_prompt_render(const chat_prompt *p, const json_t *messages, const json_t *tools,
                               bool add_generation_prompt, char **out, size_t *len) {
    /* transformers passes tools/documents as None when absent, and the special-token strings */
    json_t *ctx = json_object();
    if (!ctx) return err_set(CLLM_ERR_NOMEM, "out of memory");
    json_object_set(ctx, "messages", (json_t *)messages);
    json_object_set_new(ctx, "tools", tools ? json_incref((json_t *)tools) : json_null());
    json_object_set_new(ctx, "documents", json_null());
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    if (p->bos) json_object_set_new(ctx, "bos_token", json_string(p->bos));
    if (p->eos) json_object_set_new(ctx, "eos_token", json_string(p->eos));
    cllm_status st = chat_template_render(p->tmpl, ctx, out, len);
    json_decref(ctx);
    return st;
}

cllm_status chat_conversation_load(const char *path, json_t **messages, json_t **tools) {
    *messages = *tools = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!root)
        return err_set(CLLM_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", path, je.text, je.line);
    json_t *msgs = json_is_array(root) ? root : json_object_get(root, "messages");
    json_t *tl = json_is_object(root) ? json_object_get(root, "tools") : NULL;
    cllm_status st = CLLM_OK;
    if (!json_is_array(msgs)) {
        st = err_set(CLLM_ERR_FORMAT, "%s: expected {\"messages\": [...]} or an array of messages",
                     path);
    } else if (tl && !json_is_null(tl) && !json_is_array(tl)) {
        st = err_set(CLLM_ERR_FORMAT, "%s: \"tools\" must be an array", path);
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
                st = err_set(CLLM_ERR_FORMAT, "%s: message %zu needs a string \"role\"", path, i);
                break;
            }
        }
    }
    if (!st) {
        *messages = json_incref(msgs);
        *tools = tl && json_is_array(tl) ? json_incref(tl) : NULL;
    }
    json_decref(root);
    return st;
}
