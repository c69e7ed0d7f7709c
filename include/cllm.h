/* cllm.h - the public C API of cllm, a CPU-first LLM inference engine.
 *
 * Usage:
 *   cllm_model *m;
 *   cllm_model_params mp = cllm_model_default_params();
 *   if (cllm_model_load("path/to/hf-folder", &mp, &m) != CLLM_OK)
 *       fprintf(stderr, "%s\n", cllm_last_error());
 *   cllm_session *s;
 *   cllm_session_params sp = cllm_session_default_params();
 *   cllm_session_create(m, &sp, &s);
 *   int32_t *ids; size_t n;
 *   cllm_tokenize(m, "Once upon a time", 16, 1, 1, &ids, &n);
 *   cllm_sampling_params sa = cllm_sampling_default_params();
 *   cllm_generate(s, ids, n, &sa, on_token, user, &stats);
 *   cllm_free(ids); cllm_session_free(s); cllm_model_free(m);
 *
 * Every function that can fail returns a cllm_status; on failure cllm_last_error() (per thread)
 * says what and where. Whoever creates an object frees it; *_free(NULL) is a no-op. */
#ifndef CLLM_H
#define CLLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cllm_status {
    CLLM_OK = 0,
    CLLM_ERR_INVALID_ARG,
    CLLM_ERR_IO,
    CLLM_ERR_FORMAT,
    CLLM_ERR_UNSUPPORTED,
    CLLM_ERR_NOMEM,
    CLLM_ERR_NOT_FOUND,
    CLLM_ERR_LIMIT,
    CLLM_ERR_INTERNAL,
} cllm_status;

/* The message of the last failure on this thread. Never NULL. */
const char *cllm_last_error(void);
const char *cllm_status_str(cllm_status s);
void cllm_free(void *p);

/* ---- model ---- */

typedef struct cllm_model cllm_model;

typedef struct cllm_model_params {
    int n_threads;         /* <= 0: number of online CPUs */
    int require_tokenizer; /* fail if the folder has no tokenizer */
    int skip_tokenizer;    /* do not load the tokenizer (token ids in and out only) */
} cllm_model_params;

cllm_model_params cllm_model_default_params(void);

/* Load a Hugging Face model folder (config.json, *.safetensors, tokenizer). Weights are
 * memory-mapped and used in their stored dtype. */
cllm_status cllm_model_load(const char *path, const cllm_model_params *p, cllm_model **out);
void cllm_model_free(cllm_model *m);

typedef struct cllm_model_info {
    char arch[64]; /* "LlamaForCausalLM", ... */
    int n_layers, n_heads, n_kv_heads, head_dim, hidden, intermediate, vocab_size, max_ctx;
    char weight_dtypes[32]; /* e.g. "bf16" or "f32+bf16" */
    int64_t n_params;
    int64_t weight_bytes;
    int64_t kv_bytes_per_token_f32; /* K+V over all layers, at 4 bytes/element */
    int tied_embeddings;
    int has_tokenizer;
    double rope_theta;
    double load_seconds; /* wall time of cllm_model_load */
} cllm_model_info;

void cllm_model_get_info(const cllm_model *m, cllm_model_info *out);

/* ---- tokenizer (the model folder's own) ---- */

/* add_special: apply the tokenizer's post-processor (e.g. prepend BOS).
 * parse_special: text matching special added tokens becomes those tokens. *ids is malloc'd. */
cllm_status cllm_tokenize(const cllm_model *m, const char *text, size_t len, int add_special,
                          int parse_special, int32_t **ids, size_t *n);
/* Decode ids to text (malloc'd, NUL-terminated). */
cllm_status cllm_detokenize(const cllm_model *m, const int32_t *ids, size_t n, int skip_special,
                            char **text, size_t *len);

/* ---- sampling ---- */

typedef struct cllm_sampling_params {
    float temperature;       /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off (llama.cpp semantics) */
    int repeat_last_n;       /* window for the three penalties; -1: whole context */
    float presence_penalty;  /* 0: off (OpenAI semantics) */
    float frequency_penalty; /* 0: off */
    uint64_t seed;
} cllm_sampling_params;

cllm_sampling_params cllm_sampling_default_params(void);

/* ---- a generation session: one sequence with its paged KV cache ---- */

typedef enum cllm_kv_type { CLLM_KV_AUTO = 0, CLLM_KV_F32, CLLM_KV_F16, CLLM_KV_BF16 } cllm_kv_type;

typedef struct cllm_session_params {
    int n_ctx;      /* tokens of KV cache; <= 0: the model's context length (capped at 4096) */
    int block_size; /* tokens per KV block (default 16) */
    cllm_kv_type kv_type;
    int n_batch; /* max prompt tokens per forward call (default 512) */
} cllm_session_params;

cllm_session_params cllm_session_default_params(void);

typedef struct cllm_session cllm_session;
cllm_status cllm_session_create(cllm_model *m, const cllm_session_params *p, cllm_session **out);
void cllm_session_free(cllm_session *s);

typedef enum cllm_finish {
    CLLM_FINISH_LENGTH = 0,
    CLLM_FINISH_EOS,
    CLLM_FINISH_STOP,
    CLLM_FINISH_ABORT
} cllm_finish;

typedef struct cllm_gen_params {
    int max_tokens;          /* new tokens */
    const char *const *stop; /* stop strings (not emitted) */
    int n_stop;
    int ignore_eos;
    float *logits_out; /* optional: max_tokens * vocab floats, the logits of each step */
} cllm_gen_params;

typedef struct cllm_gen_stats {
    int n_prompt, n_gen;
    double t_prompt, t_first_token, t_gen; /* seconds: prompt eval, until first token, decode */
    cllm_finish finish;
} cllm_gen_stats;

/* Called for each generated token with the text it completes (may be empty while a UTF-8
 * character or a possible stop string is pending). Return non-zero to stop. */
typedef int (*cllm_token_cb)(void *user, int32_t id, const char *text, size_t len);

/* Reset the session, evaluate the prompt (at least one token), then sample until a stop
 * condition. Text callbacks need a tokenizer; without one text is NULL. */
cllm_status cllm_generate(cllm_session *s, const int32_t *prompt, size_t n_prompt,
                          const cllm_sampling_params *sp, const cllm_gen_params *gp,
                          cllm_token_cb cb, void *user, cllm_gen_stats *stats);

/* Evaluate tokens (no sampling) for benchmarks: n tokens at positions pos0.. of the session's
 * sequence, in chunks of n_batch; logits only for the last one. */
cllm_status cllm_session_eval(cllm_session *s, const int32_t *ids, size_t n, int pos0);
/* The logits [vocab] of the last token evaluated (valid until the next call). */
const float *cllm_session_logits(const cllm_session *s);

#ifdef __cplusplus
}
#endif
#endif
