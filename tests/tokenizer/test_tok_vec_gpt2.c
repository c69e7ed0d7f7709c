/* test_tok_vec_gpt2.c - llama.cpp's tokenizer test vectors (ggml-vocab-gpt-2.gguf) against
 * tokenizers/gpt2. */
#define TOK_FILES "tokenizers/gpt2"
#define TOK_VECTORS "ggml-vocab-gpt-2.gguf"
/* Special-token text with parse_special: first and last ids; then bos / eos. */
#define TOK_SPECIAL_TEXT "<|endoftext|>hi<|endoftext|>"
#define TOK_SPECIAL_FIRST 50256
#define TOK_SPECIAL_LAST 50256
#define TOK_BOS 50256
#define TOK_EOS 50256
#include "tok_vectors.inc"
