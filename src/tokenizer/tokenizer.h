/* tokenizer.h - Hugging Face compatible tokenizers: load, encode, decode, streaming decode.
 *
 * Loads tokenizer.json (BPE model: byte-level GPT-2/Qwen2/Llama-3 style, and SentencePiece-style
 * with Metaspace or Prepend/Replace normalizer and byte fallback) or vocab.json + merges.txt
 * (GPT-2 byte-level BPE), plus tokenizer_config.json when present; or a GGUF file's vocab. */
#ifndef CLLM_TOKENIZER_TOKENIZER_H
#define CLLM_TOKENIZER_TOKENIZER_H

#include "cllm.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer tokenizer;

/* Load from a model folder. Returns CLLM_ERR_NOT_FOUND (with a message) when the folder has
 * neither tokenizer.json nor vocab.json + merges.txt; other errors name the file. */
cllm_status tok_load_dir(const char *dir, tokenizer **out);
/* Load from explicit files (either tokenizer_json, or vocab_json + merges_txt; others NULL). */
cllm_status tok_load_files(const char *tokenizer_json, const char *vocab_json,
                           const char *merges_txt, const char *tokenizer_config_json,
                           tokenizer **out);
/* Load from a GGUF file's tokenizer.ggml.* metadata: model "gpt2" (byte-level BPE with the
 * pre-tokenizer tokenizer.ggml.pre names) or "llama" (SentencePiece: score-ordered merges, byte
 * fallback). Other models (e.g. "bert" WordPiece) give CLLM_ERR_UNSUPPORTED. */
cllm_status tok_load_gguf(const char *path, tokenizer **out);
void tok_free(tokenizer *t);

/* Number of ids (model vocab + added tokens): max id + 1. */
int tok_vocab_size(const tokenizer *t);
/* -1 when unknown. */
int tok_bos_id(const tokenizer *t);
int tok_eos_id(const tokenizer *t);
bool tok_is_special(const tokenizer *t, int32_t id);
/* The token's string as stored in the vocabulary (e.g. "Ġthe", "▁the", "<0x0A>"); NULL if
 * the id is out of range. */
const char *tok_id_to_piece(const tokenizer *t, int32_t id);
/* Look up an exact vocabulary / added-token string; -1 if absent. */
int32_t tok_piece_to_id(const tokenizer *t, const char *piece);

/* Encode UTF-8 text (len bytes; invalid UTF-8 is an error). add_special: apply the
 * post-processor (BOS/EOS as the tokenizer says). parse_special: text equal to special added
 * tokens becomes those ids; otherwise it is tokenized as plain text. *ids is malloc'd. */
cllm_status tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
                       bool parse_special, int32_t **ids, size_t *n);

/* A byte range [start, end) of the input text. */
typedef struct tok_range {
    size_t start, end;
} tok_range;

/* tok_encode with special tokens parsed only outside the `protect` ranges (sorted by start,
 * non-overlapping): text inside them, e.g. user-supplied message content placed into a chat
 * template, is never turned into special tokens, even partly. When no special-token text
 * overlaps a protected range the result equals tok_encode(..., parse_special=true). */
cllm_status tok_encode_protected(const tokenizer *t, const char *text, size_t len, bool add_special,
                                 const tok_range *protect, size_t n_protect, int32_t **ids,
                                 size_t *n);

/* One-shot decode, as HF's tokenizer.decode(ids, skip_special_tokens). *text is malloc'd and
 * NUL-terminated. Bytes that do not form valid UTF-8 become U+FFFD, as in HF. */
cllm_status tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                       char **text, size_t *len);

/* Streaming decode: feed ids one at a time, get text as soon as it is complete UTF-8. The
 * concatenation of everything emitted equals tok_decode() of all ids fed (after the context).
 * The context ids (e.g. the prompt) are decoded-from but never emitted. */
typedef struct tok_stream tok_stream;
cllm_status tok_stream_create(const tokenizer *t, bool skip_special, tok_stream **out);
void tok_stream_free(tok_stream *s);
/* Forget everything and start after `context` (may be NULL/0). */
cllm_status tok_stream_reset(tok_stream *s, const int32_t *context, size_t n_context);
/* Push one id; *text points to the newly completed text (valid until the next call), *len its
 * length (possibly 0). */
cllm_status tok_stream_push(tok_stream *s, int32_t id, const char **text, size_t *len);
/* Flush at end of generation: pending incomplete bytes come out as U+FFFD (as one-shot decode
 * would show them). */
cllm_status tok_stream_flush(tok_stream *s, const char **text, size_t *len);

#endif
