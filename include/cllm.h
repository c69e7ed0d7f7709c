/* cllm.h - the public C API of cllm, a CPU-first LLM inference engine.
 *
 * Usage:
 *   cllm_model *m;
 *   cllm_model_params mp = cllm_model_default_params();
 *   if (cllm_model_load("path/to/hf-folder", &mp, &m) != CLLM_OK)
 *       fprintf(stderr, "%s\n", cllm_last_error());
 *   cllm_engine *e;
 *   cllm_engine_params ep = cllm_engine_default_params();
 *   cllm_engine_create(m, &ep, &e);
 *   cllm_request r = cllm_request_default();
 *   r.text = "Once upon a time"; r.max_tokens = 64;
 *   cllm_gen_stats stats;
 *   cllm_generate(e, &r, on_token, user, &stats);   (on_token(user, ev): ev->text, ev->len)
 *   cllm_engine_free(e); cllm_model_free(m);
 *
 * cllm_generate runs one request to its end on the calling thread; many requests at once go
 * through cllm_engine_submit / cllm_engine_step directly (see the engine section). Both are the
 * same generation loop.
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
    const char *quant;     /* NULL: weights as stored; "q8_0", "q4_0", "q4_k", "q6_k", ...:
                              quantize the f32/f16/bf16 matrices in memory at load */
} cllm_model_params;

cllm_model_params cllm_model_default_params(void);

/* Load a Hugging Face model folder (config.json, *.safetensors, tokenizer) or a GGUF file
 * (llama, qwen2, gpt2; F32/F16/BF16 and Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K tensors).
 * Weights are memory-mapped and used in their stored dtype. */
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

/* The matmul kernels in use for this model's weights, as text (malloc'd, free with cllm_free):
 * the CPU model, then one line per weight dtype with the kernel family, the GEMV prefetch
 * distance, how it was chosen (measured at load, cached in $XDG_CACHE_HOME/cllm/kernels.txt,
 * forced by CLLM_TUNE, or the default with CLLM_TUNE=off) and the measured speeds. */
cllm_status cllm_model_kernels(const cllm_model *m, char **text);

/* ---- tokenizer (the model folder's own) ---- */

/* add_special: apply the tokenizer's post-processor (e.g. prepend BOS).
 * parse_special: text matching special added tokens becomes those tokens. *ids is malloc'd. */
cllm_status cllm_tokenize(const cllm_model *m, const char *text, size_t len, int add_special,
                          int parse_special, int32_t **ids, size_t *n);
/* Decode ids to text (malloc'd, NUL-terminated). */
cllm_status cllm_detokenize(const cllm_model *m, const int32_t *ids, size_t n, int skip_special,
                            char **text, size_t *len);

/* ---- tokenizers and chat templates on their own: the pieces an application (or a server)
 * needs to turn a conversation into prompt ids and generated ids back into text ----
 *
 *   const cllm_tokenizer *t = cllm_model_tokenizer(m);     (or cllm_tokenizer_load: no weights)
 *   const cllm_chat_template *ct;
 *   cllm_tokenizer_chat_template(t, &ct);
 *   char *text; size_t len; cllm_span *spans; size_t n_spans; int exact;
 *   cllm_chat_render(ct, "[{\"role\":\"user\",\"content\":\"Hi\"}]", (size_t)-1, 1,
 *                    &text, &len, &spans, &n_spans, &exact);
 *   cllm_tokenizer_encode_protected(t, text, len, 0, spans, n_spans, &ids, &n);
 *
 * A tokenizer and its chat template are immutable once loaded: any number of threads may use
 * them at once. A model's tokenizer belongs to the model (valid until cllm_model_free). */

typedef struct cllm_tokenizer cllm_tokenizer;

/* Only the tokenizer of a model folder (tokenizer.json or vocab.json + merges.txt, plus
 * tokenizer_config.json when present) or of a GGUF file (its tokenizer.ggml.* keys); no weights
 * are read and no config.json is needed. A path is read as GGUF when it is a regular file (or a
 * missing *.gguf). CLLM_ERR_NOT_FOUND when there is no tokenizer. */
cllm_status cllm_tokenizer_load(const char *path, cllm_tokenizer **out);
/* Frees a tokenizer from cllm_tokenizer_load (and its chat template); NULL and a model's own
 * tokenizer are left alone. */
void cllm_tokenizer_free(cllm_tokenizer *t);
/* The model's own tokenizer, or NULL when it has none (cllm_model_info.has_tokenizer). */
const cllm_tokenizer *cllm_model_tokenizer(const cllm_model *m);

/* Number of ids (vocabulary + added tokens, i.e. max id + 1); may be below the model's
 * vocab_size (padded embedding rows). */
int cllm_tokenizer_vocab_size(const cllm_tokenizer *t);
/* -1 when the tokenizer has none. */
int32_t cllm_tokenizer_bos_id(const cllm_tokenizer *t);
/* The ids that end generation, in *ids (owned by t), their number returned (0: none known). A
 * model's tokenizer has the model's set (config.json / generation_config.json eos_token_id, or
 * the GGUF's); a loaded tokenizer has its own eos token. */
size_t cllm_tokenizer_eos_ids(const cllm_tokenizer *t, const int32_t **ids);
/* Non-zero for special added tokens (e.g. <|im_end|>); 0 also for ids out of range. */
int cllm_tokenizer_is_special(const cllm_tokenizer *t, int32_t id);
/* The token's string as stored in the vocabulary (e.g. "Ġthe", "▁the", "<0x0A>"), owned by t;
 * NULL if the id is out of range. */
const char *cllm_tokenizer_piece(const cllm_tokenizer *t, int32_t id);
/* The id of an exact vocabulary or added-token string, -1 if absent. */
int32_t cllm_tokenizer_piece_id(const cllm_tokenizer *t, const char *piece);

/* As cllm_tokenize: UTF-8 text (invalid UTF-8 is CLLM_ERR_INVALID_ARG) to ids (malloc'd). */
cllm_status cllm_tokenizer_encode(const cllm_tokenizer *t, const char *text, size_t len,
                                  int add_special, int parse_special, int32_t **ids, size_t *n);

/* A byte range [start, end) of a text. */
typedef struct cllm_span {
    size_t start, end;
} cllm_span;

/* cllm_tokenizer_encode with special-token text parsed only outside the `protect` spans (sorted,
 * non-overlapping): text inside them (user content placed into a chat template) never becomes
 * a special token, not even partly. With no special-token text overlapping a span the ids equal
 * cllm_tokenizer_encode(..., parse_special=1). */
cllm_status cllm_tokenizer_encode_protected(const cllm_tokenizer *t, const char *text, size_t len,
                                            int add_special, const cllm_span *protect,
                                            size_t n_protect, int32_t **ids, size_t *n);
/* As cllm_detokenize (Hugging Face decode; bytes that are not UTF-8 become U+FFFD). */
cllm_status cllm_tokenizer_decode(const cllm_tokenizer *t, const int32_t *ids, size_t n,
                                  int skip_special, char **text, size_t *len);

/* Streaming detokenization: push ids one at a time, get text as soon as it is complete UTF-8.
 * Everything emitted, appended to the decoded context, gives the decoding of the context and the
 * pushed ids together (so a SentencePiece word keeps its leading space after a prompt). One
 * stream belongs to one thread; it must not outlive its tokenizer. */
typedef struct cllm_detok_stream cllm_detok_stream;
cllm_status cllm_detok_stream_create(const cllm_tokenizer *t, int skip_special,
                                     cllm_detok_stream **out);
void cllm_detok_stream_free(cllm_detok_stream *s);
/* Start over after `context` (e.g. the prompt; may be NULL/0): decoded from, never emitted. */
cllm_status cllm_detok_stream_reset(cllm_detok_stream *s, const int32_t *context, size_t n_context);
/* *text: the newly completed text (owned by s, valid until the next call), *len bytes (may be
 * 0). */
cllm_status cllm_detok_stream_push(cllm_detok_stream *s, int32_t id, const char **text,
                                   size_t *len);
/* At the end: pending incomplete bytes come out as U+FFFD, as a one-shot decode shows them. */
cllm_status cllm_detok_stream_flush(cllm_detok_stream *s, const char **text, size_t *len);

/* A chat template (the Jinja2 subset transformers' apply_chat_template uses, rendering byte for
 * byte as Python jinja2 does) with the model's bos_token / eos_token strings. */
typedef struct cllm_chat_template cllm_chat_template;

/* The template of the tokenizer's model (tokenizer_config.json's chat_template, or the GGUF's
 * tokenizer.chat_template), read on first use and then owned by t. CLLM_ERR_NOT_FOUND when the
 * model has none; a template that does not parse gives the same error on every call. */
cllm_status cllm_tokenizer_chat_template(const cllm_tokenizer *t, const cllm_chat_template **out);
/* A template on its own. path: a model folder or GGUF file (NULL: none); src: template source
 * (NULL: the model's). With both, src is rendered with path's bos/eos strings (a model without
 * a template is then fine). CLLM_ERR_NOT_FOUND when path has no template and src is NULL. */
cllm_status cllm_chat_template_load(const char *path, const char *src, size_t src_len,
                                    cllm_chat_template **out);
void cllm_chat_template_free(cllm_chat_template *t);

/* Render a conversation: JSON text (len bytes; (size_t)-1: NUL-terminated) that is either an
 * array of messages (objects with a string "role", and "content" and whatever else the template
 * reads) or an object
 * {"messages": [...], "tools": [...] (optional), any other key: a template variable such as
 * "enable_thinking"}. As transformers does: tools and documents are None when absent,
 * bos_token / eos_token are the template's unless given. *text is malloc'd (NUL-terminated).
 * spans may be NULL; otherwise where each message's string content landed in *text is recorded
 * (the template rendered again with placeholders, which must reproduce the text byte for byte):
 * *exact = 1 and *spans (malloc'd, sorted; free with cllm_free) cover exactly the content bytes,
 * for cllm_tokenizer_encode_protected. A template that transforms or tests content may not
 * reproduce: then *exact = 0, *spans = NULL, *n_spans = 0. Bad JSON -> CLLM_ERR_INVALID_ARG; the
 * template's raise_exception and its errors -> CLLM_ERR_INVALID_ARG / CLLM_ERR_LIMIT, named. */
cllm_status cllm_chat_render(const cllm_chat_template *t, const char *conversation, size_t len,
                             int add_generation_prompt, char **text, size_t *text_len,
                             cllm_span **spans, size_t *n_spans, int *exact);

/* ---- quantization: writing GGUF files ---- */

/* Called now and then with the fraction done (0..1) and the tensor being written. */
typedef void (*cllm_progress_cb)(void *user, double done, const char *what);

typedef struct cllm_quantize_params {
    cllm_progress_cb progress; /* may be NULL */
    void *user;
} cllm_quantize_params;

typedef struct cllm_quantize_stats {
    int n_tensors;
    char types[256]; /* tensors per ggml type written, e.g. "57 F32 7 Q6_K 22 Q4_K" */
} cllm_quantize_stats;

/* Write the GGUF file llama.cpp's converter and quantizer would write for the model at `in` (a
 * Hugging Face folder or a GGUF file): llama.cpp's tensor names and metadata, the vocabulary
 * and chat template, matrices in `type`: "f32", "f16", "bf16", "q8_0", "q4_0", "q6_k" (every
 * matrix; q4_0 keeps output.weight in q6_k) or "q4_k_m" (llama.cpp's Q4_K_M recipe). Norms and
 * biases stay f32; rows that do not fit a block size fall back as llama.cpp does. p and stats
 * may be NULL. Unknown type -> CLLM_ERR_INVALID_ARG. */
cllm_status cllm_quantize(const char *in, const char *out, const char *type,
                          const cllm_quantize_params *p, cllm_quantize_stats *stats);

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

typedef enum cllm_kv_type { CLLM_KV_AUTO = 0, CLLM_KV_F32, CLLM_KV_F16, CLLM_KV_BF16 } cllm_kv_type;

/* ---- the engine: the one generation loop (continuous batching, paged KV with prefix
 * caching, chunked prefill, preemption by recompute). Serving many requests and generating one
 * (cllm_generate below) are the same code. ----
 *
 *   cllm_engine *e;
 *   cllm_engine_params ep = cllm_engine_default_params();
 *   cllm_engine_create(m, &ep, &e);
 *   cllm_request r = cllm_request_default(); r.text = "Once upon a time"; r.max_tokens = 64;
 *   cllm_request_id id;
 *   cllm_engine_submit(e, &r, &id);
 *   while (cllm_engine_has_work(e)) {
 *       const cllm_event *ev; size_t n;
 *       cllm_engine_step(e, &ev, &n);   (one forward over every scheduled token)
 *       ... ev[i].text, ev[i].finished ...
 *   }
 *   cllm_engine_free(e);
 *
 * For a given request and seed the tokens and logits are bitwise the same whether it runs alone
 * or with others, whatever the chunking, prefix-cache hits or preemptions. Submit, cancel,
 * stop and stats may be called from any thread and never wait for a running step; step / run
 * belong to one thread (the engine's). */

typedef struct cllm_engine cllm_engine;
typedef int64_t cllm_request_id;

/* The one parameter set for an engine, whether it serves many requests or generates one. */
typedef struct cllm_engine_params {
    int64_t kv_memory; /* KV budget in bytes; <= 0: use kv_tokens */
    int kv_tokens;     /* KV budget in tokens when kv_memory <= 0; <= 0: 16384 */
    int block_size;    /* tokens per KV block (default 16) */
    cllm_kv_type kv_type;
    int max_batched_tokens; /* tokens per step = the largest prompt chunk per forward (default
                               512) */
    int max_seqs;           /* running sequences per step (default 64) */
    int no_prefix_cache;    /* disable prefix caching */
    int max_model_len;      /* per-request context (prompt + max_tokens); <= 0: the model's */
} cllm_engine_params;

cllm_engine_params cllm_engine_default_params(void);

typedef struct cllm_request {
    const int32_t *prompt; /* token ids, or NULL to tokenize text (with BOS etc.) */
    size_t n_prompt;
    const char *text;
    cllm_sampling_params sampling;
    int max_tokens;          /* >= 0; 0: evaluate the prompt only (no token is sampled; the
                                logits hook sees the last prompt token's row as index 0), then
                                finish with CLLM_REASON_LENGTH */
    const char *const *stop; /* stop strings (copied; not emitted) */
    int n_stop;
    int ignore_eos;
    int min_tokens;   /* EOS and stop strings are ignored before this many tokens (default 0) */
    int logprobs;     /* non-zero: events carry the chosen token's log-probability */
    int top_logprobs; /* 0..CLLM_MAX_TOP_LOGPROBS: also the most likely alternatives */
    void *user_data;  /* echoed in every event of this request */
} cllm_request;

#define CLLM_MAX_TOP_LOGPROBS 20

/* Greedy sampling, 16 max tokens, nothing else set. */
cllm_request cllm_request_default(void);

typedef enum cllm_finish_reason {
    CLLM_REASON_NONE = 0, /* not finished */
    CLLM_REASON_STOP,     /* EOS or a stop string */
    CLLM_REASON_LENGTH,   /* max_tokens reached */
    CLLM_REASON_CANCELLED,
    CLLM_REASON_ERROR,
} cllm_finish_reason;

/* At most one event per request per step. token: the new token (-1 if none, e.g. cancelled);
 * text: newly completed text (may be empty while a UTF-8 character or a possible stop string is
 * pending; NULL without a tokenizer), valid until the next step. */
typedef struct cllm_event {
    cllm_request_id id;
    int32_t token;
    const char *text;
    size_t len;
    cllm_finish_reason finished;
    int n_prompt, n_generated, n_cached; /* n_cached: prompt tokens served by the prefix cache */
    void *user_data;                     /* the request's */
    /* With cllm_request.logprobs: log-softmax of the model's raw logits (before temperature and
     * penalties) at the chosen token, and the top_logprobs best tokens in descending order
     * (arrays valid like text). */
    float logprob;
    int n_top;
    const int32_t *top_ids;
    const float *top_logprobs;
    const char *error; /* finished == CLLM_REASON_ERROR: why (valid like text) */
} cllm_event;

typedef struct cllm_engine_stats {
    int n_running, n_waiting;
    int kv_blocks_total, kv_blocks_used, kv_blocks_free, kv_blocks_cached, block_size;
    int64_t prompt_tokens;     /* prompt tokens admitted (recomputes included) */
    int64_t prefix_hit_tokens; /* of those, served from the prefix cache */
    int64_t tokens_processed;  /* rows through the model */
    int64_t tokens_generated;
    int64_t preemptions, steps;
} cllm_engine_stats;

cllm_status cllm_engine_create(cllm_model *m, const cllm_engine_params *p, cllm_engine **out);
/* Frees every request still queued (no events). */
void cllm_engine_free(cllm_engine *e);
/* Rejects (CLLM_ERR_LIMIT, with the numbers) requests that exceed the context or can never fit
 * in the KV pool; CLLM_ERR_INVALID_ARG for bad ids or parameters. */
cllm_status cllm_engine_submit(cllm_engine *e, const cllm_request *r, cllm_request_id *id);
/* The request finishes with CLLM_REASON_CANCELLED at the next step, releasing its KV blocks.
 * CLLM_ERR_NOT_FOUND if it is unknown or already finished. */
cllm_status cllm_engine_cancel(cllm_engine *e, cllm_request_id id);
/* Schedule, run one forward over all scheduled tokens, sample, report. *events (engine-owned)
 * stays valid until the next step. An error of the forward finishes the affected requests with
 * CLLM_REASON_ERROR and returns the status. */
cllm_status cllm_engine_step(cllm_engine *e, const cllm_event **events, size_t *n_events);
/* Called with each event of a step, on the thread running cllm_engine_run. Event contents are
 * valid only during the call. */
typedef void (*cllm_event_cb)(void *user, const cllm_event *ev);
/* Run steps on the calling thread until cllm_engine_stop: while there is no work it sleeps
 * until a submit, cancel or stop wakes it. Submit and cancel from other threads never wait for
 * a running step (they queue and the loop picks them up before the next step). Returns CLLM_OK
 * after a stop; requests still queued then are left to cllm_engine_free. */
cllm_status cllm_engine_run(cllm_engine *e, cllm_event_cb cb, void *user);
/* Make cllm_engine_run return after its current step (any thread). */
void cllm_engine_stop(cllm_engine *e);
/* Non-zero while requests are waiting or running (their last events come from a step). */
int cllm_engine_has_work(cllm_engine *e);
void cllm_engine_get_stats(cllm_engine *e, cllm_engine_stats *out);

/* Debug / test hooks. The logits hook sees each row of logits a request samples from (before
 * penalties), with the index of the token being generated. */
typedef void (*cllm_logits_hook)(void *user, cllm_request_id id, int index, const float *logits,
                                 int vocab);
void cllm_engine_set_logits_hook(cllm_engine *e, cllm_logits_hook hook, void *user);
/* Check the KV pool's invariants against every live sequence (CLLM_ERR_INTERNAL on violation). */
cllm_status cllm_engine_check(cllm_engine *e);

/* ---- generation: one request run to its end on the calling thread ----
 *
 * A thin layer over the engine: submit, then cllm_engine_step until the request finishes. Keep
 * the engine between calls and a prompt that extends an earlier one (a chat's next turn) is
 * served from the prefix cache: only tokens outside the cached full KV blocks are evaluated,
 * i.e. at most block_size - 1 tokens that already had KV, plus the ones that never had: the
 * earlier reply's last token (sampled, never evaluated) and the new ones. */

typedef struct cllm_gen_stats {
    int n_prompt;              /* prompt tokens */
    int n_cached;              /* of those, served by the prefix cache (not evaluated) */
    int n_gen;                 /* tokens generated */
    double t_prompt;           /* seconds from the call until the prompt is evaluated (the
                                  step that finishes it also samples the first token) */
    double t_first_token;      /* seconds from the call until the first token (or the end) */
    double t_gen;              /* seconds from the first token to the last */
    cllm_finish_reason finish; /* STOP, LENGTH, or CANCELLED when the callback asked to stop */
    int eos;                   /* finish == CLLM_REASON_STOP because of an end-of-sequence token
                                  (else a stop string) */
} cllm_gen_stats;

/* Called with each event of the request (ev->token: the new token or -1; ev->text / ev->len:
 * newly completed text, NULL without a tokenizer; the last event has ev->finished set). Return
 * non-zero to stop: the request is cancelled and no further events are delivered. */
typedef int (*cllm_token_cb)(void *user, const cllm_event *ev);

/* Run r on e (which must have no other requests) until it finishes. cb may be NULL. Errors of
 * cllm_engine_submit (bad ids or parameters, limits) and of the forward pass are returned. */
cllm_status cllm_generate(cllm_engine *e, const cllm_request *r, cllm_token_cb cb, void *user,
                          cllm_gen_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
