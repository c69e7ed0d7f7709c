/* chat_prompt.h - turning a conversation into prompt text with a model's own chat template:
 * loading the template with its bos/eos strings, reading conversation files, rendering. */
#ifndef CLLM_CHAT_CHAT_PROMPT_H
#define CLLM_CHAT_CHAT_PROMPT_H

#include "chat/chat_template.h"
#include <stdbool.h>

typedef struct chat_prompt {
    chat_template *tmpl;
    char *bos, *eos; /* bos_token / eos_token strings from tokenizer_config.json, or NULL */
} chat_prompt;

/* From DIR/tokenizer_config.json; CLLM_ERR_NOT_FOUND when the model has no chat template. */
cllm_status chat_prompt_load(const char *dir, chat_prompt *out);
void chat_prompt_free(chat_prompt *p);

/* Render messages (a JSON array of {role, content, ...}) and optional tools (array or NULL) the
 * way transformers' apply_chat_template does. *out is malloc'd. */
cllm_status chat_prompt_render(const chat_prompt *p, const json_t *messages, const json_t *tools,
                               bool add_generation_prompt, char **out, size_t *len);

/* Read a conversation file: {"messages": [...], "tools": [...]} or a bare array of messages.
 * Each message must be an object with a string "role". New references in *messages / *tools
 * (tools may be NULL). */
cllm_status chat_conversation_load(const char *path, json_t **messages, json_t **tools);

#endif
