/* chat_load.c - finds a model folder's chat template and bos/eos tokens in tokenizer_config.json.
 */
#include "base/mapfile.h"
#include "chat/chat_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bos_token / eos_token are either a string or an AddedToken object {"content": ...}. */
static char *token_string(json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

cllm_status chat_load_dir(const char *dir, chat_template **out, char **bos, char **eos) {
    if (out) *out = NULL;
    if (bos) *bos = NULL;
    if (eos) *eos = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (!file_exists(path))
        return err_set(CLLM_ERR_NOT_FOUND, "%s: no tokenizer_config.json (no chat template)", dir);
    char *text;
    size_t len;
    cllm_status st = file_read_all(path, (size_t)256 << 20, &text, &len);
    if (st) return st;
    json_error_t je;
    /* model_max_length is often 1e30 written as an integer, too big for jansson's int64 */
    json_t *cfg = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &je);
    free(text);
    if (!cfg) return err_set(CLLM_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    if (bos) *bos = token_string(cfg, "bos_token");
    if (eos) *eos = token_string(cfg, "eos_token");
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_array(t)) { /* [{"name": "default", "template": "..."}, {"name": "tool_use"...}] */
        json_t *pick = NULL, *item;
        size_t i;
        json_array_foreach(t, i, item) {
            const char *name = json_string_value(json_object_get(item, "name"));
            if (name && !strcmp(name, "default")) pick = json_object_get(item, "template");
        }
        t = pick;
    }
    if (!json_is_string(t)) {
        json_decref(cfg);
        return err_set(CLLM_ERR_NOT_FOUND, "%s: no chat_template", path);
    }
    st = out ? chat_template_parse(json_string_value(t), json_string_length(t), out) : CLLM_OK;
    if (st) {
        err_prefix("%s", path);
        json_decref(cfg);
        return st;
    }
    json_decref(cfg);
    return CLLM_OK;
}
