/* model_text.h - the public tokenizer handle (cllm_tokenizer): a tokenizer, the ids that end
 * generation and, read on first use, the chat template of the model it came from. A model embeds
 * one for its own tokenizer; cllm_tokenizer_load makes a standalone one (model_text.c). */
#ifndef CLLM_MODEL_MODEL_TEXT_H
#define CLLM_MODEL_MODEL_TEXT_H

#include "chat/chat_prompt.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>
#include <stdbool.h>

struct cllm_chat_template {
    chat_prompt cp;
};

struct cllm_tokenizer {
    bool inited;    /* model_text_init ran (a model that failed to load may not have) */
    tokenizer *tok; /* NULL: none (a model without a tokenizer) */
    bool owned;     /* from cllm_tokenizer_load: tok is freed with the handle */
    char *path;     /* the folder or GGUF file the chat template is read from */
    int32_t eos[MODEL_MAX_EOS + 1];
    size_t n_eos;
    pthread_mutex_t mu; /* guards the template's first load */
    bool tmpl_tried;
    cllm_status tmpl_status;
    char *tmpl_error; /* the message of a failed load, repeated on every call */
    struct cllm_chat_template *tmpl;
};

/* Set up a handle for tok (not owned; may be NULL) read from path, with these EOS ids. */
cllm_status model_text_init(struct cllm_tokenizer *t, tokenizer *tok, const char *path,
                            const int *eos, int n_eos);
/* Free what the handle holds (not the handle itself). */
void model_text_destroy(struct cllm_tokenizer *t);

#endif
