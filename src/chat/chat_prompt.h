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

/* From DIR/tokenizer_config.json (or, when DIR is a GGUF file, its tokenizer.chat_template);
 * CLLM_ERR_NOT_FOUND when the model has no chat template. */
cllm_status chat_prompt_load(const char *dir, chat_prompt *out);
/* From template source and optional bos/eos strings (chat_prompt_gguf.c). */
cllm_status chat_prompt_from_string(const char *src, size_t len, const char *bos, const char *eos,
                                    chat_prompt *out);
/* A GGUF file's tokenizer.chat_template, bos and eos token texts. */
cllm_status chat_prompt_load_gguf(const char *path, chat_prompt *out);
void chat_prompt_free(chat_prompt *p);

/* Render messages (a JSON array of {role, content, ...}) and optional tools (array or NULL) the
 * way transformers' apply_chat_template does. *out is malloc'd. */
cllm_status chat_prompt_render(const chat_prompt *p, const json_t *messages, const json_t *tools,
                               bool add_generation_prompt, char **out, size_t *len);

/* chat_prompt_render with more template variables: `vars` (a JSON object, may be NULL) is the
 * starting context; messages and add_generation_prompt always come from the arguments, tools
 * when not NULL (else vars' "tools", else None); documents, bos_token and eos_token are set only
 * when vars lacks them. */
cllm_status chat_prompt_render_vars(const chat_prompt *p, const json_t *vars,
                                    const json_t *messages, const json_t *tools,
                                    bool add_generation_prompt, char **out, size_t *len);

/* A byte range [start, end) of rendered text. */
typedef struct chat_span {
    size_t start, end;
} chat_span;

/* chat_prompt_render, and also where each message's string "content" landed in the output, so
 * that callers can keep user text from becoming special tokens. The template is rendered a
 * second time with each content replaced by a placeholder; substituting the contents back must
 * reproduce the real output byte for byte, and then *spans (malloc'd, sorted) are exactly the
 * substituted bytes and *exact is true. A template that inspects or transforms content (trims
 * it, tests it) may not reproduce: then *exact is false and there are no spans. */
cllm_status chat_prompt_render_spans(const chat_prompt *p, const json_t *messages,
                                     const json_t *tools, bool add_generation_prompt, char **out,
                                     size_t *len, chat_span **spans, size_t *n_spans, bool *exact);

/* chat_prompt_render_spans with the variables of chat_prompt_render_vars. */
cllm_status chat_prompt_render_spans_vars(const chat_prompt *p, const json_t *vars,
                                          const json_t *messages, const json_t *tools,
                                          bool add_generation_prompt, char **out, size_t *len,
                                          chat_span **spans, size_t *n_spans, bool *exact);

/* Read a conversation file: {"messages": [...], "tools": [...]} or a bare array of messages.
 * Each message must be an object with a string "role". New references in *messages / *tools
 * (tools may be NULL). */
cllm_status chat_conversation_load(const char *path, json_t **messages, json_t **tools);

#endif
