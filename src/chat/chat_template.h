/* chat_template.h - chat templates: a Jinja2-subset interpreter whose output matches Python jinja2
 * as Hugging Face transformers configures it (trim_blocks, lstrip_blocks, raise_exception, tojson).
 */
#ifndef CLLM_CHAT_CHAT_TEMPLATE_H
#define CLLM_CHAT_CHAT_TEMPLATE_H

#include "cllm.h"
#include <jansson.h>
#include <stddef.h>

typedef struct chat_template chat_template;

/* Parse template source. Syntax errors -> CLLM_ERR_FORMAT, constructs this interpreter does not
 * implement -> CLLM_ERR_UNSUPPORTED; both name the line and the construct. */
cllm_status chat_template_parse(const char *src, size_t len, chat_template **out);

/* Render with `context`, a JSON object of template variables (messages, tools,
 * add_generation_prompt, bos_token, eos_token, extra kwargs such as enable_thinking). The context
 * is only read. On success *out is a malloc'd NUL-terminated string of *len bytes (caller frees).
 * A template's raise_exception(msg) -> CLLM_ERR_INVALID_ARG with "chat template: msg";
 * runtime type errors -> CLLM_ERR_INVALID_ARG; resource limits -> CLLM_ERR_LIMIT. */
cllm_status chat_template_render(const chat_template *t, const json_t *context, char **out,
                                 size_t *len);

void chat_template_free(chat_template *t);

/* Load `chat_template` from DIR/tokenizer_config.json (a string, or a list of {name, template}
 * from which "default" is used) and parse it. *bos / *eos receive the bos_token / eos_token
 * strings (malloc'd, NULL when absent); out, bos and eos may each be NULL (out NULL: only check
 * that a template exists). No template -> CLLM_ERR_NOT_FOUND. *bos / *eos are filled whenever
 * tokenizer_config.json was read, even if the template is missing or fails to parse, so the
 * caller frees them on every return. */
cllm_status chat_load_dir(const char *dir, chat_template **out, char **bos, char **eos);

#endif
